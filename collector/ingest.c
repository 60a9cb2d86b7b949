/* ingest: authenticated batch ingest with a group-committed journal; see ingest.h. */
#include "ingest.h"

#include "alerter.h"
#include "http_parse.h"
#include "http_server.h"
#include "iface_key.h"
#include "journal.h"
#include "outage.h"
#include "rrd_store.h"
#include "state_db.h"

#include "netpulse/clock.h"
#include "netpulse/log.h"
#include "netpulse/wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_MAX 128
/* Refuse new batches (503, the agent keeps them in its spool) while this many
 * decoded batches wait to be applied or decoded (memory: a decoded 1,000-sample
 * batch is about 250 KiB; 64 of them are half a second of applying, enough to
 * keep the apply job busy), or while the journal holds more than half its
 * byte bound unacknowledged: at the bound the spool under it would drop the
 * oldest records, acknowledged data. */
#define APPLY_QUEUE_MAX 64u
#define JOURNAL_BYTES_MAX (NP_JOURNAL_MAX_BYTES / 2)
#define BACKLOG_FULL "ingest backlog full, retry later"
/* While the apply queue is full, requests wait (parked, body copied, not yet
 * decoded) rather than being refused at once: one per agent in the usual
 * case, answered in arrival order, without the work of a refused request and
 * its retry. Past these bounds they get the 503. */
#define PARK_MAX 4096u
#define PARK_BYTES_MAX (64u << 20)
/* Retry-After of every 503 here (backlog full, journal failing, shutting
 * down): a backlog past the park bounds or a restart takes seconds. Our agent
 * backs off on its own; other clients get the hint. */
#define RETRY_AFTER_S "5"
#define JOURNAL_RECORD_OVERHEAD 32u
#define ALERT_EVENTS_MAX 256u  /* alert inputs taken from one batch; more are dropped */
#define ALERT_REPLAY_MAX 4096u /* ... from the batches applied by the replay at open */
/* Apply jobs in flight at once, each of a different agent (libuv's pool has
 * 4 threads; one stays free for decoding): RRD writes of different agents
 * overlap, SQLite stays one connection under db_mu. */
#define APPLY_JOBS_MAX 3u

/* An alert input (alert_rules.h) taken from an applied batch's events: a
 * plain copy made in the apply job, fed to the alerter on the loop. */
struct alert_event {
    enum np_alert_input_kind kind;
    bool up;
    int64_t time_ms, start_ms, end_ms;
    char site[NP_ALERT_ID_MAX + 1];
    char subject[NP_ALERT_SUBJECT_MAX];
};

/* What one agent has, as far as the loop knows. */
struct agent_state {
    char id[NP_STATE_DB_MAX_ID + 1];
    uint64_t durable_seq;  /* highest seq durable (journal synced or applied) */
    uint64_t accepted_seq; /* highest seq handed to the journal */
};

struct np_ingest {
    uv_loop_t *loop;
    struct np_journal *journal;
    struct np_state_db *apply_db; /* apply jobs only, under db_mu */
    uv_mutex_t db_mu;
    struct np_state_db *auth_db;  /* auth jobs, under auth_mu */
    uv_mutex_t auth_mu;
    struct np_rrd_store *rrd;
    struct np_metrics *metrics;
    uint64_t max_body_bytes;

    struct agent_state *agents; /* sorted by id */
    size_t n_agents, cap_agents;

    /* Durable records in journal order, queued, running or done, until every
     * record before them is done too: the journal's applied position only
     * moves over a fully applied prefix (apply_release). */
    struct ingest_req *apply_head, *apply_tail;
    uint64_t apply_len;     /* records in that list */
    unsigned apply_running; /* of which in an apply job (at most APPLY_JOBS_MAX) */
    bool apply_broken;      /* an apply failed: stop acknowledging, a restart replays */
    uint64_t journal_bytes; /* appended and not yet acknowledged as applied */

    /* Outages (outage.h): heard and tick on the loop, batches in the apply
     * jobs; all under outage_mu. Rows are written by the apply jobs only. */
    struct np_outage_tracker *outages;
    uv_mutex_t outage_mu;
    uv_timer_t *outage_timer; /* heap: freed in its close callback */
    bool outage_flush_queued;

    unsigned inflight; /* requests between handle and reply */
    unsigned decoding;   /* of which in the decode job */
    unsigned journaling; /* of which waiting for the journal */
    struct ingest_req *park_head, *park_tail; /* of which waiting for room */
    unsigned parked;
    uint64_t parked_bytes;
    bool closing;
    void (*on_drained)(void *);
    void *on_drained_arg;
    struct np_complain apply_complain;

    /* Alerts: the events of applied batches go to the alerter (loop thread);
     * those of batches applied at open wait in replay_events until it is set. */
    struct np_alerter *alerter;
    struct alert_event *replay_events;
    size_t n_replay_events, cap_replay_events;
};

struct ingest_req {
    struct np_ingest *ing;
    struct np_http_pending *pending;
    uv_work_t work;
    char token[TOKEN_MAX + 1];
    uint8_t *body; /* copy of the request body (the request may die meanwhile) */
    size_t body_len;
    bool gzip;

    /* results of the work job */
    int http_status;
    enum np_reject_reason reject;
    char reason[256];
    uint8_t *raw; /* the protobuf bytes (inflated, or body itself) */
    size_t raw_len;
    Netpulse__Batch *batch;
    char agent[NP_STATE_DB_MAX_ID + 1];
    uint64_t db_applied_seq;

    /* journal and apply */
    struct np_journal_req jreq;
    bool is_barrier;
    bool outage_flush; /* not a batch: writes changed outages (apply queue) */
    uint64_t jseq;
    double rrd_s;
    int apply_rc;
    bool applied;
    enum { APPLY_QUEUED, APPLY_RUNNING, APPLY_DONE } apply_state;
    bool apply_ok;
    char apply_msg[256];
    struct alert_event *events; /* set by the apply job when the batch was applied */
    size_t n_events;
    struct ingest_req *next;
};

static void req_free(struct ingest_req *r)
{
    if (!r) {
        return;
    }
    np_http_pending_free(r->pending);
    if (r->raw != r->body) {
        free(r->raw);
    }
    free(r->body);
    np_wire_free(r->batch);
    free(r->events);
    explicit_bzero(r->token, sizeof r->token);
    free(r);
}

/* ---- agents ---- */

static struct agent_state *agent_get(struct np_ingest *ing, const char *id)
{
    size_t lo = 0, hi = ing->n_agents;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ing->agents[mid].id, id);
        if (c == 0) {
            return &ing->agents[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (ing->n_agents == ing->cap_agents) {
        size_t cap = ing->cap_agents ? ing->cap_agents * 2 : 16;
        struct agent_state *a = realloc(ing->agents, cap * sizeof *a);
        if (!a) {
            return NULL;
        }
        ing->agents = a;
        ing->cap_agents = cap;
    }
    memmove(&ing->agents[lo + 1], &ing->agents[lo], (ing->n_agents - lo) * sizeof *ing->agents);
    struct agent_state *st = &ing->agents[lo];
    memset(st, 0, sizeof *st);
    snprintf(st->id, sizeof st->id, "%s", id);
    ing->n_agents++;
    return st;
}

/* ---- replies ---- */

static void check_drained(struct np_ingest *ing)
{
    if (ing->closing && ing->on_drained && ing->inflight == 0 && !ing->apply_head &&
        !ing->apply_running) {
        void (*cb)(void *) = ing->on_drained;
        ing->on_drained = NULL;
        cb(ing->on_drained_arg);
    }
}

static void reply_text(struct np_http_pending *p, int status, const char *reason, const char *text)
{
    char body[300];
    int n = snprintf(body, sizeof body, "%s\n", text);
    if (n < 0) {
        n = 0;
    }
    if ((size_t)n >= sizeof body) {
        n = (int)sizeof body - 1;
    }
    np_http_pending_reply(p, status, reason, "text/plain; charset=utf-8", body, (size_t)n);
}

static const char *status_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

/* Ends r with an error answer and frees it. */
static void finish_reject(struct ingest_req *r, int status, enum np_reject_reason why,
                          const char *text)
{
    struct np_ingest *ing = r->ing;
    ing->metrics->rejects_total[why]++;
    np_log(NP_LOG_INFO, "ingest: rejected status=%d reason=%s agent=%s detail=\"%s\"", status,
           np_metrics_reject_name(why), r->agent[0] ? r->agent : "-", text);
    struct st_h2o_req_t *req = np_http_pending_req(r->pending);
    if (status == 503 && req) {
        np_http_add_header(req, "retry-after", RETRY_AFTER_S);
    }
    reply_text(r->pending, status, status_reason(status), text);
    r->pending = NULL;
    req_free(r);
    ing->inflight--;
    check_drained(ing);
}

static void reply_ack(struct np_http_pending *p, uint64_t ack)
{
    char body[64];
    int n = snprintf(body, sizeof body, "{\"ack\": %" PRIu64 "}\n", ack);
    np_http_pending_reply(p, 200, "OK", "application/json", body, (size_t)n);
}

/* ---- step 1: work job ---- */

static void set_result(struct ingest_req *r, int status, enum np_reject_reason why, const char *msg)
{
    r->http_status = status;
    r->reject = why;
    snprintf(r->reason, sizeof r->reason, "%s", msg);
}

/* Runs in a libuv pool thread. */
static void work_decode(uv_work_t *w)
{
    struct ingest_req *r = w->data;
    struct np_ingest *ing = r->ing;
    struct np_err err = {0};

    uv_mutex_lock(&ing->auth_mu);
    int rc = np_state_db_agent_auth(ing->auth_db, r->token, r->agent, sizeof r->agent);
    uint64_t applied = 0;
    if (rc == 0) {
        /* Cannot fail for an agent just authenticated, short of the database
         * itself failing; then 0 only makes a duplicate look new, and applying
         * skips it anyway. */
        (void)np_state_db_applied_seq(ing->auth_db, r->agent, &applied, NULL);
    }
    uv_mutex_unlock(&ing->auth_mu);
    explicit_bzero(r->token, sizeof r->token);
    if (rc == NP_EAUTH) {
        r->agent[0] = '\0';
        set_result(r, 401, NP_REJECT_UNAUTHORIZED, "unknown or revoked token");
        return;
    }
    if (rc != 0) {
        r->agent[0] = '\0';
        set_result(r, 503, NP_REJECT_UNAVAILABLE, "cannot check the token now");
        return;
    }
    r->db_applied_seq = applied;

    if (r->gzip) {
        rc = np_http_gunzip(r->body, r->body_len, NP_WIRE_MAX_BATCH_BYTES, &r->raw, &r->raw_len,
                            &err);
        if (rc != 0) {
            set_result(r,
                       rc == NP_ETOOBIG ? 413
                       : rc == -ENOMEM  ? 503
                                        : 400,
                       rc == NP_ETOOBIG ? NP_REJECT_TOO_LARGE
                       : rc == -ENOMEM  ? NP_REJECT_UNAVAILABLE
                                        : NP_REJECT_MALFORMED,
                       err.msg);
            return;
        }
    } else {
        r->raw = r->body;
        r->raw_len = r->body_len;
    }
    rc = np_wire_decode(r->raw, r->raw_len, NULL, &r->batch, &err);
    if (rc != 0) {
        switch (rc) {
        case NP_ETOOBIG:
            set_result(r, 413, NP_REJECT_TOO_LARGE, err.msg);
            break;
        case NP_EVERSION:
            set_result(r, 400, NP_REJECT_VERSION, err.msg);
            break;
        case NP_EPROTO:
            set_result(r, 400, NP_REJECT_MALFORMED, err.msg);
            break;
        default:
            set_result(r, 503, NP_REJECT_UNAVAILABLE, err.msg);
            break;
        }
        return;
    }
    if (strcmp(r->batch->agent_id, r->agent) != 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "batch for agent \"%.64s\", token of agent \"%s\"",
                 r->batch->agent_id, r->agent);
        set_result(r, 403, NP_REJECT_FORBIDDEN, msg);
        return;
    }
    r->http_status = 200;
}

/* ---- step 3: journal done ---- */

static void apply_kick(struct np_ingest *ing);
static void unpark(struct np_ingest *ing);

static void on_journal_done(struct np_journal_req *jr, int status)
{
    struct ingest_req *r = (struct ingest_req *)((char *)jr - offsetof(struct ingest_req, jreq));
    struct np_ingest *ing = r->ing;
    ing->journaling--;
    struct agent_state *st = agent_get(ing, r->agent);
    if (status != 0) {
        if (!r->is_barrier) {
            ing->journal_bytes -= r->raw_len + JOURNAL_RECORD_OVERHEAD;
            if (st) {
                /* Not in the journal: let the agent's retry be taken as new. */
                st->accepted_seq = st->durable_seq;
            }
        }
        char msg[128];
        snprintf(msg, sizeof msg, "journal: %s", np_strerror(status));
        finish_reject(r, 503, NP_REJECT_UNAVAILABLE, msg);
        unpark(ing);
        return;
    }
    uint64_t ack = 0;
    if (st) {
        if (!r->is_barrier && r->batch->seq > st->durable_seq) {
            st->durable_seq = r->batch->seq;
        }
        ack = st->durable_seq;
    }
    reply_ack(r->pending, ack);
    r->pending = NULL;
    ing->inflight--;
    if (r->is_barrier) {
        ing->metrics->duplicates_total++;
        req_free(r);
        unpark(ing);
        check_drained(ing);
        return;
    }
    ing->metrics->batches_total++;
    ing->metrics->samples_total += r->batch->n_samples;
    np_metrics_agent_seen(ing->metrics, r->agent, r->batch->created_ms);
    /* The bytes are on disk; only the decoded batch is needed from here. */
    if (r->raw != r->body) {
        free(r->raw);
    }
    free(r->body);
    r->raw = r->body = NULL;
    r->jseq = jr->jseq;
    r->next = NULL;
    if (ing->apply_tail) {
        ing->apply_tail->next = r;
    } else {
        ing->apply_head = r;
    }
    ing->apply_tail = r;
    ing->apply_len++;
    apply_kick(ing);
}

/* ---- outages ---- */

/* Any valid batch from an agent is a heartbeat, duplicates too. Loop thread. */
static void outage_heard(struct np_ingest *ing, const Netpulse__Batch *b)
{
    const Netpulse__Heartbeat *hb = b->heartbeat;
    uv_mutex_lock(&ing->outage_mu);
    (void)np_outage_heard(ing->outages, b->agent_id, (int64_t)np_clock_mono_ms(),
                          np_clock_wall_ms(), b->created_ms, hb ? hb->spool_batches : 0,
                          hb ? hb->spool_oldest_ms : 0);
    uv_mutex_unlock(&ing->outage_mu);
}

/* Writes the outages of every agent whose list changed (in the caller's
 * transaction if one is open). Blocking: apply job or before the loop runs. */
static int outage_sync_dirty(struct np_ingest *ing, struct np_err *err)
{
    struct np_outage_rec *recs = malloc(NP_OUTAGE_MAX_OUTAGES * sizeof *recs);
    char id[NP_OUTAGE_AGENT_MAX + 1];
    int rc = 0;
    if (!recs) {
        return np_err_set(err, -ENOMEM, "ingest: out of memory");
    }
    for (;;) {
        size_t n = 0;
        int64_t window_from = 0;
        uv_mutex_lock(&ing->outage_mu);
        bool any = np_outage_pop_dirty(ing->outages, id, sizeof id);
        if (any) {
            (void)np_outage_get(ing->outages, id, recs, NP_OUTAGE_MAX_OUTAGES, &n, &window_from);
        }
        uv_mutex_unlock(&ing->outage_mu);
        if (!any) {
            break;
        }
        if (n == NP_OUTAGE_MAX_OUTAGES && recs[0].start_ms > window_from) {
            window_from = recs[0].start_ms; /* older ones fell off the list, not out of the db */
        }
        unsigned changes = 0;
        rc = np_state_db_outages_sync(ing->apply_db, id, window_from, recs, n, &changes, err);
        if (rc != 0) {
            break;
        }
        if (changes) {
            const struct np_outage_rec *last = n ? &recs[n - 1] : NULL;
            np_log(
                NP_LOG_INFO,
                "outage: updated agent=%s outages=%zu rows_changed=%u newest=%s/%s start_ms=%lld "
                "end_ms=%lld",
                id, n, changes, last ? np_outage_rec_cause_name(last->cause) : "none",
                last ? np_outage_rec_state_name(last->state) : "none",
                last ? (long long)last->start_ms : 0LL, last ? (long long)last->end_ms : 0LL);
        }
    }
    free(recs);
    return rc;
}

static void apply_kick(struct np_ingest *ing);

/* Every second: silent agents open suspected outages at once; changed
 * outages are written by a flush job in the apply queue. */
static void on_outage_tick(uv_timer_t *t)
{
    struct np_ingest *ing = t->data;
    uv_mutex_lock(&ing->outage_mu);
    np_outage_tick(ing->outages, (int64_t)np_clock_mono_ms());
    size_t dirty = np_outage_dirty_count(ing->outages);
    uv_mutex_unlock(&ing->outage_mu);
    if (dirty == 0 || ing->outage_flush_queued || ing->closing) {
        return;
    }
    struct ingest_req *r = calloc(1, sizeof *r);
    if (!r) {
        return; /* the next tick tries again */
    }
    r->ing = ing;
    r->outage_flush = true;
    if (ing->apply_tail) {
        ing->apply_tail->next = r;
    } else {
        ing->apply_head = r;
    }
    ing->apply_tail = r;
    ing->apply_len++;
    ing->outage_flush_queued = true;
    apply_kick(ing);
}

static void free_timer(uv_handle_t *h)
{
    free(h);
}

/* ---- step 2: back on the loop after decoding ---- */

/* Admission: batches being decoded, journaled or applied. */
static bool backlog_full(const struct np_ingest *ing)
{
    return ing->apply_len + ing->decoding + ing->journaling >= APPLY_QUEUE_MAX;
}

/* Sends a decoded request on: refused, answered as a duplicate, or counted
 * in journaling and handed to the journal. */
static void route_decoded(struct ingest_req *r, int status)
{
    struct np_ingest *ing = r->ing;
    if (status != 0) {
        finish_reject(r, 503, NP_REJECT_UNAVAILABLE, "cancelled");
        return;
    }
    if (r->http_status != 200) {
        finish_reject(r, r->http_status, r->reject, r->reason);
        return;
    }
    outage_heard(ing, r->batch);
    if (ing->closing) {
        finish_reject(r, 503, NP_REJECT_UNAVAILABLE, "collector is shutting down");
        return;
    }
    struct agent_state *st = agent_get(ing, r->agent);
    if (!st) {
        finish_reject(r, 503, NP_REJECT_UNAVAILABLE, "out of memory");
        return;
    }
    if (r->db_applied_seq > st->durable_seq) {
        st->durable_seq = r->db_applied_seq;
    }
    if (st->accepted_seq < st->durable_seq) {
        st->accepted_seq = st->durable_seq;
    }
    uint64_t seq = r->batch->seq;
    if (seq <= st->durable_seq) {
        /* Held already: same answer, nothing changes. */
        ing->metrics->duplicates_total++;
        reply_ack(r->pending, st->durable_seq);
        r->pending = NULL;
        req_free(r);
        ing->inflight--;
        check_drained(ing);
        return;
    }
    if (ing->journal_bytes + r->raw_len + JOURNAL_RECORD_OVERHEAD > JOURNAL_BYTES_MAX) {
        finish_reject(r, 503, NP_REJECT_UNAVAILABLE, BACKLOG_FULL);
        return;
    }
    r->jreq.done = on_journal_done;
    if (seq <= st->accepted_seq) {
        /* The same batch is on its way to the disk in another request: answer
         * when the sync that covers it is done. */
        r->is_barrier = true;
        r->jreq.data = NULL;
        r->jreq.len = 0;
    } else {
        st->accepted_seq = seq;
        ing->journal_bytes += r->raw_len + JOURNAL_RECORD_OVERHEAD;
        r->jreq.data = r->raw;
        r->jreq.len = r->raw_len;
    }
    ing->journaling++;
    np_journal_submit(ing->journal, &r->jreq);
}

static void after_decode(uv_work_t *w, int status)
{
    struct ingest_req *r = w->data;
    struct np_ingest *ing = r->ing;
    ing->decoding--;
    route_decoded(r, status);
    /* Only now: before, r counted nowhere and its room went to a parked
     * request, one batch over APPLY_QUEUE_MAX once r was journaled. */
    unpark(ing);
}

/* ---- entry ---- */

static void start_decode(struct ingest_req *r)
{
    int rc = uv_queue_work(r->ing->loop, &r->work, work_decode, after_decode);
    if (rc != 0) {
        finish_reject(r, 503, NP_REJECT_UNAVAILABLE, "cannot queue work");
        return;
    }
    r->ing->decoding++;
}

/* Decodes parked requests while there is room, in arrival order; when
 * closing, refuses them all. */
static void unpark(struct np_ingest *ing)
{
    while (ing->park_head && (ing->closing || !backlog_full(ing))) {
        struct ingest_req *r = ing->park_head;
        ing->park_head = r->next;
        if (!ing->park_head) {
            ing->park_tail = NULL;
        }
        r->next = NULL;
        ing->parked--;
        ing->parked_bytes -= r->body_len;
        if (ing->closing) {
            finish_reject(r, 503, NP_REJECT_UNAVAILABLE, "collector is shutting down");
        } else {
            start_decode(r);
        }
    }
}

int np_ingest_handle(void *ctx, struct st_h2o_req_t *req)
{
    struct np_ingest *ing = ctx;
    if (!np_http_view_is(np_http_method(req), "POST")) {
        ing->metrics->rejects_total[NP_REJECT_MALFORMED]++;
        np_http_reply(req, 405, "Method Not Allowed", "text/plain; charset=utf-8", "POST only\n",
                      10);
        return 0;
    }
    struct ingest_req *r = calloc(1, sizeof *r);
    if (!r) {
        np_http_reply(req, 503, "Service Unavailable", "text/plain", "out of memory\n", 14);
        return 0;
    }
    r->ing = ing;
    r->work.data = r;
    r->pending = np_http_pending_new(req);
    if (!r->pending) {
        free(r);
        np_http_reply(req, 503, "Service Unavailable", "text/plain", "out of memory\n", 14);
        return 0;
    }
    ing->inflight++;
    if (ing->closing) {
        finish_reject(r, 503, NP_REJECT_UNAVAILABLE, "collector is shutting down");
        return 0;
    }
    struct np_http_view auth = np_http_header(req, "authorization");
    if (np_http_bearer_token(auth.base, auth.len, r->token, sizeof r->token) != 0) {
        finish_reject(r, 401, NP_REJECT_UNAUTHORIZED, "missing or malformed bearer token");
        return 0;
    }
    struct np_http_view enc = np_http_header(req, "content-encoding");
    if (enc.base && np_http_view_is(enc, "gzip")) {
        r->gzip = true;
    } else if (enc.base && !np_http_view_is(enc, "identity")) {
        finish_reject(r, 415, NP_REJECT_MALFORMED, "Content-Encoding must be gzip or identity");
        return 0;
    }
    struct np_http_view body = np_http_body(req);
    if (body.len == 0) {
        finish_reject(r, 400, NP_REJECT_MALFORMED, "empty body");
        return 0;
    }
    if (body.len > ing->max_body_bytes) {
        char msg[128];
        snprintf(msg, sizeof msg, "body of %zu bytes, over the %" PRIu64 "-byte limit (max_body)",
                 body.len, ing->max_body_bytes);
        finish_reject(r, 413, NP_REJECT_TOO_LARGE, msg);
        return 0;
    }
    r->body = malloc(body.len);
    if (!r->body) {
        finish_reject(r, 503, NP_REJECT_UNAVAILABLE, "out of memory");
        return 0;
    }
    memcpy(r->body, body.base, body.len);
    r->body_len = body.len;
    if (ing->park_head || backlog_full(ing)) {
        /* Before decoding: waiting or refused costs no decode work. */
        if (ing->parked >= PARK_MAX || ing->parked_bytes + body.len > PARK_BYTES_MAX) {
            finish_reject(r, 503, NP_REJECT_UNAVAILABLE, BACKLOG_FULL);
            return 0;
        }
        r->next = NULL;
        if (ing->park_tail) {
            ing->park_tail->next = r;
        } else {
            ing->park_head = r;
        }
        ing->park_tail = r;
        ing->parked++;
        ing->parked_bytes += body.len;
        return 0;
    }
    start_decode(r);
    return 0;
}

/* ---- step 4: applying ---- */

/* Applies one decoded batch: RRD first, then SQLite, whose transaction also
 * advances the agent's applied seq; a crash between the two replays the batch,
 * and the RRD store skips samples not newer than what a file holds. A batch
 * not above the applied seq was applied before and is skipped whole. Batches
 * of different agents may be applied at once (never two of one agent): the
 * database parts run under db_mu, the RRD writes outside it. Blocking: pool
 * thread or before the loop runs. */
static int apply_batch(struct np_ingest *ing, const Netpulse__Batch *b, double *rrd_s,
                       bool *applied, struct np_err *err)
{
    uint64_t done = 0;
    *rrd_s = -1;
    *applied = false;
    uv_mutex_lock(&ing->db_mu);
    int rc = np_state_db_applied_seq(ing->apply_db, b->agent_id, &done, err);
    uv_mutex_unlock(&ing->db_mu);
    if (rc != 0) {
        return rc;
    }
    if (b->seq <= done) {
        return 0;
    }
    uint64_t t0 = np_clock_mono_ns();
    rc = np_rrd_store_write_samples(ing->rrd, b, NULL, err);
    if (rc == 0) {
        rc = np_rrd_store_write_flows(ing->rrd, b, NULL, err); /* per-class bits/s, issue 6 */
    }
    *rrd_s = (double)(np_clock_mono_ns() - t0) / 1e9;
    if (rc != 0) {
        return rc;
    }
    /* The batch and the outages it changes commit together. */
    uv_mutex_lock(&ing->db_mu);
    rc = np_state_db_begin(ing->apply_db, false, err);
    if (rc != 0) {
        uv_mutex_unlock(&ing->db_mu);
        return rc;
    }
    rc = np_state_db_apply_batch(ing->apply_db, b, applied, err);
    if (rc == 0 && *applied) {
        /* The latest flow summaries for the API, in the batch's transaction. */
        rc = np_state_db_flows_put(ing->apply_db, b, NP_STATE_DB_FLOW_KEEP, err);
    }
    if (rc == 0 && *applied) {
        uv_mutex_lock(&ing->outage_mu);
        rc = np_outage_add_wire(ing->outages, b);
        uv_mutex_unlock(&ing->outage_mu);
        if (rc != 0) {
            np_err_set(err, rc, "outage: %s", np_strerror(rc));
        } else {
            rc = outage_sync_dirty(ing, err);
        }
    }
    if (rc != 0) {
        np_state_db_rollback(ing->apply_db);
        *applied = false;
    } else {
        rc = np_state_db_commit(ing->apply_db, err);
    }
    uv_mutex_unlock(&ing->db_mu);
    return rc;
}

/* ---- alerts ---- */

/* Appends src to dst (cap bytes, len used) as far as it fits, not cutting a
 * UTF-8 sequence; returns the new length. */
static size_t clip_append(char *dst, size_t cap, size_t len, const char *src)
{
    size_t n = strlen(src);
    if (len + n >= cap) {
        n = cap - 1 - len;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) {
            n--; /* src[n] continues a sequence: end before its lead byte */
        }
    }
    memcpy(dst + len, src, n);
    dst[len + n] = '\0';
    return len + n;
}

/* Appends the alert inputs of b's events to *v (n used, cap allocated) up to
 * max in all: interface down/up, uplink down/up (a down whose up follows in the
 * same batch carries its end: it was over when learned), spool overflow. Other
 * events are not alerts. Returns 0 or -ENOMEM. Any thread. */
static int alert_events_collect(const Netpulse__Batch *b, struct alert_event **v, size_t *n,
                                size_t *cap, size_t max)
{
    char key[NP_IFACE_KEY_MAX];
    for (size_t i = 0; i < b->n_events && *n < max; i++) {
        const Netpulse__Event *e = b->events[i];
        struct alert_event x = {.time_ms = e->time_ms};
        switch (e->type) {
        case NETPULSE__EVENT_TYPE__EVENT_INTERFACE_DOWN:
        case NETPULSE__EVENT_TYPE__EVENT_INTERFACE_UP:
            x.kind = NP_ALERT_IN_IFACE;
            x.up = e->type == NETPULSE__EVENT_TYPE__EVENT_INTERFACE_UP;
            np_iface_key(e->subject, e->if_index, key, sizeof key);
            if (e->device && e->device[0]) {
                size_t len = clip_append(x.subject, sizeof x.subject, 0, e->device);
                len = clip_append(x.subject, sizeof x.subject, len, "/");
                clip_append(x.subject, sizeof x.subject, len, key);
            } else {
                clip_append(x.subject, sizeof x.subject, 0, key);
            }
            break;
        case NETPULSE__EVENT_TYPE__EVENT_UPLINK_DOWN:
            x.kind = NP_ALERT_IN_UPLINK;
            for (size_t j = i + 1; j < b->n_events; j++) {
                const Netpulse__Event *u = b->events[j];
                if (u->type == NETPULSE__EVENT_TYPE__EVENT_UPLINK_UP && u->time_ms >= e->time_ms) {
                    x.end_ms = u->time_ms > 0 ? u->time_ms : 1;
                    break;
                }
            }
            break;
        case NETPULSE__EVENT_TYPE__EVENT_UPLINK_UP:
            x.kind = NP_ALERT_IN_UPLINK;
            x.up = true;
            break;
        case NETPULSE__EVENT_TYPE__EVENT_SPOOL_OVERFLOW:
            x.kind = NP_ALERT_IN_DROPPED;
            x.start_ms = e->from_ms;
            x.end_ms = e->to_ms;
            break;
        default:
            continue;
        }
        snprintf(x.site, sizeof x.site, "%s", b->agent_id);
        if (*n == *cap) {
            size_t c = *cap ? *cap * 2 : 8;
            struct alert_event *nv = realloc(*v, c * sizeof *nv);
            if (!nv) {
                return -ENOMEM;
            }
            *v = nv;
            *cap = c;
        }
        (*v)[(*n)++] = x;
    }
    return 0;
}

/* Feeds events to the alerter. Loop thread. */
static void alert_events_feed(struct np_alerter *al, const struct alert_event *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct np_alert_input in = {.kind = v[i].kind,
                                    .site = v[i].site,
                                    .subject = v[i].kind == NP_ALERT_IN_IFACE ? v[i].subject : NULL,
                                    .time_ms = v[i].time_ms,
                                    .up = v[i].up,
                                    .start_ms = v[i].start_ms,
                                    .end_ms = v[i].end_ms};
        int rc = np_alerter_input(al, &in);
        if (rc != 0) {
            np_log(NP_LOG_WARN, "ingest: alert input refused agent=%s kind=%d err=%s", v[i].site,
                   (int)v[i].kind, np_strerror(rc));
        }
    }
}

void np_ingest_set_alerter(struct np_ingest *ing, struct np_alerter *al)
{
    ing->alerter = al;
    if (al && ing->n_replay_events) {
        np_log(NP_LOG_INFO, "ingest: alert inputs from the journal replay events=%zu",
               ing->n_replay_events);
        alert_events_feed(al, ing->replay_events, ing->n_replay_events);
    }
    free(ing->replay_events);
    ing->replay_events = NULL;
    ing->n_replay_events = ing->cap_replay_events = 0;
}

static void work_apply(uv_work_t *w)
{
    struct ingest_req *r = w->data;
    struct np_err err = {0};
    if (r->outage_flush) {
        uv_mutex_lock(&r->ing->db_mu);
        r->apply_rc = outage_sync_dirty(r->ing, &err);
        uv_mutex_unlock(&r->ing->db_mu);
        snprintf(r->apply_msg, sizeof r->apply_msg, "%s", err.msg);
        return;
    }
    r->apply_rc = apply_batch(r->ing, r->batch, &r->rrd_s, &r->applied, &err);
    snprintf(r->apply_msg, sizeof r->apply_msg, "%s", err.msg);
    if (r->apply_rc == 0 && r->applied && r->batch->n_events) {
        /* Only a batch applied now: a duplicate or replayed one alerts nothing. */
        size_t cap = 0;
        if (alert_events_collect(r->batch, &r->events, &r->n_events, &cap, ALERT_EVENTS_MAX) != 0) {
            np_log(NP_LOG_WARN, "ingest: out of memory, alert events lost agent=%s seq=%" PRIu64,
                   r->agent, r->batch->seq);
        }
    }
}

/* Ends the records at the head of the apply list that are done, in journal
 * order, so the journal's applied position never passes a record still
 * queued or running. A failed record stops acknowledging for good (the next
 * start replays from it). Loop thread. */
static void apply_release(struct np_ingest *ing)
{
    while (ing->apply_head && ing->apply_head->apply_state == APPLY_DONE) {
        struct ingest_req *r = ing->apply_head;
        ing->apply_head = r->next;
        if (!ing->apply_head) {
            ing->apply_tail = NULL;
        }
        ing->apply_len--;
        if (!r->outage_flush) {
            if (!r->apply_ok) {
                ing->apply_broken = true;
            }
            if (!ing->apply_broken) {
                np_journal_applied(ing->journal, r->jseq);
                ing->journal_bytes -= r->raw_len + JOURNAL_RECORD_OVERHEAD;
            }
        }
        req_free(r);
    }
}

static void after_apply(uv_work_t *w, int status)
{
    struct ingest_req *r = w->data;
    struct np_ingest *ing = r->ing;
    ing->apply_running--;
    r->apply_state = APPLY_DONE;
    r->apply_ok = status == 0 && r->apply_rc == 0;
    if (r->outage_flush) {
        ing->outage_flush_queued = false;
        if (!r->apply_ok) {
            np_log(NP_LOG_ERR, "outage: cannot store outages err=%s",
                   status != 0 ? uv_strerror(status) : r->apply_msg);
        }
    } else {
        if (status == 0 && r->rrd_s >= 0) {
            np_metrics_rrd_observe(ing->metrics, r->rrd_s);
        }
        if (!r->apply_ok) {
            /* The batch stays in the journal (no ack from here on); the next
             * start replays it. */
            np_complain(&ing->apply_complain, NP_LOG_ERR,
                        "ingest: apply failed agent=%s seq=%" PRIu64 " err=%s", r->agent,
                        r->batch->seq, status != 0 ? uv_strerror(status) : r->apply_msg);
        } else {
            np_complain_release(&ing->apply_complain, "ingest: applying batches works again");
            /* An agent's batches finish in its seq order (one at a time). */
            if (ing->alerter && r->n_events) {
                alert_events_feed(ing->alerter, r->events, r->n_events);
            }
            if (ing->alerter && r->applied) {
                np_alerter_batch(ing->alerter, r->batch); /* utilisation from its samples */
            }
        }
    }
    apply_kick(ing); /* releases what finished, in order, then starts more */
    unpark(ing);
    check_drained(ing);
}

/* Whether an earlier record of r's agent is still queued or running: an
 * agent's batches are applied one at a time, in journal (= seq) order, so
 * each of its files is written in time order. */
static bool agent_busy(const struct np_ingest *ing, const struct ingest_req *r)
{
    for (const struct ingest_req *q = ing->apply_head; q != r; q = q->next) {
        if (q->apply_state != APPLY_DONE && strcmp(q->agent, r->agent) == 0) {
            return true;
        }
    }
    return false;
}

/* Starts apply jobs for queued records, earliest first, up to APPLY_JOBS_MAX,
 * skipping those whose agent has an earlier record not done. */
static void apply_kick(struct np_ingest *ing)
{
    for (struct ingest_req *r = ing->apply_head; r && ing->apply_running < APPLY_JOBS_MAX;
         r = r->next) {
        if (r->apply_state != APPLY_QUEUED || agent_busy(ing, r)) {
            continue;
        }
        r->work.data = r;
        int rc = uv_queue_work(ing->loop, &r->work, work_apply, after_apply);
        if (rc != 0) {
            np_log(NP_LOG_ERR, "ingest: cannot queue apply err=%s", uv_strerror(rc));
            r->apply_state = APPLY_DONE; /* failed: released (and not acknowledged) in order */
            r->apply_ok = false;
            if (r->outage_flush) {
                ing->outage_flush_queued = false;
            }
            continue;
        }
        r->apply_state = APPLY_RUNNING;
        ing->apply_running++;
    }
    apply_release(ing);
}

/* ---- lifecycle ---- */

struct replay_ctx {
    struct np_ingest *ing;
    uint64_t records, batches, skipped;
    struct np_err *err;
};

static int replay_one(void *ctx, uint64_t jseq, const void *data, size_t len)
{
    struct replay_ctx *rc = ctx;
    Netpulse__Batch *b = NULL;
    rc->records++;
    struct np_err derr = {0};
    if (np_wire_decode(data, len, NULL, &b, &derr) != 0) {
        /* Only valid batches are journaled; a record failing now is kept out. */
        np_log(NP_LOG_ERR, "ingest: replay skipped jseq=%" PRIu64 " err=%s", jseq, derr.msg);
        rc->skipped++;
        return 0;
    }
    double rrd_s;
    bool applied;
    int r = apply_batch(rc->ing, b, &rrd_s, &applied, rc->err);
    if (r == 0) {
        rc->batches += applied;
        if (applied) {
            /* for the alerter, once it is set (np_ingest_set_alerter) */
            struct np_ingest *ing = rc->ing;
            if (alert_events_collect(b, &ing->replay_events, &ing->n_replay_events,
                                     &ing->cap_replay_events, ALERT_REPLAY_MAX) != 0) {
                np_log(NP_LOG_WARN, "ingest: out of memory, replayed alert events lost");
            }
        }
    } else {
        np_log(NP_LOG_ERR, "ingest: replay failed jseq=%" PRIu64 " agent=%s seq=%" PRIu64 " err=%s",
               jseq, b->agent_id, b->seq, rc->err->msg);
    }
    np_wire_free(b);
    return r;
}

static int restore_one(const char *agent, int64_t last_seen_ms, const struct np_outage_rec *sus,
                       void *ctx)
{
    struct np_ingest *ing = ctx;
    return np_outage_restore(ing->outages, agent, (int64_t)np_clock_mono_ms(), last_seen_ms, sus);
}

/* The outage tracker, seeded from the database: every agent heard before
 * gets a full timeout from now, and open suspected outages go on. */
static int outage_open(struct np_ingest *ing, const struct np_ingest_opts *o, struct np_err *err)
{
    struct np_outage_config oc = {.heartbeat_timeout_ms = o->heartbeat_timeout_ms > 0
                                                              ? o->heartbeat_timeout_ms
                                                              : NP_OUTAGE_DEFAULT_TIMEOUT_MS};
    if (uv_mutex_init(&ing->outage_mu) != 0) {
        return np_err_set(err, -ENOMEM, "ingest: mutex init failed");
    }
    int rc = np_outage_tracker_new(&oc, &ing->outages);
    if (rc == 0) {
        rc = np_state_db_outages_restore(ing->apply_db, restore_one, ing, err);
        if (rc != 0 && !err->msg[0]) {
            np_err_set(err, rc, "outage: restore: %s", np_strerror(rc));
        }
    } else {
        np_err_set(err, rc, "outage: %s", np_strerror(rc));
    }
    if (rc != 0) {
        np_outage_tracker_free(ing->outages);
        ing->outages = NULL;
        uv_mutex_destroy(&ing->outage_mu);
    }
    return rc;
}

int np_ingest_open(uv_loop_t *loop, const struct np_ingest_opts *o, struct np_ingest **out,
                   struct np_err *err)
{
    *out = NULL;
    struct np_ingest *ing = calloc(1, sizeof *ing);
    if (!ing) {
        return np_err_set(err, -ENOMEM, "ingest: out of memory");
    }
    ing->loop = loop;
    ing->rrd = o->rrd;
    ing->metrics = o->metrics;
    ing->max_body_bytes = o->max_body_bytes ? o->max_body_bytes : NP_WIRE_MAX_BATCH_BYTES;
    int rc;
    if (uv_mutex_init(&ing->auth_mu) != 0) {
        rc = np_err_set(err, -ENOMEM, "ingest: mutex init failed");
        goto out_free;
    }
    if (uv_mutex_init(&ing->db_mu) != 0) {
        uv_mutex_destroy(&ing->auth_mu);
        rc = np_err_set(err, -ENOMEM, "ingest: mutex init failed");
        goto out_free;
    }
    rc = np_state_db_open(o->state_db_path, &ing->apply_db, err);
    if (rc != 0) {
        goto out_mutex;
    }
    rc = np_state_db_open(o->state_db_path, &ing->auth_db, err);
    if (rc != 0) {
        goto out_apply_db;
    }
    rc = outage_open(ing, o, err);
    if (rc != 0) {
        goto out_auth_db;
    }
    rc = np_journal_open(loop, o->journal_dir, &ing->journal, err);
    if (rc != 0) {
        goto out_outages;
    }
    struct replay_ctx rctx = {.ing = ing, .err = err};
    uint64_t t0 = np_clock_mono_ms();
    rc = np_journal_replay(ing->journal, replay_one, &rctx, err);
    if (rc != 0) {
        goto out_journal;
    }
    if (rctx.records) {
        np_log(NP_LOG_NOTICE,
               "ingest: journal replayed records=%" PRIu64 " applied=%" PRIu64
               " undecodable=%" PRIu64 " ms=%" PRIu64,
               rctx.records, rctx.batches, rctx.skipped, np_clock_mono_ms() - t0);
    }
    rc = outage_sync_dirty(ing, err);
    if (rc != 0) {
        goto out_journal;
    }
    *out = ing;
    return 0;

out_journal:
    np_journal_close(ing->journal);
out_outages:
    np_outage_tracker_free(ing->outages);
    uv_mutex_destroy(&ing->outage_mu);
out_auth_db:
    np_state_db_close(ing->auth_db);
out_apply_db:
    np_state_db_close(ing->apply_db);
out_mutex:
    uv_mutex_destroy(&ing->db_mu);
    uv_mutex_destroy(&ing->auth_mu);
out_free:
    free(ing->replay_events);
    free(ing);
    return rc;
}

int np_ingest_start(struct np_ingest *ing, struct np_err *err)
{
    int rc = np_journal_start(ing->journal, err);
    if (rc != 0) {
        return rc;
    }
    ing->outage_timer = malloc(sizeof *ing->outage_timer);
    if (!ing->outage_timer) {
        return np_err_set(err, -ENOMEM, "ingest: out of memory");
    }
    uv_timer_init(ing->loop, ing->outage_timer);
    ing->outage_timer->data = ing;
    uv_timer_start(ing->outage_timer, on_outage_tick, 1000, 1000);
    return 0;
}

void np_ingest_shutdown(struct np_ingest *ing, void (*done)(void *arg), void *arg)
{
    ing->closing = true;
    if (ing->outage_timer) {
        uv_close((uv_handle_t *)ing->outage_timer, free_timer);
        ing->outage_timer = NULL;
    }
    ing->on_drained = done;
    ing->on_drained_arg = arg;
    unpark(ing); /* refuses the parked requests */
    check_drained(ing);
}

void np_ingest_update_metrics(struct np_ingest *ing)
{
    ing->metrics->queue_apply = ing->apply_len;
    ing->metrics->queue_parked = ing->parked;
    ing->metrics->queue_journal = np_journal_backlog(ing->journal);
}

void np_ingest_free(struct np_ingest *ing)
{
    if (!ing) {
        return;
    }
    np_journal_close(ing->journal);
    if (ing->outage_timer) {
        uv_close((uv_handle_t *)ing->outage_timer, free_timer);
    }
    np_outage_tracker_free(ing->outages);
    uv_mutex_destroy(&ing->outage_mu);
    while (ing->apply_head) {
        struct ingest_req *r = ing->apply_head;
        ing->apply_head = r->next;
        req_free(r);
    }
    while (ing->park_head) {
        struct ingest_req *r = ing->park_head;
        ing->park_head = r->next;
        req_free(r);
    }
    np_state_db_close(ing->auth_db);
    np_state_db_close(ing->apply_db);
    uv_mutex_destroy(&ing->db_mu);
    uv_mutex_destroy(&ing->auth_mu);
    free(ing->replay_events);
    free(ing->agents);
    free(ing);
}
