/* flow_agg: aggregation of decoded packets over one export interval: totals,
 * direction, IP protocol, application class, VLAN, drops by reason, and the
 * flow table. Pure (no libpcap, no I/O): the capture module feeds it frames,
 * the report module reads it.
 *
 * Byte counts are wire lengths, also when the snaplen cut the capture. The
 * totals (`total`) count every frame offered; everything else is estimated
 * from the sampled frames (1-in-N, each sampled frame counted N times).
 *
 * An aggregator belongs to one thread (the capture thread); at export the
 * loop gets a read-only snapshot of it (np_flow_agg_snapshot). */
#ifndef NP_AGENT_FLOW_FLOW_AGG_H
#define NP_AGENT_FLOW_FLOW_AGG_H

#include "flow_table.h"
#include "packet_decode.h"
#include "packet_ring.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct np_prefix {
    uint8_t family; /* 4 or 6 */
    uint8_t len;    /* prefix length in bits */
    uint8_t addr[16];
};

/* Parses "10.0.0.0/8", "2001:db8::/32" or a bare address (host prefix).
 * Host bits set in the address are cleared. Returns 0 or NP_ECONFIG. */
int np_prefix_parse(const char *text, struct np_prefix *out);

/* True when addr (family 4: first 4 bytes used) lies in p. */
bool np_prefix_match(const struct np_prefix *p, uint8_t family, const uint8_t *addr);

/* Copies addr with the bits past len bits cleared into out (16 bytes). */
void np_addr_mask(uint8_t family, const uint8_t *addr, unsigned len, uint8_t *out);

enum np_flow_dir {
    NP_DIR_IN = 0,   /* outside -> local */
    NP_DIR_OUT,      /* local -> outside */
    NP_DIR_INTERNAL, /* local -> local */
    NP_DIR_EXTERNAL, /* neither end local (or no local prefixes configured) */
    NP_DIR_COUNT
};

const char *np_flow_dir_name(enum np_flow_dir dir);

struct np_flow_counter {
    uint64_t packets;
    uint64_t bytes;
};

#define NP_VLAN_SLOTS 4097 /* ids 0..4095, and [4096] for untagged frames */

struct np_flow_stats {
    uint64_t first_us; /* capture time of the first / last frame, 0 if none */
    uint64_t last_us;
    struct np_flow_counter total;   /* every frame offered, unsampled */
    struct np_flow_counter sampled; /* frames that were decoded (unscaled) */
    struct np_flow_counter ipv4, ipv6, not_ip;
    struct np_flow_counter dir[NP_DIR_COUNT];
    struct np_flow_counter proto[256];
    struct np_flow_counter app[NP_APP_COUNT];
    struct np_flow_counter vlan[NP_VLAN_SLOTS];       /* by outermost tag */
    struct np_flow_counter drop[NP_PKT_STATUS_COUNT]; /* only drop reasons are used */
    uint64_t frag_first;                              /* first fragments remembered */
    uint64_t frag_matched;                            /* later fragments attributed to their flow */
    uint64_t frag_unmatched; /* later fragments whose first was not seen: port-less flow */
};

struct np_flow_agg_config {
    uint32_t max_flows;
    uint32_t sample;               /* 1-in-N, >= 1 */
    const struct np_prefix *local; /* borrowed; must outlive the aggregator */
    size_t n_local;
};

/* A decoded packet waiting for its flow-table update (np_flow_agg_offer);
 * hash 0: an empty slot. */
struct np_flow_pending {
    struct np_pkt pkt;
    uint32_t hash;
};

/* How many decoded packets wait for their flow-table update while the
 * table's cache lines for them load: about the number of frames whose
 * decoding covers one memory latency. A power of two. */
#define NP_FLOW_AGG_PENDING 16

struct np_flow_agg {
    struct np_flow_stats stats;
    struct np_flow_table *table; /* owned */
    struct np_frag_table frag;
    struct np_flow_agg_config cfg;
    uint64_t rng;         /* sampling state */
    uint64_t pending_pos; /* frames through the ring; the next slot is this mod its size */
    struct np_flow_pending pending[NP_FLOW_AGG_PENDING];
};

/* Allocates an aggregator. Returns 0, -EINVAL (max_flows or sample out of
 * range) or -ENOMEM. Free with np_flow_agg_free. */
int np_flow_agg_new(const struct np_flow_agg_config *cfg, struct np_flow_agg **out);

/* Frees agg (NULL is fine). */
void np_flow_agg_free(struct np_flow_agg *agg);

/* Offers one frame: link type dlt, capture time ts_us (wall, microseconds),
 * caplen captured bytes (borrowed) of a wire_len-byte frame; agg is complete
 * on return (np_flow_agg_offer, then np_flow_agg_flush). */
void np_flow_agg_packet(struct np_flow_agg *agg, int dlt, uint64_t ts_us, const uint8_t *data,
                        uint32_t caplen, uint32_t wire_len);

/* np_flow_agg_packet for a capture path that hides the flow table's cache
 * misses behind a few packets (flow_capture.c): offer decodes the frame,
 * counts everything that needs no flow and, when the frame belongs to a flow,
 * starts loading its slot and queues the flow update; the update runs
 * NP_FLOW_AGG_PENDING packets later. flush runs the queued updates: call it
 * before anything reads agg (the report, a reset, a hand-over). */
void np_flow_agg_offer(struct np_flow_agg *agg, int dlt, uint64_t ts_us, const uint8_t *data,
                       uint32_t caplen, uint32_t wire_len);
void np_flow_agg_flush(struct np_flow_agg *agg);

/* np_flow_agg_offer for every frame of ring, in order (np_packet_ring_get
 * until it returns NULL: blocks while the ring is empty and open), then
 * np_flow_agg_flush. The offline capture's consumer loop, here so that the
 * per-packet path runs without a call per frame. Returns the number of
 * frames. The ring's consumer thread, which owns agg. */
uint64_t np_flow_agg_offer_ring(struct np_flow_agg *agg, int dlt, struct np_packet_ring *ring);

/* A copy of agg's finished interval for another thread: the counters, and
 * the flows packed (np_flow_table_snapshot), so that a hand-over costs the
 * flows present, not a second full table. agg must be flushed. The copy is
 * read-only (report it, free it; offer no frames). Returns 0 or -ENOMEM;
 * *out is freed with np_flow_agg_free. */
int np_flow_agg_snapshot(const struct np_flow_agg *agg, struct np_flow_agg **out);

/* Starts a new interval: counters and flows zeroed; the fragment memory is
 * kept (a datagram may straddle the boundary). */
void np_flow_agg_reset(struct np_flow_agg *agg);

/* Direction of a key under the configured local prefixes. */
enum np_flow_dir np_flow_agg_direction(const struct np_flow_agg *agg,
                                       const struct np_flow_key *key);

/* True when the address is inside one of the local prefixes. */
bool np_flow_agg_is_local(const struct np_flow_agg *agg, uint8_t family, const uint8_t *addr);

#endif
