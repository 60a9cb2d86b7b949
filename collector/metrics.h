/* metrics: the collector's own counters and gauges, rendered in the Prometheus
 * text exposition format (version 0.0.4) for GET /metrics.
 *
 *   netpulse_ingest_batches_total            batches accepted (made durable)
 *   netpulse_ingest_samples_total            interface samples in those batches
 *   netpulse_ingest_duplicates_total         batches already held (acknowledged again)
 *   netpulse_ingest_rejects_total{reason=}   refused batches by reason
 *   netpulse_agent_last_seen_seconds{agent=} wall time of each agent's last batch
 *   netpulse_queue_depth{queue=}             "journal": durable, not yet applied;
 *                                            "apply": decoded batches waiting to apply;
 *                                            "parked": requests waiting for room in
 *                                            the apply queue, unanswered (ingest.c)
 *   netpulse_rrd_write_seconds               histogram of one batch's RRD write
 *   netpulse_http_connections                open connections
 *
 * Threads: loop thread only (values measured in work threads are recorded in
 * their after-work callbacks). */
#ifndef NP_COLLECTOR_METRICS_H
#define NP_COLLECTOR_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum np_reject_reason {
    NP_REJECT_UNAUTHORIZED, /* 401: no, unknown or revoked token */
    NP_REJECT_FORBIDDEN,    /* 403: batch for another agent */
    NP_REJECT_MALFORMED,    /* 400: bad gzip, bad protobuf, invalid content */
    NP_REJECT_TOO_LARGE,    /* 413: body or inflated body over its limit */
    NP_REJECT_VERSION,      /* 400: min_reader_version above ours */
    NP_REJECT_UNAVAILABLE,  /* 503: journal failed or full, shutting down */
    NP_REJECT_COUNT
};

#define NP_METRICS_RRD_BUCKETS 12

struct np_metrics_agent {
    char id[72];
    int64_t last_seen_ms;
};

struct np_metrics {
    uint64_t batches_total;
    uint64_t samples_total;
    uint64_t duplicates_total;
    uint64_t rejects_total[NP_REJECT_COUNT];
    uint64_t queue_journal;
    uint64_t queue_apply;
    uint64_t queue_parked;
    uint64_t http_connections;
    uint64_t rrd_buckets[NP_METRICS_RRD_BUCKETS]; /* cumulative counts are made at render */
    uint64_t rrd_count;
    double rrd_sum_s;
    struct np_metrics_agent *agents; /* owned; sorted by id */
    size_t n_agents, cap_agents;
};

/* Zeroes m. np_metrics_free() releases what it allocates later. */
void np_metrics_init(struct np_metrics *m);
void np_metrics_free(struct np_metrics *m);

/* The label value of a reject reason ("unauthorized", ...). */
const char *np_metrics_reject_name(enum np_reject_reason r);

/* Records that agent (borrowed, a valid agent id) sent a batch created at
 * wall_ms (the value only moves forward). Out of memory is ignored. */
void np_metrics_agent_seen(struct np_metrics *m, const char *agent, int64_t wall_ms);

/* Records one RRD write that took seconds. */
void np_metrics_rrd_observe(struct np_metrics *m, double seconds);

/* Renders everything. On success *out is a NUL-terminated text of *len bytes
 * the caller frees with free(). Errors: -ENOMEM. */
int np_metrics_render(const struct np_metrics *m, char **out, size_t *len);

#endif
