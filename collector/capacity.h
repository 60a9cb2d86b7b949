/* capacity: the capacity figures of a site's uplink from its 5-minute
 * averages. Pure: plain structs in and out, no I/O, no global state; any
 * thread.
 *
 * Samples. The input is the series of 5-minute AVERAGE rates (bits/s) in and
 * out, sample i covering [start_s + i*step_s, start_s + (i+1)*step_s); NAN is
 * unknown (no data, or a counter discontinuity) and is left out of every
 * figure, never read as zero. Directions are counted separately: a sample
 * with in known and out unknown counts for in only.
 *
 * 95th percentile (the classic burstable-billing method): sort the N known
 * samples of a direction ascending and take the value at 1-based rank
 * ceil(0.95 * N), i.e. index ceil(0.95 * N) - 1; the top 5 % (floor(0.05 *
 * N) samples) are discarded. ceil is computed in integers, (95 * N + 99) /
 * 100, so N = 20 gives index 18 exactly, with no floating-point edge. No
 * interpolation: the answer is always one of the measured values. N = 0: NAN.
 * (Selected in O(N) with quickselect; equal to the sorted definition.)
 *
 * Utilisation. Each sample is divided by the provisioned rate in force at
 * the sample's start (np_rate_change list: the latest change with from_s <=
 * t; before the first change, the first change's rate, since a circuit exists
 * before we record it). So a mid-period upgrade from 100 to 1000 Mbps does
 * not make the months before it look idle or the months after it overloaded.
 * util_p95 is the 95th percentile of those per-sample ratios (same method);
 * util_max and util_mean likewise. With no rate at all they are NAN.
 *
 * Busiest hours: 168 buckets, (weekday Monday = 0) * 24 + hour, in local
 * time given as a fixed offset from UTC (utc_offset_s; daylight saving time
 * is not followed, which shifts one hour for part of the year), holding the
 * mean in and out of the known samples starting in that hour.
 *
 * Growth (np_capacity_growth): against the site's baseline year and its
 * school type's target (+400 % = 4.0 over 5 years): the compound path
 * baseline * (1 + target)^(elapsed / years) says where the site should be
 * now; on track = at or above it. The yearly increase still needed is the
 * compound rate that takes today's value to baseline * (1 + target) by the
 * target year: (target_value / current)^(1 / years_left) - 1 (when the target
 * year is reached or past: the one-step increase still missing).
 *
 * Forecast (np_capacity_forecast): least squares on the monthly 95th
 * percentiles of the busier direction. Log-linear by default: ln(p95) = a +
 * b*t. Demand for bandwidth grows multiplicatively (a fixed percentage a
 * year, the same model as the district's compound growth targets), so a
 * straight line through the months under-predicts later years and the fit's
 * slope reads directly as a yearly growth rate; its errors are relative,
 * which suits values spanning an order of magnitude. Linear is available for
 * comparison (and for a flat or sparse history, where it is less jumpy).
 * The answer is when the fitted value reaches threshold x capacity (80 % of
 * the rate in force now): already reached, a date, or never (no growth, or
 * beyond 50 years). At least 3 months with data are needed. */
#ifndef NP_COLLECTOR_CAPACITY_H
#define NP_COLLECTOR_CAPACITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NP_CAPACITY_HOURS 168
#define NP_CAPACITY_BUSIEST 3
#define NP_CAPACITY_THRESHOLD 0.8
/* Percentiles are taken over 5-minute averages (the billing convention). */
#define NP_P95_STEP_S 300

struct np_rate_change {
    int64_t from_s;
    uint64_t rate_bps; /* 0: not known from then on */
};

struct np_capacity_input {
    int64_t start_s;
    unsigned step_s;
    size_t n;
    const double *in_bps;               /* n values, borrowed; NAN = unknown */
    const double *out_bps;              /* n values, borrowed; may be NULL (all unknown) */
    const struct np_rate_change *rates; /* any order, borrowed; may be NULL */
    size_t n_rates;
    int32_t utc_offset_s; /* for busiest hours */
};

struct np_capacity_dir {
    size_t known;
    double p95_bps, max_bps, mean_bps;    /* NAN when known == 0 */
    double util_p95, util_max, util_mean; /* ratios (1.0 = 100 %); NAN without rate */
};

struct np_capacity_result {
    size_t n_samples;
    size_t n_known;  /* samples with either direction known */
    double coverage; /* n_known / n_samples; 0 without samples */
    struct np_capacity_dir in, out;
    uint64_t rate_first_bps;               /* in force at the first sample */
    uint64_t rate_last_bps;                /* in force at the last sample */
    size_t rate_changes;                   /* changes inside the period */
    double hour_in_bps[NP_CAPACITY_HOURS]; /* NAN: no sample in the bucket */
    double hour_out_bps[NP_CAPACITY_HOURS];
    uint32_t hour_n[NP_CAPACITY_HOURS];
    int busiest[NP_CAPACITY_BUSIEST]; /* bucket indices, busiest first; -1: none */
};

/* Computes the figures above. Errors: -EINVAL (step 0, n > 0 without
 * in_bps), -ENOMEM. */
int np_capacity_compute(const struct np_capacity_input *in, struct np_capacity_result *out);

/* The value of percentile pct (1..100) of vals[0..n) by the method above;
 * NAN values are skipped. vals is reordered. NAN when nothing is known. */
double np_capacity_percentile(double *vals, size_t n, unsigned pct);

/* The provisioned rate in force at time t_s (see above); 0 when unknown. */
uint64_t np_capacity_rate_at(const struct np_rate_change *rates, size_t n, int64_t t_s);

/* "Mon 08:00" style name of a bucket into buf (>= 10 bytes). */
char *np_capacity_hour_name(int bucket, char *buf, size_t len);

/* One calendar month (UTC) of the input. */
struct np_capacity_month {
    int64_t start_ms;
    int year;
    unsigned month; /* 1..12 */
    size_t known_in, known_out;
    double p95_in_bps, p95_out_bps; /* NAN: no data that month */
    uint64_t rate_bps;              /* in force at the month's last sample */
};

/* The 95th percentiles per calendar month of the input, in order, into
 * months[0..max); *n_out months written. Errors: -EINVAL, -ENOMEM, -ERANGE
 * (more months than max). */
int np_capacity_monthly(const struct np_capacity_input *in, struct np_capacity_month *months,
                        size_t max, size_t *n_out);

struct np_growth_input {
    int baseline_year;   /* 0: not known */
    int year;            /* the year assessed */
    double baseline_bps; /* 0: not known */
    double current_bps;
    double target;    /* +400 % = 4.0 */
    int target_years; /* 5 */
};

struct np_growth {
    bool known;             /* baseline year and value known, current > 0 */
    double growth;          /* current / baseline - 1 */
    double expected_growth; /* where the compound path is this year */
    double target_bps;      /* baseline * (1 + target) */
    bool on_track;          /* current >= baseline * (1 + expected_growth) */
    int years_left;         /* baseline_year + target_years - year (may be <= 0) */
    double needed_yearly;   /* compound yearly increase still needed; 0 if reached */
};

/* Growth against the baseline (see above). Errors: -EINVAL (target_years < 1,
 * target < 0). Unknown inputs give known = false and 0. */
int np_capacity_growth(const struct np_growth_input *in, struct np_growth *out);

enum np_fit { NP_FIT_LOGLINEAR, NP_FIT_LINEAR };

enum np_forecast_kind {
    NP_FORECAST_UNKNOWN, /* fewer than 3 months, or no capacity */
    NP_FORECAST_REACHED, /* the last month is already at or above the threshold */
    NP_FORECAST_AT,      /* reaches it at reach_ms */
    NP_FORECAST_NEVER,   /* not growing, or not within 50 years */
};

struct np_forecast {
    enum np_forecast_kind kind;
    enum np_fit fit;
    size_t points;
    double slope_per_year; /* log-linear: ln units; linear: bps per year */
    double intercept;      /* value at the first point's time (ln bps or bps) */
    double r2;             /* coefficient of determination of the fit */
    double yearly_growth;  /* log-linear: e^slope - 1; linear: slope / fitted now */
    double threshold_bps;
    int64_t reach_ms; /* NP_FORECAST_AT: when; NP_FORECAST_REACHED: the month reached */
};

/* Fits t_ms[i] -> bps[i] (n points; NAN or <= 0 values skipped for
 * log-linear, NAN for linear) and answers when threshold x capacity_bps is
 * reached. Errors: -EINVAL. */
int np_capacity_forecast(const int64_t *t_ms, const double *bps, size_t n, double capacity_bps,
                         double threshold, enum np_fit fit, struct np_forecast *out);

const char *np_forecast_kind_name(enum np_forecast_kind k);

#endif
