/* http_parse: pure parsers of request pieces; see http_parse.h. */
#include "http_parse.h"

#include <zlib.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- bearer token ---- */

int np_http_bearer_token(const char *v, size_t len, char *out, size_t out_len)
{
    static const char scheme[] = "bearer ";
    const size_t sl = sizeof scheme - 1;
    if (out_len > 0) {
        out[0] = '\0';
    }
    if (!v || len <= sl || strncasecmp(v, scheme, sl) != 0) {
        return -EINVAL;
    }
    const char *t = v + sl;
    size_t n = len - sl;
    while (n > 0 && *t == ' ') {
        t++;
        n--;
    }
    if (n == 0 || n >= out_len) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        /* Visible ASCII only: a space, control byte or non-ASCII byte is not
         * part of any token we hand out (RFC 6750 b64token is narrower still). */
        if (t[i] <= 0x20 || t[i] >= 0x7f) {
            return -EINVAL;
        }
    }
    memcpy(out, t, n);
    out[n] = '\0';
    return 0;
}

/* ---- query strings ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int np_http_query_get(const char *q, size_t len, const char *key, char *out, size_t out_len)
{
    size_t klen = strlen(key);
    size_t i = 0;
    if (out_len == 0) {
        return -EINVAL;
    }
    while (i < len) {
        size_t end = i;
        while (end < len && q[end] != '&') {
            end++;
        }
        if (end - i > klen && memcmp(q + i, key, klen) == 0 && q[i + klen] == '=') {
            size_t o = 0;
            for (size_t p = i + klen + 1; p < end; p++) {
                char c = q[p];
                if (c == '+') {
                    c = ' ';
                } else if (c == '%') {
                    if (end - p < 3) {
                        return -EINVAL;
                    }
                    int h = hexval(q[p + 1]), l = hexval(q[p + 2]);
                    if (h < 0 || l < 0) {
                        return -EINVAL;
                    }
                    c = (char)(h * 16 + l);
                    p += 2;
                }
                if (c == '\0' || o + 1 >= out_len) {
                    return -EINVAL;
                }
                out[o++] = c;
            }
            out[o] = '\0';
            return 1;
        }
        i = end + 1;
    }
    return 0;
}

int np_http_parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    /* strtoll skips leading blanks; a parameter does not have them. */
    if (!*s || *s == ' ' || (*s >= '\t' && *s <= '\r') || *end || errno != 0) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* Looks key up and parses it as an int64 into *v (left alone when absent).
 * Returns 0 or -EINVAL. */
static int query_i64(const char *q, size_t len, const char *key, int64_t *v)
{
    char buf[32];
    int r = np_http_query_get(q, len, key, buf, sizeof buf);
    if (r < 0) {
        return r;
    }
    return r > 0 ? np_http_parse_i64(buf, v) : 0;
}

const char *np_http_series_query_parse(const char *q, size_t len, int64_t now_s,
                                       struct np_http_series_query *out)
{
    int64_t step = 0;
    memset(out, 0, sizeof *out);
    out->to_s = now_s;
    out->from_s = now_s - 86400;
    snprintf(out->cf, sizeof out->cf, "AVERAGE");
    if (query_i64(q, len, "from", &out->from_s) < 0) {
        return "from: expected Unix seconds";
    }
    if (query_i64(q, len, "to", &out->to_s) < 0) {
        return "to: expected Unix seconds";
    }
    if (query_i64(q, len, "step", &step) < 0 || step < 0 || step > 86400 * 366) {
        return "step: expected seconds";
    }
    if (np_http_query_get(q, len, "cf", out->cf, sizeof out->cf) < 0 ||
        (strcmp(out->cf, "AVERAGE") != 0 && strcmp(out->cf, "MAX") != 0)) {
        return "cf: AVERAGE or MAX";
    }
    if (np_http_query_get(q, len, "device", out->device, sizeof out->device) < 0 ||
        np_http_query_get(q, len, "iface", out->iface, sizeof out->iface) < 0 ||
        np_http_query_get(q, len, "probe", out->probe, sizeof out->probe) < 0) {
        return "device/iface/probe: malformed";
    }
    if (out->from_s >= out->to_s) {
        return "from must be before to";
    }
    out->step_s = (unsigned)step;
    return NULL;
}

static bool in_time_limit(int64_t t)
{
    return t >= -NP_HTTP_TIME_LIMIT_S && t <= NP_HTTP_TIME_LIMIT_S;
}

const char *np_http_range_query_parse(const char *q, size_t len, int64_t now_s, int64_t *from_s,
                                      int64_t *to_s)
{
    *to_s = now_s + 1;
    *from_s = now_s - 30 * 86400;
    if (query_i64(q, len, "from", from_s) < 0 || !in_time_limit(*from_s)) {
        return "from: expected Unix seconds";
    }
    if (query_i64(q, len, "to", to_s) < 0 || !in_time_limit(*to_s)) {
        return "to: expected Unix seconds";
    }
    if (*from_s >= *to_s) {
        return "from must be before to";
    }
    return NULL;
}

/* ---- paths ---- */

int np_http_site_path(const char *path, size_t len, char *site, size_t site_len,
                      enum np_http_site_sub *sub)
{
    static const struct {
        const char *tail;
        enum np_http_site_sub sub;
    } tails[] = {
        {"/", NP_HTTP_SITE}, /* a trailing '/' is fine */
        {"/series", NP_HTTP_SITE_SERIES},
        {"/events", NP_HTTP_SITE_EVENTS},
        {"/outages", NP_HTTP_SITE_OUTAGES},
        {"/uptime", NP_HTTP_SITE_UPTIME},
        {"/capacity", NP_HTTP_SITE_CAPACITY},
    };
    const size_t pl = sizeof NP_HTTP_SITES_PREFIX - 1;
    if (site_len > 0) {
        site[0] = '\0';
    }
    if (len < pl || memcmp(path, NP_HTTP_SITES_PREFIX, pl) != 0) {
        return -ENOENT;
    }
    const char *id = path + pl;
    size_t rest = len - pl;
    const char *slash = memchr(id, '/', rest);
    size_t id_len = slash ? (size_t)(slash - id) : rest;
    if (id_len == 0 || id_len >= site_len || memchr(id, '\0', id_len)) {
        return -ENOENT;
    }
    *sub = NP_HTTP_SITE;
    if (slash) {
        size_t tail = rest - id_len;
        size_t k;
        for (k = 0; k < sizeof tails / sizeof tails[0]; k++) {
            if (strlen(tails[k].tail) == tail && memcmp(slash, tails[k].tail, tail) == 0) {
                *sub = tails[k].sub;
                break;
            }
        }
        if (k == sizeof tails / sizeof tails[0]) {
            return -ENOENT;
        }
    }
    memcpy(site, id, id_len);
    site[id_len] = '\0';
    return 0;
}

/* ---- gzip ---- */

int np_http_gunzip(const uint8_t *in, size_t in_len, size_t cap, uint8_t **out, size_t *out_len,
                   struct np_err *err)
{
    z_stream zs;
    int rc = 0;
    *out = NULL;
    *out_len = 0;
    if (in_len > UINT32_MAX) {
        /* zlib's avail_in is 32 bits; no body we accept comes near. */
        return np_err_set(err, NP_ETOOBIG, "gzip: body of %zu bytes", in_len);
    }
    memset(&zs, 0, sizeof zs);
    /* 16 + MAX_WBITS: gzip framing only (header, CRC-32 and length checked). */
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        return np_err_set(err, -ENOMEM, "gzip: inflateInit failed");
    }
    /* A first guess of 4 x the input (in_len fits 32 bits: no overflow). */
    size_t size = in_len * 4 > 65536 ? in_len * 4 : 65536;
    if (size > cap + 1) {
        size = cap + 1;
    }
    uint8_t *buf = malloc(size);
    if (!buf) {
        rc = np_err_set(err, -ENOMEM, "gzip: out of memory");
        goto out_end;
    }
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)in_len;
    size_t have = 0;
    for (;;) {
        if (have == size) {
            if (size > cap) {
                rc = np_err_set(err, NP_ETOOBIG, "body inflates to more than %zu bytes", cap);
                goto out_free;
            }
            size_t nsize = size > (cap + 1) / 2 ? cap + 1 : size * 2;
            uint8_t *nb = realloc(buf, nsize);
            if (!nb) {
                rc = np_err_set(err, -ENOMEM, "gzip: out of memory");
                goto out_free;
            }
            buf = nb;
            size = nsize;
        }
        /* avail_out is 32 bits too: hand zlib at most 1 GiB at a time. */
        size_t room = size - have;
        zs.next_out = buf + have;
        zs.avail_out = (uInt)(room > (1u << 30) ? (1u << 30) : room);
        uInt before = zs.avail_out;
        int z = inflate(&zs, Z_NO_FLUSH);
        have += before - zs.avail_out;
        if (z == Z_STREAM_END) {
            if (zs.avail_in != 0) {
                rc = np_err_set(err, NP_EPROTO, "gzip: %u bytes after the end of the stream",
                                zs.avail_in);
                goto out_free;
            }
            break;
        }
        if (z == Z_BUF_ERROR && zs.avail_in == 0) {
            rc = np_err_set(err, NP_EPROTO, "gzip: truncated stream");
            goto out_free;
        }
        if (z != Z_OK && z != Z_BUF_ERROR) {
            rc = np_err_set(err, NP_EPROTO, "gzip: %s", zs.msg ? zs.msg : "corrupt stream");
            goto out_free;
        }
    }
    if (have > cap) {
        rc = np_err_set(err, NP_ETOOBIG, "body inflates to more than %zu bytes", cap);
        goto out_free;
    }
    *out = buf;
    *out_len = have;
    inflateEnd(&zs);
    return 0;

out_free:
    free(buf);
out_end:
    inflateEnd(&zs);
    return rc;
}
