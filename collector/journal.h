/* journal: the collector's ingest journal, a crash-safe FIFO of accepted batches
 * with group commit.
 *
 * librrd never fsyncs and rrdcached's journal is not synced (DESIGN.md,
 * "Durable"), so every batch the collector acknowledges is first appended here
 * and made durable with fdatasync; it is applied to RRD and SQLite afterwards
 * and acknowledged in the journal (np_spool_ack) once applied. On start the
 * records not yet acknowledged are replayed.
 *
 * Storage: common's np_spool in the journal folder. Record seq numbers are the
 * journal's own (1, 2, 3 ... across restarts), not the agents' batch numbers;
 * the payload is the batch exactly as decoded (protobuf, after gzip).
 *
 * Group commit: one writer thread takes every request submitted so far,
 * appends them and starts fdatasync at once; requests submitted while a sync
 * runs are written and synced together by the next one, and every request
 * completes when the sync covering it is done (no timer: a lone append waits
 * for one sync, a busy journal syncs back to back with growing groups).
 * The writer is a dedicated thread rather than a libuv pool job so that a
 * sync never occupies a pool slot the decode and apply jobs need.
 * Acknowledgements of applied records are persisted at most once per
 * NP_JOURNAL_ACK_INTERVAL_MS (each costs two fsyncs) and at close.
 *
 * Threads: np_journal_open/replay run before the loop is running (they block
 * on disk). Everything else is called on the loop thread; completion callbacks
 * run on the loop thread. The writer thread is the only one that touches the
 * spool between np_journal_start() and np_journal_close(). */
#ifndef NP_COLLECTOR_JOURNAL_H
#define NP_COLLECTOR_JOURNAL_H

#include "netpulse/err.h"

#include <uv.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NP_JOURNAL_ACK_INTERVAL_MS 1000
#define NP_JOURNAL_MAX_BYTES (1024ull << 20) /* bound of the spool under the journal */

struct np_journal;
struct np_journal_req;

/* Called on the loop thread when req is done: status 0 and req->jseq set (an
 * append that is now on disk, or a barrier whose covering sync is done), or a
 * negative code (the append is not in the journal). */
typedef void (*np_journal_done_cb)(struct np_journal_req *req, int status);

/* One request; the caller embeds it in its own struct and keeps it (and data)
 * alive until done runs. Fields below "private" are the journal's. */
struct np_journal_req {
    const void *data; /* append: payload (borrowed until done); NULL: barrier */
    size_t len;
    np_journal_done_cb done;
    uint64_t jseq; /* set before done: the record's journal seq (0 for a barrier) */
    /* private */
    int status;
    struct np_journal_req *next;
};

/* Opens (creating) the journal in dir (borrowed). The writer thread is not
 * started yet. *out is closed with np_journal_close(). Errors: those of
 * np_spool_open (-EBUSY when another collector has the folder open). */
int np_journal_open(uv_loop_t *loop, const char *dir, struct np_journal **out, struct np_err *err);

/* Calls cb(ctx, jseq, data, len) for every record not yet acknowledged, oldest
 * first (data borrowed for the call), then acknowledges them all. A non-zero
 * return of cb stops the walk and is returned (nothing acknowledged). Before
 * np_journal_start() only. Errors: cb's, -errno, -ENOMEM. */
typedef int (*np_journal_replay_cb)(void *ctx, uint64_t jseq, const void *data, size_t len);
int np_journal_replay(struct np_journal *j, np_journal_replay_cb cb, void *ctx, struct np_err *err);

/* Starts the writer thread. Errors: -errno from uv_thread_create / uv_async_init. */
int np_journal_start(struct np_journal *j, struct np_err *err);

/* Queues req: an append (req->data set) or a barrier (data NULL: completes
 * after every append queued before it is durable). Never blocks. After
 * np_journal_close() has begun, req completes with -ECANCELED. */
void np_journal_submit(struct np_journal *j, struct np_journal_req *req);

/* Records that every record up to jseq has been applied; the acknowledgement
 * reaches the disk within NP_JOURNAL_ACK_INTERVAL_MS. */
void np_journal_applied(struct np_journal *j, uint64_t jseq);

/* Records written but not yet acknowledged as applied, and requests queued. */
uint64_t np_journal_backlog(const struct np_journal *j);

/* Counters of the writer: fdatasync calls that succeeded, and the highest
 * journal seq that such a sync covered (every request completed with status
 * 0 has jseq <= synced_jseq). For tests and metrics. */
struct np_journal_stats {
    uint64_t syncs;
    uint64_t synced_jseq;
};

/* Copies the counters into *out. Any thread (takes the journal's mutex). */
void np_journal_stats(struct np_journal *j, struct np_journal_stats *out);

/* Completes what is queued (syncs it), persists the applied position, stops
 * the writer thread, closes the spool and frees j once its async handle has
 * closed (so the loop must run after this call). Accepts NULL. Blocks the
 * loop thread for at most the last sync. */
void np_journal_close(struct np_journal *j);

#endif
