/* api: read endpoints over state_db and rrd_store; see api.h. */
#include "api.h"

#include "api_body.h"
#include "capacity.h"
#include "http_parse.h"
#include "report_api.h"
#include "report_time.h"
#include "rrd_store.h"
#include "state_db.h"

#include "netpulse/clock.h"
#include "netpulse/log.h"

#include <jansson.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SITES_PREFIX NP_HTTP_SITES_PREFIX
#define QUERY_VALUE_MAX NP_HTTP_QUERY_VALUE_MAX

struct np_api {
    uv_loop_t *loop;
    struct np_state_db *db;
    uv_mutex_t mu; /* one job at a time on db */
    struct np_metrics *metrics;
    struct np_rrd_store *rrd;
    struct np_ingest *ingest;
    struct np_http_server *server;
    unsigned busy;
    const struct np_collector_targets *targets; /* reports; NULL: defaults */
};

enum job_kind {
    JOB_SITES,
    JOB_SITE,
    JOB_SERIES,
    JOB_EVENTS,
    JOB_OUTAGES,
    JOB_UPTIME,   /* report_api.h */
    JOB_CAPACITY, /* report_api.h */
    JOB_SUMMARY,  /* report_api.h */
    JOB_FLOWS,    /* the latest flow summaries (state_db.h np_state_db_flows_json) */
    JOB_PROBES,       /* probe names from the site's RRD folder */
    JOB_MAINT_LIST,   /* the site's maintenance windows */
    JOB_MAINT_ADD,    /* admin: declare one */
    JOB_MAINT_DELETE, /* admin: delete one of this site */
    JOB_ENROL,        /* admin: enrol an agent, token shown once */
    JOB_REVOKE,       /* admin: revoke an agent */
};

struct job {
    struct np_api *api;
    struct np_http_pending *pending;
    uv_work_t work;
    enum job_kind kind;
    char site[NP_STATE_DB_MAX_ID + 1];
    int64_t from_s, to_s;
    unsigned step_s;
    unsigned intervals; /* JOB_FLOWS */
    int64_t mid;               /* JOB_MAINT_DELETE: the window */
    struct np_api_maint maint; /* JOB_MAINT_ADD */
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

/* The query parsers live in http_parse.h (pure, fuzzed); see there. */
static int query_get(struct np_http_view q, const char *key, char *out, size_t out_len)
{
    return np_http_query_get(q.base, q.len, key, out, out_len);
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
    j->status = rc == -ENOENT                     ? 404
                : rc == -EINVAL                   ? 400
                : rc == -EEXIST || rc == -EALREADY ? 409
                                                  : 503;
    snprintf(j->msg, sizeof j->msg, "%s", err->msg[0] ? err->msg : np_strerror(rc));
}

/* The billing 95th percentile of an interface over the job's span: always
 * from 5-minute averages (the burstable-billing convention, and what the
 * capacity figures use), whatever step the chart is drawn at: the 95th of
 * hourly or daily averages would understate it. *out is a new object
 * {"step": S, "in_bps": x|null, "out_bps": y|null}; S is the step RRD
 * answered (above 300 only past the 5-minute archive's 400 days). */
static int iface_p95(struct job *j, const char *dev, const char *ifk, json_t **out,
                     struct np_err *err)
{
    struct np_rrd_series raw = {0};
    double *vals = NULL, p[2] = {NAN, NAN};
    unsigned step = 0;
    int rc = np_rrd_store_fetch_raw(j->api->rrd, NP_RRD_IFACE, j->site, dev, ifk, "AVERAGE",
                                    j->from_s, j->to_s, NP_P95_STEP_S, &raw, err);
    if (rc != 0 && rc != -ENOENT) {
        return rc;
    }
    if (rc == 0 && raw.n > 0) {
        step = raw.step_s;
        vals = malloc(raw.n * sizeof *vals);
        if (!vals) {
            np_rrd_series_free(&raw);
            return np_err_set(err, -ENOMEM, "api: out of memory");
        }
        for (int ds = 0; ds < 2; ds++) { /* DS 0 in_bps, 1 out_bps */
            for (size_t i = 0; i < raw.n; i++) {
                vals[i] = raw.v[i * NP_RRD_VALUES + (size_t)ds];
            }
            p[ds] = np_capacity_percentile(vals, raw.n, 95);
        }
    }
    free(vals);
    np_rrd_series_free(&raw);
    *out = json_pack("{s:I, s:o, s:o}", "step", (json_int_t)step, "in_bps",
                     isnan(p[0]) ? json_null() : json_real(p[0]), "out_bps",
                     isnan(p[1]) ? json_null() : json_real(p[1]));
    return *out ? 0 : np_err_set(err, -ENOMEM, "api: out of memory");
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
    json_t *p95 = NULL;
    if (kind == NP_RRD_IFACE && (rc = iface_p95(j, n1, n2, &p95, err)) != 0) {
        json_decref(points);
        return rc;
    }
    json_t *s = kind == NP_RRD_IFACE
                    ? json_pack("{s:s, s:s, s:s, s:I, s:o, s:o}", "kind", "interface", "device",
                                n1, "iface", n2, "step", (json_int_t)step, "points", points,
                                "p95", p95)
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

static void api_lock(void *mu)
{
    uv_mutex_lock(mu);
}

static void api_unlock(void *mu)
{
    uv_mutex_unlock(mu);
}

/* Uptime, capacity and the district summary (report_api.h): the db lock is
 * taken per site, so a long summary does not starve the other endpoints. */
static void job_report(struct job *j, struct np_err *err)
{
    struct np_report_api_req r = {
        .kind = j->kind == JOB_UPTIME     ? NP_REPORT_API_UPTIME
                : j->kind == JOB_CAPACITY ? NP_REPORT_API_CAPACITY
                                          : NP_REPORT_API_SUMMARY,
        .site = j->site,
        .from_ms = j->from_s * 1000,
        .to_ms = j->to_s * 1000,
        .db = j->api->db,
        .rrd = j->api->rrd,
        .targets = j->api->targets,
        .lock = api_lock,
        .unlock = api_unlock,
        .lock_ctx = &j->api->mu,
    };
    json_t *doc = NULL;
    int rc = np_report_api_json(&r, &doc, err);
    if (rc != 0) {
        job_set_error(j, rc, err);
        return;
    }
    job_set_json(j, doc);
    json_decref(doc);
}

/* Reads the report period (from/to, month, year) into j; NULL or the
 * message of a bad parameter. */
static const char *report_period(struct np_http_view q, struct job *j, bool summary)
{
    char from[32], to[32], month[16], year[8];
    int64_t from_ms = 0, to_ms = 0;
    int a = query_get(q, "from", from, sizeof from), b = query_get(q, "to", to, sizeof to);
    int c = query_get(q, "month", month, sizeof month), d = query_get(q, "year", year, sizeof year);
    if (a < 0 || b < 0 || c < 0 || d < 0 ||
        np_report_api_period(a > 0 ? from : NULL, b > 0 ? to : NULL, c > 0 ? month : NULL,
                             d > 0 ? year : NULL, summary, np_clock_wall_ms(), &from_ms,
                             &to_ms) < 0) {
        return "period: from=&to= (Unix seconds), month=YYYY-MM or year=YYYY\n";
    }
    j->from_s = from_ms / 1000;
    j->to_s = to_ms / 1000;
    return NULL;
}

/* ---- probes: names from the site's RRD folder ---- */

static int hex_value(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
}

/* Decodes one escaped file-name component (rrd_store.h: %XX) of in[0..len)
 * into out; -EINVAL when malformed, empty, holding a NUL or too long. */
static int unescape_component(const char *in, size_t len, char *out, size_t out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)in[i];
        if (c == '%') {
            int hi = i + 2 < len ? hex_value(in[i + 1]) : -1;
            int lo = hi >= 0 ? hex_value(in[i + 2]) : -1;
            if (lo < 0 || (hi == 0 && lo == 0)) {
                return -EINVAL;
            }
            c = hi * 16 + lo;
            i += 2;
        }
        if (o + 1 >= out_len) {
            return -EINVAL;
        }
        out[o++] = (char)c;
    }
    if (o == 0) {
        return -EINVAL;
    }
    out[o] = '\0';
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

#define PROBES_MAX 1024 /* names listed per site */

/* {"site": ID, "probes": [NAME, ...]} sorted by name: every probe+NAME.rrd
 * of the site (a site without the folder has none). */
static void job_probes(struct job *j, struct np_err *err)
{
    static const char pre[] = "probe+", suf[] = ".rrd";
    const size_t pl = sizeof pre - 1, sl = sizeof suf - 1;
    char path[PATH_MAX], *slash;
    char *names[PROBES_MAX];
    size_t n = 0;
    json_t *arr = NULL, *doc = NULL;
    DIR *d = NULL;

    uv_mutex_lock(&j->api->mu);
    int rc = np_state_db_site_exists(j->api->db, j->site, err);
    uv_mutex_unlock(&j->api->mu);
    if (rc != 0) {
        goto out;
    }
    if (np_rrd_store_path(j->api->rrd, NP_RRD_PROBE, j->site, "x", NULL, path, sizeof path) != 0 ||
        (slash = strrchr(path, '/')) == NULL) {
        rc = np_err_set(err, -ENAMETOOLONG, "api: no RRD folder for this site");
        goto out;
    }
    *slash = '\0';
    d = opendir(path);
    if (!d && errno != ENOENT) {
        rc = np_err_set(err, -errno, "api: cannot read the site's RRD folder");
        goto out;
    }
    struct dirent *e;
    while (d && n < PROBES_MAX && (e = readdir(d)) != NULL) {
        char name[NAME_MAX + 1];
        size_t len = strlen(e->d_name);
        if (len <= pl + sl || memcmp(e->d_name, pre, pl) != 0 ||
            memcmp(e->d_name + len - sl, suf, sl) != 0 ||
            unescape_component(e->d_name + pl, len - pl - sl, name, sizeof name) != 0) {
            continue;
        }
        names[n] = strdup(name);
        if (!names[n]) {
            rc = np_err_set(err, -ENOMEM, "api: out of memory");
            goto out;
        }
        n++;
    }
    qsort(names, n, sizeof names[0], cmp_str);
    arr = json_array();
    if (!arr) {
        rc = np_err_set(err, -ENOMEM, "api: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_string(names[i]); /* NULL: not UTF-8, not listed */
        if (v && json_array_append_new(arr, v) != 0) {
            rc = np_err_set(err, -ENOMEM, "api: out of memory");
            goto out;
        }
    }
    doc = json_pack("{s:s, s:O}", "site", j->site, "probes", arr);
    if (!doc) {
        rc = np_err_set(err, -ENOMEM, "api: out of memory");
        goto out;
    }
    job_set_json(j, doc);
out:
    if (rc != 0) {
        job_set_error(j, rc, err);
    }
    if (d) {
        closedir(d);
    }
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
    json_decref(doc);
    json_decref(arr);
}

/* ---- maintenance windows and agents (admin changes) ---- */

struct maint_ctx {
    json_t *arr;  /* list: the windows */
    int64_t want; /* delete: the window looked for */
    bool found;
};

static int maint_collect(const struct np_maintenance *m, void *ctx)
{
    struct maint_ctx *c = ctx;
    if (!c->arr) {
        if (m->id == c->want) {
            c->found = true;
            return 1;
        }
        return 0;
    }
    json_t *reason = json_string(m->reason ? m->reason : "");
    if (!reason) {
        reason = json_string("(not UTF-8)");
    }
    json_t *o = json_pack("{s:I, s:s, s:I, s:I, s:I, s:I, s:o, s:I}", "id", (json_int_t)m->id,
                          "site", m->site_id, "from", (json_int_t)(m->start_ms / 1000), "to",
                          (json_int_t)(m->end_ms / 1000), "start_ms", (json_int_t)m->start_ms,
                          "end_ms", (json_int_t)m->end_ms, "reason", reason, "created_ms",
                          (json_int_t)m->created_ms);
    if (!o || json_array_append_new(c->arr, o) != 0) {
        return -ENOMEM;
    }
    return 0;
}

/* The admin jobs and the window list; the db lock is held throughout. */
static int job_admin(struct job *j, json_t **doc, struct np_err *err)
{
    struct np_state_db *db = j->api->db;
    struct maint_ctx c = {0};
    int rc = 0;
    switch (j->kind) {
    case JOB_MAINT_LIST:
        c.arr = json_array();
        if (!c.arr) {
            return np_err_set(err, -ENOMEM, "api: out of memory");
        }
        rc = np_state_db_site_exists(db, j->site, err);
        if (rc == 0) {
            rc = np_state_db_maintenance_list(db, j->site, j->from_s * 1000, j->to_s * 1000,
                                              maint_collect, &c, err);
        }
        if (rc != 0) {
            json_decref(c.arr);
            return rc == -ENOMEM ? np_err_set(err, rc, "api: out of memory") : rc;
        }
        *doc = c.arr;
        return 0;
    case JOB_MAINT_ADD: {
        int64_t id = 0;
        const struct np_api_maint *m = &j->maint;
        rc = np_state_db_maintenance_add(db, j->site, m->start_ms, m->end_ms, m->reason, &id, err);
        if (rc == 0) {
            np_log(NP_LOG_INFO, "api: maintenance declared site=%s id=%" PRId64 " from_ms=%" PRId64
                                " to_ms=%" PRId64,
                   j->site, id, m->start_ms, m->end_ms);
            *doc = json_pack("{s:I, s:s, s:I, s:I, s:s}", "id", (json_int_t)id, "site", j->site,
                             "from", (json_int_t)(m->start_ms / 1000), "to",
                             (json_int_t)(m->end_ms / 1000), "reason", m->reason);
        }
        break;
    }
    case JOB_MAINT_DELETE:
        /* Only a window of the site named in the path. */
        c.want = j->mid;
        rc = np_state_db_maintenance_list(db, j->site, INT64_MIN, INT64_MAX, maint_collect, &c,
                                          err);
        if (rc < 0) {
            return rc;
        }
        if (!c.found) {
            return np_err_set(err, -ENOENT, "no such maintenance window of this site");
        }
        rc = np_state_db_maintenance_delete(db, j->mid, err);
        if (rc == 0) {
            np_log(NP_LOG_INFO, "api: maintenance deleted site=%s id=%" PRId64, j->site, j->mid);
            *doc = json_pack("{s:I, s:b}", "id", (json_int_t)j->mid, "deleted", 1);
        }
        break;
    case JOB_ENROL: {
        char token[NP_STATE_DB_TOKEN_BUFSZ];
        rc = np_state_db_agent_enrol(db, j->site, token, sizeof token, err);
        if (rc == 0) {
            np_log(NP_LOG_INFO, "api: agent enrolled agent=%s", j->site);
            *doc = json_pack("{s:s, s:s}", "agent", j->site, "token", token);
        }
        memset(token, 0, sizeof token);
        break;
    }
    case JOB_REVOKE:
        rc = np_state_db_agent_revoke(db, j->site, err);
        if (rc == 0) {
            np_log(NP_LOG_INFO, "api: agent revoked agent=%s", j->site);
            *doc = json_pack("{s:s, s:b}", "agent", j->site, "revoked", 1);
        }
        break;
    default:
        return np_err_set(err, -EINVAL, "api: not an admin job");
    }
    if (rc == 0 && !*doc) {
        rc = np_err_set(err, -ENOMEM, "api: out of memory");
    }
    return rc;
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
    case JOB_FLOWS:
        uv_mutex_lock(&j->api->mu);
        rc = np_state_db_flows_json(j->api->db, j->site, j->intervals, &doc, &err);
        uv_mutex_unlock(&j->api->mu);
        break;
    case JOB_SERIES:
        job_series(j, &err);
        return;
    case JOB_PROBES:
        job_probes(j, &err);
        return;
    case JOB_MAINT_LIST:
    case JOB_MAINT_ADD:
    case JOB_MAINT_DELETE:
    case JOB_ENROL:
    case JOB_REVOKE:
        uv_mutex_lock(&j->api->mu);
        rc = job_admin(j, &doc, &err);
        uv_mutex_unlock(&j->api->mu);
        if (rc == 0 && (j->kind == JOB_MAINT_ADD || j->kind == JOB_ENROL)) {
            job_set_json(j, doc);
            j->status = j->status == 200 ? 201 : j->status;
            json_decref(doc);
            return;
        }
        break;
    case JOB_UPTIME:
    case JOB_CAPACITY:
    case JOB_SUMMARY:
        job_report(j, &err);
        return;
    case JOB_EVENTS:
    case JOB_OUTAGES:
        uv_mutex_lock(&j->api->mu);
        rc = j->kind == JOB_EVENTS
                 ? np_state_db_events_json(j->api->db, j->site, j->from_s * 1000, j->to_s * 1000,
                                           &doc, &err)
                 : np_state_db_outages_json(j->api->db, j->site, j->from_s * 1000,
                                            j->to_s * 1000, np_clock_wall_ms(), &doc, &err);
        uv_mutex_unlock(&j->api->mu);
        break;
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
    if (j->status == 200 || j->status == 201) {
        np_http_pending_reply(j->pending, j->status, j->status == 200 ? "OK" : "Created",
                              "application/json", j->body, strlen(j->body));
    } else {
        char text[300];
        int n = snprintf(text, sizeof text, "%s\n", j->msg);
        if (n < 0 || (size_t)n >= sizeof text) {
            n = (int)strlen(text);
        }
        np_http_pending_reply(j->pending, j->status,
                              j->status == 404   ? "Not Found"
                              : j->status == 400 ? "Bad Request"
                              : j->status == 409 ? "Conflict"
                                                 : "Service Unavailable",
                              "text/plain; charset=utf-8", text, (size_t)n);
    }
    if (j->body && j->kind == JOB_ENROL) {
        memset(j->body, 0, strlen(j->body)); /* the token is shown once */
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

/* A zeroed job, or NULL with 503 sent (out of memory). */
static struct job *new_job(struct st_h2o_req_t *req)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        reply_plain(req, 503, "Service Unavailable", "out of memory\n");
    }
    return j;
}

static int on_sites(void *ctx, struct st_h2o_req_t *req)
{
    struct np_api *api = ctx;
    if (!np_http_view_is(np_http_method(req), "GET")) {
        reply_plain(req, 405, "Method Not Allowed", "GET only\n");
        return 0;
    }
    struct job *j = new_job(req);
    if (!j) {
        return 0;
    }
    j->kind = JOB_SITES;
    return start_job(api, req, j);
}

/* GET /api/v1/sites/{id}/flows?intervals=N: the latest flow summaries of
 * each [pcap] source of the site (N newest intervals, default 1, at most
 * NP_STATE_DB_FLOW_KEEP), privacy already applied by the agent. Returns 1
 * when path is not this route. */
static int on_site_flows(struct np_api *api, struct st_h2o_req_t *req, struct np_http_view path)
{
    static const char tail[] = "/flows";
    const size_t tl = sizeof tail - 1, pl = sizeof SITES_PREFIX - 1;
    enum np_http_site_sub sub;
    char n[16];
    if (path.len <= pl + tl || memcmp(path.base + path.len - tl, tail, tl) != 0 ||
        memchr(path.base + pl, '/', path.len - tl - pl) != NULL) {
        return 1;
    }
    struct job *j = new_job(req);
    if (!j) {
        return 0;
    }
    /* The id is checked by the same parser as the other site routes. */
    if (np_http_site_path(path.base, path.len - tl, j->site, sizeof j->site, &sub) != 0 ||
        sub != NP_HTTP_SITE || np_state_db_check_id(j->site) != 0) {
        free(j);
        return -1;
    }
    j->kind = JOB_FLOWS;
    j->intervals = 1;
    int got = query_get(np_http_query(req), "intervals", n, sizeof n);
    if (got > 0) {
        char *end = NULL;
        errno = 0;
        long v = strtol(n, &end, 10);
        if (errno != 0 || end == n || *end != '\0' || v < 1 || v > NP_STATE_DB_FLOW_KEEP) {
            got = -1;
        } else {
            j->intervals = (unsigned)v;
        }
    }
    if (got < 0) {
        free(j);
        reply_plain(req, 400, "Bad Request", "intervals: 1..60\n");
        return 0;
    }
    return start_job(api, req, j);
}

/* ---- admin routes and the probe list ---- */

#define AGENTS_PREFIX "/api/v1/agents/"

/* Splits PREFIX{id}/REST: the id (checked) into id, REST into *rest. -1 when
 * path has no '/' after a valid id. */
static int split_id(struct np_http_view path, const char *prefix, char *id, size_t id_len,
                    struct np_http_view *rest)
{
    size_t pl = strlen(prefix);
    if (path.len <= pl || memcmp(path.base, prefix, pl) != 0) {
        return -1;
    }
    const char *p = path.base + pl, *end = path.base + path.len;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    if (!slash || slash == p || (size_t)(slash - p) >= id_len) {
        return -1;
    }
    memcpy(id, p, (size_t)(slash - p));
    id[slash - p] = '\0';
    if (np_state_db_check_id(id) != 0) {
        return -1;
    }
    rest->base = slash + 1;
    rest->len = (size_t)(end - slash - 1);
    return 0;
}

/* /api/v1/sites/{id}/probes (GET), /api/v1/sites/{id}/maintenance (GET,
 * POST) and /api/v1/sites/{id}/maintenance/{mid} (DELETE). Returns 1 when
 * path is none of them. */
static int on_site_more(struct np_api *api, struct st_h2o_req_t *req, struct np_http_view path)
{
    static const char maint[] = "maintenance/";
    const size_t ml = sizeof maint - 1;
    char site[NP_STATE_DB_MAX_ID + 1];
    struct np_http_view rest, method = np_http_method(req);
    enum job_kind kind;
    const char *allowed;
    int64_t mid = 0;
    if (split_id(path, SITES_PREFIX, site, sizeof site, &rest) != 0) {
        return 1;
    }
    if (np_http_view_is(rest, "probes")) {
        allowed = "GET only\n";
        kind = np_http_view_is(method, "GET") ? JOB_PROBES : JOB_SITE;
        if (kind == JOB_PROBES && !api->rrd) {
            reply_plain(req, 503, "Service Unavailable", "no RRD store\n");
            return 0;
        }
    } else if (np_http_view_is(rest, "maintenance")) {
        allowed = "GET or POST only\n";
        kind = np_http_view_is(method, "GET")    ? JOB_MAINT_LIST
               : np_http_view_is(method, "POST") ? JOB_MAINT_ADD
                                                 : JOB_SITE;
    } else if (rest.len > ml && memcmp(rest.base, maint, ml) == 0) {
        char num[24];
        size_t nl = rest.len - ml;
        if (nl >= sizeof num) {
            return -1;
        }
        memcpy(num, rest.base + ml, nl);
        num[nl] = '\0';
        if (num[0] < '1' || num[0] > '9' || np_http_parse_i64(num, &mid) != 0) {
            return -1;
        }
        allowed = "DELETE only\n";
        kind = np_http_view_is(method, "DELETE") ? JOB_MAINT_DELETE : JOB_SITE;
    } else {
        return 1;
    }
    if (kind == JOB_SITE) {
        reply_plain(req, 405, "Method Not Allowed", allowed);
        return 0;
    }
    struct job *j = new_job(req);
    if (!j) {
        return 0;
    }
    memcpy(j->site, site, sizeof site);
    j->kind = kind;
    j->mid = mid;
    const char *bad = NULL;
    char text[300];
    if (kind == JOB_MAINT_ADD) {
        struct np_http_view b = np_http_body(req);
        struct np_err err = {0};
        if (np_api_body_maint(b.base, b.len, &j->maint, &err) != 0) {
            snprintf(text, sizeof text, "%s\n", err.msg);
            bad = text;
        }
    } else if (kind == JOB_MAINT_LIST) {
        /* Every window, or those overlapping from/to (Unix seconds). */
        struct np_http_view q = np_http_query(req);
        char v[32];
        j->from_s = INT64_MIN / 1000;
        j->to_s = INT64_MAX / 1000;
        if (query_get(q, "from", v, sizeof v) != 0 || query_get(q, "to", v, sizeof v) != 0) {
            bad = np_http_range_query_parse(q.base, q.len, np_clock_wall_ms() / 1000, &j->from_s,
                                            &j->to_s);
            if (bad) {
                snprintf(text, sizeof text, "%s\n", bad);
                bad = text;
            }
        }
    }
    if (bad) {
        free(j);
        reply_plain(req, 400, "Bad Request", bad);
        return 0;
    }
    return start_job(api, req, j);
}

/* POST /api/v1/agents/{id}/enrol and /api/v1/agents/{id}/revoke */
static int on_agent(void *ctx, struct st_h2o_req_t *req)
{
    struct np_api *api = ctx;
    char id[NP_STATE_DB_MAX_ID + 1];
    struct np_http_view rest;
    if (split_id(np_http_path(req), AGENTS_PREFIX, id, sizeof id, &rest) != 0 ||
        !(np_http_view_is(rest, "enrol") || np_http_view_is(rest, "revoke"))) {
        return -1;
    }
    if (!np_http_view_is(np_http_method(req), "POST")) {
        reply_plain(req, 405, "Method Not Allowed", "POST only\n");
        return 0;
    }
    struct job *j = new_job(req);
    if (!j) {
        return 0;
    }
    memcpy(j->site, id, sizeof id);
    j->kind = np_http_view_is(rest, "enrol") ? JOB_ENROL : JOB_REVOKE;
    return start_job(api, req, j);
}

/* /api/v1/sites/{id} and /api/v1/sites/{id}/series */
static int on_site(void *ctx, struct st_h2o_req_t *req)
{
    struct np_api *api = ctx;
    int more = on_site_more(api, req, np_http_path(req));
    if (more != 1) {
        return more;
    }
    if (!np_http_view_is(np_http_method(req), "GET")) {
        reply_plain(req, 405, "Method Not Allowed", "GET only\n");
        return 0;
    }
    int flows = on_site_flows(api, req, np_http_path(req));
    if (flows != 1) {
        return flows;
    }
    static const enum job_kind kinds[] = {
        [NP_HTTP_SITE] = JOB_SITE,          [NP_HTTP_SITE_SERIES] = JOB_SERIES,
        [NP_HTTP_SITE_EVENTS] = JOB_EVENTS, [NP_HTTP_SITE_OUTAGES] = JOB_OUTAGES,
        [NP_HTTP_SITE_UPTIME] = JOB_UPTIME, [NP_HTTP_SITE_CAPACITY] = JOB_CAPACITY,
    };
    struct np_http_view path = np_http_path(req);
    enum np_http_site_sub sub;
    struct job *j = new_job(req);
    if (!j) {
        return 0;
    }
    if (np_http_site_path(path.base, path.len, j->site, sizeof j->site, &sub) != 0 ||
        np_state_db_check_id(j->site) != 0) {
        free(j);
        return -1;
    }
    bool series = sub == NP_HTTP_SITE_SERIES;
    enum job_kind ranged = series ? JOB_SITE : kinds[sub]; /* JOB_SITE: not a ranged list */
    j->kind = series ? JOB_SERIES : ranged;
    if (ranged == JOB_UPTIME || ranged == JOB_CAPACITY) {
        const char *bad = report_period(np_http_query(req), j, false);
        if (bad) {
            free(j);
            reply_plain(req, 400, "Bad Request", bad);
            return 0;
        }
        return start_job(api, req, j);
    }
    if (ranged != JOB_SITE) {
        /* from/to: Unix seconds; default the last 30 days. */
        struct np_http_view q = np_http_query(req);
        const char *bad = np_http_range_query_parse(q.base, q.len, np_clock_wall_ms() / 1000,
                                                    &j->from_s, &j->to_s);
        if (bad) {
            free(j);
            char text[80];
            snprintf(text, sizeof text, "%s\n", bad);
            reply_plain(req, 400, "Bad Request", text);
            return 0;
        }
    }
    if (series) {
        if (!api->rrd) {
            free(j);
            reply_plain(req, 503, "Service Unavailable", "no RRD store\n");
            return 0;
        }
        struct np_http_view q = np_http_query(req);
        struct np_http_series_query *sq = malloc(sizeof *sq);
        if (!sq) {
            free(j);
            reply_plain(req, 503, "Service Unavailable", "out of memory\n");
            return 0;
        }
        const char *bad = np_http_series_query_parse(q.base, q.len, np_clock_wall_ms() / 1000, sq);
        if (!bad) {
            j->from_s = sq->from_s;
            j->to_s = sq->to_s;
            j->step_s = sq->step_s;
            memcpy(j->cf, sq->cf, sizeof j->cf);
            memcpy(j->device, sq->device, sizeof j->device);
            memcpy(j->iface, sq->iface, sizeof j->iface);
            memcpy(j->probe, sq->probe, sizeof j->probe);
        }
        free(sq);
        if (bad) {
            free(j);
            char text[80];
            snprintf(text, sizeof text, "%s\n", bad);
            reply_plain(req, 400, "Bad Request", text);
            return 0;
        }
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

/* GET /api/v1/district/summary */
static int on_summary(void *ctx, struct st_h2o_req_t *req)
{
    struct np_api *api = ctx;
    const char *bad;
    if (!np_http_view_is(np_http_method(req), "GET")) {
        reply_plain(req, 405, "Method Not Allowed", "GET only\n");
        return 0;
    }
    struct job *j = new_job(req);
    if (!j) {
        return 0;
    }
    j->kind = JOB_SUMMARY;
    bad = report_period(np_http_query(req), j, true);
    if (bad) {
        free(j);
        reply_plain(req, 400, "Bad Request", bad);
        return 0;
    }
    return start_job(api, req, j);
}

void np_api_set_targets(struct np_api *api, const struct np_collector_targets *targets)
{
    api->targets = targets;
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
        np_http_server_route(server, SITES_PREFIX, true, on_site, api) != 0 ||
        np_http_server_route(server, AGENTS_PREFIX, true, on_agent, api) != 0 ||
        np_http_server_route(server, "/api/v1/district/summary", false, on_summary, api) != 0) {
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
