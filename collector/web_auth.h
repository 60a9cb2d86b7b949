/* web_auth: who may see the dashboard and who may change things.
 *
 * People. Users live in their own tables of the collector's state.db
 * (web_users, web_tokens; created here on open, beside state_db's tables):
 * a name, an admin flag, and a password hashed with PBKDF2-HMAC-SHA256
 * (OpenSSL PKCS5_PBKDF2_HMAC, 16-byte random salt, NP_WEB_AUTH_ITERATIONS
 * rounds by default), stored as "pbkdf2-sha256$ROUNDS$SALT$HASH" (base64url).
 * `netpulse user add NAME [--admin]` sets one; `netpulse user token NAME`
 * gives a per-user API token "npu_" + 43 base64url chars (256 random bits:
 * only SHA-256 of it is kept, no slow KDF needed, as for agent tokens).
 *
 * Requests. A guard (http_server.h np_http_server_set_guard) runs before
 * every route and
 *   - adds the security headers to every answer (CSP default-src 'self',
 *     frame-ancestors 'none'; X-Content-Type-Options nosniff; X-Frame-Options
 *     DENY; Referrer-Policy same-origin; HSTS over TLS);
 *   - lets /healthz, /login (page and form), the login page's assets and
 *     /api/v1/ingest (agent bearer auth of its own) through;
 *   - /metrics: public only with [dashboard] metrics_public = yes, else a
 *     session, a user token or [dashboard] metrics_token as bearer;
 *   - everything else needs a session cookie (np_session: HttpOnly,
 *     SameSite=Strict, Secure over TLS) or "Authorization: Bearer npu_...",
 *     unless [dashboard] public = yes (then reading is open). Without one:
 *     pages 303 to /login.html?next=PATH, the rest 401;
 *   - methods other than GET/HEAD change state: they need an admin (except
 *     POST /logout) and, with a session cookie, the session's CSRF token in
 *     X-CSRF-Token (synchronizer token) and an Origin, when sent, equal to the
 *     request's own host (403 otherwise). Bearer tokens are not sent by
 *     browsers on their own, so they need no CSRF token.
 *
 * Routes added: POST /login (form user=&password=&next=; 303 to next or to
 * /login.html?error=1; GET /login 303 to the page /login.html), POST /logout, GET /api/v1/session
 * ({user, admin, csrf}). The login form, the Cookie header, next= and the
 * Origin check are parsed by api_body.h (pure, fuzzed).
 *
 * Sessions are kept in memory on the loop thread (a restart logs everyone
 * out): 32 random bytes (base64url) in the cookie, a separate CSRF token,
 * expiry after session_idle without use or session_max after login. Users and
 * tokens are re-read from the database every few seconds by a pool job, so
 * the guard answers without touching the disk: a user deleted or a token
 * revoked by the CLI stops working within NP_WEB_AUTH_REFRESH_MS.
 *
 * Threads: np_web_auth_* on the loop thread. The np_web_users_* functions
 * block on the database (CLI, pool jobs, tests), one thread per connection.
 * Errors: 0 or negative: NP_EDB, NP_EAUTH, -EINVAL, -ENOENT, -EEXIST,
 * -ENOMEM, -EIO (no randomness). */
#ifndef NP_COLLECTOR_WEB_AUTH_H
#define NP_COLLECTOR_WEB_AUTH_H

#include "http_server.h"
#include "netpulse/err.h"

#include <uv.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NP_WEB_AUTH_ITERATIONS 600000u /* PBKDF2-HMAC-SHA256 rounds (OWASP 2023) */
#define NP_WEB_AUTH_HASH_MAX 128       /* bytes of a stored hash string, with NUL */
#define NP_WEB_AUTH_NAME_MAX 64        /* bytes of a user name */
#define NP_WEB_AUTH_TOKEN_BUFSZ 48     /* "npu_" + 43, with NUL; also session ids */
#define NP_WEB_AUTH_REFRESH_MS 5000
#define NP_WEB_AUTH_MAX_SESSIONS 4096

/* ---- passwords (pure; any thread) ---- */

/* Hashes password with iterations rounds (0: NP_WEB_AUTH_ITERATIONS) and a
 * new random salt into out (len >= NP_WEB_AUTH_HASH_MAX). Errors: -EINVAL,
 * -EIO (no randomness). */
int np_web_auth_hash_password(const char *password, unsigned iterations, char *out, size_t len);

/* 0 when password matches stored (constant-time comparison), else NP_EAUTH
 * (also for a malformed stored string). */
int np_web_auth_verify_password(const char *password, const char *stored);

/* Whether name is a valid user name: 1..64 bytes of [A-Za-z0-9._@-], not
 * starting with '.' or '-'. */
bool np_web_auth_valid_name(const char *name);

/* ---- the user tables (block on SQLite) ---- */

struct np_web_users;

/* Opens path (the collector's state.db), creating the tables when missing.
 * *out freed with np_web_users_close(). */
int np_web_users_open(const char *path, struct np_web_users **out, struct np_err *err);
void np_web_users_close(struct np_web_users *u);

/* Adds user name with the stored hash (np_web_auth_hash_password), or
 * replaces the password and flag of an existing one when replace is set.
 * Errors: -EINVAL, -EEXIST (exists, replace not set), NP_EDB. */
int np_web_users_add(struct np_web_users *u, const char *name, bool admin, const char *hash,
                     bool replace, struct np_err *err);

/* Deletes the user and its tokens. Errors: -ENOENT, NP_EDB. */
int np_web_users_delete(struct np_web_users *u, const char *name, struct np_err *err);

/* Creates a new API token for user name into token_out (len >=
 * NP_WEB_AUTH_TOKEN_BUFSZ); only its hash is stored. Errors: -ENOENT, -EIO,
 * NP_EDB. */
int np_web_users_token_new(struct np_web_users *u, const char *name, char *token_out, size_t len,
                           struct np_err *err);

/* Calls cb per user (by name) until it returns non-zero (then returned). */
typedef int (*np_web_users_cb)(const char *name, bool admin, int64_t created_ms, unsigned n_tokens,
                               void *ctx);
int np_web_users_list(struct np_web_users *u, np_web_users_cb cb, void *ctx, struct np_err *err);

/* Checks a password: 0 and *admin when it matches, NP_EAUTH otherwise
 * (unknown user included: the reason is not told apart). Slow (the KDF). */
int np_web_users_login(struct np_web_users *u, const char *name, const char *password, bool *admin,
                       struct np_err *err);

/* `netpulse user VERB ...` (cli.c dispatches): verb "add" (NAME [--admin]
 * [--password-stdin]: prints a new random password once unless one is read
 * from stdin; an existing user gets the new password and flag), "token"
 * (NAME: prints a new API token once), "list", "delete" (NAME). db_path is
 * the state database. Returns the exit status (0, 1 failed, 2 usage). */
int np_web_auth_cli(const char *db_path, const char *verb, int argc, char **argv);

/* ---- sessions (pure, in memory; one thread) ---- */

struct np_web_session {
    char id[NP_WEB_AUTH_TOKEN_BUFSZ];
    char csrf[NP_WEB_AUTH_TOKEN_BUFSZ];
    char user[NP_WEB_AUTH_NAME_MAX + 1];
    bool admin;
    int64_t created_ms, used_ms;
};

struct np_web_sessions {
    struct np_web_session *v;
    size_t n, cap;
    int64_t idle_ms, max_ms;
};

/* Initialises s with the timeouts; np_web_sessions_clear() frees. */
void np_web_sessions_init(struct np_web_sessions *s, int64_t idle_ms, int64_t max_ms);
void np_web_sessions_clear(struct np_web_sessions *s);

/* Creates a session for user at now_ms (the oldest is dropped above
 * NP_WEB_AUTH_MAX_SESSIONS); *out borrowed until the next call on s.
 * Errors: -ENOMEM, -EIO. */
int np_web_sessions_create(struct np_web_sessions *s, const char *user, bool admin, int64_t now_ms,
                           const struct np_web_session **out);

/* The live session with this id at now_ms (its use time is refreshed), or
 * NULL (unknown, expired: expired ones are dropped). Constant-time per
 * comparison. Borrowed until the next call on s. */
const struct np_web_session *np_web_sessions_find(struct np_web_sessions *s, const char *id,
                                                  size_t id_len, int64_t now_ms);

/* Drops the session with this id (if any). */
void np_web_sessions_drop(struct np_web_sessions *s, const char *id, size_t id_len);

/* Whether a state-changing request carrying csrf_header (may be NULL) and
 * origin (may be NULL: not sent) is allowed for session sess at authority
 * (the request's host). Origin must be http(s)://AUTHORITY exactly. */
bool np_web_auth_csrf_ok(const struct np_web_session *sess, const char *csrf_header,
                         size_t csrf_len, const char *origin, size_t origin_len,
                         const char *authority, size_t authority_len);

/* ---- the guard and routes (loop thread) ---- */

struct np_web_auth_opts {
    const char *state_db_path; /* borrowed for the call */
    bool public_read;          /* [dashboard] public */
    bool tls;                  /* Secure cookies, HSTS */
    int64_t session_idle_ms;   /* 0: 1 hour */
    int64_t session_max_ms;    /* 0: 12 hours */
    bool metrics_public;
    const char *metrics_token; /* "" or NULL: none; copied */
    unsigned iterations;       /* unused by the server; kept for symmetry with the CLI */
};

struct np_web_auth;

/* Opens the tables and reads users and tokens (blocking: call before the
 * loop runs). *out freed with np_web_auth_free(). */
int np_web_auth_new(uv_loop_t *loop, const struct np_web_auth_opts *o, struct np_web_auth **out,
                    struct np_err *err);

/* Installs the guard and adds the routes above. Errors: -ENOMEM. */
int np_web_auth_register(struct np_web_auth *a, struct np_http_server *server);

/* Stops the refresh timer (close callback pending until the loop runs). */
void np_web_auth_stop(struct np_web_auth *a);

/* Jobs still running (free only at 0). */
unsigned np_web_auth_busy(const struct np_web_auth *a);

/* Frees; accepts NULL. Only when np_web_auth_busy() is 0 and after the loop
 * ran the timer's close. */
void np_web_auth_free(struct np_web_auth *a);

#endif
