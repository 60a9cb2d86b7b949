/* counters: deltas and rates from two readings of an SNMP interface counter.
 *
 * The rules (DESIGN.md "Semantics"): a 32- or 64-bit counter that went back is
 * a wrap only when the wrapped delta is plausible; a device restart (its uptime
 * went back or advanced less than the wall time between the polls), a changed
 * ifCounterDiscontinuityTime, a changed counter width or an interval of zero or
 * less is a discontinuity. A discontinuity yields no value, never a spike.
 * The device uptime itself wraps (TimeTicks after 497.1 days): a value just
 * below the modulus followed by a small one, advancing as much as the clock
 * did, is a wrap and not a restart.
 *
 * Pure functions of their arguments; any thread. */
#ifndef NP_COMMON_COUNTERS_H
#define NP_COMMON_COUNTERS_H

#include <stdbool.h>
#include <stdint.h>

#define NP_UPTIME_WRAP_TIMETICKS ((uint64_t)1 << 32) /* sysUpTime, hrSystemUptime */

struct np_counter_reading {
    int64_t time_ms;      /* when the reply arrived, on a clock that does not jump */
    uint64_t value;       /* raw counter value (octets) */
    unsigned width_bits;  /* 32 or 64 */
    bool has_uptime;      /* uptime_cs below is valid */
    uint64_t uptime_cs;   /* device uptime in 1/100 s */
    uint64_t uptime_wrap; /* modulus at which uptime_cs wraps; 0: it does not wrap */
    bool has_discontinuity;       /* discontinuity_cs below is valid */
    uint64_t discontinuity_cs;    /* IF-MIB ifCounterDiscontinuityTime */
};

enum np_counter_status {
    NP_COUNTER_OK,             /* valid delta */
    NP_COUNTER_WRAPPED,        /* valid delta; the counter wrapped once */
    NP_COUNTER_BAD_INTERVAL,   /* no value: interval zero or negative */
    NP_COUNTER_WIDTH_CHANGED,  /* no value: 32-bit and 64-bit readings mixed */
    NP_COUNTER_DEVICE_RESTART, /* no value: uptime says the device restarted */
    NP_COUNTER_DISCONTINUITY,  /* no value: ifCounterDiscontinuityTime changed */
    NP_COUNTER_WENT_BACK,      /* no value: counter went back without a plausible wrap */
};

struct np_counter_delta {
    enum np_counter_status status;
    uint64_t delta;      /* octets between the readings; 0 unless valid */
    int64_t interval_ms; /* cur.time_ms - prev.time_ms */
    double rate_bps;     /* delta * 8 / interval; 0 unless valid */
};

/* True for the statuses that carry a value (OK, WRAPPED). */
bool np_counter_valid(enum np_counter_status status);

/* Short name of status for logs and JSON ("ok", "device-restart", ...). */
const char *np_counter_status_name(enum np_counter_status status);

/* Whether the device restarted between two uptime readings taken elapsed_ms
 * apart, allowing for the uptime's own wrap. Readings without uptime never say
 * restart. */
bool np_counter_restarted(const struct np_counter_reading *prev,
                          const struct np_counter_reading *cur);

/* Computes the delta and rate from prev to cur. max_rate_bps bounds what a
 * wrap may imply (the interface speed or provisioned rate; 0 when unknown, in
 * which case a wrap must be less than half the counter's range). An increase
 * without wrap is always trusted: interface speeds are too often wrong to
 * discard real traffic above them. Returns the status also stored in out. */
enum np_counter_status np_counter_delta(const struct np_counter_reading *prev,
                                        const struct np_counter_reading *cur,
                                        uint64_t max_rate_bps, struct np_counter_delta *out);

#endif
