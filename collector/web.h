/* web: the dashboard's files, graphs and report downloads, served by the
 * collector itself (no CDN, nothing from the internet).
 *
 *   GET /                    WEB_ROOT/index.html (overview)
 *   GET /sites/{id}          WEB_ROOT/site.html (the page reads the id from
 *                            its own address; alert e-mails link here)
 *   GET /district            WEB_ROOT/district.html
 *   GET /FILE                WEB_ROOT/FILE for the types below
 *   GET /graph/site/{id}/traffic.png|svg?...   rrd_graph.h
 *   GET /api/v1/report?year=YYYY&format=html|csv   the annual report
 *       (report.h) generated in a pool job, as a download; one at a time
 *       (503 while another runs).
 *
 * Static files. A URL path is mapped to a file only when every segment is
 * [A-Za-z0-9_-][A-Za-z0-9._-]* (no "..", no hidden files, no '%'), then the
 * file's realpath must lie under the realpath of web_root: a symlink that
 * leads out is refused (404) like a missing file. Types: html, js (text/
 * javascript), css, svg, png, ico, json, txt; anything else is 404. Answers
 * carry a weak ETag (size and mtime) with Cache-Control no-cache, and
 * If-None-Match gives 304. Files over 8 MiB are refused.
 *
 * Access control and security headers come from web_auth.h's guard.
 * Files, SQLite and RRD are read in libuv pool jobs. Loop thread otherwise. */
#ifndef NP_COLLECTOR_WEB_H
#define NP_COLLECTOR_WEB_H

#include "http_server.h"
#include "netpulse/err.h"

#include <uv.h>

struct np_rrd_store;
struct np_collector_targets;
struct np_web;

struct np_web_opts {
    const char *web_root;                       /* copied; missing: pages answer 503 */
    const char *state_db_path;                  /* copied */
    struct np_rrd_store *rrd;                   /* borrowed; NULL: graphs 503 */
    const struct np_collector_targets *targets; /* borrowed; reports */
};

/* Resolves web_root (a missing folder is logged, not an error) and opens a
 * database connection for graphs. *out freed with np_web_free(). Blocking:
 * before the loop runs. Errors: NP_EDB, -ENOMEM. */
int np_web_new(uv_loop_t *loop, const struct np_web_opts *o, struct np_web **out,
               struct np_err *err);

/* Adds the routes; the catch-all "/" is added last, so register the web
 * after every other module. Errors: -ENOMEM. */
int np_web_register(struct np_web *w, struct np_http_server *server);

/* Jobs still running. */
unsigned np_web_busy(const struct np_web *w);

/* Frees; accepts NULL. Only when np_web_busy() is 0. */
void np_web_free(struct np_web *w);

/* Maps a URL path to a file name relative to web_root into out ("" and -1
 * when the path names no servable file). Pure; exposed for the tests. */
int np_web_map_path(const char *path, size_t len, char *out, size_t out_len);

/* The content type for a file name, NULL when not served. */
const char *np_web_content_type(const char *name);

#endif
