/* state_db: schema, enrolment and token auth, idempotent batch apply, JSON,
 * against real SQLite files in a temporary folder. */
#include "state_db.h"

#include "check.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/np_test_state_db.XXXXXX";
static char path[256];

static int64_t sql_int(const char *sql)
{
    sqlite3 *c = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &c, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(c, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(c);
    return v;
}

static void test_open_schema(void)
{
    struct np_state_db *db = NULL;
    struct np_err err = {0};
    CHECK_INT(np_state_db_open(path, &db, &err), 0);
    np_state_db_close(db);
    CHECK_INT(sql_int("PRAGMA user_version"), NP_STATE_DB_SCHEMA_VERSION);
    /* v1: 6 tables; v2: maintenance, circuit_rates; v3: outages; v4: flow_summaries. */
    CHECK_INT(sql_int("SELECT count(*) FROM sqlite_schema WHERE type = 'table'"), 10);
    /* Reopening keeps the schema. */
    CHECK_INT(np_state_db_open(path, &db, &err), 0);
    np_state_db_close(db);
    np_state_db_close(NULL);
}

static void test_newer_schema_refused(void)
{
    char p2[300];
    sqlite3 *c = NULL;
    struct np_state_db *db = NULL;
    struct np_err err = {0};
    snprintf(p2, sizeof p2, "%s/newer.db", dir);
    CHECK_INT(sqlite3_open(p2, &c), SQLITE_OK);
    CHECK_INT(sqlite3_exec(c, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(c);
    CHECK_INT(np_state_db_open(p2, &db, &err), NP_EVERSION);
    CHECK(db == NULL);
    CHECK_CONTAINS(err.msg, "schema version 99");
}

static void test_ids(void)
{
    static const struct {
        const char *id;
        int ok;
    } cases[] = {
        {"school-0412", 1},
        {"a", 1},
        {"A.b_c-9", 1},
        {"", 0},
        {".hidden", 0},
        {"-x", 0},
        {"a/b", 0},
        {"a b", 0},
        {"../x", 0},
        {"é", 0},
        {"0123456789012345678901234567890123456789012345678901234567890123", 1},
        {"01234567890123456789012345678901234567890123456789012345678901234", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_INT(np_state_db_check_id(cases[i].id) == 0, cases[i].ok);
    }
    CHECK_INT(np_state_db_check_id(NULL), -EINVAL);
}

static int count_cb(const struct np_agent_info *a, void *ctx)
{
    int *n = ctx;
    (void)a;
    (*n)++;
    return 0;
}

static int find_cb(const struct np_agent_info *a, void *ctx)
{
    struct np_agent_info *want = ctx;
    if (strcmp(a->id, want->id) == 0) {
        want->revoked_ms = a->revoked_ms;
        want->created_ms = a->created_ms;
        want->applied_seq = a->applied_seq;
        want->last_seen_ms = a->last_seen_ms;
        return 1;
    }
    return 0;
}

static void test_enrol_auth_revoke(void)
{
    struct np_state_db *db = NULL;
    struct np_err err = {0};
    char token[NP_STATE_DB_TOKEN_BUFSZ], token2[NP_STATE_DB_TOKEN_BUFSZ];
    char id[NP_STATE_DB_MAX_ID + 1];
    char small[10];
    int n = 0;
    struct np_agent_info info = {.id = "school-0412"};

    CHECK_INT(np_state_db_open(path, &db, &err), 0);
    CHECK_INT(np_state_db_agent_enrol(db, "school-0412", small, sizeof small, &err), -ERANGE);
    CHECK_INT(np_state_db_agent_enrol(db, "bad/id", token, sizeof token, &err), -EINVAL);
    CHECK_INT(np_state_db_agent_enrol(db, "school-0412", token, sizeof token, &err), 0);
    CHECK_INT(strlen(token), NP_STATE_DB_TOKEN_LEN);
    CHECK(strncmp(token, "np1_", 4) == 0);
    /* The enrolment made a stub site. */
    CHECK_INT(np_state_db_site_exists(db, "school-0412", &err), 0);
    CHECK_INT(sql_int("SELECT stub FROM sites WHERE id = 'school-0412'"), 1);
    /* Only the hash is stored: the token text is nowhere in the file. */
    CHECK_INT(sql_int("SELECT length(token_hash) FROM agents"), 32);
    CHECK_INT(sql_int("SELECT length(token_salt) FROM agents"), 16);

    CHECK_INT(np_state_db_agent_auth(db, token, id, sizeof id), 0);
    CHECK_STR(id, "school-0412");
    CHECK_INT(np_state_db_agent_auth(db, token, small, sizeof small), -ERANGE);
    /* Wrong tokens: one character changed, truncated, empty, garbage, NULL. */
    snprintf(token2, sizeof token2, "%s", token);
    token2[20] = token2[20] == 'A' ? 'B' : 'A';
    CHECK_INT(np_state_db_agent_auth(db, token2, id, sizeof id), NP_EAUTH);
    CHECK_STR(id, "");
    token2[0] = '\0';
    CHECK_INT(np_state_db_agent_auth(db, token2, id, sizeof id), NP_EAUTH);
    CHECK_INT(np_state_db_agent_auth(db, "np1_", id, sizeof id), NP_EAUTH);
    CHECK_INT(np_state_db_agent_auth(db, "Bearer xyz", id, sizeof id), NP_EAUTH);
    CHECK_INT(np_state_db_agent_auth(db, NULL, id, sizeof id), NP_EAUTH);
    snprintf(token2, sizeof token2, "%.46s", token);
    CHECK_INT(np_state_db_agent_auth(db, token2, id, sizeof id), NP_EAUTH);

    /* A second enrolment of an active agent is refused and keeps the token. */
    CHECK_INT(np_state_db_agent_enrol(db, "school-0412", token2, sizeof token2, &err), -EEXIST);
    CHECK_CONTAINS(err.msg, "revoke it first");
    CHECK_INT(np_state_db_agent_auth(db, token, id, sizeof id), 0);

    CHECK_INT(np_state_db_agent_enrol(db, "school-0007", token2, sizeof token2, &err), 0);
    CHECK(strcmp(token, token2) != 0);
    CHECK_INT(np_state_db_agent_auth(db, token2, id, sizeof id), 0);
    CHECK_STR(id, "school-0007");
    CHECK_INT(np_state_db_agent_list(db, count_cb, &n), 0);
    CHECK_INT(n, 2);

    /* Revoke: the token stops working at once; revoking twice says so. */
    CHECK_INT(np_state_db_agent_revoke(db, "school-0412", &err), 0);
    CHECK_INT(np_state_db_agent_auth(db, token, id, sizeof id), NP_EAUTH);
    CHECK_INT(np_state_db_agent_revoke(db, "school-0412", &err), -EALREADY);
    CHECK_INT(np_state_db_agent_revoke(db, "nobody", &err), -ENOENT);
    CHECK_INT(np_state_db_agent_list(db, find_cb, &info), 1);
    CHECK(info.revoked_ms > 0);
    /* Re-enrolling a revoked agent issues a new token; the old stays dead. */
    CHECK_INT(np_state_db_agent_enrol(db, "school-0412", token2, sizeof token2, &err), 0);
    CHECK_INT(np_state_db_agent_auth(db, token, id, sizeof id), NP_EAUTH);
    CHECK_INT(np_state_db_agent_auth(db, token2, id, sizeof id), 0);
    CHECK_STR(id, "school-0412");
    info.revoked_ms = -1;
    CHECK_INT(np_state_db_agent_list(db, find_cb, &info), 1);
    CHECK_INT(info.revoked_ms, 0);

    /* Survives reopening (and another connection sees it). */
    np_state_db_close(db);
    CHECK_INT(np_state_db_open(path, &db, &err), 0);
    CHECK_INT(np_state_db_agent_auth(db, token2, id, sizeof id), 0);
    np_state_db_close(db);
}

static void test_sites(void)
{
    struct np_state_db *db = NULL;
    struct np_err err = {0};
    bool created = false;
    json_t *arr = NULL, *one = NULL;
    struct np_site s = {.id = "school-0412",
                        .name = "Lincoln Elementary",
                        .school_type = NP_SCHOOL_ELEMENTARY,
                        .circuit_bps = 1000000000,
                        .baseline_bps = 100000000,
                        .baseline_year = 2021,
                        .contacts = "it@lincoln.example.org"};
    enum np_school_type t;

    CHECK_INT(np_school_type_parse("high", &t), 0);
    CHECK_INT(t, NP_SCHOOL_HIGH);
    CHECK_INT(np_school_type_parse("college", &t), -EINVAL);
    CHECK_STR(np_school_type_name(NP_SCHOOL_MIDDLE), "middle");

    CHECK_INT(np_state_db_open(path, &db, &err), 0);
    /* The stub from enrolment becomes a real site. */
    CHECK_INT(np_state_db_site_upsert(db, &s, &created, &err), 0);
    CHECK_INT(created, 0);
    CHECK_INT(sql_int("SELECT stub FROM sites WHERE id = 'school-0412'"), 0);
    s.id = "school-9999";
    s.name = "";
    CHECK_INT(np_state_db_site_upsert(db, &s, &created, &err), -EINVAL);
    s.name = "Washington High";
    s.school_type = NP_SCHOOL_HIGH;
    s.circuit_bps = 0;
    CHECK_INT(np_state_db_site_upsert(db, &s, &created, &err), 0);
    CHECK_INT(created, 1);
    CHECK_INT(np_state_db_site_exists(db, "nope", &err), -ENOENT);

    CHECK_INT(np_state_db_sites_json(db, &arr, &err), 0);
    CHECK_INT(json_array_size(arr), 3);
    CHECK_STR(json_string_value(json_object_get(json_array_get(arr, 0), "id")), "school-0007");
    CHECK(json_is_true(json_object_get(json_array_get(arr, 0), "stub")));
    {
        json_t *lincoln = json_array_get(arr, 1);
        CHECK_STR(json_string_value(json_object_get(lincoln, "school_type")), "elementary");
        CHECK_INT(json_integer_value(json_object_get(lincoln, "circuit_bps")), 1000000000);
        CHECK_INT(json_integer_value(json_object_get(lincoln, "baseline_year")), 2021);
        CHECK(json_is_true(json_object_get(json_object_get(lincoln, "agent"), "enrolled")));
    }
    /* Unknown rate -> null; no agent -> null. */
    CHECK(json_is_null(json_object_get(json_array_get(arr, 2), "circuit_bps")));
    CHECK(json_is_null(json_object_get(json_array_get(arr, 2), "agent")));
    json_decref(arr);

    CHECK_INT(np_state_db_site_json(db, "school-9999", &one, &err), 0);
    CHECK_STR(json_string_value(json_object_get(one, "name")), "Washington High");
    CHECK_INT(json_array_size(json_object_get(one, "interfaces")), 0);
    json_decref(one);
    CHECK_INT(np_state_db_site_json(db, "school-0000", &one, &err), -ENOENT);
    CHECK(one == NULL);
    CHECK_INT(np_state_db_site_json(db, "../etc", &one, &err), -EINVAL);

    /* A caller transaction rolled back leaves nothing. */
    CHECK_INT(np_state_db_begin(db, true, &err), 0);
    CHECK_INT(np_state_db_begin(db, true, &err), -EINVAL);
    s.id = "school-rollback";
    CHECK_INT(np_state_db_site_upsert(db, &s, &created, &err), 0);
    np_state_db_rollback(db);
    CHECK_INT(np_state_db_site_exists(db, "school-rollback", &err), -ENOENT);
    np_state_db_rollback(db); /* nothing open: harmless */
    np_state_db_close(db);
}

/* A batch with one device, two interface samples and events. */
static void apply_one(struct np_state_db *db, uint64_t seq, int64_t t, const char *alias,
                      int ev_type, int expect_ret, bool expect_applied)
{
    Netpulse__Batch b = NETPULSE__BATCH__INIT;
    Netpulse__Heartbeat hb = NETPULSE__HEARTBEAT__INIT;
    Netpulse__InterfaceSample s1 = NETPULSE__INTERFACE_SAMPLE__INIT;
    Netpulse__InterfaceSample s2 = NETPULSE__INTERFACE_SAMPLE__INIT;
    Netpulse__InterfaceSample *samples[] = {&s1, &s2};
    Netpulse__DeviceInfo d = NETPULSE__DEVICE_INFO__INIT;
    Netpulse__DeviceInfo *devices[] = {&d};
    Netpulse__Event e = NETPULSE__EVENT__INIT;
    Netpulse__Event *events[] = {&e};
    struct np_err err = {0};
    bool applied = !expect_applied;

    b.schema_version = 1;
    b.agent_id = "school-0412";
    b.seq = seq;
    b.created_ms = t + 500;
    b.heartbeat = &hb;
    s1.device = "edge";
    s1.if_index = 1;
    s1.if_name = "ge-0/0/0";
    s1.if_alias = (char *)alias;
    s1.if_descr = "uplink";
    s1.time_ms = t;
    s1.speed_bps = 1000000000;
    s1.oper_status = NETPULSE__IF_STATUS__IF_STATUS_UP;
    s2.device = "edge";
    s2.if_index = 7;
    s2.if_name = ""; /* old device without ifName */
    s2.if_alias = "";
    s2.if_descr = "eth7";
    s2.time_ms = t;
    d.device = "edge";
    d.time_ms = t;
    d.sys_name = "edge-rtr";
    d.sys_descr = "RouterOS";
    d.sys_object_id = "1.3.6.1.4.1.14988.1";
    e.type = ev_type;
    e.time_ms = t;
    e.device = "edge";
    e.subject = "ge-0/0/0";
    e.detail = "";
    b.n_samples = 2;
    b.samples = samples;
    b.n_devices = 1;
    b.devices = devices;
    b.n_events = ev_type ? 1 : 0;
    b.events = events;
    CHECK_INT(np_state_db_apply_batch(db, &b, &applied, &err), expect_ret);
    CHECK_INT(applied, expect_applied);
}

static void test_apply_batch(void)
{
    struct np_state_db *db = NULL;
    struct np_err err = {0};
    uint64_t seq = 99;
    json_t *site = NULL;
    const int64_t t0 = INT64_C(1790000000000);

    CHECK_INT(np_state_db_open(path, &db, &err), 0);
    CHECK_INT(np_state_db_applied_seq(db, "school-0412", &seq, &err), 0);
    CHECK_U64(seq, 0);

    apply_one(db, 1, t0, "to ISP", NETPULSE__EVENT_TYPE__EVENT_INTERFACE_DOWN, 0, true);
    CHECK_INT(np_state_db_applied_seq(db, "school-0412", &seq, &err), 0);
    CHECK_U64(seq, 1);
    CHECK_INT(sql_int("SELECT count(*) FROM interfaces"), 2);
    CHECK_INT(sql_int("SELECT count(*) FROM interfaces WHERE iface = 'ifindex-7'"), 1);
    CHECK_INT(sql_int("SELECT count(*) FROM events WHERE state = 'open'"), 1);

    /* Replays change nothing: same seq and an older one. */
    apply_one(db, 1, t0 + 60000, "CHANGED", NETPULSE__EVENT_TYPE__EVENT_INTERFACE_DOWN, 0, false);
    CHECK_INT(sql_int("SELECT count(*) FROM events"), 1);
    CHECK_INT(sql_int("SELECT count(*) FROM interfaces WHERE if_alias = 'CHANGED'"), 0);

    /* Next batch: the up closes the open down, alias updates, last seen moves. */
    apply_one(db, 5, t0 + 60000, "to ISP (new)", NETPULSE__EVENT_TYPE__EVENT_INTERFACE_UP, 0, true);
    CHECK_INT(sql_int("SELECT count(*) FROM events"), 1);
    CHECK_INT(sql_int("SELECT end_ms - start_ms FROM events WHERE state = 'closed'"), 60000);
    CHECK_INT(sql_int("SELECT count(*) FROM interfaces WHERE if_alias = 'to ISP (new)'"), 1);
    CHECK_INT(sql_int("SELECT last_seen_ms FROM interfaces WHERE iface = 'ge-0/0/0'"), t0 + 60000);
    CHECK_INT(sql_int("SELECT last_seen_ms FROM agents WHERE id = 'school-0412'"), t0 + 60500);
    apply_one(db, 3, t0, "old", 0, 0, false);
    CHECK_INT(np_state_db_applied_seq(db, "school-0412", &seq, &err), 0);
    CHECK_U64(seq, 5);

    /* A late batch (higher seq, older samples) does not roll descriptions back. */
    apply_one(db, 6, t0 - 3600000, "stale", NETPULSE__EVENT_TYPE__EVENT_DEVICE_RESTART, 0, true);
    CHECK_INT(sql_int("SELECT count(*) FROM interfaces WHERE if_alias = 'stale'"), 0);
    CHECK_INT(sql_int("SELECT first_seen_ms FROM interfaces WHERE iface = 'ge-0/0/0'"),
              t0 - 3600000);
    CHECK_INT(sql_int("SELECT count(*) FROM events WHERE state = 'info'"), 1);

    /* Unknown agent, seq 0: refused, nothing changed. */
    {
        Netpulse__Batch b = NETPULSE__BATCH__INIT;
        bool applied = true;
        b.agent_id = "school-unknown";
        b.seq = 1;
        CHECK_INT(np_state_db_apply_batch(db, &b, &applied, &err), -ENOENT);
        CHECK_INT(applied, 0);
        b.agent_id = "school-0412";
        b.seq = 0;
        CHECK_INT(np_state_db_apply_batch(db, &b, &applied, &err), -EINVAL);
        b.seq = UINT64_MAX;
        CHECK_INT(np_state_db_apply_batch(db, &b, &applied, &err), -EINVAL);
    }

    CHECK_INT(np_state_db_site_json(db, "school-0412", &site, &err), 0);
    CHECK_INT(json_array_size(json_object_get(site, "interfaces")), 2);
    CHECK_INT(json_array_size(json_object_get(site, "devices")), 1);
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(json_object_get(site, "devices"), 0), "sys_name")),
              "edge-rtr");
    CHECK_INT(json_array_size(json_object_get(site, "events")), 2);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(site, "agent"), "applied_seq")),
              6);
    json_decref(site);

    CHECK_INT(np_state_db_agent_seen(db, "nobody", t0, &err), -ENOENT);
    np_state_db_close(db);
}

/* The rows of a site's devices and interfaces, in insertion order, as one
 * string (the site column left out so that two sites compare). */
static void site_rows(const char *site, char *out, size_t len)
{
    char sql[1024];
    sqlite3 *c = NULL;
    sqlite3_stmt *st = NULL;
    out[0] = '\0';
    snprintf(sql, sizeof sql,
             "SELECT (SELECT group_concat(r, ';') FROM (SELECT printf('%%s|%%s|%%s|%%s|%%d|%%d',"
             " device, sys_name, sys_descr, sys_object_id, first_seen_ms, last_seen_ms) AS r"
             " FROM devices WHERE site_id = '%s' ORDER BY rowid)) || ' / ' ||"
             " (SELECT group_concat(r, ';') FROM (SELECT"
             " printf('%%s|%%s|%%s|%%d|%%s|%%s|%%s|%%d|%%d|%%d|%%d', device, iface, if_name,"
             " if_index, if_alias, if_descr, coalesce(speed_bps, 'null'), oper_status,"
             " admin_status, first_seen_ms, last_seen_ms) AS r"
             " FROM interfaces WHERE site_id = '%s' ORDER BY rowid))",
             site, site);
    if (sqlite3_open_v2(path, &c, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(c, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_text(st, 0)) {
        snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    sqlite3_close(c);
}

#define MANY 1500

static uint32_t lcg(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

/* Batches of many samples of the same interfaces (out of order, equal times,
 * speeds sometimes unknown, older than the rows now and then) leave the same
 * rows as the same samples applied one per batch, which is what one upsert
 * per sample did. */
static void test_apply_many_samples(void)
{
    static Netpulse__InterfaceSample s[MANY];
    static Netpulse__InterfaceSample *ps[MANY];
    static char names[MANY][16], aliases[MANY][16];
    static char rows_a[1 << 16], rows_b[1 << 16];
    static const char *const devices[] = {"edge", "core", "ap-hall"};
    char token[NP_STATE_DB_TOKEN_BUFSZ];
    struct np_state_db *db = NULL;
    struct np_err err = {0};
    const int64_t t0 = INT64_C(1790000000000);
    uint32_t rnd = 12345;
    bool applied = false;

    CHECK_INT(np_state_db_open(path, &db, &err), 0);
    CHECK_INT(np_state_db_agent_enrol(db, "school-many", token, sizeof token, &err), 0);
    CHECK_INT(np_state_db_agent_enrol(db, "school-each", token, sizeof token, &err), 0);
    uint64_t seq_each = 0;
    for (uint64_t round = 1; round <= 3; round++) {
        for (size_t i = 0; i < MANY; i++) {
            Netpulse__InterfaceSample init = NETPULSE__INTERFACE_SAMPLE__INIT;
            unsigned iface = lcg(&rnd) % 24;
            s[i] = init;
            s[i].device = (char *)devices[iface % 3];
            s[i].if_index = iface;
            snprintf(names[i], sizeof names[i], "ge-0/0/%u", iface);
            s[i].if_name = iface % 5 == 0 ? "" : names[i]; /* some without ifName */
            snprintf(aliases[i], sizeof aliases[i], "a%u", lcg(&rnd) % 1000);
            s[i].if_alias = aliases[i];
            s[i].if_descr = lcg(&rnd) % 2 ? "eth" : "port";
            /* Mostly later in each round; some fall before the rows' last seen. */
            s[i].time_ms = t0 + (int64_t)round * 3600000 + (int64_t)(lcg(&rnd) % 200) * 60000 -
                           (lcg(&rnd) % 8 == 0 ? 7200000 : 0);
            s[i].speed_bps = lcg(&rnd) % 3 == 0 ? 0 : (uint64_t)(1 + lcg(&rnd) % 10) * 100000000u;
            s[i].oper_status = 1 + lcg(&rnd) % 2;
            s[i].admin_status = 1 + lcg(&rnd) % 2;
            ps[i] = &s[i];
        }
        Netpulse__Batch b = NETPULSE__BATCH__INIT;
        b.schema_version = 1;
        b.agent_id = "school-many";
        b.seq = round;
        b.n_samples = MANY;
        b.samples = ps;
        CHECK_INT(np_state_db_apply_batch(db, &b, &applied, &err), 0);
        CHECK_INT(applied, 1);
        /* A replay of the batch changes nothing. */
        CHECK_INT(np_state_db_apply_batch(db, &b, &applied, &err), 0);
        CHECK_INT(applied, 0);
        CHECK_INT(np_state_db_begin(db, false, &err), 0);
        for (size_t i = 0; i < MANY; i++) {
            b.agent_id = "school-each";
            b.seq = ++seq_each;
            b.n_samples = 1;
            b.samples = &ps[i];
            CHECK_INT(np_state_db_apply_batch(db, &b, &applied, &err), 0);
        }
        CHECK_INT(np_state_db_commit(db, &err), 0);
        site_rows("school-many", rows_a, sizeof rows_a);
        site_rows("school-each", rows_b, sizeof rows_b);
        CHECK_INT(strlen(rows_a) > 1000, 1);
        CHECK_STR(rows_a, rows_b);
    }
    CHECK_INT(sql_int("SELECT count(*) FROM interfaces WHERE site_id = 'school-many'"), 24);
    CHECK_INT(sql_int("SELECT count(*) FROM devices WHERE site_id = 'school-many'"), 3);
    np_state_db_close(db);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/state.db", dir);
    test_ids();
    test_open_schema();
    test_newer_schema_refused();
    test_enrol_auth_revoke();
    test_sites();
    test_apply_batch();
    test_apply_many_samples();
    {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", dir);
        }
    }
    return check_done("test_state_db");
}
