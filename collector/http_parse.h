/* http_parse: the parts of an HTTP request the collector reads itself, as
 * pure functions over bytes (no h2o, no sockets, no allocation except the
 * inflated body), so they are unit-tested and fuzzed alone. h2o parses the
 * HTTP framing; these parse what is inside it:
 *
 *   - the bearer token of "Authorization: Bearer TOKEN" (RFC 6750 2.1);
 *   - query strings (application/x-www-form-urlencoded: '&'-separated
 *     key=value, '+' is a space, %XX escapes) and the parameters of the
 *     read API (from=, to=, step=, cf=, device=, iface=, probe=);
 *   - paths below /api/v1/sites/ ({id} and what follows it);
 *   - gzip request bodies, inflated under a hard cap.
 *
 * Every input is a (pointer, length) view, not NUL-terminated, borrowed for
 * the call. Outputs go to caller buffers with their sizes; nothing longer
 * than the buffer is ever written.
 *
 * Threads: any; no shared state. */
#ifndef NP_COLLECTOR_HTTP_PARSE_H
#define NP_COLLECTOR_HTTP_PARSE_H

#include "netpulse/err.h"

#include <stddef.h>
#include <stdint.h>

/* Largest decoded value of device=, iface=, probe= (with its NUL). */
#define NP_HTTP_QUERY_VALUE_MAX 1100
/* Largest site id taken from a path (with its NUL); state_db checks the
 * characters. */
#define NP_HTTP_SITE_ID_MAX 65
/* from= and to= are refused beyond +-2^42 s (about 139,000 years): far
 * outside RRD's range and far from int64 overflow once multiplied by 1000. */
#define NP_HTTP_TIME_LIMIT_S (INT64_C(1) << 42)

/* The token of an Authorization header value v[0..len) of the form
 * "Bearer TOKEN" (scheme case-insensitive, one or more spaces; TOKEN visible
 * ASCII without spaces, 1..out_len-1 bytes) into out, NUL-terminated.
 * v may be NULL (header absent). Returns 0, or -EINVAL (absent, other
 * scheme, empty, bad byte, too long: out is then left as an empty string
 * when out_len > 0). */
int np_http_bearer_token(const char *v, size_t len, char *out, size_t out_len);

/* Looks up key (NUL-terminated, matched exactly) in the query string
 * q[0..len) and percent-decodes the value of its first occurrence into out
 * (NUL-terminated). A key without '=' does not match. Returns 1 when found,
 * 0 when absent, -EINVAL when the value is malformed (bad or cut %XX, a
 * decoded NUL) or does not fit out_len. */
int np_http_query_get(const char *q, size_t len, const char *key, char *out, size_t out_len);

/* A whole decimal int64 (optional sign, no blanks) from the NUL-terminated s.
 * Returns 0 or -EINVAL (empty, trailing bytes, out of range). */
int np_http_parse_i64(const char *s, int64_t *out);

/* What follows /api/v1/sites/{id}. */
enum np_http_site_sub {
    NP_HTTP_SITE,          /* /api/v1/sites/{id} or /api/v1/sites/{id}/ */
    NP_HTTP_SITE_SERIES,   /* .../series */
    NP_HTTP_SITE_EVENTS,   /* .../events */
    NP_HTTP_SITE_OUTAGES,  /* .../outages */
    NP_HTTP_SITE_UPTIME,   /* .../uptime */
    NP_HTTP_SITE_CAPACITY, /* .../capacity */
};

#define NP_HTTP_SITES_PREFIX "/api/v1/sites/"

/* Splits a normalised path[0..len) that starts with NP_HTTP_SITES_PREFIX
 * into the site id (copied to site, NUL-terminated, 1..site_len-1 bytes,
 * no '/') and the sub-resource. Returns 0, or -ENOENT when the path is not
 * one of the forms above (the caller answers 404). The id's characters are
 * not checked here (np_state_db_check_id). */
int np_http_site_path(const char *path, size_t len, char *site, size_t site_len,
                      enum np_http_site_sub *sub);

/* Parameters of GET /api/v1/sites/{id}/series. */
struct np_http_series_query {
    int64_t from_s, to_s; /* default: the 24 hours before now */
    unsigned step_s;      /* 0: the finest archive */
    char cf[8];           /* "AVERAGE" (default) or "MAX" */
    char device[NP_HTTP_QUERY_VALUE_MAX];
    char iface[NP_HTTP_QUERY_VALUE_MAX];
    char probe[NP_HTTP_QUERY_VALUE_MAX];
};

/* Parses the series query q[0..len) into *out with now_s (wall seconds) for
 * the defaults. Returns NULL, or a static one-line reason (without newline)
 * for a 400: bad from/to/step/cf, malformed device/iface/probe, from not
 * before to. *out is fully written either way. */
const char *np_http_series_query_parse(const char *q, size_t len, int64_t now_s,
                                       struct np_http_series_query *out);

/* from= and to= of the events and outages lists: Unix seconds within
 * +-NP_HTTP_TIME_LIMIT_S, default [now_s - 30 days, now_s + 1). Returns NULL
 * or a static one-line reason (without newline) for a 400. */
const char *np_http_range_query_parse(const char *q, size_t len, int64_t now_s, int64_t *from_s,
                                      int64_t *to_s);

/* Inflates the gzip stream in[0..in_len) (one member, nothing after it) into
 * a new buffer *out of *out_len bytes (caller frees with free(); not
 * NUL-terminated; may be 0 bytes long). Never holds more than cap + 1 bytes
 * of output. Errors: NP_ETOOBIG (the stream inflates to more than cap
 * bytes), NP_EPROTO (not gzip, corrupt, truncated, trailing bytes), -ENOMEM;
 * err (may be NULL) says which. */
int np_http_gunzip(const uint8_t *in, size_t in_len, size_t cap, uint8_t **out, size_t *out_len,
                   struct np_err *err);

#endif
