#include "netpulse/counters.h"

/* Slack for the uptime check: polls are stamped when the reply arrives, the
 * device stamps its uptime a little earlier, and clocks drift. */
#define UPTIME_SLACK_CS 500 /* 5 s */
#define UPTIME_SLACK_DIV 10 /* plus 10 % of the interval */

/* A wrap may imply at most this much over max_rate_bps (polls jitter). */
#define WRAP_RATE_SLACK_DIV 10

bool np_counter_valid(enum np_counter_status status)
{
    return status == NP_COUNTER_OK || status == NP_COUNTER_WRAPPED;
}

const char *np_counter_status_name(enum np_counter_status status)
{
    switch (status) {
    case NP_COUNTER_OK:
        return "ok";
    case NP_COUNTER_WRAPPED:
        return "wrapped";
    case NP_COUNTER_BAD_INTERVAL:
        return "bad-interval";
    case NP_COUNTER_WIDTH_CHANGED:
        return "width-changed";
    case NP_COUNTER_DEVICE_RESTART:
        return "device-restart";
    case NP_COUNTER_DISCONTINUITY:
        return "discontinuity";
    case NP_COUNTER_WENT_BACK:
        return "went-back";
    }
    return "unknown";
}

bool np_counter_restarted(const struct np_counter_reading *prev,
                          const struct np_counter_reading *cur)
{
    if (!prev->has_uptime || !cur->has_uptime) {
        return false;
    }
    int64_t elapsed_ms = cur->time_ms - prev->time_ms;
    if (elapsed_ms < 0) {
        elapsed_ms = 0;
    }
    uint64_t expected_cs = (uint64_t)elapsed_ms / 10;
    uint64_t slack_cs = UPTIME_SLACK_CS + expected_cs / UPTIME_SLACK_DIV;
    uint64_t lower = expected_cs > slack_cs ? expected_cs - slack_cs : 0;

    if (cur->uptime_cs >= prev->uptime_cs) {
        /* Advanced: a restart if it advanced clearly less than the clock did. */
        return cur->uptime_cs - prev->uptime_cs < lower;
    }
    /* Went back: a wrap only if the uptime wraps, prev was below the modulus and
     * the wrapped advance matches the clock; anything else is a restart. */
    if (prev->uptime_wrap == 0 || prev->uptime_wrap != cur->uptime_wrap ||
        prev->uptime_cs >= prev->uptime_wrap) {
        return true;
    }
    uint64_t advanced = prev->uptime_wrap - prev->uptime_cs + cur->uptime_cs;
    return advanced < lower || advanced > expected_cs + slack_cs;
}

static enum np_counter_status finish(struct np_counter_delta *out, enum np_counter_status st)
{
    out->status = st;
    if (!np_counter_valid(st)) {
        out->delta = 0;
        out->rate_bps = 0;
    } else {
        out->rate_bps = (double)out->delta * 8.0 * 1000.0 / (double)out->interval_ms;
    }
    return st;
}

enum np_counter_status np_counter_delta(const struct np_counter_reading *prev,
                                        const struct np_counter_reading *cur,
                                        uint64_t max_rate_bps, struct np_counter_delta *out)
{
    out->delta = 0;
    out->rate_bps = 0;
    out->interval_ms = cur->time_ms - prev->time_ms;
    if (out->interval_ms <= 0) {
        return finish(out, NP_COUNTER_BAD_INTERVAL);
    }
    if (prev->width_bits != cur->width_bits || (cur->width_bits != 32 && cur->width_bits != 64)) {
        return finish(out, NP_COUNTER_WIDTH_CHANGED);
    }
    if (np_counter_restarted(prev, cur)) {
        return finish(out, NP_COUNTER_DEVICE_RESTART);
    }
    if (prev->has_discontinuity && cur->has_discontinuity &&
        prev->discontinuity_cs != cur->discontinuity_cs) {
        return finish(out, NP_COUNTER_DISCONTINUITY);
    }
    uint64_t mask = cur->width_bits == 64 ? UINT64_MAX : UINT32_MAX;
    uint64_t p = prev->value & mask, c = cur->value & mask;
    if (prev->value > mask || cur->value > mask) {
        /* A 32-bit counter cannot hold more than 32 bits: the reading is bogus. */
        return finish(out, NP_COUNTER_WIDTH_CHANGED);
    }
    if (c >= p) {
        out->delta = c - p;
        return finish(out, NP_COUNTER_OK);
    }
    /* (mask - p) + c + 1 cannot overflow: p > c. */
    uint64_t wrapped = (mask - p) + c + 1;
    bool plausible;
    if (max_rate_bps > 0) {
        /* wrapped * 8 * 1000 / interval <= max * 1.1, without overflow. */
        double implied_bps = (double)wrapped * 8000.0 / (double)out->interval_ms;
        double bound_bps = (double)max_rate_bps + (double)max_rate_bps / WRAP_RATE_SLACK_DIV;
        plausible = implied_bps <= bound_bps;
    } else {
        plausible = wrapped <= mask / 2;
    }
    if (!plausible) {
        return finish(out, NP_COUNTER_WENT_BACK);
    }
    out->delta = wrapped;
    return finish(out, NP_COUNTER_WRAPPED);
}
