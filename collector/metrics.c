/* metrics: Prometheus text rendering of the collector's counters; see metrics.h. */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bounds (seconds) of the RRD write histogram; +Inf is implied. */
static const double rrd_bounds[NP_METRICS_RRD_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
};

static const char *const reject_names[NP_REJECT_COUNT] = {
    [NP_REJECT_UNAUTHORIZED] = "unauthorized",   [NP_REJECT_FORBIDDEN] = "forbidden",
    [NP_REJECT_MALFORMED] = "malformed",         [NP_REJECT_TOO_LARGE] = "too_large",
    [NP_REJECT_VERSION] = "unsupported_version", [NP_REJECT_UNAVAILABLE] = "unavailable",
};

void np_metrics_init(struct np_metrics *m)
{
    memset(m, 0, sizeof *m);
}

void np_metrics_free(struct np_metrics *m)
{
    if (!m) {
        return;
    }
    free(m->agents);
    m->agents = NULL;
    m->n_agents = m->cap_agents = 0;
}

const char *np_metrics_reject_name(enum np_reject_reason r)
{
    return (unsigned)r < NP_REJECT_COUNT ? reject_names[r] : "unknown";
}

void np_metrics_agent_seen(struct np_metrics *m, const char *agent, int64_t wall_ms)
{
    size_t lo = 0, hi = m->n_agents;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->agents[mid].id, agent);
        if (c == 0) {
            if (wall_ms > m->agents[mid].last_seen_ms) {
                m->agents[mid].last_seen_ms = wall_ms;
            }
            return;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (strlen(agent) >= sizeof m->agents[0].id) {
        return;
    }
    if (m->n_agents == m->cap_agents) {
        size_t cap = m->cap_agents ? m->cap_agents * 2 : 16;
        struct np_metrics_agent *a = realloc(m->agents, cap * sizeof *a);
        if (!a) {
            return;
        }
        m->agents = a;
        m->cap_agents = cap;
    }
    memmove(&m->agents[lo + 1], &m->agents[lo], (m->n_agents - lo) * sizeof m->agents[0]);
    snprintf(m->agents[lo].id, sizeof m->agents[lo].id, "%s", agent);
    m->agents[lo].last_seen_ms = wall_ms;
    m->n_agents++;
}

void np_metrics_rrd_observe(struct np_metrics *m, double seconds)
{
    for (size_t i = 0; i < NP_METRICS_RRD_BUCKETS; i++) {
        if (seconds <= rrd_bounds[i]) {
            m->rrd_buckets[i]++;
            break;
        }
    }
    m->rrd_count++;
    m->rrd_sum_s += seconds;
}

int np_metrics_render(const struct np_metrics *m, char **out, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) {
        return -ENOMEM;
    }
    fprintf(f,
            "# HELP netpulse_ingest_batches_total Batches accepted and made durable.\n"
            "# TYPE netpulse_ingest_batches_total counter\n"
            "netpulse_ingest_batches_total %" PRIu64 "\n",
            m->batches_total);
    fprintf(f,
            "# HELP netpulse_ingest_samples_total Interface samples in accepted batches.\n"
            "# TYPE netpulse_ingest_samples_total counter\n"
            "netpulse_ingest_samples_total %" PRIu64 "\n",
            m->samples_total);
    fprintf(f,
            "# HELP netpulse_ingest_duplicates_total Batches received again (acknowledged, "
            "not stored twice).\n"
            "# TYPE netpulse_ingest_duplicates_total counter\n"
            "netpulse_ingest_duplicates_total %" PRIu64 "\n",
            m->duplicates_total);
    fprintf(f, "# HELP netpulse_ingest_rejects_total Refused ingest requests by reason.\n"
               "# TYPE netpulse_ingest_rejects_total counter\n");
    for (int r = 0; r < NP_REJECT_COUNT; r++) {
        fprintf(f, "netpulse_ingest_rejects_total{reason=\"%s\"} %" PRIu64 "\n", reject_names[r],
                m->rejects_total[r]);
    }
    fprintf(f, "# HELP netpulse_agent_last_seen_seconds Creation time of the agent's newest "
               "batch (Unix seconds).\n"
               "# TYPE netpulse_agent_last_seen_seconds gauge\n");
    for (size_t i = 0; i < m->n_agents; i++) {
        /* Agent ids are [A-Za-z0-9._-] (checked by the wire module): nothing to escape. */
        fprintf(f, "netpulse_agent_last_seen_seconds{agent=\"%s\"} %.3f\n", m->agents[i].id,
                (double)m->agents[i].last_seen_ms / 1000.0);
    }
    fprintf(f,
            "# HELP netpulse_queue_depth Batches waiting: journal = durable but not applied, "
            "apply = queued for RRD and SQLite, parked = requests waiting for room, "
            "not yet answered.\n"
            "# TYPE netpulse_queue_depth gauge\n"
            "netpulse_queue_depth{queue=\"journal\"} %" PRIu64 "\n"
            "netpulse_queue_depth{queue=\"apply\"} %" PRIu64 "\n"
            "netpulse_queue_depth{queue=\"parked\"} %" PRIu64 "\n",
            m->queue_journal, m->queue_apply, m->queue_parked);
    fprintf(f,
            "# HELP netpulse_http_connections Open HTTP connections.\n"
            "# TYPE netpulse_http_connections gauge\n"
            "netpulse_http_connections %" PRIu64 "\n",
            m->http_connections);
    fprintf(f, "# HELP netpulse_rrd_write_seconds Time to write one batch to RRD.\n"
               "# TYPE netpulse_rrd_write_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i < NP_METRICS_RRD_BUCKETS; i++) {
        cum += m->rrd_buckets[i];
        fprintf(f, "netpulse_rrd_write_seconds_bucket{le=\"%g\"} %" PRIu64 "\n", rrd_bounds[i],
                cum);
    }
    fprintf(f,
            "netpulse_rrd_write_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
            "netpulse_rrd_write_seconds_sum %.6f\n"
            "netpulse_rrd_write_seconds_count %" PRIu64 "\n",
            m->rrd_count, m->rrd_sum_s, m->rrd_count);
    if (ferror(f)) {
        fclose(f);
        free(buf);
        return -ENOMEM;
    }
    if (fclose(f) != 0) {
        free(buf);
        return -ENOMEM;
    }
    *out = buf;
    *len = n;
    return 0;
}
