/* report_api: the JSON bodies of the report endpoints (api.c routes them):
 *
 *   GET /api/v1/sites/{id}/uptime     report_data.h np_report_uptime_json
 *   GET /api/v1/sites/{id}/capacity   report_data.h np_report_capacity_json
 *   GET /api/v1/district/summary      {"year", "from", "to", "summary":
 *       np_report_summary_json, "sites": [{site, name, school_type,
 *       uptime_percent, uptime_met, utilisation, p95_bps, rate_bps,
 *       growth_on_track, forecast, recommendation}]}
 * Period parameters (all Unix seconds or calendar): from=&to=, month=YYYY-MM
 * or year=YYYY; default: the current month (the summary: the current year).
 *
 * Runs in a pool thread. The state_db connection is shared with the other
 * API jobs: lock/unlock (called around each site's reads) serialise it. */
#ifndef NP_COLLECTOR_REPORT_API_H
#define NP_COLLECTOR_REPORT_API_H

#include "report_data.h"

enum np_report_api_kind { NP_REPORT_API_UPTIME, NP_REPORT_API_CAPACITY, NP_REPORT_API_SUMMARY };

struct np_report_api_req {
    enum np_report_api_kind kind;
    const char *site; /* uptime, capacity */
    int64_t from_ms, to_ms;
    struct np_state_db *db;
    struct np_rrd_store *rrd;                   /* may be NULL: no series */
    const struct np_collector_targets *targets; /* NULL: the documented defaults */
    void (*lock)(void *lock_ctx);
    void (*unlock)(void *lock_ctx);
    void *lock_ctx;
};

/* Parses the period parameters (values already percent-decoded; NULL when
 * absent) into [*from_ms, *to_ms). summary: default the current year.
 * Returns 0 or -EINVAL. */
int np_report_api_period(const char *from, const char *to, const char *month, const char *year,
                         bool summary, int64_t now_ms, int64_t *from_ms, int64_t *to_ms);

/* Computes the body: *out a new reference. Errors: -ENOENT (no such site),
 * -EINVAL, NP_EDB, NP_ERRD, -ENOMEM. */
int np_report_api_json(const struct np_report_api_req *req, json_t **out, struct np_err *err);

#endif
