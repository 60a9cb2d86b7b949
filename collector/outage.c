/* outage: outage decisions from heartbeats and the agent's own timeline; see outage.h. */
#include "outage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PROBE_INTERVAL_MS 10000
#define MAX_PROBE_INTERVAL_MS 86400000LL
#define MAX_STARTS 64
#define UPLINK_VERDICT 0 /* probes[0]: the agent's own uplink verdict (events, heartbeat) */

/* A run of equal results of one probe: results at from..to, no two
 * neighbours further apart than 1.5 intervals. */
struct run {
    int64_t from, to;
    int64_t interval_ms;
    bool ok;
};

struct probe_tl {
    char name[64];
    struct run *runs;
    size_t n, cap;
};

struct span {
    int64_t from, to;
};

struct spans {
    struct span *v;
    size_t n, cap;
};

struct agent {
    char id[NP_OUTAGE_AGENT_MAX + 1];
    struct probe_tl probes[NP_OUTAGE_MAX_PROBES + 1];
    size_t n_probes;            /* used entries of probes[1..] */
    struct spans life;          /* signs of life, merged when no further apart than the timeout */
    struct spans lost;          /* ranges the agent reported as dropped */
    int64_t starts[MAX_STARTS]; /* process starts seen, sorted */
    size_t n_starts;
    int64_t max_created;
    uint64_t last_seq; /* highest seq added, with its created_ms and process */
    int64_t last_seq_created, last_seq_start;

    bool heard;
    int64_t last_recv_mono;
    int64_t last_heard_created;
    int64_t lag_ms;
    bool lag_known;
    uint64_t spool_batches;
    int64_t spool_oldest_ms;

    bool sus; /* a suspected window is open */
    bool sus_resumed;
    int64_t sus_anchor, sus_lag, sus_target;

    struct np_outage_rec *list;
    size_t n_list;
    bool dirty;
};

struct np_outage_tracker {
    struct np_outage_config cfg;
    struct agent **agents; /* sorted by id */
    size_t n_agents, cap_agents;
};

/* ---- names ---- */

static const char *const cause_names[] = {"unknown", "link", "agent"};
static const char *const state_names[] = {"suspected", "confirmed"};

const char *np_outage_rec_cause_name(enum np_outage_rec_cause c)
{
    return (unsigned)c < 3 ? cause_names[c] : "unknown";
}

const char *np_outage_rec_state_name(enum np_outage_rec_state s)
{
    return (unsigned)s < 2 ? state_names[s] : "suspected";
}

int np_outage_rec_cause_parse(const char *s, enum np_outage_rec_cause *out)
{
    for (int i = 0; i < 3; i++) {
        if (s && strcmp(s, cause_names[i]) == 0) {
            *out = (enum np_outage_rec_cause)i;
            return 0;
        }
    }
    return -EINVAL;
}

int np_outage_rec_state_parse(const char *s, enum np_outage_rec_state *out)
{
    for (int i = 0; i < 2; i++) {
        if (s && strcmp(s, state_names[i]) == 0) {
            *out = (enum np_outage_rec_state)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* ---- helpers ---- */

static bool plausible(int64_t t)
{
    return t >= NP_WIRE_MIN_TIME_MS && t <= NP_WIRE_MAX_TIME_MS;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* A result stands for 1.5 of its probe's intervals: a late run still joins. */
static int64_t validity(int64_t interval_ms)
{
    return interval_ms + interval_ms / 2;
}

static int grow(void **v, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) {
        return 0;
    }
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need) {
        ncap *= 2;
    }
    void *nv = realloc(*v, ncap * size);
    if (!nv) {
        return -ENOMEM;
    }
    *v = nv;
    *cap = ncap;
    return 0;
}

/* Adds [from, to] to sorted, disjoint spans, merging whatever lies within tol.
 * At NP_OUTAGE_MAX_RUNS the oldest span goes. */
static int spans_add(struct spans *s, int64_t from, int64_t to, int64_t tol)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) { /* first span whose end reaches from - tol */
        size_t mid = lo + (hi - lo) / 2;
        if (s->v[mid].to + tol < from) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    size_t end = lo;
    while (end < s->n && s->v[end].from - tol <= to) {
        from = min64(from, s->v[end].from);
        to = max64(to, s->v[end].to);
        end++;
    }
    if (end > lo) {
        s->v[lo].from = from;
        s->v[lo].to = to;
        memmove(&s->v[lo + 1], &s->v[end], (s->n - end) * sizeof *s->v);
        s->n -= end - lo - 1;
        return 0;
    }
    if (s->n >= NP_OUTAGE_MAX_RUNS) {
        if (lo == 0) {
            return 0; /* older than everything kept */
        }
        memmove(&s->v[0], &s->v[1], (s->n - 1) * sizeof *s->v);
        s->n--;
        lo--;
    }
    if (grow((void **)&s->v, &s->cap, s->n + 1, sizeof *s->v) != 0) {
        return -ENOMEM;
    }
    memmove(&s->v[lo + 1], &s->v[lo], (s->n - lo) * sizeof *s->v);
    s->v[lo] = (struct span){from, to};
    s->n++;
    return 0;
}

static void spans_prune(struct spans *s, int64_t cut)
{
    size_t k = 0;
    while (k < s->n && s->v[k].to < cut) {
        k++;
    }
    if (k > 0) {
        memmove(&s->v[0], &s->v[k], (s->n - k) * sizeof *s->v);
        s->n -= k;
    }
}

static bool spans_overlap(const struct spans *s, int64_t from, int64_t to)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].from <= to && from <= s->v[i].to) {
            return true;
        }
    }
    return false;
}

/* ---- probe timelines ---- */

/* Index of the last run starting at or before t; -1 when none. */
static long run_at(const struct probe_tl *p, int64_t t)
{
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->runs[mid].from <= t) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return (long)lo - 1;
}

/* Adds one result. A result inside a run that says otherwise conflicts with
 * what is kept and is dropped: the first word stands, so a replay in any
 * order changes nothing. */
static int probe_add(struct probe_tl *p, int64_t t, int64_t iv, bool ok)
{
    long i = run_at(p, t);
    struct run *prev = i >= 0 ? &p->runs[i] : NULL;
    struct run *next = (size_t)(i + 1) < p->n ? &p->runs[i + 1] : NULL;
    if (prev && t <= prev->to) {
        return 0; /* inside a run: the same result again, or a conflict */
    }
    bool join_prev =
        prev && prev->ok == ok && t - prev->to <= validity(max64(prev->interval_ms, iv));
    bool join_next =
        next && next->ok == ok && next->from - t <= validity(max64(next->interval_ms, iv));
    if (join_prev && join_next) {
        prev->to = next->to;
        prev->interval_ms = max64(max64(prev->interval_ms, next->interval_ms), iv);
        memmove(next, next + 1, (p->n - (size_t)i - 2) * sizeof *next);
        p->n--;
        return 0;
    }
    if (join_prev) {
        prev->to = t;
        prev->interval_ms = max64(prev->interval_ms, iv);
        return 0;
    }
    if (join_next) {
        next->from = t;
        next->interval_ms = max64(next->interval_ms, iv);
        return 0;
    }
    size_t at = (size_t)(i + 1);
    if (p->n >= NP_OUTAGE_MAX_RUNS) {
        if (at == 0) {
            return 0;
        }
        memmove(&p->runs[0], &p->runs[1], (p->n - 1) * sizeof *p->runs);
        p->n--;
        at--;
    }
    if (grow((void **)&p->runs, &p->cap, p->n + 1, sizeof *p->runs) != 0) {
        return -ENOMEM;
    }
    memmove(&p->runs[at + 1], &p->runs[at], (p->n - at) * sizeof *p->runs);
    p->runs[at] = (struct run){t, t, iv, ok};
    p->n++;
    return 0;
}

static void probe_prune(struct probe_tl *p, int64_t cut)
{
    size_t k = 0;
    while (k < p->n && p->runs[k].to + validity(p->runs[k].interval_ms) < cut) {
        k++;
    }
    if (k > 0) {
        memmove(&p->runs[0], &p->runs[k], (p->n - k) * sizeof *p->runs);
        p->n -= k;
    }
}

enum link_state { LS_UNKNOWN, LS_UP, LS_DOWN };

static enum link_state probe_state(const struct probe_tl *p, int64_t t)
{
    long i = run_at(p, t);
    if (i < 0) {
        return LS_UNKNOWN;
    }
    const struct run *r = &p->runs[i];
    if (t > r->to && t - r->to >= validity(r->interval_ms)) {
        return LS_UNKNOWN;
    }
    return r->ok ? LS_UP : LS_DOWN;
}

static enum link_state link_state(const struct np_outage_tracker *t, const struct agent *a,
                                  int64_t at)
{
    unsigned known = 0, ok = 0;
    for (size_t i = 1; i <= a->n_probes; i++) {
        enum link_state s = probe_state(&a->probes[i], at);
        if (s != LS_UNKNOWN) {
            known++;
            ok += s == LS_UP;
        }
    }
    if (known > 0) {
        unsigned q = t->cfg.probe_quorum ? t->cfg.probe_quorum : 1;
        if (q > known) {
            q = known;
        }
        return ok >= q ? LS_UP : LS_DOWN;
    }
    /* No probe result stands here: the agent's own verdict, if any. */
    return probe_state(&a->probes[UPLINK_VERDICT], at);
}

static struct probe_tl *probe_get(struct agent *a, const char *name)
{
    if (!name || !name[0]) {
        name = "?";
    }
    for (size_t i = 1; i <= a->n_probes; i++) {
        if (strncmp(a->probes[i].name, name, sizeof a->probes[i].name - 1) == 0) {
            return &a->probes[i];
        }
    }
    if (a->n_probes >= NP_OUTAGE_MAX_PROBES) {
        return NULL;
    }
    struct probe_tl *p = &a->probes[++a->n_probes];
    snprintf(p->name, sizeof p->name, "%s", name);
    return p;
}

/* ---- agents ---- */

static int check_agent_id(const char *id)
{
    if (!id || !id[0] || strlen(id) > NP_OUTAGE_AGENT_MAX) {
        return -EINVAL;
    }
    return 0;
}

static struct agent *agent_find(const struct np_outage_tracker *t, const char *id, size_t *pos)
{
    size_t lo = 0, hi = t->n_agents;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->agents[mid]->id, id);
        if (c == 0) {
            *pos = mid;
            return t->agents[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *pos = lo;
    return NULL;
}

static struct agent *agent_get(struct np_outage_tracker *t, const char *id)
{
    size_t pos;
    struct agent *a = agent_find(t, id, &pos);
    if (a) {
        return a;
    }
    if (grow((void **)&t->agents, &t->cap_agents, t->n_agents + 1, sizeof *t->agents) != 0) {
        return NULL;
    }
    a = calloc(1, sizeof *a);
    if (!a) {
        return NULL;
    }
    snprintf(a->id, sizeof a->id, "%s", id);
    snprintf(a->probes[UPLINK_VERDICT].name, sizeof a->probes[0].name, "(uplink)");
    memmove(&t->agents[pos + 1], &t->agents[pos], (t->n_agents - pos) * sizeof *t->agents);
    t->agents[pos] = a;
    t->n_agents++;
    return a;
}

static void agent_free(struct agent *a)
{
    for (size_t i = 0; i <= NP_OUTAGE_MAX_PROBES; i++) {
        free(a->probes[i].runs);
    }
    free(a->life.v);
    free(a->lost.v);
    free(a->list);
    free(a);
}

int np_outage_tracker_new(const struct np_outage_config *cfg, struct np_outage_tracker **out)
{
    *out = NULL;
    if (!cfg || cfg->heartbeat_timeout_ms <= 0 || cfg->history_ms < 0) {
        return -EINVAL;
    }
    struct np_outage_tracker *t = calloc(1, sizeof *t);
    if (!t) {
        return -ENOMEM;
    }
    t->cfg = *cfg;
    if (t->cfg.history_ms == 0) {
        t->cfg.history_ms = NP_OUTAGE_DEFAULT_HISTORY_MS;
    }
    *out = t;
    return 0;
}

void np_outage_tracker_free(struct np_outage_tracker *t)
{
    if (!t) {
        return;
    }
    for (size_t i = 0; i < t->n_agents; i++) {
        agent_free(t->agents[i]);
    }
    free(t->agents);
    free(t);
}

/* ---- deciding ---- */

struct olist {
    struct np_outage_rec *v;
    size_t n, cap;
};

static int olist_push(struct olist *l, enum np_outage_rec_cause cause, int64_t start, int64_t end,
                      const char *detail)
{
    if (grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v) != 0) {
        return -ENOMEM;
    }
    struct np_outage_rec *o = &l->v[l->n++];
    memset(o, 0, sizeof *o);
    o->cause = cause;
    o->state = NP_OUTAGE_CONFIRMED;
    o->start_ms = start;
    o->end_ms = end;
    snprintf(o->detail, sizeof o->detail, "%s", detail);
    return 0;
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

static int cmp_outage(const void *x, const void *y)
{
    const struct np_outage_rec *a = x, *b = y;
    if (a->start_ms != b->start_ms) {
        return a->start_ms < b->start_ms ? -1 : 1;
    }
    return (int)a->cause - (int)b->cause;
}

static bool is_start(const struct agent *a, int64_t t)
{
    return bsearch(&t, a->starts, a->n_starts, sizeof *a->starts, cmp_i64) != NULL;
}

/* Link-down intervals from the probe timelines. */
static int link_outages(const struct np_outage_tracker *t, const struct agent *a, struct olist *l)
{
    size_t nb = 0;
    for (size_t i = 0; i <= a->n_probes; i++) {
        nb += 2 * a->probes[i].n;
    }
    if (nb == 0) {
        return 0;
    }
    int64_t *bp = malloc(nb * sizeof *bp);
    if (!bp) {
        return -ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i <= a->n_probes; i++) {
        for (size_t j = 0; j < a->probes[i].n; j++) {
            const struct run *r = &a->probes[i].runs[j];
            bp[k++] = r->from;
            bp[k++] = r->to + validity(r->interval_ms);
        }
    }
    qsort(bp, nb, sizeof *bp, cmp_i64);
    int rc = 0;
    int64_t down_from = 0;
    bool down = false;
    for (size_t i = 0; i < nb && rc == 0; i++) {
        if (i > 0 && bp[i] == bp[i - 1]) {
            continue;
        }
        enum link_state s = link_state(t, a, bp[i]);
        if (!down && s == LS_DOWN) {
            down = true;
            down_from = bp[i];
        } else if (down && s != LS_DOWN) {
            bool known_later = s == LS_UP;
            for (size_t j = i + 1; j < nb && !known_later; j++) {
                known_later = link_state(t, a, bp[j]) != LS_UNKNOWN;
            }
            /* Down until the evidence ends: still down as far as we know. */
            rc = olist_push(l, NP_OUTAGE_CAUSE_LINK, down_from, known_later ? bp[i] : 0,
                            "uplink probes failed (agent's own timeline)");
            down = false;
            if (!known_later) {
                break;
            }
        }
    }
    if (rc == 0 && down) {
        rc = olist_push(l, NP_OUTAGE_CAUSE_LINK, down_from, 0,
                        "uplink probes failed (agent's own timeline)");
    }
    free(bp);
    return rc;
}

/* Latest probe evidence before t (0: none) and earliest after (0: none). */
static void evidence_around(const struct agent *a, int64_t from, int64_t to, int64_t *before,
                            int64_t *after)
{
    *before = *after = 0;
    for (size_t i = 0; i <= a->n_probes; i++) {
        const struct probe_tl *p = &a->probes[i];
        long k = run_at(p, from - 1);
        if (k >= 0) {
            *before = max64(*before, min64(p->runs[k].to, from - 1));
        }
        long j = run_at(p, to);
        if (j >= 0 && p->runs[j].to > to) {
            int64_t c = max64(p->runs[j].from, to + 1);
            *after = *after ? min64(*after, c) : c;
        } else if ((size_t)(j + 1) < p->n) {
            int64_t c = p->runs[j + 1].from;
            *after = *after ? min64(*after, c) : c;
        }
    }
}

/* Ranges whose data the agent dropped: the link's state there is unknown,
 * from the last result before to the first after. */
static int lost_outages(const struct agent *a, struct olist *l)
{
    for (size_t i = 0; i < a->lost.n; i++) {
        int64_t before, after;
        evidence_around(a, a->lost.v[i].from, a->lost.v[i].to, &before, &after);
        int rc = olist_push(l, NP_OUTAGE_CAUSE_UNKNOWN, before ? before : a->lost.v[i].from,
                            after ? after : a->lost.v[i].to,
                            "the agent's data for this time was dropped (spool overflow)");
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* Gaps between signs of life: the agent was not running (or its data was dropped). */
static int agent_outages(const struct agent *a, struct olist *l)
{
    for (size_t i = 1; i < a->life.n; i++) {
        int64_t from = a->life.v[i - 1].to, to = a->life.v[i].from;
        int rc;
        if (spans_overlap(&a->lost, from, to)) {
            rc = olist_push(l, NP_OUTAGE_CAUSE_UNKNOWN, from, to,
                            "the agent's data for this time was dropped (spool overflow)");
        } else {
            rc = olist_push(l, NP_OUTAGE_CAUSE_AGENT, from, to,
                            is_start(a, to) ? "agent not running; it restarted at the end"
                                            : "agent not running: no batches created");
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static void sus_detail(const struct np_outage_tracker *t, const struct agent *a, char *buf,
                       size_t len, enum np_outage_rec_cause provisional)
{
    const char *so_far = provisional == NP_OUTAGE_CAUSE_LINK    ? "; the backlog so far shows "
                                                                  "failing probes"
                         : provisional == NP_OUTAGE_CAUSE_AGENT ? "; the backlog so far shows the "
                                                                  "agent not running"
                                                                : "";
    if (a->sus_resumed) {
        snprintf(buf, len,
                 "heartbeats resumed; waiting for the agent's backlog (spool: %llu batches, "
                 "oldest created_ms %lld)%s",
                 (unsigned long long)a->spool_batches, (long long)a->spool_oldest_ms, so_far);
    } else {
        snprintf(buf, len, "no heartbeat for more than %lld s%s",
                 (long long)(t->cfg.heartbeat_timeout_ms / 1000), so_far);
    }
}

/* Recomputes the agent's outages; marks it dirty when they changed. */
static int recompute(const struct np_outage_tracker *t, struct agent *a)
{
    struct olist l = {0}, agents = {0};
    int rc = link_outages(t, a, &l);
    if (rc == 0) {
        rc = agent_outages(a, &agents);
    }
    if (rc == 0) {
        rc = lost_outages(a, &agents);
    }
    if (rc == 0) {
        /* Unknown ranges from a gap and from dropped data may overlap: one. */
        if (agents.n > 1) {
            qsort(agents.v, agents.n, sizeof *agents.v, cmp_outage);
        }
        size_t k = 0;
        for (size_t i = 0; i < agents.n; i++) {
            if (k > 0 && agents.v[k - 1].cause == agents.v[i].cause &&
                agents.v[i].start_ms <= agents.v[k - 1].end_ms) {
                agents.v[k - 1].end_ms = max64(agents.v[k - 1].end_ms, agents.v[i].end_ms);
                continue;
            }
            agents.v[k++] = agents.v[i];
        }
        agents.n = k;
    }
    if (rc != 0) {
        goto out;
    }
    /* A link outage that runs into a time the agent was not running (or
     * whose data is lost) ends there: a result's validity does not outlive
     * the evidence. */
    for (size_t i = 0; i < l.n; i++) {
        for (size_t j = 0; j < agents.n; j++) {
            int64_t g = agents.v[j].start_ms;
            if (g >= l.v[i].start_ms && (l.v[i].end_ms == 0 || g < l.v[i].end_ms)) {
                l.v[i].end_ms = g;
                snprintf(l.v[i].detail, sizeof l.v[i].detail, "%s",
                         agents.v[j].cause == NP_OUTAGE_CAUSE_AGENT
                             ? "uplink probes failed (agent's own timeline); then the agent "
                               "stopped"
                             : "uplink probes failed (agent's own timeline); then data was "
                               "dropped");
                break;
            }
        }
    }
    for (size_t j = 0; j < agents.n && rc == 0; j++) {
        rc = olist_push(&l, agents.v[j].cause, agents.v[j].start_ms, agents.v[j].end_ms,
                        agents.v[j].detail);
    }
    if (rc != 0) {
        goto out;
    }
    if (l.n > 1) {
        qsort(l.v, l.n, sizeof *l.v, cmp_outage);
    }
    if (a->sus) {
        /* Everything from the anchor on is one suspected outage until the
         * backlog covers the gap; its cause is what the data so far says. */
        int64_t start = a->sus_anchor;
        enum np_outage_rec_cause cause = NP_OUTAGE_CAUSE_UNKNOWN;
        size_t keep = 0;
        for (size_t i = 0; i < l.n; i++) {
            if (l.v[i].end_ms != 0 && l.v[i].end_ms <= a->sus_anchor) {
                l.v[keep++] = l.v[i];
                continue;
            }
            start = min64(start, l.v[i].start_ms);
            if (l.v[i].cause == NP_OUTAGE_CAUSE_LINK ||
                (l.v[i].cause == NP_OUTAGE_CAUSE_AGENT && cause == NP_OUTAGE_CAUSE_UNKNOWN)) {
                cause = l.v[i].cause;
            }
        }
        l.n = keep;
        char detail[NP_OUTAGE_DETAIL_MAX];
        sus_detail(t, a, detail, sizeof detail, cause);
        rc = olist_push(&l, cause, start, 0, detail);
        if (rc != 0) {
            goto out;
        }
        struct np_outage_rec *o = &l.v[l.n - 1];
        o->state = NP_OUTAGE_SUSPECTED;
        o->target_ms = a->sus_resumed ? a->sus_target : 0;
        o->lag_ms = a->sus_lag;
        qsort(l.v, l.n, sizeof *l.v, cmp_outage);
    }
    size_t first = l.n > NP_OUTAGE_MAX_OUTAGES ? l.n - NP_OUTAGE_MAX_OUTAGES : 0;
    size_t n = l.n - first;
    bool same = n == a->n_list && (n == 0 || memcmp(a->list, l.v + first, n * sizeof *l.v) == 0);
    if (!same) {
        if (n > 0) {
            memmove(l.v, l.v + first, n * sizeof *l.v);
        }
        free(a->list);
        a->list = l.v;
        a->n_list = n;
        l.v = NULL;
        a->dirty = true;
    }
out:
    free(l.v);
    free(agents.v);
    return rc;
}

/* ---- inputs ---- */

int np_outage_heard(struct np_outage_tracker *t, const char *agent, int64_t recv_mono_ms,
                    int64_t recv_wall_ms, int64_t created_ms, uint64_t spool_batches,
                    int64_t spool_oldest_ms)
{
    if (check_agent_id(agent) != 0) {
        return -EINVAL;
    }
    struct agent *a = agent_get(t, agent);
    if (!a) {
        return -ENOMEM;
    }
    a->heard = true;
    a->last_recv_mono = max64(a->last_recv_mono, recv_mono_ms);
    a->last_heard_created = max64(a->last_heard_created, created_ms);
    a->spool_batches = spool_batches;
    a->spool_oldest_ms = spool_oldest_ms;
    int64_t lag = recv_wall_ms - created_ms;
    bool was_sus = a->sus;
    if (a->sus && !a->sus_resumed) {
        /* The agent reaches us again. Its backlog must reach the moment it
         * did, in its own clock: our time minus its lag before the gap. Up
         * to 2 s of slack (a third of the timeout at most) keep a batch that
         * took a little longer than the last from holding it open. */
        a->sus_resumed = true;
        a->sus_target = recv_wall_ms - a->sus_lag - min64(t->cfg.heartbeat_timeout_ms / 3, 2000);
    }
    /* Only batches sent live update the lag; backlog ones are late by design. */
    if (!a->lag_known || lag <= a->lag_ms + t->cfg.heartbeat_timeout_ms) {
        a->lag_ms = lag;
        a->lag_known = true;
    }
    if (a->sus && a->sus_resumed && a->max_created >= a->sus_target) {
        a->sus = false;
    }
    return was_sus ? recompute(t, a) : 0;
}

static void add_start(struct agent *a, int64_t s)
{
    if (is_start(a, s)) {
        return;
    }
    if (a->n_starts == MAX_STARTS) {
        if (s < a->starts[0]) {
            return;
        }
        memmove(&a->starts[0], &a->starts[1], (MAX_STARTS - 1) * sizeof *a->starts);
        a->n_starts--;
    }
    size_t i = a->n_starts;
    while (i > 0 && a->starts[i - 1] > s) {
        a->starts[i] = a->starts[i - 1];
        i--;
    }
    a->starts[i] = s;
    a->n_starts++;
}

static int add_life(const struct np_outage_tracker *t, struct agent *a, int64_t at)
{
    if (!plausible(at)) {
        return 0;
    }
    return spans_add(&a->life, at, at, t->cfg.heartbeat_timeout_ms);
}

static void prune(const struct np_outage_tracker *t, struct agent *a)
{
    if (a->life.n == 0) {
        return;
    }
    int64_t cut = a->life.v[a->life.n - 1].to - t->cfg.history_ms;
    spans_prune(&a->life, cut);
    spans_prune(&a->lost, cut);
    for (size_t i = 0; i <= a->n_probes; i++) {
        probe_prune(&a->probes[i], cut);
    }
}

int np_outage_add(struct np_outage_tracker *t, const struct np_outage_batch *b)
{
    if (check_agent_id(b->agent) != 0) {
        return -EINVAL;
    }
    struct agent *a = agent_get(t, b->agent);
    if (!a) {
        return -ENOMEM;
    }
    int rc = add_life(t, a, b->created_ms);
    if (rc == 0 && plausible(b->agent_start_ms) && plausible(b->created_ms) &&
        b->agent_start_ms <= b->created_ms) {
        /* The process that made this batch ran from its start until then
         * (a collector that restarted sees a process's middle first). */
        add_start(a, b->agent_start_ms);
        rc = spans_add(&a->life, b->agent_start_ms, b->created_ms, t->cfg.heartbeat_timeout_ms);
    }
    if (rc == 0 && b->seq > 0 && b->seq == a->last_seq + 1 &&
        b->agent_start_ms == a->last_seq_start && plausible(a->last_seq_created) &&
        b->created_ms > a->last_seq_created && plausible(b->created_ms)) {
        /* Consecutive batches of one process: it ran in between, whatever its
         * clock did (an NTP step forward is not an outage). */
        rc = spans_add(&a->life, a->last_seq_created, b->created_ms, t->cfg.heartbeat_timeout_ms);
    }
    if (b->seq > a->last_seq) {
        a->last_seq = b->seq;
        a->last_seq_created = b->created_ms;
        a->last_seq_start = b->agent_start_ms;
    }
    if (plausible(b->created_ms)) {
        a->max_created = max64(a->max_created, b->created_ms);
    }
    for (size_t i = 0; i < b->n_probes && rc == 0; i++) {
        const struct np_outage_probe *p = &b->probes[i];
        if (!plausible(p->time_ms)) {
            continue;
        }
        struct probe_tl *tl = probe_get(a, p->name);
        int64_t iv = p->interval_ms > 0 ? min64(p->interval_ms, MAX_PROBE_INTERVAL_MS)
                                        : DEFAULT_PROBE_INTERVAL_MS;
        rc = add_life(t, a, p->time_ms);
        if (rc == 0 && tl) {
            rc = probe_add(tl, p->time_ms, iv, p->ok);
        }
    }
    /* The agent's verdict stands for the timeout (validity = 1.5 x interval). */
    int64_t verdict_iv =
        t->cfg.heartbeat_timeout_ms * 2 / 3 > 0 ? t->cfg.heartbeat_timeout_ms * 2 / 3 : 1;
    struct probe_tl *verdict = &a->probes[UPLINK_VERDICT];
    for (size_t i = 0; i < b->n_marks && rc == 0; i++) {
        const struct np_outage_mark *m = &b->marks[i];
        if (!plausible(m->time_ms)) {
            continue;
        }
        switch (m->kind) {
        case NP_OUTAGE_MARK_UPLINK_UP:
        case NP_OUTAGE_MARK_UPLINK_DOWN:
            rc = add_life(t, a, m->time_ms);
            if (rc == 0) {
                rc =
                    probe_add(verdict, m->time_ms, verdict_iv, m->kind == NP_OUTAGE_MARK_UPLINK_UP);
            }
            break;
        case NP_OUTAGE_MARK_AGENT_START:
            add_start(a, m->time_ms);
            rc = add_life(t, a, m->time_ms);
            break;
        case NP_OUTAGE_MARK_DATA_LOST:
            if (plausible(m->to_ms) && m->to_ms >= m->time_ms) {
                rc = spans_add(&a->lost, m->time_ms, m->to_ms, 0);
            }
            break;
        }
    }
    if (rc == 0 && (b->uplink == 1 || b->uplink == 2) && plausible(b->created_ms)) {
        rc = probe_add(verdict, b->created_ms, verdict_iv, b->uplink == 1);
    }
    if (rc != 0) {
        return rc;
    }
    prune(t, a);
    if (a->sus && a->sus_resumed && a->max_created >= a->sus_target) {
        a->sus = false;
    }
    return recompute(t, a);
}

int np_outage_add_wire(struct np_outage_tracker *t, const Netpulse__Batch *b)
{
    struct np_outage_probe *probes = NULL;
    struct np_outage_mark *marks = NULL;
    int rc = 0;
    if (b->n_probes > 0 && !(probes = calloc(b->n_probes, sizeof *probes))) {
        return -ENOMEM;
    }
    if (b->n_events > 0 && !(marks = calloc(b->n_events, sizeof *marks))) {
        free(probes);
        return -ENOMEM;
    }
    for (size_t i = 0; i < b->n_probes; i++) {
        const Netpulse__ProbeResult *p = b->probes[i];
        probes[i] = (struct np_outage_probe){p->name, p->time_ms, p->interval_ms, p->ok != 0};
    }
    size_t nm = 0;
    for (size_t i = 0; i < b->n_events; i++) {
        const Netpulse__Event *e = b->events[i];
        switch ((int)e->type) {
        case NETPULSE__EVENT_TYPE__EVENT_UPLINK_UP:
            marks[nm++] = (struct np_outage_mark){NP_OUTAGE_MARK_UPLINK_UP, e->time_ms, 0};
            break;
        case NETPULSE__EVENT_TYPE__EVENT_UPLINK_DOWN:
            marks[nm++] = (struct np_outage_mark){NP_OUTAGE_MARK_UPLINK_DOWN, e->time_ms, 0};
            break;
        case NETPULSE__EVENT_TYPE__EVENT_AGENT_START:
            marks[nm++] = (struct np_outage_mark){NP_OUTAGE_MARK_AGENT_START, e->time_ms, 0};
            break;
        case NETPULSE__EVENT_TYPE__EVENT_SPOOL_OVERFLOW:
            marks[nm++] = (struct np_outage_mark){NP_OUTAGE_MARK_DATA_LOST, e->from_ms, e->to_ms};
            break;
        default:
            break;
        }
    }
    const Netpulse__Heartbeat *hb = b->heartbeat;
    struct np_outage_batch ob = {
        .agent = b->agent_id,
        .seq = b->seq,
        .created_ms = b->created_ms,
        .agent_start_ms = b->agent_start_ms,
        .uplink = hb ? (int)hb->uplink : 0,
        .uplink_since_ms = hb ? hb->uplink_since_ms : 0,
        .probes = probes,
        .n_probes = b->n_probes,
        .marks = marks,
        .n_marks = nm,
    };
    rc = np_outage_add(t, &ob);
    free(probes);
    free(marks);
    return rc;
}

size_t np_outage_tick(struct np_outage_tracker *t, int64_t now_mono_ms)
{
    size_t changed = 0;
    for (size_t i = 0; i < t->n_agents; i++) {
        struct agent *a = t->agents[i];
        if (!a->heard || now_mono_ms - a->last_recv_mono <= t->cfg.heartbeat_timeout_ms) {
            continue;
        }
        if (!a->sus) {
            a->sus = true;
            a->sus_anchor = a->last_heard_created;
            a->sus_lag = a->lag_known ? a->lag_ms : 0;
        } else if (a->sus_resumed) {
            /* Silent again before the backlog covered the gap: one window. */
            a->sus_resumed = false;
            a->sus_target = 0;
        } else {
            continue;
        }
        bool was = a->dirty;
        if (recompute(t, a) == 0 && a->dirty && !was) {
            changed++;
        }
    }
    return changed;
}

int np_outage_restore(struct np_outage_tracker *t, const char *agent, int64_t now_mono_ms,
                      int64_t last_created_ms, const struct np_outage_rec *sus)
{
    if (check_agent_id(agent) != 0) {
        return -EINVAL;
    }
    struct agent *a = agent_get(t, agent);
    if (!a) {
        return -ENOMEM;
    }
    a->heard = true;
    a->last_recv_mono = max64(a->last_recv_mono, now_mono_ms);
    a->last_heard_created = max64(a->last_heard_created, last_created_ms);
    if (sus && sus->state == NP_OUTAGE_SUSPECTED) {
        a->sus = true;
        a->sus_anchor = sus->start_ms;
        a->sus_lag = sus->lag_ms;
        a->sus_target = sus->target_ms;
        a->sus_resumed = sus->target_ms != 0;
        if (!a->lag_known) {
            a->lag_ms = sus->lag_ms;
            a->lag_known = true;
        }
    }
    return recompute(t, a);
}

/* ---- outputs ---- */

int np_outage_get(const struct np_outage_tracker *t, const char *agent, struct np_outage_rec *out,
                  size_t cap, size_t *n, int64_t *window_from_ms)
{
    size_t pos;
    *n = 0;
    const struct agent *a = agent ? agent_find(t, agent, &pos) : NULL;
    if (!a) {
        return -ENOENT;
    }
    size_t first = a->n_list > cap ? a->n_list - cap : 0;
    *n = a->n_list - first;
    if (*n > 0) {
        memcpy(out, a->list + first, *n * sizeof *out);
    }
    if (window_from_ms) {
        int64_t w = a->life.n ? a->life.v[0].from : 0;
        if (w == 0) {
            w = a->sus ? a->sus_anchor : a->last_heard_created;
        }
        *window_from_ms = w;
    }
    return 0;
}

bool np_outage_pop_dirty(struct np_outage_tracker *t, char *agent, size_t len)
{
    for (size_t i = 0; i < t->n_agents; i++) {
        if (t->agents[i]->dirty) {
            t->agents[i]->dirty = false;
            snprintf(agent, len, "%s", t->agents[i]->id);
            return true;
        }
    }
    return false;
}

size_t np_outage_dirty_count(const struct np_outage_tracker *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n_agents; i++) {
        n += t->agents[i]->dirty;
    }
    return n;
}
