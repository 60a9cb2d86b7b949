/* flow_live: a bounded live capture on a private libuv loop, for
 * `netpulse-agent --capture-for DURATION` (tests, and an engineer checking a
 * [pcap] section on site before enabling the daemon).
 *
 * Every [pcap] section of the config starts its capture thread
 * (np_flow_capture_start); each interval it hands over arrives on the loop
 * through uv_async and is written as one JSON summary line, the same summary
 * as --pcap-file plus "pcap" (the section name), "interval" (its sequence
 * number per section) and "capture" (pcap_stats: received, kernel_dropped,
 * if_dropped). At the end the last partial interval is written too, so the
 * lines add up to everything captured.
 *
 * While capture runs, a 50 ms timer ticks on the same loop and the longest
 * gap between two ticks is measured: the loop must never wait for capture.
 * The figures are returned in struct np_flow_live_stats and logged. */
#ifndef NP_AGENT_FLOW_FLOW_LIVE_H
#define NP_AGENT_FLOW_FLOW_LIVE_H

#include "netpulse/config.h"
#include "netpulse/err.h"

#include <stdint.h>
#include <stdio.h>

#define NP_FLOW_LIVE_TICK_MS 50

struct np_flow_live_stats {
    uint64_t exports;     /* JSON lines written */
    uint64_t timer_ticks; /* ticks of the 50 ms loop timer */
    uint64_t max_gap_ms;  /* longest time between two ticks (or start and first tick) */
    uint64_t duration_ms; /* how long the loop ran */
    int interrupted;      /* SIGINT/SIGTERM ended the run early */
};

/* Captures on every [pcap] section of cfg (borrowed) for duration_ms, or
 * until SIGINT/SIGTERM, writing summaries to out (borrowed) as above. stats
 * (may be NULL) receives the loop figures. Returns 0; NP_ECONFIG when cfg
 * has no [pcap] section or duration_ms <= 0; the error of
 * np_flow_capture_start (-EPERM, -ENODEV, NP_EPROTO ...) with the message in
 * err; -EIO when out cannot be written; -ENOMEM. Blocks for the duration:
 * call it from main. */
int np_flow_live_run(const struct np_config *cfg, int64_t duration_ms, FILE *out,
                     struct np_flow_live_stats *stats, struct np_err *err);

#endif
