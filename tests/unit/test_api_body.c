/* Unit tests of api_body: the maintenance body, the login form, next=,
 * cookies and the Origin check. Bad input must be refused with a message
 * that names the field. */
#include "api_body.h"

#include "check.h"

#include <errno.h>
#include <string.h>

static int maint(const char *body, struct np_api_maint *m, struct np_err *err)
{
    memset(err, 0, sizeof *err);
    return np_api_body_maint(body, strlen(body), m, err);
}

static void test_maint_good(void)
{
    struct np_api_maint m;
    struct np_err err;
    CHECK_INT(maint("{\"from\": 1700000000, \"to\": 1700003600, \"reason\": \"switch upgrade\"}",
                    &m, &err),
              0);
    CHECK_INT(m.start_ms, 1700000000000LL);
    CHECK_INT(m.end_ms, 1700003600000LL);
    CHECK_STR(m.reason, "switch upgrade");
    /* Text times are UTC, with or without a Z, in any order of keys. */
    CHECK_INT(maint("{\"reason\": \"fibre\", \"to\": \"2024-03-01T11:30Z\", "
                    "\"from\": \"2024-03-01T10:00\"}",
                    &m, &err),
              0);
    CHECK_INT(m.start_ms, 1709287200000LL);
    CHECK_INT(m.end_ms, 1709292600000LL);
    CHECK_INT(
        maint("{\"from\": \"2024-02-29\", \"to\": \"2024-03-01\", \"reason\": \"é\"}", &m, &err),
        0);
    CHECK_INT(m.end_ms - m.start_ms, 86400000LL);
    char big[700];
    int n = snprintf(big, sizeof big, "{\"from\": 0, \"to\": 1, \"reason\": \"%0500d\"}", 0);
    CHECK(n > 0 && (size_t)n < sizeof big);
    CHECK_INT(maint(big, &m, &err), 0);
    CHECK_INT(strlen(m.reason), 500);
}

static void test_maint_bad(void)
{
    static const struct {
        const char *body, *field; /* the message starts with field */
    } cases[] = {
        {"", "body:"},
        {"not json", "body:"},
        {"[1, 2]", "body:"},
        {"\"x\"", "body:"},
        {"{\"from\": 1, \"from\": 2, \"to\": 3, \"reason\": \"x\"}", "body:"},
        {"{\"to\": 60, \"reason\": \"x\"}", "from: missing"},
        {"{\"from\": 0, \"reason\": \"x\"}", "to: missing"},
        {"{\"from\": 0, \"to\": 60}", "reason: missing"},
        {"{\"from\": -1, \"to\": 60, \"reason\": \"x\"}", "from:"},
        {"{\"from\": 1.5, \"to\": 60, \"reason\": \"x\"}", "from:"},
        {"{\"from\": \"2024-13-01\", \"to\": 60, \"reason\": \"x\"}", "from:"},
        {"{\"from\": 0, \"to\": \"tomorrow\", \"reason\": \"x\"}", "to:"},
        {"{\"from\": 0, \"to\": 99999999999999999, \"reason\": \"x\"}", "to:"},
        {"{\"from\": 0, \"to\": null, \"reason\": \"x\"}", "to:"},
        {"{\"from\": 60, \"to\": 60, \"reason\": \"x\"}", "to: must be after from"},
        {"{\"from\": 120, \"to\": 60, \"reason\": \"x\"}", "to: must be after from"},
        {"{\"from\": 0, \"to\": 60, \"reason\": \"\"}", "reason:"},
        {"{\"from\": 0, \"to\": 60, \"reason\": 7}", "reason:"},
        {"{\"from\": 0, \"to\": 60, \"reason\": \"a\\nb\"}", "reason:"},
        {"{\"from\": 0, \"to\": 60, \"reason\": \"a\\u0000b\"}", "body:"},
        {"{\"from\": 0, \"to\": 60, \"reason\": \"a\\u007fb\"}", "reason:"},
        {"{\"from\": 0, \"to\": 60, \"reason\": \"x\", \"site\": \"y\"}", "site: unknown field"},
        /* Found by the fuzzer: a key is echoed only when plain. */
        {"{\"a\\nb\": 1}", "body: unknown field"},
        {"{\"a b\": 1}", "body: unknown field"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct np_api_maint m = {.start_ms = 42};
        struct np_err err;
        int rc = maint(cases[i].body, &m, &err);
        if (rc != -EINVAL || strncmp(err.msg, cases[i].field, strlen(cases[i].field)) != 0) {
            fprintf(stderr, "case %zu: %s -> %d \"%s\", want \"%s...\"\n", i, cases[i].body, rc,
                    err.msg, cases[i].field);
            check_failures++;
        }
        CHECK_INT(m.start_ms, 42); /* untouched on error */
    }
    char big[700];
    snprintf(big, sizeof big, "{\"from\": 0, \"to\": 1, \"reason\": \"%0501d\"}", 0);
    struct np_api_maint m;
    struct np_err err;
    CHECK_INT(maint(big, &m, &err), -EINVAL);
    CHECK(strncmp(err.msg, "reason:", 7) == 0);
    char huge[NP_API_BODY_MAX + 2];
    memset(huge, ' ', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    CHECK_INT(maint(huge, &m, &err), -EINVAL);
    CHECK(strncmp(err.msg, "body:", 5) == 0);
}

static int login(const char *body, struct np_api_login *l, struct np_err *err)
{
    memset(err, 0, sizeof *err);
    return np_api_body_login(body, strlen(body), l, err);
}

static void test_login(void)
{
    struct np_api_login l;
    struct np_err err;
    CHECK_INT(
        login("user=noc.admin%40district-7&password=a+b%26c&next=%2Fsites%2Foak-es", &l, &err), 0);
    CHECK_STR(l.user, "noc.admin@district-7");
    CHECK_STR(l.password, "a b&c");
    CHECK_STR(l.next, "/sites/oak-es");
    /* next is optional; an unsafe one is dropped, not an error. */
    CHECK_INT(login("password=x&user=alice", &l, &err), 0);
    CHECK_STR(l.next, "");
    static const char *const unsafe[] = {"next=%2F%2Fevil.example", "next=https%3A%2F%2Fe.x",
                                         "next=relative", "next=%2Fa%3Fb", "next="};
    for (size_t i = 0; i < sizeof unsafe / sizeof unsafe[0]; i++) {
        char body[200];
        snprintf(body, sizeof body, "user=alice&password=x&%s", unsafe[i]);
        CHECK_INT(login(body, &l, &err), 0);
        CHECK_STR(l.next, "");
    }
    static const struct {
        const char *body, *field;
    } bad[] = {
        {"", "user: missing"},
        {"password=x", "user: missing"},
        {"user=&password=x", "user:"},
        {"user=.alice&password=x", "user:"},
        {"user=al%20ice&password=x", "user:"},
        {"user=alice", "password: missing"},
        {"user=alice&password=", "password:"},
        {"user=alice&password=%zz", "password:"},
        {"user=alice&password=a%00b", "password:"},
        {"user=alice&password=x&next=%2", "next:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = login(bad[i].body, &l, &err);
        if (rc != -EINVAL || strncmp(err.msg, bad[i].field, strlen(bad[i].field)) != 0) {
            fprintf(stderr, "login case %zu: %s -> %d \"%s\", want \"%s...\"\n", i, bad[i].body, rc,
                    err.msg, bad[i].field);
            check_failures++;
        }
        CHECK_STR(l.password, ""); /* nothing left behind */
    }
    /* A password of 1023 bytes fits, 1024 does not. */
    static char body[1200];
    int n = snprintf(body, sizeof body, "user=a&password=");
    memset(body + n, 'p', NP_API_LOGIN_VALUE_MAX - 1);
    body[n + NP_API_LOGIN_VALUE_MAX - 1] = '\0';
    CHECK_INT(login(body, &l, &err), 0);
    CHECK_INT(strlen(l.password), NP_API_LOGIN_VALUE_MAX - 1);
    body[n + NP_API_LOGIN_VALUE_MAX - 1] = 'p';
    body[n + NP_API_LOGIN_VALUE_MAX] = '\0';
    CHECK_INT(login(body, &l, &err), -EINVAL);
    CHECK(strncmp(err.msg, "password:", 9) == 0);
}

static void test_next(void)
{
    CHECK(np_api_body_next_ok("/", 1));
    CHECK(np_api_body_next_ok("/sites/oak-es", 13));
    CHECK(!np_api_body_next_ok("", 0));
    CHECK(!np_api_body_next_ok("//evil", 6));
    CHECK(!np_api_body_next_ok("/\\evil", 6));
    CHECK(!np_api_body_next_ok("sites", 5));
    CHECK(!np_api_body_next_ok("/a?b=1", 6));
    CHECK(!np_api_body_next_ok("/a%2F", 5));
    CHECK(!np_api_body_next_ok("/a\0b", 4));
    char long_path[NP_API_NEXT_MAX + 2];
    memset(long_path, 'a', sizeof long_path);
    long_path[0] = '/';
    CHECK(np_api_body_next_ok(long_path, NP_API_NEXT_MAX));
    CHECK(!np_api_body_next_ok(long_path, NP_API_NEXT_MAX + 1));
}

static void test_cookie(void)
{
    static const struct {
        const char *header, *value; /* NULL: absent */
    } cases[] = {
        {"np_session=abc", "abc"},     {"a=1; np_session=abc; b=2", "abc"},
        {"a=1;np_session=abc", "abc"}, {"xnp_session=abc", NULL},
        {"np_sessionx=abc", NULL},     {"np_session", NULL},
        {"np_session=", ""},           {"", NULL},
        {"a=np_session=abc", NULL},    {";;; np_session=z;", "z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t off = 0, len = 0;
        const char *h = cases[i].header;
        int found = np_api_body_cookie(h, strlen(h), "np_session", &off, &len);
        CHECK_INT(found, cases[i].value != NULL);
        if (found && cases[i].value) {
            CHECK_INT(len, strlen(cases[i].value));
            CHECK(memcmp(h + off, cases[i].value, len) == 0);
        }
    }
    size_t off, len;
    CHECK_INT(np_api_body_cookie(NULL, 0, "np_session", &off, &len), 0);
}

static void test_origin(void)
{
    static const char auth[] = "127.0.0.1:8443";
    const size_t al = sizeof auth - 1;
#define ORIGIN_OK(o) np_api_body_origin_ok(o, strlen(o), auth, al)
    CHECK(ORIGIN_OK("https://127.0.0.1:8443"));
    CHECK(ORIGIN_OK("http://127.0.0.1:8443"));
    CHECK(!ORIGIN_OK("https://127.0.0.1:8444"));
    CHECK(!ORIGIN_OK("https://127.0.0.1:8443/"));
    CHECK(!ORIGIN_OK("https://evil.example"));
    CHECK(!ORIGIN_OK("ftp://127.0.0.1:8443"));
    CHECK(!ORIGIN_OK("127.0.0.1:8443"));
    CHECK(!ORIGIN_OK("null"));
    CHECK(!ORIGIN_OK("https://"));
#undef ORIGIN_OK
    CHECK(!np_api_body_origin_ok("https://", 8, "", 0));
    CHECK(!np_api_body_origin_ok(NULL, 0, auth, al));
}

int main(void)
{
    test_maint_good();
    test_maint_bad();
    test_login();
    test_next();
    test_cookie();
    test_origin();
    if (check_failures) {
        fprintf(stderr, "%d check(s) failed\n", check_failures);
    }
    return check_failures != 0;
}
