/* Unit tests of collector/alert_db: the open conditions that survive a
 * restart, and the schema step from version 1 (a file written before them). */
#include "alert_db.h"

#include "check.h"

#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct conds {
    size_t n;
    enum np_alert_kind kind[8];
    char site[8][NP_ALERT_ID_MAX + 1];
    char subject[8][NP_ALERT_SUBJECT_MAX];
    int64_t start_ms[8];
};

static int on_cond(enum np_alert_kind k, const char *site, const char *subject, int64_t start_ms,
                   double value, double threshold, void *ctx)
{
    struct conds *c = ctx;
    (void)value;
    (void)threshold;
    if (c->n < 8) {
        c->kind[c->n] = k;
        snprintf(c->site[c->n], sizeof c->site[0], "%s", site);
        snprintf(c->subject[c->n], sizeof c->subject[0], "%s", subject);
        c->start_ms[c->n++] = start_ms;
    }
    return 0;
}

static void record(struct np_alert_db *db, enum np_alert_kind k, const char *site,
                   const char *subject, int64_t start_ms, bool want_created)
{
    struct np_alert *a = np_alert_new(k);
    struct np_delivery_new d = {"smtp", "noc@district.example", "body", 4};
    bool created = !want_created;
    CHECK(a != NULL);
    snprintf(a->site, sizeof a->site, "%s", site);
    snprintf(a->subject, sizeof a->subject, "%s", subject);
    a->start_ms = start_ms;
    snprintf(a->key, sizeof a->key, "%s:%s:%s:%lld", np_alert_kind_name(k), site, subject,
             (long long)start_ms);
    CHECK_INT(np_alert_db_record(db, a, subject, &d, 1, 1000, NULL, &created, NULL), 0);
    CHECK_INT(created, want_created);
    np_alert_free(a);
}

static struct conds list(struct np_alert_db *db)
{
    struct conds c;
    memset(&c, 0, sizeof c);
    CHECK_INT(np_alert_db_open_conditions(db, on_cond, &c, NULL), 0);
    return c;
}

int main(void)
{
    char dir[] = "/tmp/np-test-alert-db.XXXXXX";
    char path[256];
    struct np_alert_db *db = NULL;
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/alerts.db", dir);

    /* a file of schema version 1: made now, then taken back to version 1 */
    CHECK_INT(np_alert_db_open(path, &db, NULL), 0);
    np_alert_db_close(db);
    sqlite3 *raw = NULL;
    CHECK_INT(sqlite3_open(path, &raw), SQLITE_OK);
    CHECK_INT(
        sqlite3_exec(raw, "DROP TABLE open_conditions; PRAGMA user_version = 1", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(raw);
    CHECK_INT(np_alert_db_open(path, &db, NULL), 0); /* upgraded */
    struct conds c = list(db);
    CHECK_INT(c.n, 0);

    /* an interface down opens its condition; recorded again: unchanged */
    record(db, NP_ALERT_IFACE_DOWN, "school-1", "core-sw/Gi0/2", 5000, true);
    record(db, NP_ALERT_IFACE_DOWN, "school-1", "core-sw/Gi0/2", 5000, false);
    record(db, NP_ALERT_UTIL_HIGH, "school-1", "edge/wan0", 7000, true);
    record(db, NP_ALERT_SLA_RISK, "school-1", "", 0, true); /* no off-notice: not kept */
    record(db, NP_ALERT_SITE_DOWN, "school-2", "", 100, true);
    np_alert_db_close(db);

    /* the restart */
    CHECK_INT(np_alert_db_open(path, &db, NULL), 0);
    c = list(db);
    CHECK_INT(c.n, 2);
    CHECK_INT(c.kind[0], NP_ALERT_IFACE_DOWN);
    CHECK_STR(c.site[0], "school-1");
    CHECK_STR(c.subject[0], "core-sw/Gi0/2");
    CHECK_INT(c.start_ms[0], 5000);
    CHECK_INT(c.kind[1], NP_ALERT_UTIL_HIGH);

    /* the interface's UP closes it; the other stays */
    record(db, NP_ALERT_IFACE_UP, "school-1", "core-sw/Gi0/2", 5000, true);
    c = list(db);
    CHECK_INT(c.n, 1);
    CHECK_INT(c.kind[0], NP_ALERT_UTIL_HIGH);
    record(db, NP_ALERT_UTIL_OK, "school-1", "edge/wan0", 7000, true);
    c = list(db);
    CHECK_INT(c.n, 0);
    np_alert_db_close(db);

    /* a newer file is refused */
    CHECK_INT(sqlite3_open(path, &raw), SQLITE_OK);
    CHECK_INT(sqlite3_exec(raw, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    CHECK_INT(np_alert_db_open(path, &db, NULL), NP_EVERSION);

    static const char *const files[] = {"alerts.db", "alerts.db-wal", "alerts.db-shm"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    CHECK_INT(rmdir(dir), 0);
    return check_done("test_alert_db");
}
