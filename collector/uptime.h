/* uptime: the uptime of a site's uplink over a period, from interval lists.
 * Pure: plain structs in and out, no I/O, no global state; any thread.
 *
 * Definition (DESIGN.md, Semantics): uptime = usable time / (period -
 * declared maintenance - time without data). Every instant t of the period
 * [from_ms, to_ms) falls into exactly one class, by this precedence:
 *   1. maintenance   inside a declared maintenance window: excluded (planned
 *                    downtime is not held against the site, and an outage
 *                    inside a window does not count);
 *   2. down          inside an outage whose cause counts as downtime: link
 *                    (the agent's probes failed: the uplink was not usable)
 *                    and unknown (a suspected outage that no agent backlog
 *                    settled: the collector heard nothing and cannot clear
 *                    the site, so it is held against it, conservatively);
 *   3. no data       inside a no-data interval or an agent outage (the agent
 *                    was down, so whether the link was usable is not known):
 *                    excluded, and reported as such — neither up nor down;
 *   4. up            everything else.
 * An outage is itself evidence, so it outranks no-data: a link outage
 * settled from the agent's spool is down even if the RRD has no samples then.
 * Intervals are half-open [start, end) in wall-clock ms, may overlap and come
 * in any order; each class is measured as the union of its intervals clipped
 * to the period, so overlaps are never counted twice. Intervals with end <=
 * start are ignored.
 *
 * Exactness: everything is int64 milliseconds. The target is held as parts
 * per million (0.995 -> 995000, rounded to the nearest ppm), so "met" and the
 * downtime budget are exact integer arithmetic, not floating point.
 *
 * Budget: the downtime allowed in a calendar month (year, UTC; report_time.h)
 * is floor((1 - target) x (its length - maintenance in it - no data in it up
 * to as_of)); what is left is that minus the downtime counted from its start
 * to as_of. It can be negative (over budget). Future maintenance already
 * declared in the month reduces the allowance; future no-data is not known
 * and assumed to be none. */
#ifndef NP_COLLECTOR_UPTIME_H
#define NP_COLLECTOR_UPTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NP_UPTIME_DEFAULT_TARGET 0.995

enum np_outage_cause {
    NP_OUTAGE_LINK,    /* the uplink was not usable (probes failed) */
    NP_OUTAGE_AGENT,   /* the agent was down; the link's state is not known */
    NP_OUTAGE_UNKNOWN, /* suspected (missed heartbeats), never settled */
};

/* "link", "agent", "unknown". */
const char *np_outage_cause_name(enum np_outage_cause c);

/* Half-open [start_ms, end_ms). */
struct np_interval {
    int64_t start_ms;
    int64_t end_ms;
};

struct np_outage {
    int64_t start_ms;
    int64_t end_ms; /* an outage still open: the caller passes "now" */
    enum np_outage_cause cause;
};

/* The evidence for one site. Arrays are borrowed; any may be NULL when n is 0. */
struct np_uptime_input {
    const struct np_outage *outages;
    size_t n_outages;
    const struct np_interval *maintenance;
    size_t n_maintenance;
    const struct np_interval *no_data;
    size_t n_no_data;
    double target; /* 0 < target <= 1; 0: NP_UPTIME_DEFAULT_TARGET */
};

/* One outage as reported: an input outage clipped to the period, merged with
 * overlapping or touching outages of the same cause. */
struct np_outage_report {
    int64_t start_ms, end_ms;
    int64_t duration_ms;    /* end - start */
    int64_t maintenance_ms; /* of which inside maintenance (not counted) */
    enum np_outage_cause cause;
};

struct np_uptime_result {
    int64_t from_ms, to_ms;
    int64_t period_ms;
    int64_t maintenance_ms;
    int64_t no_data_ms;      /* includes agent outages */
    int64_t down_ms;         /* link + unknown */
    int64_t down_link_ms;    /* link (wins where link and unknown overlap) */
    int64_t down_unknown_ms; /* unknown, not overlapping link */
    int64_t agent_ms;        /* agent outages outside maintenance and down (in no_data_ms) */
    int64_t measured_ms;     /* period - maintenance - no data */
    int64_t up_ms;           /* measured - down */
    bool has_data;           /* measured_ms > 0; else percent is NAN and met false */
    double ratio;            /* up / measured, 0..1; NAN without data */
    int64_t target_ppm;
    bool met; /* up * 1e6 >= measured * target_ppm */
    /* Outages overlapping the period, by start then cause. Owned by the
     * result: np_uptime_result_free(). */
    struct np_outage_report *outages;
    size_t n_outages;
};

struct np_uptime_budget {
    int64_t start_ms, end_ms; /* the calendar month or year */
    int64_t allowed_ms;
    int64_t used_ms; /* downtime counted from start to as_of */
    int64_t left_ms; /* allowed - used; negative: over budget */
};

/* Computes the uptime of [from_ms, to_ms) into *out (overwritten; free with
 * np_uptime_result_free even after an error). Errors: -EINVAL (to <= from,
 * target outside (0, 1]), -ENOMEM. */
int np_uptime_compute(const struct np_uptime_input *in, int64_t from_ms, int64_t to_ms,
                      struct np_uptime_result *out);

/* Frees the outage list; accepts a zeroed result. */
void np_uptime_result_free(struct np_uptime_result *r);

/* The downtime budget of the calendar month and year containing as_of_ms
 * (see above). The input must cover that year. Errors as above. */
int np_uptime_budget(const struct np_uptime_input *in, int64_t as_of_ms,
                     struct np_uptime_budget *month, struct np_uptime_budget *year);

/* The target as ppm (0 -> default). -1 when outside (0, 1]. */
int64_t np_uptime_target_ppm(double target);

#endif
