/* outage: decides each site's outages from what its agent sends. Pure: no
 * I/O, no clocks of its own, no logging; plain structs in and out, so it is
 * unit-tested with table-driven timelines (tests/unit/test_outage.c).
 *
 * Evidence, per agent (DESIGN.md "Semantics": uptime):
 *   - heartbeats: every batch received is one (np_outage_heard, in receive
 *     order, with the collector's clocks);
 *   - the agent's own timeline, from each applied batch (np_outage_add):
 *     probe results (time_ms, interval_ms, ok), UPLINK_UP/DOWN events and the
 *     heartbeat's uplink state (used where no probe result is known), agent
 *     process starts (agent_start_ms, AGENT_START events), batch created_ms,
 *     and SPOOL_OVERFLOW ranges (evidence the agent dropped).
 *
 * Decisions:
 *   - LINK outage (confirmed): the uplink is down while fewer than the quorum
 *     of the probes known at that time succeeded (min(quorum, probes known);
 *     quorum 1 by default). start = the first failed result after the last
 *     success, end = the first successful result: within one probe interval of
 *     the real cut. A probe result stands for 1.5 x its interval.
 *   - AGENT outage (confirmed, link state unknown): no sign of the agent (no
 *     batch created, no probe run, no process start) for longer than the
 *     heartbeat timeout; start = its last sign of life, end = the next (the
 *     new process's agent_start_ms after a restart). Where the agent reported
 *     the gap's data as dropped (spool overflow) the cause is UNKNOWN instead.
 *     A link outage that runs into an agent outage ends where that begins.
 *   - SUSPECTED: no heartbeat for longer than the timeout opens one at once
 *     (np_outage_tick), from the created_ms of the last batch heard. When
 *     heartbeats resume, the collector needs the agent's backlog up to the
 *     moment they resumed (agent clock: resume time minus the lag of the last
 *     live batch, so clock offsets between agent and collector cancel). Until
 *     the applied batches reach that point the outage stays suspected (with
 *     the cause the data so far suggests, and the spool backlog the heartbeat
 *     reports); then the outages found in the gap replace it, confirmed. If
 *     nothing is found (link fine, agent running: the path to the collector
 *     failed, or the collector was down) it disappears from the list.
 *   - An agent never heard has no outages ("no data").
 *
 * Idempotent: applying the same batch again changes nothing (probe results
 * and signs of life are sets), in any order. Memory per agent is bounded:
 * runs of equal results are merged, and evidence older than history_ms
 * before the newest is dropped (its outages are final by then).
 *
 * Times: agent timestamps are wall-clock ms (the wire's). np_outage_heard and
 * np_outage_tick take the collector's monotonic ms (silence is measured on
 * it) and heard also the collector's wall ms (to estimate the agent's lag).
 *
 * Threads: a tracker is used by one thread at a time (the caller locks). */
#ifndef NP_COLLECTOR_OUTAGE_H
#define NP_COLLECTOR_OUTAGE_H

#include "netpulse/wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NP_OUTAGE_AGENT_MAX 64    /* bytes of an agent id */
#define NP_OUTAGE_DETAIL_MAX 200  /* bytes of a detail, with the NUL */
#define NP_OUTAGE_MAX_PROBES 32   /* probe names tracked per agent; more are ignored */
#define NP_OUTAGE_MAX_RUNS 4096   /* runs kept per probe and signs-of-life spans per agent */
#define NP_OUTAGE_MAX_OUTAGES 256 /* outages reported per agent (the newest) */
#define NP_OUTAGE_DEFAULT_TIMEOUT_MS 30000
#define NP_OUTAGE_DEFAULT_HISTORY_MS (7 * 86400000LL)

enum np_outage_rec_cause {
    NP_OUTAGE_CAUSE_UNKNOWN = 0,
    NP_OUTAGE_CAUSE_LINK = 1,
    NP_OUTAGE_CAUSE_AGENT = 2,
};

enum np_outage_rec_state {
    NP_OUTAGE_SUSPECTED = 0,
    NP_OUTAGE_CONFIRMED = 1,
};

/* One outage. For a suspected one, target_ms and lag_ms carry what settling
 * needs (stored with it so that a restarted collector can go on). */
struct np_outage_rec {
    enum np_outage_rec_cause cause;
    enum np_outage_rec_state state;
    int64_t start_ms;  /* agent clock, wall ms */
    int64_t end_ms;    /* 0: still open */
    int64_t target_ms; /* suspected: applied batches must reach this created_ms; 0: not yet known */
    int64_t lag_ms;    /* suspected: collector wall - agent created of the last live batch */
    char detail[NP_OUTAGE_DETAIL_MAX];
};

struct np_outage_config {
    int64_t heartbeat_timeout_ms; /* silence that opens a suspected outage; > 0 */
    unsigned probe_quorum;        /* successes needed per moment; 0 counts as 1 */
    int64_t history_ms;           /* evidence kept behind the newest; 0: the default */
};

/* One probe result; name borrowed. */
struct np_outage_probe {
    const char *name;
    int64_t time_ms;
    int64_t interval_ms; /* <= 0: 10 s */
    bool ok;
};

enum np_outage_mark_kind {
    NP_OUTAGE_MARK_UPLINK_UP,
    NP_OUTAGE_MARK_UPLINK_DOWN,
    NP_OUTAGE_MARK_AGENT_START,
    NP_OUTAGE_MARK_DATA_LOST, /* time_ms..to_ms dropped by the agent's spool */
};

struct np_outage_mark {
    enum np_outage_mark_kind kind;
    int64_t time_ms;
    int64_t to_ms; /* DATA_LOST only */
};

/* What the tracker needs of one batch; everything borrowed for the call. */
struct np_outage_batch {
    const char *agent;
    uint64_t seq; /* 0: not known */
    int64_t created_ms;
    int64_t agent_start_ms;  /* 0: not known */
    int uplink;              /* heartbeat: 0 unknown, 1 up, 2 down (wire numbering) */
    int64_t uplink_since_ms; /* 0: not known */
    const struct np_outage_probe *probes;
    size_t n_probes;
    const struct np_outage_mark *marks;
    size_t n_marks;
};

struct np_outage_tracker;

/* Creates a tracker; cfg is copied. Errors: -EINVAL (timeout <= 0), -ENOMEM.
 * Free with np_outage_tracker_free(). */
int np_outage_tracker_new(const struct np_outage_config *cfg, struct np_outage_tracker **out);

/* Frees everything; accepts NULL. */
void np_outage_tracker_free(struct np_outage_tracker *t);

/* A batch from agent was received (any valid batch, duplicates too: it
 * proves the agent can reach us). recv_mono_ms/recv_wall_ms: the collector's
 * clocks; created_ms and the spool figures from the batch's heartbeat.
 * Errors: -EINVAL (bad agent id), -ENOMEM. */
int np_outage_heard(struct np_outage_tracker *t, const char *agent, int64_t recv_mono_ms,
                    int64_t recv_wall_ms, int64_t created_ms, uint64_t spool_batches,
                    int64_t spool_oldest_ms);

/* Adds an applied batch's evidence; settles a suspected outage when the
 * evidence reaches its target. Errors: -EINVAL, -ENOMEM. */
int np_outage_add(struct np_outage_tracker *t, const struct np_outage_batch *b);

/* The same from a decoded wire batch (borrowed). */
int np_outage_add_wire(struct np_outage_tracker *t, const Netpulse__Batch *b);

/* Opens suspected outages for agents silent for longer than the timeout at
 * now_mono_ms. Returns how many agents' outages changed. */
size_t np_outage_tick(struct np_outage_tracker *t, int64_t now_mono_ms);

/* Seeds an agent after a restart of the collector: it counts as heard at
 * now_mono_ms (it gets a full timeout to speak), its last batch was created
 * at last_created_ms, and sus (may be NULL) is its open suspected outage as
 * stored. Errors: -EINVAL, -ENOMEM. */
int np_outage_restore(struct np_outage_tracker *t, const char *agent, int64_t now_mono_ms,
                      int64_t last_created_ms, const struct np_outage_rec *sus);

/* Copies agent's outages, oldest first, into out (cap entries; the newest
 * when there are more) and sets *n. *window_from_ms (may be NULL) is the start
 * of the evidence the list is based on: outages stored from before it are
 * not this tracker's to delete. Returns -ENOENT for an agent never seen. */
int np_outage_get(const struct np_outage_tracker *t, const char *agent, struct np_outage_rec *out,
                  size_t cap, size_t *n, int64_t *window_from_ms);

/* Takes one agent whose outages changed since it was last taken: copies its
 * id into agent (len >= NP_OUTAGE_AGENT_MAX + 1) and returns true; false when
 * none. */
bool np_outage_pop_dirty(struct np_outage_tracker *t, char *agent, size_t len);

/* Number of agents whose outages changed and were not taken yet. */
size_t np_outage_dirty_count(const struct np_outage_tracker *t);

/* "link", "agent", "unknown" / "suspected", "confirmed"; parse: 0 or -EINVAL. */
const char *np_outage_rec_cause_name(enum np_outage_rec_cause c);
const char *np_outage_rec_state_name(enum np_outage_rec_state s);
int np_outage_rec_cause_parse(const char *s, enum np_outage_rec_cause *out);
int np_outage_rec_state_parse(const char *s, enum np_outage_rec_state *out);

#endif
