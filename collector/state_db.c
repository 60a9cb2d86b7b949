#include "state_db.h"

#include "iface_key.h"
#include "outage.h"
#include "netpulse/clock.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_PREFIX "np1_"
#define TOKEN_RAW_BYTES 32
#define SALT_BYTES 16
#define TAG_BYTES 8
#define EVENTS_IN_SITE_JSON 100

/* Schema version 1. Times are wall-clock ms since the epoch; NULL means "not
 * known". Rates are bits per second. */
static const char schema_v1[] =
    "CREATE TABLE sites ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " name TEXT NOT NULL,"
    " school_type TEXT NOT NULL DEFAULT 'other'"
    "  CHECK (school_type IN ('elementary','middle','high','other')),"
    " circuit_bps INTEGER,"
    " baseline_bps INTEGER,"
    " baseline_year INTEGER,"
    " contacts TEXT NOT NULL DEFAULT '',"
    " stub INTEGER NOT NULL DEFAULT 0," /* 1: made by enrolment, not imported yet */
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE agents ("
    " id TEXT PRIMARY KEY NOT NULL REFERENCES sites(id),"
    " token_tag TEXT NOT NULL,"
    " token_salt BLOB NOT NULL,"
    " token_hash BLOB NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " revoked_ms INTEGER,"
    " last_seen_ms INTEGER"
    ") STRICT;"
    "CREATE INDEX agents_token_tag ON agents(token_tag);"
    "CREATE TABLE applied_batches ("
    " agent_id TEXT PRIMARY KEY NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL,"
    " applied_ms INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE devices ("
    " site_id TEXT NOT NULL REFERENCES sites(id),"
    " device TEXT NOT NULL,"
    " sys_name TEXT,"
    " sys_descr TEXT,"
    " sys_object_id TEXT,"
    " first_seen_ms INTEGER NOT NULL,"
    " last_seen_ms INTEGER NOT NULL,"
    " PRIMARY KEY (site_id, device)"
    ") STRICT;"
    "CREATE TABLE interfaces ("
    " site_id TEXT NOT NULL,"
    " device TEXT NOT NULL,"
    " iface TEXT NOT NULL," /* iface_key.h: ifName, else ifindex-N */
    " if_name TEXT NOT NULL,"
    " if_index INTEGER NOT NULL,"
    " if_alias TEXT NOT NULL,"
    " if_descr TEXT NOT NULL,"
    " speed_bps INTEGER,"
    " oper_status INTEGER NOT NULL,"
    " admin_status INTEGER NOT NULL,"
    " first_seen_ms INTEGER NOT NULL,"
    " last_seen_ms INTEGER NOT NULL,"
    " PRIMARY KEY (site_id, device, iface),"
    " FOREIGN KEY (site_id, device) REFERENCES devices(site_id, device)"
    ") STRICT;"
    "CREATE TABLE events ("
    " id INTEGER PRIMARY KEY,"
    " site_id TEXT NOT NULL REFERENCES sites(id),"
    " type TEXT NOT NULL,"
    " device TEXT NOT NULL DEFAULT '',"
    " subject TEXT NOT NULL DEFAULT '',"
    " start_ms INTEGER NOT NULL,"
    " end_ms INTEGER,"
    " detail TEXT NOT NULL DEFAULT '',"
    " state TEXT NOT NULL CHECK (state IN ('open','closed','info')),"
    " agent_id TEXT,"
    " batch_seq INTEGER"
    ") STRICT;"
    "CREATE INDEX events_site_time ON events(site_id, start_ms);"
    "CREATE INDEX events_open ON events(site_id, type, device, subject) WHERE state = 'open';";

/* Schema version 2 (reports): declared maintenance windows and the history of
 * provisioned circuit rates (mid-year upgrades). IF NOT EXISTS, so that this
 * step stays harmless if it is ever renumbered among other migrations. */
static const char schema_v2[] =
    "CREATE TABLE IF NOT EXISTS maintenance ("
    " id INTEGER PRIMARY KEY,"
    " site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,"
    " start_ms INTEGER NOT NULL,"
    " end_ms INTEGER NOT NULL CHECK (end_ms > start_ms),"
    " reason TEXT NOT NULL DEFAULT '',"
    " created_ms INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX IF NOT EXISTS maintenance_site_time ON maintenance(site_id, start_ms);"
    "CREATE TABLE IF NOT EXISTS circuit_rates ("
    " site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,"
    " from_ms INTEGER NOT NULL,"
    " rate_bps INTEGER NOT NULL CHECK (rate_bps >= 0),"
    " PRIMARY KEY (site_id, from_ms)"
    ") STRICT;";

/* Schema version 3: outages decided by outage.h (suspected from missed
 * heartbeats, confirmed from the agent's own timeline). target_ms and lag_ms
 * are the tracker's state of a suspected outage, so that a restarted
 * collector can settle it. */
static const char schema_v3[] =
    "CREATE TABLE IF NOT EXISTS outages ("
    " id INTEGER PRIMARY KEY,"
    " site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,"
    " cause TEXT NOT NULL CHECK (cause IN ('link','agent','unknown')),"
    " state TEXT NOT NULL CHECK (state IN ('suspected','confirmed')),"
    " start_ms INTEGER NOT NULL,"
    " end_ms INTEGER,"
    " detail TEXT NOT NULL DEFAULT '',"
    " target_ms INTEGER NOT NULL DEFAULT 0,"
    " lag_ms INTEGER NOT NULL DEFAULT 0,"
    " updated_ms INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX IF NOT EXISTS outages_site_time ON outages(site_id, start_ms);";

/* Schema version 4: the latest flow summaries (issue 6) per site and [pcap]
 * source for the API, as the JSON the API serves (privacy was applied by the
 * agent). Keyed by the interval's end, so a replayed batch replaces its rows. */
static const char schema_v4[] =
    "CREATE TABLE IF NOT EXISTS flow_summaries ("
    " site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,"
    " source TEXT NOT NULL,"
    " start_ms INTEGER NOT NULL,"
    " end_ms INTEGER NOT NULL,"
    " summary TEXT NOT NULL,"
    " PRIMARY KEY (site_id, source, end_ms)"
    ") STRICT;";

enum stmt_id {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_SYNC_FULL,
    S_SYNC_NORMAL,
    S_SITE_EXISTS,
    S_SITE_UPSERT,
    S_SITE_STUB,
    S_AGENT_GET,
    S_AGENT_UPSERT,
    S_AGENT_REVOKE,
    S_AGENT_LIST,
    S_AGENT_BY_TAG,
    S_AGENT_SEEN,
    S_APPLIED_GET,
    S_APPLIED_SET,
    S_DEVICE_UPSERT,
    S_IFACE_UPSERT,
    S_EVENT_INSERT,
    S_EVENT_CLOSE,
    S_SITES_ALL,
    S_SITE_ONE,
    S_SITE_DEVICES,
    S_SITE_IFACES,
    S_SITE_EVENTS,
    S_MAINT_ADD,
    S_MAINT_DELETE,
    S_MAINT_LIST,
    S_OUTAGES,
    S_RATE_SET,
    S_RATES,
    S_OTG_WINDOW,
    S_OTG_INSERT,
    S_OTG_UPDATE,
    S_OTG_DELETE,
    S_OTG_RESTORE,
    S_OTG_RANGE,
    S_EVT_RANGE,
    S_FLOW_PUT,
    S_FLOW_TRIM,
    S_FLOW_LIST,
    S_COUNT
};

#define SITE_COLUMNS                                                                               \
    "SELECT s.id, s.name, s.school_type, s.circuit_bps, s.baseline_bps, s.baseline_year,"          \
    " s.contacts, s.stub, a.id IS NOT NULL, a.revoked_ms, a.last_seen_ms, b.seq,"                  \
    " a.created_ms, o.state, o.cause, o.start_ms, o.end_ms"                                        \
    " FROM sites s LEFT JOIN agents a ON a.id = s.id"                                              \
    " LEFT JOIN applied_batches b ON b.agent_id = s.id"                                            \
    " LEFT JOIN outages o ON o.id = (SELECT id FROM outages WHERE site_id = s.id"                  \
    "  ORDER BY end_ms IS NULL DESC, coalesce(end_ms, start_ms) DESC, id DESC LIMIT 1)"

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SYNC_FULL] = "PRAGMA synchronous = FULL",
    [S_SYNC_NORMAL] = "PRAGMA synchronous = NORMAL",
    [S_SITE_EXISTS] = "SELECT 1 FROM sites WHERE id = ?1",
    [S_SITE_UPSERT] =
        "INSERT INTO sites (id, name, school_type, circuit_bps, baseline_bps, baseline_year,"
        " contacts, stub, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?8)"
        " ON CONFLICT (id) DO UPDATE SET name = excluded.name, school_type = excluded.school_type,"
        " circuit_bps = excluded.circuit_bps, baseline_bps = excluded.baseline_bps,"
        " baseline_year = excluded.baseline_year, contacts = excluded.contacts, stub = 0,"
        " updated_ms = excluded.updated_ms",
    [S_SITE_STUB] = "INSERT OR IGNORE INTO sites (id, name, school_type, stub, created_ms,"
                    " updated_ms) VALUES (?1, ?1, 'other', 1, ?2, ?2)",
    [S_AGENT_GET] = "SELECT revoked_ms IS NOT NULL FROM agents WHERE id = ?1",
    [S_AGENT_UPSERT] =
        "INSERT INTO agents (id, token_tag, token_salt, token_hash, created_ms)"
        " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO UPDATE SET"
        " token_tag = excluded.token_tag, token_salt = excluded.token_salt,"
        " token_hash = excluded.token_hash, created_ms = excluded.created_ms, revoked_ms = NULL",
    [S_AGENT_REVOKE] = "UPDATE agents SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL",
    [S_AGENT_LIST] = "SELECT a.id, a.created_ms, a.revoked_ms, a.last_seen_ms, b.seq"
                     " FROM agents a LEFT JOIN applied_batches b ON b.agent_id = a.id"
                     " ORDER BY a.id",
    [S_AGENT_BY_TAG] = "SELECT id, token_salt, token_hash FROM agents"
                       " WHERE token_tag = ?1 AND revoked_ms IS NULL",
    [S_AGENT_SEEN] = "UPDATE agents SET last_seen_ms = max(coalesce(last_seen_ms, 0), ?2)"
                     " WHERE id = ?1",
    [S_APPLIED_GET] = "SELECT seq FROM applied_batches WHERE agent_id = ?1",
    [S_APPLIED_SET] = "INSERT INTO applied_batches (agent_id, seq, applied_ms) VALUES (?1, ?2, ?3)"
                      " ON CONFLICT (agent_id) DO UPDATE SET seq = excluded.seq,"
                      " applied_ms = excluded.applied_ms",
    /* Descriptions follow the newest report; first/last seen widen (?6 first,
     * ?7 last: a batch's samples of a device upsert it once, with their
     * earliest and latest times). A sample only says "seen" (NULL
     * descriptions keep what DeviceInfo said). */
    [S_DEVICE_UPSERT] =
        "INSERT INTO devices (site_id, device, sys_name, sys_descr, sys_object_id,"
        " first_seen_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        " ON CONFLICT (site_id, device) DO UPDATE SET"
        " sys_name = CASE WHEN excluded.sys_name IS NOT NULL AND excluded.last_seen_ms >="
        "  devices.last_seen_ms THEN excluded.sys_name ELSE devices.sys_name END,"
        " sys_descr = CASE WHEN excluded.sys_descr IS NOT NULL AND excluded.last_seen_ms >="
        "  devices.last_seen_ms THEN excluded.sys_descr ELSE devices.sys_descr END,"
        " sys_object_id = CASE WHEN excluded.sys_object_id IS NOT NULL AND"
        "  excluded.last_seen_ms >= devices.last_seen_ms THEN excluded.sys_object_id"
        "  ELSE devices.sys_object_id END,"
        " first_seen_ms = min(devices.first_seen_ms, excluded.first_seen_ms),"
        " last_seen_ms = max(devices.last_seen_ms, excluded.last_seen_ms)",
    /* One upsert per interface and batch (apply_samples): the values of the
     * batch's latest sample (?11 its time), ?13 the earliest time in the batch,
     * ?12 the time of the latest sample that carried a speed. The result is
     * what one upsert per sample, in batch order, would leave. */
    [S_IFACE_UPSERT] =
        "INSERT INTO interfaces (site_id, device, iface, if_name, if_index, if_alias, if_descr,"
        " speed_bps, oper_status, admin_status, first_seen_ms, last_seen_ms)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?13, ?11)"
        " ON CONFLICT (site_id, device, iface) DO UPDATE SET"
        " if_name = iif(excluded.last_seen_ms >= interfaces.last_seen_ms, excluded.if_name,"
        "  interfaces.if_name),"
        " if_index = iif(excluded.last_seen_ms >= interfaces.last_seen_ms, excluded.if_index,"
        "  interfaces.if_index),"
        " if_alias = iif(excluded.last_seen_ms >= interfaces.last_seen_ms, excluded.if_alias,"
        "  interfaces.if_alias),"
        " if_descr = iif(excluded.last_seen_ms >= interfaces.last_seen_ms, excluded.if_descr,"
        "  interfaces.if_descr),"
        " speed_bps = iif(?12 >= interfaces.last_seen_ms,"
        "  coalesce(excluded.speed_bps, interfaces.speed_bps), interfaces.speed_bps),"
        " oper_status = iif(excluded.last_seen_ms >= interfaces.last_seen_ms,"
        "  excluded.oper_status, interfaces.oper_status),"
        " admin_status = iif(excluded.last_seen_ms >= interfaces.last_seen_ms,"
        "  excluded.admin_status, interfaces.admin_status),"
        " first_seen_ms = min(interfaces.first_seen_ms, excluded.first_seen_ms),"
        " last_seen_ms = max(interfaces.last_seen_ms, excluded.last_seen_ms)",
    [S_EVENT_INSERT] = "INSERT INTO events (site_id, type, device, subject, start_ms, end_ms,"
                       " detail, state, agent_id, batch_seq)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?1, ?9)",
    [S_EVENT_CLOSE] = "UPDATE events SET end_ms = ?5, state = 'closed' WHERE id = ("
                      " SELECT id FROM events WHERE site_id = ?1 AND type = ?2 AND device = ?3"
                      " AND subject = ?4 AND state = 'open' AND start_ms <= ?5"
                      " ORDER BY start_ms DESC, id DESC LIMIT 1)",
    [S_SITES_ALL] = SITE_COLUMNS " ORDER BY s.id",
    [S_SITE_ONE] = SITE_COLUMNS " WHERE s.id = ?1",
    [S_SITE_DEVICES] = "SELECT device, sys_name, sys_descr, sys_object_id, first_seen_ms,"
                       " last_seen_ms FROM devices WHERE site_id = ?1 ORDER BY device",
    [S_SITE_IFACES] = "SELECT device, iface, if_name, if_index, if_alias, if_descr, speed_bps,"
                      " oper_status, admin_status, first_seen_ms, last_seen_ms FROM interfaces"
                      " WHERE site_id = ?1 ORDER BY device, iface",
    [S_SITE_EVENTS] = "SELECT id, type, device, subject, start_ms, end_ms, detail, state"
                      " FROM events WHERE site_id = ?1 ORDER BY start_ms DESC, id DESC LIMIT ?2",
    [S_MAINT_ADD] = "INSERT INTO maintenance (site_id, start_ms, end_ms, reason, created_ms)"
                    " VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_MAINT_DELETE] = "DELETE FROM maintenance WHERE id = ?1",
    /* ?1 NULL: every site. Windows overlapping [?2, ?3). */
    [S_MAINT_LIST] = "SELECT id, site_id, start_ms, end_ms, reason, created_ms FROM maintenance"
                     " WHERE (?1 IS NULL OR site_id = ?1) AND start_ms < ?3 AND end_ms > ?2"
                     " ORDER BY site_id, start_ms, id",
    /* For the reports: the outages decided by outage.h (schema 3) and the
     * agent's own uplink_down events, overlapping [?2, ?3); an open one runs
     * until now. The two may describe the same cut: the uptime engine takes
     * the union, so nothing is counted twice. An uplink_down row left open
     * ends at the site's next uplink_up or agent_start: the up that ended it
     * may name another probe (the subject is the deciding probe) and then
     * closes nothing (S_EVENT_CLOSE matches the subject), and a restarted
     * agent decides its uplink afresh. */
    [S_OUTAGES] = "SELECT start_ms, end_ms, cause FROM outages WHERE site_id = ?1"
                  " AND start_ms < ?3 AND (end_ms IS NULL OR end_ms > ?2)"
                  " UNION ALL SELECT start_ms, end_ms, 'link' FROM (SELECT d.start_ms,"
                  " coalesce(d.end_ms, (SELECT min(u.start_ms) FROM events u"
                  "  WHERE u.site_id = ?1 AND u.type IN ('uplink_up','agent_start')"
                  "  AND u.start_ms >= d.start_ms)) AS end_ms FROM events d WHERE d.site_id = ?1"
                  " AND d.type = 'uplink_down' AND d.state IN ('open','closed'))"
                  " WHERE start_ms < ?3 AND (end_ms IS NULL OR end_ms > ?2)"
                  " ORDER BY 1",
    [S_RATE_SET] = "INSERT INTO circuit_rates (site_id, from_ms, rate_bps) VALUES (?1, ?2, ?3)"
                   " ON CONFLICT (site_id, from_ms) DO UPDATE SET rate_bps = excluded.rate_bps",
    [S_RATES] = "SELECT from_ms, rate_bps FROM circuit_rates WHERE site_id = ?1 ORDER BY from_ms",
    [S_OTG_WINDOW] = "SELECT id, cause, state, start_ms, end_ms, detail, target_ms, lag_ms"
                     " FROM outages WHERE site_id = ?1 AND (end_ms IS NULL OR end_ms > ?2)"
                     " ORDER BY start_ms, id LIMIT ?3",
    [S_OTG_INSERT] = "INSERT INTO outages (site_id, cause, state, start_ms, end_ms, detail,"
                     " target_ms, lag_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [S_OTG_UPDATE] = "UPDATE outages SET cause = ?2, state = ?3, start_ms = ?4, end_ms = ?5,"
                     " detail = ?6, target_ms = ?7, lag_ms = ?8, updated_ms = ?9 WHERE id = ?1",
    [S_OTG_DELETE] = "DELETE FROM outages WHERE id = ?1",
    [S_OTG_RESTORE] = "SELECT a.id, a.last_seen_ms, o.cause, o.start_ms, o.target_ms, o.lag_ms"
                      " FROM agents a LEFT JOIN outages o ON o.id = (SELECT id FROM outages"
                      "  WHERE site_id = a.id AND state = 'suspected' AND end_ms IS NULL"
                      "  ORDER BY start_ms DESC LIMIT 1)"
                      " WHERE a.revoked_ms IS NULL AND a.last_seen_ms IS NOT NULL ORDER BY a.id",
    /* Overlapping [?2, ?3); ?4 caps the rows (newest first). */
    [S_OTG_RANGE] = "SELECT id, cause, state, start_ms, end_ms, detail FROM outages"
                    " WHERE site_id = ?1 AND start_ms < ?3 AND (end_ms IS NULL OR end_ms > ?2)"
                    " ORDER BY start_ms DESC, id DESC LIMIT ?4",
    [S_EVT_RANGE] = "SELECT id, type, device, subject, start_ms, end_ms, detail, state"
                    " FROM events WHERE site_id = ?1 AND start_ms < ?3"
                    " AND (end_ms IS NULL OR end_ms >= ?2)"
                    " ORDER BY start_ms DESC, id DESC LIMIT ?4",
    [S_FLOW_PUT] = "INSERT INTO flow_summaries (site_id, source, start_ms, end_ms, summary)"
                   " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (site_id, source, end_ms)"
                   " DO UPDATE SET start_ms = excluded.start_ms, summary = excluded.summary",
    /* Keeps the newest ?3 intervals of (site, source). */
    [S_FLOW_TRIM] =
        "DELETE FROM flow_summaries WHERE site_id = ?1 AND source = ?2"
        " AND end_ms < (SELECT end_ms FROM flow_summaries"
        "  WHERE site_id = ?1 AND source = ?2 ORDER BY end_ms DESC LIMIT 1 OFFSET ?3 - 1)",
    [S_FLOW_LIST] = "SELECT source, summary FROM flow_summaries WHERE site_id = ?1"
                    " ORDER BY source, end_ms DESC",
};

struct np_state_db {
    sqlite3 *conn;
    sqlite3_stmt *stmt[S_COUNT];
    bool in_tx;      /* a transaction is open (ours or the caller's) */
    bool caller_tx;  /* opened by np_state_db_begin() */
    bool durable_tx; /* synchronous was raised to FULL for it */
};

static int db_fail(struct np_state_db *db, struct np_err *err, const char *what)
{
    return np_err_set(err, NP_EDB, "state: %s: %s", what, sqlite3_errmsg(db->conn));
}

/* Resets and clears a statement for reuse. */
static sqlite3_stmt *stmt_get(struct np_state_db *db, enum stmt_id id)
{
    sqlite3_stmt *st = db->stmt[id];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Runs a statement that returns no rows. */
static int stmt_exec(struct np_state_db *db, sqlite3_stmt *st, struct np_err *err, const char *what)
{
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        ret = db_fail(db, err, what);
    }
    sqlite3_reset(st);
    return ret;
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_STATIC);
}

/* NULL for "" (descriptions not reported). */
static int bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (!s || !s[0]) {
        return sqlite3_bind_null(st, i);
    }
    return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* NULL for 0 ("not known" in our structs and on the wire). */
static int bind_u64_or_null(sqlite3_stmt *st, int i, uint64_t v)
{
    if (v == 0) {
        return sqlite3_bind_null(st, i);
    }
    return sqlite3_bind_int64(st, i, v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v);
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? (const char *)s : "";
}

/* ---- transactions ---------------------------------------------------------- */

static int sync_mode(struct np_state_db *db, bool full, struct np_err *err)
{
    return stmt_exec(db, stmt_get(db, full ? S_SYNC_FULL : S_SYNC_NORMAL), err, "synchronous");
}

int np_state_db_begin(struct np_state_db *db, bool durable, struct np_err *err)
{
    int ret;
    if (db->in_tx) {
        return np_err_set(err, -EINVAL, "state: a transaction is already open");
    }
    if (durable && (ret = sync_mode(db, true, err)) < 0) {
        return ret;
    }
    ret = stmt_exec(db, stmt_get(db, S_BEGIN), err, "begin");
    if (ret < 0) {
        if (durable) {
            sync_mode(db, false, NULL);
        }
        return ret;
    }
    db->in_tx = true;
    db->caller_tx = true;
    db->durable_tx = durable;
    return 0;
}

static int tx_end(struct np_state_db *db, bool commit, struct np_err *err)
{
    int ret = 0;
    if (!db->in_tx) {
        return 0;
    }
    if (commit) {
        ret = stmt_exec(db, stmt_get(db, S_COMMIT), err, "commit");
    }
    if (!commit || ret < 0) {
        /* A failed COMMIT may leave the transaction open (SQLITE_BUSY). */
        if (!sqlite3_get_autocommit(db->conn)) {
            stmt_exec(db, stmt_get(db, S_ROLLBACK), NULL, "rollback");
        }
    }
    if (db->durable_tx) {
        sync_mode(db, false, NULL);
    }
    db->in_tx = false;
    db->caller_tx = false;
    db->durable_tx = false;
    return ret;
}

int np_state_db_commit(struct np_state_db *db, struct np_err *err)
{
    return tx_end(db, true, err);
}

void np_state_db_rollback(struct np_state_db *db)
{
    tx_end(db, false, NULL);
}

/* Begins our own transaction unless the caller has one open; *own says
 * whether auto_end must finish it. */
static int auto_begin(struct np_state_db *db, bool durable, bool *own, struct np_err *err)
{
    int ret;
    *own = false;
    if (db->in_tx) {
        return 0;
    }
    ret = np_state_db_begin(db, durable, err);
    if (ret == 0) {
        db->caller_tx = false;
        *own = true;
    }
    return ret;
}

static int auto_end(struct np_state_db *db, bool own, int ret, struct np_err *err)
{
    if (!own) {
        return ret;
    }
    if (ret < 0) {
        tx_end(db, false, NULL);
        return ret;
    }
    return tx_end(db, true, err);
}

/* ---- open / close ---------------------------------------------------------- */

static int exec_sql(struct np_state_db *db, const char *sql, struct np_err *err, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(db->conn, sql, NULL, NULL, &msg) != SQLITE_OK) {
        np_err_set(err, NP_EDB, "state: %s: %s", what, msg ? msg : sqlite3_errmsg(db->conn));
        sqlite3_free(msg);
        return NP_EDB;
    }
    return 0;
}

static int pragma_int(struct np_state_db *db, const char *sql, int *out, struct np_err *err)
{
    sqlite3_stmt *st = NULL;
    int ret = 0;
    if (sqlite3_prepare_v2(db->conn, sql, -1, &st, NULL) != SQLITE_OK) {
        return db_fail(db, err, sql);
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
    } else {
        ret = db_fail(db, err, sql);
    }
    sqlite3_finalize(st);
    return ret;
}

static int setup_schema(struct np_state_db *db, const char *path, struct np_err *err)
{
    int version = 0;
    int ret = exec_sql(db, "BEGIN IMMEDIATE", err, "begin");
    if (ret < 0) {
        return ret;
    }
    ret = pragma_int(db, "PRAGMA user_version", &version, err);
    if (ret < 0) {
        goto out_rollback;
    }
    if (version > NP_STATE_DB_SCHEMA_VERSION) {
        ret = np_err_set(err, NP_EVERSION,
                         "state: %s has schema version %d; this netpulse knows up to %d", path,
                         version, NP_STATE_DB_SCHEMA_VERSION);
        goto out_rollback;
    }
    /* Each step upgrades in place, in the same transaction: a new file runs
     * them all; an older one gains the later tables; nothing existing changes. */
    static const char *const migrations[] = {schema_v1, schema_v2, schema_v3, schema_v4};
    _Static_assert(sizeof migrations / sizeof migrations[0] == NP_STATE_DB_SCHEMA_VERSION,
                   "one migration per schema version");
    for (int v = version; v < NP_STATE_DB_SCHEMA_VERSION; v++) {
        /* PRAGMA takes no parameters; the value is our own constant. */
        char pragma[40];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
        ret = exec_sql(db, migrations[v], err, "upgrade schema");
        if (ret < 0) {
            goto out_rollback;
        }
        ret = exec_sql(db, pragma, err, "user_version");
        if (ret < 0) {
            goto out_rollback;
        }
    }
    return exec_sql(db, "COMMIT", err, "commit");

out_rollback:
    exec_sql(db, "ROLLBACK", NULL, "rollback");
    return ret;
}

int np_state_db_open(const char *path, struct np_state_db **out, struct np_err *err)
{
    struct np_state_db *db;
    sqlite3_stmt *st = NULL;
    int ret;

    *out = NULL;
    db = calloc(1, sizeof *db);
    if (!db) {
        return np_err_set(err, -ENOMEM, "state: out of memory");
    }
    if (sqlite3_open_v2(path, &db->conn,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        ret = np_err_set(err, NP_EDB, "state: open %s: %s", path,
                         db->conn ? sqlite3_errmsg(db->conn) : "out of memory");
        goto out_close;
    }
    sqlite3_extended_result_codes(db->conn, 1);
    sqlite3_busy_timeout(db->conn, 5000);

    /* journal_mode answers with the mode now in force: "wal" unless the file
     * system cannot do WAL (no shared memory), which we refuse rather than
     * run with a rollback journal that blocks readers. */
    if (sqlite3_prepare_v2(db->conn, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        ret = np_err_set(err, NP_EDB, "state: open %s: %s", path, sqlite3_errmsg(db->conn));
        goto out_finalize;
    }
    if (strcmp(col_text(st, 0), "wal") != 0) {
        ret = np_err_set(err, NP_EDB, "state: open %s: WAL not available (journal_mode=%s)", path,
                         col_text(st, 0));
        goto out_finalize;
    }
    sqlite3_finalize(st);
    st = NULL;

    ret = exec_sql(db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL", err, "pragmas");
    if (ret < 0) {
        goto out_close;
    }
    ret = setup_schema(db, path, err);
    if (ret < 0) {
        goto out_close;
    }
    for (int i = 0; i < S_COUNT; i++) {
        if (sqlite3_prepare_v3(db->conn, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &db->stmt[i],
                               NULL) != SQLITE_OK) {
            ret = np_err_set(err, NP_EDB, "state: prepare %d: %s", i, sqlite3_errmsg(db->conn));
            goto out_close;
        }
    }
    *out = db;
    return 0;

out_finalize:
    sqlite3_finalize(st);
out_close:
    np_state_db_close(db);
    return ret;
}

void np_state_db_close(struct np_state_db *db)
{
    if (!db) {
        return;
    }
    if (db->in_tx) {
        tx_end(db, false, NULL);
    }
    for (int i = 0; i < S_COUNT; i++) {
        sqlite3_finalize(db->stmt[i]);
    }
    sqlite3_close(db->conn);
    free(db);
}

/* ---- identifiers and names ------------------------------------------------ */

int np_state_db_check_id(const char *id)
{
    size_t n;
    if (!id) {
        return -EINVAL;
    }
    n = strlen(id);
    if (n == 0 || n > NP_STATE_DB_MAX_ID || id[0] == '.' || id[0] == '-') {
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return -EINVAL;
        }
    }
    return 0;
}

static int id_fail(struct np_err *err, const char *id)
{
    return np_err_set(err, -EINVAL,
                      "state: bad id \"%.80s\": 1..%d characters of A-Z a-z 0-9 . _ -, not "
                      "starting with . or -",
                      id ? id : "", NP_STATE_DB_MAX_ID);
}

static const char *const school_names[] = {
    [NP_SCHOOL_ELEMENTARY] = "elementary",
    [NP_SCHOOL_MIDDLE] = "middle",
    [NP_SCHOOL_HIGH] = "high",
    [NP_SCHOOL_OTHER] = "other",
};

const char *np_school_type_name(enum np_school_type t)
{
    if ((unsigned)t > NP_SCHOOL_OTHER) {
        return "other";
    }
    return school_names[t];
}

int np_school_type_parse(const char *s, enum np_school_type *out)
{
    for (unsigned i = 0; i <= NP_SCHOOL_OTHER; i++) {
        if (s && strcmp(s, school_names[i]) == 0) {
            *out = (enum np_school_type)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* ---- sites ------------------------------------------------------------------ */

static int site_exists(struct np_state_db *db, const char *id, bool *exists, struct np_err *err)
{
    sqlite3_stmt *st = stmt_get(db, S_SITE_EXISTS);
    int rc;
    bind_text(st, 1, id);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        return db_fail(db, err, "site lookup");
    }
    *exists = rc == SQLITE_ROW;
    return 0;
}

int np_state_db_site_exists(struct np_state_db *db, const char *id, struct np_err *err)
{
    bool exists = false;
    int ret = site_exists(db, id, &exists, err);
    if (ret < 0) {
        return ret;
    }
    return exists ? 0 : np_err_set(err, -ENOENT, "state: no site \"%.80s\"", id);
}

int np_state_db_site_upsert(struct np_state_db *db, const struct np_site *site, bool *created,
                            struct np_err *err)
{
    sqlite3_stmt *st;
    bool exists = false, own;
    int ret;

    if (np_state_db_check_id(site->id) < 0) {
        return id_fail(err, site->id);
    }
    if (!site->name || !site->name[0]) {
        return np_err_set(err, -EINVAL, "state: site %s: empty name", site->id);
    }
    ret = auto_begin(db, true, &own, err);
    if (ret < 0) {
        return ret;
    }
    ret = site_exists(db, site->id, &exists, err);
    if (ret < 0) {
        goto out;
    }
    st = stmt_get(db, S_SITE_UPSERT);
    bind_text(st, 1, site->id);
    bind_text(st, 2, site->name);
    bind_text(st, 3, np_school_type_name(site->school_type));
    bind_u64_or_null(st, 4, site->circuit_bps);
    bind_u64_or_null(st, 5, site->baseline_bps);
    bind_u64_or_null(st, 6, (uint64_t)(site->baseline_year > 0 ? site->baseline_year : 0));
    bind_text(st, 7, site->contacts);
    sqlite3_bind_int64(st, 8, np_clock_wall_ms());
    ret = stmt_exec(db, st, err, "site upsert");
    if (ret == 0 && created) {
        *created = !exists;
    }
out:
    return auto_end(db, own, ret, err);
}

/* ---- agents and tokens ------------------------------------------------------ */

static int sha256(const void *a, size_t alen, const void *b, size_t blen, unsigned char out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 0;
    int ok;
    if (!ctx) {
        return -ENOMEM;
    }
    ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(ctx, a, alen) == 1 &&
         (blen == 0 || EVP_DigestUpdate(ctx, b, blen) == 1) &&
         EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == 32;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -EIO;
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Lookup tag of a token: hex of the first TAG_BYTES of SHA-256(token). */
static int token_tag(const char *token, char tag[2 * TAG_BYTES + 1])
{
    unsigned char md[32];
    int ret = sha256(token, strlen(token), NULL, 0, md);
    if (ret == 0) {
        hex_encode(md, TAG_BYTES, tag);
    }
    return ret;
}

static bool token_well_formed(const char *token)
{
    size_t n = strlen(token);
    if (n != NP_STATE_DB_TOKEN_LEN || strncmp(token, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0) {
        return false;
    }
    for (size_t i = strlen(TOKEN_PREFIX); i < n; i++) {
        char c = token[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_')) {
            return false;
        }
    }
    return true;
}

int np_state_db_agent_enrol(struct np_state_db *db, const char *agent_id, char *token_out,
                            size_t token_len, struct np_err *err)
{
    unsigned char raw[TOKEN_RAW_BYTES], salt[SALT_BYTES], hash[32];
    unsigned char b64[4 * ((TOKEN_RAW_BYTES + 2) / 3) + 1];
    char token[NP_STATE_DB_TOKEN_BUFSZ], tag[2 * TAG_BYTES + 1];
    sqlite3_stmt *st;
    bool own;
    int ret, n;

    if (token_len < NP_STATE_DB_TOKEN_BUFSZ) {
        return np_err_set(err, -ERANGE, "state: token buffer too small");
    }
    if (np_state_db_check_id(agent_id) < 0) {
        return id_fail(err, agent_id);
    }
    if (RAND_bytes(raw, sizeof raw) != 1 || RAND_bytes(salt, sizeof salt) != 1) {
        return np_err_set(err, -EIO, "state: no randomness for a token (RAND_bytes failed)");
    }
    /* base64url without padding (RFC 4648 §5): 32 bytes -> 43 characters. */
    n = EVP_EncodeBlock(b64, raw, sizeof raw);
    while (n > 0 && b64[n - 1] == '=') {
        n--;
    }
    for (int i = 0; i < n; i++) {
        if (b64[i] == '+') {
            b64[i] = '-';
        } else if (b64[i] == '/') {
            b64[i] = '_';
        }
    }
    snprintf(token, sizeof token, TOKEN_PREFIX "%.*s", n, (const char *)b64);
    if ((ret = token_tag(token, tag)) < 0 ||
        (ret = sha256(salt, sizeof salt, token, strlen(token), hash)) < 0) {
        np_err_set(err, ret, "state: SHA-256 failed");
        goto out_wipe;
    }

    ret = auto_begin(db, true, &own, err);
    if (ret < 0) {
        goto out_wipe;
    }
    st = stmt_get(db, S_AGENT_GET);
    bind_text(st, 1, agent_id);
    n = sqlite3_step(st);
    if (n == SQLITE_ROW && sqlite3_column_int(st, 0) == 0) {
        sqlite3_reset(st);
        ret = np_err_set(err, -EEXIST,
                         "state: agent %s is already enrolled; revoke it first to issue a new "
                         "token",
                         agent_id);
        goto out_end;
    }
    sqlite3_reset(st);
    if (n != SQLITE_ROW && n != SQLITE_DONE) {
        ret = db_fail(db, err, "agent lookup");
        goto out_end;
    }
    st = stmt_get(db, S_SITE_STUB);
    bind_text(st, 1, agent_id);
    sqlite3_bind_int64(st, 2, np_clock_wall_ms());
    ret = stmt_exec(db, st, err, "site stub");
    if (ret < 0) {
        goto out_end;
    }
    st = stmt_get(db, S_AGENT_UPSERT);
    bind_text(st, 1, agent_id);
    bind_text(st, 2, tag);
    sqlite3_bind_blob(st, 3, salt, sizeof salt, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, hash, sizeof hash, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, np_clock_wall_ms());
    ret = stmt_exec(db, st, err, "agent enrol");
out_end:
    ret = auto_end(db, own, ret, err);
    if (ret == 0) {
        memcpy(token_out, token, sizeof token);
    }
out_wipe:
    OPENSSL_cleanse(raw, sizeof raw);
    OPENSSL_cleanse(b64, sizeof b64);
    OPENSSL_cleanse(token, sizeof token);
    return ret;
}

int np_state_db_agent_revoke(struct np_state_db *db, const char *agent_id, struct np_err *err)
{
    sqlite3_stmt *st;
    bool own;
    int ret, rc;

    if (np_state_db_check_id(agent_id) < 0) {
        return id_fail(err, agent_id);
    }
    ret = auto_begin(db, true, &own, err);
    if (ret < 0) {
        return ret;
    }
    st = stmt_get(db, S_AGENT_GET);
    bind_text(st, 1, agent_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        ret = np_err_set(err, -ENOENT, "state: agent %s is not enrolled", agent_id);
    } else if (rc != SQLITE_ROW) {
        ret = db_fail(db, err, "agent lookup");
    } else if (sqlite3_column_int(st, 0) != 0) {
        ret = np_err_set(err, -EALREADY, "state: agent %s is already revoked", agent_id);
    }
    sqlite3_reset(st);
    if (ret == 0) {
        st = stmt_get(db, S_AGENT_REVOKE);
        bind_text(st, 1, agent_id);
        sqlite3_bind_int64(st, 2, np_clock_wall_ms());
        ret = stmt_exec(db, st, err, "agent revoke");
    }
    return auto_end(db, own, ret, err);
}

int np_state_db_agent_list(struct np_state_db *db, np_state_db_agent_cb cb, void *ctx)
{
    sqlite3_stmt *st = stmt_get(db, S_AGENT_LIST);
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct np_agent_info a = {
            .id = col_text(st, 0),
            .created_ms = sqlite3_column_int64(st, 1),
            .revoked_ms = sqlite3_column_int64(st, 2),
            .last_seen_ms = sqlite3_column_int64(st, 3),
            .applied_seq = (uint64_t)sqlite3_column_int64(st, 4),
        };
        ret = cb(&a, ctx);
        if (ret != 0) {
            break;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        ret = NP_EDB;
    }
    sqlite3_reset(st);
    return ret;
}

int np_state_db_agent_auth(struct np_state_db *db, const char *token, char *agent_id_out,
                           size_t agent_id_len)
{
    char tag[2 * TAG_BYTES + 1];
    unsigned char hash[32];
    sqlite3_stmt *st;
    int rc, ret = NP_EAUTH;

    if (agent_id_len < NP_STATE_DB_MAX_ID + 1) {
        return -ERANGE;
    }
    agent_id_out[0] = '\0';
    if (!token || !token_well_formed(token) || token_tag(token, tag) < 0) {
        return NP_EAUTH;
    }
    st = stmt_get(db, S_AGENT_BY_TAG);
    bind_text(st, 1, tag);
    /* A tag collision between two agents (2^-64) only costs one more hash. */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *salt = sqlite3_column_blob(st, 1);
        int salt_len = sqlite3_column_bytes(st, 1);
        const void *stored = sqlite3_column_blob(st, 2);
        if (!salt || !stored || sqlite3_column_bytes(st, 2) != (int)sizeof hash ||
            sha256(salt, (size_t)salt_len, token, strlen(token), hash) < 0) {
            continue;
        }
        if (CRYPTO_memcmp(hash, stored, sizeof hash) == 0) {
            snprintf(agent_id_out, agent_id_len, "%s", col_text(st, 0));
            ret = 0;
            break;
        }
    }
    if (ret != 0 && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        ret = NP_EDB;
    }
    sqlite3_reset(st);
    OPENSSL_cleanse(hash, sizeof hash);
    return ret;
}

int np_state_db_agent_seen(struct np_state_db *db, const char *agent_id, int64_t wall_ms,
                           struct np_err *err)
{
    sqlite3_stmt *st = stmt_get(db, S_AGENT_SEEN);
    int ret;
    bind_text(st, 1, agent_id);
    sqlite3_bind_int64(st, 2, wall_ms);
    ret = stmt_exec(db, st, err, "agent seen");
    if (ret == 0 && sqlite3_changes(db->conn) == 0) {
        ret = np_err_set(err, -ENOENT, "state: agent %.80s is not enrolled", agent_id);
    }
    return ret;
}

int np_state_db_applied_seq(struct np_state_db *db, const char *agent_id, uint64_t *seq,
                            struct np_err *err)
{
    sqlite3_stmt *st = stmt_get(db, S_APPLIED_GET);
    int rc;
    bind_text(st, 1, agent_id);
    rc = sqlite3_step(st);
    *seq = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        return db_fail(db, err, "applied seq");
    }
    return 0;
}

/* ---- applying batches ------------------------------------------------------ */

struct event_map {
    const char *name;   /* events.type of the row this event makes */
    const char *opens;  /* non-NULL: opens a row of this type (== name) */
    const char *closes; /* non-NULL: closes the open row of this type */
};

static struct event_map event_kind(int type)
{
    switch (type) {
    case NETPULSE__EVENT_TYPE__EVENT_INTERFACE_DOWN:
        return (struct event_map){"interface_down", "interface_down", NULL};
    case NETPULSE__EVENT_TYPE__EVENT_INTERFACE_UP:
        return (struct event_map){"interface_up", NULL, "interface_down"};
    case NETPULSE__EVENT_TYPE__EVENT_ADMIN_DOWN:
        return (struct event_map){"admin_down", "admin_down", NULL};
    case NETPULSE__EVENT_TYPE__EVENT_ADMIN_UP:
        return (struct event_map){"admin_up", NULL, "admin_down"};
    case NETPULSE__EVENT_TYPE__EVENT_UPLINK_DOWN:
        return (struct event_map){"uplink_down", "uplink_down", NULL};
    case NETPULSE__EVENT_TYPE__EVENT_UPLINK_UP:
        return (struct event_map){"uplink_up", NULL, "uplink_down"};
    case NETPULSE__EVENT_TYPE__EVENT_PROBE_DOWN:
        return (struct event_map){"probe_down", "probe_down", NULL};
    case NETPULSE__EVENT_TYPE__EVENT_PROBE_UP:
        return (struct event_map){"probe_up", NULL, "probe_down"};
    case NETPULSE__EVENT_TYPE__EVENT_DEVICE_UNREACHABLE:
        return (struct event_map){"device_unreachable", "device_unreachable", NULL};
    case NETPULSE__EVENT_TYPE__EVENT_DEVICE_REACHABLE:
        return (struct event_map){"device_reachable", NULL, "device_unreachable"};
    case NETPULSE__EVENT_TYPE__EVENT_AGENT_START:
        return (struct event_map){"agent_start", NULL, NULL};
    case NETPULSE__EVENT_TYPE__EVENT_SPOOL_OVERFLOW:
        return (struct event_map){"spool_overflow", NULL, NULL};
    case NETPULSE__EVENT_TYPE__EVENT_DEVICE_RESTART:
        return (struct event_map){"device_restart", NULL, NULL};
    default:
        /* proto3 enums are open: a newer agent's type is kept as "unknown". */
        return (struct event_map){"unknown", NULL, NULL};
    }
}

static int cmp_event_time(const void *a, const void *b)
{
    const Netpulse__Event *x = *(Netpulse__Event *const *)a, *y = *(Netpulse__Event *const *)b;
    if (x->time_ms != y->time_ms) {
        return x->time_ms < y->time_ms ? -1 : 1;
    }
    return x < y ? -1 : (x > y); /* stable: keep the batch's order */
}

static int apply_event(struct np_state_db *db, const char *site, uint64_t seq,
                       const Netpulse__Event *e, struct np_err *err)
{
    struct event_map k = event_kind(e->type);
    char detail[256];
    const char *text = e->detail;
    sqlite3_stmt *st;
    int ret;

    if (e->type == NETPULSE__EVENT_TYPE__EVENT_SPOOL_OVERFLOW && (!text || !text[0])) {
        snprintf(detail, sizeof detail,
                 "spool overflow: batches %llu..%llu dropped (%llu batches, %llu bytes)",
                 (unsigned long long)e->first_seq, (unsigned long long)e->last_seq,
                 (unsigned long long)e->batches, (unsigned long long)e->bytes);
        text = detail;
    }
    if (k.closes) {
        st = stmt_get(db, S_EVENT_CLOSE);
        bind_text(st, 1, site);
        bind_text(st, 2, k.closes);
        bind_text(st, 3, e->device);
        bind_text(st, 4, e->subject);
        sqlite3_bind_int64(st, 5, e->time_ms);
        ret = stmt_exec(db, st, err, "event close");
        if (ret < 0 || sqlite3_changes(db->conn) > 0) {
            return ret;
        }
        /* Nothing open (the down happened before we knew the site): keep the
         * up as a point in time. */
    }
    st = stmt_get(db, S_EVENT_INSERT);
    bind_text(st, 1, site);
    bind_text(st, 2, k.name);
    bind_text(st, 3, e->device);
    bind_text(st, 4, e->subject);
    sqlite3_bind_int64(st, 5, e->time_ms);
    if (k.opens) {
        sqlite3_bind_null(st, 6);
    } else {
        sqlite3_bind_int64(st, 6, e->time_ms);
    }
    bind_text(st, 7, text);
    bind_text(st, 8, k.opens ? "open" : "info");
    sqlite3_bind_int64(st, 9, (int64_t)seq);
    return stmt_exec(db, st, err, "event insert");
}

static int upsert_device(struct np_state_db *db, const char *site, const char *device,
                         const Netpulse__DeviceInfo *info, int64_t first_ms, int64_t last_ms,
                         struct np_err *err)
{
    sqlite3_stmt *st = stmt_get(db, S_DEVICE_UPSERT);
    bind_text(st, 1, site);
    bind_text(st, 2, device);
    if (info) {
        bind_text_or_null(st, 3, info->sys_name);
        bind_text_or_null(st, 4, info->sys_descr);
        bind_text_or_null(st, 5, info->sys_object_id);
    }
    sqlite3_bind_int64(st, 6, first_ms);
    sqlite3_bind_int64(st, 7, last_ms);
    return stmt_exec(db, st, err, "device upsert");
}

/* The samples of one (device, interface) in a batch, or of one device. */
struct sample_group {
    const Netpulse__InterfaceSample *latest; /* max time_ms; the later one on a tie */
    const Netpulse__InterfaceSample *speed;  /* the last running-latest one with a speed */
    int64_t first_ms;
    uint32_t hash;
    uint32_t next; /* chain in the hash index, UINT32_MAX at the end */
};

/* Groups of samples, in the order of their first sample; see apply_samples. */
struct sample_groups {
    struct sample_group *v;
    size_t n;
    uint32_t *heads; /* hash index: nbuckets chain heads */
    size_t nbuckets;
};

static uint32_t hash_str(uint32_t h, const char *s)
{
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 16777619u;
    }
    return (h ^ 0xffu) * 16777619u; /* a separator: ("ab", "c") != ("a", "bc") */
}

static const char *sample_key(const Netpulse__InterfaceSample *s, char *buf, size_t len)
{
    return np_iface_key(s->if_name, s->if_index, buf, len);
}

static bool group_matches(const struct sample_group *g, const Netpulse__InterfaceSample *s,
                          bool by_iface)
{
    if (strcmp(g->latest->device, s->device) != 0) {
        return false;
    }
    if (!by_iface) {
        return true;
    }
    char a[NP_IFACE_KEY_MAX], b[NP_IFACE_KEY_MAX];
    return strcmp(sample_key(g->latest, a, sizeof a), sample_key(s, b, sizeof b)) == 0;
}

/* Adds s to its group (by device, or by device and interface). Samples come
 * in batch order, which decides ties and which samples a speed comes from. */
static void group_add(struct sample_groups *gs, const Netpulse__InterfaceSample *s, bool by_iface)
{
    char key[NP_IFACE_KEY_MAX];
    uint32_t h = hash_str(2166136261u, s->device);
    if (by_iface) {
        h = hash_str(h, sample_key(s, key, sizeof key));
    }
    uint32_t *link = &gs->heads[h & (gs->nbuckets - 1)];
    for (uint32_t i = *link; i != UINT32_MAX; i = gs->v[i].next) {
        struct sample_group *g = &gs->v[i];
        if (g->hash != h || !group_matches(g, s, by_iface)) {
            continue;
        }
        if (s->time_ms < g->first_ms) {
            g->first_ms = s->time_ms;
        }
        /* Per sample, the upsert took a sample's values when it was not
         * older than the row: the running latest. Its speed only when set. */
        if (s->time_ms >= g->latest->time_ms) {
            g->latest = s;
            if (s->speed_bps != 0) {
                g->speed = s;
            }
        }
        return;
    }
    struct sample_group *g = &gs->v[gs->n];
    g->latest = s;
    g->speed = s;
    g->first_ms = s->time_ms;
    g->hash = h;
    g->next = *link;
    *link = (uint32_t)gs->n++;
}

static int groups_build(struct sample_groups *gs, const Netpulse__Batch *b, bool by_iface)
{
    memset(gs, 0, sizeof *gs);
    if (b->n_samples == 0) {
        return 0;
    }
    if (b->n_samples > UINT32_MAX / 4) {
        return -E2BIG;
    }
    gs->nbuckets = 16;
    while (gs->nbuckets < 2 * b->n_samples) {
        gs->nbuckets *= 2;
    }
    gs->v = malloc(b->n_samples * sizeof *gs->v);
    gs->heads = malloc(gs->nbuckets * sizeof *gs->heads);
    if (!gs->v || !gs->heads) {
        free(gs->v);
        free(gs->heads);
        return -ENOMEM;
    }
    memset(gs->heads, 0xff, gs->nbuckets * sizeof *gs->heads);
    for (size_t i = 0; i < b->n_samples; i++) {
        group_add(gs, b->samples[i], by_iface);
    }
    return 0;
}

static void groups_free(struct sample_groups *gs)
{
    free(gs->v);
    free(gs->heads);
}

static int upsert_iface(struct np_state_db *db, const char *site, const struct sample_group *g,
                        struct np_err *err)
{
    const Netpulse__InterfaceSample *s = g->latest;
    char key[NP_IFACE_KEY_MAX];
    sqlite3_stmt *st = stmt_get(db, S_IFACE_UPSERT);
    bind_text(st, 1, site);
    bind_text(st, 2, s->device);
    bind_text(st, 3, sample_key(s, key, sizeof key));
    bind_text(st, 4, s->if_name);
    sqlite3_bind_int64(st, 5, s->if_index);
    bind_text(st, 6, s->if_alias);
    bind_text(st, 7, s->if_descr);
    bind_u64_or_null(st, 8, g->speed->speed_bps);
    sqlite3_bind_int(st, 9, s->oper_status);
    sqlite3_bind_int(st, 10, s->admin_status);
    sqlite3_bind_int64(st, 11, s->time_ms);
    sqlite3_bind_int64(st, 12, g->speed->time_ms);
    sqlite3_bind_int64(st, 13, g->first_ms);
    return stmt_exec(db, st, err, "interface upsert");
}

/* Records the devices and interfaces the samples show, one upsert per device
 * and one per (device, interface) instead of two per sample: a batch of 1,000
 * samples usually names a few dozen interfaces. Devices first (the interfaces
 * reference them); each table in the order of first appearance, as the
 * per-sample upserts inserted new rows. In the caller's transaction. */
static int apply_samples(struct np_state_db *db, const char *site, const Netpulse__Batch *b,
                         struct np_err *err)
{
    struct sample_groups gs;
    int ret = 0;
    for (int pass = 0; pass < 2 && ret == 0; pass++) {
        bool by_iface = pass == 1;
        ret = groups_build(&gs, b, by_iface);
        if (ret < 0) {
            return np_err_set(err, ret, "state: %s samples",
                              ret == -ENOMEM ? "out of memory for" : "too many");
        }
        for (size_t i = 0; i < gs.n && ret == 0; i++) {
            const struct sample_group *g = &gs.v[i];
            if (by_iface) {
                ret = upsert_iface(db, site, g, err);
            } else {
                ret = upsert_device(db, site, g->latest->device, NULL, g->first_ms,
                                    g->latest->time_ms, err);
            }
        }
        groups_free(&gs);
    }
    return ret;
}

int np_state_db_apply_batch(struct np_state_db *db, const Netpulse__Batch *b, bool *applied,
                            struct np_err *err)
{
    Netpulse__Event **events = NULL;
    const char *site = b->agent_id;
    uint64_t done = 0;
    bool own = false;
    sqlite3_stmt *st;
    int ret, rc;

    if (applied) {
        *applied = false;
    }
    if (b->seq == 0 || b->seq > (uint64_t)INT64_MAX) {
        return np_err_set(err, -EINVAL, "state: batch seq %llu out of range",
                          (unsigned long long)b->seq);
    }
    if (np_state_db_check_id(site) < 0) {
        return id_fail(err, site);
    }
    if (b->n_events > 0) {
        events = malloc(b->n_events * sizeof *events);
        if (!events) {
            return np_err_set(err, -ENOMEM, "state: out of memory");
        }
        memcpy(events, b->events, b->n_events * sizeof *events);
        qsort(events, b->n_events, sizeof *events, cmp_event_time);
    }

    ret = auto_begin(db, false, &own, err);
    if (ret < 0) {
        goto out_free;
    }
    st = stmt_get(db, S_AGENT_GET);
    bind_text(st, 1, site);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) {
        ret = np_err_set(err, -ENOENT, "state: agent %s is not enrolled", site);
        goto out_end;
    } else if (rc != SQLITE_ROW) {
        ret = db_fail(db, err, "agent lookup");
        goto out_end;
    }
    ret = np_state_db_applied_seq(db, site, &done, err);
    if (ret < 0 || b->seq <= done) {
        goto out_end; /* replay of an applied batch: nothing to do */
    }
    for (size_t i = 0; i < b->n_devices && ret == 0; i++) {
        const Netpulse__DeviceInfo *d = b->devices[i];
        ret = upsert_device(db, site, d->device, d, d->time_ms, d->time_ms, err);
    }
    if (ret == 0) {
        ret = apply_samples(db, site, b, err);
    }
    for (size_t i = 0; i < b->n_events && ret == 0; i++) {
        ret = apply_event(db, site, b->seq, events[i], err);
    }
    if (ret < 0) {
        goto out_end;
    }
    if (b->created_ms > 0) {
        st = stmt_get(db, S_AGENT_SEEN);
        bind_text(st, 1, site);
        sqlite3_bind_int64(st, 2, b->created_ms);
        ret = stmt_exec(db, st, err, "agent seen");
        if (ret < 0) {
            goto out_end;
        }
    }
    st = stmt_get(db, S_APPLIED_SET);
    bind_text(st, 1, site);
    sqlite3_bind_int64(st, 2, (int64_t)b->seq);
    sqlite3_bind_int64(st, 3, np_clock_wall_ms());
    ret = stmt_exec(db, st, err, "applied seq");
    if (ret == 0 && applied) {
        *applied = true;
    }
out_end:
    ret = auto_end(db, own, ret, err);
    if (ret < 0 && applied) {
        *applied = false;
    }
out_free:
    free(events);
    return ret;
}

/* ---- JSON for the API ------------------------------------------------------ */

/* Column i as a JSON integer, or null when SQL NULL. */
static json_t *col_json_int(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
        return json_null();
    }
    return json_integer(sqlite3_column_int64(st, i));
}

static json_t *col_json_text(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
        return json_null();
    }
    return json_string(col_text(st, i));
}

/* One row of SITE_COLUMNS as an object; NULL when out of memory. */
static json_t *site_row_json(sqlite3_stmt *st)
{
    json_t *agent;
    json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b}", "id", col_json_text(st, 0),
                          "name", col_json_text(st, 1), "school_type", col_json_text(st, 2),
                          "circuit_bps", col_json_int(st, 3), "baseline_bps", col_json_int(st, 4),
                          "baseline_year", col_json_int(st, 5), "contacts", col_json_text(st, 6),
                          "stub", sqlite3_column_int(st, 7) != 0);
    if (!o) {
        return NULL;
    }
    if (sqlite3_column_int(st, 8)) {
        agent = json_pack("{s:b, s:b, s:o, s:o}", "enrolled", 1, "revoked",
                          sqlite3_column_type(st, 9) != SQLITE_NULL, "last_seen_ms",
                          col_json_int(st, 10), "applied_seq", col_json_int(st, 11));
    } else {
        agent = json_null();
    }
    if (!agent || json_object_set_new(o, "agent", agent) < 0) {
        json_decref(o);
        return NULL;
    }
    /* Status for the dashboard, from the newest outage (outage.h). */
    const char *status = "up";
    json_t *since = col_json_int(st, 12); /* enrolled */
    if (!sqlite3_column_int(st, 8) || sqlite3_column_type(st, 11) == SQLITE_NULL) {
        status = "no_data";
        json_decref(since);
        since = json_null();
    } else if (sqlite3_column_type(st, 13) != SQLITE_NULL) {
        bool open = sqlite3_column_type(st, 16) == SQLITE_NULL;
        json_decref(since);
        since = col_json_int(st, open ? 15 : 16);
        if (open) {
            const char *state = col_text(st, 13), *cause = col_text(st, 14);
            status = strcmp(state, "suspected") == 0 ? "suspected"
                     : strcmp(cause, "link") == 0    ? "link_down"
                     : strcmp(cause, "agent") == 0   ? "agent_down"
                                                     : "suspected";
        }
    }
    if (!since || json_object_set_new(o, "status", json_string(status)) < 0 ||
        json_object_set_new(o, "since_ms", since) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int np_state_db_sites_json(struct np_state_db *db, json_t **out, struct np_err *err)
{
    sqlite3_stmt *st = stmt_get(db, S_SITES_ALL);
    json_t *arr = json_array();
    int rc, ret = 0;

    *out = NULL;
    if (!arr) {
        return np_err_set(err, -ENOMEM, "state: out of memory");
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (json_array_append_new(arr, site_row_json(st)) < 0) {
            ret = np_err_set(err, -ENOMEM, "state: out of memory");
            break;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        ret = db_fail(db, err, "sites");
    }
    sqlite3_reset(st);
    if (ret < 0) {
        json_decref(arr);
        return ret;
    }
    *out = arr;
    return 0;
}

static int list_json(struct np_state_db *db, enum stmt_id id, const char *site, json_t *parent,
                     const char *key, struct np_err *err)
{
    sqlite3_stmt *st = stmt_get(db, id);
    json_t *arr = json_array();
    int rc, ret = 0;

    if (!arr) {
        return np_err_set(err, -ENOMEM, "state: out of memory");
    }
    bind_text(st, 1, site);
    if (id == S_SITE_EVENTS) {
        sqlite3_bind_int(st, 2, EVENTS_IN_SITE_JSON);
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = NULL;
        switch (id) {
        case S_SITE_DEVICES:
            row = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "device", col_json_text(st, 0),
                            "sys_name", col_json_text(st, 1), "sys_descr", col_json_text(st, 2),
                            "sys_object_id", col_json_text(st, 3), "first_seen_ms",
                            col_json_int(st, 4), "last_seen_ms", col_json_int(st, 5));
            break;
        case S_SITE_IFACES:
            row = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "device",
                            col_json_text(st, 0), "iface", col_json_text(st, 1), "if_name",
                            col_json_text(st, 2), "if_index", col_json_int(st, 3), "if_alias",
                            col_json_text(st, 4), "if_descr", col_json_text(st, 5), "speed_bps",
                            col_json_int(st, 6), "oper_status", col_json_int(st, 7), "admin_status",
                            col_json_int(st, 8), "first_seen_ms", col_json_int(st, 9),
                            "last_seen_ms", col_json_int(st, 10));
            break;
        default:
            row = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", col_json_int(st, 0),
                            "type", col_json_text(st, 1), "device", col_json_text(st, 2), "subject",
                            col_json_text(st, 3), "start_ms", col_json_int(st, 4), "end_ms",
                            col_json_int(st, 5), "detail", col_json_text(st, 6), "state",
                            col_json_text(st, 7));
            break;
        }
        if (json_array_append_new(arr, row) < 0) {
            ret = np_err_set(err, -ENOMEM, "state: out of memory");
            break;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        ret = db_fail(db, err, key);
    }
    sqlite3_reset(st);
    if (ret == 0 && json_object_set_new(parent, key, arr) < 0) {
        return np_err_set(err, -ENOMEM, "state: out of memory");
    }
    if (ret < 0) {
        json_decref(arr);
    }
    return ret;
}

int np_state_db_site_json(struct np_state_db *db, const char *id, json_t **out, struct np_err *err)
{
    sqlite3_stmt *st;
    json_t *site = NULL;
    int rc, ret;

    *out = NULL;
    if (np_state_db_check_id(id) < 0) {
        return id_fail(err, id);
    }
    st = stmt_get(db, S_SITE_ONE);
    bind_text(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        site = site_row_json(st);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) {
        return np_err_set(err, -ENOENT, "state: no site \"%s\"", id);
    }
    if (rc != SQLITE_ROW) {
        return db_fail(db, err, "site");
    }
    if (!site) {
        return np_err_set(err, -ENOMEM, "state: out of memory");
    }
    json_t *outages = NULL;
    if ((ret = list_json(db, S_SITE_DEVICES, id, site, "devices", err)) < 0 ||
        (ret = list_json(db, S_SITE_IFACES, id, site, "interfaces", err)) < 0 ||
        (ret = list_json(db, S_SITE_EVENTS, id, site, "events", err)) < 0 ||
        (ret = np_state_db_outages_json(db, id, INT64_MIN, INT64_MAX, np_clock_wall_ms(),
                                        &outages, err)) < 0) {
        json_decref(site);
        return ret;
    }
    if (json_object_set_new(site, "outages", outages) < 0) {
        json_decref(site);
        return np_err_set(err, -ENOMEM, "state: out of memory");
    }
    *out = site;
    return 0;
}

/* ---- maintenance windows, outages, circuit rates (reports) ----------------- */

int np_state_db_maintenance_add(struct np_state_db *db, const char *site_id, int64_t start_ms,
                                int64_t end_ms, const char *reason, int64_t *id_out,
                                struct np_err *err)
{
    sqlite3_stmt *st;
    bool exists = false, own;
    int ret;

    if (np_state_db_check_id(site_id) < 0) {
        return id_fail(err, site_id);
    }
    if (end_ms <= start_ms) {
        return np_err_set(err, -EINVAL, "state: maintenance must end after it starts");
    }
    ret = auto_begin(db, true, &own, err);
    if (ret < 0) {
        return ret;
    }
    ret = site_exists(db, site_id, &exists, err);
    if (ret == 0 && !exists) {
        ret = np_err_set(err, -ENOENT, "state: no site \"%s\"", site_id);
    }
    if (ret == 0) {
        st = stmt_get(db, S_MAINT_ADD);
        bind_text(st, 1, site_id);
        sqlite3_bind_int64(st, 2, start_ms);
        sqlite3_bind_int64(st, 3, end_ms);
        bind_text(st, 4, reason);
        sqlite3_bind_int64(st, 5, np_clock_wall_ms());
        ret = stmt_exec(db, st, err, "maintenance add");
        if (ret == 0 && id_out) {
            *id_out = sqlite3_last_insert_rowid(db->conn);
        }
    }
    return auto_end(db, own, ret, err);
}

int np_state_db_maintenance_delete(struct np_state_db *db, int64_t id, struct np_err *err)
{
    sqlite3_stmt *st;
    bool own;
    int ret = auto_begin(db, true, &own, err);
    if (ret < 0) {
        return ret;
    }
    st = stmt_get(db, S_MAINT_DELETE);
    sqlite3_bind_int64(st, 1, id);
    ret = stmt_exec(db, st, err, "maintenance delete");
    if (ret == 0 && sqlite3_changes(db->conn) == 0) {
        ret = np_err_set(err, -ENOENT, "state: no maintenance window %lld", (long long)id);
    }
    return auto_end(db, own, ret, err);
}

int np_state_db_maintenance_list(struct np_state_db *db, const char *site_id, int64_t from_ms,
                                 int64_t to_ms, np_state_db_maintenance_cb cb, void *ctx,
                                 struct np_err *err)
{
    sqlite3_stmt *st = stmt_get(db, S_MAINT_LIST);
    int rc, ret = 0;
    if (site_id) {
        bind_text(st, 1, site_id);
    }
    sqlite3_bind_int64(st, 2, from_ms);
    sqlite3_bind_int64(st, 3, to_ms);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct np_maintenance m = {
            .id = sqlite3_column_int64(st, 0),
            .site_id = col_text(st, 1),
            .start_ms = sqlite3_column_int64(st, 2),
            .end_ms = sqlite3_column_int64(st, 3),
            .reason = col_text(st, 4),
            .created_ms = sqlite3_column_int64(st, 5),
        };
        ret = cb(&m, ctx);
        if (ret != 0) {
            break;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        ret = db_fail(db, err, "maintenance list");
    }
    sqlite3_reset(st);
    return ret;
}

int np_state_db_outages_list(struct np_state_db *db, const char *site_id, int64_t from_ms,
                             int64_t to_ms, int64_t now_ms, np_state_db_outage_cb cb, void *ctx,
                             struct np_err *err)
{
    sqlite3_stmt *st = stmt_get(db, S_OUTAGES);
    int rc, ret = 0;
    bind_text(st, 1, site_id);
    sqlite3_bind_int64(st, 2, from_ms);
    sqlite3_bind_int64(st, 3, to_ms);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct np_outage_row o = {
            .start_ms = sqlite3_column_int64(st, 0),
            .end_ms = sqlite3_column_type(st, 1) == SQLITE_NULL ? now_ms
                                                                : sqlite3_column_int64(st, 1),
            .open = sqlite3_column_type(st, 1) == SQLITE_NULL,
            .cause = col_text(st, 2),
        };
        if (o.end_ms <= o.start_ms) {
            continue; /* opened after now: nothing to count yet */
        }
        ret = cb(&o, ctx);
        if (ret != 0) {
            break;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        ret = db_fail(db, err, "outages");
    }
    sqlite3_reset(st);
    return ret;
}

int np_state_db_rate_set(struct np_state_db *db, const char *site_id, int64_t from_ms,
                         uint64_t rate_bps, struct np_err *err)
{
    sqlite3_stmt *st;
    bool exists = false, own;
    int ret;

    if (np_state_db_check_id(site_id) < 0) {
        return id_fail(err, site_id);
    }
    ret = auto_begin(db, true, &own, err);
    if (ret < 0) {
        return ret;
    }
    ret = site_exists(db, site_id, &exists, err);
    if (ret == 0 && !exists) {
        ret = np_err_set(err, -ENOENT, "state: no site \"%s\"", site_id);
    }
    if (ret == 0) {
        st = stmt_get(db, S_RATE_SET);
        bind_text(st, 1, site_id);
        sqlite3_bind_int64(st, 2, from_ms);
        sqlite3_bind_int64(st, 3, rate_bps > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)rate_bps);
        ret = stmt_exec(db, st, err, "rate set");
    }
    return auto_end(db, own, ret, err);
}

int np_state_db_rates_list(struct np_state_db *db, const char *site_id, np_state_db_rate_cb cb,
                           void *ctx, struct np_err *err)
{
    sqlite3_stmt *st = stmt_get(db, S_RATES);
    int rc, ret = 0;
    bind_text(st, 1, site_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ret = cb(sqlite3_column_int64(st, 0), (uint64_t)sqlite3_column_int64(st, 1), ctx);
        if (ret != 0) {
            break;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        ret = db_fail(db, err, "rates");
    }
    sqlite3_reset(st);
    return ret;
}

/* ---- outages (outage.h) ----------------------------------------------------- */

#define OUTAGE_SYNC_MAX_ROWS 1024
#define RANGE_JSON_MAX_ROWS 1000

struct otg_row {
    int64_t id;
    struct np_outage_rec o;
    bool matched;
};

static void bind_outage(sqlite3_stmt *st, const struct np_outage_rec *o)
{
    bind_text(st, 2, np_outage_rec_cause_name(o->cause));
    bind_text(st, 3, np_outage_rec_state_name(o->state));
    sqlite3_bind_int64(st, 4, o->start_ms);
    if (o->end_ms) {
        sqlite3_bind_int64(st, 5, o->end_ms);
    } else {
        sqlite3_bind_null(st, 5);
    }
    bind_text(st, 6, o->detail);
    sqlite3_bind_int64(st, 7, o->target_ms);
    sqlite3_bind_int64(st, 8, o->lag_ms);
    sqlite3_bind_int64(st, 9, np_clock_wall_ms());
}

static bool otg_same(const struct np_outage_rec *a, const struct np_outage_rec *b)
{
    return a->cause == b->cause && a->state == b->state && a->start_ms == b->start_ms &&
           a->end_ms == b->end_ms && a->target_ms == b->target_ms && a->lag_ms == b->lag_ms &&
           strcmp(a->detail, b->detail) == 0;
}

/* Whether a stored row stands for the same outage as rec: overlapping in
 * time (touching counts for the same cause only). */
static bool otg_overlap(const struct np_outage_rec *row, const struct np_outage_rec *rec,
                        bool same_cause)
{
    int64_t re = row->end_ms ? row->end_ms : INT64_MAX;
    int64_t ce = rec->end_ms ? rec->end_ms : INT64_MAX;
    if (same_cause) {
        return row->start_ms <= ce && rec->start_ms <= re;
    }
    return row->start_ms < ce && rec->start_ms < re;
}

int np_state_db_outages_sync(struct np_state_db *db, const char *site_id, int64_t window_from_ms,
                             const struct np_outage_rec *recs, size_t n, unsigned *changes,
                             struct np_err *err)
{
    struct otg_row *rows = NULL;
    size_t n_rows = 0;
    unsigned changed = 0;
    sqlite3_stmt *st;
    bool own = false;
    int rc, ret;

    if (changes) {
        *changes = 0;
    }
    if (np_state_db_check_id(site_id) < 0) {
        return id_fail(err, site_id);
    }
    rows = calloc(OUTAGE_SYNC_MAX_ROWS, sizeof *rows);
    if (!rows) {
        return np_err_set(err, -ENOMEM, "state: out of memory");
    }
    ret = auto_begin(db, false, &own, err);
    if (ret < 0) {
        goto out_free;
    }
    st = stmt_get(db, S_OTG_WINDOW);
    bind_text(st, 1, site_id);
    sqlite3_bind_int64(st, 2, window_from_ms);
    sqlite3_bind_int(st, 3, OUTAGE_SYNC_MAX_ROWS);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct otg_row *r = &rows[n_rows++];
        r->id = sqlite3_column_int64(st, 0);
        if (np_outage_rec_cause_parse(col_text(st, 1), &r->o.cause) < 0) {
            r->o.cause = NP_OUTAGE_CAUSE_UNKNOWN;
        }
        if (np_outage_rec_state_parse(col_text(st, 2), &r->o.state) < 0) {
            r->o.state = NP_OUTAGE_SUSPECTED;
        }
        r->o.start_ms = sqlite3_column_int64(st, 3);
        r->o.end_ms = sqlite3_column_int64(st, 4); /* NULL reads as 0: open */
        snprintf(r->o.detail, sizeof r->o.detail, "%s", col_text(st, 5));
        r->o.target_ms = sqlite3_column_int64(st, 6);
        r->o.lag_ms = sqlite3_column_int64(st, 7);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        ret = db_fail(db, err, "outages window");
        goto out_end;
    }
    /* Each outage of the list updates the stored row it overlaps (the same
     * cause first), so ids stay stable as a suspected outage is settled or an
     * open one ends; the rest are inserted. */
    for (size_t i = 0; i < n && ret == 0; i++) {
        struct np_outage_rec want = recs[i];
        struct otg_row *match = NULL;
        for (int pass = 0; pass < 2 && !match; pass++) {
            for (size_t j = 0; j < n_rows; j++) {
                if (!rows[j].matched && (pass == 1 || rows[j].o.cause == want.cause) &&
                    otg_overlap(&rows[j].o, &want, pass == 0)) {
                    match = &rows[j];
                    break;
                }
            }
        }
        if (match) {
            match->matched = true;
            /* The tracker's evidence starts at window_from: a stored start
             * before it is better than the tracker's. */
            if (match->o.start_ms < window_from_ms && match->o.start_ms < want.start_ms) {
                want.start_ms = match->o.start_ms;
            }
            if (otg_same(&match->o, &want)) {
                continue;
            }
            st = stmt_get(db, S_OTG_UPDATE);
            sqlite3_bind_int64(st, 1, match->id);
            bind_outage(st, &want);
            ret = stmt_exec(db, st, err, "outage update");
        } else {
            st = stmt_get(db, S_OTG_INSERT);
            bind_text(st, 1, site_id);
            bind_outage(st, &want);
            ret = stmt_exec(db, st, err, "outage insert");
        }
        changed++;
    }
    /* Stored rows the list no longer has: within the tracker's evidence they
     * are gone (a suspected outage the backlog cleared); one that began
     * before it and is still open ended by the time the evidence begins. */
    for (size_t j = 0; j < n_rows && ret == 0; j++) {
        struct otg_row *r = &rows[j];
        if (r->matched) {
            continue;
        }
        if (r->o.start_ms >= window_from_ms) {
            st = stmt_get(db, S_OTG_DELETE);
            sqlite3_bind_int64(st, 1, r->id);
            ret = stmt_exec(db, st, err, "outage delete");
            changed++;
        } else if (r->o.end_ms == 0) {
            r->o.end_ms = window_from_ms;
            r->o.state = NP_OUTAGE_CONFIRMED;
            st = stmt_get(db, S_OTG_UPDATE);
            sqlite3_bind_int64(st, 1, r->id);
            bind_outage(st, &r->o);
            ret = stmt_exec(db, st, err, "outage close");
            changed++;
        }
    }
out_end:
    ret = auto_end(db, own, ret, err);
    if (ret == 0 && changes) {
        *changes = changed;
    }
out_free:
    free(rows);
    return ret;
}

int np_state_db_outages_restore(struct np_state_db *db, np_state_db_restore_cb cb, void *ctx,
                                struct np_err *err)
{
    sqlite3_stmt *st = stmt_get(db, S_OTG_RESTORE);
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct np_outage_rec sus = {0};
        bool has = sqlite3_column_type(st, 3) != SQLITE_NULL;
        if (has) {
            if (np_outage_rec_cause_parse(col_text(st, 2), &sus.cause) < 0) {
                sus.cause = NP_OUTAGE_CAUSE_UNKNOWN;
            }
            sus.state = NP_OUTAGE_SUSPECTED;
            sus.start_ms = sqlite3_column_int64(st, 3);
            sus.target_ms = sqlite3_column_int64(st, 4);
            sus.lag_ms = sqlite3_column_int64(st, 5);
        }
        ret = cb(col_text(st, 0), sqlite3_column_int64(st, 1), has ? &sus : NULL, ctx);
        if (ret != 0) {
            break;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        ret = db_fail(db, err, "outages restore");
    }
    sqlite3_reset(st);
    return ret;
}

/* JSON of the rows of stmt id (S_OTG_RANGE or S_EVT_RANGE) for site over
 * [from, to), oldest first. */
static int range_json(struct np_state_db *db, enum stmt_id id, const char *site, int64_t from_ms,
                      int64_t to_ms, int64_t now_ms, json_t **out, struct np_err *err)
{
    json_t *arr = json_array();
    int rc, ret = 0;
    *out = NULL;
    if (!arr) {
        return np_err_set(err, -ENOMEM, "state: out of memory");
    }
    sqlite3_stmt *st = stmt_get(db, id);
    bind_text(st, 1, site);
    sqlite3_bind_int64(st, 2, from_ms);
    sqlite3_bind_int64(st, 3, to_ms);
    sqlite3_bind_int(st, 4, RANGE_JSON_MAX_ROWS);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row;
        if (id == S_OTG_RANGE) {
            bool open = sqlite3_column_type(st, 4) == SQLITE_NULL;
            int64_t start = sqlite3_column_int64(st, 3);
            int64_t end = open ? now_ms : sqlite3_column_int64(st, 4);
            char s_iso[32], e_iso[32];
            np_clock_format_utc(start, s_iso, sizeof s_iso);
            np_clock_format_utc(end, e_iso, sizeof e_iso);
            row = json_pack("{s:o, s:o, s:o, s:I, s:o, s:s, s:o, s:f, s:b, s:o}", "id",
                            col_json_int(st, 0), "cause", col_json_text(st, 1), "state",
                            col_json_text(st, 2), "start_ms", (json_int_t)start, "end_ms",
                            col_json_int(st, 4), "start", s_iso, "end",
                            open ? json_null() : json_string(e_iso), "duration_s",
                            end > start ? (double)(end - start) / 1000.0 : 0.0, "open", open,
                            "detail", col_json_text(st, 5));
        } else {
            row = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", col_json_int(st, 0),
                            "type", col_json_text(st, 1), "device", col_json_text(st, 2),
                            "subject", col_json_text(st, 3), "start_ms", col_json_int(st, 4),
                            "end_ms", col_json_int(st, 5), "detail", col_json_text(st, 6),
                            "state", col_json_text(st, 7));
        }
        /* Newest first from SQL (so the cap keeps the newest); oldest first out. */
        if (!row || json_array_insert_new(arr, 0, row) < 0) {
            ret = np_err_set(err, -ENOMEM, "state: out of memory");
            break;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        ret = db_fail(db, err, id == S_OTG_RANGE ? "outages" : "events");
    }
    sqlite3_reset(st);
    if (ret < 0) {
        json_decref(arr);
        return ret;
    }
    *out = arr;
    return 0;
}

int np_state_db_outages_json(struct np_state_db *db, const char *site_id, int64_t from_ms,
                             int64_t to_ms, int64_t now_ms, json_t **out, struct np_err *err)
{
    *out = NULL;
    int ret = np_state_db_site_exists(db, site_id, err);
    if (ret < 0) {
        return ret;
    }
    return range_json(db, S_OTG_RANGE, site_id, from_ms, to_ms, now_ms, out, err);
}

int np_state_db_events_json(struct np_state_db *db, const char *site_id, int64_t from_ms,
                            int64_t to_ms, json_t **out, struct np_err *err)
{
    *out = NULL;
    int ret = np_state_db_site_exists(db, site_id, err);
    if (ret < 0) {
        return ret;
    }
    return range_json(db, S_EVT_RANGE, site_id, from_ms, to_ms, 0, out, err);
}

/* ---- flow summaries (schema version 4) ---------------------------------------- */

static json_t *named_counts_json(Netpulse__NamedCount *const *v, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *o = json_pack("{s:s, s:I, s:I}", "name", v[i]->name ? v[i]->name : "", "bytes",
                              (json_int_t)v[i]->bytes, "packets", (json_int_t)v[i]->packets);
        if (!o || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* Counts on the wire are uint64; JSON integers here are int64. */
static json_int_t ji(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? (json_int_t)INT64_MAX : (json_int_t)v;
}

/* The API's JSON of one FlowSummary; NULL when memory ran out. */
static json_t *flow_summary_json(const Netpulse__FlowSummary *f)
{
    json_t *talkers = json_array(), *flows = json_array(), *errors = json_array();
    json_t *doc = NULL;
    for (size_t i = 0; talkers && i < f->n_top_talkers; i++) {
        const Netpulse__Talker *t = f->top_talkers[i];
        json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I}", "address", t->address ? t->address : "",
                              "bytes", ji(t->bytes_in + t->bytes_out), "bytes_in", ji(t->bytes_in),
                              "bytes_out", ji(t->bytes_out), "packets", ji(t->packets));
        if (!o || json_array_append_new(talkers, o) != 0) {
            goto out;
        }
    }
    for (size_t i = 0; flows && i < f->n_top_flows; i++) {
        const Netpulse__Flow *w = f->top_flows[i];
        json_t *o = json_pack("{s:I, s:s, s:I, s:s, s:I, s:I, s:I, s:I}", "proto",
                              (json_int_t)w->proto, "src", w->src_addr ? w->src_addr : "", "sport",
                              (json_int_t)w->src_port, "dst", w->dst_addr ? w->dst_addr : "",
                              "dport", (json_int_t)w->dst_port, "vlan", (json_int_t)w->vlan,
                              "bytes", ji(w->bytes), "packets", ji(w->packets));
        if (!o || json_array_append_new(flows, o) != 0) {
            goto out;
        }
    }
    for (size_t i = 0; errors && i < f->n_decode_errors; i++) {
        const Netpulse__DecodeError *e = f->decode_errors[i];
        json_t *o =
            json_pack("{s:s, s:I}", "reason", e->reason ? e->reason : "", "count", ji(e->count));
        if (!o || json_array_append_new(errors, o) != 0) {
            goto out;
        }
    }
    if (!talkers || !flows || !errors) {
        goto out;
    }
    doc =
        json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
                  " s:o*, s:o*, s:O, s:O, s:O}",
                  "source", f->source ? f->source : "", "start_ms", (json_int_t)f->start_ms,
                  "end_ms", (json_int_t)f->end_ms, "packets", ji(f->packets), "bytes", ji(f->bytes),
                  "bytes_in", ji(f->bytes_in), "bytes_out", ji(f->bytes_out), "packets_in",
                  ji(f->packets_in), "packets_out", ji(f->packets_out), "sample_rate",
                  (json_int_t)(f->sample_rate ? f->sample_rate : 1), "dropped_kernel",
                  ji(f->dropped_kernel), "dropped_iface", ji(f->dropped_iface), "evicted_flows",
                  ji(f->evicted_flows), "by_app", named_counts_json(f->by_app, f->n_by_app),
                  "by_protocol", named_counts_json(f->by_protocol, f->n_by_protocol), "top_talkers",
                  talkers, "top_flows", flows, "decode_errors", errors);
    /* s:o* leaves out a list that failed to build: treat as no memory. */
    if (doc && (!json_object_get(doc, "by_app") || !json_object_get(doc, "by_protocol"))) {
        json_decref(doc);
        doc = NULL;
    }
out:
    json_decref(talkers);
    json_decref(flows);
    json_decref(errors);
    return doc;
}

int np_state_db_flows_put(struct np_state_db *db, const Netpulse__Batch *b, unsigned keep,
                          struct np_err *err)
{
    bool own;
    int ret;
    if (b->n_flows == 0) {
        return 0;
    }
    if (keep == 0 || np_state_db_check_id(b->agent_id) < 0) {
        return np_err_set(err, -EINVAL, "state: bad flow summary arguments");
    }
    ret = auto_begin(db, false, &own, err);
    if (ret < 0) {
        return ret;
    }
    for (size_t i = 0; ret == 0 && i < b->n_flows; i++) {
        const Netpulse__FlowSummary *f = b->flows[i];
        json_t *doc = flow_summary_json(f);
        char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        if (!text) {
            ret = np_err_set(err, -ENOMEM, "state: out of memory");
            break;
        }
        sqlite3_stmt *st = stmt_get(db, S_FLOW_PUT);
        bind_text(st, 1, b->agent_id);
        bind_text(st, 2, f->source);
        sqlite3_bind_int64(st, 3, f->start_ms);
        sqlite3_bind_int64(st, 4, f->end_ms);
        sqlite3_bind_text(st, 5, text, -1, SQLITE_TRANSIENT);
        ret = stmt_exec(db, st, err, "flow summary put");
        free(text);
        if (ret == 0) {
            st = stmt_get(db, S_FLOW_TRIM);
            bind_text(st, 1, b->agent_id);
            bind_text(st, 2, f->source);
            sqlite3_bind_int64(st, 3, keep);
            ret = stmt_exec(db, st, err, "flow summary trim");
        }
    }
    return auto_end(db, own, ret, err);
}

int np_state_db_flows_json(struct np_state_db *db, const char *site_id, unsigned intervals,
                           json_t **out, struct np_err *err)
{
    json_t *sources = NULL, *cur = NULL;
    const char *cur_name = NULL;
    sqlite3_stmt *st;
    int ret, rc;

    *out = NULL;
    ret = np_state_db_site_exists(db, site_id, err);
    if (ret < 0) {
        return ret;
    }
    sources = json_array();
    if (!sources) {
        return np_err_set(err, -ENOMEM, "state: out of memory");
    }
    st = stmt_get(db, S_FLOW_LIST);
    bind_text(st, 1, site_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *source = col_text(st, 0);
        if (!cur || strcmp(cur_name, source) != 0) {
            json_t *src = json_pack("{s:s, s:[]}", "source", source, "intervals");
            if (!src || json_array_append_new(sources, src) != 0) {
                ret = np_err_set(err, -ENOMEM, "state: out of memory");
                break;
            }
            cur = json_object_get(src, "intervals");
            cur_name = json_string_value(json_object_get(src, "source"));
        }
        if (json_array_size(cur) >= intervals) {
            continue;
        }
        json_error_t jerr;
        json_t *doc = json_loads(col_text(st, 1), 0, &jerr);
        if (!doc) {
            ret = np_err_set(err, NP_EDB, "state: flow summary unreadable: %s", jerr.text);
            break;
        }
        if (json_array_append_new(cur, doc) != 0) {
            ret = np_err_set(err, -ENOMEM, "state: out of memory");
            break;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        ret = db_fail(db, err, "flow summaries");
    }
    sqlite3_reset(st);
    if (ret == 0) {
        *out = json_pack("{s:s, s:O}", "site", site_id, "sources", sources);
        if (!*out) {
            ret = np_err_set(err, -ENOMEM, "state: out of memory");
        }
    }
    json_decref(sources);
    return ret;
}
