/* probe_logic: the pure rules of the probes, without sockets or a loop, so
 * they are unit-tested (tests/unit/test_probe_logic.c): per-probe hysteresis,
 * the uplink quorum, HTTP status matching, and ICMP echo packets (building
 * requests, recognising our replies among everything a raw socket sees).
 * Every function here is pure and may run in any thread. */
#ifndef NP_AGENT_PROBE_PROBE_LOGIC_H
#define NP_AGENT_PROBE_PROBE_LOGIC_H

#include "probe.h"
#include "probe_config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One probe's verdict over consecutive rounds. Zero-initialise (state
 * NP_UPLINK_UNKNOWN, no streak). */
struct np_probe_streak {
    enum np_uplink_state state; /* the probe's own state: UNKNOWN, UP or DOWN */
    unsigned run;               /* consecutive rounds disagreeing with state */
    bool run_ok;                /* what those rounds said */
    int64_t run_start_ms;       /* time_ms of the first of them */
};

/* Feeds one round (ok, started at time_ms). The state changes once
 * up_after (ok) or down_after (failed) consecutive rounds disagree with it,
 * also from UNKNOWN. Returns true when it changed; *since_ms (may be NULL) is
 * then the start of the first round of the streak. up_after/down_after 0 act
 * as 1. */
bool np_probe_streak_feed(struct np_probe_streak *s, bool ok, int64_t time_ms, unsigned up_after,
                          unsigned down_after, int64_t *since_ms);

/* The uplink state given the probes' states: UP when n_up >= quorum, DOWN
 * when fewer than quorum probes could still be up (n_total - n_down <
 * quorum), else current (probes not yet known may still decide). quorum 0
 * (no probes) keeps current. */
enum np_uplink_state np_probe_uplink_eval(enum np_uplink_state current, unsigned n_up,
                                          unsigned n_down, unsigned n_total, unsigned quorum);

/* True when status falls in one of ranges[0..n). */
bool np_probe_status_ok(int status, const struct np_status_range *ranges, size_t n);

/* ICMP echo request: 8-byte header, then the 8-byte cookie, then padding up
 * to NP_PROBE_ICMP_LEN. */
#define NP_PROBE_ICMP_LEN 32

/* Writes an echo request for family (AF_INET or AF_INET6) into buf (at least
 * NP_PROBE_ICMP_LEN bytes); the IPv4 checksum is filled in (the kernel fills
 * ICMPv6's and a ping socket's). Returns the length. */
size_t np_probe_icmp_build(uint8_t *buf, int family, uint16_t id, uint16_t seq, uint64_t cookie);

/* Parses a received datagram. ip_header: it starts with the IPv4 header (raw
 * IPv4 sockets); ping sockets and IPv6 sockets give the ICMP message alone.
 * Returns 0 and sets *id, *seq when it is an echo reply whose payload carries
 * cookie; -1 for anything else (other types, short, malformed, another
 * process's echo). buf is outside input: every length is checked. */
int np_probe_icmp_parse(const uint8_t *buf, size_t len, int family, bool ip_header, uint64_t cookie,
                        uint16_t *id, uint16_t *seq);

#endif
