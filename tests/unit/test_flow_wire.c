/* Unit test of agent/flow/flow_wire: an aggregator's interval converted into
 * a Netpulse__FlowSummary, through a batch builder, np_wire_builder_finish
 * (encode) and np_wire_decode, and compared with the aggregator and with the
 * JSON report's lists: totals, direction, protocols, applications, decode
 * errors, top talkers and flows (privacy applied), VLAN, sample rate, drops. */
#include "flow/flow_agg.h"
#include "flow/flow_report.h"
#include "flow/flow_wire.h"

#include "netpulse/wire.h"

#include "check.h"

#include <stdlib.h>
#include <string.h>

#define T0 INT64_C(1800000000000) /* 2027-01-15 */

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* Ethernet (+ one 802.1Q tag when vlan) IPv4 UDP/TCP frame; returns caplen. */
static uint32_t frame4(uint8_t *buf, const uint8_t src[4], const uint8_t dst[4], uint8_t proto,
                       uint16_t sport, uint16_t dport, uint16_t vlan, uint32_t wire)
{
    memset(buf, 0, 128);
    uint8_t *p = buf + 12;
    if (vlan) {
        put16(p, 0x8100);
        put16(p + 2, vlan);
        p += 4;
    }
    put16(p, 0x0800);
    uint8_t *ip = p + 2;
    uint32_t l2 = (uint32_t)(ip - buf);
    ip[0] = 0x45;
    put16(ip + 2, wire - l2);
    ip[8] = 64;
    ip[9] = proto;
    memcpy(ip + 12, src, 4);
    memcpy(ip + 16, dst, 4);
    put16(ip + 20, sport);
    put16(ip + 22, dport);
    if (proto == 6) {
        ip[32] = 0x50;
    } else {
        put16(ip + 24, wire - l2 - 20);
    }
    return wire < 128 ? wire : 128;
}

static const Netpulse__NamedCount *find_named(Netpulse__NamedCount **list, size_t n,
                                              const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i]->name, name) == 0) {
            return list[i];
        }
    }
    return NULL;
}

/* Finishes wb's batch and decodes it again; *out freed with np_wire_free. */
static void round_trip(struct np_wire_builder *wb, Netpulse__Batch **out)
{
    struct np_err err = {0};
    uint8_t *buf = NULL;
    size_t len = 0;
    *out = NULL;
    CHECK_INT(np_wire_builder_finish(wb, 7, T0 + 60000, &buf, &len, &err), 0);
    if (!buf) {
        fprintf(stderr, "finish: %s\n", err.msg);
        return;
    }
    CHECK_INT(np_wire_decode(buf, len, NULL, out, &err), 0);
    free(buf);
}

static void test_round_trip(void)
{
    static const uint8_t local_a[4] = {10, 1, 2, 3}, local_b[4] = {10, 1, 2, 77};
    static const uint8_t remote[4] = {198, 51, 100, 7}, dns[4] = {192, 0, 2, 53};
    struct np_prefix local;
    CHECK_INT(np_prefix_parse("10.0.0.0/8", &local), 0);
    struct np_flow_agg_config cfg = {.max_flows = 64, .sample = 1, .local = &local, .n_local = 1};
    struct np_flow_agg *agg = NULL;
    struct np_wire_builder *wb = NULL;
    Netpulse__Batch *batch = NULL;
    struct np_flow_talker *talkers = NULL;
    const struct np_flow **top = NULL;
    struct np_err err = {0};
    CHECK_INT(np_flow_agg_new(&cfg, &agg), 0);
    CHECK_INT(np_wire_builder_new("school-0412", "0.1.0", T0 - 3600000, NULL, &wb, &err), 0);
    if (!agg || !wb) {
        goto out_free;
    }
    uint8_t f[128];
    uint64_t ts = (uint64_t)T0 * 1000;
    for (int i = 0; i < 30; i++) { /* web download, in */
        uint32_t cap = frame4(f, remote, local_a, 6, 443, 50000, 0, 1514);
        np_flow_agg_packet(agg, NP_DLT_EN10MB, ts += 1000, f, cap, 1514);
    }
    for (int i = 0; i < 10; i++) { /* its ACKs, out */
        uint32_t cap = frame4(f, local_a, remote, 6, 50000, 443, 0, 66);
        np_flow_agg_packet(agg, NP_DLT_EN10MB, ts += 1000, f, cap, 66);
    }
    for (int i = 0; i < 5; i++) { /* DNS on VLAN 20, out */
        uint32_t cap = frame4(f, local_b, dns, 17, 40000, 53, 20, 90);
        np_flow_agg_packet(agg, NP_DLT_EN10MB, ts += 1000, f, cap, 90);
    }
    /* One frame cut inside its IP header: a decode error. */
    frame4(f, remote, local_a, 6, 443, 50000, 0, 1514);
    np_flow_agg_packet(agg, NP_DLT_EN10MB, ts += 1000, f, 20, 1514);

    struct np_flow_report_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.prefix_v4 = 24;
    opts.prefix_v6 = 64;
    opts.top_n = 10;
    opts.live = true;
    opts.kernel_dropped = 3;
    opts.if_dropped = 1;
    CHECK_INT(np_flow_wire_add(wb, "wan", agg, &opts, T0, T0 + 60000, &err), 0);
    round_trip(wb, &batch);
    CHECK(batch != NULL && batch->n_flows == 1);
    if (!batch || batch->n_flows != 1) {
        goto out_free;
    }
    const Netpulse__FlowSummary *s = batch->flows[0];
    const struct np_flow_stats *st = &agg->stats;
    CHECK_STR(s->source, "wan");
    CHECK_INT(s->start_ms, T0);
    CHECK_INT(s->end_ms, T0 + 60000);
    CHECK_U64(s->packets, 46);
    CHECK_U64(s->bytes, 30 * 1514 + 10 * 66 + 5 * 90 + 1514);
    CHECK_U64(s->packets_in, 30);
    CHECK_U64(s->bytes_in, 30 * 1514);
    CHECK_U64(s->packets_out, 15);
    CHECK_U64(s->bytes_out, 10 * 66 + 5 * 90);
    CHECK_U64(s->dropped_kernel, 3);
    CHECK_U64(s->dropped_iface, 1);
    CHECK_U64(s->evicted_flows, 0);
    CHECK_U64(s->sample_rate, 1);

    const Netpulse__NamedCount *c = find_named(s->by_protocol, s->n_by_protocol, "tcp");
    CHECK(c && c->packets == st->proto[6].packets && c->bytes == st->proto[6].bytes);
    c = find_named(s->by_protocol, s->n_by_protocol, "udp");
    CHECK(c && c->packets == 5 && c->bytes == 450);
    CHECK_INT(s->n_by_protocol, 2);
    c = find_named(s->by_app, s->n_by_app, "web");
    CHECK(c && c->packets == 40);
    c = find_named(s->by_app, s->n_by_app, "dns");
    CHECK(c && c->packets == 5);
    CHECK_INT(s->n_by_app, 2);
    CHECK_INT(s->n_decode_errors, 1);
    if (s->n_decode_errors == 1) {
        CHECK_U64(s->decode_errors[0]->count, 1);
        CHECK(s->decode_errors[0]->reason[0] != '\0');
    }

    /* Talkers and flows: as the JSON report lists them, privacy applied. */
    size_t nt = 0, nf = 0;
    CHECK_INT(np_flow_report_talkers(agg, &opts, &talkers, &nt), 0);
    CHECK_INT(np_flow_report_top_flows(agg, opts.top_n, &top, &nf), 0);
    CHECK_INT(s->n_top_talkers, nt);
    for (size_t i = 0; i < nt && i < s->n_top_talkers; i++) {
        CHECK_STR(s->top_talkers[i]->address, talkers[i].host);
        CHECK_U64(s->top_talkers[i]->bytes_in, talkers[i].bytes_in);
        CHECK_U64(s->top_talkers[i]->bytes_out, talkers[i].bytes_out);
        CHECK_U64(s->top_talkers[i]->packets, talkers[i].packets);
        CHECK(strstr(s->top_talkers[i]->address, "10.1.2.3") == NULL);
        CHECK(strstr(s->top_talkers[i]->address, "10.1.2.77") == NULL);
    }
    /* Both local hosts as one /24: 46080 + 450 bytes, ahead of the remote server. */
    CHECK(s->n_top_talkers == 3 && strcmp(s->top_talkers[0]->address, "10.1.2.0/24") == 0);
    CHECK_INT(s->n_top_flows, 3);
    for (size_t i = 0; i < nf && i < s->n_top_flows; i++) {
        const Netpulse__Flow *w = s->top_flows[i];
        CHECK_U64(w->bytes, top[i]->bytes);
        CHECK_U64(w->packets, top[i]->packets);
        CHECK_INT(w->proto, top[i]->key.proto);
        CHECK_INT(w->src_port, top[i]->key.sport);
        CHECK_INT(w->dst_port, top[i]->key.dport);
    }
    if (s->n_top_flows == 3) {
        CHECK_STR(s->top_flows[0]->src_addr, "198.51.100.7");
        CHECK_STR(s->top_flows[0]->dst_addr, "10.1.2.0/24");
        CHECK_INT(s->top_flows[0]->vlan, 0);
        CHECK_INT(s->top_flows[2]->vlan, 20); /* DNS: 450 bytes, the smallest */
        CHECK_STR(s->top_flows[2]->dst_addr, "192.0.2.53");
    }
out_free:
    free(talkers);
    free(top);
    np_wire_free(batch);
    np_wire_builder_free(wb);
    np_flow_agg_free(agg);
}

/* An empty interval still goes out (a quiet link is information); times 0/0
 * on an empty aggregator are refused by the wire's plausibility check; top_n
 * over the wire's list limit is capped. */
static void test_empty_and_limits(void)
{
    struct np_flow_agg_config cfg = {.max_flows = 16, .sample = 10, .local = NULL, .n_local = 0};
    struct np_flow_agg *agg = NULL;
    struct np_wire_builder *wb = NULL;
    Netpulse__Batch *batch = NULL;
    struct np_err err = {0};
    CHECK_INT(np_flow_agg_new(&cfg, &agg), 0);
    CHECK_INT(np_wire_builder_new("school-0412", "0.1.0", T0 - 3600000, NULL, &wb, &err), 0);
    if (!agg || !wb) {
        goto out_free;
    }
    struct np_flow_report_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.top_n = 10000;
    CHECK_INT(np_flow_wire_add(wb, "wan", agg, &opts, 0, 0, &err), NP_EPROTO);
    CHECK_CONTAINS(err.msg, "start_ms");
    CHECK_INT(np_wire_builder_count(wb), 0);
    CHECK_INT(np_flow_wire_add(wb, "wan", agg, &opts, T0, T0 + 60000, &err), 0);
    round_trip(wb, &batch);
    if (batch && batch->n_flows == 1) {
        CHECK_U64(batch->flows[0]->packets, 0);
        CHECK_U64(batch->flows[0]->sample_rate, 10);
        CHECK_INT(batch->flows[0]->n_top_flows, 0);
        CHECK_INT(batch->flows[0]->n_by_protocol, 0);
    } else {
        CHECK(!"no summary decoded");
    }
out_free:
    np_wire_free(batch);
    np_wire_builder_free(wb);
    np_flow_agg_free(agg);
}

int main(void)
{
    test_round_trip();
    test_empty_and_limits();
    return check_done("test_flow_wire");
}
