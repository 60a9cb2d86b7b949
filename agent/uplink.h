/* uplink: the agent's store-and-forward path to the collector.
 *
 * Modules hand items in (np_uplink_add_*); they go into the current batch (a
 * np_wire_builder). Every batch_interval the batch is closed, even when it is
 * empty (it is then the heartbeat: the uplink state and the spool backlog),
 * and sooner when the builder is full. A closed batch gets the next sequence
 * number and is appended to the spool (netpulse/spool.h) in a libuv work job;
 * only then is it sent. Spool work runs one job at a time, off the loop.
 *
 * Sending: POST <collector>/api/v1/ingest over HTTPS (HTTP/2 when the server
 * offers it, one connection kept alive), through curl_uv on the loop, with
 * "Authorization: Bearer <token>" and "Content-Type: application/x-protobuf".
 * The reply {"ack": N} acknowledges every seq <= N; acknowledgements are
 * batched into the spool (the highest one known when the previous ack job
 * finishes).
 *
 * Order: the collector applies a batch only when its seq is above the highest
 * it holds for the agent (collector/ingest.h), so batches are sent strictly
 * oldest first, one request at a time. After an outage the backlog drains at
 * most drain_rate batches per second; the newest batch is never held back by
 * that rate, and the live batches join the end of the queue, so once the
 * backlog is gone live data flows at once again.
 *
 * Failures: connection errors, timeouts, 429 and 5xx are retried with
 * exponential backoff and full jitter (1 s doubling, capped at retry_max);
 * 401/403 and other 4xx are logged loudly (np_complain) and retried every
 * retry_max: nothing unacknowledged is ever deleted by the agent. A spool
 * overflow (np_spool_take_loss) becomes an EVENT_SPOOL_OVERFLOW with its
 * range in the next batch.
 *
 * Restarts: the spool is opened in np_uplink_open(); numbering continues at
 * np_spool_last_seq() + 1 and the unacknowledged batches are sent first.
 *
 * Threads: loop thread only (the spool is used from work jobs). */
#ifndef NP_AGENT_UPLINK_H
#define NP_AGENT_UPLINK_H

#include "curl_uv.h"

#include "netpulse/err.h"
#include "netpulse/spool.h"
#include "netpulse/wire.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct np_uplink_opts {
    const char *agent_id;      /* [agent] id */
    const char *agent_version; /* e.g. "0.1.0" */
    int64_t agent_start_ms;    /* wall time this process started */
    const char *collector;     /* base URL, e.g. https://collector:8443 */
    const char *token;         /* bearer token; "" sends none (the collector refuses) */
    const char *ca_file;       /* "" or NULL: the system store */
    const char *proxy;         /* "" or NULL: libcurl's environment (https_proxy, no_proxy) */
    const char *spool_dir;
    uint64_t spool_max_bytes;
    enum np_spool_fsync spool_fsync;
    int64_t batch_interval_ms; /* > 0 */
    int64_t timeout_ms;        /* whole request; connect gets at most 10 s of it */
    uint32_t drain_rate;       /* backlog batches per second; >= 1 */
    int64_t retry_max_ms;      /* backoff cap; >= 1000 */
};

/* Counters for logs, tests and --help-like status. */
struct np_uplink_stats {
    uint64_t next_seq;           /* seq the next batch will get */
    uint64_t acked_seq;          /* highest seq the collector acknowledged */
    uint64_t spooled_seq;        /* highest seq appended to the spool */
    uint64_t batches_sent;       /* POSTs answered 200 */
    uint64_t send_failures;      /* POSTs that failed (any reason) */
    uint64_t items_dropped;      /* items refused by the builder as invalid */
    struct np_spool_stats spool; /* as of the last spool job */
};

struct np_uplink;

/* Opens the spool in o->spool_dir (blocking: reads every segment; call before
 * the loop runs), creates the builder and the easy handle. Strings of o are
 * copied; loop and cu are borrowed and must outlive the uplink. Nothing runs
 * until np_uplink_start(). *out is closed with np_uplink_close() and freed
 * with np_uplink_free(). Errors: those of np_spool_open (-EBUSY: another agent
 * has the spool), np_wire_builder_new (NP_EPROTO: bad agent id), NP_ECONFIG
 * (bad options), -ENOMEM. */
int np_uplink_open(uv_loop_t *loop, struct np_curl_uv *cu, const struct np_uplink_opts *o,
                   struct np_uplink **out, struct np_err *err);

/* Starts the batch timer and sends what the spool holds unacknowledged.
 * Returns 0 or a negative uv code. */
int np_uplink_start(struct np_uplink *up);

/* Replaces what can change at run time (SIGHUP): collector, token, ca_file,
 * proxy, timeout_ms, drain_rate, retry_max_ms. The others are ignored (they
 * need a restart). Strings are copied. A waiting retry is started at once.
 * Returns 0 or -ENOMEM (nothing changed). */
int np_uplink_reconfigure(struct np_uplink *up, const struct np_uplink_opts *o);

/* Items for the current batch. Each is copied (borrowed during the call);
 * when the batch is full it is closed first and the item goes into the next.
 * Errors: NP_EPROTO (the item is invalid; err says which field; it is
 * dropped and counted), NP_ETOOBIG (one item larger than a whole batch),
 * -ESHUTDOWN after np_uplink_close(), -ENOMEM. */
int np_uplink_add_sample(struct np_uplink *up, const Netpulse__InterfaceSample *s,
                         struct np_err *err);
int np_uplink_add_device(struct np_uplink *up, const Netpulse__DeviceInfo *d, struct np_err *err);
int np_uplink_add_flow_summary(struct np_uplink *up, const Netpulse__FlowSummary *f,
                               struct np_err *err);
int np_uplink_add_probe(struct np_uplink *up, const Netpulse__ProbeResult *p, struct np_err *err);
int np_uplink_add_event(struct np_uplink *up, const Netpulse__Event *e, struct np_err *err);

/* For modules that add to a builder themselves (agent/flow's np_flow_wire_add):
 * calls add(b, arg, err) with the current batch's builder; when it returns
 * NP_ETOOBIG on a non-empty batch, the batch is closed and add is called
 * once more with the next one. add must add all or nothing. Returns add's
 * result (NP_EPROTO counted as a dropped item), or -ESHUTDOWN after
 * np_uplink_close(). */
typedef int (*np_uplink_add_cb)(struct np_wire_builder *b, void *arg, struct np_err *err);
int np_uplink_add_with(struct np_uplink *up, np_uplink_add_cb add, void *arg, struct np_err *err);

/* The uplink state the probes decided (heartbeat.uplink) and when it last
 * changed (wall ms; 0 unknown). Put into every batch closed from now on. The
 * transition event itself is the probes' to add (np_uplink_add_event). */
void np_uplink_set_link_state(struct np_uplink *up, Netpulse__UplinkState state, int64_t since_ms);

/* Closes the current batch now (it goes to the spool and the send queue). */
void np_uplink_flush(struct np_uplink *up);

/* Copies the counters into *st. */
void np_uplink_get_stats(const struct np_uplink *up, struct np_uplink_stats *st);

/* Shutdown: stops the timers, closes the current batch into the spool,
 * cancels a request in flight, waits for the spool jobs and closes the libuv
 * handles; then calls done(arg) on the loop. Nothing is sent after this
 * call. Call once; the loop must keep running until done. */
void np_uplink_close(struct np_uplink *up, void (*done)(void *arg), void *arg);

/* Closes the spool (syncs it; blocking) and frees; call after close's done
 * callback. Accepts NULL. */
void np_uplink_free(struct np_uplink *up);

#endif
