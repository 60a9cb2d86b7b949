#include "netpulse/wire.h"

#include "check.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#define T0 INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */

/* A batch with every field of every message set (checked by
 * check_every_field_set), in storage the test owns. */
struct fixture {
    Netpulse__Batch batch;
    Netpulse__Heartbeat hb;
    Netpulse__InterfaceSample samples[2];
    Netpulse__InterfaceSample *sample_ptrs[2];
    Netpulse__DeviceInfo device;
    Netpulse__DeviceInfo *device_ptrs[1];
    Netpulse__NamedCount protos[2], apps[2];
    Netpulse__NamedCount *proto_ptrs[2], *app_ptrs[2];
    Netpulse__Talker talkers[2];
    Netpulse__Talker *talker_ptrs[2];
    Netpulse__Flow flows[2];
    Netpulse__Flow *flow_ptrs[2];
    Netpulse__DecodeError decode_error;
    Netpulse__DecodeError *decode_error_ptrs[1];
    Netpulse__FlowSummary summary;
    Netpulse__FlowSummary *summary_ptrs[1];
    Netpulse__ProbeResult probes[2];
    Netpulse__ProbeResult *probe_ptrs[2];
    Netpulse__Event events[2];
    Netpulse__Event *event_ptrs[2];
};

static void fixture_init(struct fixture *fx)
{
    memset(fx, 0, sizeof *fx);
    Netpulse__Batch *b = &fx->batch;
    netpulse__batch__init(b);
    b->schema_version = NP_WIRE_VERSION;
    b->min_reader_version = 1;
    b->agent_id = "school-0412";
    b->seq = 42;
    b->created_ms = T0 + 10000;
    b->agent_version = "0.1.0";
    b->agent_start_ms = T0 - 3600000;

    netpulse__heartbeat__init(&fx->hb);
    fx->hb.uplink = NETPULSE__UPLINK_STATE__UPLINK_UP;
    fx->hb.spool_batches = 3;
    fx->hb.spool_bytes = 12345;
    fx->hb.spool_oldest_ms = T0 - 60000;
    fx->hb.uplink_since_ms = T0 - 30000;
    b->heartbeat = &fx->hb;

    for (int i = 0; i < 2; i++) {
        Netpulse__InterfaceSample *s = &fx->samples[i];
        netpulse__interface_sample__init(s);
        s->device = "edge-router";
        s->if_index = 7 + (uint32_t)i;
        s->time_ms = T0 + 1000;
        s->interval_ms = 60012;
        s->in_octets = UINT64_C(123456789012345);
        s->out_octets = UINT64_C(98765432109876);
        s->counter_bits = 64;
        s->sys_uptime_ticks = UINT64_C(4294967000);
        s->speed_bps = UINT64_C(1000000000);
        s->provisioned_bps = UINT64_C(500000000);
        s->if_name = "ge-0/0/1";
        s->if_alias = "Uplink to district WAN — Größe ✓";
        s->if_descr = "GigabitEthernet0/0/1";
        s->if_type = 6;
        s->oper_status = NETPULSE__IF_STATUS__IF_STATUS_UP;
        s->admin_status = NETPULSE__IF_STATUS__IF_STATUS_UP;
        fx->sample_ptrs[i] = s;
    }
    fx->samples[0].rate_valid = 1;
    fx->samples[0].in_bps = 123456789.5;
    fx->samples[0].out_bps = 2345.25;
    fx->samples[0].rate_status = NETPULSE__RATE_STATUS__RATE_WRAPPED;
    fx->samples[1].rate_status = NETPULSE__RATE_STATUS__RATE_DEVICE_RESTART;
    fx->samples[1].oper_status = NETPULSE__IF_STATUS__IF_STATUS_LOWER_LAYER_DOWN;
    b->n_samples = 2;
    b->samples = fx->sample_ptrs;

    netpulse__device_info__init(&fx->device);
    fx->device.device = "edge-router";
    fx->device.time_ms = T0 + 900;
    fx->device.sys_uptime_ticks = 8640000;
    fx->device.sys_name = "edge1.school-0412";
    fx->device.sys_descr = "Cisco IOS Software, C1100 Software, Version 17.6.1";
    fx->device.sys_object_id = "1.3.6.1.4.1.9.1.2660";
    fx->device_ptrs[0] = &fx->device;
    b->n_devices = 1;
    b->devices = fx->device_ptrs;

    for (int i = 0; i < 2; i++) {
        netpulse__named_count__init(&fx->protos[i]);
        fx->protos[i].name = i ? "udp" : "tcp";
        fx->protos[i].bytes = 1000 + (uint64_t)i;
        fx->protos[i].packets = 10 + (uint64_t)i;
        fx->proto_ptrs[i] = &fx->protos[i];
        netpulse__named_count__init(&fx->apps[i]);
        fx->apps[i].name = i ? "dns" : "https";
        fx->apps[i].bytes = 2000 + (uint64_t)i;
        fx->apps[i].packets = 20 + (uint64_t)i;
        fx->app_ptrs[i] = &fx->apps[i];
        netpulse__talker__init(&fx->talkers[i]);
        fx->talkers[i].address = i ? "2001:db8::17" : "10.4.12.7";
        fx->talkers[i].bytes_in = 300 + (uint64_t)i;
        fx->talkers[i].bytes_out = 30 + (uint64_t)i;
        fx->talkers[i].packets = 3 + (uint64_t)i;
        fx->talker_ptrs[i] = &fx->talkers[i];
        netpulse__flow__init(&fx->flows[i]);
        fx->flows[i].proto = i ? 17 : 6;
        fx->flows[i].src_addr = "10.4.12.7";
        fx->flows[i].src_port = 51234;
        fx->flows[i].dst_addr = "192.0.2.80";
        fx->flows[i].dst_port = 443;
        fx->flows[i].vlan = 100;
        fx->flows[i].bytes = 4000;
        fx->flows[i].packets = 40;
        fx->flow_ptrs[i] = &fx->flows[i];
    }
    netpulse__decode_error__init(&fx->decode_error);
    fx->decode_error.reason = "truncated-ip";
    fx->decode_error.count = 2;
    fx->decode_error_ptrs[0] = &fx->decode_error;
    Netpulse__FlowSummary *f = &fx->summary;
    netpulse__flow_summary__init(f);
    f->source = "wan";
    f->start_ms = T0;
    f->end_ms = T0 + 60000;
    f->packets = 100;
    f->bytes = 90000;
    f->bytes_in = 60000;
    f->bytes_out = 30000;
    f->packets_in = 70;
    f->packets_out = 30;
    f->dropped_kernel = 5;
    f->dropped_iface = 1;
    f->evicted_flows = 9;
    f->sample_rate = 4;
    f->n_by_protocol = 2;
    f->by_protocol = fx->proto_ptrs;
    f->n_by_app = 2;
    f->by_app = fx->app_ptrs;
    f->n_top_talkers = 2;
    f->top_talkers = fx->talker_ptrs;
    f->n_top_flows = 2;
    f->top_flows = fx->flow_ptrs;
    f->n_decode_errors = 1;
    f->decode_errors = fx->decode_error_ptrs;
    fx->summary_ptrs[0] = f;
    b->n_flows = 1;
    b->flows = fx->summary_ptrs;

    for (int i = 0; i < 2; i++) {
        Netpulse__ProbeResult *p = &fx->probes[i];
        netpulse__probe_result__init(p);
        p->name = "upstream";
        p->type = NETPULSE__PROBE_TYPE__PROBE_ICMP;
        p->target = "192.0.2.53";
        p->time_ms = T0 + INT64_C(10000) * i;
        p->interval_ms = 10000;
        p->sent = 5;
        fx->probe_ptrs[i] = p;
    }
    fx->probes[0].ok = 1;
    fx->probes[0].rtt_us = 12345;
    fx->probes[0].received = 4;
    fx->probes[0].error = "1 of 5 lost";
    fx->probes[1].error = "timeout";
    b->n_probes = 2;
    b->probes = fx->probe_ptrs;

    Netpulse__Event *e = &fx->events[0];
    netpulse__event__init(e);
    e->type = NETPULSE__EVENT_TYPE__EVENT_INTERFACE_DOWN;
    e->time_ms = T0 + 500;
    e->device = "edge-router";
    e->subject = "ge-0/0/1";
    e->detail = "ifOperStatus up -> lowerLayerDown";
    e->if_index = 8;
    e->first_seq = 10;
    e->last_seq = 12;
    e->from_ms = T0 - 5000;
    e->to_ms = T0 - 1000;
    e->batches = 3;
    e->bytes = 4096;
    fx->event_ptrs[0] = e;
    e = &fx->events[1];
    netpulse__event__init(e);
    e->type = NETPULSE__EVENT_TYPE__EVENT_SPOOL_OVERFLOW;
    e->time_ms = T0 + 600;
    e->detail = "spool full: dropped the oldest batches";
    e->first_seq = 2;
    e->last_seq = 9;
    e->from_ms = T0 - 90000;
    e->to_ms = T0 - 10000;
    e->batches = 8;
    e->bytes = 65536;
    fx->event_ptrs[1] = e;
    b->n_events = 2;
    b->events = fx->event_ptrs;
}

/* Counts fields left at zero in m and (for repeated fields) its first
 * element, so a field added to the schema but not to the fixture fails. */
static int count_unset(const ProtobufCMessage *m, const char *where)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    int unset = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        const char *p = (const char *)m + fd->offset;
        bool set = false;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n;
            memcpy(&n, (const char *)m + fd->quantifier_offset, sizeof n);
            set = n > 0;
            if (set && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
                ProtobufCMessage **arr;
                memcpy(&arr, p, sizeof arr);
                unset += count_unset(arr[0], fd->name);
            }
        } else {
            switch (fd->type) {
            case PROTOBUF_C_TYPE_STRING: {
                const char *s;
                memcpy(&s, p, sizeof s);
                set = s && s[0];
                break;
            }
            case PROTOBUF_C_TYPE_MESSAGE: {
                const ProtobufCMessage *sub;
                memcpy(&sub, p, sizeof sub);
                set = sub != NULL;
                if (set) {
                    unset += count_unset(sub, fd->name);
                }
                break;
            }
            case PROTOBUF_C_TYPE_BOOL:
                set = *(const protobuf_c_boolean *)p != 0;
                break;
            case PROTOBUF_C_TYPE_DOUBLE:
                set = *(const double *)p != 0;
                break;
            case PROTOBUF_C_TYPE_UINT64:
            case PROTOBUF_C_TYPE_INT64:
                set = *(const uint64_t *)p != 0;
                break;
            default:
                set = *(const uint32_t *)p != 0;
                break;
            }
        }
        if (!set) {
            fprintf(stderr, "fixture: %s.%s not set\n", where, fd->name);
            unset++;
        }
    }
    return unset;
}

static uint8_t *pack_raw(const Netpulse__Batch *b, size_t *len)
{
    *len = netpulse__batch__get_packed_size(b);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (buf) {
        netpulse__batch__pack(b, buf);
    }
    return buf;
}

/* ---- round trip ---- */

static void test_round_trip(void)
{
    struct fixture fx;
    struct np_err err = {0};
    uint8_t *buf = NULL, *buf2 = NULL;
    size_t len = 0, len2 = 0;
    Netpulse__Batch *b = NULL;

    fixture_init(&fx);
    CHECK_INT(count_unset(&fx.batch.base, "batch"), 0);
    CHECK_INT(np_wire_encode(&fx.batch, &buf, &len, &err), 0);
    CHECK_STR(err.msg, "");
    CHECK(buf != NULL && len > 500);
    CHECK_INT(np_wire_decode(buf, len, NULL, &b, &err), 0);
    CHECK_STR(err.msg, "");
    if (!b) {
        free(buf);
        return;
    }
    CHECK_INT(count_unset(&b->base, "decoded"), 0);
    CHECK_INT(b->schema_version, 1);
    CHECK_INT(b->min_reader_version, 1);
    CHECK_STR(b->agent_id, "school-0412");
    CHECK_U64(b->seq, 42);
    CHECK_U64(b->created_ms, T0 + 10000);
    CHECK_STR(b->agent_version, "0.1.0");
    CHECK_U64(b->agent_start_ms, T0 - 3600000);
    CHECK_INT(b->heartbeat->uplink, NETPULSE__UPLINK_STATE__UPLINK_UP);
    CHECK_U64(b->heartbeat->spool_batches, 3);
    CHECK_U64(b->heartbeat->spool_bytes, 12345);
    CHECK_U64(b->heartbeat->spool_oldest_ms, T0 - 60000);
    CHECK_U64(b->heartbeat->uplink_since_ms, T0 - 30000);

    CHECK_INT(b->n_samples, 2);
    const Netpulse__InterfaceSample *s = b->samples[0];
    CHECK_STR(s->device, "edge-router");
    CHECK_INT(s->if_index, 7);
    CHECK_U64(s->time_ms, T0 + 1000);
    CHECK_U64(s->interval_ms, 60012);
    CHECK_U64(s->in_octets, UINT64_C(123456789012345));
    CHECK_U64(s->out_octets, UINT64_C(98765432109876));
    CHECK_INT(s->rate_valid, 1);
    CHECK_DBL(s->in_bps, 123456789.5, 0);
    CHECK_DBL(s->out_bps, 2345.25, 0);
    CHECK_INT(s->rate_status, NETPULSE__RATE_STATUS__RATE_WRAPPED);
    CHECK_INT(s->oper_status, NETPULSE__IF_STATUS__IF_STATUS_UP);
    CHECK_INT(s->admin_status, NETPULSE__IF_STATUS__IF_STATUS_UP);
    CHECK_INT(s->counter_bits, 64);
    CHECK_U64(s->sys_uptime_ticks, UINT64_C(4294967000));
    CHECK_U64(s->speed_bps, UINT64_C(1000000000));
    CHECK_U64(s->provisioned_bps, UINT64_C(500000000));
    CHECK_STR(s->if_name, "ge-0/0/1");
    CHECK_STR(s->if_alias, "Uplink to district WAN — Größe ✓");
    CHECK_STR(s->if_descr, "GigabitEthernet0/0/1");
    CHECK_INT(s->if_type, 6);
    s = b->samples[1];
    CHECK_INT(s->if_index, 8);
    CHECK_INT(s->rate_valid, 0);
    CHECK_DBL(s->in_bps, 0, 0);
    CHECK_INT(s->rate_status, NETPULSE__RATE_STATUS__RATE_DEVICE_RESTART);
    CHECK_INT(s->oper_status, NETPULSE__IF_STATUS__IF_STATUS_LOWER_LAYER_DOWN);

    CHECK_INT(b->n_devices, 1);
    const Netpulse__DeviceInfo *d = b->devices[0];
    CHECK_STR(d->device, "edge-router");
    CHECK_U64(d->time_ms, T0 + 900);
    CHECK_U64(d->sys_uptime_ticks, 8640000);
    CHECK_STR(d->sys_name, "edge1.school-0412");
    CHECK_STR(d->sys_descr, "Cisco IOS Software, C1100 Software, Version 17.6.1");
    CHECK_STR(d->sys_object_id, "1.3.6.1.4.1.9.1.2660");

    CHECK_INT(b->n_flows, 1);
    const Netpulse__FlowSummary *f = b->flows[0];
    CHECK_STR(f->source, "wan");
    CHECK_U64(f->start_ms, T0);
    CHECK_U64(f->end_ms, T0 + 60000);
    CHECK_U64(f->packets, 100);
    CHECK_U64(f->bytes, 90000);
    CHECK_U64(f->bytes_in, 60000);
    CHECK_U64(f->bytes_out, 30000);
    CHECK_U64(f->packets_in, 70);
    CHECK_U64(f->packets_out, 30);
    CHECK_U64(f->dropped_kernel, 5);
    CHECK_U64(f->dropped_iface, 1);
    CHECK_U64(f->evicted_flows, 9);
    CHECK_INT(f->sample_rate, 4);
    CHECK_INT(f->n_by_protocol, 2);
    CHECK_STR(f->by_protocol[1]->name, "udp");
    CHECK_U64(f->by_protocol[1]->bytes, 1001);
    CHECK_U64(f->by_protocol[1]->packets, 11);
    CHECK_INT(f->n_by_app, 2);
    CHECK_STR(f->by_app[0]->name, "https");
    CHECK_U64(f->by_app[0]->bytes, 2000);
    CHECK_U64(f->by_app[0]->packets, 20);
    CHECK_INT(f->n_top_talkers, 2);
    CHECK_STR(f->top_talkers[1]->address, "2001:db8::17");
    CHECK_U64(f->top_talkers[1]->bytes_in, 301);
    CHECK_U64(f->top_talkers[1]->bytes_out, 31);
    CHECK_U64(f->top_talkers[1]->packets, 4);
    CHECK_INT(f->n_top_flows, 2);
    CHECK_INT(f->top_flows[1]->proto, 17);
    CHECK_STR(f->top_flows[1]->src_addr, "10.4.12.7");
    CHECK_INT(f->top_flows[1]->src_port, 51234);
    CHECK_STR(f->top_flows[1]->dst_addr, "192.0.2.80");
    CHECK_INT(f->top_flows[1]->dst_port, 443);
    CHECK_INT(f->top_flows[1]->vlan, 100);
    CHECK_U64(f->top_flows[1]->bytes, 4000);
    CHECK_U64(f->top_flows[1]->packets, 40);
    CHECK_INT(f->n_decode_errors, 1);
    CHECK_STR(f->decode_errors[0]->reason, "truncated-ip");
    CHECK_U64(f->decode_errors[0]->count, 2);

    CHECK_INT(b->n_probes, 2);
    const Netpulse__ProbeResult *p = b->probes[0];
    CHECK_STR(p->name, "upstream");
    CHECK_INT(p->type, NETPULSE__PROBE_TYPE__PROBE_ICMP);
    CHECK_STR(p->target, "192.0.2.53");
    CHECK_U64(p->time_ms, T0);
    CHECK_U64(p->interval_ms, 10000);
    CHECK_INT(p->ok, 1);
    CHECK_U64(p->rtt_us, 12345);
    CHECK_INT(p->sent, 5);
    CHECK_INT(p->received, 4);
    CHECK_STR(p->error, "1 of 5 lost");
    CHECK_INT(b->probes[1]->ok, 0);
    CHECK_INT(b->probes[1]->received, 0);
    CHECK_STR(b->probes[1]->error, "timeout");

    CHECK_INT(b->n_events, 2);
    const Netpulse__Event *e = b->events[0];
    CHECK_INT(e->type, NETPULSE__EVENT_TYPE__EVENT_INTERFACE_DOWN);
    CHECK_U64(e->time_ms, T0 + 500);
    CHECK_STR(e->device, "edge-router");
    CHECK_STR(e->subject, "ge-0/0/1");
    CHECK_STR(e->detail, "ifOperStatus up -> lowerLayerDown");
    CHECK_INT(e->if_index, 8);
    e = b->events[1];
    CHECK_INT(e->type, NETPULSE__EVENT_TYPE__EVENT_SPOOL_OVERFLOW);
    CHECK_STR(e->device, "");
    CHECK_U64(e->first_seq, 2);
    CHECK_U64(e->last_seq, 9);
    CHECK_U64(e->from_ms, T0 - 90000);
    CHECK_U64(e->to_ms, T0 - 10000);
    CHECK_U64(e->batches, 8);
    CHECK_U64(e->bytes, 65536);

    /* Re-encoding the decoded form gives the same bytes. */
    CHECK_INT(np_wire_encode(b, &buf2, &len2, &err), 0);
    CHECK_INT(len2, len);
    CHECK(buf && buf2 && len2 == len && memcmp(buf, buf2, len) == 0);

    np_wire_free(b);
    np_wire_free(NULL);
    free(buf);
    free(buf2);
}

/* A heartbeat: a batch with nothing but its header. */
static void test_heartbeat_only(void)
{
    struct np_err err = {0};
    Netpulse__Batch b = NETPULSE__BATCH__INIT;
    Netpulse__Heartbeat hb = NETPULSE__HEARTBEAT__INIT;
    uint8_t *buf = NULL;
    size_t len = 0;
    Netpulse__Batch *out = NULL;

    b.schema_version = 1;
    b.agent_id = "s1";
    b.seq = 1;
    b.created_ms = T0;
    b.agent_start_ms = T0;
    b.heartbeat = &hb; /* all zero: uplink unknown, empty spool */
    CHECK_INT(np_wire_encode(&b, &buf, &len, &err), 0);
    CHECK_INT(np_wire_decode(buf, len, NULL, &out, &err), 0);
    if (out) {
        CHECK(out->heartbeat != NULL);
        CHECK_INT(out->n_samples + out->n_devices + out->n_flows + out->n_probes + out->n_events,
                  0);
        /* Unset strings read back as "", never NULL. */
        CHECK_STR(out->agent_version, "");
    }
    np_wire_free(out);
    free(buf);
}

/* ---- validation: one table row per rule; every row must fail ---- */

static char str_1025[1026];
static char str_65[66];

typedef void (*mutate_fn)(struct fixture *fx, struct np_wire_limits *lim);

#define MUT(name, body)                                                                            \
    static void name(struct fixture *fx, struct np_wire_limits *lim)                               \
    {                                                                                              \
        (void)fx;                                                                                  \
        (void)lim;                                                                                 \
        body;                                                                                      \
    }

MUT(m_none, )
MUT(m_schema0, fx->batch.schema_version = 0)
MUT(m_min_reader2, fx->batch.min_reader_version = 2)
MUT(m_agent_empty, fx->batch.agent_id = "")
MUT(m_agent_long, fx->batch.agent_id = str_65)
MUT(m_agent_slash, fx->batch.agent_id = "school/0412")
MUT(m_agent_space, fx->batch.agent_id = "school 0412")
MUT(m_agent_dot, fx->batch.agent_id = "..")
MUT(m_agent_dash, fx->batch.agent_id = "-x")
MUT(m_seq0, fx->batch.seq = 0)
MUT(m_created0, fx->batch.created_ms = 0)
MUT(m_created1970, fx->batch.created_ms = 86400000)
MUT(m_created2100, fx->batch.created_ms = NP_WIRE_MAX_TIME_MS)
MUT(m_created_neg, fx->batch.created_ms = -T0)
MUT(m_start0, fx->batch.agent_start_ms = 0)
MUT(m_version_ctrl, fx->batch.agent_version = "0.1\n")
MUT(m_no_hb, fx->batch.heartbeat = NULL)
MUT(m_hb_oldest, fx->hb.spool_oldest_ms = 12)
MUT(m_hb_since, fx->hb.uplink_since_ms = -1)
MUT(m_hb_uplink_neg, fx->hb.uplink = (Netpulse__UplinkState)-1)
MUT(m_many_samples, lim->max_samples = 1)
MUT(m_many_devices, lim->max_devices = 0)
MUT(m_many_flows, lim->max_flows = 0)
MUT(m_many_probes, lim->max_probes = 1)
MUT(m_many_events, lim->max_events = 1)
MUT(m_many_flow_entries, lim->max_flow_entries = 1)
MUT(m_if_name_long, fx->samples[1].if_name = str_1025)
MUT(m_alias_lim, lim->max_string = 8)
MUT(m_utf8_latin1, fx->samples[1].if_alias = "B\xfcro")
MUT(m_utf8_overlong, fx->samples[0].if_descr = "a\xc0\xaf")
MUT(m_utf8_surrogate, fx->device.sys_descr = "\xed\xa0\x80")
MUT(m_utf8_cut, fx->device.sys_name = "x\xe2\x82")
MUT(m_utf8_too_high, fx->probes[1].error = "\xf4\x90\x80\x80")
MUT(m_utf8_lone_cont, fx->events[0].detail = "\x80")
MUT(m_ctrl_tab, fx->events[1].detail = "a\tb")
MUT(m_ctrl_del, fx->talkers[1].address = "10.0.0.1\x7f")
MUT(m_ctrl_c1, fx->apps[0].name = "x\xc2\x85")
MUT(m_s_device, fx->samples[1].device = "")
MUT(m_s_device_null, fx->samples[1].device = NULL)
MUT(m_s_ifindex, fx->samples[0].if_index = 0)
MUT(m_s_time, fx->samples[0].time_ms = 0)
MUT(m_s_interval, fx->samples[0].interval_ms = -5)
MUT(m_s_interval0, fx->samples[0].interval_ms = 0)
MUT(m_s_bits, fx->samples[0].counter_bits = 16)
MUT(m_s_bits0, fx->samples[1].counter_bits = 0)
MUT(m_s_nan, fx->samples[0].in_bps = NAN)
MUT(m_s_inf, fx->samples[0].out_bps = INFINITY)
MUT(m_s_negrate, fx->samples[0].in_bps = -1)
MUT(m_s_rate_invalid, fx->samples[1].out_bps = 5)
MUT(m_s_32bit, {
    fx->samples[0].counter_bits = 32;
    fx->samples[0].in_octets = UINT64_C(1) << 32;
})
MUT(m_s_status_ok, fx->samples[1].rate_status = NETPULSE__RATE_STATUS__RATE_OK)
MUT(m_s_status_restart, fx->samples[0].rate_status = NETPULSE__RATE_STATUS__RATE_DEVICE_RESTART)
MUT(m_s_oper_neg, fx->samples[0].oper_status = (Netpulse__IfStatus)-3)
MUT(m_d_device, fx->device.device = "")
MUT(m_d_time, fx->device.time_ms = 1)
MUT(m_f_source, fx->summary.source = "")
MUT(m_f_start, fx->summary.start_ms = 0)
MUT(m_f_order, fx->summary.end_ms = T0 - 1)
MUT(m_f_proto_name, fx->protos[1].name = "")
MUT(m_f_app_name, fx->apps[0].name = NULL)
MUT(m_f_talker, fx->talkers[0].address = "")
MUT(m_f_src, fx->flows[0].src_addr = "")
MUT(m_f_dst, fx->flows[1].dst_addr = "")
MUT(m_f_proto, fx->flows[1].proto = 256)
MUT(m_f_port, fx->flows[0].dst_port = 65536)
MUT(m_f_vlan, fx->flows[0].vlan = 4095)
MUT(m_f_reason, fx->decode_error.reason = "")
MUT(m_p_name, fx->probes[0].name = "")
MUT(m_p_type, fx->probes[0].type = (Netpulse__ProbeType)-1)
MUT(m_p_time, fx->probes[1].time_ms = 0)
MUT(m_p_interval, fx->probes[1].interval_ms = -1)
MUT(m_p_received, fx->probes[0].received = 6)
MUT(m_e_type0, fx->events[1].type = NETPULSE__EVENT_TYPE__EVENT_UNKNOWN)
MUT(m_e_time, fx->events[0].time_ms = NP_WIRE_MIN_TIME_MS - 1)
MUT(m_e_if_device, fx->events[0].device = "")
MUT(m_e_if_subject, {
    fx->events[0].subject = "";
    fx->events[0].if_index = 0;
})
MUT(m_e_dev, {
    fx->events[0].type = NETPULSE__EVENT_TYPE__EVENT_DEVICE_RESTART;
    fx->events[0].device = NULL;
})
MUT(m_e_probe, {
    fx->events[0].type = NETPULSE__EVENT_TYPE__EVENT_PROBE_DOWN;
    fx->events[0].subject = "";
})
MUT(m_e_seq, fx->events[1].first_seq = 10)
MUT(m_e_range, fx->events[1].from_ms = T0)
MUT(m_e_from, fx->events[1].from_ms = 77)
/* Not representable on the wire: only np_wire_validate can see them. */
MUT(m_null_sample, fx->sample_ptrs[1] = NULL)
MUT(m_null_talker, fx->talker_ptrs[1] = NULL)
MUT(m_no_array, fx->batch.probes = NULL)
MUT(m_wrong_type, fx->sample_ptrs[0] = (Netpulse__InterfaceSample *)&fx->device)
MUT(m_wrong_hb, fx->batch.heartbeat = (Netpulse__Heartbeat *)&fx->decode_error)
MUT(m_not_batch, fx->batch.base.descriptor = &netpulse__heartbeat__descriptor)

struct validation_case {
    const char *name;
    mutate_fn mutate;
    int code;
    const char *msg; /* substring of err.msg */
    bool on_wire;    /* also check through pack + np_wire_decode */
};

static const struct validation_case validation_cases[] = {
    {"valid", m_none, 0, "", true},
    {"schema_version 0", m_schema0, NP_EPROTO, "batch: schema_version: not set", true},
    {"min_reader 2", m_min_reader2, NP_EVERSION, "needs a reader of wire version 2", true},
    {"agent_id empty", m_agent_empty, NP_EPROTO, "batch: agent_id: empty", true},
    {"agent_id long", m_agent_long, NP_EPROTO, "agent_id: 65 bytes, over the 64-byte", true},
    {"agent_id slash", m_agent_slash, NP_EPROTO, "agent_id: byte 6 (0x2f)", true},
    {"agent_id space", m_agent_space, NP_EPROTO, "agent_id: byte 6 (0x20)", true},
    {"agent_id dot", m_agent_dot, NP_EPROTO, "agent_id: must not start with '.'", true},
    {"agent_id dash", m_agent_dash, NP_EPROTO, "agent_id: must not start with '-'", true},
    {"seq 0", m_seq0, NP_EPROTO, "batch: seq: 0", true},
    {"created 0", m_created0, NP_EPROTO, "batch: created_ms: 0 is not a plausible", true},
    {"created 1970", m_created1970, NP_EPROTO, "created_ms: 86400000 is not", true},
    {"created 2100", m_created2100, NP_EPROTO, "created_ms: 4102444800000 is not", true},
    {"created negative", m_created_neg, NP_EPROTO, "created_ms: -1767225600000", true},
    {"agent_start 0", m_start0, NP_EPROTO, "batch: agent_start_ms: 0", true},
    {"agent_version control", m_version_ctrl, NP_EPROTO,
     "batch: agent_version: control character U+000A at byte 3", true},
    {"no heartbeat", m_no_hb, NP_EPROTO, "batch: heartbeat: missing", true},
    {"heartbeat oldest", m_hb_oldest, NP_EPROTO, "batch: heartbeat.spool_oldest_ms: 12", true},
    {"heartbeat since", m_hb_since, NP_EPROTO, "heartbeat.uplink_since_ms: -1", true},
    {"heartbeat uplink", m_hb_uplink_neg, NP_EPROTO, "heartbeat.uplink: negative enum", true},
    {"too many samples", m_many_samples, NP_ETOOBIG,
     "batch: samples: 2 entries, over the limit of 1", true},
    {"too many devices", m_many_devices, NP_ETOOBIG, "batch: devices: 1 entries", true},
    {"too many flows", m_many_flows, NP_ETOOBIG, "batch: flows: 1 entries", true},
    {"too many probes", m_many_probes, NP_ETOOBIG, "batch: probes: 2 entries", true},
    {"too many events", m_many_events, NP_ETOOBIG, "batch: events: 2 entries", true},
    {"too many flow entries", m_many_flow_entries, NP_ETOOBIG,
     "batch: flows[0].by_protocol: 2 entries, over the limit of 1", true},
    {"if_name too long", m_if_name_long, NP_EPROTO,
     "batch: samples[1].if_name: 1025 bytes, over the 1024-byte limit", true},
    {"max_string", m_alias_lim, NP_EPROTO,
     "batch: samples[0].device: 11 bytes, over the 8-byte limit", true},
    {"latin-1", m_utf8_latin1, NP_EPROTO, "batch: samples[1].if_alias: invalid UTF-8 at byte 1",
     true},
    {"overlong", m_utf8_overlong, NP_EPROTO, "samples[0].if_descr: invalid UTF-8 at byte 1", true},
    {"surrogate", m_utf8_surrogate, NP_EPROTO, "devices[0].sys_descr: invalid UTF-8 at byte 0",
     true},
    {"cut sequence", m_utf8_cut, NP_EPROTO, "devices[0].sys_name: invalid UTF-8 at byte 1", true},
    {"above U+10FFFF", m_utf8_too_high, NP_EPROTO, "probes[1].error: invalid UTF-8", true},
    {"lone continuation", m_utf8_lone_cont, NP_EPROTO, "events[0].detail: invalid UTF-8", true},
    {"tab", m_ctrl_tab, NP_EPROTO, "events[1].detail: control character U+0009 at byte 1", true},
    {"DEL", m_ctrl_del, NP_EPROTO, "flows[0].top_talkers[1].address: control character U+007F",
     true},
    {"C1", m_ctrl_c1, NP_EPROTO, "flows[0].by_app[0].name: control character U+0085", true},
    {"sample device", m_s_device, NP_EPROTO, "batch: samples[1].device: empty", true},
    {"sample device NULL", m_s_device_null, NP_EPROTO, "batch: samples[1].device: empty", true},
    {"sample if_index", m_s_ifindex, NP_EPROTO, "samples[0].if_index: 0", true},
    {"sample time", m_s_time, NP_EPROTO, "samples[0].time_ms: 0 is not a plausible", true},
    {"sample interval", m_s_interval, NP_EPROTO, "samples[0].interval_ms: -5 is negative", true},
    {"sample interval 0", m_s_interval0, NP_EPROTO, "samples[0].interval_ms: 0 although", true},
    {"sample bits", m_s_bits, NP_EPROTO, "samples[0].counter_bits: 16", true},
    {"sample bits 0", m_s_bits0, NP_EPROTO, "samples[1].counter_bits: 0", true},
    {"sample NaN", m_s_nan, NP_EPROTO, "samples[0].in_bps: nan is not a finite rate", true},
    {"sample inf", m_s_inf, NP_EPROTO, "samples[0].out_bps: inf is not a finite rate", true},
    {"sample negative rate", m_s_negrate, NP_EPROTO, "samples[0].in_bps: -1 is not", true},
    {"sample rate without valid", m_s_rate_invalid, NP_EPROTO,
     "samples[1].out_bps: 5 although rate_valid is false", true},
    {"sample 32-bit", m_s_32bit, NP_EPROTO, "samples[0]: octet counter above 2^32-1", true},
    {"sample status ok", m_s_status_ok, NP_EPROTO, "samples[1].rate_status: 1 contradicts", true},
    {"sample status restart", m_s_status_restart, NP_EPROTO,
     "samples[0].rate_status: 6 contradicts rate_valid=true", true},
    {"sample oper negative", m_s_oper_neg, NP_EPROTO, "samples[0].oper_status: negative", true},
    {"device name", m_d_device, NP_EPROTO, "batch: devices[0].device: empty", true},
    {"device time", m_d_time, NP_EPROTO, "devices[0].time_ms: 1 is not", true},
    {"flow source", m_f_source, NP_EPROTO, "batch: flows[0].source: empty", true},
    {"flow start", m_f_start, NP_EPROTO, "flows[0].start_ms: 0", true},
    {"flow order", m_f_order, NP_EPROTO, "flows[0]: end_ms 1767225599999 before start_ms", true},
    {"flow proto name", m_f_proto_name, NP_EPROTO, "flows[0].by_protocol[1].name: empty", true},
    {"flow app name", m_f_app_name, NP_EPROTO, "flows[0].by_app[0].name: empty", true},
    {"flow talker", m_f_talker, NP_EPROTO, "flows[0].top_talkers[0].address: empty", true},
    {"flow src", m_f_src, NP_EPROTO, "flows[0].top_flows[0].src_addr: empty", true},
    {"flow dst", m_f_dst, NP_EPROTO, "flows[0].top_flows[1].dst_addr: empty", true},
    {"flow proto", m_f_proto, NP_EPROTO, "flows[0].top_flows[1].proto: 256", true},
    {"flow port", m_f_port, NP_EPROTO, "flows[0].top_flows[0]: port 65536", true},
    {"flow vlan", m_f_vlan, NP_EPROTO, "flows[0].top_flows[0].vlan: 4095", true},
    {"flow reason", m_f_reason, NP_EPROTO, "flows[0].decode_errors[0].reason: empty", true},
    {"probe name", m_p_name, NP_EPROTO, "batch: probes[0].name: empty", true},
    {"probe type", m_p_type, NP_EPROTO, "probes[0].type: negative enum value -1", true},
    {"probe time", m_p_time, NP_EPROTO, "probes[1].time_ms: 0", true},
    {"probe interval", m_p_interval, NP_EPROTO, "probes[1].interval_ms: -1", true},
    {"probe received", m_p_received, NP_EPROTO, "probes[0]: received 6 > sent 5", true},
    {"event type", m_e_type0, NP_EPROTO, "batch: events[1].type: not set", true},
    {"event time", m_e_time, NP_EPROTO, "events[0].time_ms: 946684799999", true},
    {"event interface device", m_e_if_device, NP_EPROTO, "events[0].device: empty", true},
    {"event interface subject", m_e_if_subject, NP_EPROTO,
     "events[0]: interface event without subject or if_index", true},
    {"event device", m_e_dev, NP_EPROTO, "events[0].device: empty", true},
    {"event probe", m_e_probe, NP_EPROTO, "events[0].subject: empty", true},
    {"event seq range", m_e_seq, NP_EPROTO, "events[1]: first_seq 10 > last_seq 9", true},
    {"event time range", m_e_range, NP_EPROTO, "events[1]: from_ms 1767225600000 > to_ms", true},
    {"event from", m_e_from, NP_EPROTO, "events[1].from_ms: 77 is not", true},
    {"NULL sample", m_null_sample, NP_EPROTO, "batch: samples[1]: missing (NULL)", false},
    {"NULL talker", m_null_talker, NP_EPROTO, "batch: flows[0].top_talkers[1]: missing (NULL)",
     false},
    {"no array", m_no_array, NP_EPROTO, "batch: probes: 2 entries but no array", false},
    {"wrong message type", m_wrong_type, NP_EPROTO,
     "batch: samples[0]: not a netpulse.InterfaceSample message", false},
    {"wrong heartbeat type", m_wrong_hb, NP_EPROTO, "batch: heartbeat: not a netpulse.Heartbeat",
     false},
    {"not a batch", m_not_batch, NP_EPROTO, "batch: not a netpulse.Batch", false},
};

static void test_validation(void)
{
    for (size_t i = 0; i < sizeof validation_cases / sizeof validation_cases[0]; i++) {
        const struct validation_case *c = &validation_cases[i];
        struct fixture fx;
        struct np_wire_limits lim = np_wire_default_limits;
        struct np_err err = {0};
        fixture_init(&fx);
        c->mutate(&fx, &lim);
        int rc = np_wire_validate(&fx.batch, &lim, &err);
        if (rc != c->code || !strstr(err.msg, c->msg)) {
            fprintf(stderr, "validation case \"%s\": rc=%d msg=\"%s\"\n", c->name, rc, err.msg);
        }
        CHECK_INT(rc, c->code);
        CHECK_CONTAINS(err.msg, c->msg);
        CHECK_INT(err.code, c->code);

        /* np_wire_encode refuses the same batch with the same message. */
        uint8_t *enc = NULL;
        size_t enc_len = 1;
        struct np_err eerr = {0};
        int erc = np_wire_encode(&fx.batch, &enc, &enc_len, &eerr);
        if (lim.max_samples == np_wire_default_limits.max_samples &&
            lim.max_devices == np_wire_default_limits.max_devices &&
            lim.max_flows == np_wire_default_limits.max_flows &&
            lim.max_probes == np_wire_default_limits.max_probes &&
            lim.max_events == np_wire_default_limits.max_events &&
            lim.max_flow_entries == np_wire_default_limits.max_flow_entries &&
            lim.max_string == np_wire_default_limits.max_string) {
            CHECK_INT(erc, c->code);
            CHECK_STR(eerr.msg, err.msg);
            if (erc) {
                CHECK(enc == NULL);
                CHECK_INT(enc_len, 0);
            }
        }
        free(enc);

        if (!c->on_wire) {
            continue;
        }
        /* The same batch as a writer without checks would send it. */
        size_t len;
        uint8_t *buf = pack_raw(&fx.batch, &len);
        Netpulse__Batch *out = (Netpulse__Batch *)&fx; /* must be reset to NULL on error */
        struct np_err derr = {0};
        int drc = np_wire_decode(buf, len, &lim, &out, &derr);
        if (drc != c->code || !strstr(derr.msg, c->msg)) {
            fprintf(stderr, "decode case \"%s\": rc=%d msg=\"%s\"\n", c->name, drc, derr.msg);
        }
        CHECK_INT(drc, c->code);
        CHECK_CONTAINS(derr.msg, c->msg);
        CHECK(drc == 0 ? out != NULL : out == NULL);
        np_wire_free(drc == 0 ? out : NULL);
        free(buf);
    }
}

/* ---- hostile and broken input ---- */

static void test_truncated_and_flipped(void)
{
    struct fixture fx;
    struct np_err err = {0};
    uint8_t *buf = NULL;
    size_t len = 0;
    fixture_init(&fx);
    CHECK_INT(np_wire_encode(&fx.batch, &buf, &len, &err), 0);
    if (!buf) {
        return;
    }
    size_t rejected = 0, accepted = 0;
    for (size_t n = 0; n < len; n++) {
        /* A copy of exactly n bytes, so ASan sees any read past the end. */
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, buf, n);
        Netpulse__Batch *out = NULL;
        int rc = np_wire_decode(cut, n, NULL, &out, &err);
        if (rc == 0) {
            accepted++;
            CHECK(out != NULL);
            CHECK_INT(np_wire_validate(out, NULL, &err), 0);
        } else {
            rejected++;
            CHECK(out == NULL);
            CHECK(rc == NP_EPROTO || rc == NP_ETOOBIG);
            CHECK(strncmp(err.msg, "batch: ", 7) == 0);
        }
        np_wire_free(out);
        free(cut);
    }
    CHECK_INT(accepted + rejected, len);
    CHECK(rejected > len / 2);
    /* A cut inside the first sample: protobuf-c must see the bad length. */
    Netpulse__Batch *out = NULL;
    CHECK_INT(np_wire_decode(buf, len - 3, NULL, &out, &err), NP_EPROTO);
    char want[80];
    snprintf(want, sizeof want, "batch: truncated or malformed protobuf (%zu bytes)", len - 3);
    CHECK_STR(err.msg, want);

    /* Every byte flipped in turn: rejected or valid, never a crash. */
    for (size_t i = 0; i < len; i++) {
        for (int mask = 0x01; mask <= 0x80; mask <<= 7) {
            buf[i] ^= (uint8_t)mask;
            out = NULL;
            int rc = np_wire_decode(buf, len, NULL, &out, &err);
            CHECK(rc == 0 ? out != NULL && np_wire_validate(out, NULL, NULL) == 0 : out == NULL);
            np_wire_free(out);
            buf[i] ^= (uint8_t)mask;
        }
    }
    free(buf);
}

static void test_too_big(void)
{
    struct fixture fx;
    struct np_err err = {0};
    Netpulse__Batch *out = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    fixture_init(&fx);
    CHECK_INT(np_wire_encode(&fx.batch, &buf, &len, &err), 0);

    /* Refused before parsing: a limit below the (valid) batch. */
    struct np_wire_limits lim = np_wire_default_limits;
    lim.max_bytes = 100;
    CHECK_INT(np_wire_decode(buf, len, &lim, &out, &err), NP_ETOOBIG);
    char want[80];
    snprintf(want, sizeof want, "batch: %zu bytes, over the 100-byte limit", len);
    CHECK_STR(err.msg, want);
    CHECK(out == NULL);
    free(buf);

    /* The hard limit holds whatever the caller's limits say. */
    lim.max_bytes = SIZE_MAX;
    size_t huge_len = NP_WIRE_MAX_BATCH_BYTES + 1;
    uint8_t *huge = calloc(1, huge_len);
    CHECK_INT(np_wire_decode(huge, huge_len, &lim, &out, &err), NP_ETOOBIG);
    CHECK_CONTAINS(err.msg, "8388609 bytes, over the 8388608-byte limit");

    /* 2-byte empty samples would each become a struct of ~150 bytes. */
    size_t n = (size_t)4 << 20;
    for (size_t i = 0; i + 1 < n; i += 2) {
        huge[i] = 0x4a; /* field 9 (samples), length-delimited */
        huge[i + 1] = 0;
    }
    CHECK_INT(np_wire_decode(huge, n, NULL, &out, &err), NP_ETOOBIG);
    CHECK_CONTAINS(err.msg, "batch: decoding 4194304 bytes needs over 67108864 bytes of memory");
    CHECK(out == NULL);
    free(huge);

    /* A small budget on a normal batch. */
    fixture_init(&fx);
    CHECK_INT(np_wire_encode(&fx.batch, &buf, &len, &err), 0);
    lim = np_wire_default_limits;
    lim.max_decoded_bytes = 1000;
    CHECK_INT(np_wire_decode(buf, len, &lim, &out, &err), NP_ETOOBIG);
    CHECK_CONTAINS(err.msg, "needs over 1000 bytes of memory");
    lim.max_decoded_bytes = 64 << 10;
    CHECK_INT(np_wire_decode(buf, len, &lim, &out, &err), 0);
    np_wire_free(out);
    free(buf);

    /* Encoding over the hard limit: 3000 samples with 3 KiB of strings. */
    static char s1000[1001];
    memset(s1000, 'x', 1000);
    Netpulse__InterfaceSample **many = calloc(3000, sizeof *many);
    fixture_init(&fx);
    fx.samples[0].if_name = fx.samples[0].if_alias = fx.samples[0].if_descr = s1000;
    for (int i = 0; i < 3000; i++) {
        many[i] = &fx.samples[0];
    }
    fx.batch.samples = many;
    fx.batch.n_samples = 3000;
    buf = (uint8_t *)&fx;
    len = 1;
    CHECK_INT(np_wire_encode(&fx.batch, &buf, &len, &err), NP_ETOOBIG);
    CHECK_CONTAINS(err.msg, "batch: encodes to ");
    CHECK_CONTAINS(err.msg, "bytes, over the 8388608-byte limit");
    CHECK(buf == NULL && len == 0);
    free(many);
}

/* ---- versions ---- */

static void test_versions(void)
{
    const struct {
        uint32_t schema, min_reader;
        int code;
    } cases[] = {
        {1, 0, 0},           /* min_reader unset counts as 1 */
        {1, 1, 0},           /* today */
        {7, 1, 0},           /* a newer writer that only added fields */
        {7, 0, 0},           /* ditto, min_reader left unset */
        {7, 2, NP_EVERSION}, /* a newer writer that changed a meaning */
        {2, 2, NP_EVERSION}, /* the first such change */
        {9, 9, NP_EVERSION}, /* far future */
        {0, 1, NP_EPROTO},   /* no version at all */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fixture fx;
        struct np_err err = {0};
        Netpulse__Batch *out = NULL;
        size_t len;
        fixture_init(&fx);
        fx.batch.schema_version = cases[i].schema;
        fx.batch.min_reader_version = cases[i].min_reader;
        uint8_t *buf = pack_raw(&fx.batch, &len);
        int rc = np_wire_decode(buf, len, NULL, &out, &err);
        if (rc != cases[i].code) {
            fprintf(stderr, "version case %zu: %s\n", i, err.msg);
        }
        CHECK_INT(rc, cases[i].code);
        if (cases[i].code == NP_EVERSION) {
            char want[160];
            snprintf(want, sizeof want,
                     "batch: needs a reader of wire version %u or later (written by version %u);"
                     " this is version 1: upgrade the collector",
                     cases[i].min_reader, cases[i].schema);
            CHECK_STR(err.msg, want);
        }
        if (out) {
            CHECK_INT(out->schema_version, cases[i].schema);
            CHECK_INT(out->n_samples, 2);
        }
        np_wire_free(out);
        free(buf);
    }

    /* An older writer (fewer fields than this reader knows) reads as zeros:
     * simulated by a batch that sets only what version 1 requires. */
    Netpulse__Batch b = NETPULSE__BATCH__INIT;
    Netpulse__Heartbeat hb = NETPULSE__HEARTBEAT__INIT;
    Netpulse__InterfaceSample s = NETPULSE__INTERFACE_SAMPLE__INIT;
    Netpulse__InterfaceSample *sp = &s;
    b.schema_version = 1;
    b.agent_id = "s1";
    b.seq = 1;
    b.created_ms = T0;
    b.agent_start_ms = T0;
    b.heartbeat = &hb;
    s.device = "r1";
    s.if_index = 1;
    s.time_ms = T0;
    s.counter_bits = 32;
    b.n_samples = 1;
    b.samples = &sp;
    size_t len;
    uint8_t *buf = pack_raw(&b, &len);
    Netpulse__Batch *out = NULL;
    struct np_err err = {0};
    CHECK_INT(np_wire_decode(buf, len, NULL, &out, &err), 0);
    if (out) {
        CHECK_STR(out->samples[0]->if_alias, "");
        CHECK_U64(out->samples[0]->provisioned_bps, 0);
        CHECK_INT(out->samples[0]->rate_valid, 0);
    }
    np_wire_free(out);
    free(buf);
}

/* ---- unknown fields and enum values from newer writers ---- */

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static void test_unknown_fields(void)
{
    struct fixture fx;
    struct np_err err = {0};
    uint8_t *buf = NULL;
    size_t len = 0;
    fixture_init(&fx);
    fx.events[1].type = (Netpulse__EventType)99; /* an event type from the future */
    CHECK_INT(np_wire_encode(&fx.batch, &buf, &len, &err), 0);

    /* Append four fields this reader does not know, one per wire type. */
    uint8_t *big = malloc(len + 64);
    memcpy(big, buf, len);
    size_t n = len;
    n += put_varint(big + n, (1000u << 3) | 2); /* length-delimited */
    n += put_varint(big + n, 5);
    memcpy(big + n, "hello", 5);
    n += 5;
    n += put_varint(big + n, (99u << 3) | 0); /* varint */
    n += put_varint(big + n, UINT64_C(1) << 40);
    n += put_varint(big + n, (536870911u << 3) | 1); /* fixed64, highest field number */
    memset(big + n, 0xab, 8);
    n += 8;
    n += put_varint(big + n, (20u << 3) | 5); /* fixed32 */
    memset(big + n, 0xcd, 4);
    n += 4;

    /* And one inside a sample: concatenated protobuf messages merge, so a
     * second samples entry with an unknown field is appended the same way. */
    Netpulse__InterfaceSample s = fx.samples[0];
    s.if_index = 99;
    size_t slen = netpulse__interface_sample__get_packed_size(&s);
    uint8_t *sbuf = malloc(slen + 16);
    netpulse__interface_sample__pack(&s, sbuf);
    slen += put_varint(sbuf + slen, (77u << 3) | 0);
    slen += put_varint(sbuf + slen, 12345);
    big = realloc(big, n + slen + 16);
    n += put_varint(big + n, (9u << 3) | 2);
    n += put_varint(big + n, slen);
    memcpy(big + n, sbuf, slen);
    n += slen;
    free(sbuf);

    Netpulse__Batch *out = NULL;
    CHECK_INT(np_wire_decode(big, n, NULL, &out, &err), 0);
    CHECK_STR(err.msg, "");
    if (out) {
        CHECK_INT(out->base.n_unknown_fields, 4);
        CHECK_INT(out->n_samples, 3);
        CHECK_INT(out->samples[2]->if_index, 99);
        CHECK_INT(out->samples[2]->base.n_unknown_fields, 1);
        CHECK_STR(out->agent_id, "school-0412");
        CHECK_INT(out->events[1]->type, 99);
        CHECK_U64(out->events[1]->bytes, 65536);
    }
    np_wire_free(out);

    /* Field number 0 in an overlong tag (0x82 0x00): protobuf-c 1.4.1 takes
     * it as an unknown field but would refuse its own re-encoding of it. */
    const uint8_t field0[] = {0x82, 0x00, 0x00};
    memcpy(big, buf, len);
    memcpy(big + len, field0, sizeof field0);
    out = NULL;
    CHECK_INT(np_wire_decode(big, len + sizeof field0, NULL, &out, &err), NP_EPROTO);
    CHECK_STR(err.msg, "batch: field number 0 is invalid");
    CHECK(out == NULL);
    /* ... and inside the talker of an appended flow summary. */
    const uint8_t talker[] = {0x82, 0x00, 0x00, 0x0a, 0x01, 'x'}; /* field 0; address "x" */
    for (int bad = 1; bad >= 0; bad--) {
        uint8_t summary[64];
        size_t sum_len = 0;
        summary[sum_len++] = (1u << 3) | 2; /* source "w" */
        summary[sum_len++] = 1;
        summary[sum_len++] = 'w';
        summary[sum_len++] = 2u << 3; /* start_ms */
        sum_len += put_varint(summary + sum_len, (uint64_t)T0);
        summary[sum_len++] = 3u << 3; /* end_ms */
        sum_len += put_varint(summary + sum_len, (uint64_t)T0);
        sum_len += put_varint(summary + sum_len, (16u << 3) | 2); /* top_talkers */
        size_t skip = bad ? 0 : 3;
        summary[sum_len++] = (uint8_t)(sizeof talker - skip);
        memcpy(summary + sum_len, talker + skip, sizeof talker - skip);
        sum_len += sizeof talker - skip;
        memcpy(big, buf, len);
        n = len;
        big[n++] = (11u << 3) | 2; /* flows */
        big[n++] = (uint8_t)sum_len;
        memcpy(big + n, summary, sum_len);
        n += sum_len;
        out = NULL;
        int rc = np_wire_decode(big, n, NULL, &out, &err);
        if (bad) {
            CHECK_INT(rc, NP_EPROTO);
            CHECK_STR(err.msg, "batch: flows[1].top_talkers[0]: field number 0 is invalid");
        } else {
            /* The same summary without the bad field is valid. */
            CHECK_INT(rc, 0);
            if (out) {
                CHECK_STR(out->flows[1]->top_talkers[0]->address, "x");
                CHECK_U64(out->flows[1]->start_ms, T0);
            }
        }
        np_wire_free(out);
        out = NULL;
    }
    np_wire_free(out);
    free(big);
    free(buf);
}

/* ---- builder ---- */

static void test_builder(void)
{
    struct fixture fx;
    struct np_err err = {0};
    struct np_wire_builder *wb = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    Netpulse__Batch *out = NULL;

    CHECK_INT(np_wire_builder_new("bad id", "0.1.0", T0, NULL, &wb, &err), NP_EPROTO);
    CHECK_CONTAINS(err.msg, "agent_id: byte 3");
    CHECK(wb == NULL);
    CHECK_INT(np_wire_builder_new("s1", "0.1.0", 0, NULL, &wb, &err), NP_EPROTO);
    CHECK_CONTAINS(err.msg, "agent_start_ms: 0");
    np_wire_builder_free(NULL);

    fixture_init(&fx);
    CHECK_INT(np_wire_builder_new("school-0412", "0.1.0", T0 - 3600000, NULL, &wb, &err), 0);
    if (!wb) {
        return;
    }
    size_t empty_size = np_wire_builder_size(wb);
    CHECK(empty_size > 0 && empty_size < 128);

    /* An empty builder finishes into a heartbeat. */
    CHECK_INT(np_wire_builder_finish(wb, 1, T0, &buf, &len, &err), 0);
    CHECK(len <= empty_size && empty_size - len <= NP_WIRE_BUILDER_SLACK);
    CHECK_INT(np_wire_decode(buf, len, NULL, &out, &err), 0);
    if (out) {
        CHECK_INT(out->heartbeat->uplink, NETPULSE__UPLINK_STATE__UPLINK_UNKNOWN);
        CHECK_U64(out->seq, 1);
    }
    np_wire_free(out);
    free(buf);

    /* The fixture's items, added one by one, give the fixture's batch. */
    for (size_t i = 0; i < fx.batch.n_samples; i++) {
        CHECK_INT(np_wire_builder_add_sample(wb, fx.batch.samples[i], &err), 0);
    }
    CHECK_INT(np_wire_builder_add_device(wb, &fx.device, &err), 0);
    CHECK_INT(np_wire_builder_add_flow_summary(wb, &fx.summary, &err), 0);
    for (size_t i = 0; i < fx.batch.n_probes; i++) {
        CHECK_INT(np_wire_builder_add_probe(wb, fx.batch.probes[i], &err), 0);
    }
    for (size_t i = 0; i < fx.batch.n_events; i++) {
        CHECK_INT(np_wire_builder_add_event(wb, fx.batch.events[i], &err), 0);
    }
    np_wire_builder_set_heartbeat(wb, &fx.hb);
    CHECK_INT(np_wire_builder_count(wb), 8);
    size_t est = np_wire_builder_size(wb);
    CHECK_INT(np_wire_builder_finish(wb, 42, T0 + 10000, &buf, &len, &err), 0);
    CHECK(len <= est && est - len <= NP_WIRE_BUILDER_SLACK);
    uint8_t *ref = NULL;
    size_t ref_len = 0;
    CHECK_INT(np_wire_encode(&fx.batch, &ref, &ref_len, &err), 0);
    CHECK_INT(len, ref_len);
    CHECK(buf && ref && len == ref_len && memcmp(buf, ref, len) == 0);
    free(ref);
    free(buf);
    CHECK_U64(np_wire_builder_batch(wb)->seq, 42);

    /* The builder owns copies: changing the caller's structs changes nothing. */
    fx.samples[0].if_index = 1000;
    CHECK_INT(np_wire_builder_batch(wb)->samples[0]->if_index, 7);

    /* Invalid items are refused with their place and leave no trace. */
    size_t before = np_wire_builder_size(wb);
    Netpulse__InterfaceSample bad = fx.samples[0];
    bad.counter_bits = 0;
    CHECK_INT(np_wire_builder_add_sample(wb, &bad, &err), NP_EPROTO);
    CHECK_STR(err.msg, "batch: samples[2].counter_bits: 0, must be 32 or 64");
    Netpulse__FlowSummary bad_flow = fx.summary;
    fx.talker_ptrs[1] = NULL;
    CHECK_INT(np_wire_builder_add_flow_summary(wb, &bad_flow, &err), NP_EPROTO);
    CHECK_STR(err.msg, "batch: flows[1].top_talkers[1]: missing (NULL)");
    fx.talker_ptrs[1] = &fx.talkers[1];
    CHECK_INT(np_wire_builder_add_event(wb, NULL, &err), NP_EPROTO);
    CHECK_INT(np_wire_builder_count(wb), 8);
    CHECK_INT(np_wire_builder_size(wb), before);

    /* Reset keeps identity, drops items and heartbeat. */
    np_wire_builder_reset(wb);
    CHECK_INT(np_wire_builder_count(wb), 0);
    CHECK_INT(np_wire_builder_size(wb), empty_size);
    CHECK_STR(np_wire_builder_batch(wb)->agent_id, "school-0412");
    np_wire_builder_free(wb);
    wb = NULL;

    /* Strings from routers are cleaned, not refused. */
    struct np_wire_limits lim = np_wire_default_limits;
    lim.max_string = 9;
    CHECK_INT(np_wire_builder_new("s1", "", T0, &lim, &wb, &err), 0);
    if (!wb) {
        return;
    }
    const struct {
        const char *in, *want;
    } clean[] = {
        {"B\xfcro 1", "B?ro 1"},       /* Latin-1 */
        {"a\r\nb\tc", "a  b c"},       /* CRLF and tab */
        {"x\x01y\x7fz", "x?y?z"},      /* other C0, DEL */
        {"x\xc2\x85y", "x?y"},         /* C1 NEL */
        {"\xc0\xaf", "??"},            /* overlong */
        {"\xe2\x82", "??"},            /* cut sequence */
        {"äääää", "ääää"},             /* cut at a character boundary */
        {"123456789012", "123456789"}, /* cut */
        {"ok ✓", "ok ✓"},              /* unchanged */
    };
    for (size_t i = 0; i < sizeof clean / sizeof clean[0]; i++) {
        Netpulse__InterfaceSample s = fx.samples[0];
        s.device = "r1";
        s.if_name = "x";
        s.if_descr = "y";
        s.if_alias = (char *)clean[i].in;
        CHECK_INT(np_wire_builder_add_sample(wb, &s, &err), 0);
        const Netpulse__Batch *bb = np_wire_builder_batch(wb);
        if (bb->n_samples == i + 1) {
            CHECK_STR(bb->samples[i]->if_alias, clean[i].want);
        }
    }
    np_wire_builder_free(wb);
    wb = NULL;

    /* Full by count, then full by size. */
    lim = np_wire_default_limits;
    lim.max_events = 2;
    lim.max_bytes = 600;
    CHECK_INT(np_wire_builder_new("s1", "0.1.0", T0, &lim, &wb, &err), 0);
    if (!wb) {
        return;
    }
    CHECK_INT(np_wire_builder_add_event(wb, &fx.events[0], &err), 0);
    CHECK_INT(np_wire_builder_add_event(wb, &fx.events[1], &err), 0);
    CHECK_INT(np_wire_builder_add_event(wb, &fx.events[1], &err), NP_ETOOBIG);
    CHECK_STR(err.msg, "batch: full: 2 events entries, the limit");
    int rc = 0;
    size_t added = 0;
    while ((rc = np_wire_builder_add_sample(wb, &fx.samples[1], &err)) == 0) {
        added++;
        CHECK(np_wire_builder_size(wb) <= 600);
    }
    CHECK_INT(rc, NP_ETOOBIG);
    CHECK_CONTAINS(err.msg, "batch: full: adding samples[");
    CHECK_CONTAINS(err.msg, "over the 600-byte limit");
    CHECK(added >= 1);
    /* The largest heartbeat set after the last add still fits. */
    Netpulse__Heartbeat big_hb = NETPULSE__HEARTBEAT__INIT;
    big_hb.uplink = NETPULSE__UPLINK_STATE__UPLINK_DOWN;
    big_hb.spool_batches = big_hb.spool_bytes = UINT64_MAX;
    big_hb.spool_oldest_ms = big_hb.uplink_since_ms = NP_WIRE_MAX_TIME_MS - 1;
    np_wire_builder_set_heartbeat(wb, &big_hb);
    CHECK(np_wire_builder_size(wb) <= 600);
    CHECK_INT(np_wire_builder_finish(wb, UINT64_MAX, NP_WIRE_MAX_TIME_MS - 1, &buf, &len, &err), 0);
    CHECK(len <= 600);
    free(buf);
    np_wire_builder_free(wb);
}

int main(void)
{
    memset(str_1025, 'n', 1025);
    memset(str_65, 'a', 65);
    test_round_trip();
    test_heartbeat_only();
    test_validation();
    test_truncated_and_flipped();
    test_too_big();
    test_versions();
    test_unknown_fields();
    test_builder();
    return check_done("test_wire");
}
