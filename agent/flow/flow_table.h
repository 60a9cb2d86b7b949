/* flow_table: fixed-size open-addressing hash table of flows keyed by
 * struct np_flow_key (5-tuple + VLANs).
 *
 * Memory is allocated once at np_flow_table_new and never grows: a capture
 * thread on a small router must not allocate per packet. When max_flows
 * flows are present, a new flow evicts the smallest flow (by bytes) among the
 * slots near its home slot; evictions and the evicted packets/bytes are
 * counted so that nothing disappears silently. Linear probing with
 * backward-shift deletion; a per-table random seed keeps crafted traffic from
 * choosing collisions.
 *
 * Not thread-safe: one table belongs to one thread at a time (the capture
 * thread hands the whole table to the loop at each export). */
#ifndef NP_AGENT_FLOW_FLOW_TABLE_H
#define NP_AGENT_FLOW_FLOW_TABLE_H

#include "packet_decode.h"

#include <stddef.h>
#include <stdint.h>

/* Application classes from ports and protocols (np_flow_app_classify). */
enum np_flow_app {
    NP_APP_OTHER = 0,
    NP_APP_WEB,   /* HTTP(S) over TCP: 80, 443, 8080, 8443 ... */
    NP_APP_VIDEO, /* streaming and real-time media: RTMP, RTSP, STUN/TURN, Zoom, Meet */
    NP_APP_DNS,   /* DNS, DNS over TLS, mDNS */
    NP_APP_QUIC,  /* UDP 443 / 80 */
    NP_APP_VPN,   /* IPsec (ESP, AH, IKE), GRE, OpenVPN, WireGuard, L2TP, PPTP */
    NP_APP_EMAIL, /* SMTP, submission, IMAP(S), POP3(S) */
    NP_APP_COUNT
};

/* Stable report name of an application class ("web" ...). Static. */
const char *np_flow_app_name(enum np_flow_app app);

/* Classifies a key by its ports (the lower well-known port wins when both
 * match) and, for port-less protocols, by the IP protocol. Pure. */
enum np_flow_app np_flow_app_classify(const struct np_flow_key *key);

struct np_flow {
    struct np_flow_key key;
    uint64_t packets;
    uint64_t bytes; /* wire lengths */
    uint64_t first_us;
    uint64_t last_us;
    uint32_t hash; /* 0: empty slot */
    uint8_t app;   /* enum np_flow_app */
};

struct np_flow_table;

/* Creates a table that holds up to max_flows flows (1 .. 2^24). Returns 0,
 * -EINVAL or -ENOMEM. *out is freed with np_flow_table_free. */
int np_flow_table_new(uint32_t max_flows, struct np_flow_table **out);

/* Frees t (NULL is fine). */
void np_flow_table_free(struct np_flow_table *t);

/* Finds the flow of key or inserts it (zero counters, app classified),
 * evicting when full. Never fails; the returned pointer is valid until the
 * next upsert or clear. */
struct np_flow *np_flow_table_upsert(struct np_flow_table *t, const struct np_flow_key *key);

/* The flow of key, or NULL. */
const struct np_flow *np_flow_table_find(const struct np_flow_table *t,
                                         const struct np_flow_key *key);

/* Empties t and zeroes its eviction counters (start of an export interval). */
void np_flow_table_clear(struct np_flow_table *t);

/* Number of flows present, and the configured maximum. */
uint32_t np_flow_table_count(const struct np_flow_table *t);
uint32_t np_flow_table_max(const struct np_flow_table *t);

/* Flows evicted since the last clear, and what they carried. */
uint64_t np_flow_table_evicted(const struct np_flow_table *t);
uint64_t np_flow_table_evicted_packets(const struct np_flow_table *t);
uint64_t np_flow_table_evicted_bytes(const struct np_flow_table *t);

/* Iterates: start with *cursor = 0; returns the next flow or NULL at the end.
 * The table must not change during the iteration. */
const struct np_flow *np_flow_table_next(const struct np_flow_table *t, size_t *cursor);

#endif
