/* rrd_graph: strict parameters and rrdgraph arguments; see rrd_graph.h. */
#include "rrd_graph.h"

#include "capacity.h"

#include "state_db.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decodes [s, s+n) into out (len bytes with the NUL); '+' is a
 * space. -1 on a bad escape, a NUL or a control byte, or when too long. */
static int decode(const char *s, size_t n, char *out, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int h = i + 2 < n ? hexval(s[i + 1]) : -1;
            int l = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (h < 0 || l < 0) {
                return -1;
            }
            c = (unsigned char)(h * 16 + l);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f || o + 1 >= len) {
            return -1;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

/* Decimal digits only, 1..max_digits of them, into *v. */
static int digits(const char *s, unsigned max_digits, int64_t *v)
{
    size_t n = strlen(s);
    if (n == 0 || n > max_digits) {
        return -1;
    }
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return 0;
}

enum key { K_RANGE, K_FROM, K_TO, K_WIDTH, K_HEIGHT, K_DEVICE, K_IFACE, K_N };
static const char *const key_names[K_N] = {"range",  "from",   "to",   "width",
                                           "height", "device", "iface"};

int np_rrd_graph_parse(const char *path, size_t path_len, const char *query, size_t query_len,
                       int64_t now_s, struct np_graph_req *out, struct np_err *err)
{
    static const char *const exts[] = {"/traffic.png", "/traffic.svg"};
    char vals[K_N][NP_GRAPH_NAME_MAX];
    bool seen[K_N] = {false};
    memset(out, 0, sizeof *out);

    /* ID "/traffic." EXT */
    const char *slash = memchr(path, '/', path_len);
    size_t id_len = slash ? (size_t)(slash - path) : path_len;
    if (!slash || id_len == 0 || id_len >= sizeof out->site) {
        return np_err_set(err, -EINVAL, "graph: path must be /graph/site/ID/traffic.png|svg");
    }
    size_t tail = path_len - id_len;
    int fmt = -1;
    for (int i = 0; i < 2; i++) {
        if (tail == strlen(exts[i]) && memcmp(slash, exts[i], tail) == 0) {
            fmt = i;
        }
    }
    memcpy(out->site, path, id_len);
    out->site[id_len] = '\0';
    if (fmt < 0 || np_state_db_check_id(out->site) != 0) {
        return np_err_set(err, -EINVAL, "graph: path must be /graph/site/ID/traffic.png|svg");
    }
    out->format = fmt == 0 ? NP_GRAPH_PNG : NP_GRAPH_SVG;

    /* Query: known keys once each. */
    size_t i = 0;
    while (i < query_len) {
        size_t end = i;
        while (end < query_len && query[end] != '&') {
            end++;
        }
        if (end == i) { /* "&&" or a trailing '&' */
            i = end + 1;
            continue;
        }
        const char *eq = memchr(query + i, '=', end - i);
        if (!eq) {
            return np_err_set(err, -EINVAL, "graph: query parameters are KEY=VALUE");
        }
        size_t kl = (size_t)(eq - (query + i));
        int k = -1;
        for (int x = 0; x < K_N; x++) {
            if (kl == strlen(key_names[x]) && memcmp(query + i, key_names[x], kl) == 0) {
                k = x;
            }
        }
        if (k < 0) {
            return np_err_set(err, -EINVAL,
                              "graph: unknown parameter (range, from, to, width, height, "
                              "device, iface)");
        }
        if (seen[k]) {
            return np_err_set(err, -EINVAL, "graph: parameter %s given twice", key_names[k]);
        }
        seen[k] = true;
        if (decode(eq + 1, (size_t)(query + end - eq - 1), vals[k], sizeof vals[k]) != 0 ||
            vals[k][0] == '\0') {
            return np_err_set(err, -EINVAL, "graph: %s: malformed value", key_names[k]);
        }
        i = end + 1;
    }

    int64_t span = 86400;
    if (seen[K_RANGE]) {
        static const char *const ranges[] = {"day", "week", "month", "year"};
        static const int64_t spans[] = {86400, 7 * 86400, 31 * 86400, 366 * 86400};
        int r = -1;
        for (int x = 0; x < 4; x++) {
            if (strcmp(vals[K_RANGE], ranges[x]) == 0) {
                r = x;
            }
        }
        if (r < 0 || seen[K_FROM] || seen[K_TO]) {
            return np_err_set(err, -EINVAL,
                              "graph: range is day, week, month or year (and excludes from/to)");
        }
        span = spans[r];
    }
    if (seen[K_FROM] != seen[K_TO]) {
        return np_err_set(err, -EINVAL, "graph: from and to go together");
    }
    if (seen[K_FROM]) {
        if (digits(vals[K_FROM], 11, &out->from_s) != 0 ||
            digits(vals[K_TO], 11, &out->to_s) != 0 || out->from_s >= out->to_s ||
            out->to_s - out->from_s > NP_GRAPH_MAX_SPAN_S || out->from_s < 86400 * 365LL * 20) {
            return np_err_set(err, -EINVAL,
                              "graph: from/to are Unix seconds, from < to, at most 11 years apart");
        }
    } else {
        out->to_s = now_s;
        out->from_s = now_s - span;
    }
    int64_t w = 800, h = 250;
    if ((seen[K_WIDTH] && digits(vals[K_WIDTH], 4, &w) != 0) || w < NP_GRAPH_MIN_WIDTH ||
        w > NP_GRAPH_MAX_WIDTH) {
        return np_err_set(err, -EINVAL, "graph: width is %d..%d", NP_GRAPH_MIN_WIDTH,
                          NP_GRAPH_MAX_WIDTH);
    }
    if ((seen[K_HEIGHT] && digits(vals[K_HEIGHT], 4, &h) != 0) || h < NP_GRAPH_MIN_HEIGHT ||
        h > NP_GRAPH_MAX_HEIGHT) {
        return np_err_set(err, -EINVAL, "graph: height is %d..%d", NP_GRAPH_MIN_HEIGHT,
                          NP_GRAPH_MAX_HEIGHT);
    }
    out->width = (unsigned)w;
    out->height = (unsigned)h;
    if (seen[K_DEVICE] != seen[K_IFACE]) {
        return np_err_set(err, -EINVAL, "graph: device and iface go together");
    }
    if (seen[K_DEVICE]) {
        memcpy(out->device, vals[K_DEVICE], sizeof out->device);
        memcpy(out->iface, vals[K_IFACE], sizeof out->iface);
    }
    return 0;
}

/* Appends one formatted argument to a. */
__attribute__((format(printf, 2, 3))) static int arg(struct np_graph_args *a, const char *fmt, ...)
{
    if (a->argc >= NP_GRAPH_MAX_ARGS - 1 || a->used >= sizeof a->buf) {
        return -E2BIG;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(a->buf + a->used, sizeof a->buf - a->used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof a->buf - a->used) {
        return -E2BIG;
    }
    a->argv[a->argc++] = a->buf + a->used;
    a->used += (size_t)n + 1;
    return 0;
}

int np_rrd_graph_build(const struct np_graph_req *r, const char *rrd_path, uint64_t capacity_bps,
                       struct np_graph_args *out, struct np_err *err)
{
    memset(out, 0, sizeof *out);
    for (const unsigned char *p = (const unsigned char *)rrd_path; *p; p++) {
        /* ':' separates rrdgraph fields; the rest never belong in a path. */
        if (*p == ':' || *p == '\\' || *p < 0x20 || *p == 0x7f) {
            return np_err_set(err, -EINVAL, "graph: RRD path not usable in a graph definition");
        }
    }
    if (np_state_db_check_id(r->site) != 0) {
        return np_err_set(err, -EINVAL, "graph: bad site id");
    }
    int rc = 0;
    rc |= arg(out, "--imgformat");
    rc |= arg(out, "%s", r->format == NP_GRAPH_SVG ? "SVG" : "PNG");
    rc |= arg(out, "--start");
    rc |= arg(out, "%" PRId64, r->from_s);
    rc |= arg(out, "--end");
    rc |= arg(out, "%" PRId64, r->to_s);
    rc |= arg(out, "--width");
    rc |= arg(out, "%u", r->width);
    rc |= arg(out, "--height");
    rc |= arg(out, "%u", r->height);
    rc |= arg(out, "--title");
    rc |= arg(out, "%s traffic", r->site);
    rc |= arg(out, "--vertical-label");
    rc |= arg(out, "bits per second");
    rc |= arg(out, "--base");
    rc |= arg(out, "1000");
    rc |= arg(out, "--lower-limit");
    rc |= arg(out, "0");
    rc |= arg(out, "DEF:in=%s:in_bps:AVERAGE", rrd_path);
    rc |= arg(out, "DEF:out=%s:out_bps:AVERAGE", rrd_path);
    /* The 95th percentiles over 5-minute averages (the billing convention,
     * as the API and reports), not over the coarser rows a week or a year
     * is drawn from. */
    rc |= arg(out, "DEF:in5=%s:in_bps:AVERAGE:step=%d", rrd_path, NP_P95_STEP_S);
    rc |= arg(out, "DEF:out5=%s:out_bps:AVERAGE:step=%d", rrd_path, NP_P95_STEP_S);
    rc |= arg(out, "VDEF:in95=in5,95,PERCENT");
    rc |= arg(out, "VDEF:out95=out5,95,PERCENT");
    rc |= arg(out, "AREA:in#66bb6a:In");
    rc |= arg(out, "LINE1:out#1565c0:Out");
    rc |= arg(out, "LINE1:in95#1b5e20:In 95th percentile:dashes");
    rc |= arg(out, "LINE1:out95#0d47a1:Out 95th percentile:dashes");
    if (capacity_bps > 0) {
        rc |= arg(out, "HRULE:%" PRIu64 "#c62828:Capacity", capacity_bps);
    }
    rc |= arg(out, "GPRINT:in95:In 95th %%.2lf %%sbps");
    rc |= arg(out, "GPRINT:out95:Out 95th %%.2lf %%sbps (5-minute averages)\\n");
    rc |= arg(out, "COMMENT:Times in UTC");
    if (rc != 0) {
        return np_err_set(err, -E2BIG, "graph: arguments too long");
    }
    return 0;
}

const char *np_rrd_graph_content_type(enum np_graph_format f)
{
    return f == NP_GRAPH_SVG ? "image/svg+xml" : "image/png";
}
