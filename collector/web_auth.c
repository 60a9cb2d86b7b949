/* web_auth: users, sessions, tokens, CSRF and the access guard; see web_auth.h. */
#include "web_auth.h"

#include "api_body.h"

#include "netpulse/clock.h"
#include "netpulse/log.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sqlite3.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT_LEN 16
#define KEY_LEN 32
#define COOKIE_NAME "np_session"
#define TOKEN_PREFIX "npu_"
#define PASSWORD_MAX NP_API_LOGIN_VALUE_MAX
#define MAX_LOGINS_RUNNING 4 /* the KDF is CPU-heavy: bound what a flood costs */

/* ---- base64url (RFC 4648 §5, no padding) ---- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n) {
            v |= (unsigned)in[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= in[i + 2];
        }
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        if (i + 1 < n) {
            out[o++] = b64url[(v >> 6) & 63];
        }
        if (i + 2 < n) {
            out[o++] = b64url[v & 63];
        }
    }
    out[o] = '\0';
    return o;
}

static int b64_val(char c)
{
    const char *p = c ? strchr(b64url, c) : NULL;
    return p ? (int)(p - b64url) : -1;
}

/* Decodes exactly n output bytes from in (length in_len); -1 when malformed. */
static int b64_decode(const char *in, size_t in_len, unsigned char *out, size_t n)
{
    if (in_len != (n * 4 + 2) / 3) {
        return -1;
    }
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < in_len; i++) {
        int v = b64_val(in[i]);
        if (v < 0) {
            return -1;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o < n) {
                out[o++] = (unsigned char)(acc >> bits);
            }
        }
    }
    return o == n ? 0 : -1;
}

static int random_token(const char *prefix, char *out, size_t len)
{
    unsigned char raw[32];
    size_t pl = strlen(prefix);
    if (len < pl + 44) {
        return -EINVAL;
    }
    if (RAND_bytes(raw, sizeof raw) != 1) {
        return -EIO;
    }
    memcpy(out, prefix, pl);
    b64_encode(raw, sizeof raw, out + pl);
    OPENSSL_cleanse(raw, sizeof raw);
    return 0;
}

/* ---- passwords ---- */

int np_web_auth_hash_password(const char *password, unsigned iterations, char *out, size_t len)
{
    unsigned char salt[SALT_LEN], key[KEY_LEN];
    char salt_s[32], key_s[48];
    if (!password || len < NP_WEB_AUTH_HASH_MAX) {
        return -EINVAL;
    }
    if (iterations == 0) {
        iterations = NP_WEB_AUTH_ITERATIONS;
    }
    if (iterations > 100000000u || RAND_bytes(salt, sizeof salt) != 1) {
        return iterations > 100000000u ? -EINVAL : -EIO;
    }
    if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, sizeof salt, (int)iterations,
                          EVP_sha256(), sizeof key, key) != 1) {
        return -EIO;
    }
    b64_encode(salt, sizeof salt, salt_s);
    b64_encode(key, sizeof key, key_s);
    OPENSSL_cleanse(key, sizeof key);
    snprintf(out, len, "pbkdf2-sha256$%u$%s$%s", iterations, salt_s, key_s);
    return 0;
}

int np_web_auth_verify_password(const char *password, const char *stored)
{
    static const char scheme[] = "pbkdf2-sha256$";
    unsigned char salt[SALT_LEN], want[KEY_LEN], got[KEY_LEN];
    if (!password || !stored || strncmp(stored, scheme, sizeof scheme - 1) != 0) {
        return NP_EAUTH;
    }
    const char *p = stored + sizeof scheme - 1;
    char *end;
    errno = 0;
    unsigned long iter = strtoul(p, &end, 10);
    if (errno || end == p || *end != '$' || iter == 0 || iter > 100000000ul || *p < '1' ||
        *p > '9') {
        return NP_EAUTH;
    }
    const char *s = end + 1, *d = strchr(s, '$');
    if (!d || b64_decode(s, (size_t)(d - s), salt, sizeof salt) != 0 ||
        b64_decode(d + 1, strlen(d + 1), want, sizeof want) != 0) {
        return NP_EAUTH;
    }
    if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, sizeof salt, (int)iter,
                          EVP_sha256(), sizeof got, got) != 1) {
        return NP_EAUTH;
    }
    int ok = CRYPTO_memcmp(got, want, sizeof got) == 0;
    OPENSSL_cleanse(got, sizeof got);
    return ok ? 0 : NP_EAUTH;
}

bool np_web_auth_valid_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > NP_WEB_AUTH_NAME_MAX || name[0] == '.' || name[0] == '-') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '@')) {
            return false;
        }
    }
    return true;
}

static void sha256(const char *s, size_t n, unsigned char out[SHA256_DIGEST_LENGTH])
{
    SHA256((const unsigned char *)s, n, out);
}

/* ---- the user tables ---- */

struct np_web_users {
    sqlite3 *db;
};

static int db_fail(struct np_web_users *u, struct np_err *err, const char *what)
{
    return np_err_set(err, NP_EDB, "web_auth: %s: %s", what, sqlite3_errmsg(u->db));
}

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS web_users ("
    " name TEXT PRIMARY KEY, admin INTEGER NOT NULL, pw_hash TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS web_tokens ("
    " hash BLOB PRIMARY KEY, user TEXT NOT NULL REFERENCES web_users(name) ON DELETE CASCADE,"
    " created_ms INTEGER NOT NULL);";

int np_web_users_open(const char *path, struct np_web_users **out, struct np_err *err)
{
    *out = NULL;
    struct np_web_users *u = calloc(1, sizeof *u);
    if (!u) {
        return np_err_set(err, -ENOMEM, "web_auth: out of memory");
    }
    int rc = sqlite3_open_v2(
        path, &u->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = np_err_set(err, NP_EDB, "web_auth: cannot open %s: %s", path,
                        u->db ? sqlite3_errmsg(u->db) : sqlite3_errstr(rc));
        goto out_close;
    }
    sqlite3_busy_timeout(u->db, 5000);
    if (sqlite3_exec(u->db, "PRAGMA foreign_keys=ON; PRAGMA journal_mode=WAL;", NULL, NULL, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(u->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(u, err, "schema");
        goto out_close;
    }
    *out = u;
    return 0;

out_close:
    sqlite3_close(u->db);
    free(u);
    return rc;
}

void np_web_users_close(struct np_web_users *u)
{
    if (!u) {
        return;
    }
    sqlite3_close(u->db);
    free(u);
}

/* Prepares sql or fails with NP_EDB. */
static int prep(struct np_web_users *u, const char *sql, sqlite3_stmt **st, struct np_err *err)
{
    if (sqlite3_prepare_v2(u->db, sql, -1, st, NULL) != SQLITE_OK) {
        return db_fail(u, err, "prepare");
    }
    return 0;
}

int np_web_users_add(struct np_web_users *u, const char *name, bool admin, const char *hash,
                     bool replace, struct np_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (!np_web_auth_valid_name(name) || !hash || strncmp(hash, "pbkdf2-sha256$", 14) != 0) {
        return np_err_set(err, -EINVAL,
                          "web_auth: user name must be 1..64 of [A-Za-z0-9._@-], not starting "
                          "with '.' or '-'");
    }
    rc = prep(u,
              replace ? "INSERT INTO web_users(name, admin, pw_hash, created_ms) VALUES(?,?,?,?) "
                        "ON CONFLICT(name) DO UPDATE SET admin=excluded.admin, "
                        "pw_hash=excluded.pw_hash"
                      : "INSERT INTO web_users(name, admin, pw_hash, created_ms) VALUES(?,?,?,?)",
              &st, err);
    if (rc != 0) {
        return rc;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, admin ? 1 : 0);
    sqlite3_bind_text(st, 3, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, np_clock_wall_ms());
    int s = sqlite3_step(st);
    if (s == SQLITE_CONSTRAINT) {
        rc = np_err_set(err, -EEXIST, "web_auth: user %s exists", name);
    } else if (s != SQLITE_DONE) {
        rc = db_fail(u, err, "add user");
    }
    sqlite3_finalize(st);
    return rc;
}

int np_web_users_delete(struct np_web_users *u, const char *name, struct np_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(u, "DELETE FROM web_users WHERE name = ?", &st, err);
    if (rc != 0) {
        return rc;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(u, err, "delete user");
    } else if (sqlite3_changes(u->db) == 0) {
        rc = np_err_set(err, -ENOENT, "web_auth: no user %s", name);
    }
    sqlite3_finalize(st);
    return rc;
}

int np_web_users_token_new(struct np_web_users *u, const char *name, char *token_out, size_t len,
                           struct np_err *err)
{
    sqlite3_stmt *st = NULL;
    unsigned char h[SHA256_DIGEST_LENGTH];
    int rc;
    if (len < NP_WEB_AUTH_TOKEN_BUFSZ) {
        return np_err_set(err, -EINVAL, "web_auth: token buffer too small");
    }
    if (random_token(TOKEN_PREFIX, token_out, len) != 0) {
        return np_err_set(err, -EIO, "web_auth: no randomness (RAND_bytes failed)");
    }
    sha256(token_out, strlen(token_out), h);
    rc = prep(u,
              "INSERT INTO web_tokens(hash, user, created_ms) "
              "SELECT ?, name, ? FROM web_users WHERE name = ?",
              &st, err);
    if (rc != 0) {
        goto out;
    }
    sqlite3_bind_blob(st, 1, h, sizeof h, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, np_clock_wall_ms());
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(u, err, "add token");
    } else if (sqlite3_changes(u->db) == 0) {
        rc = np_err_set(err, -ENOENT, "web_auth: no user %s", name);
    }
    sqlite3_finalize(st);
out:
    if (rc != 0) {
        OPENSSL_cleanse(token_out, len);
        token_out[0] = '\0';
    }
    return rc;
}

int np_web_users_list(struct np_web_users *u, np_web_users_cb cb, void *ctx, struct np_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(u,
                  "SELECT name, admin, created_ms, "
                  "(SELECT count(*) FROM web_tokens t WHERE t.user = u.name) "
                  "FROM web_users u ORDER BY name",
                  &st, err);
    if (rc != 0) {
        return rc;
    }
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        rc = cb((const char *)sqlite3_column_text(st, 0), sqlite3_column_int(st, 1) != 0,
                sqlite3_column_int64(st, 2), (unsigned)sqlite3_column_int(st, 3), ctx);
        if (rc != 0) {
            break;
        }
    }
    if (rc == 0 && s != SQLITE_DONE) {
        rc = db_fail(u, err, "list users");
    }
    sqlite3_finalize(st);
    return rc;
}

int np_web_users_login(struct np_web_users *u, const char *name, const char *password, bool *admin,
                       struct np_err *err)
{
    sqlite3_stmt *st = NULL;
    char hash[NP_WEB_AUTH_HASH_MAX] = "";
    bool found = false;
    int rc = prep(u, "SELECT pw_hash, admin FROM web_users WHERE name = ?", &st, err);
    if (rc != 0) {
        return rc;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *h = (const char *)sqlite3_column_text(st, 0);
        snprintf(hash, sizeof hash, "%s", h ? h : "");
        *admin = sqlite3_column_int(st, 1) != 0;
        found = true;
    }
    sqlite3_finalize(st);
    if (!found) {
        /* The same work for an unknown name: no timing oracle for names. */
        np_web_auth_verify_password(password, "pbkdf2-sha256$600000$AAAAAAAAAAAAAAAAAAAAAA$"
                                              "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        return np_err_set(err, NP_EAUTH, "web_auth: login failed");
    }
    rc = np_web_auth_verify_password(password, hash);
    OPENSSL_cleanse(hash, sizeof hash);
    return rc == 0 ? 0 : np_err_set(err, NP_EAUTH, "web_auth: login failed");
}

/* ---- sessions ---- */

void np_web_sessions_init(struct np_web_sessions *s, int64_t idle_ms, int64_t max_ms)
{
    memset(s, 0, sizeof *s);
    s->idle_ms = idle_ms > 0 ? idle_ms : 3600 * 1000;
    s->max_ms = max_ms > 0 ? max_ms : 12 * 3600 * 1000;
}

void np_web_sessions_clear(struct np_web_sessions *s)
{
    if (s->v) {
        OPENSSL_cleanse(s->v, s->cap * sizeof *s->v);
    }
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

static void session_remove(struct np_web_sessions *s, size_t i)
{
    OPENSSL_cleanse(&s->v[i], sizeof s->v[i]);
    s->v[i] = s->v[--s->n];
}

static bool session_expired(const struct np_web_sessions *s, const struct np_web_session *x,
                            int64_t now_ms)
{
    return now_ms - x->used_ms >= s->idle_ms || now_ms - x->created_ms >= s->max_ms ||
           now_ms < x->created_ms;
}

int np_web_sessions_create(struct np_web_sessions *s, const char *user, bool admin, int64_t now_ms,
                           const struct np_web_session **out)
{
    for (size_t i = 0; i < s->n;) { /* sweep the expired ones */
        if (session_expired(s, &s->v[i], now_ms)) {
            session_remove(s, i);
        } else {
            i++;
        }
    }
    if (s->n >= NP_WEB_AUTH_MAX_SESSIONS) {
        size_t oldest = 0;
        for (size_t i = 1; i < s->n; i++) {
            if (s->v[i].used_ms < s->v[oldest].used_ms) {
                oldest = i;
            }
        }
        session_remove(s, oldest);
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct np_web_session *v = realloc(s->v, cap * sizeof *v);
        if (!v) {
            return -ENOMEM;
        }
        s->v = v;
        s->cap = cap;
    }
    struct np_web_session *x = &s->v[s->n];
    memset(x, 0, sizeof *x);
    if (random_token("", x->id, sizeof x->id) != 0 ||
        random_token("", x->csrf, sizeof x->csrf) != 0) {
        return -EIO;
    }
    snprintf(x->user, sizeof x->user, "%s", user);
    x->admin = admin;
    x->created_ms = x->used_ms = now_ms;
    s->n++;
    *out = x;
    return 0;
}

static bool same_secret(const char *a, const char *b, size_t b_len)
{
    size_t n = strlen(a);
    return n == b_len && n > 0 && CRYPTO_memcmp(a, b, n) == 0;
}

const struct np_web_session *np_web_sessions_find(struct np_web_sessions *s, const char *id,
                                                  size_t id_len, int64_t now_ms)
{
    for (size_t i = 0; i < s->n; i++) {
        if (same_secret(s->v[i].id, id, id_len)) {
            if (session_expired(s, &s->v[i], now_ms)) {
                session_remove(s, i);
                return NULL;
            }
            s->v[i].used_ms = now_ms;
            return &s->v[i];
        }
    }
    return NULL;
}

void np_web_sessions_drop(struct np_web_sessions *s, const char *id, size_t id_len)
{
    for (size_t i = 0; i < s->n; i++) {
        if (same_secret(s->v[i].id, id, id_len)) {
            session_remove(s, i);
            return;
        }
    }
}

bool np_web_auth_csrf_ok(const struct np_web_session *sess, const char *csrf_header,
                         size_t csrf_len, const char *origin, size_t origin_len,
                         const char *authority, size_t authority_len)
{
    if (!sess || !csrf_header || !same_secret(sess->csrf, csrf_header, csrf_len)) {
        return false;
    }
    if (!origin) {
        return true; /* older clients send none; the token alone decides */
    }
    return np_api_body_origin_ok(origin, origin_len, authority, authority_len);
}

/* ---- the server side ---- */

struct cached_user {
    char name[NP_WEB_AUTH_NAME_MAX + 1];
    bool admin;
};

struct cached_token {
    unsigned char hash[SHA256_DIGEST_LENGTH];
    size_t user; /* index into users */
};

struct cache {
    struct cached_user *users;
    size_t n_users;
    struct cached_token *tokens;
    size_t n_tokens;
};

struct np_web_auth {
    uv_loop_t *loop;
    struct np_web_users *users_db; /* pool jobs only, under mu */
    uv_mutex_t mu;
    struct cache cache;
    struct np_web_sessions sessions;
    bool public_read, tls, metrics_public;
    char *metrics_token;
    uv_timer_t refresh;
    bool refresh_running, timer_inited;
    unsigned busy, logins;
};

static void cache_free(struct cache *c)
{
    free(c->users);
    free(c->tokens);
    memset(c, 0, sizeof *c);
}

/* Reads users and tokens (blocking). */
static int cache_load(struct np_web_users *u, struct cache *c, struct np_err *err)
{
    sqlite3_stmt *st = NULL;
    memset(c, 0, sizeof *c);
    int rc = prep(u, "SELECT name, admin FROM web_users ORDER BY name", &st, err);
    size_t cap = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        if (c->n_users == cap) {
            cap = cap ? cap * 2 : 16;
            struct cached_user *v = realloc(c->users, cap * sizeof *v);
            if (!v) {
                rc = -ENOMEM;
                break;
            }
            c->users = v;
        }
        const char *n = (const char *)sqlite3_column_text(st, 0);
        snprintf(c->users[c->n_users].name, sizeof c->users[0].name, "%s", n ? n : "");
        c->users[c->n_users].admin = sqlite3_column_int(st, 1) != 0;
        c->n_users++;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc == 0) {
        rc = prep(u, "SELECT hash, user FROM web_tokens", &st, err);
    }
    cap = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        const void *h = sqlite3_column_blob(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        if (!h || sqlite3_column_bytes(st, 0) != SHA256_DIGEST_LENGTH || !name) {
            continue;
        }
        size_t ui = 0;
        while (ui < c->n_users && strcmp(c->users[ui].name, name) != 0) {
            ui++;
        }
        if (ui == c->n_users) {
            continue;
        }
        if (c->n_tokens == cap) {
            cap = cap ? cap * 2 : 16;
            struct cached_token *v = realloc(c->tokens, cap * sizeof *v);
            if (!v) {
                rc = -ENOMEM;
                break;
            }
            c->tokens = v;
        }
        memcpy(c->tokens[c->n_tokens].hash, h, SHA256_DIGEST_LENGTH);
        c->tokens[c->n_tokens].user = ui;
        c->n_tokens++;
    }
    sqlite3_finalize(st);
    if (rc != 0) {
        cache_free(c);
        if (rc == -ENOMEM) {
            np_err_set(err, rc, "web_auth: out of memory");
        }
    }
    return rc;
}

/* Sessions follow the users table: deleted users are logged out, a changed
 * admin flag applies at once. */
static void apply_cache(struct np_web_auth *a, struct cache *fresh)
{
    cache_free(&a->cache);
    a->cache = *fresh;
    memset(fresh, 0, sizeof *fresh);
    for (size_t i = 0; i < a->sessions.n;) {
        const struct cached_user *found = NULL;
        for (size_t k = 0; k < a->cache.n_users; k++) {
            if (strcmp(a->cache.users[k].name, a->sessions.v[i].user) == 0) {
                found = &a->cache.users[k];
                break;
            }
        }
        if (!found) {
            session_remove(&a->sessions, i);
            continue;
        }
        a->sessions.v[i].admin = found->admin;
        i++;
    }
}

struct refresh_job {
    uv_work_t work;
    struct np_web_auth *a;
    struct cache fresh;
    int rc;
    struct np_err err;
};

static void refresh_work(uv_work_t *w)
{
    struct refresh_job *j = w->data;
    uv_mutex_lock(&j->a->mu);
    j->rc = cache_load(j->a->users_db, &j->fresh, &j->err);
    uv_mutex_unlock(&j->a->mu);
}

static void refresh_done(uv_work_t *w, int status)
{
    struct refresh_job *j = w->data;
    struct np_web_auth *a = j->a;
    a->busy--;
    a->refresh_running = false;
    if (status == 0 && j->rc == 0) {
        apply_cache(a, &j->fresh);
    } else if (status == 0) {
        np_log(NP_LOG_WARN, "web_auth: reading users failed err=%s", j->err.msg);
    }
    cache_free(&j->fresh);
    free(j);
}

static void on_refresh(uv_timer_t *t)
{
    struct np_web_auth *a = t->data;
    if (a->refresh_running) {
        return;
    }
    struct refresh_job *j = calloc(1, sizeof *j);
    if (!j) {
        return;
    }
    j->a = a;
    j->work.data = j;
    if (uv_queue_work(a->loop, &j->work, refresh_work, refresh_done) != 0) {
        free(j);
        return;
    }
    a->refresh_running = true;
    a->busy++;
}

int np_web_auth_new(uv_loop_t *loop, const struct np_web_auth_opts *o, struct np_web_auth **out,
                    struct np_err *err)
{
    *out = NULL;
    struct np_web_auth *a = calloc(1, sizeof *a);
    if (!a) {
        return np_err_set(err, -ENOMEM, "web_auth: out of memory");
    }
    int rc;
    if (uv_mutex_init(&a->mu) != 0) {
        free(a);
        return np_err_set(err, -ENOMEM, "web_auth: mutex init failed");
    }
    a->metrics_token = strdup(o->metrics_token ? o->metrics_token : "");
    if (!a->metrics_token) {
        rc = np_err_set(err, -ENOMEM, "web_auth: out of memory");
        goto out_free;
    }
    if ((rc = np_web_users_open(o->state_db_path, &a->users_db, err)) != 0 ||
        (rc = cache_load(a->users_db, &a->cache, err)) != 0) {
        goto out_free;
    }
    a->loop = loop;
    a->public_read = o->public_read;
    a->tls = o->tls;
    a->metrics_public = o->metrics_public;
    np_web_sessions_init(&a->sessions, o->session_idle_ms, o->session_max_ms);
    uv_timer_init(loop, &a->refresh);
    a->refresh.data = a;
    a->timer_inited = true;
    uv_timer_start(&a->refresh, on_refresh, NP_WEB_AUTH_REFRESH_MS, NP_WEB_AUTH_REFRESH_MS);
    uv_unref((uv_handle_t *)&a->refresh);
    if (a->cache.n_users == 0 && !a->public_read) {
        np_log(NP_LOG_NOTICE, "web_auth: no dashboard users yet: add one with "
                              "`netpulse user add NAME --admin`");
    }
    *out = a;
    return 0;

out_free:
    np_web_users_close(a->users_db);
    free(a->metrics_token);
    uv_mutex_destroy(&a->mu);
    free(a);
    return rc;
}

/* ---- request helpers ---- */

static void reply_text(struct st_h2o_req_t *req, int status, const char *reason, const char *text)
{
    np_http_reply(req, status, reason, "text/plain; charset=utf-8", text, strlen(text));
}

static void redirect(struct st_h2o_req_t *req, const char *location)
{
    np_http_add_header(req, "location", location);
    reply_text(req, 303, "See Other", "see other\n");
}

/* The value of cookie name in the Cookie header; .base NULL when absent. */
static struct np_http_view cookie_get(struct st_h2o_req_t *req, const char *name)
{
    struct np_http_view h = np_http_header(req, "cookie");
    size_t off, len;
    if (!np_api_body_cookie(h.base, h.len, name, &off, &len)) {
        return (struct np_http_view){NULL, 0};
    }
    return (struct np_http_view){h.base + off, len};
}

static const struct np_web_session *request_session(struct np_web_auth *a, struct st_h2o_req_t *req)
{
    struct np_http_view c = cookie_get(req, COOKIE_NAME);
    if (!c.base || c.len == 0 || c.len >= NP_WEB_AUTH_TOKEN_BUFSZ) {
        return NULL;
    }
    return np_web_sessions_find(&a->sessions, c.base, c.len, np_clock_wall_ms());
}

/* The user a bearer token names (NULL: none or unknown). */
static const struct cached_user *request_token_user(struct np_web_auth *a, struct st_h2o_req_t *req,
                                                    bool *metrics_ok)
{
    struct np_http_view h = np_http_header(req, "authorization");
    *metrics_ok = false;
    if (!h.base || h.len <= 7 || strncasecmp(h.base, "Bearer ", 7) != 0) {
        return NULL;
    }
    const char *t = h.base + 7;
    size_t n = h.len - 7;
    if (a->metrics_token[0] && same_secret(a->metrics_token, t, n)) {
        *metrics_ok = true;
        return NULL;
    }
    if (n != NP_WEB_AUTH_TOKEN_BUFSZ - 1 || memcmp(t, TOKEN_PREFIX, 4) != 0) {
        return NULL;
    }
    unsigned char hsh[SHA256_DIGEST_LENGTH];
    sha256(t, n, hsh);
    const struct cached_user *found = NULL;
    for (size_t i = 0; i < a->cache.n_tokens; i++) {
        if (CRYPTO_memcmp(a->cache.tokens[i].hash, hsh, sizeof hsh) == 0) {
            found = &a->cache.users[a->cache.tokens[i].user];
        }
    }
    return found;
}

static bool path_is(struct np_http_view p, const char *s)
{
    return np_http_view_is(p, s);
}

static bool path_starts(struct np_http_view p, const char *s)
{
    size_t n = strlen(s);
    return p.len >= n && memcmp(p.base, s, n) == 0;
}

static void security_headers(struct np_web_auth *a, struct st_h2o_req_t *req)
{
    np_http_add_header(req, "content-security-policy",
                       "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                       "base-uri 'none'; form-action 'self'; object-src 'none'");
    np_http_add_header(req, "x-content-type-options", "nosniff");
    np_http_add_header(req, "x-frame-options", "DENY");
    np_http_add_header(req, "referrer-policy", "same-origin");
    if (a->tls) {
        np_http_add_header(req, "strict-transport-security", "max-age=31536000");
    }
}

/* Paths anyone may reach (the login page needs its own assets). */
static bool path_public(struct np_http_view p)
{
    return path_is(p, "/healthz") || path_is(p, "/api/v1/ingest") || path_is(p, "/login") ||
           path_is(p, "/login.html") || path_is(p, "/static/login.js") ||
           path_is(p, "/static/style.css") || path_is(p, "/favicon.ico");
}

static bool is_page(struct np_http_view p)
{
    return !path_starts(p, "/api/") && !path_starts(p, "/graph/") && !path_starts(p, "/static/") &&
           !path_is(p, "/metrics");
}

static int guard(void *ctx, struct st_h2o_req_t *req)
{
    struct np_web_auth *a = ctx;
    struct np_http_view path = np_http_path(req);
    struct np_http_view method = np_http_method(req);
    bool reading = np_http_view_is(method, "GET") || np_http_view_is(method, "HEAD");
    security_headers(a, req);
    if (path_public(path)) {
        return 0;
    }
    const struct np_web_session *sess = request_session(a, req);
    bool metrics_ok = false;
    const struct cached_user *tok = sess ? NULL : request_token_user(a, req, &metrics_ok);
    bool authed = sess || tok;
    bool admin = sess ? sess->admin : tok ? tok->admin : false;

    if (path_is(path, "/metrics")) {
        if (a->metrics_public || authed || metrics_ok) {
            return 0;
        }
        np_http_add_header(req, "www-authenticate", "Bearer realm=\"netpulse\"");
        reply_text(req, 401, "Unauthorized", "metrics need a token\n");
        return 1;
    }
    if (!authed && !(a->public_read && reading)) {
        if (reading && is_page(path)) {
            char loc[300] = "/login.html";
            if (np_api_body_next_ok(path.base, path.len) && !path_is(path, "/")) {
                snprintf(loc, sizeof loc, "/login.html?next=%.*s", (int)path.len, path.base);
            }
            redirect(req, loc);
            return 1;
        }
        np_http_add_header(req, "www-authenticate", "Bearer realm=\"netpulse\"");
        reply_text(req, 401, "Unauthorized", "log in first\n");
        return 1;
    }
    if (reading) {
        return 0;
    }
    /* Changing state: CSRF for cookie sessions, admin for all but logout. */
    if (sess) {
        struct np_http_view csrf = np_http_header(req, "x-csrf-token");
        struct np_http_view origin = np_http_header(req, "origin");
        struct np_http_view auth = np_http_authority(req);
        if (!np_web_auth_csrf_ok(sess, csrf.base, csrf.len, origin.base, origin.len, auth.base,
                                 auth.len)) {
            reply_text(req, 403, "Forbidden", "missing or wrong CSRF token\n");
            return 1;
        }
    }
    if (!admin && !path_is(path, "/logout")) {
        reply_text(req, 403, "Forbidden", "administrators only\n");
        return 1;
    }
    return 0;
}

/* ---- /login, /logout, /api/v1/session ---- */

struct login_job {
    uv_work_t work;
    struct np_web_auth *a;
    struct np_http_pending *pending;
    struct np_api_login form; /* user, password (cleansed after use), next */
    bool admin;
    int rc;
};

static void login_work(uv_work_t *w)
{
    struct login_job *j = w->data;
    struct np_err err = {0};
    uv_mutex_lock(&j->a->mu);
    /* The KDF runs under the lock too: logins queue instead of piling up. */
    j->rc = np_web_users_login(j->a->users_db, j->form.user, j->form.password, &j->admin, &err);
    uv_mutex_unlock(&j->a->mu);
    OPENSSL_cleanse(j->form.password, sizeof j->form.password);
}

static void login_done(uv_work_t *w, int status)
{
    struct login_job *j = w->data;
    struct np_web_auth *a = j->a;
    struct st_h2o_req_t *req = np_http_pending_req(j->pending);
    a->busy--;
    a->logins--;
    if (req && status == 0 && j->rc == 0) {
        const struct np_web_session *s = NULL;
        int64_t now_ms = np_clock_wall_ms();
        if (np_web_sessions_create(&a->sessions, j->form.user, j->admin, now_ms, &s) == 0) {
            char cookie[200];
            snprintf(cookie, sizeof cookie,
                     COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%" PRId64 "%s",
                     s->id, a->sessions.max_ms / 1000, a->tls ? "; Secure" : "");
            np_http_add_header(req, "set-cookie", cookie);
            np_http_add_header(req, "location", j->form.next[0] ? j->form.next : "/");
            np_log(NP_LOG_INFO, "web_auth: login user=%s admin=%s", j->form.user,
                   j->admin ? "yes" : "no");
            np_http_pending_reply(j->pending, 303, "See Other", "text/plain", "ok\n", 3);
        } else {
            np_http_pending_reply(j->pending, 503, "Service Unavailable", "text/plain",
                                  "no session\n", 11);
        }
    } else if (req) {
        np_log(NP_LOG_NOTICE, "web_auth: login failed user=%s", j->form.user);
        np_http_add_header(req, "location", "/login.html?error=1");
        np_http_pending_reply(j->pending, 303, "See Other", "text/plain", "login failed\n", 13);
    } else {
        np_http_pending_free(j->pending);
    }
    OPENSSL_cleanse(j, sizeof *j);
    free(j);
}

static int on_login(void *ctx, struct st_h2o_req_t *req)
{
    struct np_web_auth *a = ctx;
    struct np_http_view method = np_http_method(req);
    if (!np_http_view_is(method, "POST")) {
        redirect(req, "/login.html"); /* the page itself is a static file (web.c) */
        return 0;
    }
    /* Login CSRF: a form posted from elsewhere carries another Origin. */
    struct np_http_view origin = np_http_header(req, "origin");
    struct np_http_view auth = np_http_authority(req);
    if (origin.base && !np_api_body_origin_ok(origin.base, origin.len, auth.base, auth.len)) {
        reply_text(req, 403, "Forbidden", "cross-origin login refused\n");
        return 0;
    }
    if (a->logins >= MAX_LOGINS_RUNNING) {
        reply_text(req, 503, "Service Unavailable", "too many logins at once\n");
        return 0;
    }
    struct login_job *j = calloc(1, sizeof *j);
    if (!j) {
        reply_text(req, 503, "Service Unavailable", "out of memory\n");
        return 0;
    }
    struct np_http_view body = np_http_body(req);
    struct np_err err = {0};
    if (np_api_body_login(body.base, body.len, &j->form, &err) != 0) {
        np_log(NP_LOG_NOTICE, "web_auth: login form refused err=\"%s\"", err.msg);
        OPENSSL_cleanse(j, sizeof *j);
        free(j);
        redirect(req, "/login.html?error=1");
        return 0;
    }
    j->a = a;
    j->work.data = j;
    j->pending = np_http_pending_new(req);
    if (!j->pending || uv_queue_work(a->loop, &j->work, login_work, login_done) != 0) {
        np_http_pending_free(j->pending);
        OPENSSL_cleanse(j, sizeof *j);
        free(j);
        reply_text(req, 503, "Service Unavailable", "cannot queue work\n");
        return 0;
    }
    a->busy++;
    a->logins++;
    return 0;
}

static int on_logout(void *ctx, struct st_h2o_req_t *req)
{
    struct np_web_auth *a = ctx;
    if (!np_http_view_is(np_http_method(req), "POST")) {
        reply_text(req, 405, "Method Not Allowed", "POST only\n");
        return 0;
    }
    struct np_http_view c = cookie_get(req, COOKIE_NAME);
    if (c.base) {
        np_web_sessions_drop(&a->sessions, c.base, c.len);
    }
    char cookie[128];
    snprintf(cookie, sizeof cookie, COOKIE_NAME "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0%s",
             a->tls ? "; Secure" : "");
    np_http_add_header(req, "set-cookie", cookie);
    redirect(req, "/login.html");
    return 0;
}

static int on_session(void *ctx, struct st_h2o_req_t *req)
{
    struct np_web_auth *a = ctx;
    const struct np_web_session *s = request_session(a, req);
    char body[300];
    if (s) {
        snprintf(body, sizeof body, "{\"user\":\"%s\",\"admin\":%s,\"csrf\":\"%s\"}", s->user,
                 s->admin ? "true" : "false", s->csrf);
    } else {
        bool metrics_ok;
        const struct cached_user *u = request_token_user(a, req, &metrics_ok);
        if (u) {
            snprintf(body, sizeof body, "{\"user\":\"%s\",\"admin\":%s,\"csrf\":null}", u->name,
                     u->admin ? "true" : "false");
        } else {
            snprintf(body, sizeof body, "{\"user\":null,\"admin\":false,\"csrf\":null}");
        }
    }
    np_http_reply(req, 200, "OK", "application/json", body, strlen(body));
    return 0;
}

int np_web_auth_register(struct np_web_auth *a, struct np_http_server *server)
{
    np_http_server_set_guard(server, guard, a);
    if (np_http_server_route(server, "/login", false, on_login, a) != 0 ||
        np_http_server_route(server, "/logout", false, on_logout, a) != 0 ||
        np_http_server_route(server, "/api/v1/session", false, on_session, a) != 0) {
        return -ENOMEM;
    }
    return 0;
}

void np_web_auth_stop(struct np_web_auth *a)
{
    if (a && a->timer_inited && !uv_is_closing((uv_handle_t *)&a->refresh)) {
        uv_close((uv_handle_t *)&a->refresh, NULL);
    }
}

unsigned np_web_auth_busy(const struct np_web_auth *a)
{
    return a ? a->busy : 0;
}

void np_web_auth_free(struct np_web_auth *a)
{
    if (!a) {
        return;
    }
    np_web_sessions_clear(&a->sessions);
    cache_free(&a->cache);
    np_web_users_close(a->users_db);
    if (a->metrics_token) {
        OPENSSL_cleanse(a->metrics_token, strlen(a->metrics_token));
    }
    free(a->metrics_token);
    uv_mutex_destroy(&a->mu);
    free(a);
}

/* ---- `netpulse user ...` ---- */

static int print_user(const char *name, bool admin, int64_t created_ms, unsigned n_tokens,
                      void *ctx)
{
    char created[32];
    (void)ctx;
    np_clock_format_utc(created_ms, created, sizeof created);
    printf("%-24s %-6s %-25s %u\n", name, admin ? "admin" : "read", created, n_tokens);
    return 0;
}

/* Reads the first line of stdin (without the newline) into buf. */
static int read_password(char *buf, size_t len)
{
    if (!fgets(buf, (int)len, stdin)) {
        return -1;
    }
    size_t n = strcspn(buf, "\r\n");
    if (buf[n] == '\0' && n + 1 == len && !feof(stdin)) {
        return -1; /* longer than the buffer */
    }
    buf[n] = '\0';
    return n >= 8 ? 0 : -1;
}

int np_web_auth_cli(const char *db_path, const char *verb, int argc, char **argv)
{
    struct np_web_users *u = NULL;
    struct np_err err = {0};
    bool admin = false, from_stdin = false;
    const char *name = NULL;
    int ret = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--admin") == 0 && strcmp(verb, "add") == 0) {
            admin = true;
        } else if (strcmp(argv[i], "--password-stdin") == 0 && strcmp(verb, "add") == 0) {
            from_stdin = true;
        } else if (argv[i][0] != '-' && !name && strcmp(verb, "list") != 0) {
            name = argv[i];
        } else {
            fprintf(stderr, "netpulse: user %s: unexpected argument %s\n", verb, argv[i]);
            return 2;
        }
    }
    if (strcmp(verb, "list") != 0 && (!name || !np_web_auth_valid_name(name))) {
        fprintf(stderr,
                "netpulse: user %s: NAME must be 1..64 of [A-Za-z0-9._@-], not starting "
                "with '.' or '-'\n",
                verb);
        return 2;
    }
    if (np_web_users_open(db_path, &u, &err) != 0) {
        fprintf(stderr, "netpulse: %s\n", err.msg);
        return 1;
    }
    if (strcmp(verb, "add") == 0) {
        char pw[PASSWORD_MAX], hash[NP_WEB_AUTH_HASH_MAX];
        if (from_stdin) {
            if (read_password(pw, sizeof pw) != 0) {
                fprintf(stderr, "netpulse: user add: the password (first line of stdin) must "
                                "have 8 to 1000 characters\n");
                ret = 2;
                goto out;
            }
        } else if (random_token("", pw, sizeof pw) != 0) {
            fprintf(stderr, "netpulse: user add: no randomness\n");
            ret = 1;
            goto out;
        } else {
            pw[20] = '\0'; /* 120 random bits, easier to type */
        }
        if (np_web_auth_hash_password(pw, 0, hash, sizeof hash) != 0 ||
            np_web_users_add(u, name, admin, hash, true, &err) != 0) {
            fprintf(stderr, "netpulse: user add: %s\n", err.msg[0] ? err.msg : "hashing failed");
            ret = 1;
        } else if (!from_stdin) {
            printf("%s\n", pw);
            fflush(stdout);
            fprintf(stderr, "user add: the password of %s%s is above; it is shown only once.\n",
                    name, admin ? " (admin)" : "");
        } else {
            fprintf(stderr, "user add: password of %s%s set\n", name, admin ? " (admin)" : "");
        }
        OPENSSL_cleanse(pw, sizeof pw);
    } else if (strcmp(verb, "token") == 0) {
        char tok[NP_WEB_AUTH_TOKEN_BUFSZ];
        if (np_web_users_token_new(u, name, tok, sizeof tok, &err) != 0) {
            fprintf(stderr, "netpulse: user token: %s\n", err.msg);
            ret = 1;
        } else {
            printf("%s\n", tok);
            fflush(stdout);
            OPENSSL_cleanse(tok, sizeof tok);
            fprintf(stderr,
                    "user token: the API token of %s is above; it is shown only once.\n"
                    "Send it as \"Authorization: Bearer TOKEN\".\n",
                    name);
        }
    } else if (strcmp(verb, "delete") == 0) {
        if (np_web_users_delete(u, name, &err) != 0) {
            fprintf(stderr, "netpulse: user delete: %s\n", err.msg);
            ret = 1;
        } else {
            fprintf(stderr, "user delete: %s and its tokens deleted\n", name);
        }
    } else {
        printf("%-24s %-6s %-25s %s\n", "NAME", "ROLE", "CREATED", "TOKENS");
        if (np_web_users_list(u, print_user, NULL, &err) != 0) {
            fprintf(stderr, "netpulse: user list: %s\n", err.msg);
            ret = 1;
        }
    }
out:
    np_web_users_close(u);
    return ret;
}
