#include "report_api.h"

#include "netpulse/clock.h"
#include "report_time.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* DESIGN.md's defaults, for an API made without a configuration. */
static const struct np_collector_targets default_targets = {
    .uptime = 0.995,
    .growth_years = 5,
    .growth_elementary = 4.0,
    .growth_middle = 4.0,
    .growth_high = 9.0,
};

static int parse_seconds(const char *s, int64_t *out_ms)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < 0 || v > (1LL << 40)) {
        return -EINVAL;
    }
    *out_ms = (int64_t)v * 1000;
    return 0;
}

int np_report_api_period(const char *from, const char *to, const char *month, const char *year,
                         bool summary, int64_t now_ms, int64_t *from_ms, int64_t *to_ms)
{
    int given = (from || to) + (month != NULL) + (year != NULL);
    if (given > 1 || (!from != !to)) {
        return -EINVAL;
    }
    if (from) {
        if (parse_seconds(from, from_ms) < 0 || parse_seconds(to, to_ms) < 0) {
            return -EINVAL;
        }
    } else if (month) {
        if (np_report_parse_month(month, from_ms, to_ms) < 0) {
            return -EINVAL;
        }
    } else if (year) {
        if (np_report_parse_year(year, from_ms, to_ms) < 0) {
            return -EINVAL;
        }
    } else if (summary) {
        np_report_year_of(now_ms, from_ms, to_ms);
    } else {
        np_report_month_of(now_ms, from_ms, to_ms);
    }
    return *to_ms > *from_ms ? 0 : -EINVAL;
}

static json_t *num(double v)
{
    return isnan(v) || isinf(v) ? json_null() : json_real(v);
}

static int one_site(const struct np_report_api_req *r, const struct np_report_ctx *ctx,
                    const char *site, struct np_site_figures *f, struct np_err *err)
{
    int ret;
    r->lock(r->lock_ctx);
    ret = np_report_site(ctx, site, r->from_ms, r->to_ms, NULL, NULL, f, err);
    r->unlock(r->lock_ctx);
    return ret;
}

static int summary(const struct np_report_api_req *r, const struct np_report_ctx *ctx, json_t **out,
                   struct np_err *err)
{
    struct np_site_figures **figs = NULL;
    json_t *ids = NULL, *sites = NULL, *sum = NULL;
    char rec[256], buf[32];
    size_t n = 0, done = 0;
    int ret;

    r->lock(r->lock_ctx);
    ret = np_report_site_ids(ctx, &ids, err);
    r->unlock(r->lock_ctx);
    if (ret < 0) {
        return ret;
    }
    n = json_array_size(ids);
    figs = calloc(n ? n : 1, sizeof *figs);
    sites = json_array();
    if (!figs || !sites) {
        ret = np_err_set(err, -ENOMEM, "api: out of memory");
        goto out;
    }
    for (done = 0; done < n; done++) {
        figs[done] = malloc(sizeof *figs[done]);
        if (!figs[done]) {
            ret = np_err_set(err, -ENOMEM, "api: out of memory");
            goto out;
        }
        ret = one_site(r, ctx, json_string_value(json_array_get(ids, done)), figs[done], err);
        if (ret < 0) {
            np_report_site_free(figs[done]);
            free(figs[done]);
            goto out;
        }
        const struct np_site_figures *f = figs[done];
        json_array_append_new(
            sites,
            json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:I, s:o, s:s, s:s}", "site", f->id,
                      "name", f->name, "school_type", np_school_type_name(f->school_type),
                      "uptime_percent", f->up.has_data ? json_real(f->up.ratio * 100) : json_null(),
                      "uptime_met", f->up.has_data ? json_boolean(f->up.met) : json_null(),
                      "utilisation", num(f->current_util), "p95_bps", num(f->used_bps), "rate_bps",
                      (json_int_t)f->cap.rate_last_bps, "growth_on_track",
                      f->growth_provisioned.known ? json_boolean(f->growth_provisioned.on_track)
                                                  : json_null(),
                      "forecast", np_forecast_kind_name(f->forecast.kind), "recommendation",
                      np_report_recommendation(f, rec, sizeof rec)));
    }
    sum = np_report_summary_json(figs, n);
    *out = json_pack("{s:s, s:s, s:I, s:I, s:o, s:O}", "from",
                     np_report_format_time(r->from_ms, buf, sizeof buf), "to",
                     np_report_format_time(r->to_ms, rec, sizeof rec), "from_ms",
                     (json_int_t)r->from_ms, "to_ms", (json_int_t)r->to_ms, "summary",
                     sum ? sum : json_null(), "sites", sites);
    ret = *out ? 0 : np_err_set(err, -ENOMEM, "api: out of memory");
out:
    for (size_t i = 0; figs && i < done; i++) {
        np_report_site_free(figs[i]);
        free(figs[i]);
    }
    free(figs);
    json_decref(sites);
    json_decref(ids);
    return ret;
}

int np_report_api_json(const struct np_report_api_req *r, json_t **out, struct np_err *err)
{
    struct np_report_ctx ctx = {r->db, r->rrd, r->targets ? r->targets : &default_targets,
                                np_clock_wall_ms()};
    struct np_site_figures *f;
    int ret;

    *out = NULL;
    if (r->kind == NP_REPORT_API_SUMMARY) {
        return summary(r, &ctx, out, err);
    }
    f = malloc(sizeof *f);
    if (!f) {
        return np_err_set(err, -ENOMEM, "api: out of memory");
    }
    ret = one_site(r, &ctx, r->site, f, err);
    if (ret == 0) {
        *out =
            r->kind == NP_REPORT_API_UPTIME ? np_report_uptime_json(f) : np_report_capacity_json(f);
        if (!*out) {
            ret = np_err_set(err, -ENOMEM, "api: out of memory");
        }
    }
    np_report_site_free(f);
    free(f);
    return ret;
}
