/* web: static files, rrd graphs and report downloads; see web.h. */
#include "web.h"

#include "collector_config.h"
#include "iface_key.h"
#include "report.h"
#include "rrd_graph.h"
#include "rrd_store.h"
#include "state_db.h"

#include "netpulse/clock.h"
#include "netpulse/log.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILE_BYTES (8u << 20)
#define GRAPH_PREFIX "/graph/site/"

struct np_web {
    uv_loop_t *loop;
    char *root;      /* realpath of web_root; NULL when missing */
    char *root_conf; /* as configured */
    char *db_path;
    struct np_state_db *db; /* graph jobs, under mu */
    uv_mutex_t mu;
    struct np_rrd_store *rrd;
    const struct np_collector_targets *targets;
    unsigned busy;
    bool report_running;
};

/* ---- paths and types ---- */

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".json", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
};

const char *np_web_content_type(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t e = strlen(types[i].ext);
        if (n > e && strcmp(name + n - e, types[i].ext) == 0) {
            return types[i].type;
        }
    }
    return NULL;
}

static bool seg_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || (!first && c == '.');
}

int np_web_map_path(const char *path, size_t len, char *out, size_t out_len)
{
    out[0] = '\0';
    if (len == 0 || path[0] != '/' || len >= 256 || out_len < 32) {
        return -1;
    }
    if (len == 1) {
        snprintf(out, out_len, "index.html");
        return 0;
    }
    if ((len == 9 && memcmp(path, "/district", 9) == 0) ||
        (len == 10 && memcmp(path, "/district/", 10) == 0)) {
        snprintf(out, out_len, "district.html");
        return 0;
    }
    if (len > 7 && memcmp(path, "/sites/", 7) == 0) {
        char id[NP_STATE_DB_MAX_ID + 1];
        size_t n = len - 7;
        if (path[len - 1] == '/') {
            n--;
        }
        if (n == 0 || n > NP_STATE_DB_MAX_ID) {
            return -1;
        }
        memcpy(id, path + 7, n);
        id[n] = '\0';
        if (np_state_db_check_id(id) != 0) {
            return -1;
        }
        snprintf(out, out_len, "site.html");
        return 0;
    }
    /* Every segment [A-Za-z0-9_-][A-Za-z0-9._-]*: no "..", no ".hidden". */
    size_t o = 0;
    bool first = true;
    for (size_t i = 1; i < len; i++) {
        char c = path[i];
        if (c == '/') {
            if (first) {
                return -1; /* "//" or a trailing '/' */
            }
            first = true;
        } else {
            if (!seg_char(c, first)) {
                return -1;
            }
            first = false;
        }
        if (o + 1 >= out_len) {
            return -1;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    if (first || !np_web_content_type(out)) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

/* ---- jobs ---- */

enum job_kind { JOB_FILE, JOB_GRAPH, JOB_REPORT };

struct job {
    uv_work_t work;
    struct np_web *web;
    struct np_http_pending *pending;
    enum job_kind kind;
    char rel[256];
    struct np_graph_req graph;
    int year;
    enum np_report_format format;
    /* result */
    int status;
    const char *type;
    char etag[64];
    char *body;
    size_t len;
    char msg[256];
};

static void job_fail(struct job *j, int status, const char *msg)
{
    j->status = status;
    snprintf(j->msg, sizeof j->msg, "%s\n", msg);
}

/* Reads path (already checked) into j. */
static void read_whole(struct job *j, const char *path, bool want_etag)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        job_fail(j, 404, "not found");
        goto out;
    }
    if ((uint64_t)st.st_size > MAX_FILE_BYTES * 4u) {
        job_fail(j, 500, "file too large");
        goto out;
    }
    j->body = malloc((size_t)st.st_size + 1);
    if (!j->body) {
        job_fail(j, 503, "out of memory");
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, j->body + got, (size_t)st.st_size - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) {
                continue;
            }
            break;
        }
        got += (size_t)r;
    }
    if (got != (size_t)st.st_size) {
        free(j->body);
        j->body = NULL;
        job_fail(j, 500, "read failed");
        goto out;
    }
    j->len = got;
    if (want_etag) {
        snprintf(j->etag, sizeof j->etag, "W/\"%jx-%jx-%lx\"", (uintmax_t)st.st_size,
                 (uintmax_t)st.st_mtim.tv_sec, (unsigned long)st.st_mtim.tv_nsec);
    }
    j->status = 200;
out:
    if (fd >= 0) {
        close(fd);
    }
}

static void job_file(struct job *j)
{
    char full[PATH_MAX], real[PATH_MAX];
    const char *root = j->web->root;
    size_t rl = strlen(root);
    int n = snprintf(full, sizeof full, "%s/%s", root, j->rel);
    if (n < 0 || (size_t)n >= sizeof full) {
        job_fail(j, 404, "not found");
        return;
    }
    /* Symlinks are resolved, and the result must still be under the root. */
    if (!realpath(full, real) || strncmp(real, root, rl) != 0 || real[rl] != '/') {
        job_fail(j, 404, "not found");
        return;
    }
    read_whole(j, real, true);
    if (j->status == 200 && j->len > MAX_FILE_BYTES) {
        free(j->body);
        j->body = NULL;
        job_fail(j, 500, "file too large");
    }
}

/* The interface to draw: the one asked for (it must exist), else the uplink
 * as report_data.h picks it (alias or name with "uplink"/"wan", else the
 * fastest, else the first). */
static json_t *pick_iface(json_t *ifaces, const struct np_graph_req *r)
{
    size_t i;
    json_t *it, *best = NULL;
    json_int_t best_speed = -1;
    json_array_foreach(ifaces, i, it)
    {
        const char *dev = json_string_value(json_object_get(it, "device"));
        const char *ifk = json_string_value(json_object_get(it, "iface"));
        if (!dev || !ifk) {
            continue;
        }
        if (r->device[0]) {
            if (strcmp(dev, r->device) == 0 && strcmp(ifk, r->iface) == 0) {
                return it;
            }
            continue;
        }
        const char *alias = json_string_value(json_object_get(it, "if_alias"));
        const char *name = json_string_value(json_object_get(it, "if_name"));
        if (np_iface_named_uplink(name, alias)) {
            return it;
        }
        json_int_t sp = json_integer_value(json_object_get(it, "speed_bps"));
        if (sp > best_speed) {
            best = it;
            best_speed = sp;
        }
    }
    return r->device[0] ? NULL : best;
}

static void job_graph(struct job *j)
{
    struct np_web *w = j->web;
    struct np_err err = {0};
    json_t *site = NULL;
    char path[PATH_MAX];
    struct np_graph_args args;
    unsigned char *img = NULL;
    size_t len = 0;

    uv_mutex_lock(&w->mu);
    int rc = np_state_db_site_json(w->db, j->graph.site, &site, &err);
    uv_mutex_unlock(&w->mu);
    if (rc == -ENOENT) {
        job_fail(j, 404, "no such site");
        return;
    }
    if (rc != 0) {
        job_fail(j, 503, "database unavailable");
        return;
    }
    json_t *it = pick_iface(json_object_get(site, "interfaces"), &j->graph);
    if (!it) {
        job_fail(j, 404, j->graph.device[0] ? "no such interface" : "no interface data yet");
        goto out;
    }
    const char *dev = json_string_value(json_object_get(it, "device"));
    const char *ifk = json_string_value(json_object_get(it, "iface"));
    json_int_t cap = json_integer_value(json_object_get(site, "circuit_bps"));
    if (cap <= 0) {
        cap = json_integer_value(json_object_get(it, "speed_bps"));
    }
    if (np_rrd_store_path(w->rrd, NP_RRD_IFACE, j->graph.site, dev, ifk, path, sizeof path) != 0 ||
        access(path, R_OK) != 0) {
        job_fail(j, 404, "no series for this interface");
        goto out;
    }
    if (np_rrd_graph_build(&j->graph, path, cap > 0 ? (uint64_t)cap : 0, &args, &err) != 0) {
        job_fail(j, 500, "graph: cannot build the definition");
        goto out;
    }
    np_rrd_store_flush(w->rrd, NP_RRD_IFACE, j->graph.site, dev, ifk, NULL);
    rc = np_rrd_store_graph(w->rrd, args.argc, args.argv, &img, &len, &err);
    if (rc != 0) {
        np_log(NP_LOG_WARN, "web: graph failed site=%s err=%s", j->graph.site, err.msg);
        job_fail(j, 500, "graph: rendering failed");
        goto out;
    }
    j->body = (char *)img;
    j->len = len;
    j->type = np_rrd_graph_content_type(j->graph.format);
    j->status = 200;
out:
    json_decref(site);
}

static void job_report(struct job *j)
{
    struct np_web *w = j->web;
    struct np_err err = {0};
    struct np_state_db *db = NULL;
    char dir[] = "/tmp/netpulse-report-XXXXXX";
    char out[64];
    if (!mkdtemp(dir)) {
        job_fail(j, 503, "cannot make a temporary folder");
        return;
    }
    snprintf(out, sizeof out, "%s/report", dir);
    int rc = np_state_db_open(w->db_path, &db, &err);
    if (rc == 0) {
        struct np_report_ctx ctx = {db, w->rrd, w->targets, np_clock_wall_ms()};
        struct np_report_options opt = {
            .year = j->year, .format = j->format, .out_path = out, .graphs = true};
        rc = np_report_annual(&ctx, &opt, NULL, &err);
    }
    np_state_db_close(db);
    if (rc != 0) {
        np_log(NP_LOG_WARN, "web: report failed year=%d err=%s", j->year, err.msg);
        job_fail(j, rc == -EINVAL ? 400 : 503, "report failed");
    } else {
        read_whole(j, out, false);
        j->type =
            j->format == NP_REPORT_CSV ? "text/csv; charset=utf-8" : "text/html; charset=utf-8";
    }
    unlink(out);
    char tmp[80];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    unlink(tmp);
    rmdir(dir);
}

static void work_job(uv_work_t *wk)
{
    struct job *j = wk->data;
    switch (j->kind) {
    case JOB_FILE:
        job_file(j);
        if (j->status == 200) {
            j->type = np_web_content_type(j->rel);
        }
        break;
    case JOB_GRAPH:
        job_graph(j);
        break;
    case JOB_REPORT:
        job_report(j);
        break;
    }
}

static void after_job(uv_work_t *wk, int status)
{
    struct job *j = wk->data;
    struct np_web *w = j->web;
    struct st_h2o_req_t *req = np_http_pending_req(j->pending);
    w->busy--;
    if (j->kind == JOB_REPORT) {
        w->report_running = false;
    }
    if (status != 0 && j->status == 0) {
        job_fail(j, 503, "cancelled");
    }
    if (!req) {
        np_http_pending_free(j->pending);
    } else if (j->status == 200) {
        if (j->kind == JOB_FILE) {
            struct np_http_view inm = np_http_header(req, "if-none-match");
            np_http_add_header(req, "etag", j->etag);
            np_http_add_header(req, "cache-control", "no-cache");
            if (inm.base && np_http_view_is(inm, j->etag)) {
                np_http_pending_reply(j->pending, 304, "Not Modified", NULL, "", 0);
                goto out;
            }
        } else if (j->kind == JOB_GRAPH) {
            np_http_add_header(req, "cache-control", "private, max-age=60");
        } else {
            char cd[100];
            snprintf(cd, sizeof cd, "attachment; filename=\"netpulse-report-%d.%s\"", j->year,
                     j->format == NP_REPORT_CSV ? "csv" : "html");
            np_http_add_header(req, "content-disposition", cd);
        }
        np_http_pending_reply(j->pending, 200, "OK", j->type, j->body, j->len);
    } else {
        np_http_pending_reply(j->pending, j->status,
                              j->status == 404   ? "Not Found"
                              : j->status == 400 ? "Bad Request"
                              : j->status == 500 ? "Internal Server Error"
                                                 : "Service Unavailable",
                              "text/plain; charset=utf-8", j->msg, strlen(j->msg));
    }
out:
    free(j->body);
    free(j);
}

static void reply_text(struct st_h2o_req_t *req, int status, const char *reason, const char *text)
{
    np_http_reply(req, status, reason, "text/plain; charset=utf-8", text, strlen(text));
}

static int start_job(struct np_web *w, struct st_h2o_req_t *req, struct job *j)
{
    j->web = w;
    j->work.data = j;
    j->pending = np_http_pending_new(req);
    if (!j->pending || uv_queue_work(w->loop, &j->work, work_job, after_job) != 0) {
        np_http_pending_free(j->pending);
        free(j);
        reply_text(req, 503, "Service Unavailable", "cannot queue work\n");
        return 0;
    }
    w->busy++;
    return 0;
}

static bool reading(struct st_h2o_req_t *req)
{
    struct np_http_view m = np_http_method(req);
    return np_http_view_is(m, "GET") || np_http_view_is(m, "HEAD");
}

static int on_static(void *ctx, struct st_h2o_req_t *req)
{
    struct np_web *w = ctx;
    if (!reading(req)) {
        reply_text(req, 405, "Method Not Allowed", "GET only\n");
        return 0;
    }
    struct np_http_view p = np_http_path(req);
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        reply_text(req, 503, "Service Unavailable", "out of memory\n");
        return 0;
    }
    if (np_web_map_path(p.base, p.len, j->rel, sizeof j->rel) != 0) {
        free(j);
        return -1; /* 404 */
    }
    if (!w->root) {
        free(j);
        reply_text(req, 503, "Service Unavailable", "dashboard files not installed (web_root)\n");
        return 0;
    }
    j->kind = JOB_FILE;
    return start_job(w, req, j);
}

static int on_graph(void *ctx, struct st_h2o_req_t *req)
{
    struct np_web *w = ctx;
    struct np_err err = {0};
    if (!reading(req)) {
        reply_text(req, 405, "Method Not Allowed", "GET only\n");
        return 0;
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        reply_text(req, 503, "Service Unavailable", "out of memory\n");
        return 0;
    }
    struct np_http_view p = np_http_path(req);
    struct np_http_view q = np_http_query(req);
    size_t pl = strlen(GRAPH_PREFIX);
    if (np_rrd_graph_parse(p.base + pl, p.len - pl, q.base, q.len, np_clock_wall_ms() / 1000,
                           &j->graph, &err) != 0) {
        free(j);
        char msg[300];
        snprintf(msg, sizeof msg, "%s\n", err.msg);
        reply_text(req, 400, "Bad Request", msg);
        return 0;
    }
    if (!w->rrd) {
        free(j);
        reply_text(req, 503, "Service Unavailable", "no RRD store\n");
        return 0;
    }
    j->kind = JOB_GRAPH;
    return start_job(w, req, j);
}

static int on_report(void *ctx, struct st_h2o_req_t *req)
{
    struct np_web *w = ctx;
    if (!reading(req)) {
        reply_text(req, 405, "Method Not Allowed", "GET only\n");
        return 0;
    }
    struct np_http_view q = np_http_query(req);
    int year = 0, fmt = -1;
    bool bad = false, seen_y = false, seen_f = false;
    size_t i = 0;
    while (i < q.len && !bad) {
        size_t end = i;
        while (end < q.len && q.base[end] != '&') {
            end++;
        }
        size_t n = end - i;
        const char *s = q.base + i;
        if (n == 9 && memcmp(s, "year=", 5) == 0 && !seen_y) {
            seen_y = true;
            for (size_t k = 5; k < 9; k++) {
                if (s[k] < '0' || s[k] > '9') {
                    bad = true;
                }
                year = year * 10 + (s[k] - '0');
            }
        } else if (n == 11 && memcmp(s, "format=html", 11) == 0 && !seen_f) {
            seen_f = true;
            fmt = NP_REPORT_HTML;
        } else if (n == 10 && memcmp(s, "format=csv", 10) == 0 && !seen_f) {
            seen_f = true;
            fmt = NP_REPORT_CSV;
        } else {
            bad = true;
        }
        i = end + 1;
    }
    if (bad || !seen_y || year < 2000 || year > 2200) {
        reply_text(req, 400, "Bad Request", "report: year=YYYY&format=html|csv\n");
        return 0;
    }
    if (w->report_running) {
        reply_text(req, 503, "Service Unavailable", "another report is being generated\n");
        return 0;
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        reply_text(req, 503, "Service Unavailable", "out of memory\n");
        return 0;
    }
    j->kind = JOB_REPORT;
    j->year = year;
    j->format = fmt < 0 ? NP_REPORT_HTML : (enum np_report_format)fmt;
    unsigned before = w->busy;
    int rc = start_job(w, req, j);
    w->report_running = w->busy > before; /* queued: after_job clears it */
    return rc;
}

int np_web_new(uv_loop_t *loop, const struct np_web_opts *o, struct np_web **out,
               struct np_err *err)
{
    *out = NULL;
    struct np_web *w = calloc(1, sizeof *w);
    if (!w) {
        return np_err_set(err, -ENOMEM, "web: out of memory");
    }
    int rc;
    if (uv_mutex_init(&w->mu) != 0) {
        free(w);
        return np_err_set(err, -ENOMEM, "web: mutex init failed");
    }
    w->root_conf = strdup(o->web_root ? o->web_root : "");
    w->db_path = strdup(o->state_db_path);
    if (!w->root_conf || !w->db_path) {
        rc = np_err_set(err, -ENOMEM, "web: out of memory");
        goto out_free;
    }
    char real[PATH_MAX];
    if (w->root_conf[0] && realpath(w->root_conf, real)) {
        w->root = strdup(real);
        if (!w->root) {
            rc = np_err_set(err, -ENOMEM, "web: out of memory");
            goto out_free;
        }
    } else {
        np_log(NP_LOG_WARN, "web: dashboard files missing web_root=%s err=%s", w->root_conf,
               strerror(errno));
    }
    rc = np_state_db_open(w->db_path, &w->db, err);
    if (rc != 0) {
        goto out_free;
    }
    w->loop = loop;
    w->rrd = o->rrd;
    w->targets = o->targets;
    *out = w;
    return 0;

out_free:
    free(w->root);
    free(w->root_conf);
    free(w->db_path);
    uv_mutex_destroy(&w->mu);
    free(w);
    return rc;
}

int np_web_register(struct np_web *w, struct np_http_server *server)
{
    if (np_http_server_route(server, GRAPH_PREFIX, true, on_graph, w) != 0 ||
        np_http_server_route(server, "/api/v1/report", false, on_report, w) != 0 ||
        np_http_server_route(server, "/", true, on_static, w) != 0) {
        return -ENOMEM;
    }
    return 0;
}

unsigned np_web_busy(const struct np_web *w)
{
    return w ? w->busy : 0;
}

void np_web_free(struct np_web *w)
{
    if (!w) {
        return;
    }
    np_state_db_close(w->db);
    uv_mutex_destroy(&w->mu);
    free(w->root);
    free(w->root_conf);
    free(w->db_path);
    free(w);
}
