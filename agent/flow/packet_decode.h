/* packet_decode: turns one captured frame into a flow key, or says why it
 * cannot (truncated by the snaplen, malformed on the wire, not IP).
 *
 * Pure: no libpcap, no allocation, no state. The link types are libpcap's DLT
 * numbers (the capture module checks at compile time that they match). Input
 * bytes are borrowed for the duration of the call only. Any thread; the
 * functions are reentrant.
 *
 * Fragments are resolved by the caller with struct np_frag_table below, which
 * remembers the ports of first fragments so that later fragments of the same
 * datagram are attributed to the same flow. */
#ifndef NP_AGENT_FLOW_PACKET_DECODE_H
#define NP_AGENT_FLOW_PACKET_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* libpcap link types we decode (values as in pcap/dlt.h on Linux). */
enum np_dlt {
    NP_DLT_NULL = 0,     /* BSD loopback: 4-byte address family, host order */
    NP_DLT_EN10MB = 1,   /* Ethernet */
    NP_DLT_RAW = 12,     /* raw IPv4/IPv6 (LINKTYPE_RAW 101 is mapped to this) */
    NP_DLT_RAW_ALT = 14, /* DLT_RAW on OpenBSD */
    NP_DLT_LINKTYPE_RAW = 101,
    NP_DLT_LOOP = 108,      /* OpenBSD loopback: address family in network order */
    NP_DLT_LINUX_SLL = 113, /* Linux cooked capture v1 */
    NP_DLT_IPV4 = 228,
    NP_DLT_IPV6 = 229,
    NP_DLT_LINUX_SLL2 = 276, /* Linux cooked capture v2 */
};

/* Outcome of np_pkt_decode. NP_PKT_OK and NP_PKT_NOT_IP are not drops; every
 * value from NP_PKT_DROP_FIRST on is a drop reason (the frame still counts in
 * the totals, with its wire length, but in no flow). */
enum np_pkt_status {
    NP_PKT_OK = 0, /* IP packet, key filled */
    NP_PKT_NOT_IP, /* ARP, LLDP, STP, PPPoE discovery ...: counted, no flow */
    NP_PKT_DROP_FIRST,
    NP_PKT_UNSUPPORTED_LINK = NP_PKT_DROP_FIRST, /* link type we do not decode */
    NP_PKT_TRUNC_LINK,                           /* link header cut by the snaplen */
    NP_PKT_TRUNC_IPV4,                           /* IPv4 header cut by the snaplen */
    NP_PKT_TRUNC_IPV6,      /* IPv6 header or extension header cut by the snaplen */
    NP_PKT_TRUNC_L4,        /* ports / ICMP type cut by the snaplen */
    NP_PKT_BAD_LINK,        /* link header inconsistent with the frame (e.g. PPPoE length) */
    NP_PKT_TOO_MANY_TAGS,   /* more stacked VLAN tags or MPLS labels than we follow */
    NP_PKT_BAD_IPV4_HEADER, /* version or header length invalid */
    NP_PKT_BAD_IPV4_LENGTH, /* total length shorter than header or past the frame */
    NP_PKT_BAD_IPV6_HEADER, /* version invalid */
    NP_PKT_BAD_IPV6_LENGTH, /* payload length past the frame */
    NP_PKT_BAD_IPV6_EXT,    /* extension header chain runs past the payload, or too long */
    NP_PKT_BAD_TCP,         /* data offset < 5 or header past the IP payload */
    NP_PKT_BAD_UDP,         /* UDP length < 8 or past the IP payload */
    NP_PKT_BAD_L4,          /* ICMP/GRE/ESP header past the IP payload */
    NP_PKT_STATUS_COUNT
};

/* Short stable name of a status for reports ("truncated_ipv4" ...). Static. */
const char *np_pkt_status_name(enum np_pkt_status status);

#define NP_VLAN_NONE 0xffffu

/* Flow identity: 5-tuple plus the outer and inner VLAN. Addresses are network
 * order; IPv4 uses the first 4 bytes, the rest stays zero. For ICMP/ICMPv6,
 * dport carries type << 8 | code (as NetFlow does) and sport is 0. */
struct np_flow_key {
    uint8_t src[16];
    uint8_t dst[16];
    uint16_t sport;
    uint16_t dport;
    uint16_t vlan;       /* outermost VLAN id, NP_VLAN_NONE when untagged */
    uint16_t vlan_inner; /* second tag (QinQ), NP_VLAN_NONE when absent */
    uint8_t proto;       /* IP protocol (upper layer after IPv6 extension headers) */
    uint8_t family;      /* 4 or 6 */
    uint8_t pad[2];      /* always zero: the key is hashed and compared as bytes */
};

enum np_pkt_flag {
    NP_PKT_F_L3 = 1u << 0,         /* IP header decoded: family, addresses, proto valid */
    NP_PKT_F_PORTS = 1u << 1,      /* sport/dport valid */
    NP_PKT_F_FRAG = 1u << 2,       /* IP fragment (first or not) */
    NP_PKT_F_FRAG_FIRST = 1u << 3, /* fragment offset 0 */
};

struct np_pkt {
    struct np_flow_key key;
    uint32_t wire_len;  /* original length on the wire */
    uint32_t frag_id;   /* IPv4 identification or IPv6 fragment identification */
    uint16_t l3_offset; /* offset of the IP header in the captured bytes */
    uint8_t flags;      /* enum np_pkt_flag */
    uint8_t vlan_depth; /* number of VLAN tags passed */
};

/* Decodes one frame of link type dlt: data holds caplen captured bytes of a
 * frame that was wire_len bytes long. Fills *out (always fully initialised,
 * also on drops: what was decoded before the problem stays, see out->flags)
 * and returns its status. Never reads beyond data[caplen - 1]. */
enum np_pkt_status np_pkt_decode(int dlt, const uint8_t *data, uint32_t caplen, uint32_t wire_len,
                                 struct np_pkt *out);

/* np_pkt_decode without trying np_pkt_decode_fast first: for a caller that
 * already did (the per-packet path), so a frame it refused is not tried twice. */
enum np_pkt_status np_pkt_decode_general(int dlt, const uint8_t *data, uint32_t caplen,
                                         uint32_t wire_len, struct np_pkt *out);

/* The common frame, inline for the per-packet path: Ethernet (dlt
 * NP_DLT_EN10MB) with at most one 802.1Q tag, IPv4 without options or IPv6
 * without extension headers, not a fragment, TCP, UDP, ICMP or ICMPv6, every header
 * captured and consistent with the lengths. Fills *out completely and returns
 * true, exactly as np_pkt_decode would (which calls it first); returns false,
 * *out undefined, for every other frame: call np_pkt_decode_general then. */
static inline uint16_t np_pkt_rd16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline bool np_pkt_decode_fast(const uint8_t *data, uint32_t caplen, uint32_t wire_len,
                                      struct np_pkt *out)
{
    /* A record claiming more captured than wire bytes is corrupt; trust the smaller. */
    uint32_t cap = caplen < wire_len ? caplen : wire_len;
    if (__builtin_expect(cap < 14 + 20 + 14, 0)) {
        return false;
    }
    if (__builtin_expect(!data, 0)) {
        return false;
    }
    uint32_t at = 14;
    uint16_t type = np_pkt_rd16(data + 12);
    uint16_t vlan = NP_VLAN_NONE;
    if (type == 0x8100u) {
        vlan = np_pkt_rd16(data + 14) & 0x0fffu;
        type = np_pkt_rd16(data + 16);
        at = 18;
    }
    const uint8_t *ip = data + at;
    uint32_t l4_len;
    uint8_t proto;
    bool v4 = type == 0x0800u;
    if (v4) {
        /* Header length 5 words; no fragment (MF clear, offset 0). */
        if (cap < at + 20 + 14 || ip[0] != 0x45 || (np_pkt_rd16(ip + 6) & 0x3fffu) != 0) {
            return false;
        }
        uint32_t total = np_pkt_rd16(ip + 2);
        if (total < 20 + 8 || total > wire_len - at) {
            return false;
        }
        l4_len = total - 20;
        proto = ip[9];
    } else if (type == 0x86ddu) {
        if (cap < at + 40 + 14 || ip[0] >> 4 != 6) {
            return false;
        }
        l4_len = np_pkt_rd16(ip + 4);
        if (l4_len == 0 || l4_len > wire_len - at - 40) {
            return false;
        }
        proto = ip[6];
    } else {
        return false;
    }
    const uint8_t *l4 = ip + (v4 ? 20 : 40);
    if (proto == 6) {
        unsigned doff = (unsigned)(l4[12] >> 4) * 4u;
        if (l4_len < 20 || doff < 20 || doff > l4_len) {
            return false;
        }
    } else if (proto == 17) {
        uint32_t ulen = np_pkt_rd16(l4 + 4);
        /* ulen 0: an IPv6 jumbogram (RFC 2675), as the general decoder accepts it. */
        if (l4_len < 8 || ulen > l4_len || (ulen < 8 && !(ulen == 0 && !v4))) {
            return false;
        }
    } else if (proto == 1 || proto == 58) {
        if (l4_len < 4) {
            return false;
        }
    } else {
        return false;
    }
    /* ICMP and ICMPv6: dport carries type << 8 | code, sport 0. */
    bool icmp = proto == 1 || proto == 58;
    uint16_t first = np_pkt_rd16(l4), second = np_pkt_rd16(l4 + 2);
    struct np_flow_key *k = &out->key;
    if (v4) {
        memcpy(k->src, ip + 12, 4);
        memset(k->src + 4, 0, 12);
        memcpy(k->dst, ip + 16, 4);
        memset(k->dst + 4, 0, 12);
    } else {
        memcpy(k->src, ip + 8, 16);
        memcpy(k->dst, ip + 24, 16);
    }
    k->sport = icmp ? 0 : first;
    k->dport = icmp ? first : second;
    k->vlan = vlan;
    k->vlan_inner = NP_VLAN_NONE;
    k->proto = proto;
    k->family = v4 ? 4 : 6;
    k->pad[0] = k->pad[1] = 0;
    out->wire_len = wire_len;
    out->frag_id = 0;
    out->l3_offset = (uint16_t)at;
    out->flags = NP_PKT_F_L3 | NP_PKT_F_PORTS;
    out->vlan_depth = vlan != NP_VLAN_NONE;
    return true;
}

/* Memory of recent first fragments: a small direct-mapped table keyed by
 * (family, src, dst, proto, id). Zero-initialise it (or np_frag_table_init).
 * Not shared between threads. A slot is overwritten by a newer first fragment
 * that hashes to it; entries older than NP_FRAG_TTL_US are ignored. */
#define NP_FRAG_SLOTS 1024
#define NP_FRAG_TTL_US (30u * 1000u * 1000u)

struct np_frag_entry {
    uint8_t src[16];
    uint8_t dst[16];
    uint64_t ts_us; /* 0: empty */
    uint32_t id;
    uint16_t sport;
    uint16_t dport;
    uint8_t proto;
    uint8_t family;
};

struct np_frag_table {
    struct np_frag_entry slot[NP_FRAG_SLOTS];
};

void np_frag_table_init(struct np_frag_table *t);

/* For a fragment (NP_PKT_F_FRAG set): a first fragment with ports is
 * remembered; a later fragment gets the ports of its first fragment when that
 * was seen (returns true and sets NP_PKT_F_PORTS), else false: the caller
 * attributes it to the port-less flow of the address pair. ts_us is the
 * packet's capture time. */
bool np_frag_resolve(struct np_frag_table *t, struct np_pkt *pkt, uint64_t ts_us);

#endif
