/* api: the collector's read endpoints and its admin actions.
 *
 *   GET /healthz                      200 "ok"
 *   GET /metrics                      Prometheus text (metrics.h)
 *   GET /api/v1/sites                 the inventory (state_db.h np_state_db_sites_json)
 *   GET /api/v1/sites/{id}            one site with devices, interfaces, events
 *   GET /api/v1/sites/{id}/series?from=&to=&step=&cf=&device=&iface=&probe=
 *       time series from RRD as JSON:
 *       {"site": ID, "from": S, "to": S, "cf": CF,
 *        "series": [{"kind": "interface", "device": D, "iface": I, "step": S,
 *                    "points": [{"time": S, "in_bps": x|null, "out_bps": ..,
 *                                "oper": ..}, ...]}, ...]}
 *       from/to: Unix seconds (default: the last 24 hours); step: seconds (0 or
 *       absent: the finest archive); cf: AVERAGE (default) or MAX. Without
 *       device/iface/probe, every interface the site has reported; with
 *       device and iface, that one; with probe, that probe ("kind": "probe",
 *       points rtt_ms, loss, up).
 *   GET /api/v1/sites/{id}/events?from=&to=
 *   GET /api/v1/sites/{id}/outages?from=&to=
 *       the site's events / outages (state_db.h np_state_db_events_json,
 *       np_state_db_outages_json) overlapping [from, to), Unix seconds
 *       (default: the last 30 days), oldest first. The sites list and the
 *       site carry status and since_ms; the site its outages (outage.h).
 *   GET /api/v1/sites/{id}/uptime?from=&to= | month=YYYY-MM | year=YYYY
 *   GET /api/v1/sites/{id}/capacity?(same)
 *   GET /api/v1/sites/{id}/flows?intervals=N
 *       the latest flow summaries per [pcap] source (state_db.h
 *       np_state_db_flows_json): by app, by protocol, top talkers, top flows,
 *       privacy applied by the agent; N newest intervals (default 1, max 60)
 *   GET /api/v1/sites/{id}/probes
 *       {"site": ID, "probes": [NAME, ...]}: the probes with an RRD file
 *       (rrd_store.h probe+NAME.rrd), by name; their series via
 *       .../series?probe=NAME
 *   GET /api/v1/sites/{id}/maintenance?from=&to=
 *       the site's maintenance windows [{"id", "site", "from", "to" (Unix
 *       seconds), "start_ms", "end_ms", "reason", "created_ms"}, ...]; all of
 *       them, or those overlapping from/to when given
 * Admin actions (web_auth.h's guard: an admin, and the CSRF token with a
 * session cookie; nothing here checks again):
 *   POST /api/v1/sites/{id}/maintenance  body {"from": F, "to": T, "reason": R}
 *       F, T Unix seconds or "YYYY-MM-DD[THH:MM[:SS]]" UTC, R 1..500 bytes
 *       of text (api_body.h np_api_body_maint; a 400 names the field, e.g.
 *       "to: must be after from"); 201 {"id", "site", "from", "to", "reason"}
 *   DELETE /api/v1/sites/{id}/maintenance/{mid}   a window of that site
 *   POST /api/v1/agents/{id}/enrol   201 {"agent", "token"}: the token is
 *       shown this once (a stub site is made if needed; 409 while enrolled)
 *   POST /api/v1/agents/{id}/revoke  {"agent", "revoked": true} (409 when
 *       already revoked, 404 when never enrolled)
 *   GET /api/v1/district/summary?(same; default the current year)
 *       uptime and capacity figures and the district summary
 *       (report_api.h); default period: the current month.
 * Errors: 400 (bad parameter), 404 (no such site or series), 405, 409, 503.
 *
 * Database and RRD reads run in libuv pool jobs on the API's own state_db
 * connection (one job at a time on it, under a mutex). Loop thread otherwise. */
#ifndef NP_COLLECTOR_API_H
#define NP_COLLECTOR_API_H

#include "http_server.h"
#include "ingest.h"
#include "metrics.h"
#include "netpulse/err.h"

#include <uv.h>

struct np_rrd_store;
struct np_api;

/* Opens the API's database connection. Borrowed, must outlive the API:
 * metrics, rrd (may be NULL: series answer 503), ingest (queue gauges) and
 * server (connection gauge; may be NULL). *out is freed with np_api_free(). */
int np_api_new(uv_loop_t *loop, const char *state_db_path, struct np_metrics *metrics,
               struct np_rrd_store *rrd, struct np_ingest *ingest, struct np_api **out,
               struct np_err *err);

/* The targets of collector.conf for the report endpoints (borrowed, must
 * outlive the API); until set, DESIGN.md's defaults. */
struct np_collector_targets;
void np_api_set_targets(struct np_api *api, const struct np_collector_targets *targets);

/* Points the connection gauge at server (may be NULL). */
void np_api_set_server(struct np_api *api, struct np_http_server *server);

/* Registers the routes above and the ingest route on server. Errors: -ENOMEM. */
int np_api_register(struct np_api *api, struct np_http_server *server);

/* Jobs still running (the API must not be freed before this is 0). */
unsigned np_api_busy(const struct np_api *api);

/* Closes the connection and frees; accepts NULL. Only when np_api_busy() is 0. */
void np_api_free(struct np_api *api);

#endif
