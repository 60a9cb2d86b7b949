/* api_body: what the dashboard's state-changing routes and the access guard
 * read from a request besides h2o's framing and http_parse.h's pieces:
 *
 *   - the JSON body of POST /api/v1/sites/{id}/maintenance (api.h);
 *   - the login form of POST /login (web_auth.h): user=&password=&next=,
 *     application/x-www-form-urlencoded;
 *   - the next= target a login may redirect to;
 *   - one cookie's value from a Cookie header (the session id);
 *   - the Origin check of the CSRF rules (same host as the request).
 *
 * The enrol and revoke routes take no body (their id is in the path) and the
 * CSRF token itself is compared by web_auth.h np_web_auth_csrf_ok().
 *
 * Pure functions over (pointer, length) views borrowed for the call, not
 * NUL-terminated; outputs into caller structs with fixed bounds. Fuzzed by
 * tests/fuzz/fuzz_api_body.c. Threads: any; no shared state. */
#ifndef NP_COLLECTOR_API_BODY_H
#define NP_COLLECTOR_API_BODY_H

#include "netpulse/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NP_API_BODY_MAX 4096        /* bytes of a maintenance body */
#define NP_API_REASON_MAX 500       /* bytes of a maintenance reason */
#define NP_API_LOGIN_NAME_MAX 64    /* bytes of a user name (web_auth.h NP_WEB_AUTH_NAME_MAX) */
#define NP_API_LOGIN_VALUE_MAX 1024 /* bytes of a decoded password, with its NUL */
#define NP_API_NEXT_MAX 200         /* bytes of a next= target */

/* A maintenance window as declared. */
struct np_api_maint {
    int64_t start_ms, end_ms; /* end_ms > start_ms */
    char reason[NP_API_REASON_MAX + 1];
};

/* Parses the maintenance body body[0..len): a JSON object with exactly
 * "from", "to" (each Unix seconds 0..2^42, or "YYYY-MM-DD[THH:MM[:SS]][Z]"
 * read as UTC) and "reason" (1..500 bytes of UTF-8 without control
 * characters). Returns 0, or -EINVAL with err->msg naming the field first
 * ("from: ...", "reason: ...", "body: ..."), one line without a newline.
 * *out is written only on success. */
int np_api_body_maint(const char *body, size_t len, struct np_api_maint *out, struct np_err *err);

/* The login form. */
struct np_api_login {
    char user[NP_API_LOGIN_NAME_MAX + 1];
    char password[NP_API_LOGIN_VALUE_MAX];
    char next[NP_API_NEXT_MAX + 1]; /* "" when absent or not a safe target */
};

/* Parses the form body[0..len): user (web_auth.h np_web_auth_valid_name's
 * rule) and password (1..1023 bytes, no NUL) are required; next is optional
 * and kept only when np_api_body_next_ok(). Returns 0, or -EINVAL with
 * err->msg naming the field. *out is zeroed first (holds no password on
 * error). */
int np_api_body_login(const char *body, size_t len, struct np_api_login *out, struct np_err *err);

/* Whether s[0..n) may follow a login as a redirect: our own absolute path
 * of [A-Za-z0-9/._-], 1..NP_API_NEXT_MAX bytes, not starting with "//" (a
 * browser reads that as another host). */
bool np_api_body_next_ok(const char *s, size_t n);

/* Finds cookie name (NUL-terminated) in the Cookie header value h[0..len):
 * 1 and the value as *val_off, *val_len (within h; may be 0 long), or 0 when
 * absent. Pairs are split at ';', blanks before a name are skipped. */
int np_api_body_cookie(const char *h, size_t len, const char *name, size_t *val_off,
                       size_t *val_len);

/* Whether an Origin header value origin[0..origin_len) names the request's
 * own authority[0..authority_len) (its Host): exactly "http://" or
 * "https://" followed by the authority. An empty authority never matches. */
bool np_api_body_origin_ok(const char *origin, size_t origin_len, const char *authority,
                           size_t authority_len);

#endif
