/* rrd_graph: the classic RRDtool graphs of the dashboard (PNG or SVG, for
 * wikis and e-mails):
 *
 *   GET /graph/site/{id}/traffic.png|svg?range=day|week|month|year
 *                                       | from=S&to=S
 *                                       [&width=W&height=H][&device=D&iface=I]
 *
 * in/out bits per second of the site's uplink (or of device/iface), the 95th
 * percentile of each direction (VDEF PERCENT) and the circuit rate (HRULE).
 *
 * Nothing a client sends reaches rrd_graph's command line as text: the site id
 * must pass state_db's id rule (and exist), range is one of four words,
 * from/to/width/height are decimal digits within bounds, device and iface
 * must name an interface the database knows for the site and reach librrd
 * only as the file path rrd_store builds (its file-name escaping); the path
 * itself is refused when it holds ':', '\\' or a control character. Every
 * other query key, a repeated key or a malformed escape is an error (400).
 *
 * The argument vector is built here; rendering goes through rrd_store.h
 * np_rrd_store_graph (the one module that includes rrd.h).
 *
 * Threads: pure functions, any thread. */
#ifndef NP_COLLECTOR_RRD_GRAPH_H
#define NP_COLLECTOR_RRD_GRAPH_H

#include "netpulse/err.h"

#include <stddef.h>
#include <stdint.h>

#define NP_GRAPH_NAME_MAX 257 /* device / iface from the query, with the NUL */
#define NP_GRAPH_MIN_WIDTH 200
#define NP_GRAPH_MAX_WIDTH 2000
#define NP_GRAPH_MIN_HEIGHT 80
#define NP_GRAPH_MAX_HEIGHT 1000
#define NP_GRAPH_MAX_SPAN_S (11LL * 366 * 86400)
#define NP_GRAPH_MAX_ARGS 40

enum np_graph_format { NP_GRAPH_PNG, NP_GRAPH_SVG };

struct np_graph_req {
    char site[65];
    enum np_graph_format format;
    int64_t from_s, to_s;
    unsigned width, height;
    char device[NP_GRAPH_NAME_MAX]; /* "" : the site's uplink */
    char iface[NP_GRAPH_NAME_MAX];
};

/* Parses the path after "/graph/site/" ("ID/traffic.png") and the raw query
 * string (without '?'; not NUL-terminated, len bytes) at now_s. Defaults:
 * range=day, width 800, height 250. Errors: -EINVAL with the reason in err
 * (safe to show: it never echoes input). */
int np_rrd_graph_parse(const char *path, size_t path_len, const char *query, size_t query_len,
                       int64_t now_s, struct np_graph_req *out, struct np_err *err);

/* The argument vector for np_rrd_store_graph: options and elements, no
 * program or file name. Strings point into args (owned by it). */
struct np_graph_args {
    int argc;
    const char *argv[NP_GRAPH_MAX_ARGS];
    char buf[8192];
    size_t used;
};

/* Builds the arguments for r over the RRD file rrd_path (from
 * np_rrd_store_path) with the capacity line at capacity_bps (0: none).
 * Errors: -EINVAL (a path with ':', '\\' or control characters), -E2BIG. */
int np_rrd_graph_build(const struct np_graph_req *r, const char *rrd_path, uint64_t capacity_bps,
                       struct np_graph_args *out, struct np_err *err);

/* The content type of the format. */
const char *np_rrd_graph_content_type(enum np_graph_format f);

#endif
