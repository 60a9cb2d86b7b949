#include "report_data.h"

#include "iface_key.h"

#include "report_time.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- growable arrays for the callbacks ---------------------------------- */

struct vec {
    void *v;
    size_t n, cap, size;
};

static void *vec_push(struct vec *a)
{
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 16;
        void *nv = realloc(a->v, nc * a->size);
        if (!nv) {
            return NULL;
        }
        a->v = nv;
        a->cap = nc;
    }
    return (char *)a->v + a->size * a->n++;
}

static int on_outage(const struct np_outage_row *o, void *ctx)
{
    struct np_outage *x = vec_push(ctx);
    if (!x) {
        return -ENOMEM;
    }
    x->start_ms = o->start_ms;
    x->end_ms = o->end_ms;
    x->cause = strcmp(o->cause, "link") == 0    ? NP_OUTAGE_LINK
               : strcmp(o->cause, "agent") == 0 ? NP_OUTAGE_AGENT
                                                : NP_OUTAGE_UNKNOWN;
    return 0;
}

static int on_maintenance(const struct np_maintenance *m, void *ctx)
{
    struct np_interval *x = vec_push(ctx);
    if (!x) {
        return -ENOMEM;
    }
    x->start_ms = m->start_ms;
    x->end_ms = m->end_ms;
    return 0;
}

static int on_rate(int64_t from_ms, uint64_t rate_bps, void *ctx)
{
    struct np_rate_change *x = vec_push(ctx);
    if (!x) {
        return -ENOMEM;
    }
    x->from_s = from_ms / 1000;
    x->rate_bps = rate_bps;
    return 0;
}

/* Picks the uplink from the site's interfaces (see the header). */
static void pick_uplink(json_t *ifaces, struct np_site_figures *f, const char *device,
                        const char *iface)
{
    json_t *best = NULL, *it;
    int best_score = -1;
    size_t i;
    json_array_foreach(ifaces, i, it)
    {
        const char *dev = json_string_value(json_object_get(it, "device"));
        const char *key = json_string_value(json_object_get(it, "iface"));
        const char *alias = json_string_value(json_object_get(it, "if_alias"));
        const char *name = json_string_value(json_object_get(it, "if_name"));
        int score;
        if (!dev || !key) {
            continue;
        }
        if (device && iface) {
            if (strcmp(dev, device) == 0 && strcmp(key, iface) == 0) {
                best = it;
                break;
            }
            continue;
        }
        score = np_iface_named_uplink(name, alias) ? 2 : 1;
        if (score > best_score ||
            (score == best_score && json_integer_value(json_object_get(it, "speed_bps")) >
                                        json_integer_value(json_object_get(best, "speed_bps")))) {
            best = it;
            best_score = score;
        }
    }
    if (device && iface) {
        /* Named by the caller: use it even if the inventory has not seen it. */
        snprintf(f->device, sizeof f->device, "%s", device);
        snprintf(f->iface, sizeof f->iface, "%s", iface);
        f->has_uplink = true;
    } else if (best) {
        snprintf(f->device, sizeof f->device, "%s",
                 json_string_value(json_object_get(best, "device")));
        snprintf(f->iface, sizeof f->iface, "%s",
                 json_string_value(json_object_get(best, "iface")));
        f->has_uplink = true;
    }
    if (best) {
        f->iface_speed_bps = (uint64_t)json_integer_value(json_object_get(best, "speed_bps"));
    }
}

/* Fetches the uplink's 5-minute rows over [from_s, to_s). *series zeroed when
 * the file does not exist. */
static int fetch_uplink(const struct np_report_ctx *ctx, const struct np_site_figures *f,
                        int64_t from_s, int64_t to_s, struct np_rrd_series *series,
                        struct np_err *err)
{
    int ret;
    memset(series, 0, sizeof *series);
    if (!ctx->rrd || !f->has_uplink) {
        return 0;
    }
    ret = np_rrd_store_fetch_raw(ctx->rrd, NP_RRD_IFACE, f->id, f->device, f->iface, "AVERAGE",
                                 from_s, to_s, NP_P95_STEP_S, series, err);
    if (ret == -ENOENT) {
        np_err_clear(err);
        return 0;
    }
    return ret;
}

/* p95 of the busier direction of rows in [from_s, to_s) of s; NAN if none. */
static double busier_p95(const struct np_rrd_series *s, int64_t from_s, int64_t to_s)
{
    double *a, *b, pa, pb;
    size_t k = 0;
    if (s->n == 0) {
        return NAN;
    }
    a = malloc(s->n * sizeof *a);
    b = malloc(s->n * sizeof *b);
    if (!a || !b) {
        free(a);
        free(b);
        return NAN;
    }
    for (size_t i = 0; i < s->n; i++) {
        int64_t t = s->start_s + (int64_t)i * s->step_s; /* the row's start */
        if (t >= from_s && t < to_s) {
            a[k] = s->v[i * NP_RRD_VALUES];
            b[k] = s->v[i * NP_RRD_VALUES + 1];
            k++;
        }
    }
    pa = np_capacity_percentile(a, k, 95);
    pb = np_capacity_percentile(b, k, 95);
    free(a);
    free(b);
    if (isnan(pa)) {
        return pb;
    }
    return isnan(pb) || pa >= pb ? pa : pb;
}

static double growth_target_for(const struct np_collector_targets *t, enum np_school_type type)
{
    switch (type) {
    case NP_SCHOOL_ELEMENTARY:
        return t->growth_elementary;
    case NP_SCHOOL_MIDDLE:
        return t->growth_middle;
    case NP_SCHOOL_HIGH:
        return t->growth_high;
    default:
        return t->growth_elementary;
    }
}

/* The first sign of life of the site's agent on record: the earliest of its
 * agent_start events (the process start, agent clock) and of the first_seen_ms
 * of its devices and interfaces (its first SNMP poll). *first_ms = INT64_MAX
 * when no agent has had a batch applied (the inventory and series came from
 * elsewhere, e.g. an import: the evidence is the RRDs alone). */
static int agent_first_sign(const struct np_report_ctx *ctx, json_t *site, int64_t to_ms,
                            int64_t *first_ms, struct np_err *err)
{
    static const char *const lists[] = {"devices", "interfaces"};
    json_t *events = NULL, *it;
    json_t *seq = json_object_get(json_object_get(site, "agent"), "applied_seq");
    size_t i;
    int ret;

    *first_ms = INT64_MAX;
    if (!json_is_integer(seq) || json_integer_value(seq) <= 0) {
        return 0;
    }
    for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++) {
        json_array_foreach(json_object_get(site, lists[l]), i, it)
        {
            json_t *v = json_object_get(it, "first_seen_ms");
            if (json_is_integer(v) && json_integer_value(v) < *first_ms) {
                *first_ms = json_integer_value(v);
            }
        }
    }
    ret = np_state_db_events_json(ctx->db, json_string_value(json_object_get(site, "id")), 0,
                                  to_ms, &events, err);
    if (ret < 0) {
        return ret;
    }
    json_array_foreach(events, i, it)
    {
        json_t *v = json_object_get(it, "start_ms");
        const char *type = json_string_value(json_object_get(it, "type"));
        if (type && strcmp(type, "agent_start") == 0 && json_is_integer(v) &&
            json_integer_value(v) < *first_ms) {
            *first_ms = json_integer_value(v);
        }
    }
    json_decref(events);
    return 0;
}

int np_report_site(const struct np_report_ctx *ctx, const char *site_id, int64_t from_ms,
                   int64_t to_ms, const char *device, const char *iface, struct np_site_figures *f,
                   struct np_err *err)
{
    struct vec outages = {.size = sizeof(struct np_outage)};
    struct vec maint = {.size = sizeof(struct np_interval)};
    struct vec nodata = {.size = sizeof(struct np_interval)};
    struct vec rates = {.size = sizeof(struct np_rate_change)};
    struct np_rrd_series series = {0}, base = {0};
    double *in = NULL, *out = NULL;
    json_t *site = NULL;
    int64_t budget_from, budget_to, y0, agent_from;
    unsigned mo, d;
    size_t n = 0;
    int ret;

    memset(f, 0, sizeof *f);
    f->used_bps = f->baseline_used_bps = f->current_util = NAN;
    if (to_ms <= from_ms) {
        return np_err_set(err, -EINVAL, "report: the period is empty");
    }
    ret = np_state_db_site_json(ctx->db, site_id, &site, err);
    if (ret < 0) {
        return ret;
    }
    snprintf(f->id, sizeof f->id, "%s", site_id);
    snprintf(f->name, sizeof f->name, "%s", json_string_value(json_object_get(site, "name")));
    np_school_type_parse(json_string_value(json_object_get(site, "school_type")), &f->school_type);
    f->circuit_bps = (uint64_t)json_integer_value(json_object_get(site, "circuit_bps"));
    f->baseline_bps = (uint64_t)json_integer_value(json_object_get(site, "baseline_bps"));
    f->baseline_year = (int)json_integer_value(json_object_get(site, "baseline_year"));
    f->from_ms = from_ms;
    f->to_ms = to_ms;
    np_report_civil_from_days((to_ms - 1) / NP_MS_PER_DAY, &y0, &mo, &d);
    f->year = (int)y0;
    pick_uplink(json_object_get(site, "interfaces"), f, device, iface);

    /* Evidence for uptime over the period and the budget year around it. */
    np_report_year_of((to_ms < ctx->now_ms ? to_ms : ctx->now_ms) - 1, &budget_from, &budget_to);
    budget_from = budget_from < from_ms ? budget_from : from_ms;
    budget_to = budget_to > to_ms ? budget_to : to_ms;
    if ((ret = np_state_db_outages_list(ctx->db, site_id, budget_from, budget_to, ctx->now_ms,
                                        on_outage, &outages, err)) != 0 ||
        (ret = np_state_db_maintenance_list(ctx->db, site_id, budget_from, budget_to,
                                            on_maintenance, &maint, err)) != 0 ||
        (ret = np_state_db_rates_list(ctx->db, site_id, on_rate, &rates, err)) != 0) {
        if (ret > 0) {
            ret = np_err_set(err, -ENOMEM, "report: out of memory");
        }
        goto out_free;
    }
    f->n_maintenance = 0;
    for (size_t i = 0; i < maint.n; i++) {
        const struct np_interval *m = (const struct np_interval *)maint.v + i;
        f->n_maintenance += m->start_ms < to_ms && m->end_ms > from_ms;
    }
    if (rates.n == 0 && (f->circuit_bps || f->iface_speed_bps)) {
        struct np_rate_change *r = vec_push(&rates);
        if (!r) {
            ret = np_err_set(err, -ENOMEM, "report: out of memory");
            goto out_free;
        }
        r->from_s = INT64_MIN / 2;
        r->rate_bps = f->circuit_bps ? f->circuit_bps : f->iface_speed_bps;
    }

    ret = fetch_uplink(ctx, f, budget_from / 1000, budget_to / 1000, &series, err);
    if (ret < 0) {
        goto out_free;
    }
    /* No data. Without an agent on record (series imported from elsewhere):
     * the uplink's rows with nothing known, merged into runs; a site without
     * a series at all has no data for the whole span. With an agent, that
     * holds only before its first sign of life: from then on the outages
     * record decides (an agent outage is no data, a link or unknown one is
     * down, the rest up: the uplink was usable while the probes succeeded).
     * The interface RRD's unknown rows then only say that SNMP went
     * unanswered, and at 5-minute rows they would hide minutes of probe
     * evidence. And the future is no data. */
    ret = agent_first_sign(ctx, site, budget_to, &agent_from, err);
    if (ret < 0) {
        goto out_free;
    }
    if (series.n == 0) {
        struct np_interval *x = vec_push(&nodata);
        if (!x) {
            ret = np_err_set(err, -ENOMEM, "report: out of memory");
            goto out_free;
        }
        *x = (struct np_interval){budget_from, budget_to};
    } else {
        int64_t first = series.start_s * 1000,
                last = first + (int64_t)series.n * series.step_s * 1000;
        struct np_interval run = {0, 0};
        bool in_run = false;
        if (budget_from < first) {
            struct np_interval *x = vec_push(&nodata);
            if (!x) {
                ret = np_err_set(err, -ENOMEM, "report: out of memory");
                goto out_free;
            }
            *x = (struct np_interval){budget_from, first};
        }
        for (size_t i = 0; i <= series.n; i++) {
            bool unknown = false;
            int64_t t = first + (int64_t)i * series.step_s * 1000;
            if (i < series.n) {
                const double *row = series.v + i * NP_RRD_VALUES;
                unknown = isnan(row[0]) && isnan(row[1]) && isnan(row[2]);
                /* The row the agent started in: known from the agent's
                 * polls, not from before it. */
                unknown = unknown || (t < agent_from &&
                                      agent_from - t < (int64_t)series.step_s * 1000);
            }
            if (unknown && !in_run) {
                run.start_ms = t;
                in_run = true;
            } else if (!unknown && in_run) {
                struct np_interval *x = vec_push(&nodata);
                if (!x) {
                    ret = np_err_set(err, -ENOMEM, "report: out of memory");
                    goto out_free;
                }
                run.end_ms = t;
                *x = run;
                in_run = false;
            }
        }
        if (last < budget_to) {
            struct np_interval *x = vec_push(&nodata);
            if (!x) {
                ret = np_err_set(err, -ENOMEM, "report: out of memory");
                goto out_free;
            }
            *x = (struct np_interval){last, budget_to};
        }
    }
    for (size_t i = 0; i < nodata.n; i++) {
        struct np_interval *x = (struct np_interval *)nodata.v + i;
        if (x->end_ms > agent_from) {
            x->end_ms = x->start_ms > agent_from ? x->start_ms : agent_from; /* empty: ignored */
        }
    }
    if (ctx->now_ms < budget_to) {
        struct np_interval *x = vec_push(&nodata);
        if (!x) {
            ret = np_err_set(err, -ENOMEM, "report: out of memory");
            goto out_free;
        }
        *x = (struct np_interval){ctx->now_ms, budget_to};
    }

    {
        struct np_uptime_input ui = {outages.v, outages.n, maint.v, maint.n, nodata.v, nodata.n,
                                     np_collector_uptime_target(ctx->targets, f->school_type)};
        ret = np_uptime_compute(&ui, from_ms, to_ms, &f->up);
        if (ret == 0) {
            int64_t as_of = to_ms < ctx->now_ms ? to_ms - 1 : ctx->now_ms;
            ret = np_uptime_budget(&ui, as_of, &f->budget_month, &f->budget_year);
        }
        if (ret < 0) {
            np_err_set(err, ret, "report: uptime: %s", np_strerror(ret));
            goto out_free;
        }
    }

    /* Capacity over the period's rows. RRD stamps a row at its end; the
     * engine wants the start. */
    f->step_s = series.step_s;
    if (series.n > 0) {
        int64_t row0 = series.start_s; /* start of row 0 */
        size_t first = 0;
        while (first < series.n && (row0 + (int64_t)first * series.step_s) * 1000 < from_ms) {
            first++;
        }
        in = malloc((series.n - first + 1) * sizeof *in);
        out = malloc((series.n - first + 1) * sizeof *out);
        if (!in || !out) {
            ret = np_err_set(err, -ENOMEM, "report: out of memory");
            goto out_free;
        }
        for (size_t i = first; i < series.n && (row0 + (int64_t)i * series.step_s) * 1000 < to_ms;
             i++) {
            in[n] = series.v[i * NP_RRD_VALUES];
            out[n] = series.v[i * NP_RRD_VALUES + 1];
            n++;
        }
        struct np_capacity_input ci = {
            row0 + (int64_t)first * series.step_s, series.step_s, n, in, out, rates.v, rates.n, 0};
        if ((ret = np_capacity_compute(&ci, &f->cap)) < 0 ||
            (ret = np_capacity_monthly(&ci, f->months, NP_REPORT_MAX_MONTHS, &f->n_months)) < 0) {
            np_err_set(err, ret, "report: capacity: %s", np_strerror(ret));
            goto out_free;
        }
        f->has_series = f->cap.n_known > 0;
    } else {
        struct np_capacity_input ci = {from_ms / 1000, NP_P95_STEP_S, 0,       NULL,
                                       NULL,           rates.v,    rates.n, 0};
        np_capacity_compute(&ci, &f->cap);
        f->cap.rate_last_bps = np_capacity_rate_at(rates.v, rates.n, to_ms / 1000);
    }
    if (f->has_series) {
        f->used_bps = isnan(f->cap.in.p95_bps) || f->cap.out.p95_bps > f->cap.in.p95_bps
                          ? f->cap.out.p95_bps
                          : f->cap.in.p95_bps;
        if (f->cap.rate_last_bps > 0) {
            f->current_util = f->used_bps / (double)f->cap.rate_last_bps;
        }
    }

    /* Growth. */
    f->growth_target = growth_target_for(ctx->targets, f->school_type);
    {
        uint64_t now_rate = np_capacity_rate_at(rates.v, rates.n, to_ms / 1000 - 1);
        struct np_growth_input gp = {f->baseline_year,        f->year,
                                     (double)f->baseline_bps, (double)now_rate,
                                     f->growth_target,        (int)ctx->targets->growth_years};
        np_capacity_growth(&gp, &f->growth_provisioned);
    }
    if (f->baseline_year > 0 && f->baseline_year < f->year && f->has_series && ctx->rrd) {
        int64_t bs = np_report_month_start_ms(f->baseline_year, 1) / 1000;
        int64_t be = np_report_month_start_ms(f->baseline_year + 1, 1) / 1000;
        if (series.n > 0 && series.start_s <= bs) {
            f->baseline_used_bps = busier_p95(&series, bs, be);
        } else if (fetch_uplink(ctx, f, bs, be, &base, NULL) == 0 && base.n > 0) {
            f->baseline_used_bps = busier_p95(&base, bs, be);
        }
    }
    {
        struct np_growth_input gu = {f->baseline_year,
                                     f->year,
                                     isnan(f->baseline_used_bps) ? 0 : f->baseline_used_bps,
                                     isnan(f->used_bps) ? 0 : f->used_bps,
                                     f->growth_target,
                                     (int)ctx->targets->growth_years};
        np_capacity_growth(&gu, &f->growth_used);
    }

    /* Forecast on the months' busier p95. */
    {
        int64_t t[NP_REPORT_MAX_MONTHS];
        double v[NP_REPORT_MAX_MONTHS];
        for (size_t i = 0; i < f->n_months; i++) {
            const struct np_capacity_month *m = &f->months[i];
            t[i] = m->start_ms + 15 * NP_MS_PER_DAY; /* mid-month */
            v[i] = isnan(m->p95_in_bps) || m->p95_out_bps > m->p95_in_bps ? m->p95_out_bps
                                                                          : m->p95_in_bps;
        }
        np_capacity_forecast(t, v, f->n_months, (double)f->cap.rate_last_bps, NP_CAPACITY_THRESHOLD,
                             NP_FIT_LOGLINEAR, &f->forecast);
    }
    ret = 0;

out_free:
    free(in);
    free(out);
    np_rrd_series_free(&series);
    np_rrd_series_free(&base);
    free(outages.v);
    free(maint.v);
    free(nodata.v);
    free(rates.v);
    json_decref(site);
    return ret;
}

void np_report_site_free(struct np_site_figures *f)
{
    if (f) {
        np_uptime_result_free(&f->up);
    }
}

int np_report_site_ids(const struct np_report_ctx *ctx, json_t **out, struct np_err *err)
{
    json_t *sites = NULL, *ids, *it;
    size_t i;
    int ret = np_state_db_sites_json(ctx->db, &sites, err);
    *out = NULL;
    if (ret < 0) {
        return ret;
    }
    ids = json_array();
    if (!ids) {
        json_decref(sites);
        return np_err_set(err, -ENOMEM, "report: out of memory");
    }
    json_array_foreach(sites, i, it)
    {
        if (json_is_true(json_object_get(it, "stub"))) {
            continue;
        }
        json_array_append(ids, json_object_get(it, "id"));
    }
    json_decref(sites);
    *out = ids;
    return 0;
}

/* ---- JSON ------------------------------------------------------------------- */

static json_t *num(double v)
{
    return isnan(v) || isinf(v) ? json_null() : json_real(v);
}

static json_t *time_str(int64_t ms)
{
    char buf[32];
    return json_string(np_report_format_time(ms, buf, sizeof buf));
}

static json_t *budget_json(const struct np_uptime_budget *b)
{
    return json_pack("{s:o, s:I, s:I, s:I}", "start", time_str(b->start_ms), "allowed_ms",
                     (json_int_t)b->allowed_ms, "used_ms", (json_int_t)b->used_ms, "left_ms",
                     (json_int_t)b->left_ms);
}

json_t *np_report_uptime_json(const struct np_site_figures *f)
{
    const struct np_uptime_result *u = &f->up;
    json_t *outages = json_array(), *o;
    for (size_t i = 0; outages && i < u->n_outages; i++) {
        const struct np_outage_report *r = &u->outages[i];
        json_array_append_new(outages, json_pack("{s:o, s:o, s:I, s:I, s:I, s:I, s:s}", "start",
                                                 time_str(r->start_ms), "end", time_str(r->end_ms),
                                                 "start_ms", (json_int_t)r->start_ms, "end_ms",
                                                 (json_int_t)r->end_ms, "duration_ms",
                                                 (json_int_t)r->duration_ms, "maintenance_ms",
                                                 (json_int_t)r->maintenance_ms, "cause",
                                                 np_outage_cause_name(r->cause)));
    }
    o = json_pack(
        "{s:s, s:s, s:s, s:o, s:o, s:I, s:I, s:b, s:o, s:f, s:o,"
        " s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I},"
        " s:{s:o, s:o}, s:I, s:o}",
        "site", f->id, "name", f->name, "school_type", np_school_type_name(f->school_type), "from",
        time_str(f->from_ms), "to", time_str(f->to_ms), "from_ms", (json_int_t)f->from_ms, "to_ms",
        (json_int_t)f->to_ms, "has_data", u->has_data, "uptime_percent",
        u->has_data ? json_real(u->ratio * 100.0) : json_null(), "target_percent",
        (double)u->target_ppm / 10000.0, "met", u->has_data ? json_boolean(u->met) : json_null(),
        "ms", "period", (json_int_t)u->period_ms, "maintenance", (json_int_t)u->maintenance_ms,
        "no_data", (json_int_t)u->no_data_ms, "down", (json_int_t)u->down_ms, "down_link",
        (json_int_t)u->down_link_ms, "down_unknown", (json_int_t)u->down_unknown_ms, "agent",
        (json_int_t)u->agent_ms, "measured", (json_int_t)u->measured_ms, "up", (json_int_t)u->up_ms,
        "budget", "month", budget_json(&f->budget_month), "year", budget_json(&f->budget_year),
        "maintenance_windows", (json_int_t)f->n_maintenance, "outages",
        outages ? outages : json_null());
    return o;
}

static json_t *dir_json(const struct np_capacity_dir *d)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "known", (json_int_t)d->known,
                     "p95_bps", num(d->p95_bps), "max_bps", num(d->max_bps), "mean_bps",
                     num(d->mean_bps), "util_p95", num(d->util_p95), "util_max", num(d->util_max),
                     "util_mean", num(d->util_mean));
}

static json_t *growth_json(const struct np_growth *g)
{
    if (!g->known) {
        return json_null();
    }
    return json_pack("{s:f, s:f, s:f, s:b, s:i, s:f}", "growth", g->growth, "expected_growth",
                     g->expected_growth, "target_bps", g->target_bps, "on_track", g->on_track,
                     "years_left", g->years_left, "needed_yearly", g->needed_yearly);
}

json_t *np_report_capacity_json(const struct np_site_figures *f)
{
    const struct np_capacity_result *c = &f->cap;
    json_t *busiest = json_array(), *months = json_array(), *fc, *o;
    char buf[64], rec[256];
    for (int b = 0; busiest && b < NP_CAPACITY_BUSIEST && c->busiest[b] >= 0; b++) {
        int k = c->busiest[b];
        json_array_append_new(busiest, json_pack("{s:i, s:s, s:o, s:o}", "bucket", k, "hour",
                                                 np_capacity_hour_name(k, buf, sizeof buf),
                                                 "in_bps", num(c->hour_in_bps[k]), "out_bps",
                                                 num(c->hour_out_bps[k])));
    }
    for (size_t i = 0; months && i < f->n_months; i++) {
        const struct np_capacity_month *m = &f->months[i];
        snprintf(buf, sizeof buf, "%04d-%02u", m->year, m->month);
        json_array_append_new(
            months, json_pack("{s:s, s:o, s:o, s:I, s:I, s:I}", "month", buf, "p95_in_bps",
                              num(m->p95_in_bps), "p95_out_bps", num(m->p95_out_bps), "known_in",
                              (json_int_t)m->known_in, "known_out", (json_int_t)m->known_out,
                              "rate_bps", (json_int_t)m->rate_bps));
    }
    fc = json_pack("{s:s, s:s, s:I, s:o, s:o, s:f, s:o}", "kind",
                   np_forecast_kind_name(f->forecast.kind), "fit",
                   f->forecast.fit == NP_FIT_LOGLINEAR ? "log-linear" : "linear", "months",
                   (json_int_t)f->forecast.points, "yearly_growth",
                   f->forecast.points >= 3 ? num(f->forecast.yearly_growth) : json_null(), "r2",
                   f->forecast.points >= 3 ? num(f->forecast.r2) : json_null(), "threshold_bps",
                   f->forecast.threshold_bps, "reach",
                   f->forecast.kind == NP_FORECAST_AT || f->forecast.kind == NP_FORECAST_REACHED
                       ? time_str(f->forecast.reach_ms)
                       : json_null());
    o = json_pack(
        "{s:s, s:s, s:s, s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:f,"
        " s:{s:I, s:I, s:I}, s:o, s:o, s:o, s:o, s:o, s:o,"
        " s:{s:f, s:I, s:o, s:o, s:o}, s:o, s:s}",
        "site", f->id, "name", f->name, "school_type", np_school_type_name(f->school_type),
        "uplink",
        f->has_uplink ? json_pack("{s:s, s:s}", "device", f->device, "iface", f->iface)
                      : json_null(),
        "from", time_str(f->from_ms), "to", time_str(f->to_ms), "from_ms", (json_int_t)f->from_ms,
        "to_ms", (json_int_t)f->to_ms, "step_s", (json_int_t)f->step_s, "samples",
        (json_int_t)c->n_samples, "coverage", c->coverage, "rate_bps", "first",
        (json_int_t)c->rate_first_bps, "last", (json_int_t)c->rate_last_bps, "changes",
        (json_int_t)c->rate_changes, "in", dir_json(&c->in), "out", dir_json(&c->out),
        "used_p95_bps", num(f->used_bps), "utilisation", num(f->current_util), "busiest_hours",
        busiest ? busiest : json_null(), "months", months ? months : json_null(), "growth",
        "target", f->growth_target, "baseline_year", (json_int_t)f->baseline_year,
        "baseline_used_p95_bps", num(f->baseline_used_bps), "provisioned",
        growth_json(&f->growth_provisioned), "used", growth_json(&f->growth_used), "forecast",
        fc ? fc : json_null(), "recommendation", np_report_recommendation(f, rec, sizeof rec));
    return o;
}

/* ---- judgement -------------------------------------------------------------- */

#define YEAR_MS (365.2425 * 86400000.0)

char *np_report_recommendation(const struct np_site_figures *f, char *buf, size_t len)
{
    char when[32];
    if (!f->has_series) {
        snprintf(buf, len, "No traffic data for the period: check the agent and the uplink.");
    } else if (f->cap.rate_last_bps == 0) {
        snprintf(buf, len, "Provisioned rate unknown: record the circuit rate in the inventory.");
    } else if (f->forecast.kind == NP_FORECAST_REACHED || f->current_util >= 0.8) {
        snprintf(buf, len, "Upgrade now: the 95th percentile is at or above 80 %% of the circuit.");
    } else if (f->forecast.kind == NP_FORECAST_AT &&
               (double)(f->forecast.reach_ms - f->to_ms) < 2 * YEAR_MS) {
        np_report_format_time(f->forecast.reach_ms, when, sizeof when);
        when[7] = '\0';
        snprintf(buf, len, "Plan an upgrade: 80 %% utilisation expected by %s.", when);
    } else if (f->growth_provisioned.known && !f->growth_provisioned.on_track) {
        snprintf(buf, len,
                 "Upgrade to stay on the growth target: +%.0f %% a year needed for %d year(s).",
                 f->growth_provisioned.needed_yearly * 100,
                 f->growth_provisioned.years_left > 0 ? f->growth_provisioned.years_left : 1);
    } else {
        snprintf(buf, len, "No action: capacity is sufficient.");
    }
    return buf;
}

double np_report_upgrade_need(const struct np_site_figures *f)
{
    double need = 0;
    if (!f->has_series || f->cap.rate_last_bps == 0) {
        return 0;
    }
    if (f->forecast.kind == NP_FORECAST_REACHED || f->current_util >= 0.8) {
        need = 2 + f->current_util;
    } else if (f->forecast.kind == NP_FORECAST_AT &&
               (double)(f->forecast.reach_ms - f->to_ms) < 2 * YEAR_MS) {
        need = 1 + (1 - (double)(f->forecast.reach_ms - f->to_ms) / (2 * YEAR_MS));
    } else if (f->growth_provisioned.known && !f->growth_provisioned.on_track) {
        need =
            0.5 + (f->growth_provisioned.needed_yearly < 1 ? f->growth_provisioned.needed_yearly / 2
                                                           : 0.5);
    }
    return need;
}

struct ranked {
    double need;
    const struct np_site_figures *f;
};

static int cmp_ranked(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->need != y->need) {
        return x->need < y->need ? 1 : -1;
    }
    return strcmp(x->f->id, y->f->id);
}

json_t *np_report_summary_json(struct np_site_figures *const *figures, size_t n)
{
    size_t met = 0, missed = 0, nodata = 0, on_track = 0, behind = 0, unknown_growth = 0, k = 0;
    struct ranked *r = malloc((n ? n : 1) * sizeof *r);
    json_t *list = json_array(), *o;
    char rec[256];
    if (!r || !list) {
        free(r);
        json_decref(list);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const struct np_site_figures *f = figures[i];
        double need = np_report_upgrade_need(f);
        if (!f->up.has_data) {
            nodata++;
        } else if (f->up.met) {
            met++;
        } else {
            missed++;
        }
        if (!f->growth_provisioned.known) {
            unknown_growth++;
        } else if (f->growth_provisioned.on_track) {
            on_track++;
        } else {
            behind++;
        }
        if (need > 0) {
            r[k++] = (struct ranked){need, f};
        }
    }
    qsort(r, k, sizeof *r, cmp_ranked);
    for (size_t i = 0; i < k; i++) {
        const struct np_site_figures *f = r[i].f;
        json_array_append_new(
            list, json_pack("{s:i, s:s, s:s, s:s, s:f, s:o, s:I, s:s}", "rank", (int)(i + 1),
                            "site", f->id, "name", f->name, "school_type",
                            np_school_type_name(f->school_type), "need", r[i].need, "utilisation",
                            num(f->current_util), "rate_bps", (json_int_t)f->cap.rate_last_bps,
                            "recommendation", np_report_recommendation(f, rec, sizeof rec)));
    }
    free(r);
    o = json_pack("{s:I, s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I}, s:o}", "schools", (json_int_t)n,
                  "uptime", "met", (json_int_t)met, "missed", (json_int_t)missed, "no_data",
                  (json_int_t)nodata, "growth", "on_track", (json_int_t)on_track, "behind",
                  (json_int_t)behind, "unknown", (json_int_t)unknown_growth, "upgrades", list);
    return o;
}
