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
