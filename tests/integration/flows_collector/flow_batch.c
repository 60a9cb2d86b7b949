/* flow_batch: helper of the flows_collector test (issue 6, collector side).
 *
 *   flow_batch OUT AGENT SEQ SOURCE END_S INTERVAL_S PCAP
 *
 * Runs PCAP through the agent's own aggregator (flow_agg; local prefixes
 * 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fd00::/8; privacy by prefix,
 * /24 and /64) and adds its summary with np_flow_wire_add -- exactly what an
 * agent's uplink sends -- for [pcap SOURCE] over (END_S - INTERVAL_S, END_S],
 * then writes the encoded batch to OUT. Prints the summary as the wire
 * carries it (JSON: by_app, bytes_in, bytes_out, top_talkers, top_flows) for
 * the test to compare with what the collector stored. */
#include "flow/flow_agg.h"
#include "flow/flow_report.h"
#include "flow/flow_wire.h"

#include "netpulse/wire.h"

#include <jansson.h>
#include <pcap/pcap.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const locals[] = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8"};
#define N_LOCALS (sizeof locals / sizeof locals[0])

struct ctx {
    struct np_flow_agg *agg;
    int dlt;
};

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
    struct ctx *c = (struct ctx *)user;
    uint64_t ts = (uint64_t)h->ts.tv_sec * 1000000u + (uint64_t)h->ts.tv_usec;
    np_flow_agg_packet(c->agg, c->dlt, ts, bytes, h->caplen, h->len);
}

static int num(const char *s, long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end) {
        fprintf(stderr, "flow_batch: not a number: %s\n", s);
        return -1;
    }
    *out = v;
    return 0;
}

static json_t *summary_json(const Netpulse__FlowSummary *f)
{
    json_t *apps = json_object(), *talkers = json_array(), *flows = json_array();
    for (size_t i = 0; i < f->n_by_app; i++) {
        json_object_set_new(apps, f->by_app[i]->name,
                            json_integer((json_int_t)f->by_app[i]->bytes));
    }
    for (size_t i = 0; i < f->n_top_talkers; i++) {
        const Netpulse__Talker *t = f->top_talkers[i];
        json_array_append_new(talkers, json_pack("{s:s,s:I,s:I}", "address", t->address, "bytes_in",
                                                 (json_int_t)t->bytes_in, "bytes_out",
                                                 (json_int_t)t->bytes_out));
    }
    for (size_t i = 0; i < f->n_top_flows; i++) {
        const Netpulse__Flow *w = f->top_flows[i];
        json_array_append_new(flows, json_pack("{s:s,s:s,s:I}", "src", w->src_addr, "dst",
                                               w->dst_addr, "bytes", (json_int_t)w->bytes));
    }
    return json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:o}", "source", f->source, "start_ms",
                     (json_int_t)f->start_ms, "end_ms", (json_int_t)f->end_ms, "bytes",
                     (json_int_t)f->bytes, "bytes_in", (json_int_t)f->bytes_in, "bytes_out",
                     (json_int_t)f->bytes_out, "by_app", apps, "top_talkers", talkers, "top_flows",
                     flows);
}

int main(int argc, char **argv)
{
    long long seq, end_s, interval_s;
    if (argc != 8 || num(argv[3], &seq) || num(argv[5], &end_s) || num(argv[6], &interval_s)) {
        fprintf(stderr, "usage: flow_batch OUT AGENT SEQ SOURCE END_S INTERVAL_S PCAP\n");
        return 2;
    }
    struct np_prefix prefixes[N_LOCALS];
    for (size_t i = 0; i < N_LOCALS; i++) {
        if (np_prefix_parse(locals[i], &prefixes[i]) != 0) {
            return 1;
        }
    }
    struct np_flow_agg_config ac = {
        .max_flows = 65536, .sample = 1, .local = prefixes, .n_local = N_LOCALS};
    struct ctx c = {NULL, 0};
    char errbuf[PCAP_ERRBUF_SIZE];
    if (np_flow_agg_new(&ac, &c.agg) != 0) {
        return 1;
    }
    pcap_t *p = pcap_open_offline(argv[7], errbuf);
    if (!p) {
        fprintf(stderr, "flow_batch: %s\n", errbuf);
        return 1;
    }
    c.dlt = pcap_datalink(p);
    while (pcap_dispatch(p, -1, on_packet, (u_char *)&c) > 0) {
    }
    pcap_close(p);

    struct np_flow_report_opts opts = {
        .privacy = NP_PRIVACY_PREFIX, .prefix_v4 = 24, .prefix_v6 = 64, .top_n = 10};
    struct np_err err = {0};
    struct np_wire_builder *b = NULL;
    int64_t end_ms = (int64_t)end_s * 1000;
    uint8_t *out = NULL;
    size_t len = 0;
    int rc = 1;
    if (np_wire_builder_new(argv[2], "0.1.0-test", end_ms - 3600000, NULL, &b, &err) != 0 ||
        np_flow_wire_add(b, argv[4], c.agg, &opts, end_ms - (int64_t)interval_s * 1000, end_ms,
                         &err) != 0 ||
        np_wire_builder_finish(b, (uint64_t)seq, end_ms + 500, &out, &len, &err) != 0) {
        fprintf(stderr, "flow_batch: %s\n", err.msg);
        goto out;
    }
    const Netpulse__Batch *batch = np_wire_builder_batch(b);
    json_t *doc = summary_json(batch->flows[0]);
    FILE *f = fopen(argv[1], "wb");
    if (!doc || !f || fwrite(out, 1, len, f) != len || fclose(f) != 0 ||
        json_dumpf(doc, stdout, JSON_COMPACT) != 0) {
        fprintf(stderr, "flow_batch: cannot write\n");
    } else {
        putchar('\n');
        rc = 0;
    }
    json_decref(doc);
out:
    free(out);
    np_wire_builder_free(b);
    np_flow_agg_free(c.agg);
    return rc;
}
