#include "packet_decode.h"

#include <string.h>

/* Deepest stack of VLAN tags / MPLS labels / IPv6 extension headers we follow.
 * Real uplinks use two tags (QinQ) and a handful of labels; anything deeper is
 * treated as malformed rather than walked. */
#define MAX_VLAN_TAGS 4
#define MAX_MPLS_LABELS 8
#define MAX_IPV6_EXT 8

#define ETH_IPV4 0x0800u
#define ETH_IPV6 0x86ddu
#define ETH_VLAN 0x8100u
#define ETH_QINQ 0x88a8u
#define ETH_QINQ_OLD 0x9100u
#define ETH_MPLS 0x8847u
#define ETH_MPLS_MC 0x8848u
#define ETH_PPPOE_SESSION 0x8864u

#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_ICMP_ 1
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_ROUTING_ 43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_GRE_ 47
#define IPPROTO_ESP_ 50
#define IPPROTO_AH_ 51
#define IPPROTO_ICMPV6_ 58
#define IPPROTO_DSTOPTS_ 60
#define IPPROTO_MH_ 135
#define IPPROTO_UDPLITE_ 136
#define IPPROTO_SCTP_ 132

static const char *const status_names[NP_PKT_STATUS_COUNT] = {
    [NP_PKT_OK] = "ok",
    [NP_PKT_NOT_IP] = "not_ip",
    [NP_PKT_UNSUPPORTED_LINK] = "unsupported_link",
    [NP_PKT_TRUNC_LINK] = "truncated_link",
    [NP_PKT_TRUNC_IPV4] = "truncated_ipv4",
    [NP_PKT_TRUNC_IPV6] = "truncated_ipv6",
    [NP_PKT_TRUNC_L4] = "truncated_l4",
    [NP_PKT_BAD_LINK] = "bad_link",
    [NP_PKT_TOO_MANY_TAGS] = "too_many_tags",
    [NP_PKT_BAD_IPV4_HEADER] = "bad_ipv4_header",
    [NP_PKT_BAD_IPV4_LENGTH] = "bad_ipv4_length",
    [NP_PKT_BAD_IPV6_HEADER] = "bad_ipv6_header",
    [NP_PKT_BAD_IPV6_LENGTH] = "bad_ipv6_length",
    [NP_PKT_BAD_IPV6_EXT] = "bad_ipv6_ext",
    [NP_PKT_BAD_TCP] = "bad_tcp",
    [NP_PKT_BAD_UDP] = "bad_udp",
    [NP_PKT_BAD_L4] = "bad_l4",
};

const char *np_pkt_status_name(enum np_pkt_status status)
{
    if ((unsigned)status >= NP_PKT_STATUS_COUNT) {
        return "unknown";
    }
    return status_names[status];
}

static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The frame as seen by the decoder: cap captured bytes of a wire-long frame.
 * A header that does not fit in cap but fits in wire is truncated (snaplen);
 * one that does not fit in wire is malformed. */
struct frame {
    const uint8_t *data;
    uint32_t cap;
    uint32_t wire;
};

/* Upper-layer header: ports or type/code. at is the offset of the L4 header,
 * end the offset where the IP payload ends on the wire. */
static enum np_pkt_status decode_l4(const struct frame *f, uint32_t at, uint32_t end,
                                    struct np_pkt *out)
{
    struct np_flow_key *k = &out->key;
    uint32_t need;
    enum np_pkt_status bad;
    switch (k->proto) {
    case IPPROTO_TCP_:
        need = 20;
        bad = NP_PKT_BAD_TCP;
        break;
    case IPPROTO_UDP_:
    case IPPROTO_UDPLITE_:
        need = 8;
        bad = NP_PKT_BAD_UDP;
        break;
    case IPPROTO_SCTP_:
        need = 12;
        bad = NP_PKT_BAD_L4;
        break;
    case IPPROTO_ICMP_:
    case IPPROTO_ICMPV6_:
        need = 4;
        bad = NP_PKT_BAD_L4;
        break;
    case IPPROTO_GRE_:
        need = 4; /* flags/version and protocol type */
        bad = NP_PKT_BAD_L4;
        break;
    case IPPROTO_ESP_:
        need = 8; /* SPI and sequence number */
        bad = NP_PKT_BAD_L4;
        break;
    default:
        return NP_PKT_OK; /* IGMP, OSPF, IPIP ...: the address pair is the flow */
    }
    if (end < at || end - at < need) {
        return bad;
    }
    if (f->cap < at || f->cap - at < (k->proto == IPPROTO_TCP_ ? 13 : (need < 4 ? need : 4))) {
        /* TCP wants the data offset byte (13) to validate; the others only the
         * first 4 bytes for ports/type. */
        return NP_PKT_TRUNC_L4;
    }
    const uint8_t *p = f->data + at;
    switch (k->proto) {
    case IPPROTO_TCP_: {
        unsigned doff = (unsigned)(p[12] >> 4) * 4u;
        if (doff < 20 || end - at < doff) {
            return NP_PKT_BAD_TCP;
        }
        k->sport = rd16(p);
        k->dport = rd16(p + 2);
        break;
    }
    case IPPROTO_UDP_:
    case IPPROTO_UDPLITE_:
        if (k->proto == IPPROTO_UDP_) {
            if (f->cap - at < 6) {
                return NP_PKT_TRUNC_L4;
            }
            uint16_t ulen = rd16(p + 4);
            /* ulen 0 is a jumbogram (RFC 2675) only over IPv6. In a first
             * fragment ulen covers the whole datagram, past this fragment. */
            bool frag = (out->flags & NP_PKT_F_FRAG) != 0;
            if ((ulen < 8 && !(ulen == 0 && k->family == 6)) || (!frag && ulen > end - at)) {
                return NP_PKT_BAD_UDP;
            }
        }
        k->sport = rd16(p);
        k->dport = rd16(p + 2);
        break;
    case IPPROTO_SCTP_:
        k->sport = rd16(p);
        k->dport = rd16(p + 2);
        break;
    case IPPROTO_ICMP_:
    case IPPROTO_ICMPV6_:
        k->sport = 0;
        k->dport = (uint16_t)(p[0] << 8 | p[1]);
        break;
    default: /* GRE, ESP: validated length; the address pair is the flow */
        return NP_PKT_OK;
    }
    out->flags |= NP_PKT_F_PORTS;
    return NP_PKT_OK;
}

static enum np_pkt_status decode_ipv4(const struct frame *f, uint32_t at, struct np_pkt *out)
{
    if (f->wire < at || f->wire - at < 20) {
        return NP_PKT_BAD_IPV4_LENGTH;
    }
    if (f->cap < at || f->cap - at < 20) {
        return NP_PKT_TRUNC_IPV4;
    }
    const uint8_t *p = f->data + at;
    if (p[0] >> 4 != 4) {
        return NP_PKT_BAD_IPV4_HEADER;
    }
    uint32_t ihl = (uint32_t)(p[0] & 0x0f) * 4u;
    uint32_t total = rd16(p + 2);
    if (ihl < 20) {
        return NP_PKT_BAD_IPV4_HEADER;
    }
    /* From here the header is an IPv4 header: it counts as IPv4 with its
     * protocol (as tshark counts it) even if its lengths are then refused. */
    struct np_flow_key *k = &out->key;
    k->family = 4;
    k->proto = p[9];
    memcpy(k->src, p + 12, 4);
    memcpy(k->dst, p + 16, 4);
    out->l3_offset = (uint16_t)(at > 0xffff ? 0xffff : at);
    out->flags |= NP_PKT_F_L3;
    /* TSO/GRO captures on the sending host show total length 0: take the frame. */
    if (total == 0) {
        total = f->wire - at;
    }
    if (total < ihl || total > f->wire - at) {
        return NP_PKT_BAD_IPV4_LENGTH;
    }
    if (f->cap - at < ihl) {
        return NP_PKT_TRUNC_IPV4; /* options cut: no way to find the L4 header */
    }
    uint16_t frag = rd16(p + 6);
    uint16_t offset = frag & 0x1fffu;
    bool more = (frag & 0x2000u) != 0;
    if (offset != 0 || more) {
        out->flags |= NP_PKT_F_FRAG;
        out->frag_id = rd16(p + 4);
        if (offset != 0) {
            return NP_PKT_OK; /* ports come from the first fragment, if seen */
        }
        out->flags |= NP_PKT_F_FRAG_FIRST;
    }
    uint32_t l4 = at + ihl, end = at + total;
    /* AH (RFC 4302) before the transport header: skip it so the flow keeps its ports. */
    if (k->proto == IPPROTO_AH_) {
        if (end - l4 < 8) {
            return NP_PKT_BAD_L4;
        }
        if (f->cap - l4 < 2) {
            return NP_PKT_TRUNC_L4;
        }
        uint32_t len = ((uint32_t)f->data[l4 + 1] + 2u) * 4u;
        if (end - l4 < len) {
            return NP_PKT_BAD_L4;
        }
        k->proto = f->data[l4];
        l4 += len;
    }
    return decode_l4(f, l4, end, out);
}

static bool ipv6_is_ext(uint8_t nh)
{
    return nh == IPPROTO_HOPOPTS_ || nh == IPPROTO_ROUTING_ || nh == IPPROTO_FRAGMENT_ ||
           nh == IPPROTO_DSTOPTS_ || nh == IPPROTO_AH_ || nh == IPPROTO_MH_ || nh == 139 ||
           nh == 140 || nh == 253 || nh == 254;
}

static enum np_pkt_status decode_ipv6(const struct frame *f, uint32_t at, struct np_pkt *out)
{
    if (f->wire < at || f->wire - at < 40) {
        return NP_PKT_BAD_IPV6_LENGTH;
    }
    if (f->cap < at || f->cap - at < 40) {
        return NP_PKT_TRUNC_IPV6;
    }
    const uint8_t *p = f->data + at;
    if (p[0] >> 4 != 6) {
        return NP_PKT_BAD_IPV6_HEADER;
    }
    uint32_t plen = rd16(p + 4);
    struct np_flow_key *k = &out->key;
    k->family = 6;
    memcpy(k->src, p + 8, 16);
    memcpy(k->dst, p + 24, 16);
    out->l3_offset = (uint16_t)(at > 0xffff ? 0xffff : at);
    uint8_t nh = p[6];
    if (plen == 0) {
        plen = f->wire - at - 40; /* jumbogram or offloaded segment: the frame says */
    }
    if (plen > f->wire - at - 40) {
        k->proto = nh; /* counted as IPv6 with its first next header, then refused */
        out->flags |= NP_PKT_F_L3;
        return NP_PKT_BAD_IPV6_LENGTH;
    }
    uint32_t pos = at + 40, end = at + 40 + plen;
    /* RFC 8200 4.1: walk the extension headers to the upper-layer protocol. */
    for (int n = 0; ipv6_is_ext(nh); n++) {
        if (n == MAX_IPV6_EXT || end - pos < 8) {
            k->proto = nh;
            out->flags |= NP_PKT_F_L3;
            return NP_PKT_BAD_IPV6_EXT;
        }
        if (f->cap < pos || f->cap - pos < 8) {
            k->proto = nh;
            out->flags |= NP_PKT_F_L3;
            return NP_PKT_TRUNC_IPV6;
        }
        const uint8_t *e = f->data + pos;
        uint32_t len;
        if (nh == IPPROTO_FRAGMENT_) {
            uint16_t off = rd16(e + 2);
            out->flags |= NP_PKT_F_FRAG;
            out->frag_id = rd32(e + 4);
            if ((off & 0xfff8u) != 0) {
                /* Later fragment: the next header names the upper layer, whose
                 * header is in the first fragment only. */
                k->proto = e[0];
                out->flags |= NP_PKT_F_L3;
                return NP_PKT_OK;
            }
            out->flags |= NP_PKT_F_FRAG_FIRST;
            len = 8;
        } else if (nh == IPPROTO_AH_) {
            len = ((uint32_t)e[1] + 2u) * 4u;
        } else {
            len = ((uint32_t)e[1] + 1u) * 8u;
        }
        if (end - pos < len) {
            k->proto = nh;
            out->flags |= NP_PKT_F_L3;
            return NP_PKT_BAD_IPV6_EXT;
        }
        nh = e[0];
        pos += len;
    }
    k->proto = nh;
    out->flags |= NP_PKT_F_L3;
    if (nh == 59) {
        return NP_PKT_OK; /* no next header */
    }
    return decode_l4(f, pos, end, out);
}

static enum np_pkt_status decode_ip_guess(const struct frame *f, uint32_t at, struct np_pkt *out)
{
    if (f->cap <= at) {
        return f->wire <= at ? NP_PKT_BAD_LINK : NP_PKT_TRUNC_LINK;
    }
    switch (f->data[at] >> 4) {
    case 4:
        return decode_ipv4(f, at, out);
    case 6:
        return decode_ipv6(f, at, out);
    default:
        return NP_PKT_NOT_IP;
    }
}

static enum np_pkt_status decode_ethertype(const struct frame *f, uint16_t type, uint32_t at,
                                           struct np_pkt *out);

static enum np_pkt_status decode_mpls(const struct frame *f, uint32_t at, struct np_pkt *out)
{
    for (int n = 0; n < MAX_MPLS_LABELS; n++) {
        if (f->wire < at || f->wire - at < 4) {
            return NP_PKT_BAD_LINK;
        }
        if (f->cap < at || f->cap - at < 4) {
            return NP_PKT_TRUNC_LINK;
        }
        bool bottom = (f->data[at + 2] & 0x01) != 0;
        at += 4;
        if (bottom) {
            /* RFC 3032 carries no payload type: the first nibble tells IPv4 and
             * IPv6 apart. 0000 is a pseudowire control word (RFC 4385); behind
             * it we expect an Ethernet pseudowire (RFC 4448), as tshark does. */
            if (f->cap > at && f->data[at] >> 4 == 0) {
                at += 4;
                if (f->wire < at || f->wire - at < 14) {
                    return NP_PKT_NOT_IP;
                }
                if (f->cap < at || f->cap - at < 14) {
                    return NP_PKT_TRUNC_LINK;
                }
                return decode_ethertype(f, rd16(f->data + at + 12), at + 14, out);
            }
            return decode_ip_guess(f, at, out);
        }
    }
    return NP_PKT_TOO_MANY_TAGS;
}

/* PPPoE session stage (RFC 2516): 6-byte header, then the PPP protocol. */
static enum np_pkt_status decode_pppoe(const struct frame *f, uint32_t at, struct np_pkt *out)
{
    if (f->wire < at || f->wire - at < 8) {
        return NP_PKT_BAD_LINK;
    }
    if (f->cap < at || f->cap - at < 8) {
        return NP_PKT_TRUNC_LINK;
    }
    const uint8_t *p = f->data + at;
    uint32_t len = rd16(p + 4);
    if (p[0] != 0x11 || p[1] != 0x00 || len < 2 || len > f->wire - at - 6) {
        return NP_PKT_BAD_LINK;
    }
    uint16_t ppp = rd16(p + 6);
    switch (ppp) {
    case 0x0021:
        return decode_ipv4(f, at + 8, out);
    case 0x0057:
        return decode_ipv6(f, at + 8, out);
    case 0x0281: /* MPLS unicast over PPP */
        return decode_mpls(f, at + 8, out);
    default:
        return NP_PKT_NOT_IP; /* LCP, IPCP, PAP ... */
    }
}

static enum np_pkt_status decode_ethertype(const struct frame *f, uint16_t type, uint32_t at,
                                           struct np_pkt *out)
{
    for (;;) {
        switch (type) {
        case ETH_IPV4:
            return decode_ipv4(f, at, out);
        case ETH_IPV6:
            return decode_ipv6(f, at, out);
        case ETH_VLAN:
        case ETH_QINQ:
        case ETH_QINQ_OLD: {
            if (out->vlan_depth == MAX_VLAN_TAGS) {
                return NP_PKT_TOO_MANY_TAGS;
            }
            if (f->wire < at || f->wire - at < 4) {
                return NP_PKT_BAD_LINK;
            }
            if (f->cap < at || f->cap - at < 4) {
                return NP_PKT_TRUNC_LINK;
            }
            uint16_t vid = rd16(f->data + at) & 0x0fffu;
            if (out->vlan_depth == 0) {
                out->key.vlan = vid;
            } else if (out->vlan_depth == 1) {
                out->key.vlan_inner = vid;
            }
            out->vlan_depth++;
            type = rd16(f->data + at + 2);
            at += 4;
            continue;
        }
        case ETH_MPLS:
        case ETH_MPLS_MC:
            return decode_mpls(f, at, out);
        case ETH_PPPOE_SESSION:
            return decode_pppoe(f, at, out);
        default:
            return NP_PKT_NOT_IP; /* ARP, LLDP, 802.3 length + LLC, PPPoE discovery ... */
        }
    }
}

/* BSD loopback: the address family is a 32-bit word in the byte order of the
 * capturing host. IPv6 has a different AF_INET6 value on each BSD. */
static enum np_pkt_status decode_null(const struct frame *f, bool network_order, struct np_pkt *out)
{
    if (f->wire < 4) {
        return NP_PKT_BAD_LINK;
    }
    if (f->cap < 4) {
        return NP_PKT_TRUNC_LINK;
    }
    uint32_t af = rd32(f->data);
    if (!network_order && (af & 0xffff0000u) != 0) {
        af = (af >> 24) | ((af >> 8) & 0xff00u) | ((af << 8) & 0xff0000u) | (af << 24);
    }
    switch (af) {
    case 2: /* AF_INET everywhere */
        return decode_ipv4(f, 4, out);
    case 10: /* Linux */
    case 24: /* NetBSD, OpenBSD */
    case 28: /* FreeBSD */
    case 30: /* macOS */
        return decode_ipv6(f, 4, out);
    default:
        return NP_PKT_NOT_IP;
    }
}

enum np_pkt_status np_pkt_decode(int dlt, const uint8_t *data, uint32_t caplen, uint32_t wire_len,
                                 struct np_pkt *out)
{
    if (dlt == NP_DLT_EN10MB && np_pkt_decode_fast(data, caplen, wire_len, out)) {
        return NP_PKT_OK;
    }
    return np_pkt_decode_general(dlt, data, caplen, wire_len, out);
}

enum np_pkt_status np_pkt_decode_general(int dlt, const uint8_t *data, uint32_t caplen,
                                         uint32_t wire_len, struct np_pkt *out)
{
    memset(out, 0, sizeof *out);
    out->key.vlan = NP_VLAN_NONE;
    out->key.vlan_inner = NP_VLAN_NONE;
    out->wire_len = wire_len;
    /* A record claiming more captured than wire bytes is corrupt; trust the smaller. */
    struct frame f = {data, caplen < wire_len ? caplen : wire_len, wire_len};
    if (!data) {
        f.cap = 0;
    }
    switch (dlt) {
    case NP_DLT_EN10MB:
        if (f.wire < 14) {
            return NP_PKT_BAD_LINK;
        }
        if (f.cap < 14) {
            return NP_PKT_TRUNC_LINK;
        }
        return decode_ethertype(&f, rd16(data + 12), 14, out);
    case NP_DLT_LINUX_SLL:
        /* packet type, ARPHRD, addr len, 8 addr bytes, protocol */
        if (f.wire < 16) {
            return NP_PKT_BAD_LINK;
        }
        if (f.cap < 16) {
            return NP_PKT_TRUNC_LINK;
        }
        return decode_ethertype(&f, rd16(data + 14), 16, out);
    case NP_DLT_LINUX_SLL2:
        /* protocol, reserved, ifindex, ARPHRD, packet type, addr len, 8 addr bytes */
        if (f.wire < 20) {
            return NP_PKT_BAD_LINK;
        }
        if (f.cap < 20) {
            return NP_PKT_TRUNC_LINK;
        }
        return decode_ethertype(&f, rd16(data), 20, out);
    case NP_DLT_RAW:
    case NP_DLT_RAW_ALT:
    case NP_DLT_LINKTYPE_RAW:
        return decode_ip_guess(&f, 0, out);
    case NP_DLT_IPV4:
        return decode_ipv4(&f, 0, out);
    case NP_DLT_IPV6:
        return decode_ipv6(&f, 0, out);
    case NP_DLT_NULL:
        return decode_null(&f, false, out);
    case NP_DLT_LOOP:
        return decode_null(&f, true, out);
    default:
        return NP_PKT_UNSUPPORTED_LINK;
    }
}

void np_frag_table_init(struct np_frag_table *t)
{
    memset(t, 0, sizeof *t);
}

static uint32_t frag_slot(const struct np_pkt *pkt)
{
    const struct np_flow_key *k = &pkt->key;
    uint32_t h = pkt->frag_id * 0x9e3779b1u;
    unsigned n = k->family == 4 ? 4 : 16;
    for (unsigned i = 0; i < n; i++) {
        h = (h ^ k->src[i]) * 0x01000193u;
        h = (h ^ k->dst[i]) * 0x01000193u;
    }
    h ^= k->proto;
    h ^= h >> 15;
    return h & (NP_FRAG_SLOTS - 1);
}

static bool frag_same(const struct np_frag_entry *e, const struct np_pkt *pkt)
{
    const struct np_flow_key *k = &pkt->key;
    return e->id == pkt->frag_id && e->proto == k->proto && e->family == k->family &&
           memcmp(e->src, k->src, 16) == 0 && memcmp(e->dst, k->dst, 16) == 0;
}

bool np_frag_resolve(struct np_frag_table *t, struct np_pkt *pkt, uint64_t ts_us)
{
    if (!(pkt->flags & NP_PKT_F_FRAG) || !(pkt->flags & NP_PKT_F_L3)) {
        return false;
    }
    struct np_frag_entry *e = &t->slot[frag_slot(pkt)];
    if (pkt->flags & NP_PKT_F_FRAG_FIRST) {
        if (!(pkt->flags & NP_PKT_F_PORTS)) {
            return false;
        }
        memcpy(e->src, pkt->key.src, 16);
        memcpy(e->dst, pkt->key.dst, 16);
        e->id = pkt->frag_id;
        e->proto = pkt->key.proto;
        e->family = pkt->key.family;
        e->sport = pkt->key.sport;
        e->dport = pkt->key.dport;
        e->ts_us = ts_us ? ts_us : 1;
        return true;
    }
    if (e->ts_us == 0 || !frag_same(e, pkt)) {
        return false;
    }
    /* Capture files may go back in time (merged pcapng): only age forward. */
    if (ts_us > e->ts_us && ts_us - e->ts_us > NP_FRAG_TTL_US) {
        return false;
    }
    pkt->key.sport = e->sport;
    pkt->key.dport = e->dport;
    pkt->flags |= NP_PKT_F_PORTS;
    return true;
}
