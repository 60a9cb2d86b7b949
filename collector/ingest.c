/* ingest: authenticated batch ingest with a group-committed journal; see ingest.h. */
#include "ingest.h"

#include "http_server.h"
#include "journal.h"
#include "rrd_store.h"
#include "state_db.h"

#include "netpulse/clock.h"
#include "netpulse/log.h"
#include "netpulse/wire.h"

#include <zlib.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TOKEN_MAX 128
/* Refuse new batches (503, the agent keeps them in its spool) while this many
 * decoded batches wait to be applied (memory), or while the journal holds more
 * than half its byte bound unacknowledged: at the bound the spool under it
 * would drop the oldest records, acknowledged data. */
#define APPLY_QUEUE_MAX 256u
#define JOURNAL_BYTES_MAX (NP_JOURNAL_MAX_BYTES / 2)
#define JOURNAL_RECORD_OVERHEAD 32u

/* What one agent has, as far as the loop knows. */
struct agent_state {
    char id[NP_STATE_DB_MAX_ID + 1];
    uint64_t durable_seq;  /* highest seq durable (journal synced or applied) */
    uint64_t accepted_seq; /* highest seq handed to the journal */
};

struct np_ingest {
    uv_loop_t *loop;
    struct np_journal *journal;
    struct np_state_db *apply_db; /* apply jobs only (one at a time) */
    struct np_state_db *auth_db;  /* auth jobs, under auth_mu */
    uv_mutex_t auth_mu;
    struct np_rrd_store *rrd;
    struct np_metrics *metrics;
    uint64_t max_body_bytes;

    struct agent_state *agents; /* sorted by id */
    size_t n_agents, cap_agents;

    struct ingest_req *apply_head, *apply_tail; /* durable, waiting to be applied */
    uint64_t apply_len;
    bool apply_running;
    bool apply_broken;      /* an apply failed: stop acknowledging, a restart replays */
    uint64_t journal_bytes; /* appended and not yet acknowledged as applied */

    unsigned inflight; /* requests between handle and reply */
    bool closing;
    void (*on_drained)(void *);
    void *on_drained_arg;
    struct np_complain apply_complain;
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
    uint64_t jseq;
    double rrd_s;
    int apply_rc;
    bool applied;
    char apply_msg[256];
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

/* Inflates a gzip body into *out (caller frees) with the wire limit as a hard cap. */
static int gunzip(const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len,
                  struct np_err *err)
{
    const size_t cap = NP_WIRE_MAX_BATCH_BYTES;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        return np_err_set(err, -ENOMEM, "ingest: inflateInit failed");
    }
    size_t size = in_len * 4 < 65536 ? 65536 : in_len * 4;
    if (size > cap + 1) {
        size = cap + 1;
    }
    uint8_t *buf = malloc(size);
    int rc = 0;
    if (!buf) {
        rc = np_err_set(err, -ENOMEM, "ingest: out of memory");
        goto out_end;
    }
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)in_len;
    size_t have = 0;
    for (;;) {
        if (have == size) {
            if (size > cap) {
                rc = np_err_set(err, NP_ETOOBIG, "body inflates to more than %zu bytes", cap);
                goto out_free;
            }
            size_t nsize = size * 2 > cap + 1 ? cap + 1 : size * 2;
            uint8_t *nb = realloc(buf, nsize);
            if (!nb) {
                rc = np_err_set(err, -ENOMEM, "ingest: out of memory");
                goto out_free;
            }
            buf = nb;
            size = nsize;
        }
        zs.next_out = buf + have;
        zs.avail_out = (uInt)(size - have);
        int z = inflate(&zs, Z_NO_FLUSH);
        have = size - zs.avail_out;
        if (z == Z_STREAM_END) {
            if (zs.avail_in != 0) {
                rc = np_err_set(err, NP_EPROTO, "gzip: %u bytes after the end of the stream",
                                zs.avail_in);
                goto out_free;
            }
            break;
        }
        if (z == Z_BUF_ERROR && zs.avail_in == 0) {
            rc = np_err_set(err, NP_EPROTO, "gzip: truncated stream");
            goto out_free;
        }
        if (z != Z_OK && z != Z_BUF_ERROR) {
            rc = np_err_set(err, NP_EPROTO, "gzip: %s", zs.msg ? zs.msg : "corrupt stream");
            goto out_free;
        }
    }
    if (have > cap) {
        rc = np_err_set(err, NP_ETOOBIG, "body inflates to more than %zu bytes", cap);
        goto out_free;
    }
    *out = buf;
    *out_len = have;
    inflateEnd(&zs);
    return 0;

out_free:
    free(buf);
out_end:
    inflateEnd(&zs);
    return rc;
}

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
        rc = gunzip(r->body, r->body_len, &r->raw, &r->raw_len, &err);
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

static void on_journal_done(struct np_journal_req *jr, int status)
{
    struct ingest_req *r = (struct ingest_req *)((char *)jr - offsetof(struct ingest_req, jreq));
    struct np_ingest *ing = r->ing;
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

/* ---- step 2: back on the loop after decoding ---- */

static void after_decode(uv_work_t *w, int status)
{
    struct ingest_req *r = w->data;
    struct np_ingest *ing = r->ing;
    if (status != 0) {
        finish_reject(r, 503, NP_REJECT_UNAVAILABLE, "cancelled");
        return;
    }
    if (r->http_status != 200) {
        finish_reject(r, r->http_status, r->reject, r->reason);
        return;
    }
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
    if (ing->apply_len >= APPLY_QUEUE_MAX ||
        ing->journal_bytes + r->raw_len + JOURNAL_RECORD_OVERHEAD > JOURNAL_BYTES_MAX) {
        finish_reject(r, 503, NP_REJECT_UNAVAILABLE, "ingest backlog full, retry later");
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
    np_journal_submit(ing->journal, &r->jreq);
}

/* ---- entry ---- */

static int parse_bearer(struct np_http_view v, char *out, size_t out_len)
{
    static const char scheme[] = "bearer ";
    if (!v.base || v.len <= sizeof scheme - 1 ||
        strncasecmp(v.base, scheme, sizeof scheme - 1) != 0) {
        return -1;
    }
    const char *t = v.base + sizeof scheme - 1;
    size_t n = v.len - (sizeof scheme - 1);
    while (n > 0 && *t == ' ') {
        t++;
        n--;
    }
    if (n == 0 || n >= out_len) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (t[i] <= 0x20 || t[i] >= 0x7f) {
            return -1;
        }
    }
    memcpy(out, t, n);
    out[n] = '\0';
    return 0;
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
    if (parse_bearer(np_http_header(req, "authorization"), r->token, sizeof r->token) != 0) {
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
    int rc = uv_queue_work(ing->loop, &r->work, work_decode, after_decode);
    if (rc != 0) {
        finish_reject(r, 503, NP_REJECT_UNAVAILABLE, "cannot queue work");
    }
    return 0;
}

/* ---- step 4: applying ---- */

/* Applies one decoded batch: RRD first, then SQLite, whose transaction also
 * advances the agent's applied seq; a crash between the two replays the batch,
 * and the RRD store skips samples not newer than what a file holds. A batch
 * not above the applied seq was applied before and is skipped whole. Blocking:
 * pool thread or before the loop runs. */
static int apply_batch(struct np_ingest *ing, const Netpulse__Batch *b, double *rrd_s,
                       bool *applied, struct np_err *err)
{
    uint64_t done = 0;
    *rrd_s = -1;
    *applied = false;
    int rc = np_state_db_applied_seq(ing->apply_db, b->agent_id, &done, err);
    if (rc != 0) {
        return rc;
    }
    if (b->seq <= done) {
        return 0;
    }
    uint64_t t0 = np_clock_mono_ns();
    rc = np_rrd_store_write_samples(ing->rrd, b, NULL, err);
    *rrd_s = (double)(np_clock_mono_ns() - t0) / 1e9;
    if (rc != 0) {
        return rc;
    }
    return np_state_db_apply_batch(ing->apply_db, b, applied, err);
}

static void work_apply(uv_work_t *w)
{
    struct ingest_req *r = w->data;
    struct np_err err = {0};
    r->apply_rc = apply_batch(r->ing, r->batch, &r->rrd_s, &r->applied, &err);
    snprintf(r->apply_msg, sizeof r->apply_msg, "%s", err.msg);
}

static void after_apply(uv_work_t *w, int status)
{
    struct ingest_req *r = w->data;
    struct np_ingest *ing = r->ing;
    ing->apply_running = false;
    if (status == 0 && r->rrd_s >= 0) {
        np_metrics_rrd_observe(ing->metrics, r->rrd_s);
    }
    if (status != 0 || r->apply_rc != 0) {
        /* The batch stays in the journal (no ack from here on); the next start
         * replays it. */
        ing->apply_broken = true;
        np_complain(&ing->apply_complain, NP_LOG_ERR,
                    "ingest: apply failed agent=%s seq=%" PRIu64 " err=%s", r->agent, r->batch->seq,
                    status != 0 ? uv_strerror(status) : r->apply_msg);
    } else {
        np_complain_release(&ing->apply_complain, "ingest: applying batches works again");
        if (!ing->apply_broken) {
            np_journal_applied(ing->journal, r->jseq);
            ing->journal_bytes -= r->raw_len + JOURNAL_RECORD_OVERHEAD;
        }
    }
    req_free(r);
    apply_kick(ing);
    check_drained(ing);
}

static void apply_kick(struct np_ingest *ing)
{
    if (ing->apply_running || !ing->apply_head) {
        return;
    }
    struct ingest_req *r = ing->apply_head;
    ing->apply_head = r->next;
    if (!ing->apply_head) {
        ing->apply_tail = NULL;
    }
    ing->apply_len--;
    r->work.data = r;
    int rc = uv_queue_work(ing->loop, &r->work, work_apply, after_apply);
    if (rc != 0) {
        ing->apply_broken = true;
        np_log(NP_LOG_ERR, "ingest: cannot queue apply err=%s", uv_strerror(rc));
        req_free(r);
        return;
    }
    ing->apply_running = true;
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
    } else {
        np_log(NP_LOG_ERR, "ingest: replay failed jseq=%" PRIu64 " agent=%s seq=%" PRIu64 " err=%s",
               jseq, b->agent_id, b->seq, rc->err->msg);
    }
    np_wire_free(b);
    return r;
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
    rc = np_state_db_open(o->state_db_path, &ing->apply_db, err);
    if (rc != 0) {
        goto out_mutex;
    }
    rc = np_state_db_open(o->state_db_path, &ing->auth_db, err);
    if (rc != 0) {
        goto out_apply_db;
    }
    rc = np_journal_open(loop, o->journal_dir, &ing->journal, err);
    if (rc != 0) {
        goto out_auth_db;
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
    *out = ing;
    return 0;

out_journal:
    np_journal_close(ing->journal);
out_auth_db:
    np_state_db_close(ing->auth_db);
out_apply_db:
    np_state_db_close(ing->apply_db);
out_mutex:
    uv_mutex_destroy(&ing->auth_mu);
out_free:
    free(ing);
    return rc;
}

int np_ingest_start(struct np_ingest *ing, struct np_err *err)
{
    return np_journal_start(ing->journal, err);
}

void np_ingest_shutdown(struct np_ingest *ing, void (*done)(void *arg), void *arg)
{
    ing->closing = true;
    ing->on_drained = done;
    ing->on_drained_arg = arg;
    check_drained(ing);
}

void np_ingest_update_metrics(struct np_ingest *ing)
{
    ing->metrics->queue_apply = ing->apply_len + (ing->apply_running ? 1 : 0);
    ing->metrics->queue_journal = np_journal_backlog(ing->journal);
}

void np_ingest_free(struct np_ingest *ing)
{
    if (!ing) {
        return;
    }
    np_journal_close(ing->journal);
    while (ing->apply_head) {
        struct ingest_req *r = ing->apply_head;
        ing->apply_head = r->next;
        req_free(r);
    }
    np_state_db_close(ing->auth_db);
    np_state_db_close(ing->apply_db);
    uv_mutex_destroy(&ing->auth_mu);
    free(ing->agents);
    free(ing);
}
