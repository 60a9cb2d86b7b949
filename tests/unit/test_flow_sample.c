/* Unit test of 1-in-N sampling in agent/flow/flow_agg on a large synthetic
 * capture: 2,000,000 Ethernet frames (IPv4 and IPv6; TCP 443, UDP 53, UDP 443;
 * in and out; sizes 60..1514; 5,000 flows with a heavy-tailed share) offered
 * to an exact aggregator (sample = 1) and to sampled ones (N = 10, 100).
 *
 * Each sampled frame counts N times, so for a class of frames with sizes s_i
 * the estimate's standard deviation is sqrt((N - 1) * sum s_i^2) bytes and
 * sqrt((N - 1) * count) packets (Bernoulli selection with p = 1/N). Every
 * estimate must lie within TOLERANCE_SD of those of the exact figure; the
 * sampler's seed is fixed, so the outcome is reproducible. Totals (every
 * frame offered) must stay exact. */
#include "flow/flow_agg.h"
#include "flow/flow_table.h"

#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FRAMES 2000000u
#define FLOWS 5000u
#define SNAP 128u
#define TOLERANCE_SD 4.0

struct sample_flow {
    uint8_t v6;
    uint8_t proto;
    uint8_t out; /* local -> outside */
    uint16_t lport, rport;
    uint32_t local, remote;
};

/* The figures a class of frames adds up to, for the tolerance. */
struct sample_class {
    double count;
    double bytes;
    double sumsq; /* sum of squared wire lengths */
};

enum { C_IPV4, C_IPV6, C_TCP, C_UDP, C_IN, C_OUT, C_WEB, C_DNS, C_QUIC, C_COUNT };

static struct sample_flow flows[FLOWS];
static struct sample_class classes[C_COUNT];
static struct sample_class per_flow[FLOWS];
static uint64_t gen_state = 0x853c49e6748fea9bull; /* traffic, independent of the sampler */

static uint32_t gen_next(void)
{
    gen_state = gen_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(gen_state >> 33);
}

static double gen_unit(void)
{
    return gen_next() / 2147483648.0;
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p + 2, v & 0xffff);
}

static void make_flows(void)
{
    for (uint32_t i = 0; i < FLOWS; i++) {
        struct sample_flow *f = &flows[i];
        uint32_t r = gen_next() % 100;
        f->v6 = gen_next() % 5 == 0;
        f->proto = r < 60 ? 6 : 17;
        f->rport = r < 60 ? 443 : r < 80 ? 53 : 443;
        f->lport = (uint16_t)(1024 + i);
        f->out = gen_next() & 1;
        f->local = 0x0a000000u | (gen_next() & 0xffffff);
        f->remote = 0xc6120000u | (gen_next() & 0x1ffff);
    }
}

/* Builds frame i of flow f into buf (SNAP bytes); returns the wire length. */
static uint32_t build(const struct sample_flow *f, uint8_t *buf)
{
    uint32_t l3 = f->v6 ? 40 : 20, l4 = f->proto == 6 ? 20 : 8;
    double u = gen_unit();
    uint32_t wire = u < 0.4 ? 14 + l3 + l4 + 12 : u < 0.8 ? 1514 : 60 + gen_next() % 1455;
    if (wire < 14 + l3 + l4) {
        wire = 14 + l3 + l4;
    }
    memset(buf, 0, SNAP);
    put16(buf + 12, f->v6 ? 0x86dd : 0x0800);
    uint8_t *ip = buf + 14;
    uint32_t src = f->out ? f->local : f->remote, dst = f->out ? f->remote : f->local;
    if (f->v6) {
        ip[0] = 0x60;
        put16(ip + 4, wire - 14 - 40);
        ip[6] = f->proto;
        ip[7] = 64;
        ip[8] = src >> 24 == 10 ? 0xfd : 0x20; /* fd00::/8 is local */
        ip[24] = dst >> 24 == 10 ? 0xfd : 0x20;
        put32(ip + 20, src);
        put32(ip + 36, dst);
    } else {
        ip[0] = 0x45;
        put16(ip + 2, wire - 14);
        ip[8] = 64;
        ip[9] = f->proto;
        put32(ip + 12, src);
        put32(ip + 16, dst);
    }
    uint8_t *l4p = ip + l3;
    put16(l4p, f->out ? f->lport : f->rport);
    put16(l4p + 2, f->out ? f->rport : f->lport);
    if (f->proto == 6) {
        l4p[12] = 0x50;
    } else {
        put16(l4p + 4, wire - 14 - l3);
    }
    return wire;
}

static void account(struct sample_class *c, uint32_t wire)
{
    c->count += 1;
    c->bytes += wire;
    c->sumsq += (double)wire * wire;
}

static void classify(uint32_t idx, uint32_t wire)
{
    const struct sample_flow *f = &flows[idx];
    account(&classes[f->v6 ? C_IPV6 : C_IPV4], wire);
    account(&classes[f->proto == 6 ? C_TCP : C_UDP], wire);
    account(&classes[f->out ? C_OUT : C_IN], wire);
    account(&classes[f->proto == 6 ? C_WEB : f->rport == 53 ? C_DNS : C_QUIC], wire);
    account(&per_flow[idx], wire);
}

static const struct np_flow_counter *class_counter(const struct np_flow_agg *a, int c)
{
    const struct np_flow_stats *st = &a->stats;
    switch (c) {
    case C_IPV4:
        return &st->ipv4;
    case C_IPV6:
        return &st->ipv6;
    case C_TCP:
        return &st->proto[6];
    case C_UDP:
        return &st->proto[17];
    case C_IN:
        return &st->dir[NP_DIR_IN];
    case C_OUT:
        return &st->dir[NP_DIR_OUT];
    case C_WEB:
        return &st->app[NP_APP_WEB];
    case C_DNS:
        return &st->app[NP_APP_DNS];
    default:
        return &st->app[NP_APP_QUIC];
    }
}

static const char *const class_names[C_COUNT] = {"ipv4", "ipv6", "tcp", "udp", "in",
                                                 "out",  "web",  "dns", "quic"};

/* est within TOLERANCE_SD standard deviations of exact; prints the margin. */
static void check_estimate(const char *what, unsigned n, double est, double exact, double sd)
{
    double dev = fabs(est - exact);
    if (!(dev <= TOLERANCE_SD * sd)) {
        fprintf(stderr, "sample 1-in-%u %s: estimate %.0f exact %.0f off by %.2f sd (sd %.0f)\n", n,
                what, est, exact, sd > 0 ? dev / sd : INFINITY, sd);
        check_failures++;
    }
}

static struct np_flow_key flow_key(const struct sample_flow *f, uint8_t *frame)
{
    /* The key the decoder makes of the flow's first frame. */
    struct np_pkt pkt;
    build(f, frame);
    CHECK_INT(np_pkt_decode(NP_DLT_EN10MB, frame, SNAP, 1514, &pkt), NP_PKT_OK);
    return pkt.key;
}

static void test_sampling(void)
{
    static const unsigned rates[] = {1, 10, 100};
    enum { NAGG = sizeof rates / sizeof rates[0] };
    struct np_prefix local[2];
    CHECK_INT(np_prefix_parse("10.0.0.0/8", &local[0]), 0);
    CHECK_INT(np_prefix_parse("fd00::/8", &local[1]), 0);
    struct np_flow_agg *agg[NAGG] = {NULL};
    for (int a = 0; a < NAGG; a++) {
        struct np_flow_agg_config cfg = {
            .max_flows = 2 * FLOWS, .sample = rates[a], .local = local, .n_local = 2};
        CHECK_INT(np_flow_agg_new(&cfg, &agg[a]), 0);
        if (!agg[a]) {
            goto out_free;
        }
    }
    make_flows();
    uint8_t frame[SNAP];
    uint64_t ts_us = 1700000000000000ull;
    for (uint32_t i = 0; i < FRAMES; i++) {
        /* Heavy tail: a few flows carry most frames; every flow appears. */
        uint32_t idx = i < FLOWS ? i : (uint32_t)(FLOWS * gen_unit() * gen_unit() * gen_unit());
        uint32_t wire = build(&flows[idx], frame);
        uint32_t caplen = wire < SNAP ? wire : SNAP;
        classify(idx, wire);
        ts_us += 10;
        for (int a = 0; a < NAGG; a++) {
            np_flow_agg_packet(agg[a], NP_DLT_EN10MB, ts_us, frame, caplen, wire);
        }
    }

    const struct np_flow_agg *exact = agg[0];
    CHECK_U64(exact->stats.total.packets, FRAMES);
    for (int c = 0; c < C_COUNT; c++) {
        CHECK_U64(class_counter(exact, c)->packets, (uint64_t)classes[c].count);
        CHECK_U64(class_counter(exact, c)->bytes, (uint64_t)classes[c].bytes);
    }
    /* The five largest flows, by exact bytes. */
    uint32_t top[5] = {0};
    for (uint32_t i = 0; i < FLOWS; i++) {
        for (int k = 0; k < 5; k++) {
            if (per_flow[i].bytes > per_flow[top[k]].bytes) {
                memmove(&top[k + 1], &top[k], (size_t)(4 - k) * sizeof top[0]);
                top[k] = i;
                break;
            }
        }
    }
    for (int a = 1; a < NAGG; a++) {
        const struct np_flow_agg *s = agg[a];
        double n = rates[a];
        /* Totals count every frame offered, sampled or not. */
        CHECK_U64(s->stats.total.packets, exact->stats.total.packets);
        CHECK_U64(s->stats.total.bytes, exact->stats.total.bytes);
        check_estimate("sampled frames", rates[a], (double)s->stats.sampled.packets, FRAMES / n,
                       sqrt(FRAMES * (1 / n) * (1 - 1 / n)));
        double worst = 0;
        for (int c = 0; c < C_COUNT; c++) {
            const struct np_flow_counter *est = class_counter(s, c);
            char what[64];
            snprintf(what, sizeof what, "%s packets", class_names[c]);
            check_estimate(what, rates[a], (double)est->packets, classes[c].count,
                           sqrt((n - 1) * classes[c].count));
            snprintf(what, sizeof what, "%s bytes", class_names[c]);
            check_estimate(what, rates[a], (double)est->bytes, classes[c].bytes,
                           sqrt((n - 1) * classes[c].sumsq));
            double rel = fabs((double)est->bytes - classes[c].bytes) / classes[c].bytes;
            worst = rel > worst ? rel : worst;
        }
        for (int k = 0; k < 5; k++) {
            struct np_flow_key key = flow_key(&flows[top[k]], frame);
            const struct np_flow *f = np_flow_table_find(s->table, &key);
            CHECK(f != NULL);
            if (f) {
                check_estimate("top flow bytes", rates[a], (double)f->bytes, per_flow[top[k]].bytes,
                               sqrt((n - 1) * per_flow[top[k]].sumsq));
                check_estimate("top flow packets", rates[a], (double)f->packets,
                               per_flow[top[k]].count, sqrt((n - 1) * per_flow[top[k]].count));
            }
        }
        printf("sample 1-in-%u: %" PRIu64 " of %u frames decoded, worst class byte error %.2f %%\n",
               rates[a], s->stats.sampled.packets, FRAMES, 100 * worst);
    }
out_free:
    for (int a = 0; a < NAGG; a++) {
        np_flow_agg_free(agg[a]);
    }
}

/* The same frames through two fresh aggregators give the same estimates:
 * offline runs are reproducible. */
static void test_deterministic(void)
{
    struct np_flow_agg_config cfg = {.max_flows = 64, .sample = 7, .local = NULL, .n_local = 0};
    struct np_flow_agg *a = NULL, *b = NULL;
    CHECK_INT(np_flow_agg_new(&cfg, &a), 0);
    CHECK_INT(np_flow_agg_new(&cfg, &b), 0);
    if (!a || !b) {
        goto out_free;
    }
    uint8_t frame[SNAP];
    for (uint32_t i = 0; i < 100000; i++) {
        uint32_t wire = build(&flows[i % 50], frame);
        np_flow_agg_packet(a, NP_DLT_EN10MB, i, frame, SNAP, wire);
        np_flow_agg_packet(b, NP_DLT_EN10MB, i, frame, SNAP, wire);
    }
    CHECK_U64(a->stats.sampled.packets, b->stats.sampled.packets);
    CHECK_U64(a->stats.ipv4.bytes, b->stats.ipv4.bytes);
    CHECK_U64(a->stats.ipv6.bytes, b->stats.ipv6.bytes);
out_free:
    np_flow_agg_free(a);
    np_flow_agg_free(b);
}

int main(void)
{
    test_sampling();
    test_deterministic();
    return check_done("test_flow_sample");
}
