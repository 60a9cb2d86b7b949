/* api_body: request bodies and small request fields; see api_body.h. */
#include "api_body.h"

#include "http_parse.h"
#include "report_time.h"
#include "web_auth.h"

#include <jansson.h>

#include <errno.h>
#include <string.h>

/* ---- the maintenance body ---- */

/* A window bound: Unix seconds (integer) or np_report_parse_time()'s text. */
static int time_field(const char *name, const json_t *v, int64_t *ms, struct np_err *err)
{
    if (!v) {
        return np_err_set(err, -EINVAL, "%s: missing", name);
    }
    if (json_is_integer(v)) {
        json_int_t sec = json_integer_value(v);
        if (sec < 0 || sec > NP_HTTP_TIME_LIMIT_S) {
            return np_err_set(err, -EINVAL, "%s: Unix seconds out of range", name);
        }
        *ms = (int64_t)sec * 1000;
        return 0;
    }
    if (json_is_string(v) && np_report_parse_time(json_string_value(v), ms) == 0) {
        return 0;
    }
    return np_err_set(err, -EINVAL, "%s: expected Unix seconds or YYYY-MM-DD[THH:MM[:SS]] (UTC)",
                      name);
}

static bool plain_text(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

/* Checks the fields of doc (an object) into out. */
static int maint_fields(json_t *doc, struct np_api_maint *out, struct np_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        if (strcmp(key, "from") != 0 && strcmp(key, "to") != 0 && strcmp(key, "reason") != 0) {
            /* The key is echoed only when short printable ASCII: the message
             * goes into a one-line answer and the log (a fuzzer found a key
             * holding a newline). */
            size_t n = strlen(key);
            bool plain = n > 0 && n <= 40;
            for (size_t i = 0; plain && i < n; i++) {
                plain = key[i] > 0x20 && key[i] < 0x7f;
            }
            return np_err_set(err, -EINVAL, "%s: unknown field (expected from, to, reason)",
                              plain ? key : "body");
        }
    }
    int64_t start_ms = 0, end_ms = 0;
    int rc = time_field("from", json_object_get(doc, "from"), &start_ms, err);
    if (rc == 0) {
        rc = time_field("to", json_object_get(doc, "to"), &end_ms, err);
    }
    if (rc != 0) {
        return rc;
    }
    if (end_ms <= start_ms) {
        return np_err_set(err, -EINVAL, "to: must be after from");
    }
    v = json_object_get(doc, "reason");
    if (!v) {
        return np_err_set(err, -EINVAL, "reason: missing");
    }
    size_t len = json_is_string(v) ? json_string_length(v) : 0;
    const char *reason = json_string_value(v);
    if (!reason || len == 0 || len > NP_API_REASON_MAX || strlen(reason) != len ||
        !plain_text(reason, len)) {
        return np_err_set(err, -EINVAL, "reason: 1..%d bytes of text without control characters",
                          NP_API_REASON_MAX);
    }
    out->start_ms = start_ms;
    out->end_ms = end_ms;
    memcpy(out->reason, reason, len + 1);
    return 0;
}

int np_api_body_maint(const char *body, size_t len, struct np_api_maint *out, struct np_err *err)
{
    if (len == 0 || len > NP_API_BODY_MAX) {
        return np_err_set(err, -EINVAL,
                          "body: 1..%d bytes of JSON {\"from\": F, \"to\": T, \"reason\": R}",
                          NP_API_BODY_MAX);
    }
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc;
    if (!doc) {
        /* jerr.text may quote the input: only its position is passed on. */
        rc = np_err_set(err, -EINVAL, "body: not JSON (or a duplicate key) at byte %d",
                        jerr.position);
    } else if (!json_is_object(doc)) {
        rc = np_err_set(err, -EINVAL,
                        "body: expected a JSON object {\"from\": F, \"to\": T, \"reason\": R}");
    } else {
        rc = maint_fields(doc, out, err);
    }
    json_decref(doc);
    return rc;
}

/* ---- the login form ---- */

bool np_api_body_next_ok(const char *s, size_t n)
{
    if (n == 0 || n > NP_API_NEXT_MAX || s[0] != '/' || (n > 1 && s[1] == '/')) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

int np_api_body_login(const char *body, size_t len, struct np_api_login *out, struct np_err *err)
{
    char next[NP_API_NEXT_MAX + 2];
    memset(out, 0, sizeof *out);
    int ru = np_http_query_get(body, len, "user", out->user, sizeof out->user);
    int rp = np_http_query_get(body, len, "password", out->password, sizeof out->password);
    int rn = np_http_query_get(body, len, "next", next, sizeof next);
    int rc = 0;
    if (ru != 1 || !np_web_auth_valid_name(out->user)) {
        rc = np_err_set(err, -EINVAL, "user: %s",
                        ru == 0 ? "missing"
                                : "1..64 bytes of [A-Za-z0-9._@-], not starting with . or -");
    } else if (rp != 1 || out->password[0] == '\0') {
        rc = np_err_set(err, -EINVAL, "password: %s",
                        rp == 0 ? "missing" : "1..1023 bytes, percent-encoded");
    } else if (rn < 0) {
        rc = np_err_set(err, -EINVAL, "next: malformed or longer than %d bytes", NP_API_NEXT_MAX);
    }
    if (rc == 0 && rn == 1 && np_api_body_next_ok(next, strlen(next))) {
        memcpy(out->next, next, strlen(next) + 1);
    }
    if (rc != 0) {
        memset(out, 0, sizeof *out);
    }
    return rc;
}

/* ---- Cookie and Origin ---- */

int np_api_body_cookie(const char *h, size_t len, const char *name, size_t *val_off,
                       size_t *val_len)
{
    size_t nl = strlen(name), i = 0;
    while (h && i < len) {
        while (i < len && (h[i] == ' ' || h[i] == '\t' || h[i] == ';')) {
            i++;
        }
        size_t end = i;
        while (end < len && h[end] != ';') {
            end++;
        }
        if (end - i > nl && memcmp(h + i, name, nl) == 0 && h[i + nl] == '=') {
            *val_off = i + nl + 1;
            *val_len = end - i - nl - 1;
            return 1;
        }
        i = end;
    }
    return 0;
}

bool np_api_body_origin_ok(const char *origin, size_t origin_len, const char *authority,
                           size_t authority_len)
{
    if (!origin || !authority || authority_len == 0) {
        return false;
    }
    size_t skip = origin_len >= 8 && memcmp(origin, "https://", 8) == 0  ? 8
                  : origin_len >= 7 && memcmp(origin, "http://", 7) == 0 ? 7
                                                                         : 0;
    return skip > 0 && origin_len - skip == authority_len &&
           memcmp(origin + skip, authority, authority_len) == 0;
}
