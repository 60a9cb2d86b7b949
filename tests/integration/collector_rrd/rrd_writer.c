/* Drives rrd_store for run.sh: writes known batches (through librrd or a real
 * rrdcached), prints the write counters, and fetches series as JSON.
 *
 *   collector_rrd_writer write DATA_DIR DAEMON T0
 *   collector_rrd_writer fetch DATA_DIR DAEMON SITE DEVICE IFACE CF FROM TO STEP
 * DAEMON is "-" for librrd directly. T0 is a wall-clock second aligned to an
 * hour; samples are every 10 s from T0 + 10. */
#include "rrd_store.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SITE "school-0412"

static int64_t parse_i64(const char *s)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end) {
        fprintf(stderr, "not a number: %s\n", s);
        exit(2);
    }
    return v;
}

/* Batch 1: 30 minutes of samples of two interfaces at 10 s, and one probe.
 *  - edge ge-0/0/0: in 1 Gbps (1.2 Gbps at minute 7, for the MAX check), out
 *    250 Mbps, oper up; the sample at minute 12 has no valid rate
 *    (discontinuity): unknown rates, oper still written.
 *  - edge "../evil name": in 5 Gbps with ifSpeed 100 Mbps: must be kept, not
 *    capped; its name must stay inside the site folder.
 *  - probe upstream: rtt 12.5 ms, 1 of 4 lost, ok. */
static int write_first(struct np_rrd_store *store, int64_t t0)
{
    enum { N = 180 };
    static Netpulse__InterfaceSample s[2 * N];
    static Netpulse__InterfaceSample *sp[2 * N];
    static Netpulse__ProbeResult p[N];
    static Netpulse__ProbeResult *pp[N];
    Netpulse__Batch b = NETPULSE__BATCH__INIT;
    struct np_rrd_write_stats st = {0};
    struct np_err err = {0};
    int ret;

    for (int i = 0; i < N; i++) {
        int64_t t = t0 + 10 * (i + 1);
        Netpulse__InterfaceSample *a = &s[2 * i], *c = &s[2 * i + 1];
        netpulse__interface_sample__init(a);
        netpulse__interface_sample__init(c);
        a->device = "edge";
        a->if_name = "ge-0/0/0";
        a->if_index = 1;
        a->time_ms = t * 1000;
        a->interval_ms = 10000;
        a->rate_valid = i != 71;
        a->in_bps = i == 71 ? 0 : (i >= 36 && i < 42) ? 1.2e9 : 1e9;
        a->out_bps = i == 71 ? 0 : 2.5e8;
        a->oper_status = NETPULSE__IF_STATUS__IF_STATUS_UP;
        a->speed_bps = 1000000000;
        c->device = "edge";
        c->if_name = "../evil name";
        c->if_index = 2;
        c->time_ms = t * 1000 + 250; /* sub-second part is dropped */
        c->interval_ms = 10000;
        c->rate_valid = 1;
        c->in_bps = 5e9;
        c->out_bps = 1e6;
        c->oper_status = NETPULSE__IF_STATUS__IF_STATUS_DOWN;
        c->speed_bps = 100000000;
        /* The batch lists them newest first: the store must sort. */
        sp[2 * (N - 1 - i)] = a;
        sp[2 * (N - 1 - i) + 1] = c;
        netpulse__probe_result__init(&p[i]);
        p[i].name = "upstream";
        p[i].type = NETPULSE__PROBE_TYPE__PROBE_ICMP;
        p[i].time_ms = t * 1000;
        p[i].interval_ms = 10000;
        p[i].ok = 1;
        p[i].rtt_us = 12500;
        p[i].sent = 4;
        p[i].received = 3;
        pp[i] = &p[i];
    }
    b.agent_id = SITE;
    b.seq = 1;
    b.n_samples = 2 * N;
    b.samples = sp;
    b.n_probes = N;
    b.probes = pp;
    ret = np_rrd_store_write_samples(store, &b, &st, &err);
    printf("batch1 ret=%d written=%" PRIu64 " late=%" PRIu64 " invalid=%" PRIu64 " created=%" PRIu64
           " errors=%" PRIu64 "\n",
           ret, st.written, st.late_skipped, st.invalid, st.files_created, st.errors);
    if (ret < 0) {
        fprintf(stderr, "%s\n", err.msg);
    }
    return ret;
}

/* Batch 2: a backlog that overlaps what was written (the last 5 minutes again,
 * with other values: must be skipped, not overwrite) and goes on for 10
 * minutes, in random order. */
static int write_backlog(struct np_rrd_store *store, int64_t t0)
{
    enum { N = 90 };
    static Netpulse__InterfaceSample s[N];
    static Netpulse__InterfaceSample *sp[N];
    Netpulse__Batch b = NETPULSE__BATCH__INIT;
    struct np_rrd_write_stats st = {0};
    struct np_err err = {0};
    int ret;

    for (int i = 0; i < N; i++) {
        int64_t t = t0 + 1500 + 10 * (i + 1); /* 1510 .. 2400 */
        netpulse__interface_sample__init(&s[i]);
        s[i].device = "edge";
        s[i].if_name = "ge-0/0/0";
        s[i].if_index = 1;
        s[i].time_ms = t * 1000;
        s[i].interval_ms = 10000;
        s[i].rate_valid = 1;
        s[i].in_bps = t <= t0 + 1800 ? 7.0 : 3e8;
        s[i].out_bps = 1e8;
        s[i].oper_status = NETPULSE__IF_STATUS__IF_STATUS_UP;
        sp[(i * 37) % N] = &s[i]; /* 37 is prime to 90: a permutation */
    }
    b.agent_id = SITE;
    b.seq = 2;
    b.n_samples = N;
    b.samples = sp;
    ret = np_rrd_store_write_samples(store, &b, &st, &err);
    printf("batch2 ret=%d written=%" PRIu64 " late=%" PRIu64 " invalid=%" PRIu64 " created=%" PRIu64
           " errors=%" PRIu64 "\n",
           ret, st.written, st.late_skipped, st.invalid, st.files_created, st.errors);
    if (ret < 0) {
        fprintf(stderr, "%s\n", err.msg);
    }
    return ret;
}

int main(int argc, char **argv)
{
    struct np_rrd_store_options opt = {0};
    struct np_rrd_store *store = NULL;
    struct np_err err = {0};
    int ret;

    if (argc < 4) {
        fprintf(stderr, "usage: see the comment at the top of rrd_writer.c\n");
        return 2;
    }
    opt.data_dir = argv[2];
    opt.rrdcached = strcmp(argv[3], "-") == 0 ? NULL : argv[3];
    if (np_rrd_store_new(&opt, &store, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    if (strcmp(argv[1], "write") == 0 && argc == 5) {
        int64_t t0 = parse_i64(argv[4]);
        ret = write_first(store, t0);
        if (ret == 0) {
            ret = write_backlog(store, t0);
        }
        /* Rewriting the same first batch (a replay) writes nothing. */
        if (ret == 0) {
            ret = write_first(store, t0);
        }
    } else if (strcmp(argv[1], "fetch") == 0 && argc == 11) {
        json_t *rows = NULL;
        unsigned step = 0;
        const char *iface = strcmp(argv[6], "-") == 0 ? NULL : argv[6];
        enum np_rrd_kind kind = iface ? NP_RRD_IFACE : NP_RRD_PROBE;
        ret = np_rrd_store_fetch(store, kind, argv[4], argv[5], iface, argv[7], parse_i64(argv[8]),
                                 parse_i64(argv[9]), (unsigned)parse_i64(argv[10]), &rows, &step,
                                 &err);
        if (ret == 0) {
            char *text = json_dumps(rows, JSON_COMPACT);
            printf("step=%u\n%s\n", step, text ? text : "");
            free(text);
            json_decref(rows);
        } else {
            fprintf(stderr, "%s\n", err.msg);
        }
    } else {
        fprintf(stderr, "bad arguments\n");
        ret = 2;
    }
    np_rrd_store_free(store);
    return ret == 0 ? 0 : 1;
}
