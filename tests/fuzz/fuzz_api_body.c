/* Fuzzes api_body.h: every parser gets the whole input (exact-size heap
 * copies, so ASan sees any read past the view) and what each promises is
 * checked:
 *   - maintenance body: on success end > start, a reason of 1..500 bytes
 *     without control characters; on error a message naming a field;
 *   - login form: on success a valid user, a non-empty password, next empty
 *     or a safe target; on error nothing left in the struct;
 *   - the Cookie header: a value inside the input without ';';
 *   - next= and Origin (the input split at its first newline into origin
 *     and authority): an accepted origin is the authority behind a scheme;
 *   - web_auth.h np_web_auth_csrf_ok() with the same split as token and
 *     origin. */
#include "api_body.h"
#include "web_auth.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_maint(const char *v, size_t size)
{
    struct np_api_maint m;
    struct np_err err = {0};
    int rc = np_api_body_maint(v, size, &m, &err);
    if (rc == 0) {
        size_t n = strnlen(m.reason, sizeof m.reason);
        if (m.end_ms <= m.start_ms || n == 0 || n > NP_API_REASON_MAX) {
            abort();
        }
        for (size_t i = 0; i < n; i++) {
            if ((unsigned char)m.reason[i] < 0x20 || m.reason[i] == 0x7f) {
                abort();
            }
        }
    } else if (rc != -EINVAL || !strchr(err.msg, ':') || strchr(err.msg, '\n')) {
        abort();
    }
}

static void check_login(const char *v, size_t size)
{
    struct np_api_login l;
    struct np_err err = {0};
    int rc = np_api_body_login(v, size, &l, &err);
    if (rc == 0) {
        if (!np_web_auth_valid_name(l.user) || l.password[0] == '\0' ||
            strnlen(l.password, sizeof l.password) == sizeof l.password ||
            (l.next[0] && !np_api_body_next_ok(l.next, strlen(l.next)))) {
            abort();
        }
    } else {
        static const struct np_api_login zero;
        if (rc != -EINVAL || memcmp(&l, &zero, sizeof l) != 0 || !strchr(err.msg, ':')) {
            abort();
        }
    }
}

static void check_cookie(const char *v, size_t size)
{
    size_t off = 0, len = 0;
    if (np_api_body_cookie(v, size, "np_session", &off, &len) == 1) {
        if (off < 11 || off > size || len > size - off || memchr(v + off, ';', len) ||
            memcmp(v + off - 11, "np_session=", 11) != 0) {
            abort();
        }
    }
}

static void check_split(const char *v, size_t size)
{
    const char *nl = memchr(v, '\n', size);
    size_t ol = nl ? (size_t)(nl - v) : size;
    const char *auth = nl ? nl + 1 : v + size;
    size_t al = nl ? size - ol - 1 : 0;
    if (np_api_body_origin_ok(v, ol, auth, al)) {
        size_t skip = ol - al;
        if (al == 0 || (skip != 7 && skip != 8) || memcmp(v + skip, auth, al) != 0 ||
            memcmp(v, skip == 8 ? "https://" : "http://", skip) != 0) {
            abort();
        }
    }
    if (np_api_body_next_ok(v, size) && (size == 0 || v[0] != '/')) {
        abort();
    }
    /* The CSRF check: the part before the newline as the X-CSRF-Token. */
    struct np_web_session s = {.csrf = "0123456789abcdef"};
    bool ok = np_web_auth_csrf_ok(&s, v, ol, nl ? auth : NULL, al, "h:1", 3);
    if (ok && (ol != 16 || memcmp(v, s.csrf, 16) != 0)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *v = calloc(1, size ? size : 1);
    if (!v) {
        return 0;
    }
    if (size) {
        memcpy(v, data, size);
    }
    check_maint(v, size);
    check_login(v, size);
    check_cookie(v, size);
    check_split(v, size);
    free(v);
    return 0;
}
