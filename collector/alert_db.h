/* alert_db: every alert and each of its delivery attempts, in SQLite
 * (DATA_DIR/alerts.db, a file of its own so that alerting never touches the
 * state database's schema).
 *
 * Tables: alerts (one row per idempotency key: recording the same alert again
 * changes nothing), deliveries (one per alert and channel: the built message
 * or JSON body, its state pending/sent/failed/suppressed, attempts, next
 * attempt time, last outcome), down_sites (the sites whose DOWN was
 * recorded and not yet followed by an UP: a restarted collector goes on from
 * there instead of notifying them again) and open_conditions (the same for
 * conditions, np_alert_kind_cond(): an interface down before a restart gets
 * its UP notice after it). Schema steps run in order from PRAGMA
 * user_version, one transaction each.
 *
 * Nothing is sent twice: a delivery is marked sent in the row that counts its
 * attempts, right after the server accepted it; the alerter takes only
 * pending rows. (A crash between the server's "250" and that commit can
 * repeat one message: the Message-ID is the same, so clients fold it.)
 *
 * journal_mode=WAL, synchronous=FULL (alerts are few; each matters), busy
 * timeout 5 s (the CLI reads the file while the daemon writes).
 *
 * Threads: one connection, one thread at a time; every call blocks on disk:
 * never on the loop thread (the alerter runs them in uv_queue_work jobs).
 * Errors: 0 or NP_EDB (err->msg has sqlite3_errmsg), NP_EVERSION, -EINVAL,
 * -ENOENT, -ENOMEM. err may be NULL. */
#ifndef NP_COLLECTOR_ALERT_DB_H
#define NP_COLLECTOR_ALERT_DB_H

#include "alert_rules.h"
#include "netpulse/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NP_ALERT_DB_SCHEMA_VERSION 2 /* 2: open_conditions */

struct np_alert_db;

enum np_delivery_state {
    NP_DELIVERY_PENDING,
    NP_DELIVERY_SENT,
    NP_DELIVERY_FAILED,     /* given up */
    NP_DELIVERY_SUPPRESSED, /* maintenance: recorded, never sent */
};

/* A delivery to create with an alert; strings and body borrowed. */
struct np_delivery_new {
    const char *channel; /* "smtp" or "webhook:NAME" */
    const char *target;  /* smtp: recipients, comma-separated; webhook: its url */
    const void *body;    /* the MIME message or the JSON */
    size_t body_len;
};

/* A delivery read back; strings and body borrowed for the callback only. */
struct np_delivery {
    int64_t id, alert_id;
    const char *channel, *target;
    const void *body;
    size_t body_len;
    enum np_delivery_state state;
    int64_t attempts, next_ms, created_ms, sent_ms;
    long last_code;
    const char *last_error;
};

/* Opens (creating) the file at path (borrowed). Free with np_alert_db_close(). */
int np_alert_db_open(const char *path, struct np_alert_db **out, struct np_err *err);

/* Closes; accepts NULL. */
void np_alert_db_close(struct np_alert_db *db);

/* Records alert a (borrowed) with its subject (for listings) and deliveries
 * d[0..n) in one transaction, all due at now_ms (state suppressed when
 * a->suppressed). If an alert with a->key exists, nothing changes:
 * *created = false. Also keeps down_sites: a SITE_DOWN/FLAPPING adds its
 * site(s) (notified = !suppressed), a SITE_UP removes them. *alert_id (may be
 * NULL) gets the row id. */
int np_alert_db_record(struct np_alert_db *db, const struct np_alert *a, const char *subject,
                       const struct np_delivery_new *d, size_t n, int64_t now_ms, int64_t *alert_id,
                       bool *created, struct np_err *err);

/* Calls cb for up to limit pending deliveries due at now_ms (next_ms <=
 * now_ms), oldest first, until cb returns non-zero (then returned).
 * *next_due_ms (may be NULL) gets the earliest next_ms of the pending ones
 * not due yet (0: none). */
typedef int (*np_alert_db_delivery_cb)(const struct np_delivery *d, void *ctx);
int np_alert_db_due(struct np_alert_db *db, int64_t now_ms, size_t limit,
                    np_alert_db_delivery_cb cb, void *ctx, int64_t *next_due_ms,
                    struct np_err *err);

/* Records one attempt of delivery id: sent (state sent, sent_ms = now_ms), or
 * failed with code/error: pending again at next_ms, or failed for good when
 * give_up. error borrowed (may be NULL). -ENOENT: no such pending delivery
 * (it was already marked: nothing changes). */
int np_alert_db_attempt(struct np_alert_db *db, int64_t id, bool sent, long code, const char *error,
                        int64_t now_ms, int64_t next_ms, bool give_up, struct np_err *err);

/* One alert for listings; borrowed for the callback only. */
struct np_alert_row {
    int64_t id;
    const char *key, *kind, *severity, *site, *subject;
    int64_t created_ms, start_ms, end_ms;
    bool suppressed;
    size_t n_sites;
    /* deliveries summary */
    unsigned n_deliveries, n_sent, n_pending, n_failed;
    int64_t attempts;
    long last_code;
    const char *last_error; /* of the last failed attempt of any delivery, "" */
};
typedef int (*np_alert_db_alert_cb)(const struct np_alert_row *r, void *ctx);

/* The newest limit alerts, newest first. */
int np_alert_db_list(struct np_alert_db *db, size_t limit, np_alert_db_alert_cb cb, void *ctx,
                     struct np_err *err);

/* Calls cb(site, since_ms, notified, ctx) for each site recorded down. */
typedef int (*np_alert_db_down_cb)(const char *site, int64_t since_ms, bool notified, void *ctx);
int np_alert_db_down_sites(struct np_alert_db *db, np_alert_db_down_cb cb, void *ctx,
                           struct np_err *err);

/* Calls cb for each open condition: its on-notice kind, site, subject,
 * start, value and threshold (strings borrowed for the call). Recorded by
 * np_alert_db_record: an on-notice (np_alert_kind_cond) opens (kind, site,
 * subject), its off-notice closes it. */
typedef int (*np_alert_db_cond_cb)(enum np_alert_kind on_kind, const char *site,
                                   const char *subject, int64_t start_ms, double value,
                                   double threshold, void *ctx);
int np_alert_db_open_conditions(struct np_alert_db *db, np_alert_db_cond_cb cb, void *ctx,
                                struct np_err *err);

/* "pending", "sent", "failed", "suppressed". */
const char *np_delivery_state_name(enum np_delivery_state s);

#endif
