/* Unit tests of agent/flow/packet_decode: one crafted frame per encapsulation
 * and per malformation. */
#include "flow/packet_decode.h"

#include "check.h"

#include <stdlib.h>
#include <string.h>

struct pb {
    uint8_t b[2048];
    size_t n;
};

static void put8(struct pb *p, unsigned v)
{
    p->b[p->n++] = (uint8_t)v;
}

static void put16(struct pb *p, unsigned v)
{
    put8(p, v >> 8);
    put8(p, v & 0xff);
}

static void put32(struct pb *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p, v & 0xffff);
}

static void put_zero(struct pb *p, size_t n)
{
    memset(p->b + p->n, 0, n);
    p->n += n;
}

static void eth(struct pb *p, unsigned type)
{
    static const uint8_t macs[12] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2};
    memcpy(p->b + p->n, macs, 12);
    p->n += 12;
    put16(p, type);
}

static void vlan(struct pb *p, unsigned vid, unsigned next)
{
    put16(p, vid);
    put16(p, next);
}

/* IPv4 header, 10.0.0.1 -> 192.0.2.9, total length 20 + payload. */
static void ipv4(struct pb *p, unsigned proto, unsigned payload, unsigned frag, unsigned id)
{
    put8(p, 0x45);
    put8(p, 0);
    put16(p, 20 + payload);
    put16(p, id);
    put16(p, frag);
    put8(p, 64);
    put8(p, proto);
    put16(p, 0);
    put32(p, 0x0a000001u);
    put32(p, 0xc0000209u);
}

/* IPv6 header 2001:db8::1 -> 2001:db8:1::2. */
static void ipv6(struct pb *p, unsigned nh, unsigned payload)
{
    put32(p, 0x60000000u);
    put16(p, payload);
    put8(p, nh);
    put8(p, 64);
    put32(p, 0x20010db8u);
    put32(p, 0);
    put32(p, 0);
    put32(p, 1);
    put32(p, 0x20010db8u);
    put32(p, 0x00010000u);
    put32(p, 0);
    put32(p, 2);
}

static void tcp(struct pb *p, unsigned sport, unsigned dport)
{
    put16(p, sport);
    put16(p, dport);
    put32(p, 1);
    put32(p, 0);
    put8(p, 0x50);
    put8(p, 0x18);
    put16(p, 1024);
    put32(p, 0);
}

static void udp(struct pb *p, unsigned sport, unsigned dport, unsigned len)
{
    put16(p, sport);
    put16(p, dport);
    put16(p, len);
    put16(p, 0);
}

static enum np_pkt_status run(int dlt, const struct pb *p, struct np_pkt *out)
{
    return np_pkt_decode(dlt, p->b, (uint32_t)p->n, (uint32_t)p->n, out);
}

static void test_ethernet_ipv4_tcp(void)
{
    struct pb p = {0};
    struct np_pkt k;
    eth(&p, 0x0800);
    ipv4(&p, 6, 20 + 10, 0, 1);
    tcp(&p, 51000, 443);
    put_zero(&p, 10);
    CHECK_INT(run(NP_DLT_EN10MB, &p, &k), NP_PKT_OK);
    CHECK_INT(k.key.family, 4);
    CHECK_INT(k.key.proto, 6);
    CHECK_INT(k.key.sport, 51000);
    CHECK_INT(k.key.dport, 443);
    CHECK_INT(k.key.vlan, NP_VLAN_NONE);
    CHECK_INT(k.key.src[0], 10);
    CHECK_INT(k.key.dst[0], 192);
    CHECK_INT(k.flags & NP_PKT_F_PORTS, NP_PKT_F_PORTS);
    CHECK_U64(k.wire_len, p.n);

    /* Snaplen cut in the payload: still OK, the wire length is kept. */
    CHECK_INT(np_pkt_decode(NP_DLT_EN10MB, p.b, 54, 1514, &k), NP_PKT_OK);
    CHECK_U64(k.wire_len, 1514);
    CHECK_INT(k.key.dport, 443);
    /* A frame that ends before the IP total length is malformed, not truncated. */
    CHECK_INT(np_pkt_decode(NP_DLT_EN10MB, p.b, 54, 54, &k), NP_PKT_BAD_IPV4_LENGTH);
}

static void test_vlan_qinq(void)
{
    struct pb p = {0};
    struct np_pkt k;
    eth(&p, 0x88a8);
    vlan(&p, 0x2000 | 3394, 0x8100);
    vlan(&p, 113, 0x0800);
    ipv4(&p, 17, 8 + 4, 0, 2);
    udp(&p, 2152, 2152, 12);
    put_zero(&p, 4);
    CHECK_INT(run(NP_DLT_EN10MB, &p, &k), NP_PKT_OK);
    CHECK_INT(k.key.vlan, 3394);
    CHECK_INT(k.key.vlan_inner, 113);
    CHECK_INT(k.vlan_depth, 2);
    CHECK_INT(k.key.sport, 2152);

    /* Five stacked tags: refused, not walked. */
    struct pb q = {0};
    eth(&q, 0x8100);
    for (int i = 0; i < 5; i++) {
        vlan(&q, (unsigned)i + 1, 0x8100);
    }
    put_zero(&q, 30);
    CHECK_INT(run(NP_DLT_EN10MB, &q, &k), NP_PKT_TOO_MANY_TAGS);

    /* A tag cut by the snaplen vs. a frame that ends inside the tag. */
    CHECK_INT(np_pkt_decode(NP_DLT_EN10MB, p.b, 16, 100, &k), NP_PKT_TRUNC_LINK);
    CHECK_INT(np_pkt_decode(NP_DLT_EN10MB, p.b, 16, 16, &k), NP_PKT_BAD_LINK);
}

static void test_sll_sll2(void)
{
    struct pb p = {0};
    struct np_pkt k;
    put16(&p, 0);      /* packet type: to us */
    put16(&p, 1);      /* ARPHRD_ETHER */
    put16(&p, 6);      /* address length */
    put_zero(&p, 8);   /* address */
    put16(&p, 0x86dd); /* protocol */
    ipv6(&p, 17, 8);
    udp(&p, 5353, 5353, 8);
    CHECK_INT(run(NP_DLT_LINUX_SLL, &p, &k), NP_PKT_OK);
    CHECK_INT(k.key.family, 6);
    CHECK_INT(k.key.proto, 17);
    CHECK_INT(k.key.sport, 5353);
    CHECK_INT(k.l3_offset, 16);

    struct pb q = {0};
    put16(&q, 0x0800); /* protocol */
    put16(&q, 0);      /* reserved */
    put32(&q, 3);      /* ifindex */
    put16(&q, 1);      /* ARPHRD_ETHER */
    put8(&q, 4);       /* outgoing */
    put8(&q, 6);
    put_zero(&q, 8);
    ipv4(&q, 1, 8, 0, 3);
    put8(&q, 8); /* echo request */
    put8(&q, 0);
    put_zero(&q, 6);
    CHECK_INT(run(NP_DLT_LINUX_SLL2, &q, &k), NP_PKT_OK);
    CHECK_INT(k.key.proto, 1);
    CHECK_INT(k.key.dport, 0x0800);
    CHECK_INT(k.l3_offset, 20);
    CHECK_INT(np_pkt_decode(NP_DLT_LINUX_SLL2, q.b, 10, 10, &k), NP_PKT_BAD_LINK);
    CHECK_INT(np_pkt_decode(NP_DLT_LINUX_SLL, q.b, 10, 64, &k), NP_PKT_TRUNC_LINK);
}

static void test_raw_null_loop(void)
{
    struct pb p = {0};
    struct np_pkt k;
    ipv4(&p, 6, 20, 0, 4);
    tcp(&p, 25, 40000);
    CHECK_INT(run(NP_DLT_RAW, &p, &k), NP_PKT_OK);
    CHECK_INT(k.key.sport, 25);
    CHECK_INT(run(NP_DLT_IPV4, &p, &k), NP_PKT_OK);
    CHECK_INT(run(NP_DLT_IPV6, &p, &k), NP_PKT_BAD_IPV6_HEADER);

    /* BSD loopback, little-endian AF_INET6 of macOS (30), as in
     * quic_handshake_truncated.pcap. */
    struct pb q = {0};
    put8(&q, 30);
    put_zero(&q, 3);
    ipv6(&q, 17, 8 + 20);
    udp(&q, 60000, 443, 28);
    put_zero(&q, 20);
    CHECK_INT(run(NP_DLT_NULL, &q, &k), NP_PKT_OK);
    CHECK_INT(k.key.dport, 443);
    /* The same in network order (DLT_LOOP), AF_INET = 2. */
    struct pb r = {0};
    put32(&r, 2);
    ipv4(&r, 17, 8, 0, 5);
    udp(&r, 53, 5000, 8);
    CHECK_INT(run(NP_DLT_LOOP, &r, &k), NP_PKT_OK);
    CHECK_INT(k.key.sport, 53);
    /* Unknown family: not IP, not a drop. */
    r.b[3] = 99;
    CHECK_INT(run(NP_DLT_LOOP, &r, &k), NP_PKT_NOT_IP);
    /* Unsupported link type. */
    CHECK_INT(run(147, &r, &k), NP_PKT_UNSUPPORTED_LINK);
}

static void test_pppoe_mpls(void)
{
    struct pb p = {0};
    struct np_pkt k;
    eth(&p, 0x8864);
    put8(&p, 0x11);
    put8(&p, 0);
    put16(&p, 0x1234);      /* session */
    put16(&p, 2 + 20 + 20); /* PPP protocol + IP */
    put16(&p, 0x0021);
    ipv4(&p, 6, 20, 0, 6);
    tcp(&p, 44444, 80);
    CHECK_INT(run(NP_DLT_EN10MB, &p, &k), NP_PKT_OK);
    CHECK_INT(k.key.dport, 80);
    CHECK_INT(k.l3_offset, 22);
    /* PPPoE length past the frame. */
    p.b[18] = 0x7f;
    CHECK_INT(run(NP_DLT_EN10MB, &p, &k), NP_PKT_BAD_LINK);
    /* LCP inside PPPoE is not IP. */
    p.b[18] = 0;
    p.b[20] = 0xc0;
    p.b[21] = 0x21;
    CHECK_INT(run(NP_DLT_EN10MB, &p, &k), NP_PKT_NOT_IP);

    struct pb m = {0};
    eth(&m, 0x8847);
    put32(&m, (100u << 12) | 64);         /* label 100, not bottom */
    put32(&m, (200u << 12) | 0x100 | 64); /* label 200, bottom of stack */
    ipv6(&m, 58, 8);
    put8(&m, 128); /* echo request */
    put8(&m, 0);
    put_zero(&m, 6);
    CHECK_INT(run(NP_DLT_EN10MB, &m, &k), NP_PKT_OK);
    CHECK_INT(k.key.proto, 58);
    CHECK_INT(k.key.dport, 128 << 8);

    struct pb deep = {0};
    eth(&deep, 0x8847);
    for (int i = 0; i < 9; i++) {
        put32(&deep, 64);
    }
    CHECK_INT(run(NP_DLT_EN10MB, &deep, &k), NP_PKT_TOO_MANY_TAGS);
}

static void test_ipv4_malformed(void)
{
    struct pb p = {0};
    struct np_pkt k;
    eth(&p, 0x0800);
    ipv4(&p, 6, 20, 0, 7);
    tcp(&p, 1, 2);
    size_t ip = 14;

    p.b[ip] = 0x44; /* IHL 4 */
    CHECK_INT(run(NP_DLT_EN10MB, &p, &k), NP_PKT_BAD_IPV4_HEADER);
    p.b[ip] = 0x55; /* version 5 */
    CHECK_INT(run(NP_DLT_EN10MB, &p, &k), NP_PKT_BAD_IPV4_HEADER);
    p.b[ip] = 0x45;
    p.b[ip + 2] = 0x10; /* total length 4096 > frame */
    CHECK_INT(run(NP_DLT_EN10MB, &p, &k), NP_PKT_BAD_IPV4_LENGTH);
    p.b[ip + 2] = 0;
    p.b[ip + 3] = 10; /* total length < header */
    CHECK_INT(run(NP_DLT_EN10MB, &p, &k), NP_PKT_BAD_IPV4_LENGTH);
    p.b[ip + 3] = 40;
    /* Header cut by the snaplen. */
    CHECK_INT(np_pkt_decode(NP_DLT_EN10MB, p.b, 20, (uint32_t)p.n, &k), NP_PKT_TRUNC_IPV4);
    /* TCP header cut before its data offset. */
    CHECK_INT(np_pkt_decode(NP_DLT_EN10MB, p.b, 38, (uint32_t)p.n, &k), NP_PKT_TRUNC_L4);
    CHECK_INT(k.key.proto, 6); /* the IP header was fine */
    CHECK_INT(k.flags & NP_PKT_F_L3, NP_PKT_F_L3);
    /* TCP data offset < 5 */
    p.b[ip + 20 + 12] = 0x40;
    CHECK_INT(run(NP_DLT_EN10MB, &p, &k), NP_PKT_BAD_TCP);
    /* TCP data offset past the IP payload */
    p.b[ip + 20 + 12] = 0xf0;
    CHECK_INT(run(NP_DLT_EN10MB, &p, &k), NP_PKT_BAD_TCP);
    /* Frame shorter than an Ethernet header */
    CHECK_INT(np_pkt_decode(NP_DLT_EN10MB, p.b, 10, 10, &k), NP_PKT_BAD_LINK);
    CHECK_INT(np_pkt_decode(NP_DLT_EN10MB, p.b, 10, 60, &k), NP_PKT_TRUNC_LINK);
    /* NULL data with a claimed length never reads. */
    CHECK_INT(np_pkt_decode(NP_DLT_EN10MB, NULL, 0, 60, &k), NP_PKT_TRUNC_LINK);

    struct pb u = {0};
    eth(&u, 0x0800);
    ipv4(&u, 17, 8, 0, 8);
    udp(&u, 53, 53, 7); /* UDP length < 8 */
    CHECK_INT(run(NP_DLT_EN10MB, &u, &k), NP_PKT_BAD_UDP);
    u.b[14 + 20 + 5] = 200; /* UDP length past the IP payload */
    CHECK_INT(run(NP_DLT_EN10MB, &u, &k), NP_PKT_BAD_UDP);

    struct pb g = {0};
    eth(&g, 0x0800);
    ipv4(&g, 47, 2, 0, 9); /* GRE header needs 4 bytes */
    put16(&g, 0);
    CHECK_INT(run(NP_DLT_EN10MB, &g, &k), NP_PKT_BAD_L4);
}

static void test_gre_esp_ah(void)
{
    struct pb g = {0};
    struct np_pkt k;
    eth(&g, 0x0800);
    ipv4(&g, 47, 4, 0, 10);
    put16(&g, 0);
    put16(&g, 0x0800);
    CHECK_INT(run(NP_DLT_EN10MB, &g, &k), NP_PKT_OK);
    CHECK_INT(k.key.proto, 47);
    CHECK_INT(k.flags & NP_PKT_F_PORTS, 0);

    struct pb e = {0};
    eth(&e, 0x86dd);
    ipv6(&e, 50, 16);
    put32(&e, 0xdeadbeef);
    put32(&e, 1);
    put_zero(&e, 8);
    CHECK_INT(run(NP_DLT_EN10MB, &e, &k), NP_PKT_OK);
    CHECK_INT(k.key.proto, 50);

    /* AH then TCP over IPv4: the flow keeps its ports. */
    struct pb a = {0};
    eth(&a, 0x0800);
    ipv4(&a, 51, 24 + 20, 0, 11);
    put8(&a, 6); /* next header */
    put8(&a, 4); /* (4 + 2) * 4 = 24 bytes */
    put_zero(&a, 22);
    tcp(&a, 7000, 22);
    CHECK_INT(run(NP_DLT_EN10MB, &a, &k), NP_PKT_OK);
    CHECK_INT(k.key.proto, 6);
    CHECK_INT(k.key.dport, 22);
}

static void test_ipv6_ext(void)
{
    struct pb p = {0};
    struct np_pkt k;
    eth(&p, 0x86dd);
    ipv6(&p, 0, 8 + 16 + 20);
    put8(&p, 60); /* hop-by-hop -> destination options */
    put8(&p, 0);
    put_zero(&p, 6);
    put8(&p, 6); /* destination options (16 bytes) -> TCP */
    put8(&p, 1);
    put_zero(&p, 14);
    tcp(&p, 40001, 993);
    CHECK_INT(run(NP_DLT_EN10MB, &p, &k), NP_PKT_OK);
    CHECK_INT(k.key.proto, 6);
    CHECK_INT(k.key.dport, 993);
    /* Extension header cut by the snaplen. */
    CHECK_INT(np_pkt_decode(NP_DLT_EN10MB, p.b, 14 + 40 + 4, (uint32_t)p.n, &k), NP_PKT_TRUNC_IPV6);
    /* Extension header length past the payload. */
    p.b[14 + 40 + 8 + 1] = 50;
    CHECK_INT(run(NP_DLT_EN10MB, &p, &k), NP_PKT_BAD_IPV6_EXT);
    /* Payload length past the frame. */
    p.b[14 + 4] = 0x40;
    CHECK_INT(run(NP_DLT_EN10MB, &p, &k), NP_PKT_BAD_IPV6_LENGTH);

    /* A chain of 9 destination-options headers. */
    struct pb c = {0};
    eth(&c, 0x86dd);
    ipv6(&c, 60, 9 * 8 + 8);
    for (int i = 0; i < 9; i++) {
        put8(&c, 60);
        put8(&c, 0);
        put_zero(&c, 6);
    }
    put_zero(&c, 8);
    CHECK_INT(run(NP_DLT_EN10MB, &c, &k), NP_PKT_BAD_IPV6_EXT);

    /* No next header. */
    struct pb n = {0};
    eth(&n, 0x86dd);
    ipv6(&n, 59, 0);
    CHECK_INT(np_pkt_decode(NP_DLT_EN10MB, n.b, (uint32_t)n.n, (uint32_t)n.n, &k), NP_PKT_OK);
}

static void test_fragments(void)
{
    struct np_frag_table *t = calloc(1, sizeof *t);
    struct np_pkt k;
    struct pb first = {0}, later = {0}, orphan = {0};
    eth(&first, 0x0800);
    ipv4(&first, 17, 8 + 1472, 0x2000, 0x4242); /* MF, offset 0 */
    udp(&first, 53, 33000, 3000);
    put_zero(&first, 1472);
    eth(&later, 0x0800);
    ipv4(&later, 17, 200, 185, 0x4242); /* offset 1480 */
    put_zero(&later, 200);
    eth(&orphan, 0x0800);
    ipv4(&orphan, 17, 200, 185, 0x4343);
    put_zero(&orphan, 200);

    CHECK_INT(run(NP_DLT_EN10MB, &later, &k), NP_PKT_OK);
    CHECK_INT(k.flags & (NP_PKT_F_FRAG | NP_PKT_F_PORTS), NP_PKT_F_FRAG);
    CHECK(!np_frag_resolve(t, &k, 1000)); /* first not seen yet */

    CHECK_INT(run(NP_DLT_EN10MB, &first, &k), NP_PKT_OK);
    CHECK_INT(k.flags & NP_PKT_F_FRAG_FIRST, NP_PKT_F_FRAG_FIRST);
    CHECK(np_frag_resolve(t, &k, 2000));

    CHECK_INT(run(NP_DLT_EN10MB, &later, &k), NP_PKT_OK);
    CHECK(np_frag_resolve(t, &k, 3000));
    CHECK_INT(k.key.sport, 53);
    CHECK_INT(k.key.dport, 33000);
    CHECK_INT(k.flags & NP_PKT_F_PORTS, NP_PKT_F_PORTS);

    CHECK_INT(run(NP_DLT_EN10MB, &orphan, &k), NP_PKT_OK);
    CHECK(!np_frag_resolve(t, &k, 4000));
    CHECK_INT(k.key.sport, 0);

    /* Past the time to live, the memory is not used. */
    CHECK_INT(run(NP_DLT_EN10MB, &later, &k), NP_PKT_OK);
    CHECK(!np_frag_resolve(t, &k, 2000 + NP_FRAG_TTL_US + 1));

    /* IPv6: fragment header, first with ports, later attributed. */
    struct pb f6 = {0}, l6 = {0};
    eth(&f6, 0x86dd);
    ipv6(&f6, 44, 8 + 8 + 100);
    put8(&f6, 17);
    put8(&f6, 0);
    put16(&f6, 0x0001); /* offset 0, M */
    put32(&f6, 0x01020304);
    udp(&f6, 53, 41000, 1000);
    put_zero(&f6, 100);
    eth(&l6, 0x86dd);
    ipv6(&l6, 44, 8 + 100);
    put8(&l6, 17);
    put8(&l6, 0);
    put16(&l6, 108 << 3);
    put32(&l6, 0x01020304);
    put_zero(&l6, 100);
    CHECK_INT(run(NP_DLT_EN10MB, &f6, &k), NP_PKT_OK);
    CHECK_INT(k.key.dport, 41000);
    CHECK(np_frag_resolve(t, &k, 5000));
    CHECK_INT(run(NP_DLT_EN10MB, &l6, &k), NP_PKT_OK);
    CHECK_INT(k.key.proto, 17);
    CHECK(np_frag_resolve(t, &k, 5001));
    CHECK_INT(k.key.dport, 41000);
    free(t);
}

static void test_not_ip_and_names(void)
{
    struct pb p = {0};
    struct np_pkt k;
    eth(&p, 0x0806); /* ARP */
    put_zero(&p, 28);
    CHECK_INT(run(NP_DLT_EN10MB, &p, &k), NP_PKT_NOT_IP);
    struct pb l = {0};
    eth(&l, 46); /* 802.3 length field + LLC */
    put_zero(&l, 46);
    CHECK_INT(run(NP_DLT_EN10MB, &l, &k), NP_PKT_NOT_IP);
    for (int s = 0; s < NP_PKT_STATUS_COUNT; s++) {
        CHECK(np_pkt_status_name((enum np_pkt_status)s) != NULL);
        CHECK(strcmp(np_pkt_status_name((enum np_pkt_status)s), "unknown") != 0);
    }
    CHECK_STR(np_pkt_status_name(NP_PKT_STATUS_COUNT), "unknown");
}

/* One frame decoded by the inline fast path (Ethernet, at most one 802.1Q
 * tag) and by the general decoder alone (the same tag as 802.1ad; untagged:
 * the same bytes behind a Linux cooked v2 header, 6 bytes longer than
 * Ethernet's) must give the same result. l2 is the frame's link header
 * length, 14 or 18. Returns 1 when the fast path took the frame. */
static int fast_vs_general(const struct pb *e, size_t l2, uint32_t cap, uint32_t wire)
{
    struct pb g = {0};
    struct np_pkt a, b;
    size_t shift = 0;
    if (l2 == 18) {
        g = *e;
        g.b[12] = 0x88;
        g.b[13] = 0xa8;
    } else {
        put16(&g, (unsigned)e->b[12] << 8 | e->b[13]);
        put_zero(&g, 18);
        memcpy(g.b + g.n, e->b + 14, e->n - 14);
        g.n += e->n - 14;
        shift = 6;
    }
    int fast = np_pkt_decode_fast(e->b, cap, wire, &a);
    enum np_pkt_status sa = np_pkt_decode(NP_DLT_EN10MB, e->b, cap, wire, &a);
    enum np_pkt_status sb = np_pkt_decode(l2 == 18 ? NP_DLT_EN10MB : NP_DLT_LINUX_SLL2, g.b,
                                          (uint32_t)(cap + shift), (uint32_t)(wire + shift), &b);
    CHECK_INT(sa, sb);
    CHECK(memcmp(&a.key, &b.key, sizeof a.key) == 0);
    CHECK_INT(a.flags, b.flags);
    CHECK_INT(a.frag_id, b.frag_id);
    CHECK_INT(a.vlan_depth, b.vlan_depth);
    CHECK_INT(a.wire_len + shift, b.wire_len);
    CHECK_INT(a.l3_offset ? a.l3_offset + shift : 0, b.l3_offset);
    if (fast) {
        CHECK_INT(sa, NP_PKT_OK);
    }
    return fast;
}

static void test_fast_path_agrees(void)
{
    static const uint8_t values[] = {0x00, 0x01, 0x05, 0x06, 0x07, 0x08, 0x11,
                                     0x14, 0x20, 0x2c, 0x3a, 0x3f, 0x45, 0x46,
                                     0x50, 0x60, 0x70, 0x86, 0x90, 0xdd, 0xff};
    int fast = 0, tried = 0;
    for (int v6 = 0; v6 < 2; v6++) {
        for (int l4 = 0; l4 < 3; l4++) { /* TCP, UDP, ICMP(v6) */
            for (int tagged = 0; tagged < 2; tagged++) {
                struct pb e = {0};
                size_t l2 = tagged ? 18 : 14;
                unsigned proto = l4 == 0 ? 6 : l4 == 1 ? 17 : v6 ? 58 : 1;
                eth(&e, tagged ? 0x8100 : (v6 ? 0x86dd : 0x0800));
                if (tagged) {
                    vlan(&e, 0x2064, v6 ? 0x86dd : 0x0800);
                }
                unsigned payload = l4 ? 8 + 12 : 20 + 12;
                if (v6) {
                    ipv6(&e, proto, payload);
                } else {
                    ipv4(&e, proto, payload, 0, 7);
                }
                if (l4 == 0) {
                    tcp(&e, 51000, 443);
                } else if (l4 == 1) {
                    udp(&e, 5353, 53, payload);
                } else {
                    put32(&e, 0x08000000u); /* echo request, checksum */
                    put32(&e, 0x00010002u); /* identifier, sequence */
                }
                put_zero(&e, 12);
                uint32_t n = (uint32_t)e.n;
                fast += fast_vs_general(&e, l2, n, n);
                /* Every byte of the link, IP and transport headers, each value. */
                size_t hdr = l2 + (v6 ? 40 : 20) + (l4 ? 8 : 20);
                for (size_t i = 12; i < hdr; i++) {
                    for (size_t j = 0; j < sizeof values; j++) {
                        struct pb m = e;
                        if (tagged && i >= 12 && i < 14) {
                            continue; /* the tag itself: compared against 802.1ad */
                        }
                        m.b[i] = values[j];
                        fast += fast_vs_general(&m, l2, n, n);
                        fast += fast_vs_general(&m, l2, n - 13, n);
                        fast += fast_vs_general(&m, l2, n, n + 100);
                        tried += 3;
                    }
                }
                /* Every capture and wire length around the headers. */
                for (uint32_t cap = 40; cap <= n; cap++) {
                    for (uint32_t wire = cap; wire <= n + 2; wire++) {
                        fast += fast_vs_general(&e, l2, cap, wire);
                        tried++;
                    }
                }
            }
        }
    }
    /* Both paths were exercised: the fast one took many frames, not all. */
    CHECK(fast > 1000);
    CHECK(fast < tried);
}

int main(void)
{
    test_ethernet_ipv4_tcp();
    test_vlan_qinq();
    test_sll_sll2();
    test_raw_null_loop();
    test_pppoe_mpls();
    test_ipv4_malformed();
    test_gre_esp_ah();
    test_ipv6_ext();
    test_fragments();
    test_not_ip_and_names();
    test_fast_path_agrees();
    return check_done("test_flow_decode");
}
