/* probe: the uplink probes of the agent and the uplink state they decide.
 *
 * Every [probe NAME] section becomes one probe on the agent's libuv loop. A
 * probe runs one round every `interval` (the first right at start): an ICMP
 * echo series, a TCP connect, an HTTP(S) GET or a DNS query, each bounded by
 * `timeout`. Each finished round is reported as a struct np_probe_result
 * (fields as Netpulse__ProbeResult in common/proto/netpulse.proto).
 *
 * State: each probe is UP or DOWN after up_after / down_after consecutive
 * rounds agreeing ([uplink] section; default 1); every change of a probe is a
 * PROBE_UP / PROBE_DOWN event. The uplink is UP while at least `quorum`
 * probes are UP, DOWN as soon as so many probes are DOWN that the quorum can
 * no longer be met, and keeps its state (UNKNOWN at start) in between, i.e.
 * while probes that have not reported yet could still decide it. Every
 * change of the uplink is an UPLINK_UP / UPLINK_DOWN event stamped with the
 * start time of the probe round that decided it. See probe_logic.h for the
 * pure rules (unit-tested).
 *
 * ICMP sockets are opened by np_probe_set_new(): an unprivileged ping socket
 * when net.ipv4.ping_group_range admits the process's group, else a raw
 * socket (needs CAP_NET_RAW), so privileges may be dropped after it returns.
 *
 * Threads: everything runs on the loop thread (or before the loop runs). No
 * call blocks: names are resolved with uv_getaddrinfo (thread pool), DNS
 * probes with a configured server use c-ares on the loop, HTTP uses libcurl's
 * multi interface through curl_uv.h. */
#ifndef NP_AGENT_PROBE_PROBE_H
#define NP_AGENT_PROBE_PROBE_H

#include "netpulse/config.h"
#include "netpulse/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Values equal Netpulse__ProbeType. */
enum np_probe_type {
    NP_PROBE_ICMP = 1,
    NP_PROBE_TCP = 2,
    NP_PROBE_HTTP = 3,
    NP_PROBE_DNS = 4,
};

/* Values equal Netpulse__UplinkState. */
enum np_uplink_state {
    NP_UPLINK_UNKNOWN = 0,
    NP_UPLINK_UP = 1,
    NP_UPLINK_DOWN = 2,
};

/* Values equal Netpulse__EventType. */
enum np_probe_event_type {
    NP_PROBE_EV_UPLINK_UP = 7,
    NP_PROBE_EV_UPLINK_DOWN = 8,
    NP_PROBE_EV_PROBE_UP = 9,
    NP_PROBE_EV_PROBE_DOWN = 10,
};

/* One finished round of one probe. All strings are borrowed for the duration
 * of the callback (copy what you keep); none is NULL. */
struct np_probe_result {
    const char *name; /* [probe NAME] */
    enum np_probe_type type;
    const char *target; /* as configured */
    int64_t time_ms;    /* wall clock (Unix ms) when the round started */
    int64_t interval_ms;
    bool ok;
    uint64_t rtt_us;   /* mean round trip of the answered packets (ICMP), connect time (TCP),
                        * whole transfer (HTTP), query time (DNS); 0 when none */
    uint32_t sent;     /* echoes sent (ICMP); 1 otherwise */
    uint32_t received; /* echoes answered (ICMP); 1 when ok otherwise; loss = 1 - received/sent */
    const char *error; /* "" when ok; else why, e.g. "timeout", "connection refused" */
};

/* A state change. Strings borrowed for the callback; none is NULL. */
struct np_probe_event {
    enum np_probe_event_type type;
    int64_t time_ms;     /* start (wall ms) of the probe round that decided the change */
    int64_t since_ms;    /* start of the first round of the streak that led to it (equals
                          * time_ms when down_after / up_after is 1): the best estimate of
                          * when the condition really began */
    const char *subject; /* PROBE_*: the probe's NAME; UPLINK_*: the deciding probe's NAME */
    const char *detail;  /* for people, e.g. "2 of 3 probes up, quorum 2" */
};

/* Called on the loop thread. ctx is np_probe_set_new()'s ctx. Callbacks may
 * read np_probe_uplink_state() but must not free the set. Either pointer may
 * be NULL. For one round, result comes first, then any PROBE_* event, then
 * any UPLINK_* event. */
struct np_probe_callbacks {
    void (*result)(const struct np_probe_result *r, void *ctx);
    void (*event)(const struct np_probe_event *e, void *ctx);
};

struct np_probe_set;

/* Creates the probes of every [probe] section of cfg on loop and opens what
 * needs privileges (ICMP sockets). Nothing runs before np_probe_set_start().
 * loop, cfg (and the settings strings in it) and cbs are borrowed and must
 * outlive the set. On success *out is freed with np_probe_set_free(); with no
 * [probe] section the set is valid and empty (uplink stays UNKNOWN).
 * Errors (then *out is NULL, err says which probe and why): -EACCES/-EPERM
 * when neither a ping socket nor a raw socket may be opened, other -errno
 * from socket(), NP_EHTTP (libcurl), NP_ECONFIG (c-ares init or server),
 * -ENOMEM, negative uv codes. Loop thread, before or while the loop runs. */
int np_probe_set_new(uv_loop_t *loop, const struct np_config *cfg,
                     const struct np_probe_callbacks *cbs, void *ctx, struct np_probe_set **out,
                     struct np_err *err);

/* Starts every probe's timer; the first rounds begin on the next loop turn.
 * Returns 0 or a negative uv code. Calling it twice is -EALREADY. */
int np_probe_set_start(struct np_probe_set *set);

/* Stops every probe (a round in progress is abandoned without a result),
 * closes sockets and handles. No callback runs after this returns. The
 * memory is released in the last uv_close callback: run the loop afterwards
 * (uv_run(loop, UV_RUN_DEFAULT) returns once it is all gone). Accepts NULL.
 * Must not be called from inside a probe callback. */
void np_probe_set_free(struct np_probe_set *set);

/* The uplink state now and the time_ms of the event that set it (0 while
 * UNKNOWN). since_ms may be NULL. */
enum np_uplink_state np_probe_uplink_state(const struct np_probe_set *set, int64_t *since_ms);

/* Number of probes in the set. */
size_t np_probe_set_count(const struct np_probe_set *set);

/* Describes probe i for logs and tests: its NAME, and for ICMP which socket
 * kind it got ("ping" or "raw"; "" for other types). Borrowed from the set;
 * NULL when i is out of range. */
const char *np_probe_name(const struct np_probe_set *set, size_t i);
const char *np_probe_socket_kind(const struct np_probe_set *set, size_t i);

#endif
