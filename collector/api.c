/* api: read endpoints over state_db and rrd_store; see api.h. */
#include "api.h"

#include "rrd_store.h"
#include "state_db.h"

#include "netpulse/clock.h"
#include "netpulse/log.h"

#include <jansson.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SITES_PREFIX "/api/v1/sites/"
#define QUERY_VALUE_MAX 1100

struct np_api {
    uv_loop_t *loop;
    struct np_state_db *db;
    uv_mutex_t mu; /* one job at a time on db */
    struct np_metrics *metrics;
    struct np_rrd_store *rrd;
    struct np_ingest *ingest;
    struct np_http_server *server;
    unsigned busy;
};

enum job_kind { JOB_SITES, JOB_SITE, JOB_SERIES };

struct job {
    struct np_api *api;
    struct np_http_pending *pending;
    uv_work_t work;
    enum job_kind kind;
    char site[NP_STATE_DB_MAX_ID + 1];
    int64_t from_s, to_s;
    unsigned step_s;
    char cf[8];
    char device[QUERY_VALUE_MAX], iface[QUERY_VALUE_MAX], probe[QUERY_VALUE_MAX];
    /* result */
    int status;
    char *body; /* malloc'ed (json_dumps) */
    char msg[256];
};

static void reply_plain(struct st_h2o_req_t *req, int status, const char *reason, const char *text)
{
    np_http_reply(req, status, reason, "text/plain; charset=utf-8", text, strlen(text));
}

static int on_healthz(void *ctx, struct st_h2o_req_t *req)
{
    (void)ctx;
    reply_plain(req, 200, "OK", "ok\n");
    return 0;
}

static int on_metrics(void *ctx, struct st_h2o_req_t *req)
{
    struct np_api *api = ctx;
    if (api->ingest) {
        np_ingest_update_metrics(api->ingest);
    }
    if (api->server) {
        api->metrics->http_connections = np_http_server_connections(api->server);
    }
    char *text;
    size_t len;
    if (np_metrics_render(api->metrics, &text, &len) != 0) {
        reply_plain(req, 503, "Service Unavailable", "out of memory\n");
        return 0;
    }
    np_http_reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
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

/* Finds key in the query and percent-decodes its value into out. Returns 1
 * when found, 0 when absent, -1 when malformed or too long. */
static int query_get(struct np_http_view q, const char *key, char *out, size_t out_len)
{
    size_t klen = strlen(key);
    size_t i = 0;
    while (i < q.len) {
        size_t end = i;
        while (end < q.len && q.base[end] != '&') {
            end++;
        }
        if (end - i > klen && memcmp(q.base + i, key, klen) == 0 && q.base[i + klen] == '=') {
            size_t o = 0;
            for (size_t p = i + klen + 1; p < end; p++) {
                char c = q.base[p];
                if (c == '+') {
                    c = ' ';
                } else if (c == '%') {
                    if (p + 2 >= end) {
                        return -1;
                    }
                    int h = hexval(q.base[p + 1]), l = hexval(q.base[p + 2]);
                    if (h < 0 || l < 0) {
                        return -1;
                    }
                    c = (char)(h * 16 + l);
                    p += 2;
                }
                if (c == '\0' || o + 1 >= out_len) {
                    return -1;
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

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno != 0) {
        return -1;
    }
    *out = v;
    return 0;
}

/* ---- jobs ---- */

static void job_set_json(struct job *j, json_t *doc)
{
    j->body = json_dumps(doc, JSON_COMPACT);
    j->status = j->body ? 200 : 503;
    if (!j->body) {
        snprintf(j->msg, sizeof j->msg, "out of memory");
    }
}

static void job_set_error(struct job *j, int rc, const struct np_err *err)
{
    j->status = rc == -ENOENT ? 404 : rc == -EINVAL ? 400 : 503;
    snprintf(j->msg, sizeof j->msg, "%s", err->msg[0] ? err->msg : np_strerror(rc));
}

/* Appends one series to arr; a missing file gives an empty point list. */
static int add_series(struct job *j, json_t *arr, enum np_rrd_kind kind, const char *n1,
                      const char *n2, struct np_err *err)
{
    json_t *points = NULL;
    unsigned step = 0;
    int rc = np_rrd_store_fetch(j->api->rrd, kind, j->site, n1, n2, j->cf, j->from_s, j->to_s,
                                j->step_s, &points, &step, err);
    if (rc == -ENOENT) {
        points = json_array();
        rc = points ? 0 : -ENOMEM;
    }
    if (rc != 0) {
        return rc;
    }
    json_t *s = kind == NP_RRD_IFACE
                    ? json_pack("{s:s, s:s, s:s, s:I, s:o}", "kind", "interface", "device", n1,
                                "iface", n2, "step", (json_int_t)step, "points", points)
                    : json_pack("{s:s, s:s, s:I, s:o}", "kind", "probe", "probe", n1, "step",
                                (json_int_t)step, "points", points);
    if (!s || json_array_append_new(arr, s) != 0) {
        return np_err_set(err, -ENOMEM, "api: out of memory");
    }
    return 0;
}

static void job_series(struct job *j, struct np_err *err)
{
    json_t *site = NULL, *series = json_array(), *doc = NULL;
    int rc = 0;
    if (!series) {
        rc = np_err_set(err, -ENOMEM, "api: out of memory");
        goto out;
    }
    uv_mutex_lock(&j->api->mu);
    rc = np_state_db_site_json(j->api->db, j->site, &site, err);
    uv_mutex_unlock(&j->api->mu);
    if (rc != 0) {
        goto out;
    }
    if (j->probe[0]) {
        rc = add_series(j, series, NP_RRD_PROBE, j->probe, NULL, err);
    } else if (j->device[0] || j->iface[0]) {
        if (!j->device[0] || !j->iface[0]) {
            rc = np_err_set(err, -EINVAL, "device and iface go together");
            goto out;
        }
        rc = add_series(j, series, NP_RRD_IFACE, j->device, j->iface, err);
    } else {
        json_t *ifaces = json_object_get(site, "interfaces");
        size_t i;
        json_t *it;
        json_array_foreach(ifaces, i, it)
        {
            const char *dev = json_string_value(json_object_get(it, "device"));
            const char *ifk = json_string_value(json_object_get(it, "iface"));
            if (!dev || !ifk) {
                continue;
            }
            rc = add_series(j, series, NP_RRD_IFACE, dev, ifk, err);
            if (rc != 0) {
                break;
            }
        }
    }
    if (rc != 0) {
        goto out;
    }
    doc = json_pack("{s:s, s:I, s:I, s:s, s:O}", "site", j->site, "from", (json_int_t)j->from_s,
                    "to", (json_int_t)j->to_s, "cf", j->cf, "series", series);
    if (!doc) {
        rc = np_err_set(err, -ENOMEM, "api: out of memory");
        goto out;
    }
    job_set_json(j, doc);
out:
    if (rc != 0) {
        job_set_error(j, rc, err);
    }
    json_decref(doc);
    json_decref(series);
    json_decref(site);
}

static void work_job(uv_work_t *w)
{
    struct job *j = w->data;
    struct np_err err = {0};
    json_t *doc = NULL;
    int rc = 0;
    switch (j->kind) {
    case JOB_SITES:
        uv_mutex_lock(&j->api->mu);
        rc = np_state_db_sites_json(j->api->db, &doc, &err);
        uv_mutex_unlock(&j->api->mu);
        break;
    case JOB_SITE:
        uv_mutex_lock(&j->api->mu);
        rc = np_state_db_site_json(j->api->db, j->site, &doc, &err);
        uv_mutex_unlock(&j->api->mu);
        break;
    case JOB_SERIES:
        job_series(j, &err);
        return;
    }
    if (rc != 0) {
        job_set_error(j, rc, &err);
        return;
    }
    job_set_json(j, doc);
    json_decref(doc);
}

static void after_job(uv_work_t *w, int status)
{
    struct job *j = w->data;
    j->api->busy--;
    if (status != 0) {
        j->status = 503;
        snprintf(j->msg, sizeof j->msg, "cancelled");
    }
    if (j->status == 200) {
        np_http_pending_reply(j->pending, 200, "OK", "application/json", j->body, strlen(j->body));
    } else {
        char text[300];
        int n = snprintf(text, sizeof text, "%s\n", j->msg);
        if (n < 0 || (size_t)n >= sizeof text) {
            n = (int)strlen(text);
        }
        np_http_pending_reply(j->pending, j->status,
                              j->status == 404   ? "Not Found"
                              : j->status == 400 ? "Bad Request"
                                                 : "Service Unavailable",
                              "text/plain; charset=utf-8", text, (size_t)n);
    }
    free(j->body);
    free(j);
}

static int start_job(struct np_api *api, struct st_h2o_req_t *req, struct job *j)
{
    j->api = api;
    j->work.data = j;
    j->pending = np_http_pending_new(req);
    if (!j->pending) {
        free(j);
        reply_plain(req, 503, "Service Unavailable", "out of memory\n");
        return 0;
    }
    if (uv_queue_work(api->loop, &j->work, work_job, after_job) != 0) {
        np_http_pending_reply(j->pending, 503, "Service Unavailable", "text/plain",
                              "cannot queue work\n", 18);
        free(j);
        return 0;
    }
    api->busy++;
    return 0;
}

static int on_sites(void *ctx, struct st_h2o_req_t *req)
{
    struct np_api *api = ctx;
    if (!np_http_view_is(np_http_method(req), "GET")) {
        reply_plain(req, 405, "Method Not Allowed", "GET only\n");
        return 0;
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        reply_plain(req, 503, "Service Unavailable", "out of memory\n");
        return 0;
    }
    j->kind = JOB_SITES;
    return start_job(api, req, j);
}

/* /api/v1/sites/{id} and /api/v1/sites/{id}/series */
static int on_site(void *ctx, struct st_h2o_req_t *req)
{
    struct np_api *api = ctx;
    if (!np_http_view_is(np_http_method(req), "GET")) {
        reply_plain(req, 405, "Method Not Allowed", "GET only\n");
        return 0;
    }
    struct np_http_view path = np_http_path(req);
    const char *id = path.base + strlen(SITES_PREFIX);
    size_t rest = path.len - strlen(SITES_PREFIX);
    const char *slash = memchr(id, '/', rest);
    size_t id_len = slash ? (size_t)(slash - id) : rest;
    bool series = false;
    if (slash) {
        size_t tail = rest - id_len;
        if (tail == 7 && memcmp(slash, "/series", 7) == 0) {
            series = true;
        } else if (tail != 1) { /* a trailing '/' is fine */
            return -1;
        }
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        reply_plain(req, 503, "Service Unavailable", "out of memory\n");
        return 0;
    }
    if (id_len == 0 || id_len >= sizeof j->site) {
        free(j);
        return -1;
    }
    memcpy(j->site, id, id_len);
    j->site[id_len] = '\0';
    if (np_state_db_check_id(j->site) != 0) {
        free(j);
        return -1;
    }
    j->kind = series ? JOB_SERIES : JOB_SITE;
    if (series) {
        if (!api->rrd) {
            free(j);
            reply_plain(req, 503, "Service Unavailable", "no RRD store\n");
            return 0;
        }
        struct np_http_view q = np_http_query(req);
        char v[32];
        int64_t now_s = np_clock_wall_ms() / 1000, step = 0;
        j->to_s = now_s;
        j->from_s = now_s - 86400;
        snprintf(j->cf, sizeof j->cf, "AVERAGE");
        const char *bad = NULL;
        int r;
        if ((r = query_get(q, "from", v, sizeof v)) < 0 || (r > 0 && parse_i64(v, &j->from_s))) {
            bad = "from: expected Unix seconds";
        } else if ((r = query_get(q, "to", v, sizeof v)) < 0 || (r > 0 && parse_i64(v, &j->to_s))) {
            bad = "to: expected Unix seconds";
        } else if ((r = query_get(q, "step", v, sizeof v)) < 0 ||
                   (r > 0 && (parse_i64(v, &step) || step < 0 || step > 86400 * 366))) {
            bad = "step: expected seconds";
        } else if ((r = query_get(q, "cf", j->cf, sizeof j->cf)) < 0 ||
                   (strcmp(j->cf, "AVERAGE") != 0 && strcmp(j->cf, "MAX") != 0)) {
            bad = "cf: AVERAGE or MAX";
        } else if (query_get(q, "device", j->device, sizeof j->device) < 0 ||
                   query_get(q, "iface", j->iface, sizeof j->iface) < 0 ||
                   query_get(q, "probe", j->probe, sizeof j->probe) < 0) {
            bad = "device/iface/probe: malformed";
        } else if (j->from_s >= j->to_s) {
            bad = "from must be before to";
        }
        if (bad) {
            free(j);
            char text[80];
            snprintf(text, sizeof text, "%s\n", bad);
            reply_plain(req, 400, "Bad Request", text);
            return 0;
        }
        j->step_s = (unsigned)step;
    }
    return start_job(api, req, j);
}

int np_api_new(uv_loop_t *loop, const char *state_db_path, struct np_metrics *metrics,
               struct np_rrd_store *rrd, struct np_ingest *ingest, struct np_api **out,
               struct np_err *err)
{
    *out = NULL;
    struct np_api *api = calloc(1, sizeof *api);
    if (!api) {
        return np_err_set(err, -ENOMEM, "api: out of memory");
    }
    int rc;
    if (uv_mutex_init(&api->mu) != 0) {
        rc = np_err_set(err, -ENOMEM, "api: mutex init failed");
        goto out_free;
    }
    rc = np_state_db_open(state_db_path, &api->db, err);
    if (rc != 0) {
        goto out_mutex;
    }
    api->loop = loop;
    api->metrics = metrics;
    api->rrd = rrd;
    api->ingest = ingest;
    *out = api;
    return 0;

out_mutex:
    uv_mutex_destroy(&api->mu);
out_free:
    free(api);
    return rc;
}

void np_api_set_server(struct np_api *api, struct np_http_server *server)
{
    api->server = server;
}

int np_api_register(struct np_api *api, struct np_http_server *server)
{
    api->server = server;
    if (np_http_server_route(server, "/healthz", false, on_healthz, api) != 0 ||
        np_http_server_route(server, "/metrics", false, on_metrics, api) != 0 ||
        np_http_server_route(server, "/api/v1/ingest", false, np_ingest_handle, api->ingest) != 0 ||
        np_http_server_route(server, "/api/v1/sites", false, on_sites, api) != 0 ||
        np_http_server_route(server, SITES_PREFIX, true, on_site, api) != 0) {
        return -ENOMEM;
    }
    return 0;
}

unsigned np_api_busy(const struct np_api *api)
{
    return api->busy;
}

void np_api_free(struct np_api *api)
{
    if (!api) {
        return;
    }
    np_state_db_close(api->db);
    uv_mutex_destroy(&api->mu);
    free(api);
}
