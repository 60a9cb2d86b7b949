/* Unit tests of collector/capacity.c: the percentile method against a
 * sort-based reference, a synthetic leap year of 5-minute averages with a
 * diurnal and weekly pattern and a mid-year circuit upgrade, growth and
 * forecast on known curves. */
#include "capacity.h"

#include "check.h"
#include "report_time.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#define STEP 300

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The definition, written the slow way: sort the known values, index
 * ceil(0.95 N) - 1 computed in floating point with a guard. */
static double reference_p95(const double *v, size_t n)
{
    double *k = malloc((n ? n : 1) * sizeof *k);
    size_t m = 0;
    double r;
    for (size_t i = 0; i < n; i++) {
        if (!isnan(v[i])) {
            k[m++] = v[i];
        }
    }
    if (m == 0) {
        free(k);
        return NAN;
    }
    qsort(k, m, sizeof *k, cmp_double);
    size_t idx = (size_t)ceil(0.95 * (double)m - 1e-9) - 1;
    r = k[idx];
    free(k);
    return r;
}

static void test_percentile(void)
{
    double v[100];
    for (int i = 0; i < 20; i++) {
        v[i] = 20 - i; /* 20..1 */
    }
    CHECK_DBL(np_capacity_percentile(v, 20, 95), 19, 0); /* index 18 */
    v[0] = 7;
    CHECK_DBL(np_capacity_percentile(v, 1, 95), 7, 0);
    for (int i = 0; i < 100; i++) {
        v[i] = i + 1;
    }
    CHECK_DBL(np_capacity_percentile(v, 100, 95), 95, 0);
    for (int i = 0; i < 100; i++) {
        v[i] = i + 1;
    }
    CHECK_DBL(np_capacity_percentile(v, 21, 95), 20, 0); /* ceil(19.95) = 20 */
    v[0] = NAN;
    v[1] = NAN;
    CHECK(isnan(np_capacity_percentile(v, 2, 95)));
    CHECK(isnan(np_capacity_percentile(v, 0, 95)));

    /* Random sizes, heavy ties, NANs: equal to the sorted reference. */
    for (int round = 0; round < 300; round++) {
        size_t n = 1 + next_rand() % 3000;
        double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
        for (size_t i = 0; i < n; i++) {
            uint32_t r = next_rand();
            a[i] = r % 11 == 0 ? NAN : (round % 3 == 0 ? (double)(r % 5) : (double)(r % 100000));
            b[i] = a[i];
        }
        double want = reference_p95(a, n);
        double got = np_capacity_percentile(b, n, 95);
        if (isnan(want)) {
            CHECK(isnan(got));
        } else {
            CHECK_DBL(got, want, 0);
        }
        free(a);
        free(b);
    }
}

static void test_rate_at(void)
{
    struct np_rate_change r[] = {{2000, 1000}, {1000, 100}, {3000, 0}};
    CHECK_U64(np_capacity_rate_at(r, 3, 500), 100); /* before the first: the first */
    CHECK_U64(np_capacity_rate_at(r, 3, 1000), 100);
    CHECK_U64(np_capacity_rate_at(r, 3, 1999), 100);
    CHECK_U64(np_capacity_rate_at(r, 3, 2000), 1000);
    CHECK_U64(np_capacity_rate_at(r, 3, 3000), 0);
    CHECK_U64(np_capacity_rate_at(NULL, 0, 3000), 0);
}

/* The synthetic traffic: in bps at time t (UTC, treated as local): school
 * hours Mon-Fri 08-16 busy with a peak at Tuesday 10:00, nights and weekends
 * light. Out is a quarter of in. Before July the circuit is 100 Mbps and the
 * level scaled to it; after the upgrade to 1 Gbps, ten times the level. */
static double traffic(int64_t t_s, int64_t upgrade_s)
{
    int64_t days = t_s / 86400;
    int wd = (int)((days + 3) % 7); /* Monday 0 */
    int hour = (int)(t_s % 86400 / 3600);
    int minute = (int)(t_s % 3600 / 60);
    double level;
    if (wd < 5 && hour >= 8 && hour < 16) {
        level = 0.40 + 0.01 * (hour - 8) + 0.0001 * minute;
        if (wd == 1 && hour == 10) {
            level = 0.70 + 0.0002 * minute;
        }
    } else {
        level = 0.05 + 0.001 * hour;
    }
    return level * (t_s >= upgrade_s ? 1e9 : 1e8);
}

static void test_synthetic_year(void)
{
    int64_t from = np_report_days_from_civil(2024, 1, 1) * 86400;
    int64_t upgrade = np_report_days_from_civil(2024, 7, 1) * 86400;
    size_t n = 366 * 288;
    double *in = malloc(n * sizeof *in), *out = malloc(n * sizeof *out);
    double *util = malloc(n * sizeof *util);
    struct np_rate_change rates[] = {{upgrade, 1000000000}, {0, 100000000}};
    struct np_capacity_result r;
    struct np_capacity_month months[14];
    size_t nm = 0, unknown = 0;

    for (size_t i = 0; i < n; i++) {
        int64_t t = from + (int64_t)i * STEP;
        in[i] = traffic(t, upgrade);
        out[i] = in[i] / 4;
        /* A known gap: the first 3 days of March are missing (in and out);
         * and every 1000th out sample alone. */
        if (t >= np_report_days_from_civil(2024, 3, 1) * 86400 &&
            t < np_report_days_from_civil(2024, 3, 4) * 86400) {
            in[i] = out[i] = NAN;
            unknown++;
        } else if (i % 1000 == 999) {
            out[i] = NAN;
        }
        util[i] = in[i] / (t >= upgrade ? 1e9 : 1e8);
    }
    struct np_capacity_input ci = {from, STEP, n, in, out, rates, 2, 0};
    CHECK_INT(np_capacity_compute(&ci, &r), 0);
    CHECK_U64(r.n_samples, n);
    CHECK_U64(r.n_known, n - unknown);
    CHECK_U64(r.in.known, n - unknown);
    CHECK(r.out.known < r.in.known);
    CHECK_DBL(r.in.p95_bps, reference_p95(in, n), 0);
    CHECK_DBL(r.out.p95_bps, reference_p95(out, n), 0);
    CHECK_DBL(r.in.util_p95, reference_p95(util, n), 0);
    CHECK_DBL(r.in.max_bps, (0.70 + 0.0002 * 55) * 1e9, 1e-3);
    CHECK_DBL(r.in.util_max, 0.70 + 0.0002 * 55, 1e-12);
    /* Against the rate in force, the halves look alike: the p95 of
     * utilisation is far from p95 / current rate. */
    CHECK(r.in.util_p95 > 0.4 && r.in.util_p95 < 0.72);
    CHECK(r.in.p95_bps / 1e9 > r.in.util_p95 * 0.5);
    CHECK_U64(r.rate_first_bps, 100000000);
    CHECK_U64(r.rate_last_bps, 1000000000);
    CHECK_U64(r.rate_changes, 1);
    CHECK_INT(r.busiest[0], 1 * 24 + 10); /* Tuesday 10:00 */
    CHECK_U64(r.hour_n[0], 53 * 12);      /* 2024 has 53 Mondays */
    /* Every bucket's mean and the ranking, computed here independently. */
    {
        double sum[168] = {0}, mean[168];
        size_t k[168] = {0};
        int best2 = -1;
        for (size_t i = 0; i < n; i++) {
            int64_t t = from + (int64_t)i * STEP;
            int b = (int)((t / 86400 + 3) % 7) * 24 + (int)(t % 86400 / 3600);
            if (!isnan(in[i])) {
                sum[b] += in[i];
                k[b]++;
            }
        }
        for (int b = 0; b < 168; b++) {
            mean[b] = sum[b] / (double)k[b];
            CHECK_DBL(r.hour_in_bps[b], mean[b], 1e-3);
            if (b != 34 && (best2 < 0 || mean[b] > mean[best2])) {
                best2 = b;
            }
        }
        CHECK_U64(r.hour_n[34], k[34]);
        CHECK_INT(r.busiest[1], best2);
    }
    /* Local time two hours ahead moves the peak bucket two hours earlier. */
    ci.utc_offset_s = -7200;
    CHECK_INT(np_capacity_compute(&ci, &r), 0);
    CHECK_INT(r.busiest[0], 1 * 24 + 8);
    ci.utc_offset_s = 0;

    /* Months: 12, February with 29 days of samples, March missing 3 days. */
    CHECK_INT(np_capacity_monthly(&ci, months, 14, &nm), 0);
    CHECK_U64(nm, 12);
    CHECK_INT(months[1].month, 2);
    CHECK_U64(months[1].known_in, 29 * 288);
    CHECK_U64(months[2].known_in, 28 * 288);
    CHECK_U64(months[5].rate_bps, 100000000);
    CHECK_U64(months[6].rate_bps, 1000000000);
    {
        size_t off = (size_t)(np_report_days_from_civil(2024, 7, 1) -
                              np_report_days_from_civil(2024, 1, 1)) *
                     288;
        CHECK_DBL(months[6].p95_in_bps, reference_p95(in + off, 31 * 288), 0);
    }
    CHECK_INT(np_capacity_monthly(&ci, months, 5, &nm), -ERANGE);

    /* Half a year of data: the first half unknown (a school that joined in
     * July). Percentile only over the known half. */
    for (size_t i = 0; i < n; i++) {
        if (from + (int64_t)i * STEP < upgrade) {
            in[i] = out[i] = NAN;
        }
    }
    CHECK_INT(np_capacity_compute(&ci, &r), 0);
    CHECK_U64(r.in.known, n - (size_t)((upgrade - from) / STEP));
    CHECK_DBL(r.coverage, (double)r.n_known / (double)n, 0);
    CHECK(r.coverage > 0.49 && r.coverage < 0.51);
    CHECK_DBL(r.in.p95_bps, reference_p95(in, n), 0);
    CHECK_INT(np_capacity_monthly(&ci, months, 14, &nm), 0);
    CHECK(isnan(months[0].p95_in_bps)); /* labelled missing, not 0 */
    CHECK_U64(months[0].known_in, 0);

    /* Nothing known at all. */
    for (size_t i = 0; i < n; i++) {
        in[i] = out[i] = NAN;
    }
    CHECK_INT(np_capacity_compute(&ci, &r), 0);
    CHECK_U64(r.n_known, 0);
    CHECK(isnan(r.in.p95_bps) && isnan(r.in.mean_bps) && isnan(r.in.util_p95));
    CHECK_INT(r.busiest[0], -1);
    free(in);
    free(out);
    free(util);
}

static void test_growth(void)
{
    struct np_growth g;
    /* Elementary, +400 % in 5 years from 100 Mbps in 2020; 300 Mbps in 2023.
     * Path: 100 * 5^(3/5) = 262.65 Mbps: on track. Needed: (500/300)^(1/2)-1. */
    struct np_growth_input gi = {2020, 2023, 100e6, 300e6, 4.0, 5};
    CHECK_INT(np_capacity_growth(&gi, &g), 0);
    CHECK(g.known && g.on_track);
    CHECK_DBL(g.growth, 2.0, 1e-12);
    CHECK_DBL(g.expected_growth, pow(5, 0.6) - 1, 1e-12);
    CHECK_DBL(g.target_bps, 500e6, 1e-3);
    CHECK_INT(g.years_left, 2);
    CHECK_DBL(g.needed_yearly, sqrt(500.0 / 300.0) - 1, 1e-12);
    /* High school, +900 %: 200 Mbps in 2022 from 100 in 2020: the path is
     * 10^0.4 = 251 Mbps: behind; needs (1000/200)^(1/3) - 1 a year. */
    struct np_growth_input hi = {2020, 2022, 100e6, 200e6, 9.0, 5};
    CHECK_INT(np_capacity_growth(&hi, &g), 0);
    CHECK(g.known && !g.on_track);
    CHECK_DBL(g.needed_yearly, cbrt(5.0) - 1, 1e-12);
    /* Exactly on the path at the end: on track, nothing more needed. */
    struct np_growth_input ex = {2019, 2024, 100e6, 500e6, 4.0, 5};
    CHECK_INT(np_capacity_growth(&ex, &g), 0);
    CHECK(g.on_track);
    CHECK_DBL(g.needed_yearly, 0, 0);
    /* Past the target year and short: the one step still missing. */
    struct np_growth_input late = {2017, 2024, 100e6, 250e6, 4.0, 5};
    CHECK_INT(np_capacity_growth(&late, &g), 0);
    CHECK(!g.on_track);
    CHECK_INT(g.years_left, -2);
    CHECK_DBL(g.needed_yearly, 1.0, 1e-12);
    /* Unknown baseline. */
    struct np_growth_input unk = {0, 2024, 0, 500e6, 4.0, 5};
    CHECK_INT(np_capacity_growth(&unk, &g), 0);
    CHECK(!g.known);
    unk.target_years = 0;
    CHECK_INT(np_capacity_growth(&unk, &g), -EINVAL);
}

static void test_forecast(void)
{
    const double year_ms = 365.2425 * 86400 * 1000;
    int64_t t0 = np_report_days_from_civil(2024, 1, 15) * 86400000LL;
    int64_t t[24];
    double v[24];
    struct np_forecast f;

    /* Exponential: 100 Mbps growing 50 % a year; 1 Gbps link: 800 Mbps at
     * ln(8)/ln(1.5) years after t0. */
    for (int i = 0; i < 24; i++) {
        t[i] = t0 + (int64_t)llround(i * year_ms / 12);
        v[i] = 100e6 * pow(1.5, (double)(t[i] - t0) / year_ms);
    }
    CHECK_INT(np_capacity_forecast(t, v, 24, 1e9, 0.8, NP_FIT_LOGLINEAR, &f), 0);
    CHECK_INT(f.kind, NP_FORECAST_AT);
    CHECK_DBL(f.yearly_growth, 0.5, 1e-9);
    CHECK_DBL(f.r2, 1.0, 1e-9);
    CHECK_DBL((double)f.reach_ms, t0 + log(8) / log(1.5) * year_ms, 1000);
    /* A gap month (NAN) and a zero month do not disturb the exact fit. */
    v[5] = NAN;
    v[6] = 0;
    CHECK_INT(np_capacity_forecast(t, v, 24, 1e9, 0.8, NP_FIT_LOGLINEAR, &f), 0);
    CHECK_U64(f.points, 22);
    CHECK_DBL((double)f.reach_ms, t0 + log(8) / log(1.5) * year_ms, 1000);

    /* Linear: 100 Mbps + 50 Mbps a year reaches 800 at 14 years. */
    for (int i = 0; i < 24; i++) {
        v[i] = 100e6 + 50e6 * (double)(t[i] - t0) / year_ms;
    }
    CHECK_INT(np_capacity_forecast(t, v, 24, 1e9, 0.8, NP_FIT_LINEAR, &f), 0);
    CHECK_INT(f.kind, NP_FORECAST_AT);
    CHECK_DBL(f.slope_per_year, 50e6, 1e-3);
    CHECK_DBL((double)f.reach_ms, t0 + 14 * year_ms, 1000);

    /* Flat or falling: never. */
    for (int i = 0; i < 24; i++) {
        v[i] = 300e6 - i;
    }
    CHECK_INT(np_capacity_forecast(t, v, 24, 1e9, 0.8, NP_FIT_LOGLINEAR, &f), 0);
    CHECK_INT(f.kind, NP_FORECAST_NEVER);
    /* Already there: reached, at the last month. */
    for (int i = 0; i < 24; i++) {
        v[i] = 700e6 + 10e6 * i;
    }
    CHECK_INT(np_capacity_forecast(t, v, 24, 1e9, 0.8, NP_FIT_LOGLINEAR, &f), 0);
    CHECK_INT(f.kind, NP_FORECAST_REACHED);
    CHECK_INT(f.reach_ms, t[23]);
    /* Too few months, or no capacity: unknown. */
    CHECK_INT(np_capacity_forecast(t, v, 2, 1e9, 0.8, NP_FIT_LOGLINEAR, &f), 0);
    CHECK_INT(f.kind, NP_FORECAST_UNKNOWN);
    CHECK_INT(np_capacity_forecast(t, v, 24, 0, 0.8, NP_FIT_LOGLINEAR, &f), 0);
    CHECK_INT(f.kind, NP_FORECAST_UNKNOWN);
    /* Slow growth: beyond 50 years is never. */
    for (int i = 0; i < 24; i++) {
        v[i] = 1e6 * pow(1.01, (double)(t[i] - t0) / year_ms);
    }
    CHECK_INT(np_capacity_forecast(t, v, 24, 1e9, 0.8, NP_FIT_LOGLINEAR, &f), 0);
    CHECK_INT(f.kind, NP_FORECAST_NEVER);
}

int main(void)
{
    test_percentile();
    test_rate_at();
    test_synthetic_year();
    test_growth();
    test_forecast();
    return check_done("test_capacity");
}
