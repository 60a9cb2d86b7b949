#include "uptime.h"

#include "report_time.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PPM INT64_C(1000000)

enum cls { C_MAINT, C_LINK, C_UNKNOWN, C_AGENT, C_NODATA, C_COUNT };

struct edge {
    int64_t t;
    int cls;
    int delta;
};

/* Time per class of one sweep. */
struct tally {
    int64_t ms[C_COUNT];
    int64_t up_ms;
};

const char *np_outage_cause_name(enum np_outage_cause c)
{
    switch (c) {
    case NP_OUTAGE_LINK:
        return "link";
    case NP_OUTAGE_AGENT:
        return "agent";
    default:
        return "unknown";
    }
}

int64_t np_uptime_target_ppm(double target)
{
    if (target == 0) {
        target = NP_UPTIME_DEFAULT_TARGET;
    }
    if (!(target > 0 && target <= 1)) {
        return -1;
    }
    return llround(target * (double)PPM);
}

static int cmp_edge(const void *a, const void *b)
{
    const struct edge *x = a, *y = b;
    return (x->t > y->t) - (x->t < y->t);
}

static int cause_class(enum np_outage_cause c)
{
    return c == NP_OUTAGE_LINK ? C_LINK : c == NP_OUTAGE_AGENT ? C_AGENT : C_UNKNOWN;
}

static void add_edge(struct edge *e, size_t *n, int64_t s, int64_t t, int64_t from, int64_t to,
                     int cls)
{
    if (s < from) {
        s = from;
    }
    if (t > to) {
        t = to;
    }
    if (t <= s) {
        return;
    }
    e[(*n)++] = (struct edge){s, cls, +1};
    e[(*n)++] = (struct edge){t, cls, -1};
}

/* Sweeps the boundaries of every interval in [from, to): each elementary
 * segment goes to the first class (in enum order = precedence) covering it.
 * maint_to / evidence_to cut the classes at different ends (the budget counts
 * declared maintenance of the whole month but evidence only up to as_of). */
static int sweep(const struct np_uptime_input *in, int64_t from, int64_t to, int64_t evidence_to,
                 struct tally *out)
{
    size_t cap = 2 * (in->n_outages + in->n_maintenance + in->n_no_data), n = 0;
    struct edge *e = NULL;
    int count[C_COUNT] = {0};
    int64_t prev = from;

    memset(out, 0, sizeof *out);
    if (cap > 0) {
        e = malloc(cap * sizeof *e);
        if (!e) {
            return -ENOMEM;
        }
    }
    for (size_t i = 0; i < in->n_maintenance; i++) {
        add_edge(e, &n, in->maintenance[i].start_ms, in->maintenance[i].end_ms, from, to, C_MAINT);
    }
    for (size_t i = 0; i < in->n_outages; i++) {
        add_edge(e, &n, in->outages[i].start_ms, in->outages[i].end_ms, from, evidence_to,
                 cause_class(in->outages[i].cause));
    }
    for (size_t i = 0; i < in->n_no_data; i++) {
        add_edge(e, &n, in->no_data[i].start_ms, in->no_data[i].end_ms, from, evidence_to,
                 C_NODATA);
    }
    if (n > 0) {
        qsort(e, n, sizeof *e, cmp_edge);
    }
    for (size_t i = 0; i <= n; i++) {
        int64_t t = i < n ? e[i].t : to;
        if (t > prev) {
            int c = 0;
            while (c < C_COUNT && count[c] == 0) {
                c++;
            }
            if (c < C_COUNT) {
                out->ms[c] += t - prev;
            } else {
                out->up_ms += t - prev;
            }
            prev = t;
        }
        if (i < n) {
            count[e[i].cls] += e[i].delta;
        }
    }
    free(e);
    return 0;
}

static int cmp_interval(const void *a, const void *b)
{
    const struct np_interval *x = a, *y = b;
    if (x->start_ms != y->start_ms) {
        return (x->start_ms > y->start_ms) - (x->start_ms < y->start_ms);
    }
    return (x->end_ms > y->end_ms) - (x->end_ms < y->end_ms);
}

/* Clips to [from, to), sorts and merges overlapping or touching intervals in
 * place; returns the new count. */
static size_t normalize(struct np_interval *v, size_t n, int64_t from, int64_t to)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t s = v[i].start_ms < from ? from : v[i].start_ms;
        int64_t t = v[i].end_ms > to ? to : v[i].end_ms;
        if (t > s) {
            v[k++] = (struct np_interval){s, t};
        }
    }
    if (k > 1) {
        qsort(v, k, sizeof *v, cmp_interval);
    }
    n = k;
    k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && v[i].start_ms <= v[k - 1].end_ms) {
            if (v[i].end_ms > v[k - 1].end_ms) {
                v[k - 1].end_ms = v[i].end_ms;
            }
        } else {
            v[k++] = v[i];
        }
    }
    return k;
}

/* Length of [s, t) covered by the sorted, disjoint list m[0..n). */
static int64_t overlap(const struct np_interval *m, size_t n, int64_t s, int64_t t)
{
    int64_t sum = 0;
    for (size_t i = 0; i < n && m[i].start_ms < t; i++) {
        int64_t a = m[i].start_ms > s ? m[i].start_ms : s;
        int64_t b = m[i].end_ms < t ? m[i].end_ms : t;
        if (b > a) {
            sum += b - a;
        }
    }
    return sum;
}

static int cmp_report(const void *a, const void *b)
{
    const struct np_outage_report *x = a, *y = b;
    if (x->start_ms != y->start_ms) {
        return (x->start_ms > y->start_ms) - (x->start_ms < y->start_ms);
    }
    return (int)x->cause - (int)y->cause;
}

/* The reported outage list: per cause, clipped and merged; with the part of
 * each inside maintenance. */
static int outage_list(const struct np_uptime_input *in, int64_t from, int64_t to,
                       struct np_uptime_result *out)
{
    size_t n = in->n_outages, nm = in->n_maintenance, k = 0;
    struct np_interval *tmp = NULL, *maint = NULL;
    int ret = 0;

    if (n == 0) {
        return 0;
    }
    tmp = malloc(n * sizeof *tmp);
    out->outages = malloc(n * sizeof *out->outages);
    maint = nm ? malloc(nm * sizeof *maint) : NULL;
    if (!tmp || !out->outages || (nm && !maint)) {
        ret = -ENOMEM;
        goto out_free;
    }
    if (nm) {
        memcpy(maint, in->maintenance, nm * sizeof *maint);
        nm = normalize(maint, nm, from, to);
    }
    for (int cause = NP_OUTAGE_LINK; cause <= NP_OUTAGE_UNKNOWN; cause++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if ((int)in->outages[i].cause == cause) {
                tmp[m++] = (struct np_interval){in->outages[i].start_ms, in->outages[i].end_ms};
            }
        }
        m = normalize(tmp, m, from, to);
        for (size_t i = 0; i < m; i++) {
            struct np_outage_report *r = &out->outages[k++];
            r->start_ms = tmp[i].start_ms;
            r->end_ms = tmp[i].end_ms;
            r->duration_ms = tmp[i].end_ms - tmp[i].start_ms;
            r->maintenance_ms = overlap(maint, nm, tmp[i].start_ms, tmp[i].end_ms);
            r->cause = (enum np_outage_cause)cause;
        }
    }
    if (k > 1) {
        qsort(out->outages, k, sizeof *out->outages, cmp_report);
    }
    out->n_outages = k;
out_free:
    free(tmp);
    free(maint);
    return ret;
}

void np_uptime_result_free(struct np_uptime_result *r)
{
    if (!r) {
        return;
    }
    free(r->outages);
    r->outages = NULL;
    r->n_outages = 0;
}

int np_uptime_compute(const struct np_uptime_input *in, int64_t from_ms, int64_t to_ms,
                      struct np_uptime_result *out)
{
    struct tally t;
    int64_t ppm = np_uptime_target_ppm(in->target);
    int ret;

    memset(out, 0, sizeof *out);
    out->ratio = NAN;
    if (to_ms <= from_ms || ppm < 0) {
        return -EINVAL;
    }
    ret = sweep(in, from_ms, to_ms, to_ms, &t);
    if (ret < 0) {
        return ret;
    }
    out->from_ms = from_ms;
    out->to_ms = to_ms;
    out->period_ms = to_ms - from_ms;
    out->maintenance_ms = t.ms[C_MAINT];
    out->down_link_ms = t.ms[C_LINK];
    out->down_unknown_ms = t.ms[C_UNKNOWN];
    out->down_ms = t.ms[C_LINK] + t.ms[C_UNKNOWN];
    out->agent_ms = t.ms[C_AGENT];
    out->no_data_ms = t.ms[C_AGENT] + t.ms[C_NODATA];
    out->up_ms = t.up_ms;
    out->measured_ms = out->period_ms - out->maintenance_ms - out->no_data_ms;
    out->target_ppm = ppm;
    out->has_data = out->measured_ms > 0;
    if (out->has_data) {
        out->ratio = (double)out->up_ms / (double)out->measured_ms;
        /* Both sides below 2^63: a period of 290 years at most. */
        out->met = out->up_ms * PPM >= out->measured_ms * ppm;
    }
    return outage_list(in, from_ms, to_ms, out);
}

static int budget_of(const struct np_uptime_input *in, int64_t start, int64_t end, int64_t as_of,
                     int64_t ppm, struct np_uptime_budget *b)
{
    struct tally t;
    int64_t evidence_to = as_of < start ? start : as_of > end ? end : as_of;
    int64_t base;
    int ret = sweep(in, start, end, evidence_to, &t);
    if (ret < 0) {
        return ret;
    }
    base = (end - start) - t.ms[C_MAINT] - t.ms[C_AGENT] - t.ms[C_NODATA];
    b->start_ms = start;
    b->end_ms = end;
    b->allowed_ms = base > 0 ? base * (PPM - ppm) / PPM : 0;
    b->used_ms = t.ms[C_LINK] + t.ms[C_UNKNOWN];
    b->left_ms = b->allowed_ms - b->used_ms;
    return 0;
}

int np_uptime_budget(const struct np_uptime_input *in, int64_t as_of_ms,
                     struct np_uptime_budget *month, struct np_uptime_budget *year)
{
    int64_t ppm = np_uptime_target_ppm(in->target), s, e;
    int ret;
    if (ppm < 0) {
        return -EINVAL;
    }
    if (month) {
        np_report_month_of(as_of_ms, &s, &e);
        if ((ret = budget_of(in, s, e, as_of_ms, ppm, month)) < 0) {
            return ret;
        }
    }
    if (year) {
        np_report_year_of(as_of_ms, &s, &e);
        if ((ret = budget_of(in, s, e, as_of_ms, ppm, year)) < 0) {
            return ret;
        }
    }
    return 0;
}
