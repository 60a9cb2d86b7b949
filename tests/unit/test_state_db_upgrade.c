/* state_db, web_auth and alert_db upgrades: SQLite files made by the first
 * release (git commit 2f39a56, netpulse 0.1.0) are opened by this netpulse,
 * which migrates them to its schema versions, and every row the first
 * release wrote is still there, unchanged in every column it had; its agent
 * token and dashboard password still authenticate.
 *
 *   test_state_db_upgrade FIXTURES_DIR
 *
 * The schemas come from FIXTURES_DIR/state_db_first_release.sql and
 * alert_db_first_release.sql (the CREATE statements of that commit,
 * verbatim); the rows are written here with plain SQL as that release wrote
 * them (token hash = SHA-256(salt || token), tag = first 8 bytes of
 * SHA-256(token) in hex; passwords "pbkdf2-sha256$ROUNDS$SALT$KEY"). */
#include "alert_db.h"
#include "state_db.h"
#include "web_auth.h"

#include "check.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define OLD_TOKEN "np1_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA"
#define OLD_PASSWORD "first-release pw"
#define MAX_TABLES 32
#define MAX_COLS 32

static char dir[] = "/tmp/np_test_state_db_upgrade.XXXXXX";

/* One row per table of the first release at least (checked below). */
static const char state_rows[] =
    "INSERT INTO sites VALUES ('oak-es', 'Oak Elementary', 'elementary', 1000000000, 100000000,"
    " 2024, 'it@oak.example', 0, 1700000000000, 1700000000001);"
    "INSERT INTO sites VALUES ('stub-1', 'stub-1', 'other', NULL, NULL, NULL, '', 1,"
    " 1700000000002, 1700000000002);"
    "INSERT INTO agents VALUES ('oak-es', '0f4bb5eab1fac2df', X'6465666768696a6b6c6d6e6f70717273',"
    " X'0288662dcfcb5780c1bf77778bbf3841e11241602ecdf23f7860be3912f7428c', 1700000000100, NULL,"
    " 1700000000200);"
    "INSERT INTO applied_batches VALUES ('oak-es', 41, 1700000000200);"
    "INSERT INTO devices VALUES ('oak-es', 'edge', 'edge1', 'Linux edge1', "
    "'1.3.6.1.4.1.8072.3.2.10',"
    " 1700000000150, 1700000000200);"
    "INSERT INTO interfaces VALUES ('oak-es', 'edge', 'eth0', 'eth0', 2, 'uplink', 'eth0',"
    " 1000000000, 1, 1, 1700000000150, 1700000000200);"
    "INSERT INTO interfaces VALUES ('oak-es', 'edge', 'ifindex-7', '', 7, '', 'x', NULL, 2, 1,"
    " 1700000000150, 1700000000200);"
    "INSERT INTO events VALUES (1, 'oak-es', 'iface_down', 'edge', 'eth0', 1700000000160,"
    " 1700000000170, 'oper down', 'closed', 'oak-es', 40);"
    "INSERT INTO events VALUES (2, 'oak-es', 'probe_down', '', 'upstream', 1700000000180, NULL, '',"
    " 'open', 'oak-es', 41);"
    "INSERT INTO maintenance VALUES (1, 'oak-es', 1700000500000, 1700000600000, 'router swap',"
    " 1700000000300);"
    "INSERT INTO circuit_rates VALUES ('oak-es', 1690000000000, 500000000);"
    "INSERT INTO outages VALUES (1, 'oak-es', 'link', 'confirmed', 1700000001000, 1700000002000,"
    " 'probes failed', 0, 0, 1700000002000);"
    "INSERT INTO flow_summaries VALUES ('oak-es', 'wan', 1700000000000, 1700000060000,"
    " '{\"packets\":10,\"bytes\":6400}');"
    "INSERT INTO web_users VALUES ('ada', 1,"
    " 'pbkdf2-sha256$1000$yMnKy8zNzs_Q0dLT1NXW1w$upxT_H6igcem-s3EMpyafNuPv51aqGKPRYs0uBDjHOY',"
    " 1700000000400);"
    "INSERT INTO web_tokens VALUES"
    " (X'd6410ae207c51d144cc1656e1871532938b54acf88e150112fc53167f66d78eb', 'ada', 1700000000401);";

static const char alert_rows[] =
    "INSERT INTO alerts VALUES (1, 'site_down/oak-es', 'site_down', 'critical', 'oak-es', '',"
    " 1700000001000, 1700000002000, 'link', 1, 0, 1700000001000);"
    "INSERT INTO deliveries VALUES (1, 1, 'email', 'noc@example.org', X'6869', 'sent', 1,"
    " 1700000001000, 1700000001000, 1700000001500, 250, '');"
    "INSERT INTO down_sites VALUES ('stub-1', 1700000003000, 1);";

/* The tables of a first-release file and their columns then: what must
 * survive (later versions may add tables and columns). */
struct snapshot {
    int n_tables;
    char table[MAX_TABLES][64];
    int n_cols[MAX_TABLES];
    char col[MAX_TABLES][MAX_COLS][64];
    char *rows[MAX_TABLES]; /* every row, every old column: a text dump */
};

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
        }
    }
    fclose(f);
    return buf;
}

static int run_sql(const char *db, const char *sql)
{
    sqlite3 *c = NULL;
    char *msg = NULL;
    int rc = sqlite3_open(db, &c);
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(c, sql, NULL, NULL, &msg);
    }
    if (rc != SQLITE_OK) {
        fprintf(stderr, "%s: %s\n", db, msg ? msg : sqlite3_errmsg(c));
    }
    sqlite3_free(msg);
    sqlite3_close(c);
    return rc;
}

static int64_t sql_int(const char *db, const char *sql)
{
    sqlite3 *c = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(db, &c, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(c, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(c);
    return v;
}

/* Appends to a growing string; returns it (NULL when out of memory). */
static char *append(char *s, size_t *len, const char *add)
{
    size_t n = strlen(add);
    char *t = realloc(s, *len + n + 1);
    if (!t) {
        free(s);
        return NULL;
    }
    memcpy(t + *len, add, n + 1);
    *len += n;
    return t;
}

/* Dumps every row of table ti (its snapshot columns, ordered by all of them)
 * with SQLite's quote(), which tells types apart and shows blobs in hex. */
static char *dump_table(sqlite3 *c, const struct snapshot *s, int ti)
{
    char sql[4096];
    size_t off = 0;
    char *out = NULL;
    size_t len = 0;
    sqlite3_stmt *st = NULL;

    off += (size_t)snprintf(sql + off, sizeof sql - off, "SELECT ");
    for (int i = 0; i < s->n_cols[ti]; i++) {
        off += (size_t)snprintf(sql + off, sizeof sql - off, "%squote(\"%s\")",
                                i ? " || '|' || " : "", s->col[ti][i]);
    }
    off += (size_t)snprintf(sql + off, sizeof sql - off, " FROM \"%s\" ORDER BY 1", s->table[ti]);
    if (off >= sizeof sql || sqlite3_prepare_v2(c, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "dump %s: %s\n", s->table[ti], sqlite3_errmsg(c));
        return NULL;
    }
    out = append(NULL, &len, "");
    while (out && sqlite3_step(st) == SQLITE_ROW) {
        out = append(out, &len, (const char *)sqlite3_column_text(st, 0));
        out = out ? append(out, &len, "\n") : NULL;
    }
    sqlite3_finalize(st);
    return out;
}

/* Records the tables and columns of db (first call, with_schema) or only the
 * rows of the recorded ones (later calls). 0 on success. */
static int snapshot(const char *db, struct snapshot *s, bool with_schema)
{
    sqlite3 *c = NULL;
    sqlite3_stmt *st = NULL;
    int ret = -1;

    if (sqlite3_open_v2(db, &c, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        goto out;
    }
    if (with_schema) {
        s->n_tables = 0;
        if (sqlite3_prepare_v2(c,
                               "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name",
                               -1, &st, NULL) != SQLITE_OK) {
            goto out;
        }
        while (sqlite3_step(st) == SQLITE_ROW && s->n_tables < MAX_TABLES) {
            snprintf(s->table[s->n_tables++], sizeof s->table[0], "%s",
                     (const char *)sqlite3_column_text(st, 0));
        }
        sqlite3_finalize(st);
        for (int t = 0; t < s->n_tables; t++) {
            if (sqlite3_prepare_v2(c, "SELECT name FROM pragma_table_info(?1) ORDER BY cid", -1,
                                   &st, NULL) != SQLITE_OK) {
                goto out;
            }
            sqlite3_bind_text(st, 1, s->table[t], -1, SQLITE_STATIC);
            s->n_cols[t] = 0;
            while (sqlite3_step(st) == SQLITE_ROW && s->n_cols[t] < MAX_COLS) {
                snprintf(s->col[t][s->n_cols[t]++], sizeof s->col[0][0], "%s",
                         (const char *)sqlite3_column_text(st, 0));
            }
            sqlite3_finalize(st);
        }
        st = NULL;
    }
    for (int t = 0; t < s->n_tables; t++) {
        free(s->rows[t]);
        if (!(s->rows[t] = dump_table(c, s, t))) {
            goto out;
        }
    }
    ret = 0;
out:
    sqlite3_close(c);
    return ret;
}

static void snapshot_free(struct snapshot *s)
{
    for (int t = 0; t < s->n_tables; t++) {
        free(s->rows[t]);
        s->rows[t] = NULL;
    }
}

/* Makes db from the fixture and rows, snapshots it into before. */
static int make_first_release(const char *fixtures, const char *fixture, const char *db,
                              const char *rows, struct snapshot *before)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", fixtures, fixture);
    char *sql = slurp(p);
    if (!sql) {
        fprintf(stderr, "cannot read %s\n", p);
        return -1;
    }
    int rc = run_sql(db, sql) == SQLITE_OK && run_sql(db, rows) == SQLITE_OK ? 0 : -1;
    free(sql);
    if (rc == 0) {
        rc = snapshot(db, before, true);
    }
    /* Every table of the first release holds rows, so none is left unchecked. */
    for (int t = 0; rc == 0 && t < before->n_tables; t++) {
        if (before->rows[t][0] == '\0') {
            fprintf(stderr, "%s: no row in table %s: add one to the test\n", db, before->table[t]);
            check_failures++;
        }
    }
    return rc;
}

/* After the upgrade: the same rows in every old table and column. */
static void check_rows_kept(const char *db, struct snapshot *before)
{
    struct snapshot after = *before;
    for (int t = 0; t < after.n_tables; t++) {
        after.rows[t] = NULL;
    }
    CHECK_INT(snapshot(db, &after, false), 0);
    for (int t = 0; t < before->n_tables; t++) {
        if (!after.rows[t] || strcmp(before->rows[t], after.rows[t]) != 0) {
            fprintf(stderr, "%s: table %s changed in the upgrade\nbefore:\n%safter:\n%s\n", db,
                    before->table[t], before->rows[t], after.rows[t] ? after.rows[t] : "(error)\n");
            check_failures++;
        }
    }
    snapshot_free(&after);
}

static void test_state_db(const char *fixtures)
{
    char db_path[300];
    struct snapshot before = {0};
    struct np_state_db *db = NULL;
    struct np_web_users *users = NULL;
    struct np_err err = {0};
    char agent[NP_STATE_DB_MAX_ID + 1];
    bool admin = false;

    snprintf(db_path, sizeof db_path, "%s/state.db", dir);
    if (make_first_release(fixtures, "state_db_first_release.sql", db_path, state_rows, &before) !=
        0) {
        check_failures++;
        return;
    }
    CHECK_INT(sql_int(db_path, "PRAGMA user_version"), 4);
    CHECK_INT(before.n_tables, 12);

    CHECK_INT(np_state_db_open(db_path, &db, &err), 0);
    CHECK_INT(np_web_users_open(db_path, &users, &err), 0);
    if (!db || !users) {
        fprintf(stderr, "open: %s\n", err.msg);
        np_state_db_close(db);
        np_web_users_close(users);
        snapshot_free(&before);
        return;
    }
    /* The first release's credentials still work. */
    CHECK_INT(np_state_db_agent_auth(db, OLD_TOKEN, agent, sizeof agent), 0);
    CHECK_STR(agent, "oak-es");
    CHECK_INT(np_web_users_login(users, "ada", OLD_PASSWORD, &admin, &err), 0);
    CHECK(admin);
    CHECK_INT(np_web_users_login(users, "ada", "wrong", &admin, &err), NP_EAUTH);
    np_web_users_close(users);
    np_state_db_close(db);

    CHECK_INT(sql_int(db_path, "PRAGMA user_version"), NP_STATE_DB_SCHEMA_VERSION);
    CHECK_INT(sql_int(db_path, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    CHECK_INT(sql_int(db_path, "SELECT count(*) FROM pragma_integrity_check WHERE "
                               "integrity_check != 'ok'"),
              0);
    check_rows_kept(db_path, &before);
    /* Opening again changes nothing more. */
    CHECK_INT(np_state_db_open(db_path, &db, &err), 0);
    np_state_db_close(db);
    check_rows_kept(db_path, &before);
    snapshot_free(&before);
}

static void test_alert_db(const char *fixtures)
{
    char db_path[300];
    struct snapshot before = {0};
    struct np_alert_db *db = NULL;
    struct np_err err = {0};

    snprintf(db_path, sizeof db_path, "%s/alerts.db", dir);
    if (make_first_release(fixtures, "alert_db_first_release.sql", db_path, alert_rows, &before) !=
        0) {
        check_failures++;
        return;
    }
    CHECK_INT(sql_int(db_path, "PRAGMA user_version"), 1);
    CHECK_INT(before.n_tables, 3);
    CHECK_INT(np_alert_db_open(db_path, &db, &err), 0);
    if (!db) {
        fprintf(stderr, "open: %s\n", err.msg);
    }
    np_alert_db_close(db);
    CHECK_INT(sql_int(db_path, "PRAGMA user_version"), NP_ALERT_DB_SCHEMA_VERSION);
    check_rows_kept(db_path, &before);
    snapshot_free(&before);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FIXTURES_DIR\n", argv[0]);
        return 2;
    }
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_state_db(argv[1]);
    test_alert_db(argv[1]);
    {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", dir);
        }
    }
    return check_done("test_state_db_upgrade");
}
