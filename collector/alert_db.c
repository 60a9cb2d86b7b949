#include "alert_db.h"

#include <sqlite3.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char schema_v1[] =
    "CREATE TABLE IF NOT EXISTS alerts ("
    " id INTEGER PRIMARY KEY,"
    " key TEXT NOT NULL UNIQUE,"
    " kind TEXT NOT NULL,"
    " severity TEXT NOT NULL,"
    " site TEXT NOT NULL DEFAULT '',"
    " subject TEXT NOT NULL DEFAULT '',"
    " start_ms INTEGER NOT NULL DEFAULT 0,"
    " end_ms INTEGER NOT NULL DEFAULT 0,"
    " cause TEXT NOT NULL DEFAULT '',"
    " n_sites INTEGER NOT NULL DEFAULT 0,"
    " suppressed INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE IF NOT EXISTS deliveries ("
    " id INTEGER PRIMARY KEY,"
    " alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,"
    " channel TEXT NOT NULL,"
    " target TEXT NOT NULL,"
    " body BLOB NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('pending','sent','failed','suppressed')),"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_ms INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " sent_ms INTEGER NOT NULL DEFAULT 0,"
    " last_code INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT NOT NULL DEFAULT '',"
    " UNIQUE (alert_id, channel)"
    ") STRICT;"
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(next_ms) WHERE state = 'pending';"
    "CREATE TABLE IF NOT EXISTS down_sites ("
    " site TEXT PRIMARY KEY,"
    " since_ms INTEGER NOT NULL,"
    " notified INTEGER NOT NULL"
    ") STRICT;";

/* 2: the conditions whose on-notice was recorded and not yet followed by its
 * off-notice (interface down, ...): a restarted collector still sends the
 * off-notice. kind is the on-notice's kind name. */
static const char schema_v2[] = "CREATE TABLE IF NOT EXISTS open_conditions ("
                                " kind TEXT NOT NULL,"
                                " site TEXT NOT NULL,"
                                " subject TEXT NOT NULL,"
                                " start_ms INTEGER NOT NULL,"
                                " value REAL NOT NULL,"
                                " threshold REAL NOT NULL,"
                                " PRIMARY KEY (kind, site, subject)"
                                ") STRICT;";

/* Schema steps: migrations[i] takes user_version i to i + 1. */
static const char *const migrations[NP_ALERT_DB_SCHEMA_VERSION] = {schema_v1, schema_v2};

enum stmt_id {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_ALERT_FIND,
    S_ALERT_INSERT,
    S_DELIVERY_INSERT,
    S_DOWN_SET,
    S_DOWN_DEL,
    S_DUE,
    S_NEXT_DUE,
    S_ATTEMPT,
    S_LIST,
    S_DOWN_LIST,
    S_COND_SET,
    S_COND_DEL,
    S_COND_LIST,
    S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_ALERT_FIND] = "SELECT id FROM alerts WHERE key = ?1",
    [S_ALERT_INSERT] = "INSERT INTO alerts (key, kind, severity, site, subject, start_ms, end_ms,"
                       " cause, n_sites, suppressed, created_ms)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [S_DELIVERY_INSERT] = "INSERT INTO deliveries (alert_id, channel, target, body, state,"
                          " next_ms, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    [S_DOWN_SET] = "INSERT INTO down_sites (site, since_ms, notified) VALUES (?1, ?2, ?3)"
                   " ON CONFLICT (site) DO UPDATE SET since_ms = excluded.since_ms,"
                   " notified = excluded.notified",
    [S_DOWN_DEL] = "DELETE FROM down_sites WHERE site = ?1",
    [S_DUE] = "SELECT id, alert_id, channel, target, body, state, attempts, next_ms, created_ms,"
              " sent_ms, last_code, last_error FROM deliveries"
              " WHERE state = 'pending' AND next_ms <= ?1 ORDER BY next_ms, id LIMIT ?2",
    [S_NEXT_DUE] = "SELECT min(next_ms) FROM deliveries WHERE state = 'pending' AND next_ms > ?1",
    [S_ATTEMPT] = "UPDATE deliveries SET attempts = attempts + 1, state = ?2, sent_ms = ?3,"
                  " last_code = ?4, last_error = ?5, next_ms = ?6"
                  " WHERE id = ?1 AND state = 'pending'",
    [S_LIST] = "SELECT a.id, a.key, a.kind, a.severity, a.site, a.subject, a.created_ms,"
               " a.start_ms, a.end_ms, a.suppressed, a.n_sites,"
               " count(d.id), sum(d.state = 'sent'), sum(d.state = 'pending'),"
               " sum(d.state = 'failed'), coalesce(sum(d.attempts), 0),"
               " coalesce(max(d.last_code), 0),"
               " coalesce(max(CASE WHEN d.last_error != '' THEN d.last_error END), '')"
               " FROM alerts a LEFT JOIN deliveries d ON d.alert_id = a.id"
               " GROUP BY a.id ORDER BY a.id DESC LIMIT ?1",
    [S_DOWN_LIST] = "SELECT site, since_ms, notified FROM down_sites ORDER BY site",
    [S_COND_SET] = "INSERT INTO open_conditions (kind, site, subject, start_ms, value, threshold)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (kind, site, subject) DO UPDATE"
                   " SET start_ms = excluded.start_ms, value = excluded.value,"
                   " threshold = excluded.threshold",
    [S_COND_DEL] = "DELETE FROM open_conditions WHERE kind = ?1 AND site = ?2 AND subject = ?3",
    [S_COND_LIST] = "SELECT kind, site, subject, start_ms, value, threshold FROM open_conditions"
                    " ORDER BY kind, site, subject",
};

struct np_alert_db {
    sqlite3 *conn;
    sqlite3_stmt *stmt[S_COUNT];
};

static int fail(struct np_alert_db *db, struct np_err *err, const char *what)
{
    return np_err_set(err, NP_EDB, "alert db: %s: %s", what, sqlite3_errmsg(db->conn));
}

static sqlite3_stmt *get(struct np_alert_db *db, enum stmt_id id)
{
    sqlite3_reset(db->stmt[id]);
    sqlite3_clear_bindings(db->stmt[id]);
    return db->stmt[id];
}

static int exec(struct np_alert_db *db, sqlite3_stmt *st, struct np_err *err, const char *what)
{
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : fail(db, err, what);
    sqlite3_reset(st);
    return ret;
}

static const char *text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}

const char *np_delivery_state_name(enum np_delivery_state s)
{
    static const char *const names[] = {"pending", "sent", "failed", "suppressed"};
    return (unsigned)s <= NP_DELIVERY_SUPPRESSED ? names[s] : "unknown";
}

static enum np_delivery_state state_parse(const char *s)
{
    for (int i = 0; i <= NP_DELIVERY_SUPPRESSED; i++) {
        if (strcmp(s, np_delivery_state_name((enum np_delivery_state)i)) == 0) {
            return (enum np_delivery_state)i;
        }
    }
    return NP_DELIVERY_FAILED;
}

int np_alert_db_open(const char *path, struct np_alert_db **out, struct np_err *err)
{
    struct np_alert_db *db = calloc(1, sizeof *db);
    int ret = 0, version = 0;
    sqlite3_stmt *st = NULL;
    *out = NULL;
    if (!db) {
        return np_err_set(err, -ENOMEM, "alert db: out of memory");
    }
    if (sqlite3_open_v2(path, &db->conn,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        ret = np_err_set(err, NP_EDB, "alert db: open %s: %s", path,
                         db->conn ? sqlite3_errmsg(db->conn) : "out of memory");
        goto out_close;
    }
    sqlite3_busy_timeout(db->conn, 5000);
    if (sqlite3_exec(db->conn,
                     "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                     " PRAGMA foreign_keys = ON",
                     NULL, NULL, NULL) != SQLITE_OK) {
        ret = fail(db, err, "pragmas");
        goto out_close;
    }
    if (sqlite3_prepare_v2(db->conn, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        ret = fail(db, err, "user_version");
        goto out_finalize;
    }
    version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (version > NP_ALERT_DB_SCHEMA_VERSION) {
        ret = np_err_set(err, NP_EVERSION, "alert db: %s has schema version %d, newer than %d",
                         path, version, NP_ALERT_DB_SCHEMA_VERSION);
        goto out_close;
    }
    for (; version < NP_ALERT_DB_SCHEMA_VERSION; version++) {
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d; COMMIT", version + 1);
        if (sqlite3_exec(db->conn, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(db->conn, migrations[version], NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(db->conn, bump, NULL, NULL, NULL) != SQLITE_OK) {
            ret = fail(db, err, "schema");
            sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
            goto out_close;
        }
    }
    for (int i = 0; i < S_COUNT; i++) {
        if (sqlite3_prepare_v3(db->conn, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &db->stmt[i],
                               NULL) != SQLITE_OK) {
            ret = fail(db, err, "prepare");
            goto out_close;
        }
    }
    *out = db;
    return 0;

out_finalize:
    sqlite3_finalize(st);
out_close:
    np_alert_db_close(db);
    return ret;
}

void np_alert_db_close(struct np_alert_db *db)
{
    if (!db) {
        return;
    }
    for (int i = 0; i < S_COUNT; i++) {
        sqlite3_finalize(db->stmt[i]);
    }
    sqlite3_close(db->conn);
    free(db);
}

static int down_set(struct np_alert_db *db, const char *site, int64_t since, bool notified,
                    struct np_err *err)
{
    sqlite3_stmt *st = get(db, S_DOWN_SET);
    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, since);
    sqlite3_bind_int(st, 3, notified);
    return exec(db, st, err, "down_sites");
}

static int down_del(struct np_alert_db *db, const char *site, struct np_err *err)
{
    sqlite3_stmt *st = get(db, S_DOWN_DEL);
    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    return exec(db, st, err, "down_sites");
}

/* down_sites follows the site notices. */
static int track_down(struct np_alert_db *db, const struct np_alert *a, struct np_err *err)
{
    bool down = a->kind == NP_ALERT_SITE_DOWN || a->kind == NP_ALERT_SITE_FLAPPING;
    if (!down && a->kind != NP_ALERT_SITE_UP) {
        return 0;
    }
    int ret = 0;
    if (a->n_sites) {
        for (size_t i = 0; i < a->n_sites && ret == 0; i++) {
            ret = down ? down_set(db, a->sites[i].id, a->sites[i].start_ms, !a->suppressed, err)
                       : down_del(db, a->sites[i].id, err);
        }
    } else if (a->site[0]) {
        ret = down ? down_set(db, a->site, a->start_ms, !a->suppressed, err)
                   : down_del(db, a->site, err);
    }
    return ret;
}

/* open_conditions follows the condition notices. */
static int track_cond(struct np_alert_db *db, const struct np_alert *a, struct np_err *err)
{
    enum np_alert_kind on = a->kind, off;
    bool opens = np_alert_kind_cond(a->kind, NULL);
    if (!opens) {
        int k = 0;
        while (k < NP_ALERT_KIND_COUNT &&
               !(np_alert_kind_cond((enum np_alert_kind)k, &off) && off == a->kind)) {
            k++;
        }
        if (k == NP_ALERT_KIND_COUNT) {
            return 0; /* not a condition's notice */
        }
        on = (enum np_alert_kind)k;
    }
    sqlite3_stmt *st = get(db, opens ? S_COND_SET : S_COND_DEL);
    sqlite3_bind_text(st, 1, np_alert_kind_name(on), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->site, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, a->subject, -1, SQLITE_STATIC);
    if (opens) {
        sqlite3_bind_int64(st, 4, a->start_ms);
        sqlite3_bind_double(st, 5, a->value);
        sqlite3_bind_double(st, 6, a->threshold);
    }
    return exec(db, st, err, "open_conditions");
}

int np_alert_db_record(struct np_alert_db *db, const struct np_alert *a, const char *subject,
                       const struct np_delivery_new *d, size_t n, int64_t now_ms, int64_t *alert_id,
                       bool *created, struct np_err *err)
{
    sqlite3_stmt *st;
    int ret;
    int64_t id = 0;
    if (created) {
        *created = false;
    }
    if (!a->key[0]) {
        return np_err_set(err, -EINVAL, "alert db: alert without a key");
    }
    if ((ret = exec(db, get(db, S_BEGIN), err, "begin")) != 0) {
        return ret;
    }
    st = get(db, S_ALERT_FIND);
    sqlite3_bind_text(st, 1, a->key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        goto out_commit; /* recorded before: nothing changes */
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        ret = fail(db, err, "find");
        goto out_rollback;
    }
    st = get(db, S_ALERT_INSERT);
    sqlite3_bind_text(st, 1, a->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, np_alert_kind_name(a->kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, np_alert_severity_name(a->severity), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, a->site, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, subject ? subject : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, a->start_ms);
    sqlite3_bind_int64(st, 7, a->end_ms);
    sqlite3_bind_text(st, 8, a->cause, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, (int64_t)a->n_sites);
    sqlite3_bind_int(st, 10, a->suppressed);
    sqlite3_bind_int64(st, 11, now_ms);
    if ((ret = exec(db, st, err, "insert alert")) != 0) {
        goto out_rollback;
    }
    id = sqlite3_last_insert_rowid(db->conn);
    for (size_t i = 0; i < n; i++) {
        st = get(db, S_DELIVERY_INSERT);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, d[i].channel, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, d[i].target ? d[i].target : "", -1, SQLITE_STATIC);
        sqlite3_bind_blob64(st, 4, d[i].body ? d[i].body : "", d[i].body_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, a->suppressed ? "suppressed" : "pending", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, now_ms);
        if ((ret = exec(db, st, err, "insert delivery")) != 0) {
            goto out_rollback;
        }
    }
    if ((ret = track_down(db, a, err)) != 0 || (ret = track_cond(db, a, err)) != 0) {
        goto out_rollback;
    }
    if (created) {
        *created = true;
    }
out_commit:
    if ((ret = exec(db, get(db, S_COMMIT), err, "commit")) != 0) {
        goto out_rollback;
    }
    if (alert_id) {
        *alert_id = id;
    }
    return 0;

out_rollback:
    exec(db, get(db, S_ROLLBACK), NULL, "rollback");
    if (created) {
        *created = false;
    }
    return ret;
}

int np_alert_db_due(struct np_alert_db *db, int64_t now_ms, size_t limit,
                    np_alert_db_delivery_cb cb, void *ctx, int64_t *next_due_ms, struct np_err *err)
{
    sqlite3_stmt *st = get(db, S_DUE);
    int rc, ret = 0;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int64(st, 2, (int64_t)limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct np_delivery d = {
            .id = sqlite3_column_int64(st, 0),
            .alert_id = sqlite3_column_int64(st, 1),
            .channel = text(st, 2),
            .target = text(st, 3),
            .body = sqlite3_column_blob(st, 4),
            .body_len = (size_t)sqlite3_column_bytes(st, 4),
            .state = state_parse(text(st, 5)),
            .attempts = sqlite3_column_int64(st, 6),
            .next_ms = sqlite3_column_int64(st, 7),
            .created_ms = sqlite3_column_int64(st, 8),
            .sent_ms = sqlite3_column_int64(st, 9),
            .last_code = (long)sqlite3_column_int64(st, 10),
            .last_error = text(st, 11),
        };
        if ((ret = cb(&d, ctx)) != 0) {
            break;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        ret = fail(db, err, "due");
    }
    sqlite3_reset(st);
    if (ret == 0 && next_due_ms) {
        st = get(db, S_NEXT_DUE);
        sqlite3_bind_int64(st, 1, now_ms);
        *next_due_ms = 0;
        if (sqlite3_step(st) == SQLITE_ROW) {
            *next_due_ms = sqlite3_column_int64(st, 0);
        }
        sqlite3_reset(st);
    }
    return ret;
}

int np_alert_db_attempt(struct np_alert_db *db, int64_t id, bool sent, long code, const char *error,
                        int64_t now_ms, int64_t next_ms, bool give_up, struct np_err *err)
{
    sqlite3_stmt *st = get(db, S_ATTEMPT);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, sent ? "sent" : give_up ? "failed" : "pending", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, sent ? now_ms : 0);
    sqlite3_bind_int64(st, 4, code);
    sqlite3_bind_text(st, 5, sent ? "" : (error ? error : ""), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, sent ? now_ms : next_ms);
    int ret = exec(db, st, err, "attempt");
    if (ret == 0 && sqlite3_changes(db->conn) == 0) {
        return np_err_set(err, -ENOENT, "alert db: no pending delivery %lld", (long long)id);
    }
    return ret;
}

int np_alert_db_list(struct np_alert_db *db, size_t limit, np_alert_db_alert_cb cb, void *ctx,
                     struct np_err *err)
{
    sqlite3_stmt *st = get(db, S_LIST);
    int rc, ret = 0;
    sqlite3_bind_int64(st, 1, (int64_t)limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct np_alert_row r = {
            .id = sqlite3_column_int64(st, 0),
            .key = text(st, 1),
            .kind = text(st, 2),
            .severity = text(st, 3),
            .site = text(st, 4),
            .subject = text(st, 5),
            .created_ms = sqlite3_column_int64(st, 6),
            .start_ms = sqlite3_column_int64(st, 7),
            .end_ms = sqlite3_column_int64(st, 8),
            .suppressed = sqlite3_column_int(st, 9) != 0,
            .n_sites = (size_t)sqlite3_column_int64(st, 10),
            .n_deliveries = (unsigned)sqlite3_column_int(st, 11),
            .n_sent = (unsigned)sqlite3_column_int(st, 12),
            .n_pending = (unsigned)sqlite3_column_int(st, 13),
            .n_failed = (unsigned)sqlite3_column_int(st, 14),
            .attempts = sqlite3_column_int64(st, 15),
            .last_code = (long)sqlite3_column_int64(st, 16),
            .last_error = text(st, 17),
        };
        if ((ret = cb(&r, ctx)) != 0) {
            break;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        ret = fail(db, err, "list");
    }
    sqlite3_reset(st);
    return ret;
}

int np_alert_db_down_sites(struct np_alert_db *db, np_alert_db_down_cb cb, void *ctx,
                           struct np_err *err)
{
    sqlite3_stmt *st = get(db, S_DOWN_LIST);
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((ret = cb(text(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_int(st, 2) != 0,
                      ctx)) != 0) {
            break;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        ret = fail(db, err, "down sites");
    }
    sqlite3_reset(st);
    return ret;
}

int np_alert_db_open_conditions(struct np_alert_db *db, np_alert_db_cond_cb cb, void *ctx,
                                struct np_err *err)
{
    sqlite3_stmt *st = get(db, S_COND_LIST);
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        enum np_alert_kind k;
        if (np_alert_kind_parse(text(st, 0), &k) != 0) {
            continue; /* written by a newer version */
        }
        if ((ret = cb(k, text(st, 1), text(st, 2), sqlite3_column_int64(st, 3),
                      sqlite3_column_double(st, 4), sqlite3_column_double(st, 5), ctx)) != 0) {
            break;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        ret = fail(db, err, "open conditions");
    }
    sqlite3_reset(st);
    return ret;
}
