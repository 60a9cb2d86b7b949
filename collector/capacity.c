#include "capacity.h"

#include "report_time.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECONDS_PER_YEAR (365.2425 * 86400.0)
#define FORECAST_HORIZON_YEARS 50.0

const char *np_forecast_kind_name(enum np_forecast_kind k)
{
    switch (k) {
    case NP_FORECAST_REACHED:
        return "reached";
    case NP_FORECAST_AT:
        return "at";
    case NP_FORECAST_NEVER:
        return "never";
    default:
        return "unknown";
    }
}

/* ---- percentile ------------------------------------------------------------ */

static double median3(double a, double b, double c)
{
    if (a < b) {
        return b < c ? b : (a < c ? c : a);
    }
    return a < c ? a : (b < c ? c : b);
}

/* The k-th smallest (0-based) of v[0..n), all finite; v is reordered.
 * Three-way partition, so long runs of equal values (idle nights at 0 bps)
 * do not degrade it. */
static double select_kth(double *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n; /* [lo, hi) holds rank k */
    while (hi - lo > 1) {
        double p = median3(v[lo], v[lo + (hi - lo) / 2], v[hi - 1]);
        size_t lt = lo, i = lo, gt = hi;
        while (i < gt) {
            if (v[i] < p) {
                double t = v[lt];
                v[lt++] = v[i];
                v[i++] = t;
            } else if (v[i] > p) {
                double t = v[--gt];
                v[gt] = v[i];
                v[i] = t;
            } else {
                i++;
            }
        }
        if (k < lt) {
            hi = lt;
        } else if (k >= gt) {
            lo = gt;
        } else {
            return p;
        }
    }
    return v[lo];
}

double np_capacity_percentile(double *vals, size_t n, unsigned pct)
{
    size_t k = 0, rank;
    if (pct < 1 || pct > 100) {
        return NAN;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isnan(vals[i])) {
            vals[k++] = vals[i];
        }
    }
    if (k == 0) {
        return NAN;
    }
    rank = (pct * k + 99) / 100; /* ceil(pct/100 * k), 1-based */
    return select_kth(vals, k, rank - 1);
}

/* ---- rates ----------------------------------------------------------------- */

uint64_t np_capacity_rate_at(const struct np_rate_change *rates, size_t n, int64_t t_s)
{
    const struct np_rate_change *best = NULL, *first = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!first || rates[i].from_s < first->from_s) {
            first = &rates[i];
        }
        if (rates[i].from_s <= t_s && (!best || rates[i].from_s >= best->from_s)) {
            best = &rates[i];
        }
    }
    if (best) {
        return best->rate_bps;
    }
    return first ? first->rate_bps : 0;
}

char *np_capacity_hour_name(int bucket, char *buf, size_t len)
{
    static const char *const days[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    if (bucket < 0 || bucket >= NP_CAPACITY_HOURS) {
        snprintf(buf, len, "-");
    } else {
        snprintf(buf, len, "%s %02d:00", days[bucket / 24], bucket % 24);
    }
    return buf;
}

/* Monday = 0. 1970-01-01 was a Thursday (3). */
static int hour_bucket(int64_t t_s)
{
    int64_t days = t_s >= 0 ? t_s / 86400 : (t_s - 86399) / 86400;
    int64_t hour = (t_s - days * 86400) / 3600;
    int wd = (int)(((days % 7) + 7 + 3) % 7);
    return wd * 24 + (int)hour;
}

/* ---- the period's figures -------------------------------------------------- */

/* Fills d from the series v (n values) and the per-sample rates; scratch holds
 * n doubles. */
static void direction(const double *v, const double *rate, size_t n, double *scratch,
                      struct np_capacity_dir *d)
{
    double sum = 0, max = -INFINITY, usum = 0, umax = -INFINITY;
    size_t k = 0, uk = 0;

    for (size_t i = 0; i < n; i++) {
        if (isnan(v[i])) {
            continue;
        }
        scratch[k++] = v[i];
        sum += v[i];
        if (v[i] > max) {
            max = v[i];
        }
    }
    d->known = k;
    d->p95_bps = np_capacity_percentile(scratch, k, 95);
    d->max_bps = k ? max : NAN;
    d->mean_bps = k ? sum / (double)k : NAN;

    for (size_t i = 0; i < n; i++) {
        if (isnan(v[i]) || !(rate[i] > 0)) {
            continue;
        }
        double u = v[i] / rate[i];
        scratch[uk++] = u;
        usum += u;
        if (u > umax) {
            umax = u;
        }
    }
    d->util_p95 = np_capacity_percentile(scratch, uk, 95);
    d->util_max = uk ? umax : NAN;
    d->util_mean = uk ? usum / (double)uk : NAN;
}

int np_capacity_compute(const struct np_capacity_input *in, struct np_capacity_result *out)
{
    double *rate = NULL, *scratch = NULL, *nan_out = NULL;
    double sum_in[NP_CAPACITY_HOURS] = {0}, sum_out[NP_CAPACITY_HOURS] = {0};
    uint32_t n_in[NP_CAPACITY_HOURS] = {0}, n_out[NP_CAPACITY_HOURS] = {0};
    const double *outv = in->out_bps;
    size_t n = in->n;
    int ret = 0;

    memset(out, 0, sizeof *out);
    if (in->step_s == 0 || (n > 0 && !in->in_bps)) {
        return -EINVAL;
    }
    out->n_samples = n;
    for (int b = 0; b < NP_CAPACITY_BUSIEST; b++) {
        out->busiest[b] = -1;
    }
    if (n > 0) {
        rate = malloc(n * sizeof *rate);
        scratch = malloc(n * sizeof *scratch);
        if (!outv) {
            nan_out = malloc(n * sizeof *nan_out);
            for (size_t i = 0; nan_out && i < n; i++) {
                nan_out[i] = NAN;
            }
            outv = nan_out;
        }
        if (!rate || !scratch || !outv) {
            ret = -ENOMEM;
            goto out_free;
        }
    }
    for (size_t i = 0; i < n; i++) {
        int64_t t = in->start_s + (int64_t)i * in->step_s;
        bool ki = !isnan(in->in_bps[i]), ko = !isnan(outv[i]);
        int b = hour_bucket(t + in->utc_offset_s);
        rate[i] = (double)np_capacity_rate_at(in->rates, in->n_rates, t);
        if (ki || ko) {
            out->n_known++;
        }
        if (ki) {
            sum_in[b] += in->in_bps[i];
            n_in[b]++;
        }
        if (ko) {
            sum_out[b] += outv[i];
            n_out[b]++;
        }
    }
    if (n > 0) {
        int64_t first = in->start_s, last = in->start_s + (int64_t)(n - 1) * in->step_s;
        out->coverage = (double)out->n_known / (double)n;
        out->rate_first_bps = (uint64_t)rate[0];
        out->rate_last_bps = (uint64_t)rate[n - 1];
        for (size_t r = 0; r < in->n_rates; r++) {
            if (in->rates[r].from_s > first && in->rates[r].from_s <= last) {
                out->rate_changes++;
            }
        }
    }
    direction(in->in_bps, rate, n, scratch, &out->in);
    direction(outv, rate, n, scratch, &out->out);

    for (int b = 0; b < NP_CAPACITY_HOURS; b++) {
        out->hour_in_bps[b] = n_in[b] ? sum_in[b] / n_in[b] : NAN;
        out->hour_out_bps[b] = n_out[b] ? sum_out[b] / n_out[b] : NAN;
        out->hour_n[b] = n_in[b] > n_out[b] ? n_in[b] : n_out[b];
    }
    /* Busiest: the larger of the two directions' means; ties to the earlier
     * bucket, so the answer does not depend on anything but the data. */
    for (int slot = 0; slot < NP_CAPACITY_BUSIEST; slot++) {
        double best = -1;
        for (int b = 0; b < NP_CAPACITY_HOURS; b++) {
            double v = fmax(isnan(out->hour_in_bps[b]) ? -1 : out->hour_in_bps[b],
                            isnan(out->hour_out_bps[b]) ? -1 : out->hour_out_bps[b]);
            bool taken = false;
            for (int s = 0; s < slot; s++) {
                taken = taken || out->busiest[s] == b;
            }
            if (!taken && out->hour_n[b] > 0 && v > best) {
                best = v;
                out->busiest[slot] = b;
            }
        }
    }
out_free:
    free(rate);
    free(scratch);
    free(nan_out);
    return ret;
}

/* ---- months ---------------------------------------------------------------- */

int np_capacity_monthly(const struct np_capacity_input *in, struct np_capacity_month *months,
                        size_t max, size_t *n_out)
{
    double *a = NULL, *b = NULL;
    size_t i = 0, k = 0;
    int ret = 0;

    *n_out = 0;
    if (in->step_s == 0 || (in->n > 0 && !in->in_bps)) {
        return -EINVAL;
    }
    if (in->n == 0) {
        return 0;
    }
    a = malloc(in->n * sizeof *a);
    b = malloc(in->n * sizeof *b);
    if (!a || !b) {
        ret = -ENOMEM;
        goto out_free;
    }
    while (i < in->n) {
        int64_t t = in->start_s + (int64_t)i * in->step_s, ms, me, y;
        unsigned mo, d;
        size_t j = i, m = 0;
        np_report_month_of(t * 1000, &ms, &me);
        while (j < in->n && (in->start_s + (int64_t)j * in->step_s) * 1000 < me) {
            a[m] = in->in_bps[j];
            b[m] = in->out_bps ? in->out_bps[j] : NAN;
            m++;
            j++;
        }
        if (k >= max) {
            ret = -ERANGE;
            goto out_free;
        }
        struct np_capacity_month *mon = &months[k++];
        np_report_civil_from_days(ms / NP_MS_PER_DAY, &y, &mo, &d);
        mon->start_ms = ms;
        mon->year = (int)y;
        mon->month = mo;
        mon->known_in = mon->known_out = 0;
        for (size_t x = 0; x < m; x++) {
            mon->known_in += !isnan(a[x]);
            mon->known_out += !isnan(b[x]);
        }
        mon->p95_in_bps = np_capacity_percentile(a, m, 95);
        mon->p95_out_bps = np_capacity_percentile(b, m, 95);
        mon->rate_bps = np_capacity_rate_at(in->rates, in->n_rates,
                                            in->start_s + (int64_t)(j - 1) * in->step_s);
        i = j;
    }
    *n_out = k;
out_free:
    free(a);
    free(b);
    return ret;
}

/* ---- growth ---------------------------------------------------------------- */

int np_capacity_growth(const struct np_growth_input *in, struct np_growth *out)
{
    int elapsed;
    double path;

    memset(out, 0, sizeof *out);
    if (in->target_years < 1 || !(in->target >= 0)) {
        return -EINVAL;
    }
    if (in->baseline_year <= 0 || !(in->baseline_bps > 0) || !(in->current_bps > 0)) {
        return 0;
    }
    elapsed = in->year - in->baseline_year;
    if (elapsed < 0) {
        elapsed = 0;
    }
    out->known = true;
    out->growth = in->current_bps / in->baseline_bps - 1;
    out->target_bps = in->baseline_bps * (1 + in->target);
    path = pow(1 + in->target, (double)(elapsed < in->target_years ? elapsed : in->target_years) /
                                   in->target_years);
    out->expected_growth = path - 1;
    /* A relative tolerance: a circuit bought exactly on the path (e.g. 500
     * Mbps from 100 Mbps at +400 %) must not miss it by a rounding error. */
    out->on_track = in->current_bps >= in->baseline_bps * path * (1 - 1e-9);
    out->years_left = in->baseline_year + in->target_years - in->year;
    if (in->current_bps >= out->target_bps * (1 - 1e-9)) {
        out->needed_yearly = 0;
    } else if (out->years_left <= 0) {
        out->needed_yearly = out->target_bps / in->current_bps - 1;
    } else {
        out->needed_yearly = pow(out->target_bps / in->current_bps, 1.0 / out->years_left) - 1;
    }
    return 0;
}

/* ---- forecast -------------------------------------------------------------- */

int np_capacity_forecast(const int64_t *t_ms, const double *bps, size_t n, double capacity_bps,
                         double threshold, enum np_fit fit, struct np_forecast *out)
{
    double sx = 0, sy = 0, t0 = 0, last_x = 0, last_v = NAN;
    double slope, icpt, target, mx, my, cxx, cxy, cyy, x_reach;
    size_t k = 0;
    bool have_t0 = false;

    memset(out, 0, sizeof *out);
    out->fit = fit;
    out->kind = NP_FORECAST_UNKNOWN;
    if (!(threshold > 0) || (n > 0 && (!t_ms || !bps))) {
        return -EINVAL;
    }
    target = threshold * capacity_bps;
    out->threshold_bps = target;
    for (size_t i = 0; i < n; i++) {
        double x, y;
        if (isnan(bps[i]) || (fit == NP_FIT_LOGLINEAR && !(bps[i] > 0))) {
            continue;
        }
        if (!have_t0) {
            t0 = (double)t_ms[i];
            have_t0 = true;
        }
        /* Years since the first point: small numbers, a well-conditioned fit. */
        x = ((double)t_ms[i] - t0) / 1000.0 / SECONDS_PER_YEAR;
        y = fit == NP_FIT_LOGLINEAR ? log(bps[i]) : bps[i];
        sx += x;
        sy += y;
        k++;
        last_x = x;
        last_v = bps[i];
    }
    out->points = k;
    if (k < 3 || !(capacity_bps > 0)) {
        return 0;
    }
    /* Centred sums (two passes) for accuracy. */
    mx = sx / (double)k;
    my = sy / (double)k;
    cxx = cxy = cyy = 0;
    for (size_t i = 0; i < n; i++) {
        double x, y;
        if (isnan(bps[i]) || (fit == NP_FIT_LOGLINEAR && !(bps[i] > 0))) {
            continue;
        }
        x = ((double)t_ms[i] - t0) / 1000.0 / SECONDS_PER_YEAR - mx;
        y = (fit == NP_FIT_LOGLINEAR ? log(bps[i]) : bps[i]) - my;
        cxx += x * x;
        cxy += x * y;
        cyy += y * y;
    }
    if (!(cxx > 0)) {
        return 0; /* all points at one time */
    }
    slope = cxy / cxx;
    icpt = my - slope * mx;
    out->slope_per_year = slope;
    out->intercept = icpt;
    out->r2 = cyy > 0 ? (cxy * cxy) / (cxx * cyy) : 1.0;
    if (fit == NP_FIT_LOGLINEAR) {
        out->yearly_growth = exp(slope) - 1;
    } else {
        double now = icpt + slope * last_x;
        out->yearly_growth = now > 0 ? slope / now : NAN;
    }
    if (last_v >= target) {
        out->kind = NP_FORECAST_REACHED;
        out->reach_ms = (int64_t)llround(t0 + last_x * SECONDS_PER_YEAR * 1000.0);
        return 0;
    }
    if (!(slope > 0)) {
        out->kind = NP_FORECAST_NEVER;
        return 0;
    }
    x_reach = fit == NP_FIT_LOGLINEAR ? (log(target) - icpt) / slope : (target - icpt) / slope;
    /* The fitted line may already be above the threshold although the last
     * month was not: then it is due now, at the last point. */
    if (x_reach < last_x) {
        x_reach = last_x;
    }
    if (x_reach - last_x > FORECAST_HORIZON_YEARS) {
        out->kind = NP_FORECAST_NEVER;
        return 0;
    }
    out->kind = NP_FORECAST_AT;
    out->reach_ms = (int64_t)llround(t0 + x_reach * SECONDS_PER_YEAR * 1000.0);
    return 0;
}
