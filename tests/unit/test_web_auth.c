/* Unit tests of web_auth: password KDF, user tables, sessions, CSRF. */
#include "web_auth.h"

#include "check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_passwords(void)
{
    char h[NP_WEB_AUTH_HASH_MAX], h2[NP_WEB_AUTH_HASH_MAX];
    CHECK_INT(np_web_auth_hash_password("correct horse", 1000, h, sizeof h), 0);
    CHECK(strncmp(h, "pbkdf2-sha256$1000$", 19) == 0);
    CHECK_INT(np_web_auth_verify_password("correct horse", h), 0);
    CHECK_INT(np_web_auth_verify_password("correct hors", h), NP_EAUTH);
    CHECK_INT(np_web_auth_verify_password("", h), NP_EAUTH);
    /* A new salt each time. */
    CHECK_INT(np_web_auth_hash_password("correct horse", 1000, h2, sizeof h2), 0);
    CHECK(strcmp(h, h2) != 0);
    CHECK_INT(np_web_auth_verify_password("correct horse", h2), 0);
    /* Malformed stored strings never verify. */
    static const char *const bad[] = {
        "",
        "pbkdf2-sha256$",
        "pbkdf2-sha256$0$AAAAAAAAAAAAAAAAAAAAAA$x",
        "md5$1$a$b",
        "pbkdf2-sha256$1000$short$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "pbkdf2-sha256$-1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "pbkdf2-sha256$1000$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT(np_web_auth_verify_password("x", bad[i]), NP_EAUTH);
    }
    /* Tampering with the stored hash breaks it. */
    size_t n = strlen(h);
    h[n - 2] = h[n - 2] == 'A' ? 'B' : 'A';
    CHECK_INT(np_web_auth_verify_password("correct horse", h), NP_EAUTH);
    CHECK_INT(np_web_auth_hash_password("x", 1000, h, 10), -EINVAL);
}

static void test_names(void)
{
    CHECK(np_web_auth_valid_name("alice"));
    CHECK(np_web_auth_valid_name("noc.admin@district-7"));
    CHECK(!np_web_auth_valid_name(""));
    CHECK(!np_web_auth_valid_name(".alice"));
    CHECK(!np_web_auth_valid_name("-alice"));
    CHECK(!np_web_auth_valid_name("al ice"));
    CHECK(!np_web_auth_valid_name("al'ice"));
    CHECK(!np_web_auth_valid_name("a/b"));
    char long_name[80];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    CHECK(!np_web_auth_valid_name(long_name));
}

static int count_users(const char *name, bool admin, int64_t created_ms, unsigned n_tokens,
                       void *ctx)
{
    (void)name;
    (void)admin;
    (void)created_ms;
    (void)n_tokens;
    ++*(int *)ctx;
    return 0;
}

static void test_users(void)
{
    char dir[] = "/tmp/np-web-auth-XXXXXX", path[64], h[NP_WEB_AUTH_HASH_MAX];
    char tok[NP_WEB_AUTH_TOKEN_BUFSZ];
    struct np_web_users *u = NULL;
    struct np_err err = {0};
    bool admin = false;
    int n = 0;
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/state.db", dir);
    CHECK_INT(np_web_users_open(path, &u, &err), 0);
    CHECK_INT(np_web_auth_hash_password("s3cret-pass", 1000, h, sizeof h), 0);
    CHECK_INT(np_web_users_add(u, "alice", true, h, false, &err), 0);
    CHECK_INT(np_web_users_add(u, "alice", false, h, false, &err), -EEXIST);
    CHECK_INT(np_web_users_add(u, "bob", false, h, false, &err), 0);
    CHECK_INT(np_web_users_add(u, "bad name", false, h, false, &err), -EINVAL);
    CHECK_INT(np_web_users_add(u, "carol", false, "plain", false, &err), -EINVAL);
    CHECK_INT(np_web_users_login(u, "alice", "s3cret-pass", &admin, &err), 0);
    CHECK(admin);
    CHECK_INT(np_web_users_login(u, "alice", "wrong", &admin, &err), NP_EAUTH);
    CHECK_INT(np_web_users_login(u, "nobody", "s3cret-pass", &admin, &err), NP_EAUTH);
    CHECK_INT(np_web_users_login(u, "bob", "s3cret-pass", &admin, &err), 0);
    CHECK(!admin);
    /* replace: a new password and flag */
    CHECK_INT(np_web_auth_hash_password("other-pass", 1000, h, sizeof h), 0);
    CHECK_INT(np_web_users_add(u, "bob", true, h, true, &err), 0);
    CHECK_INT(np_web_users_login(u, "bob", "s3cret-pass", &admin, &err), NP_EAUTH);
    CHECK_INT(np_web_users_login(u, "bob", "other-pass", &admin, &err), 0);
    CHECK(admin);
    CHECK_INT(np_web_users_token_new(u, "alice", tok, sizeof tok, &err), 0);
    CHECK_INT((long long)strlen(tok), NP_WEB_AUTH_TOKEN_BUFSZ - 1);
    CHECK(strncmp(tok, "npu_", 4) == 0);
    CHECK_INT(np_web_users_token_new(u, "nobody", tok, sizeof tok, &err), -ENOENT);
    CHECK_INT(np_web_users_list(u, count_users, &n, &err), 0);
    CHECK_INT(n, 2);
    CHECK_INT(np_web_users_delete(u, "alice", &err), 0);
    CHECK_INT(np_web_users_delete(u, "alice", &err), -ENOENT);
    n = 0;
    CHECK_INT(np_web_users_list(u, count_users, &n, &err), 0);
    CHECK_INT(n, 1);
    np_web_users_close(u);
    unlink(path);
    char p2[80];
    snprintf(p2, sizeof p2, "%s-wal", path);
    unlink(p2);
    snprintf(p2, sizeof p2, "%s-shm", path);
    unlink(p2);
    rmdir(dir);
}

static void test_sessions(void)
{
    struct np_web_sessions s;
    const struct np_web_session *a = NULL, *b = NULL;
    char ida[NP_WEB_AUTH_TOKEN_BUFSZ], idb[NP_WEB_AUTH_TOKEN_BUFSZ];
    np_web_sessions_init(&s, 1000, 5000); /* idle 1 s, at most 5 s */
    CHECK_INT(np_web_sessions_create(&s, "alice", true, 10000, &a), 0);
    snprintf(ida, sizeof ida, "%s", a->id);
    CHECK_INT(np_web_sessions_create(&s, "bob", false, 10000, &b), 0);
    snprintf(idb, sizeof idb, "%s", b->id);
    CHECK(strcmp(ida, idb) != 0);
    CHECK_INT((long long)strlen(ida), 43);
    /* Found, refreshes use. */
    a = np_web_sessions_find(&s, ida, strlen(ida), 10900);
    CHECK(a && strcmp(a->user, "alice") == 0 && a->admin);
    a = np_web_sessions_find(&s, ida, strlen(ida), 11800);
    CHECK(a != NULL);
    /* A prefix, a longer id or a changed byte is not the session. */
    CHECK(np_web_sessions_find(&s, ida, strlen(ida) - 1, 11800) == NULL);
    char other[NP_WEB_AUTH_TOKEN_BUFSZ];
    snprintf(other, sizeof other, "%s", ida);
    other[5] = other[5] == 'x' ? 'y' : 'x';
    CHECK(np_web_sessions_find(&s, other, strlen(other), 11800) == NULL);
    /* Idle expiry: bob unused since 10000. */
    CHECK(np_web_sessions_find(&s, idb, strlen(idb), 11000) == NULL);
    CHECK(np_web_sessions_find(&s, idb, strlen(idb), 11001) == NULL);
    /* Absolute expiry even when used all the time. */
    for (int64_t t = 12000; t < 15000; t += 500) {
        CHECK(np_web_sessions_find(&s, ida, strlen(ida), t) != NULL);
    }
    CHECK(np_web_sessions_find(&s, ida, strlen(ida), 15000) == NULL);
    /* Drop. */
    CHECK_INT(np_web_sessions_create(&s, "carol", false, 20000, &a), 0);
    snprintf(ida, sizeof ida, "%s", a->id);
    np_web_sessions_drop(&s, ida, strlen(ida));
    CHECK(np_web_sessions_find(&s, ida, strlen(ida), 20001) == NULL);
    np_web_sessions_clear(&s);
}

static void test_csrf(void)
{
    struct np_web_sessions s;
    const struct np_web_session *a = NULL;
    np_web_sessions_init(&s, 0, 0);
    CHECK_INT(np_web_sessions_create(&s, "alice", true, 1000, &a), 0);
    const char *t = a->csrf, *host = "dash.example.org:8443";
    size_t hl = strlen(host);
    CHECK(np_web_auth_csrf_ok(a, t, strlen(t), NULL, 0, host, hl));
    CHECK(np_web_auth_csrf_ok(a, t, strlen(t), "https://dash.example.org:8443", 29, host, hl));
    CHECK(!np_web_auth_csrf_ok(a, NULL, 0, NULL, 0, host, hl));
    CHECK(!np_web_auth_csrf_ok(a, "", 0, NULL, 0, host, hl));
    CHECK(!np_web_auth_csrf_ok(a, t, strlen(t) - 1, NULL, 0, host, hl));
    CHECK(!np_web_auth_csrf_ok(a, a->id, strlen(a->id), NULL, 0, host, hl));
    CHECK(!np_web_auth_csrf_ok(a, t, strlen(t), "https://evil.example", 20, host, hl));
    CHECK(!np_web_auth_csrf_ok(a, t, strlen(t), "https://dash.example.org", 24, host, hl));
    CHECK(
        !np_web_auth_csrf_ok(a, t, strlen(t), "https://dash.example.org:8443.evil", 34, host, hl));
    CHECK(!np_web_auth_csrf_ok(a, t, strlen(t), "null", 4, host, hl));
    CHECK(!np_web_auth_csrf_ok(NULL, t, strlen(t), NULL, 0, host, hl));
    np_web_sessions_clear(&s);
}

int main(void)
{
    test_passwords();
    test_names();
    test_users();
    test_sessions();
    test_csrf();
    return check_failures != 0;
}
