/* bench_flow_gen: writes a large synthetic pcap for tests/bench/bench_flow.sh.
 *
 *   bench_flow_gen OUT.pcap PACKETS FLOWS [SEED]
 *
 * Ethernet, headers only (caplen <= 128, len = the wire length, like a live
 * capture at the default snaplen). FLOWS distinct flows, each seen at least
 * once (the first FLOWS packets), then picked with a heavy-tailed skew; both
 * directions. Mix: 80 % IPv4 / 20 % IPv6, 10 % of flows on 802.1Q VLANs;
 * TCP 70 % (to 443/80/8080/993/25), UDP 25 % (53, 443 QUIC, 3478, 1194,
 * 5004), ICMP/ICMPv6 5 %; sizes from 60 to 1514 bytes (ACKs, full frames,
 * uniform). Local side 10.0.0.0/8 and 2001:db8:1::/48, remote side
 * 198.18.0.0/15 and 2001:db8:ff::/48 (documentation and benchmark ranges).
 * Deterministic for a given SEED. Timestamps advance 10 us per packet. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNAP 128

struct gen_flow {
    uint8_t v6;
    uint8_t proto;
    uint16_t vlan; /* 0: untagged */
    uint16_t cport, sport;
    uint32_t client, server; /* host parts */
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

static double unit(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
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

static unsigned ip_csum(const uint8_t *h)
{
    uint32_t s = 0;
    for (int i = 0; i < 20; i += 2) {
        s += (uint32_t)h[i] << 8 | h[i + 1];
    }
    while (s >> 16) {
        s = (s & 0xffff) + (s >> 16);
    }
    return ~s & 0xffff;
}

static void addr6(uint8_t *p, unsigned site, uint32_t host)
{
    static const uint8_t base[6] = {0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00};
    memset(p, 0, 16);
    memcpy(p, base, 6);
    p[5] = (uint8_t)site;
    put32(p + 12, host);
}

/* Builds one frame into buf; returns the captured length, sets *wire. */
static uint32_t build(const struct gen_flow *f, int reverse, uint8_t *buf, uint32_t *wire)
{
    uint32_t l2 = f->vlan ? 18 : 14, l3 = f->v6 ? 40 : 20;
    uint32_t l4 = f->proto == 6 ? 20 : 8;
    uint32_t len;
    double u = unit();
    if (f->proto == 6) {
        len = u < 0.40 ? l2 + l3 + l4 + 12 : u < 0.85 ? 1514 : 100 + (uint32_t)(rnd() % 1400);
    } else if (f->proto == 17) {
        len = 80 + (uint32_t)(rnd() % 1220);
    } else {
        len = l2 + l3 + 8 + 56;
    }
    if (len < l2 + l3 + l4) {
        len = l2 + l3 + l4;
    }
    if (len < 60) {
        len = 60;
    }
    if (f->vlan && len > 1514) {
        len = 1518;
    }
    *wire = len;
    uint32_t cap = len < SNAP ? len : SNAP;
    memset(buf, 0, cap);
    static const uint8_t mac_a[6] = {2, 0, 0, 0, 0, 1}, mac_b[6] = {2, 0, 0, 0, 0, 2};
    memcpy(buf, reverse ? mac_b : mac_a, 6);
    memcpy(buf + 6, reverse ? mac_a : mac_b, 6);
    uint8_t *p = buf + 12;
    if (f->vlan) {
        put16(p, 0x8100);
        put16(p + 2, f->vlan);
        p += 4;
    }
    put16(p, f->v6 ? 0x86dd : 0x0800);
    p += 2;
    uint32_t ip_len = len - l2;
    uint8_t proto = f->proto == 1 && f->v6 ? 58 : f->proto;
    if (f->v6) {
        p[0] = 0x60;
        put16(p + 4, ip_len - 40);
        p[6] = proto;
        p[7] = 64;
        addr6(p + 8, reverse ? 0xff : 1, reverse ? f->server : f->client);
        addr6(p + 24, reverse ? 1 : 0xff, reverse ? f->client : f->server);
    } else {
        uint32_t c = 0x0a000000u | f->client, s = 0xc6120000u | (f->server & 0x1ffff);
        p[0] = 0x45;
        put16(p + 2, ip_len);
        put16(p + 6, 0x4000);
        p[8] = 64;
        p[9] = proto;
        put32(p + 12, reverse ? s : c);
        put32(p + 16, reverse ? c : s);
        put16(p + 10, ip_csum(p));
    }
    p += l3;
    uint16_t sp = reverse ? f->sport : f->cport, dp = reverse ? f->cport : f->sport;
    if (f->proto == 6) {
        put16(p, sp);
        put16(p + 2, dp);
        put32(p + 4, (uint32_t)rnd());
        put32(p + 8, (uint32_t)rnd());
        p[12] = 0x50;
        p[13] = 0x18; /* PSH ACK */
        put16(p + 14, 65535);
    } else if (f->proto == 17) {
        put16(p, sp);
        put16(p + 2, dp);
        put16(p + 4, ip_len - l3);
    } else {
        p[0] = f->v6 ? (reverse ? 129 : 128) : (reverse ? 0 : 8);
        put16(p + 4, f->cport);
    }
    return cap;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s OUT.pcap PACKETS FLOWS [SEED]\n", argv[0]);
        return 2;
    }
    uint64_t packets = strtoull(argv[2], NULL, 10);
    uint32_t nflows = (uint32_t)strtoul(argv[3], NULL, 10);
    rng_state = argc > 4 ? strtoull(argv[4], NULL, 10) | 1 : 0x9e3779b97f4a7c15ull;
    if (packets == 0 || nflows == 0 || nflows > 4000u * 60000u) {
        fprintf(stderr, "bench_flow_gen: bad counts\n");
        return 2;
    }
    struct gen_flow *flows = calloc(nflows, sizeof *flows);
    FILE *out = fopen(argv[1], "wb");
    if (!flows || !out) {
        perror("bench_flow_gen");
        return 1;
    }
    static const uint16_t tcp_ports[] = {443, 443, 443, 80, 8080, 993, 25};
    static const uint16_t udp_ports[] = {53, 443, 443, 3478, 1194, 5004};
    for (uint32_t i = 0; i < nflows; i++) {
        struct gen_flow *f = &flows[i];
        double u = unit();
        f->v6 = rnd() % 5 == 0;
        f->vlan = rnd() % 10 == 0 ? (uint16_t)(100 + rnd() % 20) : 0;
        f->proto = u < 0.70 ? 6 : u < 0.95 ? 17 : 1;
        f->client = 1 + i % 4000; /* 4000 local hosts ... */
        f->cport = (uint16_t)(1024 + i / 4000);
        f->server = (uint32_t)(rnd() % 120000) + 1;
        f->sport = f->proto == 6 ? tcp_ports[rnd() % 7] : f->proto == 17 ? udp_ports[rnd() % 6] : 0;
    }
    /* The pcap file header is in the writer's byte order; use little endian. */
    uint8_t le[24] = {0xd4, 0xc3, 0xb2, 0xa1, 2,    0, 4, 0, 0, 0, 0, 0,
                      0,    0,    0,    0,    SNAP, 0, 0, 0, 1, 0, 0, 0};
    fwrite(le, 1, sizeof le, out);
    uint64_t ts_us = 1700000000ull * 1000000ull;
    uint8_t rec[16 + SNAP];
    for (uint64_t n = 0; n < packets; n++) {
        uint32_t idx = n < nflows ? (uint32_t)n : (uint32_t)(nflows * unit() * unit() * unit());
        uint32_t wire;
        uint32_t cap = build(&flows[idx], (int)(rnd() & 1), rec + 16, &wire);
        ts_us += 10;
        uint32_t sec = (uint32_t)(ts_us / 1000000u), usec = (uint32_t)(ts_us % 1000000u);
        uint32_t vals[4] = {sec, usec, cap, wire};
        for (int i = 0; i < 4; i++) {
            rec[i * 4] = (uint8_t)vals[i];
            rec[i * 4 + 1] = (uint8_t)(vals[i] >> 8);
            rec[i * 4 + 2] = (uint8_t)(vals[i] >> 16);
            rec[i * 4 + 3] = (uint8_t)(vals[i] >> 24);
        }
        if (fwrite(rec, 1, 16 + cap, out) != 16 + cap) {
            perror("bench_flow_gen: write");
            return 1;
        }
    }
    if (fclose(out) != 0) {
        perror("bench_flow_gen: close");
        return 1;
    }
    free(flows);
    return 0;
}
