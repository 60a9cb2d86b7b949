#include "flow_agg.h"

#include "netpulse/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const dir_names[NP_DIR_COUNT] = {
    [NP_DIR_IN] = "in",
    [NP_DIR_OUT] = "out",
    [NP_DIR_INTERNAL] = "internal",
    [NP_DIR_EXTERNAL] = "external",
};

const char *np_flow_dir_name(enum np_flow_dir dir)
{
    return (unsigned)dir < NP_DIR_COUNT ? dir_names[dir] : "external";
}

void np_addr_mask(uint8_t family, const uint8_t *addr, unsigned len, uint8_t *out)
{
    unsigned bytes = family == 4 ? 4 : 16;
    memset(out, 0, 16);
    for (unsigned i = 0; i < bytes; i++) {
        if (len >= (i + 1) * 8) {
            out[i] = addr[i];
        } else if (len > i * 8) {
            out[i] = (uint8_t)(addr[i] & (0xffu << (8 - (len - i * 8))));
        }
    }
}

int np_prefix_parse(const char *text, struct np_prefix *out)
{
    char buf[64];
    size_t n = strlen(text);
    if (n == 0 || n >= sizeof buf) {
        return NP_ECONFIG;
    }
    memcpy(buf, text, n + 1);
    char *slash = strchr(buf, '/');
    long len = -1;
    if (slash) {
        *slash = '\0';
        char *end = NULL;
        errno = 0;
        len = strtol(slash + 1, &end, 10);
        if (errno != 0 || end == slash + 1 || *end != '\0' || len < 0) {
            return NP_ECONFIG;
        }
    }
    uint8_t addr[16] = {0};
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, addr) == 1) {
        out->family = 4;
        if (len > 32) {
            return NP_ECONFIG;
        }
        out->len = (uint8_t)(len < 0 ? 32 : len);
    } else if (inet_pton(AF_INET6, buf, addr) == 1) {
        out->family = 6;
        if (len > 128) {
            return NP_ECONFIG;
        }
        out->len = (uint8_t)(len < 0 ? 128 : len);
    } else {
        return NP_ECONFIG;
    }
    np_addr_mask(out->family, addr, out->len, out->addr);
    return 0;
}

bool np_prefix_match(const struct np_prefix *p, uint8_t family, const uint8_t *addr)
{
    if (p->family != family) {
        return false;
    }
    if (family == 4) {
        /* One masked word: the direction of every new flow asks this twice
         * per local prefix. */
        uint32_t a =
            (uint32_t)addr[0] << 24 | (uint32_t)addr[1] << 16 | (uint32_t)addr[2] << 8 | addr[3];
        uint32_t n = (uint32_t)p->addr[0] << 24 | (uint32_t)p->addr[1] << 16 |
                     (uint32_t)p->addr[2] << 8 | p->addr[3];
        uint32_t mask = p->len == 0 ? 0 : ~0u << (32u - (p->len > 32 ? 32u : p->len));
        return ((a ^ n) & mask) == 0;
    }
    unsigned full = p->len / 8u, rest = p->len % 8u;
    if (memcmp(p->addr, addr, full) != 0) {
        return false;
    }
    if (rest == 0) {
        return true;
    }
    uint8_t m = (uint8_t)(0xffu << (8 - rest));
    return (addr[full] & m) == p->addr[full];
}

bool np_flow_agg_is_local(const struct np_flow_agg *agg, uint8_t family, const uint8_t *addr)
{
    for (size_t i = 0; i < agg->cfg.n_local; i++) {
        if (np_prefix_match(&agg->cfg.local[i], family, addr)) {
            return true;
        }
    }
    return false;
}

enum np_flow_dir np_flow_agg_direction(const struct np_flow_agg *agg, const struct np_flow_key *key)
{
    bool s = np_flow_agg_is_local(agg, key->family, key->src);
    bool d = np_flow_agg_is_local(agg, key->family, key->dst);
    if (s && d) {
        return NP_DIR_INTERNAL;
    }
    if (s) {
        return NP_DIR_OUT;
    }
    if (d) {
        return NP_DIR_IN;
    }
    return NP_DIR_EXTERNAL;
}

int np_flow_agg_new(const struct np_flow_agg_config *cfg, struct np_flow_agg **out)
{
    *out = NULL;
    if (cfg->sample == 0 || cfg->max_flows == 0 || (cfg->n_local > 0 && !cfg->local)) {
        return -EINVAL;
    }
    struct np_flow_agg *agg = calloc(1, sizeof *agg);
    if (!agg) {
        return -ENOMEM;
    }
    int rc = np_flow_table_new(cfg->max_flows, &agg->table);
    if (rc != 0) {
        free(agg);
        return rc;
    }
    agg->cfg = *cfg;
    agg->rng = 0x2545f4914f6cdd1dull; /* fixed: offline runs are reproducible */
    *out = agg;
    return 0;
}

int np_flow_agg_snapshot(const struct np_flow_agg *agg, struct np_flow_agg **out)
{
    *out = NULL;
    /* calloc: the fragment memory and the pending queue stay behind (empty,
     * and their pages untouched); only what a report reads is copied. */
    struct np_flow_agg *snap = calloc(1, sizeof *snap);
    if (!snap) {
        return -ENOMEM;
    }
    snap->stats = agg->stats;
    snap->cfg = agg->cfg;
    snap->rng = agg->rng;
    int rc = np_flow_table_snapshot(agg->table, &snap->table);
    if (rc != 0) {
        free(snap);
        return rc;
    }
    *out = snap;
    return 0;
}

void np_flow_agg_free(struct np_flow_agg *agg)
{
    if (!agg) {
        return;
    }
    np_flow_table_free(agg->table);
    free(agg);
}

void np_flow_agg_reset(struct np_flow_agg *agg)
{
    /* Callers flush first; nothing queued survives a reset. */
    for (unsigned i = 0; i < NP_FLOW_AGG_PENDING; i++) {
        agg->pending[i].hash = 0;
    }
    memset(&agg->stats, 0, sizeof agg->stats);
    np_flow_table_clear(agg->table);
}

static inline void add(struct np_flow_counter *c, uint64_t packets, uint64_t bytes)
{
    c->packets += packets;
    c->bytes += bytes;
}

/* Random 1-in-N (xorshift64*): unlike every-Nth, it cannot lock onto a
 * periodic traffic pattern. */
static bool sampled_out(struct np_flow_agg *agg)
{
    if (agg->cfg.sample <= 1) {
        return false;
    }
    uint64_t x = agg->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    agg->rng = x;
    return ((x * 0x2545f4914f6cdd1dull) >> 32) % agg->cfg.sample != 0;
}

/* The rarer outcomes of a decoded frame: a drop or a frame outside IP (no
 * flow), an IP header whose upper layer was refused (counted by protocol, no
 * flow), or a fragment (resolved through the fragment memory). True when the
 * frame still belongs to a flow. Kept out of the per-packet path. */
static __attribute__((noinline)) bool stage_rare(struct np_flow_agg *agg, enum np_pkt_status status,
                                                 uint64_t ts_us, struct np_pkt *pkt)
{
    struct np_flow_stats *st = &agg->stats;
    const uint64_t n = agg->cfg.sample;
    const uint64_t bytes = (uint64_t)pkt->wire_len * n;
    if (pkt->flags & NP_PKT_F_L3) {
        /* Counted by IP version and protocol even when the L4 header is bad:
         * the IP header was sound, and that is what those totals describe. */
        add(pkt->key.family == 4 ? &st->ipv4 : &st->ipv6, n, bytes);
        add(&st->proto[pkt->key.proto], n, bytes);
    }
    if (status != NP_PKT_OK) {
        add(status == NP_PKT_NOT_IP ? &st->not_ip : &st->drop[status], n, bytes);
        return false;
    }
    bool first = (pkt->flags & NP_PKT_F_FRAG_FIRST) != 0;
    bool resolved = np_frag_resolve(&agg->frag, pkt, ts_us);
    if (first && resolved) {
        st->frag_first++;
    } else if (!first) {
        if (resolved) {
            st->frag_matched++;
        } else {
            st->frag_unmatched++;
        }
    }
    return true;
}

/* Decodes a frame into p->pkt and counts what needs no flow; true when the
 * frame belongs to a flow (p->hash set, its slot being prefetched). */
static inline __attribute__((always_inline)) bool stage(struct np_flow_agg *agg, int dlt,
                                                        uint64_t ts_us, const uint8_t *data,
                                                        uint32_t caplen, uint32_t wire_len,
                                                        struct np_flow_pending *p)
{
    struct np_flow_stats *st = &agg->stats;
    if (ts_us < st->first_us || st->total.packets == 0) {
        st->first_us = ts_us;
    }
    if (ts_us > st->last_us) {
        st->last_us = ts_us;
    }
    add(&st->total, 1, wire_len);
    if (__builtin_expect(agg->cfg.sample > 1, 0) && sampled_out(agg)) {
        return false;
    }
    add(&st->sampled, 1, wire_len);
    const uint64_t n = agg->cfg.sample;
    const uint64_t bytes = (uint64_t)wire_len * n;

    struct np_pkt *pkt = &p->pkt;
    enum np_pkt_status status = NP_PKT_OK;
    if (dlt != NP_DLT_EN10MB || !np_pkt_decode_fast(data, caplen, wire_len, pkt)) {
        status = np_pkt_decode_general(dlt, data, caplen, wire_len, pkt);
    }
    uint16_t vlan = pkt->key.vlan;
    add(&st->vlan[vlan < NP_VLAN_SLOTS - 1 ? vlan : NP_VLAN_SLOTS - 1], n, bytes);
    /* The common case: a whole IP packet with its upper layer decoded. */
    if (__builtin_expect(status == NP_PKT_OK && !(pkt->flags & NP_PKT_F_FRAG), 1)) {
        add(pkt->key.family == 4 ? &st->ipv4 : &st->ipv6, n, bytes);
        add(&st->proto[pkt->key.proto], n, bytes);
    } else if (!stage_rare(agg, status, ts_us, pkt)) {
        return false;
    }
    p->hash = np_flow_table_hash(agg->table, &pkt->key);
    np_flow_table_prefetch(agg->table, p->hash);
    return true;
}

/* Inlined into offer, the per-packet path (it is also called from flush). */
static inline __attribute__((always_inline)) void commit(struct np_flow_agg *agg,
                                                         const struct np_flow_pending *p)
{
    struct np_flow_stats *st = &agg->stats;
    const uint64_t n = agg->cfg.sample;
    const uint64_t bytes = (uint64_t)p->pkt.wire_len * n;
    struct np_flow *f = np_flow_table_upsert_hashed(agg->table, &p->pkt.key, p->hash);
    if (__builtin_expect(f->packets == 0, 0)) {
        /* The direction is a property of the key: worked out once per flow,
         * not per packet. */
        f->dir = (uint8_t)np_flow_agg_direction(agg, &p->pkt.key);
    }
    f->packets += n;
    f->bytes += bytes;
    add(&st->dir[f->dir], n, bytes);
    add(&st->app[f->app], n, bytes);
}

/* GCC's SLP vectorizer turns each counter pair update into a 128-bit load,
 * add and store plus the setup of the pair: more instructions than the two
 * scalar adds to memory it replaces, on the hottest path. */
#if defined(__GNUC__) && !defined(__clang__)
#define NP_SCALAR_COUNTERS __attribute__((optimize("no-tree-slp-vectorize")))
#else
#define NP_SCALAR_COUNTERS
#endif

/* The queue is a ring of NP_FLOW_AGG_PENDING slots, each either empty (hash
 * 0, never a key's hash) or a packet waiting for its flow update: a packet
 * staged in a slot is committed when the ring comes round to the slot again,
 * NP_FLOW_AGG_PENDING frames later, so updates run in arrival order. */
static inline __attribute__((always_inline)) void offer(struct np_flow_agg *agg, int dlt,
                                                        uint64_t ts_us, const uint8_t *data,
                                                        uint32_t caplen, uint32_t wire_len)
{
    _Static_assert((NP_FLOW_AGG_PENDING & (NP_FLOW_AGG_PENDING - 1)) == 0, "power of two");
    struct np_flow_pending *p = &agg->pending[agg->pending_pos++ & (NP_FLOW_AGG_PENDING - 1)];
    if (p->hash != 0) {
        commit(agg, p);
    }
    if (!stage(agg, dlt, ts_us, data, caplen, wire_len, p)) {
        p->hash = 0;
    }
}

NP_SCALAR_COUNTERS
void np_flow_agg_offer(struct np_flow_agg *agg, int dlt, uint64_t ts_us, const uint8_t *data,
                       uint32_t caplen, uint32_t wire_len)
{
    offer(agg, dlt, ts_us, data, caplen, wire_len);
}

/* The loop is here, not in the caller, so that the whole per-packet path is
 * one function body: no call, register saves and restores per frame. */
NP_SCALAR_COUNTERS
uint64_t np_flow_agg_offer_ring(struct np_flow_agg *agg, int dlt, struct np_packet_ring *ring)
{
    uint64_t frames = 0;
    const struct np_packet_rec *rec;
    while ((rec = np_packet_ring_get(ring)) != NULL) {
        frames++;
        offer(agg, dlt, rec->ts_us, rec->data, rec->caplen, rec->wire_len);
    }
    np_flow_agg_flush(agg);
    return frames;
}

void np_flow_agg_flush(struct np_flow_agg *agg)
{
    for (unsigned i = 0; i < NP_FLOW_AGG_PENDING; i++) {
        struct np_flow_pending *p =
            &agg->pending[(agg->pending_pos + i) & (NP_FLOW_AGG_PENDING - 1)];
        if (p->hash != 0) {
            commit(agg, p);
            p->hash = 0;
        }
    }
}

void np_flow_agg_packet(struct np_flow_agg *agg, int dlt, uint64_t ts_us, const uint8_t *data,
                        uint32_t caplen, uint32_t wire_len)
{
    np_flow_agg_offer(agg, dlt, ts_us, data, caplen, wire_len);
    np_flow_agg_flush(agg);
}
