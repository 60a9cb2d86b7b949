/* ingest: POST /api/v1/ingest, the path from an agent's batch to durable storage.
 *
 * Request: "Authorization: Bearer TOKEN", body = one wire batch (protobuf,
 * netpulse/wire.h), optionally "Content-Encoding: gzip" (inflated with a hard
 * cap of NP_WIRE_MAX_BATCH_BYTES). Answers:
 *   200 {"ack": N}  the batch is durable (fdatasync'ed in the ingest journal);
 *                   N is the highest batch seq durable for this agent, so the
 *                   agent may drop everything up to N from its spool. A batch
 *                   already held (seq <= N) gets the same answer and changes
 *                   nothing.
 *   401  no, unknown or revoked token (nothing is decoded or stored)
 *   403  the batch's agent_id is not the token's agent
 *   400  malformed: bad gzip, bad protobuf, invalid content (reason in body)
 *   413  body over max_body_bytes or inflated body over NP_WIRE_MAX_BATCH_BYTES
 *   415  Content-Encoding other than gzip/identity
 *   405  not POST;  503  journal failing or full, backlog full (below),
 *                   or shutting down; with "Retry-After: 5"
 * Error bodies are one line of text/plain with the reason.
 *
 * Backpressure: while 64 batches are being decoded, journaled or waiting to
 * be applied, new requests wait undecoded (their body copied) and go on in
 * arrival order as room frees; only past 4096 waiting requests or 64 MiB of
 * their bodies do they get the 503 (reject reason "unavailable"). /metrics
 * shows both: netpulse_queue_depth{queue="apply"} and {queue="parked"}.
 *
 * Pipeline (only the first and last steps run on the loop thread):
 *   1. work job (libuv pool): authenticate the token (state_db), inflate,
 *      np_wire_decode, check agent_id;
 *   2. loop: duplicate check against the agent's durable seq; append to the
 *      journal (journal.h: group commit, an fdatasync starts as soon as
 *      one is needed and none runs; what arrives meanwhile joins the next);
 *   3. journal synced -> loop: reply 200 with the ack, queue for applying;
 *   4. apply jobs, in journal order, up to 3 at once but never two of one
 *      agent (so an agent's batches, and each of its files, are written in
 *      seq and time order): RRD (rrd_store) then SQLite (state_db, one
 *      connection under a lock, which advances the agent's applied seq in
 *      the same transaction); the journal's applied position then moves over
 *      the records that are done, never past one still queued or running.
 * On open, records left unapplied by a crash are applied again (idempotent:
 * a batch whose seq is not above the agent's applied seq is skipped).
 * Outages (outage.h): every valid batch counts as the agent's heartbeat; each
 * applied batch feeds the outage tracker, and the outages it changes are
 * written in the batch's transaction; a 1 s timer opens suspected outages for
 * silent agents and queues their rows into the apply queue.
 *
 * Threads: loop thread, except where said. */
#ifndef NP_COLLECTOR_INGEST_H
#define NP_COLLECTOR_INGEST_H

#include "metrics.h"
#include "netpulse/err.h"

#include <uv.h>

#include <stdbool.h>
#include <stdint.h>

struct st_h2o_req_t;
struct np_rrd_store;
struct np_alerter;

struct np_ingest_opts {
    const char *journal_dir;    /* folder of the ingest journal (created) */
    const char *state_db_path;  /* DATA_DIR/state.db; ingest opens two connections */
    struct np_rrd_store *rrd;   /* borrowed; used from the apply jobs (several at once) */
    struct np_metrics *metrics; /* borrowed; updated on the loop thread */
    uint64_t max_body_bytes;    /* larger bodies get 413; 0: NP_WIRE_MAX_BATCH_BYTES */
    int64_t heartbeat_timeout_ms; /* silence that opens a suspected outage (outage.h); 0: 30 s */
};

struct np_ingest;

/* Opens the journal and the database connections and applies what the journal
 * holds unapplied (blocking: call before the loop runs). Strings are copied;
 * rrd and metrics must outlive the ingest. *out is freed with
 * np_ingest_free(). Errors: those of np_journal_open, np_state_db_open, and
 * of applying a replayed batch (the journal is left as it was). */
int np_ingest_open(uv_loop_t *loop, const struct np_ingest_opts *o, struct np_ingest **out,
                   struct np_err *err);

/* Starts the journal writer. Errors: -errno. */
int np_ingest_start(struct np_ingest *ing, struct np_err *err);

/* Route handler for POST /api/v1/ingest (np_http_handler_cb; ctx = ingest). */
int np_ingest_handle(void *ctx, struct st_h2o_req_t *req);

/* Refuses new batches (503) from now on and calls done(arg) once every batch
 * already accepted has been answered and applied. */
void np_ingest_shutdown(struct np_ingest *ing, void (*done)(void *arg), void *arg);

/* Alerts (alerter.h): from now on the events of every batch applied for the
 * first time (interface down/up, uplink down/up, spool overflow; not
 * duplicates, not batches applied before) are fed to al (borrowed, NULL:
 * none) after their apply job; those of batches the journal replay at open
 * applied are fed now. Loop thread. */
void np_ingest_set_alerter(struct np_ingest *ing, struct np_alerter *al);

/* Updates the queue gauges in the metrics. */
void np_ingest_update_metrics(struct np_ingest *ing);

/* Closes the journal (persists the applied position) and the databases. Call
 * after the shutdown callback ran; the loop must run afterwards to release the
 * journal's handle. Accepts NULL. */
void np_ingest_free(struct np_ingest *ing);

#endif
