/* report_data: gathers one site's evidence from state_db and rrd_store and
 * runs the pure uptime and capacity engines on it; renders the figures as
 * JSON (the CLI's --json, the API and the annual report share it).
 *
 * Sources, per site and period [from_ms, to_ms):
 *   uplink       the interface the site's traffic crosses: one whose ifAlias
 *                or ifName contains "uplink" or "wan" (any case), else the
 *                fastest, else the first by name; the caller may name it.
 *   outages      np_state_db_outages_list: the outages table (outage.h) and
 *                the agent's uplink_down events (cause link), each clipped at
 *                its end; an open one runs until now.
 *   maintenance  np_state_db_maintenance_list.
 *   no data      everything after now, and agent outages. Where the
 *                site's agent has had batches applied: from its first sign
 *                of life on (earliest agent_start event, device or interface
 *                first_seen_ms) only what the outages record says (usable =
 *                the probes succeeded; the outage tracker turns probe
 *                results and heartbeats into outages). Before that, or
 *                without an applied batch (series imported): the uplink's
 *                5-minute rows with every value unknown (in, out, oper), at
 *                the RRD step; the row the agent started in counts as
 *                unknown before its start.
 *   samples      the uplink's 5-minute AVERAGE rows (in_bps, out_bps).
 *   rates        np_state_db_rates_list; when empty, the inventory's
 *                circuit rate; when that is unknown, the interface speed.
 *   growth       provisioned: the baseline rate against the rate in force
 *                at the period's end; used: the 95th percentile of the
 *                busier direction against the same figure for the baseline
 *                year when the RRD still holds that year at 5 minutes.
 *   forecast     log-linear fit on the period's monthly 95th percentiles of
 *                the busier direction (capacity.h) against the current rate.
 * Targets from collector.conf [targets] per school type: uptime_<type> (else
 * uptime; np_collector_uptime_target) and growth_<type>.
 *
 * Threads: uses db and rrd (see their headers); blocks on I/O. Errors:
 * -ENOENT (no such site), -EINVAL, NP_EDB, NP_ERRD, -ENOMEM. */
#ifndef NP_COLLECTOR_REPORT_DATA_H
#define NP_COLLECTOR_REPORT_DATA_H

#include "capacity.h"
#include "collector_config.h"
#include "rrd_store.h"
#include "state_db.h"
#include "uptime.h"

#include <jansson.h>

#define NP_REPORT_MAX_MONTHS 24
#define NP_REPORT_NAME_MAX 1100

struct np_report_ctx {
    struct np_state_db *db;                     /* borrowed */
    struct np_rrd_store *rrd;                   /* borrowed; NULL: no series */
    const struct np_collector_targets *targets; /* borrowed */
    int64_t now_ms;
};

struct np_site_figures {
    char id[NP_STATE_DB_MAX_ID + 1];
    char name[256];
    enum np_school_type school_type;
    uint64_t circuit_bps, baseline_bps;
    int baseline_year;
    int year; /* the year assessed: the year of the period's last instant */
    char device[NP_REPORT_NAME_MAX], iface[NP_REPORT_NAME_MAX];
    bool has_uplink;
    uint64_t iface_speed_bps;
    int64_t from_ms, to_ms;
    /* uptime */
    struct np_uptime_result up;
    struct np_uptime_budget budget_month, budget_year;
    size_t n_maintenance;
    /* capacity */
    bool has_series;
    unsigned step_s;
    struct np_capacity_result cap;
    struct np_capacity_month months[NP_REPORT_MAX_MONTHS];
    size_t n_months;
    double used_bps;          /* p95 of the busier direction; NAN: unknown */
    double baseline_used_bps; /* same for the baseline year; NAN: unknown */
    double growth_target;     /* the school type's +N (4.0 = +400 %) */
    struct np_growth growth_provisioned, growth_used;
    struct np_forecast forecast;
    double current_util; /* used_bps / rate in force at the end; NAN: unknown */
};

/* Computes everything above for site_id over [from_ms, to_ms). device and
 * iface (may be NULL) name the uplink. *out is overwritten; free it with
 * np_report_site_free even after an error. */
int np_report_site(const struct np_report_ctx *ctx, const char *site_id, int64_t from_ms,
                   int64_t to_ms, const char *device, const char *iface,
                   struct np_site_figures *out, struct np_err *err);

void np_report_site_free(struct np_site_figures *f);

/* The ids of every (non-stub) site, ordered: a new JSON array of strings. */
int np_report_site_ids(const struct np_report_ctx *ctx, json_t **out, struct np_err *err);

/* JSON of the figures (new references; NULL when out of memory). Numbers
 * that are not known are null. */
json_t *np_report_uptime_json(const struct np_site_figures *f);
json_t *np_report_capacity_json(const struct np_site_figures *f);

/* The recommendation for a site in one line into buf; returns buf. */
char *np_report_recommendation(const struct np_site_figures *f, char *buf, size_t len);

/* How urgent an upgrade is (higher first in the upgrade list); 0: none needed. */
double np_report_upgrade_need(const struct np_site_figures *f);

/* A district summary over figures[0..n): counts and the upgrade list ranked
 * by need. New reference; NULL when out of memory. */
json_t *np_report_summary_json(struct np_site_figures *const *figures, size_t n);

#endif
