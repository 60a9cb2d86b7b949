/* snmp_poller: the agent's asynchronous SNMP interface poller.
 *
 * Owns the [snmp NAME] config sections and the per-interface counter state
 * between polls. Every target is polled on the caller's libuv loop through a
 * net-snmp single session opened for that poll and closed after it: its
 * socket is watched with a uv_poll handle and net-snmp's retransmission
 * timeouts are driven by one uv_timer. At most [agent] snmp_max_concurrent
 * polls are in progress at once (sessions, sockets and walk buffers follow
 * that cap, not the number of targets); polls due beyond it wait in a FIFO
 * queue, so a slow or dead device holds one slot for its timeout and never
 * delays the others beyond that. SNMPv3 engine discovery is done
 * asynchronously too (net-snmp's own probe would block the loop), once per
 * engine: its engine ID is kept across sessions.
 *
 * One poll of a target = GETBULK (v2c, v3) or GETNEXT (v1) walks of the
 * needed ifTable/ifXTable columns in parallel, each request also carrying
 * sysUpTime so every counter has the device uptime of its own reply.
 * Interfaces are keyed by ifName (else ifDescr, else the ifIndex), so a
 * re-indexed device does not mix series. Rates come from np_counter_delta()
 * with the reply arrival times (monotonic) and the device uptime.
 *
 * Threads: everything runs on the loop thread that owns the poller. */
#ifndef NP_AGENT_SNMP_POLLER_H
#define NP_AGENT_SNMP_POLLER_H

#include "netpulse/config.h"
#include "netpulse/counters.h"
#include "netpulse/err.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

/* What went wrong with one target's poll (stable names, see
 * np_snmp_failure_name): these are what --once prints. */
enum np_snmp_failure {
    NP_SNMP_OK = 0,
    NP_SNMP_TIMEOUT,              /* no (valid) answer within timeout x (retries + 1) */
    NP_SNMP_AUTH_FAILURE,         /* v3 wrong digest: wrong auth password or protocol */
    NP_SNMP_UNKNOWN_USER,         /* v3 user unknown to the device */
    NP_SNMP_UNKNOWN_ENGINE,       /* v3 engine ID could not be discovered */
    NP_SNMP_NOT_IN_TIME_WINDOW,   /* v3 time window not reached after resync */
    NP_SNMP_DECRYPTION_ERROR,     /* v3 wrong privacy password or protocol */
    NP_SNMP_UNSUPPORTED_SECLEVEL, /* v3 security level not allowed for the user */
    NP_SNMP_NO_SUCH_OBJECT,       /* the device has no sysUpTime.0 (or refuses it) */
    NP_SNMP_PROTOCOL_ERROR,       /* error-status in a reply, malformed walk */
    NP_SNMP_SEND_FAILED,          /* the request could not be sent */
    NP_SNMP_TOO_BIG,              /* over a hard limit (rows, rounds) */
};

/* "ok", "timeout", "authentication-failure", "unknown-user", ... */
const char *np_snmp_failure_name(enum np_snmp_failure f);

/* One interface of one poll. All pointers are borrowed and valid only during
 * the callback. */
struct np_snmp_if_reading {
    const char *target; /* section name */
    const char *key;    /* identity across polls: ifName, else ifDescr, else "ifIndex.N" */
    uint32_t if_index;
    const char *if_name;  /* "" when the device has no ifName */
    const char *if_alias; /* "" when absent */
    const char *if_descr; /* "" when absent */
    int if_type;          /* IANAifType; 0 when absent */
    uint64_t speed_bps;   /* ifHighSpeed * 1e6 when present, else ifSpeed; 0 unknown */
    bool has_high_speed;
    uint32_t high_speed_mbps; /* ifHighSpeed */
    uint64_t rate_limit_bps;  /* rate_override, else speed_bps (bounds wrap plausibility) */
    int oper_status;          /* IF-MIB ifOperStatus (1 up, 2 down, ...); 0 when absent */
    int admin_status;         /* IF-MIB ifAdminStatus; 0 when absent */
    unsigned counter_bits;    /* 64 (ifHC*), 32 (ifIn/OutOctets) or 0: the device has no counters */
    uint64_t in_octets;
    uint64_t out_octets;
    uint64_t sys_uptime_cs; /* sysUpTime from the reply that carried in_octets */
    int64_t time_mono_ms;   /* arrival of the reply that carried in_octets (uv_hrtime clock) */
    int64_t time_wall_ms;   /* the same moment on the wall clock, for the record */
    /* Against the previous poll of the same key; no rate on the first poll. */
    bool has_previous;          /* an earlier poll of this key had counters */
    struct np_counter_delta in; /* status NP_COUNTER_BAD_INTERVAL without a previous poll */
    struct np_counter_delta out;
    bool rates_valid; /* in and out both carry a value */
};

/* An ifOperStatus or ifAdminStatus change seen between two polls. */
struct np_snmp_if_event {
    const char *target;
    const char *key;
    uint32_t if_index;
    const char *what; /* "operStatus" or "adminStatus" */
    int old_status;
    int new_status;
    int64_t time_wall_ms; /* the poll timestamp */
};

/* The end of one target's poll. */
struct np_snmp_target_result {
    const char *target;
    const char *host;
    unsigned port;
    enum np_snmp_failure failure;
    const char *detail; /* human detail (net-snmp's words, the OID...); "" when ok */
    size_t interfaces;  /* delivered through on_interface */
    size_t rows;        /* rows the device returned (before interface selection) */
    const char *sys_name, *sys_descr, *sys_object_id; /* "" when absent */
    uint64_t sys_uptime_cs;
    int64_t started_mono_ms, finished_mono_ms;
};

struct np_snmp_callbacks {
    /* Each selected interface of a successful poll, in ifIndex order. */
    void (*on_interface)(void *ctx, const struct np_snmp_if_reading *r);
    /* Status changes, before the matching on_interface. */
    void (*on_event)(void *ctx, const struct np_snmp_if_event *e);
    /* Once per target per poll, after its interfaces (or on failure). */
    void (*on_target_done)(void *ctx, const struct np_snmp_target_result *res);
    /* Do not log failed polls (the caller reports them itself, as --once does). */
    bool quiet;
};

struct np_snmp_poller;

/* Counters for tests and benchmarks (see np_snmp_poller_take_stats). */
struct np_snmp_poller_stats {
    size_t max_concurrent; /* the cap in force: min(snmp_max_concurrent, targets) */
    size_t in_flight_max;  /* most polls in progress at once (each with its session) */
    size_t queued_max;     /* most polls waiting for a free slot */
    size_t discoveries;    /* SNMPv3 engine discoveries sent */
};

/* Creates a poller for every [snmp NAME] section of cfg (borrowed; must
 * outlive the poller) on loop (borrowed). callbacks is copied; ctx is passed
 * back untouched. Resolves each target's host and derives v3 keys, blocking
 * (at start, and on the loop thread at a reload: an unresolvable name costs
 * the resolver's timeout there); opens no session yet. Returns NULL with err set
 * (NP_ESNMP, NP_ECONFIG, -ENOMEM). Loop thread. */
struct np_snmp_poller *np_snmp_poller_new(uv_loop_t *loop, const struct np_config *cfg,
                                          const struct np_snmp_callbacks *callbacks, void *ctx,
                                          struct np_err *err);

/* Number of targets. */
size_t np_snmp_poller_count(const struct np_snmp_poller *p);

/* Copies the counters into out (may be NULL) and starts them again from the
 * present state (in flight and queued now, no discoveries). Loop thread. */
void np_snmp_poller_take_stats(struct np_snmp_poller *p, struct np_snmp_poller_stats *out);

/* Starts periodic polling: each target every `interval`, first polls spread
 * over the interval. Returns 0 or a negative uv error. */
int np_snmp_poller_start(struct np_snmp_poller *p);

/* Polls every target now (targets already polling are left alone); done
 * (may be NULL) is called once all of them have finished. Returns 0 or a
 * negative code. */
int np_snmp_poller_poll_all_once(struct np_snmp_poller *p,
                                 void (*done)(struct np_snmp_poller *p, void *ctx));

/* Stops timers, closes sessions and handles; the memory goes once the loop
 * has run the close callbacks (run the loop after this). Accepts NULL. */
void np_snmp_poller_free(struct np_snmp_poller *p);

/* --once: creates a loop and poller, polls every target once, prints one
 * JSON object per interface per line to out and one line per failed target
 * to errout. Returns 0 if every target answered, 1 if any failed, 2 when the
 * poller could not be set up. Borrows cfg, out and errout. Main thread. */
int np_snmp_once(const struct np_config *cfg, FILE *out, FILE *errout);

/* --polls N: as np_snmp_once, but polls every target `polls` times, the
 * rounds starting interval_ms apart (a round that overruns is followed at
 * once). From the second poll each line also carries the rate against the
 * previous poll (inBps, outBps, rateValid, rateStatus, intervalMs), status
 * changes are printed as event lines ({"event":"operStatus",...}) before the
 * interface's own line, and errout gets one summary per round
 * ("snmp: poll round=K ... wall_ms=... cpu_ms=... rss_kib=... rss_anon_kib=...
 * rss_file_kib=... max_concurrent=... in_flight_max=... queued_max=...
 * discoveries=..."). out is flushed after each round. Same return values as
 * np_snmp_once. */
int np_snmp_polls(const struct np_config *cfg, unsigned polls, int64_t interval_ms, FILE *out,
                  FILE *errout);

#endif
