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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/* Fields private to flow_table.c. The struct is in the header only so that
 * the per-packet lookup below (hash, prefetch, upsert of a present flow)
 * inlines into the aggregator's packet loop; nothing else may touch them. */
struct np_flow_table {
    uint32_t *tags;        /* key hash per slot, 0: empty */
    struct np_flow *slots; /* 64-byte aligned */
    uint32_t cap;          /* slots: max * 5/4 rounded up to 16 */
    uint32_t max;
    uint32_t count;
    uint64_t seed;
    uint64_t evicted;
    uint64_t evicted_packets;
    uint64_t evicted_bytes;
    bool packed;      /* a snapshot: flows are not at their hash positions */
    size_t map_bytes; /* a snapshot's mapping (slots and tags) */
};

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
 * table) does the upsert. Inline: they are the per-packet path. */
static inline uint32_t np_flow_table_hash(const struct np_flow_table *t,
                                          const struct np_flow_key *key);
static inline void np_flow_table_prefetch(const struct np_flow_table *t, uint32_t hash);
static inline struct np_flow *
np_flow_table_upsert_hashed(struct np_flow_table *t, const struct np_flow_key *key, uint32_t hash);

/* The insertion half of np_flow_table_upsert_hashed: key (hash h) is not in
 * t and slot i is the free slot that ends its probe run. Inserts it as
 * np_flow_table_upsert does. For the inline lookup only. */
struct np_flow *np_flow_table_insert(struct np_flow_table *t, const struct np_flow_key *key,
                                     uint32_t h, uint32_t i);

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
static inline const struct np_flow *np_flow_table_next(const struct np_flow_table *t,
                                                       size_t *cursor)
{
    while (*cursor < t->cap) {
        size_t i = (*cursor)++;
        if (t->tags[i] != 0) {
            return &t->slots[i];
        }
    }
    return NULL;
}

/* The flow at slot i, i from np_flow_table_next's cursor as above. Both
 * inline: the report walks every flow through them. */
static inline const struct np_flow *np_flow_table_at(const struct np_flow_table *t, size_t i)
{
    return &t->slots[i];
}

/* Inline part: key hash, home slot, key comparison and the lookup. */

/* 64x64 -> 128 multiply folded to 64 bits. */
static inline uint64_t np_flow_table_mum(uint64_t a, uint64_t b)
{
#ifdef __SIZEOF_INT128__
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
#else
    /* 32-bit targets (OpenWrt on MIPS/ARM): a 64-bit multiply-xorshift. */
    uint64_t r = (a ^ (b >> 29)) * (b | 1);
    return r ^ (r >> 31);
#endif
}

/* Word i (0..4) of the 44 key bytes, and the tail word (proto, family, pad). */
static inline uint64_t np_flow_key_word(const struct np_flow_key *k, unsigned i)
{
    _Static_assert(sizeof(struct np_flow_key) == 44, "flow key layout");
    uint64_t w;
    memcpy(&w, (const uint8_t *)k + 8 * i, sizeof w);
    return w;
}

static inline uint32_t np_flow_key_tail(const struct np_flow_key *k)
{
    uint32_t w;
    memcpy(&w, (const uint8_t *)k + 40, sizeof w);
    return w;
}

/* Key hash, seeded per table. An IPv4 key (the common case) has its two
 * addresses in one word and the bytes past them zero, so it takes two
 * multiplies; an IPv6 key four (short dependency chains: the lookup that
 * follows waits on it). Equal keys have the same family and so take the same
 * branch. Never returns 0 (0 marks an empty slot). */
static inline uint32_t np_flow_table_hash(const struct np_flow_table *t,
                                          const struct np_flow_key *key)
{
    const uint64_t seed = t->seed;
    const uint64_t w4 = np_flow_key_word(key, 4), tail = np_flow_key_tail(key);
    uint64_t h;
    if (key->family == 4) {
        uint32_t src, dst;
        memcpy(&src, key->src, 4);
        memcpy(&dst, key->dst, 4);
        uint64_t addrs = (uint64_t)src | (uint64_t)dst << 32;
        uint64_t a =
            np_flow_table_mum(addrs ^ seed ^ 0xa0761d6478bd642full, w4 ^ 0xe7037ed1a0b428dbull);
        h = np_flow_table_mum(a ^ tail ^ 0x8ebc6af09c88c6e3ull, seed ^ 0x589965cc75374cc3ull);
    } else {
        uint64_t a = np_flow_table_mum(np_flow_key_word(key, 0) ^ seed ^ 0xa0761d6478bd642full,
                                       np_flow_key_word(key, 1) ^ 0xe7037ed1a0b428dbull);
        uint64_t b = np_flow_table_mum(np_flow_key_word(key, 2) ^ 0x8ebc6af09c88c6e3ull,
                                       np_flow_key_word(key, 3) ^ seed ^ 0x589965cc75374cc3ull);
        uint64_t c =
            np_flow_table_mum(w4 ^ 0x1d8e4e27c47d124full, tail ^ seed ^ 0x9e3779b97f4a7c15ull);
        h = np_flow_table_mum(a ^ c, b ^ 0xbf58476d1ce4e5b9ull);
    }
    uint32_t r = (uint32_t)(h ^ (h >> 32));
    return r ? r : 1;
}

/* Home slot of a hash: the high bits times the capacity (Lemire's fast range
 * reduction), so the capacity need not be a power of two. */
static inline uint32_t np_flow_table_home(const struct np_flow_table *t, uint32_t h)
{
    return (uint32_t)(((uint64_t)h * t->cap) >> 32);
}

/* Word-wise comparison of two keys (fixed size, no libc call). Equal tails
 * mean equal families; IPv4 keys have zero words 1 and 3. */
static inline bool np_flow_key_equal(const struct np_flow_key *a, const struct np_flow_key *b)
{
    uint64_t d = (np_flow_key_word(a, 0) ^ np_flow_key_word(b, 0)) |
                 (np_flow_key_word(a, 2) ^ np_flow_key_word(b, 2)) |
                 (np_flow_key_word(a, 4) ^ np_flow_key_word(b, 4)) |
                 (np_flow_key_tail(a) ^ np_flow_key_tail(b));
    if (d != 0) {
        return false;
    }
    return a->family == 4 || ((np_flow_key_word(a, 1) ^ np_flow_key_word(b, 1)) |
                              (np_flow_key_word(a, 3) ^ np_flow_key_word(b, 3))) == 0;
}

static inline void np_flow_table_prefetch(const struct np_flow_table *t, uint32_t hash)
{
    uint32_t home = np_flow_table_home(t, hash);
    __builtin_prefetch(&t->tags[home], 1);
    __builtin_prefetch(&t->slots[home], 1);
}

static inline struct np_flow *
np_flow_table_upsert_hashed(struct np_flow_table *t, const struct np_flow_key *key, uint32_t hash)
{
    for (uint32_t i = np_flow_table_home(t, hash);;) {
        uint32_t tag = t->tags[i];
        if (tag == hash && np_flow_key_equal(&t->slots[i].key, key)) {
            return &t->slots[i];
        }
        if (tag == 0) {
            return np_flow_table_insert(t, key, hash, i);
        }
        i = i + 1 == t->cap ? 0 : i + 1;
    }
}

#endif
