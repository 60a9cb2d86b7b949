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
 * Layout (the lookup is the per-packet cost, and it is a cache miss): a
 * separate array of 32-bit hash tags (0 = empty) is probed first, 16 tags per
 * cache line, so a probe run never touches the flows it passes; only a tag
 * match reads the 64-byte, cache-line-aligned flow. Capacity is max_flows *
 * 5/4 (not rounded to a power of two; the home slot comes from a multiply),
 * so the table costs 68 bytes per flow of max_flows * 5/4: 100,000 flows in
 * 8.1 MiB.
 *
 * Not thread-safe: one table belongs to one thread at a time. At each export
 * the capture thread hands the loop a snapshot (np_flow_table_snapshot): the
 * occupied flows only, packed, 68 bytes a flow. */
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

/* One flow: exactly one cache line. */
struct np_flow {
    struct np_flow_key key; /* 44 bytes */
    uint8_t app;            /* enum np_flow_app, set on insertion */
    uint8_t dir;            /* free for the owner (flow_agg: enum np_flow_dir), 0 on insertion */
    uint8_t pad[2];
    uint64_t packets; /* 0 on insertion: a new flow */
    uint64_t bytes;   /* wire lengths */
};

struct np_flow_table;

/* Creates a table that holds up to max_flows flows (1 .. 2^24). Returns 0,
 * -EINVAL or -ENOMEM. *out is freed with np_flow_table_free. */
int np_flow_table_new(uint32_t max_flows, struct np_flow_table **out);

/* Frees t (NULL is fine). */
void np_flow_table_free(struct np_flow_table *t);

/* Finds the flow of key or inserts it (zero counters and dir, app
 * classified), evicting when full. Never fails; the returned pointer is valid
 * until the next upsert or clear. */
struct np_flow *np_flow_table_upsert(struct np_flow_table *t, const struct np_flow_key *key);

/* The same, split for a capture path that hides the memory latency of the
 * lookup: np_flow_table_hash() computes the key's hash, np_flow_table_prefetch()
 * starts loading its home slot into the cache, and a few packets later
 * np_flow_table_upsert_hashed() (hash from np_flow_table_hash on the same
 * table) does the upsert. */
uint32_t np_flow_table_hash(const struct np_flow_table *t, const struct np_flow_key *key);
void np_flow_table_prefetch(const struct np_flow_table *t, uint32_t hash);
struct np_flow *np_flow_table_upsert_hashed(struct np_flow_table *t, const struct np_flow_key *key,
                                            uint32_t hash);

/* The flow of key, or NULL. */
const struct np_flow *np_flow_table_find(const struct np_flow_table *t,
                                         const struct np_flow_key *key);

/* Empties t and zeroes its eviction counters (start of an export interval).
 * Clears only the tag array (4 bytes a slot), not the flows. */
void np_flow_table_clear(struct np_flow_table *t);

/* Number of flows present, and the configured maximum. */
uint32_t np_flow_table_count(const struct np_flow_table *t);
uint32_t np_flow_table_max(const struct np_flow_table *t);

/* Bytes the table holds allocated (slots and header); fixed from _new on. */
size_t np_flow_table_bytes(const struct np_flow_table *t);

/* Flows evicted since the last clear, and what they carried. */
uint64_t np_flow_table_evicted(const struct np_flow_table *t);
uint64_t np_flow_table_evicted_packets(const struct np_flow_table *t);
uint64_t np_flow_table_evicted_bytes(const struct np_flow_table *t);

/* A read-only copy of t's flows, packed (no free slots: 68 bytes a flow, not
 * 85), with t's counters, for handing an interval to another thread while t
 * is cleared and refilled. It supports _next, _find (a linear scan), _count,
 * _max, _bytes, the eviction counters, _clear and _free; never upsert into
 * it. Returns 0 or -ENOMEM; *out is freed with np_flow_table_free. */
int np_flow_table_snapshot(const struct np_flow_table *t, struct np_flow_table **out);

/* Iterates: start with *cursor = 0; returns the next flow or NULL at the end.
 * The table must not change during the iteration. The flow returned is the
 * one np_flow_table_at(t, *cursor - 1) gives back while t is unchanged. */
const struct np_flow *np_flow_table_next(const struct np_flow_table *t, size_t *cursor);

/* The flow at slot i, i from np_flow_table_next's cursor as above. */
const struct np_flow *np_flow_table_at(const struct np_flow_table *t, size_t i);

#endif
