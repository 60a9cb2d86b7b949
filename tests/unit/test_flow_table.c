/* Unit tests of agent/flow/flow_table and flow_agg: insertion, eviction when
 * full, backward-shift deletion, application classes, aggregation. */
#include "flow/flow_agg.h"
#include "flow/flow_table.h"

#include "netpulse/err.h"

#include "check.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static struct np_flow_key key4(uint32_t src, uint16_t sport, uint16_t dport, uint8_t proto)
{
    struct np_flow_key k;
    memset(&k, 0, sizeof k);
    k.family = 4;
    k.proto = proto;
    k.src[0] = (uint8_t)(src >> 24);
    k.src[1] = (uint8_t)(src >> 16);
    k.src[2] = (uint8_t)(src >> 8);
    k.src[3] = (uint8_t)src;
    k.dst[0] = 192;
    k.dst[3] = 1;
    k.sport = sport;
    k.dport = dport;
    k.vlan = NP_VLAN_NONE;
    k.vlan_inner = NP_VLAN_NONE;
    return k;
}

static void test_insert_find(void)
{
    struct np_flow_table *t = NULL;
    CHECK_INT(np_flow_table_new(0, &t), -22);
    CHECK_INT(np_flow_table_new(1000, &t), 0);
    for (uint32_t i = 0; i < 1000; i++) {
        struct np_flow_key k = key4(0x0a000000u + i, (uint16_t)(1024 + i), 443, 6);
        struct np_flow *f = np_flow_table_upsert(t, &k);
        CHECK_U64(f->packets, 0);
        f->packets = 1;
        f->bytes = 100 + i;
    }
    CHECK_INT(np_flow_table_count(t), 1000);
    CHECK_U64(np_flow_table_evicted(t), 0);
    for (uint32_t i = 0; i < 1000; i++) {
        struct np_flow_key k = key4(0x0a000000u + i, (uint16_t)(1024 + i), 443, 6);
        const struct np_flow *f = np_flow_table_find(t, &k);
        CHECK(f != NULL);
        if (f) {
            CHECK_U64(f->bytes, 100 + i);
            CHECK_INT(f->app, NP_APP_WEB);
        }
        /* upsert of a present key returns the same flow */
        CHECK(np_flow_table_upsert(t, &k) == f);
    }
    size_t cursor = 0, n = 0;
    while (np_flow_table_next(t, &cursor)) {
        n++;
    }
    CHECK_U64(n, 1000);
    np_flow_table_clear(t);
    CHECK_INT(np_flow_table_count(t), 0);
    struct np_flow_key k0 = key4(0x0a000000u, 1024, 443, 6);
    CHECK(np_flow_table_find(t, &k0) == NULL);
    np_flow_table_free(t);
    np_flow_table_free(NULL);
}

static void test_eviction(void)
{
    struct np_flow_table *t = NULL;
    CHECK_INT(np_flow_table_new(64, &t), 0);
    uint64_t total_bytes = 0;
    /* 10,000 flows through a 64-flow table: the count never passes 64, every
     * flow inserted is findable right after, and the bytes of evicted flows
     * plus those present add up to all bytes. */
    for (uint32_t i = 0; i < 10000; i++) {
        struct np_flow_key k = key4(0x0a000000u + i, (uint16_t)i, 53, 17);
        struct np_flow *f = np_flow_table_upsert(t, &k);
        f->packets += 1;
        f->bytes += 1 + (i % 7);
        total_bytes += 1 + (i % 7);
        CHECK(np_flow_table_count(t) <= 64);
        CHECK(np_flow_table_find(t, &k) == f);
    }
    CHECK_INT(np_flow_table_count(t), 64);
    CHECK_U64(np_flow_table_evicted(t), 10000 - 64);
    uint64_t present = 0;
    size_t cursor = 0;
    const struct np_flow *f;
    while ((f = np_flow_table_next(t, &cursor)) != NULL) {
        present += f->bytes;
        /* every present flow is reachable by lookup after all the shifting */
        CHECK(np_flow_table_find(t, &f->key) == f);
    }
    CHECK_U64(present + np_flow_table_evicted_bytes(t), total_bytes);
    CHECK_U64(np_flow_table_evicted_packets(t), 10000 - 64);

    /* A big flow survives a stream of small new ones. */
    np_flow_table_clear(t);
    struct np_flow_key big = key4(0x0a0a0a0au, 50000, 443, 6);
    np_flow_table_upsert(t, &big)->bytes = 1u << 30;
    for (uint32_t i = 0; i < 5000; i++) {
        struct np_flow_key k = key4(0x0b000000u + i, 1, 2, 17);
        np_flow_table_upsert(t, &k)->bytes = 1;
    }
    CHECK(np_flow_table_find(t, &big) != NULL);
    np_flow_table_free(t);
}

static void test_app_classes(void)
{
    static const struct {
        uint8_t proto;
        uint16_t sport, dport;
        enum np_flow_app app;
    } cases[] = {
        {6, 51000, 443, NP_APP_WEB},     {6, 80, 51000, NP_APP_WEB},
        {17, 51000, 443, NP_APP_QUIC},   {17, 53, 40000, NP_APP_DNS},
        {6, 40000, 853, NP_APP_DNS},     {17, 5353, 5353, NP_APP_DNS},
        {6, 40000, 587, NP_APP_EMAIL},   {6, 993, 40000, NP_APP_EMAIL},
        {17, 4500, 4500, NP_APP_VPN},    {17, 51820, 40000, NP_APP_VPN},
        {50, 0, 0, NP_APP_VPN},          {47, 0, 0, NP_APP_VPN},
        {17, 50000, 8801, NP_APP_VIDEO}, {17, 3478, 50000, NP_APP_VIDEO},
        {6, 40000, 1935, NP_APP_VIDEO},  {6, 40000, 22, NP_APP_OTHER},
        {1, 0, 0x0800, NP_APP_OTHER},    {17, 443, 53, NP_APP_DNS}, /* lower port wins */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct np_flow_key k = key4(0x0a000001u, cases[i].sport, cases[i].dport, cases[i].proto);
        if (np_flow_app_classify(&k) != cases[i].app) {
            fprintf(stderr, "case %zu: proto %u %u -> %u\n", i, cases[i].proto, cases[i].sport,
                    cases[i].dport);
        }
        CHECK_INT(np_flow_app_classify(&k), cases[i].app);
    }
    CHECK_STR(np_flow_app_name(NP_APP_QUIC), "quic");
    CHECK_STR(np_flow_app_name(NP_APP_COUNT), "other");
}

static void test_prefixes(void)
{
    struct np_prefix p;
    CHECK_INT(np_prefix_parse("10.0.0.0/8", &p), 0);
    CHECK_INT(p.family, 4);
    CHECK_INT(p.len, 8);
    uint8_t a[16] = {10, 200, 1, 2}, b[16] = {11, 0, 0, 1};
    CHECK(np_prefix_match(&p, 4, a));
    CHECK(!np_prefix_match(&p, 4, b));
    CHECK(!np_prefix_match(&p, 6, a));
    CHECK_INT(np_prefix_parse("172.16.0.0/12", &p), 0);
    uint8_t c[16] = {172, 31, 255, 255}, d[16] = {172, 32, 0, 0};
    CHECK(np_prefix_match(&p, 4, c));
    CHECK(!np_prefix_match(&p, 4, d));
    CHECK_INT(np_prefix_parse("2001:db8::/32", &p), 0);
    CHECK_INT(p.family, 6);
    uint8_t e[16] = {0x20, 0x01, 0x0d, 0xb8, 0xff};
    CHECK(np_prefix_match(&p, 6, e));
    CHECK_INT(np_prefix_parse("10.1.2.3/20", &p), 0); /* host bits cleared */
    CHECK_INT(p.addr[2], 0);
    CHECK_INT(np_prefix_parse("192.0.2.7", &p), 0);
    CHECK_INT(p.len, 32);
    CHECK_INT(np_prefix_parse("10.0.0.0/33", &p), NP_ECONFIG);
    CHECK_INT(np_prefix_parse("::/129", &p), NP_ECONFIG);
    CHECK_INT(np_prefix_parse("10.0.0/8", &p), NP_ECONFIG);
    CHECK_INT(np_prefix_parse("10.0.0.0/x", &p), NP_ECONFIG);
    CHECK_INT(np_prefix_parse("", &p), NP_ECONFIG);
    uint8_t m[16];
    np_addr_mask(4, a, 20, m);
    CHECK_INT(m[1], 200);
    CHECK_INT(m[2], 0);
    np_addr_mask(4, a, 12, m);
    CHECK_INT(m[1], 192);
    /* IPv4 edges: /0 holds everything, /32 one address, /31 two. */
    CHECK_INT(np_prefix_parse("0.0.0.0/0", &p), 0);
    CHECK(np_prefix_match(&p, 4, b));
    CHECK_INT(np_prefix_parse("192.0.2.7/32", &p), 0);
    uint8_t h7[16] = {192, 0, 2, 7}, h6[16] = {192, 0, 2, 6}, h5[16] = {192, 0, 2, 5};
    CHECK(np_prefix_match(&p, 4, h7));
    CHECK(!np_prefix_match(&p, 4, h6));
    CHECK_INT(np_prefix_parse("192.0.2.6/31", &p), 0);
    CHECK(np_prefix_match(&p, 4, h7));
    CHECK(np_prefix_match(&p, 4, h6));
    CHECK(!np_prefix_match(&p, 4, h5));
    CHECK_INT(np_prefix_parse("10.1.16.0/20", &p), 0);
    uint8_t in20[16] = {10, 1, 31, 255}, out20[16] = {10, 1, 32, 0};
    CHECK(np_prefix_match(&p, 4, in20));
    CHECK(!np_prefix_match(&p, 4, out20));
}

/* An Ethernet/IPv4/UDP frame from src to dst with the given wire length. */
static size_t frame(uint8_t *b, uint8_t src_last, uint8_t dst_first, uint16_t dport)
{
    memset(b, 0, 64);
    b[12] = 0x08;
    b[14] = 0x45;
    b[17] = 28;
    b[23] = 17;
    b[26] = 10;
    b[29] = src_last;
    b[30] = dst_first;
    b[33] = 1;
    b[34] = 0x9c;
    b[35] = 0x40;
    b[36] = (uint8_t)(dport >> 8);
    b[37] = (uint8_t)dport;
    b[39] = 8;
    return 64;
}

static void test_agg(void)
{
    struct np_prefix local;
    CHECK_INT(np_prefix_parse("10.0.0.0/8", &local), 0);
    struct np_flow_agg_config cfg = {.max_flows = 128, .sample = 1, .local = &local, .n_local = 1};
    struct np_flow_agg *agg = NULL;
    CHECK_INT(np_flow_agg_new(&cfg, &agg), 0);
    uint8_t b[64];
    frame(b, 1, 8, 53);
    np_flow_agg_packet(agg, NP_DLT_EN10MB, 1000, b, 64, 1500); /* wire 1500, snaplen 64 */
    np_flow_agg_packet(agg, NP_DLT_EN10MB, 2000, b, 64, 64);
    frame(b, 2, 10, 443);
    np_flow_agg_packet(agg, NP_DLT_EN10MB, 3000, b, 64, 64);
    np_flow_agg_packet(agg, NP_DLT_EN10MB, 4000, b, 10, 10); /* malformed */
    const struct np_flow_stats *st = &agg->stats;
    CHECK_U64(st->total.packets, 4);
    CHECK_U64(st->total.bytes, 1500 + 64 + 64 + 10);
    CHECK_U64(st->ipv4.packets, 3);
    CHECK_U64(st->proto[17].bytes, 1628);
    CHECK_U64(st->dir[NP_DIR_OUT].bytes, 1564);
    CHECK_U64(st->dir[NP_DIR_INTERNAL].bytes, 64);
    CHECK_U64(st->app[NP_APP_DNS].bytes, 1564);
    CHECK_U64(st->app[NP_APP_QUIC].bytes, 64);
    CHECK_U64(st->drop[NP_PKT_BAD_LINK].packets, 1);
    CHECK_U64(st->vlan[NP_VLAN_SLOTS - 1].packets, 4);
    CHECK_INT(np_flow_table_count(agg->table), 2);
    CHECK_U64(st->first_us, 1000);
    CHECK_U64(st->last_us, 4000);
    np_flow_agg_reset(agg);
    CHECK_U64(agg->stats.total.packets, 0);
    CHECK_INT(np_flow_table_count(agg->table), 0);
    np_flow_agg_free(agg);

    /* Sampling 1-in-10 over 100,000 frames: the estimate is within 3 % (the
     * binomial standard error is about 1 %). */
    cfg.sample = 10;
    CHECK_INT(np_flow_agg_new(&cfg, &agg), 0);
    frame(b, 1, 8, 53);
    for (int i = 0; i < 100000; i++) {
        np_flow_agg_packet(agg, NP_DLT_EN10MB, (uint64_t)i, b, 64, 100);
    }
    CHECK_U64(agg->stats.total.packets, 100000);
    double est = (double)agg->stats.ipv4.packets;
    CHECK(est > 97000 && est < 103000);
    CHECK_U64(agg->stats.ipv4.bytes, agg->stats.ipv4.packets * 100);
    np_flow_agg_free(agg);
    cfg.sample = 0;
    CHECK_INT(np_flow_agg_new(&cfg, &agg), -22);
}

/* Keys that differ in one byte anywhere (IPv6 address bytes 8..15 included,
 * which an IPv4 key leaves zero and the IPv4 hash skips) are distinct flows,
 * and an IPv4 and an IPv6 key with the same leading bytes too. */
static void test_key_bytes(void)
{
    struct np_flow_table *t = NULL;
    CHECK_INT(np_flow_table_new(4096, &t), 0);
    struct np_flow_key base;
    memset(&base, 0, sizeof base);
    base.family = 6;
    base.proto = 17;
    base.src[0] = 0x20;
    base.dst[0] = 0x20;
    base.sport = 1000;
    base.dport = 53;
    base.vlan = NP_VLAN_NONE;
    base.vlan_inner = NP_VLAN_NONE;
    np_flow_table_upsert(t, &base)->packets = 1;
    uint32_t n = 1;
    for (size_t i = 0; i < offsetof(struct np_flow_key, pad); i++) {
        if (i == offsetof(struct np_flow_key, family)) {
            continue;
        }
        struct np_flow_key k = base;
        ((uint8_t *)&k)[i] ^= 0x5a;
        CHECK(!np_flow_key_equal(&k, &base)); /* also when the tags of two keys collide */
        CHECK(!np_flow_key_equal(&base, &k));
        struct np_flow *f = np_flow_table_upsert(t, &k);
        CHECK_U64(f->packets, 0); /* new */
        f->packets = 2 + i;
        n++;
    }
    struct np_flow_key v4 = base;
    v4.family = 4;
    CHECK(np_flow_key_equal(&base, &base));
    CHECK(!np_flow_key_equal(&v4, &base));
    CHECK_U64(np_flow_table_upsert(t, &v4)->packets, 0);
    n++;
    CHECK_INT(np_flow_table_count(t), n);
    CHECK_U64(np_flow_table_find(t, &base)->packets, 1);
    struct np_flow_key k = base;
    k.src[12] ^= 0x5a;
    CHECK_U64(np_flow_table_find(t, &k)->packets, 2 + offsetof(struct np_flow_key, src) + 12);
    k = base;
    k.dst[9] ^= 0x5a;
    CHECK_U64(np_flow_table_find(t, &k)->packets, 2 + offsetof(struct np_flow_key, dst) + 9);
    np_flow_table_free(t);
}

int main(void)
{
    test_insert_find();
    test_key_bytes();
    test_eviction();
    test_app_classes();
    test_prefixes();
    test_agg();
    return check_done("test_flow_table");
}
