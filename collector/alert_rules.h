/* alert_rules: which alerts to send, and when. Pure: no I/O, no clocks of its
 * own, no logging; events in, notifications out (tests/unit/test_alert_rules.c).
 *
 * Inputs (np_alert_rules_input), each with the caller's time now_ms (one
 * timeline, wall ms; the alerter derives it from the monotonic clock so that
 * silence is measured without wall-clock jumps):
 *   HEARD     the site's agent reached the collector (a batch was applied)
 *   SETTLED   an outage of the site is final (outage.h): start, end, cause
 *   UPLINK    the agent's probes say the uplink went down/up at time_ms
 *   IFACE     a monitored interface (subject) went down/up at time_ms
 *   UTIL      utilisation sample (value, 0..1) of interface subject, taken
 *             at time_ms over [start_ms, time_ms) (start_ms 0: time_ms)
 *   SLA       a site's month [start_ms, end_ms): the uptime it can still
 *             reach (value), its target (threshold), the share of its
 *             downtime budget left (budget_left); np_alert_sla_input
 *   SPOOL     the agent's spool fill ratio (value, 0..1)
 *   DROPPED   the agent's spool dropped data (SPOOL_OVERFLOW)
 *   DISK      the collector's free disk ratio (value, 0..1); site ""
 *
 * Site down / recovered (the state machine per site):
 *   UP --silent for site_down_after--> DOWN (DOWN notice, through the digest)
 *   DOWN --heard--> RECOVERING --heard for hold_down, and settled (or
 *   settle_wait passed)--> UP (UP notice with duration and cause). Silent
 *   again while RECOVERING: back to DOWN without a new notice (the outage goes
 *   on). A site never heard has no state and no alerts.
 * Noise control:
 *   - de-duplication: one notice per transition; every notice has a unique
 *     idempotency key (kind, site, subject, start) for the alert store;
 *   - digest: DOWN, UP and REMINDER notices wait digest_window from the first
 *     one due; when digest_min or more are waiting they leave as one digest
 *     listing the sites, else one by one. So a DOWN leaves between
 *     site_down_after and site_down_after + digest_window after the last
 *     heartbeat;
 *   - flap damping: the flap_max+1-th DOWN of a site within flap_window sends
 *     one FLAPPING notice instead and the site stays quiet until it has been
 *     heard continuously for flap_stable (then one UP). Bound, per site and
 *     any flap_window: at most 2 * flap_max + 2 site notices (+ reminders);
 *   - reminder every `reminder` while a notified DOWN lasts (0: none);
 *   - maintenance: the in_maintenance hook is asked when a notice is due; a
 *     suppressed notice is still returned (suppressed = true) for the record,
 *     and the UP of a suppressed DOWN is suppressed too. A site still down when
 *     its window ends is notified then.
 * Conditions (uplink, interface, spool, disk): notify once when the
 * condition has held for its hold time, once when it clears (if the
 * on-notice was sent). An uplink-down whose end is already known when it is
 * learned (backlog after the outage) sends nothing: the site's UP notice
 * carries it.
 * Utilisation (per interface, on the samples' own timeline, so a backlog
 * uploaded after an outage is judged like live data): high from the start
 * of the first sample >= util_threshold; any sample below the threshold
 * before the notice, or a gap of more than NP_ALERT_UTIL_GAP_MS between
 * samples, starts over. Notified (UTIL_HIGH) once the samples have stayed
 * high for util_duration. Cleared (UTIL_OK) once samples have stayed below
 * util_clear (hysteresis: lower than the threshold) for util_clear_ms; a
 * sample at or above util_clear in between restarts that wait.
 * SLA (per site and calendar month; start_ms of the input is the month's
 * start): at risk when the share of the month's downtime budget left
 * (budget_left, see np_alert_sla_input) is below sla_budget_left. With the
 * default 0 that is "even a perfect rest of the month misses the target".
 * One SLA_RISK per site and month (its key holds the month); SLA_OK is never
 * sent (budget used stays used): the condition is cleared silently when the
 * next month starts.
 *
 * Threads: a struct np_alert_rules is used by one thread at a time. */
#ifndef NP_COLLECTOR_ALERT_RULES_H
#define NP_COLLECTOR_ALERT_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NP_ALERT_ID_MAX 64       /* bytes of a site id (state_db's rule) */
#define NP_ALERT_SUBJECT_MAX 128 /* bytes of a subject (interface key), with the NUL */
#define NP_ALERT_KEY_MAX 256     /* bytes of an idempotency key, with the NUL */
#define NP_ALERT_CAUSE_MAX 16
#define NP_ALERT_UTIL_GAP_MS 300000 /* utilisation samples further apart: not sustained */

enum np_alert_kind {
    NP_ALERT_SITE_DOWN,
    NP_ALERT_SITE_UP,
    NP_ALERT_SITE_REMINDER,
    NP_ALERT_SITE_FLAPPING,
    NP_ALERT_UPLINK_DOWN,
    NP_ALERT_UPLINK_UP,
    NP_ALERT_IFACE_DOWN,
    NP_ALERT_IFACE_UP,
    NP_ALERT_UTIL_HIGH,
    NP_ALERT_UTIL_OK,
    NP_ALERT_SLA_RISK,
    NP_ALERT_SLA_OK,
    NP_ALERT_SPOOL_FILLING,
    NP_ALERT_SPOOL_OK,
    NP_ALERT_SPOOL_DROPPED,
    NP_ALERT_DISK_LOW,
    NP_ALERT_DISK_OK,
    NP_ALERT_TEST,
    NP_ALERT_KIND_COUNT
};

enum np_alert_severity {
    NP_ALERT_INFO = 0,
    NP_ALERT_WARNING = 1,
    NP_ALERT_CRITICAL = 2,
};

enum np_alert_input_kind {
    NP_ALERT_IN_HEARD,
    NP_ALERT_IN_SETTLED,
    NP_ALERT_IN_UPLINK,
    NP_ALERT_IN_IFACE,
    NP_ALERT_IN_UTIL,
    NP_ALERT_IN_SLA,
    NP_ALERT_IN_SPOOL,
    NP_ALERT_IN_DROPPED,
    NP_ALERT_IN_DISK,
};

/* One input; strings borrowed for the call. */
struct np_alert_input {
    enum np_alert_input_kind kind;
    const char *site;         /* site id; "" or NULL for DISK */
    const char *subject;      /* IFACE/UTIL: interface key; else NULL */
    int64_t time_ms;          /* when it happened (agent clock for UPLINK/IFACE/DROPPED) */
    bool up;                  /* UPLINK/IFACE: true = up */
    int64_t start_ms, end_ms; /* SETTLED: the outage; UPLINK down: end_ms if already known */
    const char *cause;        /* SETTLED: "link", "agent", "unknown" */
    double value, threshold;  /* UTIL/SLA/SPOOL/DISK; SLA: projected uptime, target */
    double budget_left;       /* SLA: share of the month's downtime budget left (< 0: over) */
};

/* One site of a digest. */
struct np_alert_site {
    char id[NP_ALERT_ID_MAX + 1];
    int64_t start_ms, end_ms; /* outage start (last heard), end (0: open) */
    char cause[NP_ALERT_CAUSE_MAX];
};

/* One notification. Owned by the caller of np_alert_rules_pop(); free with
 * np_alert_free(). */
struct np_alert {
    enum np_alert_kind kind;
    enum np_alert_severity severity;
    bool suppressed;                /* maintenance: record, do not deliver */
    int64_t time_ms;                /* raised at */
    char site[NP_ALERT_ID_MAX + 1]; /* "" for digests and district-wide alerts */
    char subject[NP_ALERT_SUBJECT_MAX];
    int64_t start_ms, end_ms;       /* outage / condition; end 0: open */
    char cause[NP_ALERT_CAUSE_MAX]; /* SITE_UP: "link", "agent", "unknown", "pending" */
    double value, threshold;
    unsigned count;             /* FLAPPING/UP after flapping: outages in the window */
    char key[NP_ALERT_KEY_MAX]; /* idempotency key: one alert per key, ever */
    size_t n_sites;             /* > 0: a digest of sites[0..n_sites) */
    struct np_alert_site *sites;
};

/* Hook: is site in a maintenance window at t_ms? Called from input/tick. */
typedef bool (*np_alert_maintenance_cb)(void *ctx, const char *site, int64_t t_ms);

struct np_alert_rules_config {
    int64_t site_down_after_ms; /* > 0 */
    int64_t hold_down_ms;       /* heard this long before a recovery counts */
    int64_t settle_wait_ms;     /* longest wait for the outage's cause before UP */
    int64_t digest_window_ms;   /* 0: no digests */
    unsigned digest_min;        /* sites for a digest (>= 2) */
    int64_t flap_window_ms;
    unsigned flap_max; /* 0: no flap damping */
    int64_t flap_stable_ms;
    int64_t reminder_ms; /* 0: no reminders */
    bool uplink, iface;  /* rule families on/off */
    int64_t uplink_hold_ms, iface_hold_ms;
    double util_threshold; /* 0: off */
    int64_t util_duration_ms;
    double util_clear;     /* a notified high utilisation clears below this ... */
    int64_t util_clear_ms; /* ... held this long */
    bool sla;
    double sla_budget_left; /* at risk below this share of the budget left */
    double spool_threshold; /* 0: off; fill ratio */
    bool spool_dropped;
    double disk_free_min;                   /* 0: off */
    np_alert_maintenance_cb in_maintenance; /* may be NULL */
    void *maintenance_ctx;
};

struct np_alert_rules;

/* Fills cfg with the defaults documented in collector_config.c. */
void np_alert_rules_defaults(struct np_alert_rules_config *cfg);

/* Creates the rules; cfg copied. Errors: -EINVAL (site_down_after <= 0, negative
 * times), -ENOMEM. Free with np_alert_rules_free(). */
int np_alert_rules_new(const struct np_alert_rules_config *cfg, struct np_alert_rules **out);

/* Frees the rules and queued notices; accepts NULL. */
void np_alert_rules_free(struct np_alert_rules *r);

/* Feeds one input. Errors: -EINVAL (bad site id or kind), -ENOMEM. */
int np_alert_rules_input(struct np_alert_rules *r, const struct np_alert_input *in, int64_t now_ms);

/* Advances time: silence, holds, digests, reminders. Call about every second. */
void np_alert_rules_tick(struct np_alert_rules *r, int64_t now_ms);

/* Seeds a site after a restart: it was down since since_ms and its DOWN was
 * notified (or suppressed: notified false). last_heard_ms is then now. An
 * unknown site is created. Errors: -EINVAL, -ENOMEM. */
int np_alert_rules_restore(struct np_alert_rules *r, const char *site, int64_t since_ms,
                           bool notified, int64_t now_ms);

/* Seeds a condition after a restart: its on-notice (on_kind: UPLINK_DOWN,
 * IFACE_DOWN, UTIL_HIGH, SPOOL_FILLING or DISK_LOW) went out for the
 * condition that started at start_ms, so its clearing sends the off-notice.
 * subject may be NULL. Errors: -EINVAL (other kind, bad site), -ENOMEM. */
int np_alert_rules_restore_cond(struct np_alert_rules *r, enum np_alert_kind on_kind,
                                const char *site, const char *subject, int64_t start_ms,
                                double value, double threshold);

/* Whether kind is the on-notice of a condition that np_alert_rules_restore_cond
 * takes, and its off-notice (*off, may be NULL). */
bool np_alert_kind_cond(enum np_alert_kind kind, enum np_alert_kind *off);

/* Builds the SLA input of site (borrowed) for the calendar month
 * [month_start_ms, month_end_ms) from its downtime budget (uptime.h:
 * allowed_ms, used_ms so far) and its target (0 < target < 1):
 * budget_left = (allowed - used) / allowed (no allowance: 1 without downtime,
 * -1 with); value = the month's uptime if the rest of it is clean, 1 -
 * used / (allowed / (1 - target)) (the month's length when nothing is
 * allowed); threshold = target; time_ms = now_ms. Pure, any thread. */
void np_alert_sla_input(const char *site, int64_t month_start_ms, int64_t month_end_ms,
                        int64_t allowed_ms, int64_t used_ms, double target, int64_t now_ms,
                        struct np_alert_input *out);

/* Takes the next notification (oldest first); NULL when none. */
struct np_alert *np_alert_rules_pop(struct np_alert_rules *r);

/* Whether site is down (DOWN or RECOVERING) now; for tests and status. */
bool np_alert_rules_site_down(const struct np_alert_rules *r, const char *site);

/* Calls cb for each site that is down now (recovering: heard again, its UP
 * not sent yet), with the start of its outage (last heard before it). */
typedef void (*np_alert_rules_down_cb)(void *ctx, const char *site, int64_t since_ms,
                                       bool recovering);
void np_alert_rules_each_down(const struct np_alert_rules *r, np_alert_rules_down_cb cb, void *ctx);

/* A new empty alert (kind, severity from kind), for test messages. */
struct np_alert *np_alert_new(enum np_alert_kind kind);

/* Frees an alert; accepts NULL. */
void np_alert_free(struct np_alert *a);

/* "site_down", ... and back (-EINVAL); severity "info", "warning", "critical". */
const char *np_alert_kind_name(enum np_alert_kind k);
int np_alert_kind_parse(const char *s, enum np_alert_kind *out);
const char *np_alert_severity_name(enum np_alert_severity s);
int np_alert_severity_parse(const char *s, enum np_alert_severity *out);

/* Default severity of a kind. */
enum np_alert_severity np_alert_kind_severity(enum np_alert_kind k);

#endif
