/* alerter: the collector's alerting on its libuv loop. It feeds the rules
 * (alert_rules.h), renders and routes their notices (alert_mail.h), records
 * every alert with its deliveries (alert_db.h, DATA_DIR/alerts.db) and
 * delivers them by SMTP and JSON webhooks through libcurl's multi interface
 * on the same loop (curl_uv.h): sending never blocks ingest.
 *
 * Inputs:
 *   - heard: every tick (1 s), the ingest metrics (metrics.h, borrowed, loop
 *     thread) say which agents had a batch received since the last tick
 *     (receipt, not application: an apply backlog is not silence; clock-free:
 *     silence is counted on the collector's monotonic clock). Without metrics,
 *     an agent whose applied batch sequence grew between polls was heard.
 *   - every `[alerts] poll` a job reads the state database: agents enrolled
 *     and heard at least once (a site first seen counts as heard then; one
 *     never heard has no alerts); the outages table (outage.h) settles the
 *     outages of recovering sites (cause, start, end); maintenance windows;
 *     the names, school types and contacts of sites (every 15th poll);
 *     data_dir's free space.
 *   - np_alerter_input(): any module may feed an input directly (e.g. the
 *     outage tracker when an outage settles, ingest for interface events).
 *   - np_alerter_batch(): ingest hands every applied batch; its interface
 *     samples feed the utilisation rule: the busier direction's bits/s over
 *     the interface's capacity, which is the agent's provisioned rate for it
 *     (its config's circuit rate) when set, else the site's circuit rate
 *     in force (the latest `netpulse circuit set` change begun, else the
 *     inventory's; re-read with the inventory) when the interface is the uplink (ifName or ifAlias
 *     contains "uplink" or "wan", any case, as report_data.h picks it), else
 *     its speed (ifHighSpeed). Samples without a valid rate, of an interface
 *     not operationally up, or with no capacity known are skipped.
 *   - every [alerts] sla_interval a job computes each heard site's
 *     month-to-date downtime budget (report_data.h without RRD series: the
 *     outages and maintenance of the state database; the target of its
 *     school type) and feeds the SLA rule (np_alert_sla_input).
 * Restart: the conditions notified and not cleared (alerts.db
 * open_conditions, e.g. an interface down) are restored in np_alerter_new,
 * so their clearing still sends its notice.
 * Routing of a notice: [smtp] to when severity >= district_min; the site's
 * contacts (to_site_contacts) and the list of its school type (to_<type>)
 * when severity >= site_contacts_min; a digest goes to the union over its
 * sites. One e-mail per alert with every recipient; each [webhook NAME] whose
 * min_severity is met gets the JSON (generic, slack or teams).
 * Delivery: SMTP with STARTTLS required by default (CURLUSESSL_ALL), smtps://,
 * AUTH when user is set, CA file, timeouts; a failed attempt is retried after
 * retry_initial, doubling up to retry_max, until give_up_after. Pending
 * deliveries stay in alerts.db, so a restarted collector sends them then.
 *
 * Threads: loop thread, except np_alerter_send_test (any thread; blocks). */
#ifndef NP_COLLECTOR_ALERTER_H
#define NP_COLLECTOR_ALERTER_H

#include "alert_rules.h"
#include "collector_config.h"
#include "netpulse/err.h"

#include <uv.h>

#include <stdbool.h>
#include <stddef.h>

struct np_alerter;
struct np_metrics;

/* Loads its own copy of the configuration at config_path (borrowed; alert
 * settings change at restart), opens alerts.db and a state database
 * connection (blocking: call before the loop runs), and creates the curl
 * multi handle on loop. *out is NULL when [alerts] enabled = no (not an
 * error). Errors: those of the config, np_alert_db_open, np_state_db_open,
 * np_curl_uv_new, np_alert_rules_new; -ENOMEM. */
int np_alerter_new(uv_loop_t *loop, const char *config_path, const struct np_metrics *metrics,
                   struct np_alerter **out, struct np_err *err);

/* Starts the timers: restores the sites recorded down, then polls. */
int np_alerter_start(struct np_alerter *al, struct np_err *err);

/* Feeds one input (borrowed) now. Returns np_alert_rules_input's result. */
int np_alerter_input(struct np_alerter *al, const struct np_alert_input *in);

/* The interface samples of batch b (borrowed; applied now, not a duplicate)
 * for the utilisation rule (see above). Loop thread; accepts al NULL. */
struct Netpulse__Batch;
void np_alerter_batch(struct np_alerter *al, const struct Netpulse__Batch *b);

/* Stops polling and sending: running transfers are cancelled (their
 * deliveries stay pending for the next start); queued database jobs still
 * run. Accepts NULL. */
void np_alerter_stop(struct np_alerter *al);

/* Database jobs queued or running (wait for 0 before np_alerter_free). */
unsigned np_alerter_busy(const struct np_alerter *al);

/* Closes the handles and frees everything once they are closed: run the loop
 * afterwards. Accepts NULL. */
void np_alerter_free(struct np_alerter *al);

/* Sends one test message the configured way (SMTP of cfg, borrowed) to
 * to_override (NULL: [smtp] to), blocking. *smtp_code gets the server's last
 * reply code (0: none) and detail (len bytes, may be NULL) curl's error text
 * or "". Returns 0 when the server accepted it, NP_EHTTP (curl failed),
 * -EINVAL (no url, bad address), -ENOMEM. */
int np_alerter_send_test(const struct np_collector_config *cfg, const char *to_override,
                         long *smtp_code, char *detail, size_t len, struct np_err *err);

#endif
