/* site_import: RFC 4180 CSV into state_db; every error names FILE:LINE:COLUMN
 * and nothing of a bad file is imported. Real SQLite file in a temp folder. */
#include "site_import.h"

#include "check.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

static char dir[] = "/tmp/np_test_site_import.XXXXXX";
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

static char *sql_text(const char *sql)
{
    sqlite3 *c = NULL;
    sqlite3_stmt *st = NULL;
    char *v = NULL;
    if (sqlite3_open_v2(path, &c, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(c, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        v = strdup(t ? (const char *)t : "(null)");
    }
    sqlite3_finalize(st);
    sqlite3_close(c);
    return v;
}

#define CHECK_SQL_STR(sql, want)                                                                   \
    do {                                                                                           \
        char *got_ = sql_text(sql);                                                                \
        CHECK_STR(got_, want);                                                                     \
        free(got_);                                                                                \
    } while (0)

static void test_good_file(struct np_state_db *db)
{
    /* BOM, CRLF, a blank line, columns in another order and case, quoted
     * cells with commas, doubled quotes and a line break, spaces around
     * rates, an empty optional cell, a stub site replaced. */
    static const char csv[] =
        "\xef\xbb\xbf"
        "ID,School_Type,name,circuit_rate,baseline_rate,baseline_year,contacts\r\n"
        "school-0412,elementary,\"Lincoln Elementary, North Campus\",1Gbps, 100Mbps ,2021,"
        "\"it@lincoln.example.org\r\nprincipal@lincoln.example.org\"\r\n"
        "\r\n"
        "school-0007,HIGH,\"Washington \"\"Wash\"\" High\",10Gbps,1.5Gbps,2020,\r\n"
        "school-0100,middle,Jefferson Middle,,,,\r\n";
    struct np_site_import_result res;
    struct np_err err = {0};
    char token[NP_STATE_DB_TOKEN_BUFSZ];

    CHECK_INT(np_state_db_agent_enrol(db, "school-0100", token, sizeof token, &err), 0);
    CHECK_INT(np_site_import_buffer(db, csv, sizeof csv - 1, "sites.csv", &res, &err), 0);
    if (err.msg[0]) {
        fprintf(stderr, "unexpected error: %s\n", err.msg);
    }
    CHECK_INT(res.rows, 3);
    CHECK_INT(res.created, 2);
    CHECK_INT(res.updated, 1);
    CHECK_SQL_STR("SELECT name FROM sites WHERE id = 'school-0412'",
                  "Lincoln Elementary, North Campus");
    CHECK_SQL_STR("SELECT contacts FROM sites WHERE id = 'school-0412'",
                  "it@lincoln.example.org\r\nprincipal@lincoln.example.org");
    CHECK_INT(sql_int("SELECT circuit_bps FROM sites WHERE id = 'school-0412'"), 1000000000);
    CHECK_INT(sql_int("SELECT baseline_bps FROM sites WHERE id = 'school-0412'"), 100000000);
    CHECK_INT(sql_int("SELECT baseline_year FROM sites WHERE id = 'school-0412'"), 2021);
    CHECK_SQL_STR("SELECT name FROM sites WHERE id = 'school-0007'", "Washington \"Wash\" High");
    CHECK_SQL_STR("SELECT school_type FROM sites WHERE id = 'school-0007'", "high");
    CHECK_INT(sql_int("SELECT baseline_bps FROM sites WHERE id = 'school-0007'"), 1500000000);
    CHECK_INT(sql_int("SELECT circuit_bps IS NULL FROM sites WHERE id = 'school-0100'"), 1);
    CHECK_INT(sql_int("SELECT stub FROM sites WHERE id = 'school-0100'"), 0);
    CHECK_INT(sql_int("SELECT count(*) FROM sites"), 3);

    /* Importing again updates in place; only the required columns, no final
     * line break. */
    static const char again[] = "id,name,school_type\nschool-0007,Washington High,high";
    CHECK_INT(np_site_import_buffer(db, again, sizeof again - 1, "again.csv", &res, &err), 0);
    CHECK_INT(res.rows, 1);
    CHECK_INT(res.updated, 1);
    CHECK_SQL_STR("SELECT name FROM sites WHERE id = 'school-0007'", "Washington High");
    CHECK_INT(sql_int("SELECT count(*) FROM sites"), 3);

    /* A header alone imports nothing and is fine. */
    CHECK_INT(np_site_import_buffer(db, "id,name,school_type\n", 20, "h.csv", &res, &err), 0);
    CHECK_INT(res.rows, 0);
}

#define H "id,name,school_type,circuit_rate,baseline_rate,baseline_year,contacts\n"
/* A valid row that updates the existing site, to prove the rollback. */
#define GOOD "school-0007,CHANGED,high,,,,\n"

static const struct {
    const char *csv;
    const char *where; /* "sites.csv:LINE:COL: " */
    const char *what;
    int code;
} bad[] = {
    {"", "sites.csv:1:1: ", "no header row", NP_ECONFIG},
    {"id,name,school_type,colour\n", "sites.csv:1:21: ", "unknown column \"colour\"", NP_ECONFIG},
    {"id,name,ID,school_type\n", "sites.csv:1:9: ", "column \"id\" given twice", NP_ECONFIG},
    {"id,name\ns,n\n", "sites.csv:1:1: ", "missing column \"school_type\"", NP_ECONFIG},
    {H GOOD "s2,Foo,college,,,,\n", "sites.csv:3:8: ", "school_type \"college\"", NP_ECONFIG},
    {H GOOD "s2,Foo,high,1000,,,\n", "sites.csv:3:13: ", "give a unit", NP_ECONFIG},
    {H GOOD "s2,Foo,high,fast,,,\n", "sites.csv:3:13: ", "not a rate", NP_ECONFIG},
    {H GOOD "s2,Foo,high,1GBps,,,\n", "sites.csv:3:13: ", "not a rate", NP_ECONFIG},
    {H GOOD "s2,Foo,high,0Mbps,,,\n", "sites.csv:3:13: ", "0 is not a rate", NP_ECONFIG},
    {H GOOD "s2,Foo,high,1Gbps,-5Mbps,,\n", "sites.csv:3:19: ", "baseline_rate", NP_ECONFIG},
    {H GOOD "s2,Foo,high,,,19x,\n", "sites.csv:3:15: ", "baseline_year \"19x\"", NP_ECONFIG},
    {H GOOD "s2,Foo,high,,,1850,\n", "sites.csv:3:15: ", "1990 to 2100", NP_ECONFIG},
    {H GOOD "a/b,Foo,high,,,,\n", "sites.csv:3:1: ", "id \"a/b\"", NP_ECONFIG},
    {H GOOD "../x,Foo,high,,,,\n", "sites.csv:3:1: ", "id \"../x\"", NP_ECONFIG},
    {H GOOD ",Foo,high,,,,\n", "sites.csv:3:1: ", "id \"\"", NP_ECONFIG},
    {H GOOD "s2,,high,,,,\n", "sites.csv:3:4: ", "name is empty", NP_ECONFIG},
    {H GOOD "s2,Foo,high,,,,,extra\n", "sites.csv:3:17: ", "row has 8 cells, the header has 7",
     NP_ECONFIG},
    {H GOOD "s2,Foo,high\n", "sites.csv:3:8: ", "row has 3 cells", NP_ECONFIG},
    {H GOOD "s2,Fo\"o,high,,,,\n", "sites.csv:3:6: ", "malformed quoting", NP_ECONFIG},
    {H GOOD "s2,\"Foo\"x,high,,,,\n", "sites.csv:3:9: ", "malformed quoting", NP_ECONFIG},
    {H GOOD "s2,\"Foo,high,,,,\n", "sites.csv:3:4: ", "quoted cell not closed", NP_ECONFIG},
    {H GOOD "s2,Foo,high,,,,\ns3,Bar,high,,,,\ns2,Baz,high,,,,\n",
     "sites.csv:5:1: ", "id \"s2\" already on line 3", NP_ECONFIG},
    /* A cell with line breaks: the rows after it keep their real line numbers. */
    {H GOOD "s2,Foo,high,,,,\"a@x.org\nb@x.org\n\"\ns3,Bar,hihg,,,,\n",
     "sites.csv:6:8: ", "school_type \"hihg\"", NP_ECONFIG},
    /* Columns count characters, not bytes. */
    {H GOOD "s2,École,hihg,,,,\n", "sites.csv:3:10: ", "school_type", NP_ECONFIG},
    {H GOOD "s2,Caf\xe9,high,,,,\n", "sites.csv:3:7: ", "not UTF-8", NP_ECONFIG},
    {H GOOD "s2,Foo\x01,high,,,,\n", "sites.csv:3:7: ", "control character", NP_ECONFIG},
    {H GOOD "s2,\"Foo\nBar\",high,,,,\n", "sites.csv:3:7: ", "name: control character", NP_ECONFIG},
};

static void test_bad_files(struct np_state_db *db)
{
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct np_site_import_result res = {.rows = 99};
        struct np_err err = {0};
        int64_t before = sql_int("SELECT count(*) FROM sites");
        int ret =
            np_site_import_buffer(db, bad[i].csv, strlen(bad[i].csv), "sites.csv", &res, &err);
        if (ret != bad[i].code || strncmp(err.msg, bad[i].where, strlen(bad[i].where)) != 0 ||
            !strstr(err.msg, bad[i].what)) {
            fprintf(stderr, "case %zu: ret %d, message \"%s\"; wanted %d \"%s...%s\"\n", i, ret,
                    err.msg, bad[i].code, bad[i].where, bad[i].what);
            check_failures++;
        }
        CHECK_INT(res.rows, 0);
        /* Nothing imported: no new site, the existing one not changed. */
        CHECK_INT(sql_int("SELECT count(*) FROM sites"), before);
        CHECK_SQL_STR("SELECT name FROM sites WHERE id = 'school-0007'", "Washington High");
    }
    /* An embedded NUL byte. */
    {
        static const char nul[] = "id,name,school_type\ns2,F\0o,high\n";
        struct np_err err = {0};
        CHECK_INT(np_site_import_buffer(db, nul, sizeof nul - 1, "sites.csv", NULL, &err),
                  NP_ECONFIG);
        CHECK_CONTAINS(err.msg, "sites.csv:2:5: NUL byte");
    }
}

static void test_files(struct np_state_db *db)
{
    char csv[300];
    FILE *f;
    struct np_err err = {0};
    struct np_site_import_result res;

    CHECK_INT(np_site_import_file(db, "/nonexistent/sites.csv", &res, &err), -ENOENT);
    CHECK_CONTAINS(err.msg, "/nonexistent/sites.csv");
    CHECK_INT(np_site_import_file(db, dir, &res, &err), -EINVAL);

    snprintf(csv, sizeof csv, "%s/sites.csv", dir);
    f = fopen(csv, "w");
    CHECK(f != NULL);
    if (!f) {
        return;
    }
    fputs("id,name,school_type,circuit_rate\nschool-0500,Adams Elementary,elementary,500Mbps\n"
          "school-0501,Adams Annex,other,oops\n",
          f);
    fclose(f);
    CHECK_INT(np_site_import_file(db, csv, &res, &err), NP_ECONFIG);
    {
        char want[400];
        snprintf(want, sizeof want, "%s:3:31: circuit_rate \"oops\"", csv);
        CHECK_CONTAINS(err.msg, want);
    }
    CHECK_INT(np_state_db_site_exists(db, "school-0500", &err), -ENOENT);
}

int main(void)
{
    struct np_state_db *db = NULL;
    struct np_err err = {0};
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/state.db", dir);
    CHECK_INT(np_state_db_open(path, &db, &err), 0);
    if (db) {
        test_good_file(db);
        test_bad_files(db);
        test_files(db);
        np_state_db_close(db);
    }
    {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", dir);
        }
    }
    return check_done("test_site_import");
}
