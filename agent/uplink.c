/* uplink: batches -> spool -> collector; see uplink.h. */
#include "uplink.h"

#include "netpulse/clock.h"
#include "netpulse/log.h"

#include <jansson.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Batches stay well under the collector's default body limit (8 MiB) and
 * small enough that a slow school link sends one within the timeout. */
#define BATCH_MAX_BYTES (1u << 20)
#define REPLY_MAX 4096           /* bytes of a reply body kept */
#define BACKOFF_BASE_MS 1000     /* first retry within a second */
#define BACKOFF_MIN_MS 100       /* full jitter, but never a tight loop */
#define CONNECT_TIMEOUT_MS 10000 /* at most, within timeout_ms */
#define APPEND_RETRY_MS 1000     /* a failing spool append is tried again */
#define FSYNC_DELAY_MS 1000      /* spool_fsync = interval */

enum job_op { JOB_APPEND, JOB_READ, JOB_ACK, JOB_SYNC };

/* One spool operation, run in the thread pool. Inputs are set on the loop,
 * outputs in the work function; the spool is touched only there. */
struct job {
    uv_work_t work;
    struct np_uplink *up;
    enum job_op op;
    struct job *next;
    /* in */
    uint64_t seq;       /* APPEND: its seq; ACK: ack up to; READ: read after */
    int64_t created_ms; /* APPEND */
    uint8_t *data;      /* APPEND: owned by the job */
    size_t len;
    bool sync_first; /* READ: sync appends first (non-ALWAYS policies) */
    uint64_t spooled_at_submit;
    /* out */
    int rc;
    struct np_err err;
    struct np_spool_stats stats;
    bool has_loss;
    struct np_spool_loss loss;
    uint64_t out_seq; /* READ */
    void *out_data;   /* READ: malloc'ed by the spool */
    size_t out_len;
};

struct np_uplink {
    uv_loop_t *loop;
    struct np_curl_uv *cu;
    struct np_spool *spool;
    struct np_wire_builder *builder;

    /* options (strings owned) */
    char *agent_id, *collector_url, *token, *ca_file, *proxy;
    enum np_spool_fsync fsync;
    int64_t batch_interval_ms, timeout_ms, retry_max_ms;
    uint32_t drain_rate;

    /* sequence state, all on the loop */
    uint64_t next_seq;    /* for the next batch */
    uint64_t spooled_seq; /* highest seq in the spool (appended) */
    uint64_t synced_seq;  /* highest seq known to be on disk */
    uint64_t acked_seq;   /* highest seq the collector acknowledged */
    uint64_t gone_seq;    /* everything <= this was sent or dropped (read found nothing) */
    uint64_t spool_acked; /* highest ack handed to the spool */
    bool ack_job_queued;

    /* spool jobs: FIFO, one at a time */
    struct job *jobs_head, *jobs_tail;
    bool job_running;
    bool job_retry_wait; /* a failed append waits for job_timer */

    /* sending */
    CURL *easy;
    struct curl_slist *headers;
    char *url;
    bool read_pending;
    bool inflight;
    uint64_t sending_seq;
    void *send_buf;
    size_t send_len;
    char reply[REPLY_MAX + 1];
    size_t reply_len;
    unsigned attempt; /* consecutive failures */
    uint64_t last_send_mono_ms;
    uint64_t rng;

    /* heartbeat */
    Netpulse__UplinkState link_state;
    int64_t link_since_ms;
    struct np_spool_stats spool_stats;

    /* timers */
    uv_timer_t batch_timer; /* batch_interval */
    uv_timer_t retry_timer; /* backoff and drain spacing */
    uv_timer_t job_timer;   /* append retry */
    uv_timer_t sync_timer;  /* spool_fsync = interval */
    unsigned open_handles;
    bool started;

    bool closing;
    void (*close_done)(void *);
    void *close_arg;

    struct np_uplink_stats st;
    struct np_complain send_complain;
    struct np_complain auth_complain;
    struct np_complain spool_complain;
};

/* ---- small helpers ---- */

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static uint64_t rng_next(struct np_uplink *up)
{
    /* xorshift64*: jitter only, nothing secret */
    uint64_t x = up->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    up->rng = x;
    return x * UINT64_C(2685821657736338717);
}

static uint64_t u64_max(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static void kick_jobs(struct np_uplink *up);
static void kick_send(struct np_uplink *up);
static void check_closed(struct np_uplink *up);

/* ---- spool jobs ---- */

static void job_work(uv_work_t *w)
{
    struct job *j = w->data;
    struct np_spool *sp = j->up->spool;
    switch (j->op) {
    case JOB_APPEND:
        j->rc = np_spool_append(sp, j->seq, j->created_ms, j->data, j->len, &j->err);
        break;
    case JOB_READ:
        j->rc = 0;
        if (j->sync_first) {
            j->rc = np_spool_sync(sp, &j->err);
        }
        if (j->rc == 0) {
            j->rc = np_spool_read(sp, j->seq, &j->out_seq, &j->created_ms, &j->out_data,
                                  &j->out_len, &j->err);
        }
        break;
    case JOB_ACK:
        j->rc = np_spool_ack(sp, j->seq, &j->err);
        break;
    case JOB_SYNC:
        j->rc = np_spool_sync(sp, &j->err);
        break;
    }
    j->has_loss = np_spool_take_loss(sp, &j->loss);
    np_spool_stats(sp, &j->stats);
}

static void job_free(struct job *j)
{
    free(j->data);
    free(j->out_data);
    free(j);
}

static void job_push(struct np_uplink *up, struct job *j, bool front)
{
    if (front) {
        j->next = up->jobs_head;
        up->jobs_head = j;
        if (!up->jobs_tail) {
            up->jobs_tail = j;
        }
    } else {
        j->next = NULL;
        if (up->jobs_tail) {
            up->jobs_tail->next = j;
        } else {
            up->jobs_head = j;
        }
        up->jobs_tail = j;
    }
    kick_jobs(up);
}

static struct job *job_new(struct np_uplink *up, enum job_op op)
{
    struct job *j = calloc(1, sizeof *j);
    if (j) {
        j->up = up;
        j->op = op;
        j->work.data = j;
    }
    return j;
}

/* Adds an item to the builder; closes the batch and tries again when full. */
typedef int (*add_fn)(struct np_wire_builder *b, const void *item, struct np_err *err);
static int add_item(struct np_uplink *up, add_fn fn, const void *item, struct np_err *err);

static int add_event_fn(struct np_wire_builder *b, const void *item, struct np_err *err)
{
    return np_wire_builder_add_event(b, item, err);
}

static void report_loss(struct np_uplink *up, const struct np_spool_loss *loss)
{
    np_log(NP_LOG_ERR,
           "uplink: spool full, oldest data dropped batches=%" PRIu64 " first_seq=%" PRIu64
           " last_seq=%" PRIu64 " from_ms=%" PRId64 " to_ms=%" PRId64 " bytes=%" PRIu64,
           loss->batches, loss->first_seq, loss->last_seq, loss->from_ms, loss->to_ms, loss->bytes);
    char detail[200], from[32], to[32];
    np_clock_format_utc(loss->from_ms, from, sizeof from);
    np_clock_format_utc(loss->to_ms, to, sizeof to);
    snprintf(detail, sizeof detail,
             "spool full: %" PRIu64 " batches (%" PRIu64 " bytes) dropped, seq %" PRIu64
             "..%" PRIu64 ", data from %s to %s",
             loss->batches, loss->bytes, loss->first_seq, loss->last_seq, from, to);
    Netpulse__Event ev = NETPULSE__EVENT__INIT;
    ev.type = NETPULSE__EVENT_TYPE__EVENT_SPOOL_OVERFLOW;
    ev.time_ms = np_clock_wall_ms();
    ev.detail = detail;
    ev.first_seq = loss->first_seq;
    ev.last_seq = loss->last_seq;
    ev.from_ms = loss->from_ms;
    ev.to_ms = loss->to_ms;
    ev.batches = loss->batches;
    ev.bytes = loss->bytes;
    struct np_err err = {0};
    if (add_item(up, add_event_fn, &ev, &err) != 0) {
        np_log(NP_LOG_ERR, "uplink: overflow event not recorded err=%s", err.msg);
    }
}

static void on_sync_timer(uv_timer_t *t);
static void on_job_timer(uv_timer_t *t);

static void after_job(uv_work_t *w, int status)
{
    struct job *j = w->data;
    struct np_uplink *up = j->up;
    up->job_running = false;
    if (status != 0) { /* cancelled: never happens, jobs are not cancelled */
        j->rc = status;
    }
    if (status == 0) {
        up->spool_stats = j->stats;
    }
    if (j->has_loss) {
        report_loss(up, &j->loss);
    }
    switch (j->op) {
    case JOB_APPEND:
        if (j->rc != 0) {
            np_complain(&up->spool_complain, NP_LOG_ERR,
                        "uplink: spool append failed seq=%" PRIu64 " err=%s", j->seq, j->err.msg);
            if (up->closing) {
                np_log(NP_LOG_ERR, "uplink: batch lost at shutdown seq=%" PRIu64, j->seq);
                break;
            }
            /* The same seq again, later batches wait behind it. */
            j->rc = 0;
            j->has_loss = false;
            up->job_retry_wait = true;
            uv_timer_start(&up->job_timer, on_job_timer, APPEND_RETRY_MS, 0);
            job_push(up, j, true);
            return;
        }
        np_complain_release(&up->spool_complain, "uplink: spool append works again");
        up->spooled_seq = j->seq;
        if (up->fsync == NP_SPOOL_FSYNC_ALWAYS) {
            up->synced_seq = j->seq;
        } else if (up->fsync == NP_SPOOL_FSYNC_INTERVAL && !up->closing &&
                   !uv_is_active((uv_handle_t *)&up->sync_timer)) {
            uv_timer_start(&up->sync_timer, on_sync_timer, FSYNC_DELAY_MS, 0);
        }
        np_log(NP_LOG_DEBUG, "uplink: spooled seq=%" PRIu64 " bytes=%zu backlog=%" PRIu64, j->seq,
               j->len, j->stats.batches);
        break;
    case JOB_READ:
        up->read_pending = false;
        if (j->rc == 0 && j->sync_first) {
            up->synced_seq = u64_max(up->synced_seq, j->spooled_at_submit);
        }
        if (up->closing) {
            break;
        }
        if (j->rc == NP_ENODATA) {
            /* Everything up to what was spooled is acknowledged or dropped. */
            up->gone_seq = u64_max(up->gone_seq, j->spooled_at_submit);
        } else if (j->rc != 0) {
            np_complain(&up->spool_complain, NP_LOG_ERR, "uplink: spool read failed err=%s",
                        j->err.msg);
            up->gone_seq = u64_max(up->gone_seq, j->seq); /* nothing to retry from memory */
        } else {
            up->send_buf = j->out_data;
            up->send_len = j->out_len;
            up->sending_seq = j->out_seq;
            j->out_data = NULL;
        }
        break;
    case JOB_ACK:
        up->ack_job_queued = false;
        if (j->rc != 0) {
            np_complain(&up->spool_complain, NP_LOG_ERR,
                        "uplink: spool ack failed seq=%" PRIu64 " err=%s", j->seq, j->err.msg);
            up->spool_acked = 0; /* tried again with the next ack */
        }
        break;
    case JOB_SYNC:
        if (j->rc == 0) {
            up->synced_seq = u64_max(up->synced_seq, j->spooled_at_submit);
        } else {
            np_complain(&up->spool_complain, NP_LOG_ERR, "uplink: spool sync failed err=%s",
                        j->err.msg);
        }
        break;
    }
    job_free(j);
    kick_jobs(up);
    kick_send(up);
    check_closed(up);
}

static void kick_jobs(struct np_uplink *up)
{
    if (up->job_running || up->job_retry_wait || !up->jobs_head) {
        return;
    }
    struct job *j = up->jobs_head;
    up->jobs_head = j->next;
    if (!up->jobs_head) {
        up->jobs_tail = NULL;
    }
    j->next = NULL;
    j->work.data = j;
    int rc = uv_queue_work(up->loop, &j->work, job_work, after_job);
    if (rc != 0) {
        np_log(NP_LOG_ERR, "uplink: cannot queue spool work err=%s", uv_strerror(rc));
        job_push(up, j, true);
        return;
    }
    up->job_running = true;
}

static void on_job_timer(uv_timer_t *t)
{
    struct np_uplink *up = t->data;
    up->job_retry_wait = false;
    kick_jobs(up);
}

static void on_sync_timer(uv_timer_t *t)
{
    struct np_uplink *up = t->data;
    if (up->synced_seq >= up->spooled_seq) {
        return;
    }
    struct job *j = job_new(up, JOB_SYNC);
    if (j) {
        j->spooled_at_submit = up->spooled_seq;
        job_push(up, j, false);
    }
}

static void queue_ack(struct np_uplink *up)
{
    uint64_t target = up->acked_seq < up->spooled_seq ? up->acked_seq : up->spooled_seq;
    if (up->ack_job_queued || target <= up->spool_acked) {
        return;
    }
    struct job *j = job_new(up, JOB_ACK);
    if (!j) {
        return;
    }
    j->seq = target;
    up->spool_acked = target;
    up->ack_job_queued = true;
    job_push(up, j, false);
}

/* ---- batches ---- */

static void close_batch(struct np_uplink *up)
{
    Netpulse__Heartbeat hb = NETPULSE__HEARTBEAT__INIT;
    hb.uplink = up->link_state;
    hb.spool_batches = up->spool_stats.batches;
    hb.spool_bytes = up->spool_stats.bytes;
    hb.spool_oldest_ms = up->spool_stats.oldest_ms;
    hb.uplink_since_ms = up->link_since_ms;
    np_wire_builder_set_heartbeat(up->builder, &hb);
    uint8_t *buf = NULL;
    size_t len = 0;
    struct np_err err = {0};
    int64_t now = np_clock_wall_ms();
    uint64_t seq = up->next_seq;
    size_t items = np_wire_builder_count(up->builder);
    size_t samples = np_wire_builder_batch(up->builder)->n_samples;
    int rc = np_wire_builder_finish(up->builder, seq, now, &buf, &len, &err);
    np_wire_builder_reset(up->builder);
    if (rc != 0) {
        /* Items are checked as they are added, so this is a bug, not input. */
        np_log(NP_LOG_ERR, "uplink: batch could not be encoded seq=%" PRIu64 " err=%s", seq,
               err.msg);
        return;
    }
    struct job *j = job_new(up, JOB_APPEND);
    if (!j) {
        free(buf);
        np_log(NP_LOG_ERR, "uplink: batch lost seq=%" PRIu64 " err=out of memory", seq);
        return;
    }
    up->next_seq = seq + 1;
    np_log(NP_LOG_DEBUG, "uplink: batch closed seq=%" PRIu64 " items=%zu samples=%zu bytes=%zu",
           seq, items, samples, len);
    j->seq = seq;
    j->created_ms = now;
    j->data = buf;
    j->len = len;
    job_push(up, j, false);
}

static int add_item(struct np_uplink *up, add_fn fn, const void *item, struct np_err *err)
{
    if (up->closing && !up->builder) {
        return -ESHUTDOWN;
    }
    int rc = fn(up->builder, item, err);
    if (rc == NP_ETOOBIG && np_wire_builder_count(up->builder) > 0) {
        close_batch(up);
        rc = fn(up->builder, item, err);
    }
    if (rc == NP_EPROTO) {
        up->st.items_dropped++;
    }
    return rc;
}

static void on_batch_timer(uv_timer_t *t)
{
    struct np_uplink *up = t->data;
    close_batch(up);
}

/* ---- sending ---- */

static size_t on_reply(char *p, size_t size, size_t n, void *userp)
{
    struct np_uplink *up = userp;
    size_t len = size * n;
    size_t room = REPLY_MAX - up->reply_len;
    size_t take = len < room ? len : room;
    memcpy(up->reply + up->reply_len, p, take);
    up->reply_len += take;
    up->reply[up->reply_len] = '\0';
    return len;
}

static void on_retry_timer(uv_timer_t *t)
{
    kick_send(t->data);
}

static void retry_in(struct np_uplink *up, uint64_t ms)
{
    uv_timer_start(&up->retry_timer, on_retry_timer, ms, 0);
}

/* Exponential backoff, full jitter: uniform in [0, min(cap, base * 2^attempt)]. */
static uint64_t backoff_ms(struct np_uplink *up)
{
    uint64_t cap = (uint64_t)up->retry_max_ms;
    uint64_t ceil_ms = BACKOFF_BASE_MS;
    for (unsigned i = 0; i < up->attempt && ceil_ms < cap; i++) {
        ceil_ms *= 2;
    }
    if (ceil_ms > cap) {
        ceil_ms = cap;
    }
    uint64_t ms = rng_next(up) % (ceil_ms + 1);
    return ms < BACKOFF_MIN_MS ? BACKOFF_MIN_MS : ms;
}

static void send_failed(struct np_uplink *up, bool slow, const char *what)
{
    up->st.send_failures++;
    up->attempt++;
    uint64_t ms = slow ? (uint64_t)up->retry_max_ms : backoff_ms(up);
    np_complain(&up->send_complain, NP_LOG_WARN,
                "uplink: send failed url=%s seq=%" PRIu64 " err=%s retry_ms=%" PRIu64, up->url,
                up->sending_seq, what, ms);
    retry_in(up, ms);
}

static void on_acked(struct np_uplink *up, uint64_t ack)
{
    uint64_t sent = up->sending_seq;
    up->attempt = 0;
    up->st.batches_sent++;
    np_complain_release(&up->send_complain, "uplink: collector reachable url=%s backlog=%" PRIu64,
                        up->url, up->spooled_seq > ack ? up->spooled_seq - ack : 0);
    np_complain_release(&up->auth_complain, "uplink: collector accepts the token again");
    if (ack < sent) {
        /* 200 without covering the batch: the collector's state went back
         * (restored from a backup?). Resend from its position. */
        np_log(NP_LOG_WARN,
               "uplink: collector acknowledged less than sent seq=%" PRIu64 " ack=%" PRIu64, sent,
               ack);
        up->acked_seq = ack;
        up->gone_seq = ack;
        return;
    }
    if (ack >= up->next_seq) {
        /* The collector holds seqs this spool never wrote (the spool was
         * reset): batches numbered at or below its position would be taken as
         * duplicates, so numbering jumps past it. */
        np_log(NP_LOG_ERR,
               "uplink: collector is ahead of the spool ack=%" PRIu64 " next_seq=%" PRIu64
               "; numbering continues at %" PRIu64,
               ack, up->next_seq, ack + 1);
        up->next_seq = ack + 1;
    }
    up->acked_seq = u64_max(up->acked_seq, ack);
    up->gone_seq = u64_max(up->gone_seq, up->acked_seq);
    up->st.acked_seq = up->acked_seq;
    np_log(NP_LOG_DEBUG, "uplink: sent seq=%" PRIu64 " ack=%" PRIu64, sent, ack);
    queue_ack(up);
}

static void on_post_done(CURL *easy, CURLcode result, void *ctx)
{
    struct np_uplink *up = ctx;
    up->inflight = false;
    free(up->send_buf);
    up->send_buf = NULL;
    long code = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    char what[160];
    if (result != CURLE_OK) {
        snprintf(what, sizeof what, "%s", curl_easy_strerror(result));
        send_failed(up, false, what);
        return;
    }
    if (code == 200) {
        json_error_t jerr;
        json_t *root = json_loadb(up->reply, up->reply_len, 0, &jerr);
        json_t *ack = root ? json_object_get(root, "ack") : NULL;
        if (!json_is_integer(ack) || json_integer_value(ack) < 0) {
            json_decref(root);
            send_failed(up, false, "reply without {\"ack\": N}");
            return;
        }
        uint64_t n = (uint64_t)json_integer_value(ack);
        json_decref(root);
        on_acked(up, n);
        kick_send(up);
        return;
    }
    /* Keep the first line of the reason only; never the request. */
    char reason[96];
    size_t k = 0;
    while (k < up->reply_len && k < sizeof reason - 1 && up->reply[k] != '\n' &&
           up->reply[k] != '\r') {
        reason[k] = up->reply[k];
        k++;
    }
    reason[k] = '\0';
    snprintf(what, sizeof what, "HTTP %ld %s", code, reason);
    if (code == 401 || code == 403) {
        up->st.send_failures++;
        np_complain(&up->auth_complain, NP_LOG_ERR,
                    "uplink: collector refuses this agent url=%s status=%ld reason=\"%s\" "
                    "(check [agent] id and token; retry every %" PRId64 " ms)",
                    up->url, code, reason, up->retry_max_ms);
        retry_in(up, (uint64_t)up->retry_max_ms);
        return;
    }
    if (code == 429 || code >= 500) {
        send_failed(up, false, what);
        return;
    }
    /* 400, 413, 415 ...: the collector will not take this batch as it is;
     * keep it (nothing unacknowledged is deleted) and say so loudly. */
    np_complain(&up->auth_complain, NP_LOG_ERR,
                "uplink: collector refuses batch seq=%" PRIu64 " status=%ld reason=\"%s\"",
                up->sending_seq, code, reason);
    up->st.send_failures++;
    retry_in(up, (uint64_t)up->retry_max_ms);
}

static int post(struct np_uplink *up)
{
    CURL *e = up->easy;
    up->reply_len = 0;
    up->reply[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, up->url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, up->send_buf);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)up->send_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, up->headers);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)up->timeout_ms);
    curl_easy_setopt(
        e, CURLOPT_CONNECTTIMEOUT_MS,
        (long)(up->timeout_ms < CONNECT_TIMEOUT_MS ? up->timeout_ms : CONNECT_TIMEOUT_MS));
    curl_easy_setopt(e, CURLOPT_CAINFO, up->ca_file[0] ? up->ca_file : NULL);
    /* NULL leaves libcurl to the environment (https_proxy, no_proxy). */
    curl_easy_setopt(e, CURLOPT_PROXY, up->proxy[0] ? up->proxy : NULL);
    int rc = np_curl_uv_add(up->cu, e, on_post_done, up);
    if (rc != 0) {
        return rc;
    }
    up->inflight = true;
    up->last_send_mono_ms = uv_now(up->loop);
    return 0;
}

static void kick_send(struct np_uplink *up)
{
    if (up->closing || !up->started || up->inflight || up->read_pending ||
        uv_is_active((uv_handle_t *)&up->retry_timer)) {
        return;
    }
    if (up->send_buf) {
        int rc = post(up);
        if (rc != 0) {
            np_log(NP_LOG_ERR, "uplink: cannot start request err=%s", np_strerror(rc));
            retry_in(up, BACKOFF_BASE_MS);
        }
        return;
    }
    uint64_t done = u64_max(up->acked_seq, up->gone_seq);
    if (up->spooled_seq <= done) {
        return;
    }
    /* Backlog: at most drain_rate requests per second; the newest batch alone
     * is live and goes at once. */
    if (up->spooled_seq - done > 1) {
        uint64_t spacing = 1000u / up->drain_rate;
        uint64_t since = uv_now(up->loop) - up->last_send_mono_ms;
        if (up->last_send_mono_ms != 0 && since < spacing) {
            retry_in(up, spacing - since);
            return;
        }
    }
    struct job *j = job_new(up, JOB_READ);
    if (!j) {
        retry_in(up, BACKOFF_BASE_MS);
        return;
    }
    j->seq = done;
    j->spooled_at_submit = up->spooled_seq;
    j->sync_first = up->synced_seq < up->spooled_seq;
    up->read_pending = true;
    job_push(up, j, false);
}

/* ---- public ---- */

static int set_strings(struct np_uplink *up, const struct np_uplink_opts *o)
{
    char *coll = dup_or_empty(o->collector), *tok = dup_or_empty(o->token);
    char *ca = dup_or_empty(o->ca_file), *px = dup_or_empty(o->proxy);
    size_t clen = coll ? strlen(coll) : 0;
    while (clen > 0 && coll[clen - 1] == '/') {
        coll[--clen] = '\0';
    }
    size_t ulen = clen + sizeof "/api/v1/ingest";
    char *url = malloc(ulen);
    size_t hlen = (tok ? strlen(tok) : 0) + sizeof "Authorization: Bearer ";
    char *auth = malloc(hlen);
    struct curl_slist *h = NULL, *h2;
    if (coll && tok && ca && px && url && auth) {
        snprintf(url, ulen, "%s/api/v1/ingest", coll);
        snprintf(auth, hlen, "Authorization: Bearer %s", tok);
        h = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
        h2 = h ? curl_slist_append(h, "Expect:") : NULL;
        h = h2 && tok[0] ? curl_slist_append(h2, auth) : h2;
    }
    if (auth) {
        memset(auth, 0, hlen);
        free(auth);
    }
    if (!h) {
        free(coll);
        free(tok);
        free(ca);
        free(px);
        free(url);
        return -ENOMEM;
    }
    free(up->collector_url);
    if (up->token) {
        memset(up->token, 0, strlen(up->token));
        free(up->token);
    }
    free(up->ca_file);
    free(up->proxy);
    free(up->url);
    curl_slist_free_all(up->headers);
    up->collector_url = coll;
    up->token = tok;
    up->ca_file = ca;
    up->proxy = px;
    up->url = url;
    up->headers = h;
    up->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
    up->drain_rate = o->drain_rate > 0 ? o->drain_rate : 1;
    up->retry_max_ms = o->retry_max_ms >= 1000 ? o->retry_max_ms : 1000;
    return 0;
}

static void handle_closed(uv_handle_t *h)
{
    struct np_uplink *up = h->data;
    up->open_handles--;
    check_closed(up);
}

int np_uplink_open(uv_loop_t *loop, struct np_curl_uv *cu, const struct np_uplink_opts *o,
                   struct np_uplink **out, struct np_err *err)
{
    *out = NULL;
    if (!o->agent_id || !o->spool_dir || o->batch_interval_ms <= 0) {
        return np_err_set(err, NP_ECONFIG, "uplink: agent id, spool_dir and batch_interval needed");
    }
    struct np_uplink *up = calloc(1, sizeof *up);
    if (!up) {
        return np_err_set(err, -ENOMEM, "uplink: out of memory");
    }
    up->loop = loop;
    up->cu = cu;
    up->fsync = o->spool_fsync;
    up->batch_interval_ms = o->batch_interval_ms;
    up->rng = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ UINT64_C(0x9e3779b97f4a7c15);
    int rc;
    up->agent_id = strdup(o->agent_id);
    if (!up->agent_id || set_strings(up, o) != 0) {
        rc = np_err_set(err, -ENOMEM, "uplink: out of memory");
        goto out_free;
    }
    struct np_wire_limits lim = np_wire_default_limits;
    lim.max_bytes = BATCH_MAX_BYTES;
    rc = np_wire_builder_new(o->agent_id, o->agent_version ? o->agent_version : "",
                             o->agent_start_ms, &lim, &up->builder, err);
    if (rc != 0) {
        goto out_free;
    }
    struct np_spool_opts so = {.max_bytes = o->spool_max_bytes, .fsync = o->spool_fsync};
    rc = np_spool_open(o->spool_dir, &so, &up->spool, err);
    if (rc != 0) {
        goto out_free;
    }
    up->easy = curl_easy_init();
    if (!up->easy) {
        rc = np_err_set(err, -ENOMEM, "uplink: curl_easy_init failed");
        goto out_free;
    }
    curl_easy_setopt(up->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(up->easy, CURLOPT_WRITEFUNCTION, on_reply);
    curl_easy_setopt(up->easy, CURLOPT_WRITEDATA, up);
    curl_easy_setopt(up->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(up->easy, CURLOPT_USERAGENT, "netpulse-agent");
    curl_easy_setopt(up->easy, CURLOPT_PROTOCOLS_STR, "https,http");

    up->spooled_seq = np_spool_last_seq(up->spool);
    up->synced_seq = up->spooled_seq; /* what open found is on disk */
    up->acked_seq = np_spool_acked_seq(up->spool);
    up->spool_acked = up->acked_seq;
    up->gone_seq = up->acked_seq;
    up->next_seq = up->spooled_seq + 1;
    np_spool_stats(up->spool, &up->spool_stats);
    struct np_spool_loss loss;
    if (np_spool_take_loss(up->spool, &loss)) {
        report_loss(up, &loss);
    }
    uv_timer_t *timers[] = {&up->batch_timer, &up->retry_timer, &up->job_timer, &up->sync_timer};
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = up;
        up->open_handles++;
    }
    np_log(NP_LOG_INFO,
           "uplink: spool opened dir=%s next_seq=%" PRIu64 " acked=%" PRIu64 " backlog=%" PRIu64
           " bytes=%" PRIu64,
           o->spool_dir, up->next_seq, up->acked_seq, up->spool_stats.batches,
           up->spool_stats.bytes);
    *out = up;
    return 0;

out_free:
    np_uplink_free(up);
    return rc;
}

int np_uplink_start(struct np_uplink *up)
{
    up->started = true;
    uint64_t ms = (uint64_t)up->batch_interval_ms;
    int rc = uv_timer_start(&up->batch_timer, on_batch_timer, ms, ms);
    kick_send(up);
    return rc;
}

int np_uplink_reconfigure(struct np_uplink *up, const struct np_uplink_opts *o)
{
    int rc = set_strings(up, o);
    if (rc == 0 && uv_is_active((uv_handle_t *)&up->retry_timer)) {
        uv_timer_stop(&up->retry_timer);
        up->attempt = 0;
        kick_send(up);
    }
    return rc;
}

static int add_sample_fn(struct np_wire_builder *b, const void *item, struct np_err *err)
{
    return np_wire_builder_add_sample(b, item, err);
}
static int add_device_fn(struct np_wire_builder *b, const void *item, struct np_err *err)
{
    return np_wire_builder_add_device(b, item, err);
}
static int add_flow_fn(struct np_wire_builder *b, const void *item, struct np_err *err)
{
    return np_wire_builder_add_flow_summary(b, item, err);
}
static int add_probe_fn(struct np_wire_builder *b, const void *item, struct np_err *err)
{
    return np_wire_builder_add_probe(b, item, err);
}

int np_uplink_add_sample(struct np_uplink *up, const Netpulse__InterfaceSample *s,
                         struct np_err *err)
{
    return up->closing ? -ESHUTDOWN : add_item(up, add_sample_fn, s, err);
}

int np_uplink_add_device(struct np_uplink *up, const Netpulse__DeviceInfo *d, struct np_err *err)
{
    return up->closing ? -ESHUTDOWN : add_item(up, add_device_fn, d, err);
}

int np_uplink_add_flow_summary(struct np_uplink *up, const Netpulse__FlowSummary *f,
                               struct np_err *err)
{
    return up->closing ? -ESHUTDOWN : add_item(up, add_flow_fn, f, err);
}

int np_uplink_add_probe(struct np_uplink *up, const Netpulse__ProbeResult *p, struct np_err *err)
{
    return up->closing ? -ESHUTDOWN : add_item(up, add_probe_fn, p, err);
}

int np_uplink_add_event(struct np_uplink *up, const Netpulse__Event *e, struct np_err *err)
{
    return up->closing ? -ESHUTDOWN : add_item(up, add_event_fn, e, err);
}

int np_uplink_add_with(struct np_uplink *up, np_uplink_add_cb add, void *arg, struct np_err *err)
{
    if (up->closing) {
        return -ESHUTDOWN;
    }
    int rc = add(up->builder, arg, err);
    if (rc == NP_ETOOBIG && np_wire_builder_count(up->builder) > 0) {
        close_batch(up);
        rc = add(up->builder, arg, err);
    }
    if (rc == NP_EPROTO) {
        up->st.items_dropped++;
    }
    return rc;
}

void np_uplink_set_link_state(struct np_uplink *up, Netpulse__UplinkState state, int64_t since_ms)
{
    up->link_state = state;
    up->link_since_ms = since_ms;
}

void np_uplink_flush(struct np_uplink *up)
{
    if (!up->closing) {
        close_batch(up);
    }
}

void np_uplink_get_stats(const struct np_uplink *up, struct np_uplink_stats *st)
{
    *st = up->st;
    st->next_seq = up->next_seq;
    st->acked_seq = up->acked_seq;
    st->spooled_seq = up->spooled_seq;
    st->spool = up->spool_stats;
}

static void check_closed(struct np_uplink *up)
{
    if (!up->closing || up->job_running || up->jobs_head) {
        return;
    }
    if (!uv_is_closing((uv_handle_t *)&up->batch_timer)) {
        uv_timer_t *timers[] = {&up->batch_timer, &up->retry_timer, &up->job_timer,
                                &up->sync_timer};
        for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
            uv_close((uv_handle_t *)timers[i], handle_closed);
        }
        return;
    }
    if (up->open_handles == 0 && up->close_done) {
        void (*done)(void *) = up->close_done;
        up->close_done = NULL;
        done(up->close_arg);
    }
}

void np_uplink_close(struct np_uplink *up, void (*done)(void *arg), void *arg)
{
    close_batch(up); /* the last batch goes to the spool */
    up->closing = true;
    up->close_done = done;
    up->close_arg = arg;
    uv_timer_stop(&up->batch_timer);
    uv_timer_stop(&up->retry_timer);
    uv_timer_stop(&up->sync_timer);
    if (up->job_retry_wait) {
        uv_timer_stop(&up->job_timer);
        up->job_retry_wait = false;
        kick_jobs(up);
    }
    if (up->inflight) {
        np_curl_uv_cancel(up->cu, up->easy);
        up->inflight = false;
    }
    free(up->send_buf);
    up->send_buf = NULL;
    np_log(NP_LOG_INFO, "uplink: closing next_seq=%" PRIu64 " acked=%" PRIu64, up->next_seq,
           up->acked_seq);
    check_closed(up);
}

void np_uplink_free(struct np_uplink *up)
{
    if (!up) {
        return;
    }
    if (up->spool) {
        np_spool_close(up->spool);
    }
    np_wire_builder_free(up->builder);
    if (up->easy) {
        curl_easy_cleanup(up->easy);
    }
    curl_slist_free_all(up->headers);
    while (up->jobs_head) {
        struct job *j = up->jobs_head;
        up->jobs_head = j->next;
        job_free(j);
    }
    free(up->send_buf);
    free(up->agent_id);
    free(up->collector_url);
    if (up->token) {
        memset(up->token, 0, strlen(up->token));
        free(up->token);
    }
    free(up->ca_file);
    free(up->proxy);
    free(up->url);
    free(up);
}
