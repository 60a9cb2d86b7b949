/* journal: group-committed ingest journal on top of np_spool; see journal.h. */
#include "journal.h"

#include "netpulse/clock.h"
#include "netpulse/log.h"
#include "netpulse/spool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct np_journal {
    uv_loop_t *loop;
    struct np_spool *spool;
    uv_async_t async; /* writer -> loop: completions are ready */
    uv_thread_t thread;
    bool started;
    bool closing; /* loop thread only */

    uv_mutex_t mu; /* guards everything below up to "writer only" */
    uv_cond_t cond;
    struct np_journal_req *in_head, *in_tail;     /* submitted, not yet taken */
    struct np_journal_req *done_head, *done_tail; /* completed, for the loop */
    uint64_t applied_jseq;                        /* highest applied (loop -> writer) */
    bool stop;
    struct np_journal_stats stats;

    /* writer only */
    struct np_journal_req *wait_head, *wait_tail; /* written, waiting for the sync */
    bool unsynced;
    uint64_t last_ack_ms;
    uint64_t acked_jseq;
    struct np_complain sync_complain;

    /* loop only */
    uint64_t queued;        /* submitted, not completed */
    uint64_t durable_jseq;  /* highest jseq completed */
    uint64_t applied_local; /* highest jseq reported applied */
};

static void list_push(struct np_journal_req **head, struct np_journal_req **tail,
                      struct np_journal_req *r)
{
    r->next = NULL;
    if (*tail) {
        (*tail)->next = r;
    } else {
        *head = r;
    }
    *tail = r;
}

/* Appends list [h, t] to [*head, *tail]. */
static void list_splice(struct np_journal_req **head, struct np_journal_req **tail,
                        struct np_journal_req *h, struct np_journal_req *t)
{
    if (!h) {
        return;
    }
    if (*tail) {
        (*tail)->next = h;
    } else {
        *head = h;
    }
    *tail = t;
}

int np_journal_open(uv_loop_t *loop, const char *dir, struct np_journal **out, struct np_err *err)
{
    *out = NULL;
    struct np_journal *j = calloc(1, sizeof *j);
    if (!j) {
        return np_err_set(err, -ENOMEM, "journal: out of memory");
    }
    j->loop = loop;
    /* INTERVAL with a long interval: append never syncs by itself (the writer
     * decides when), but the spool still fsyncs a finished segment and the
     * directory when it starts a new one, which NEVER would skip. */
    struct np_spool_opts o = {
        .max_bytes = NP_JOURNAL_MAX_BYTES,
        .fsync = NP_SPOOL_FSYNC_INTERVAL,
        .fsync_interval_ms = INT64_C(86400000),
    };
    int rc = np_spool_open(dir, &o, &j->spool, err);
    if (rc != 0) {
        goto out_free;
    }
    if (uv_mutex_init(&j->mu) != 0) {
        rc = np_err_set(err, -ENOMEM, "journal: mutex init failed");
        goto out_close;
    }
    if (uv_cond_init(&j->cond) != 0) {
        rc = np_err_set(err, -ENOMEM, "journal: cond init failed");
        goto out_mutex;
    }
    j->acked_jseq = np_spool_acked_seq(j->spool);
    j->applied_jseq = j->acked_jseq;
    j->applied_local = j->acked_jseq;
    j->durable_jseq = np_spool_last_seq(j->spool);
    j->stats.synced_jseq = j->durable_jseq; /* the spool synced it at close */
    *out = j;
    return 0;

out_mutex:
    uv_mutex_destroy(&j->mu);
out_close:
    np_spool_close(j->spool);
out_free:
    free(j);
    return rc;
}

int np_journal_replay(struct np_journal *j, np_journal_replay_cb cb, void *ctx, struct np_err *err)
{
    uint64_t after = 0, last = 0;
    int rc;
    for (;;) {
        uint64_t seq;
        int64_t created_ms;
        void *data;
        size_t len;
        rc = np_spool_read(j->spool, after, &seq, &created_ms, &data, &len, err);
        if (rc == NP_ENODATA) {
            break;
        }
        if (rc != 0) {
            return rc;
        }
        rc = cb(ctx, seq, data, len);
        free(data);
        if (rc != 0) {
            return rc;
        }
        after = last = seq;
    }
    np_err_clear(err);
    if (last > 0) {
        rc = np_spool_ack(j->spool, last, err);
        if (rc != 0) {
            return rc;
        }
        j->acked_jseq = j->applied_jseq = j->applied_local = last;
    }
    return 0;
}

/* Writer thread: moves the waiters to the done list and wakes the loop. */
static void complete_waiters(struct np_journal *j, int status)
{
    if (!j->wait_head) {
        return;
    }
    for (struct np_journal_req *r = j->wait_head; r; r = r->next) {
        if (r->status == 0) {
            r->status = status;
        }
    }
    uv_mutex_lock(&j->mu);
    list_splice(&j->done_head, &j->done_tail, j->wait_head, j->wait_tail);
    uv_mutex_unlock(&j->mu);
    j->wait_head = j->wait_tail = NULL;
    uv_async_send(&j->async);
}

static void writer_sync(struct np_journal *j)
{
    struct np_err err = {0};
    uint64_t covered = np_spool_last_seq(j->spool); /* written before the sync */
    int rc = np_spool_sync(j->spool, &err);
    j->unsynced = false;
    if (rc != 0) {
        np_complain(&j->sync_complain, NP_LOG_ERR, "journal: sync failed err=%s", err.msg);
    } else {
        np_complain_release(&j->sync_complain, "journal: sync works again");
        uv_mutex_lock(&j->mu);
        j->stats.syncs++;
        j->stats.synced_jseq = covered;
        uv_mutex_unlock(&j->mu);
    }
    complete_waiters(j, rc);
}

static void writer_ack(struct np_journal *j, uint64_t target)
{
    struct np_err err = {0};
    if (target <= j->acked_jseq) {
        return;
    }
    if (target > np_spool_last_seq(j->spool)) {
        target = np_spool_last_seq(j->spool);
    }
    int rc = np_spool_ack(j->spool, target, &err);
    j->last_ack_ms = np_clock_mono_ms();
    if (rc != 0) {
        np_log(NP_LOG_ERR, "journal: ack failed jseq=%" PRIu64 " err=%s", target, err.msg);
        return;
    }
    j->acked_jseq = target;
}

/* Appends the taken requests; barriers join the sync waiters. */
static void writer_write(struct np_journal *j, struct np_journal_req *r)
{
    while (r) {
        struct np_journal_req *next = r->next;
        r->status = 0;
        r->jseq = 0;
        if (r->data) {
            struct np_err err = {0};
            uint64_t jseq = np_spool_last_seq(j->spool) + 1;
            int rc = np_spool_append(j->spool, jseq, np_clock_wall_ms(), r->data, r->len, &err);
            if (rc != 0) {
                np_log(NP_LOG_ERR, "journal: append failed bytes=%zu err=%s", r->len, err.msg);
                r->status = rc;
            } else {
                r->jseq = jseq;
                j->unsynced = true;
            }
            struct np_spool_loss loss;
            if (np_spool_take_loss(j->spool, &loss)) {
                /* Should never happen: ingest refuses batches long before the
                 * bound. Said loudly, because acknowledged data is gone. */
                np_log(NP_LOG_ERR,
                       "journal: dropped unapplied records for space batches=%" PRIu64
                       " first=%" PRIu64 " last=%" PRIu64,
                       loss.batches, loss.first_seq, loss.last_seq);
            }
        }
        list_push(&j->wait_head, &j->wait_tail, r);
        r = next;
    }
}

/* Group commit: the writer takes everything submitted so far, writes it and,
 * when anything is unsynced, starts fdatasync at once. What is submitted while
 * that sync runs waits in the in list and is written and synced together in
 * the next round, so one sync covers every append that arrived during the
 * previous one: syncs follow the disk's own pace, with no timer, and a lone
 * append waits for one sync only. */
static void writer_main(void *arg)
{
    struct np_journal *j = arg;
    uv_mutex_lock(&j->mu);
    for (;;) {
        uint64_t now = np_clock_mono_ms();
        bool ack_wanted = j->applied_jseq > j->acked_jseq;
        uint64_t ack_due = j->last_ack_ms + NP_JOURNAL_ACK_INTERVAL_MS;
        if (!j->in_head && !j->stop && !(ack_wanted && now >= ack_due)) {
            if (ack_wanted) {
                (void)uv_cond_timedwait(&j->cond, &j->mu, (ack_due - now) * 1000000u);
            } else {
                uv_cond_wait(&j->cond, &j->mu);
            }
            continue;
        }
        struct np_journal_req *taken = j->in_head;
        j->in_head = j->in_tail = NULL;
        bool stop = j->stop;
        uint64_t applied = j->applied_jseq;
        uv_mutex_unlock(&j->mu);

        writer_write(j, taken);
        if (j->unsynced) {
            writer_sync(j);
        } else {
            complete_waiters(j, 0); /* barriers with nothing to wait for */
        }
        now = np_clock_mono_ms();
        if (applied > j->acked_jseq &&
            (stop || now >= j->last_ack_ms + NP_JOURNAL_ACK_INTERVAL_MS)) {
            writer_ack(j, applied);
        }

        uv_mutex_lock(&j->mu);
        if (stop && !j->in_head) {
            break;
        }
    }
    uv_mutex_unlock(&j->mu);
}

static void on_async(uv_async_t *h)
{
    struct np_journal *j = h->data;
    uv_mutex_lock(&j->mu);
    struct np_journal_req *r = j->done_head;
    j->done_head = j->done_tail = NULL;
    uv_mutex_unlock(&j->mu);
    while (r) {
        struct np_journal_req *next = r->next;
        j->queued--;
        if (r->status == 0 && r->jseq > j->durable_jseq) {
            j->durable_jseq = r->jseq;
        }
        r->done(r, r->status);
        r = next;
    }
}

int np_journal_start(struct np_journal *j, struct np_err *err)
{
    int rc = uv_async_init(j->loop, &j->async, on_async);
    if (rc != 0) {
        return np_err_set(err, rc, "journal: uv_async_init: %s", uv_strerror(rc));
    }
    j->async.data = j;
    rc = uv_thread_create(&j->thread, writer_main, j);
    if (rc != 0) {
        uv_close((uv_handle_t *)&j->async, NULL);
        return np_err_set(err, rc, "journal: uv_thread_create: %s", uv_strerror(rc));
    }
    j->started = true;
    return 0;
}

void np_journal_submit(struct np_journal *j, struct np_journal_req *req)
{
    if (j->closing || !j->started) {
        req->jseq = 0;
        req->done(req, -ECANCELED);
        return;
    }
    j->queued++;
    uv_mutex_lock(&j->mu);
    list_push(&j->in_head, &j->in_tail, req);
    uv_cond_signal(&j->cond);
    uv_mutex_unlock(&j->mu);
}

void np_journal_applied(struct np_journal *j, uint64_t jseq)
{
    if (jseq <= j->applied_local) {
        return;
    }
    j->applied_local = jseq;
    uv_mutex_lock(&j->mu);
    j->applied_jseq = jseq;
    uv_mutex_unlock(&j->mu);
    /* No signal: the writer acks on its own schedule (timed wait or next batch). */
}

uint64_t np_journal_backlog(const struct np_journal *j)
{
    uint64_t written = j->durable_jseq > j->applied_local ? j->durable_jseq - j->applied_local : 0;
    return written + j->queued;
}

void np_journal_stats(struct np_journal *j, struct np_journal_stats *out)
{
    uv_mutex_lock(&j->mu);
    *out = j->stats;
    uv_mutex_unlock(&j->mu);
}

static void on_async_closed(uv_handle_t *h)
{
    struct np_journal *j = h->data;
    uv_cond_destroy(&j->cond);
    uv_mutex_destroy(&j->mu);
    free(j);
}

void np_journal_close(struct np_journal *j)
{
    if (!j) {
        return;
    }
    j->closing = true;
    if (!j->started) {
        np_spool_close(j->spool);
        uv_cond_destroy(&j->cond);
        uv_mutex_destroy(&j->mu);
        free(j);
        return;
    }
    uv_mutex_lock(&j->mu);
    j->stop = true;
    uv_cond_signal(&j->cond);
    uv_mutex_unlock(&j->mu);
    uv_thread_join(&j->thread);
    on_async(&j->async); /* what completed after the last wake-up */
    np_spool_close(j->spool);
    j->spool = NULL;
    uv_close((uv_handle_t *)&j->async, on_async_closed);
}
