#include "flow_wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Everything one summary points to, freed together once the builder has
 * copied it. */
struct wire_parts {
    Netpulse__NamedCount counts[256 + NP_APP_COUNT];
    Netpulse__NamedCount *protos[256];
    Netpulse__NamedCount *apps[NP_APP_COUNT];
    char proto_names[256][8];
    Netpulse__DecodeError errors[NP_PKT_STATUS_COUNT];
    Netpulse__DecodeError *error_ptrs[NP_PKT_STATUS_COUNT];
    struct np_flow_talker *talkers; /* from np_flow_report_talkers */
    Netpulse__Talker *talker_msgs;
    Netpulse__Talker **talker_ptrs;
    const struct np_flow **top; /* from np_flow_report_top_flows */
    Netpulse__Flow *flow_msgs;
    Netpulse__Flow **flow_ptrs;
    char (*flow_addrs)[2][64];
};

static void parts_free(struct wire_parts *p)
{
    if (!p) {
        return;
    }
    free(p->talkers);
    free(p->talker_msgs);
    free(p->talker_ptrs);
    free(p->top);
    free(p->flow_msgs);
    free(p->flow_ptrs);
    free(p->flow_addrs);
    free(p);
}

static void named(Netpulse__NamedCount *m, const char *name, const struct np_flow_counter *c)
{
    netpulse__named_count__init(m);
    m->name = (char *)name; /* the builder copies; never written through */
    m->bytes = c->bytes;
    m->packets = c->packets;
}

static int add_talkers(struct wire_parts *p, const struct np_flow_agg *agg,
                       const struct np_flow_report_opts *opts, Netpulse__FlowSummary *f)
{
    size_t n = 0;
    if (np_flow_report_talkers(agg, opts, &p->talkers, &n) != 0) {
        return -ENOMEM;
    }
    if (n > NP_FLOW_WIRE_MAX_ENTRIES) {
        n = NP_FLOW_WIRE_MAX_ENTRIES;
    }
    p->talker_msgs = calloc(n ? n : 1, sizeof *p->talker_msgs);
    p->talker_ptrs = calloc(n ? n : 1, sizeof *p->talker_ptrs);
    if (!p->talker_msgs || !p->talker_ptrs) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        Netpulse__Talker *t = &p->talker_msgs[i];
        netpulse__talker__init(t);
        t->address = p->talkers[i].host;
        t->bytes_in = p->talkers[i].bytes_in;
        t->bytes_out = p->talkers[i].bytes_out;
        t->packets = p->talkers[i].packets;
        p->talker_ptrs[i] = t;
    }
    f->top_talkers = p->talker_ptrs;
    f->n_top_talkers = n;
    return 0;
}

static int add_flows(struct wire_parts *p, const struct np_flow_agg *agg,
                     const struct np_flow_report_opts *opts, Netpulse__FlowSummary *f)
{
    size_t n = 0;
    size_t top_n = opts->top_n < NP_FLOW_WIRE_MAX_ENTRIES ? opts->top_n : NP_FLOW_WIRE_MAX_ENTRIES;
    if (np_flow_report_top_flows(agg, top_n, &p->top, &n) != 0) {
        return -ENOMEM;
    }
    p->flow_msgs = calloc(n ? n : 1, sizeof *p->flow_msgs);
    p->flow_ptrs = calloc(n ? n : 1, sizeof *p->flow_ptrs);
    p->flow_addrs = calloc(n ? n : 1, sizeof *p->flow_addrs);
    if (!p->flow_msgs || !p->flow_ptrs || !p->flow_addrs) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const struct np_flow *fl = p->top[i];
        Netpulse__Flow *m = &p->flow_msgs[i];
        netpulse__flow__init(m);
        np_flow_addr_name(agg, opts, fl->key.family, fl->key.src, p->flow_addrs[i][0],
                          sizeof p->flow_addrs[i][0]);
        np_flow_addr_name(agg, opts, fl->key.family, fl->key.dst, p->flow_addrs[i][1],
                          sizeof p->flow_addrs[i][1]);
        m->proto = fl->key.proto;
        m->src_addr = p->flow_addrs[i][0];
        m->dst_addr = p->flow_addrs[i][1];
        m->src_port = fl->key.sport;
        m->dst_port = fl->key.dport;
        /* The wire knows 1..4094 and 0 for untagged; a priority tag (0) or
         * the reserved 4095 is reported as untagged. */
        m->vlan = fl->key.vlan >= 1 && fl->key.vlan <= 4094 ? fl->key.vlan : 0;
        m->bytes = fl->bytes;
        m->packets = fl->packets;
        p->flow_ptrs[i] = m;
    }
    f->top_flows = p->flow_ptrs;
    f->n_top_flows = n;
    return 0;
}

int np_flow_wire_add(struct np_wire_builder *b, const char *source, const struct np_flow_agg *agg,
                     const struct np_flow_report_opts *opts, int64_t start_ms, int64_t end_ms,
                     struct np_err *err)
{
    const struct np_flow_stats *st = &agg->stats;
    struct wire_parts *p = calloc(1, sizeof *p);
    if (!p) {
        return np_err_set(err, -ENOMEM, "flow: out of memory building the flow summary");
    }
    Netpulse__FlowSummary f;
    netpulse__flow_summary__init(&f);
    f.source = (char *)source;
    if (start_ms == 0 && end_ms == 0) {
        start_ms = (int64_t)(st->first_us / 1000);
        end_ms = (int64_t)(st->last_us / 1000);
    }
    f.start_ms = start_ms;
    f.end_ms = end_ms;
    f.packets = st->total.packets;
    f.bytes = st->total.bytes;
    f.bytes_in = st->dir[NP_DIR_IN].bytes;
    f.bytes_out = st->dir[NP_DIR_OUT].bytes;
    f.packets_in = st->dir[NP_DIR_IN].packets;
    f.packets_out = st->dir[NP_DIR_OUT].packets;
    f.dropped_kernel = opts->kernel_dropped;
    f.dropped_iface = opts->if_dropped;
    f.evicted_flows = np_flow_table_evicted(agg->table);
    f.sample_rate = agg->cfg.sample;

    size_t nc = 0;
    for (unsigned proto = 0; proto < 256; proto++) {
        if (st->proto[proto].packets) {
            const char *name =
                np_flow_proto_name(proto, p->proto_names[proto], sizeof p->proto_names[proto]);
            named(&p->counts[nc], name, &st->proto[proto]);
            p->protos[f.n_by_protocol++] = &p->counts[nc++];
        }
    }
    f.by_protocol = p->protos;
    for (int a = 0; a < NP_APP_COUNT; a++) {
        if (st->app[a].packets) {
            named(&p->counts[nc], np_flow_app_name((enum np_flow_app)a), &st->app[a]);
            p->apps[f.n_by_app++] = &p->counts[nc++];
        }
    }
    f.by_app = p->apps;
    for (int r = NP_PKT_DROP_FIRST; r < NP_PKT_STATUS_COUNT; r++) {
        if (st->drop[r].packets) {
            Netpulse__DecodeError *e = &p->errors[f.n_decode_errors];
            netpulse__decode_error__init(e);
            e->reason = (char *)np_pkt_status_name((enum np_pkt_status)r);
            e->count = st->drop[r].packets;
            p->error_ptrs[f.n_decode_errors++] = e;
        }
    }
    f.decode_errors = p->error_ptrs;

    int rc = add_talkers(p, agg, opts, &f);
    if (rc == 0) {
        rc = add_flows(p, agg, opts, &f);
    }
    if (rc != 0) {
        np_err_set(err, rc, "flow: out of memory building the flow summary");
        goto out_free;
    }
    rc = np_wire_builder_add_flow_summary(b, &f, err);
out_free:
    parts_free(p);
    return rc;
}
