#include "alert_rules.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLAP_TRACK 32 /* DOWN times remembered per site for flap damping */

enum site_state { ST_UP, ST_DOWN, ST_RECOVERING };

struct site {
    char id[NP_ALERT_ID_MAX + 1];
    enum site_state st;
    int64_t last_heard_ms;
    int64_t down_since_ms; /* last heard before the silence */
    int64_t resumed_ms;    /* RECOVERING: heard again at */
    bool notified;         /* the DOWN (or FLAPPING) notice went out */
    bool suppressed_rec;   /* a suppressed DOWN was recorded */
    bool pending;          /* waiting in a digest batch */
    int64_t next_reminder_ms;
    bool settled;
    int64_t settled_start_ms, settled_end_ms;
    char cause[NP_ALERT_CAUSE_MAX];
    int64_t downs[FLAP_TRACK]; /* times of recent DOWNs, ring */
    unsigned n_downs, flap_outages;
    bool flapping;
};

enum cond_family { CF_UPLINK, CF_IFACE, CF_UTIL, CF_SLA, CF_SPOOL, CF_DISK };

struct cond {
    enum cond_family fam;
    uint32_t hash; /* cond_hash() of (fam, site, subject) */
    char site[NP_ALERT_ID_MAX + 1];
    char subject[NP_ALERT_SUBJECT_MAX];
    bool is_true;     /* the condition holds (as last reported) */
    int64_t since_ms; /* holds since */
    bool notified;    /* the on-notice went out */
    int64_t start_ms; /* condition start in the notice */
    double value, threshold;
    int64_t last_ms;        /* UTIL: time of the last sample */
    bool clearing;          /* UTIL: notified, samples below util_clear ... */
    int64_t clear_since_ms; /* ... since */
};

/* A digest batch of one kind (DOWN, UP, REMINDER). */
struct batch {
    int64_t due_ms;
    struct np_alert **v;
    size_t n, cap;
};

struct np_alert_rules {
    struct np_alert_rules_config cfg;
    struct site *sites; /* sorted by id */
    size_t n_sites, cap_sites;
    struct cond *conds;
    size_t n_conds, cap_conds;
    /* Hash index over conds: slot = position + 1 (0: empty), open addressing,
     * at most half full; rebuilt when a cond is inserted (positions move). */
    uint32_t *cond_index;
    size_t index_cap; /* a power of two, or 0 */
    struct batch batches[3];
    struct np_alert **queue; /* FIFO of notices */
    size_t q_head, q_n, q_cap;
};

static const char *const kind_names[NP_ALERT_KIND_COUNT] = {
    "site_down",     "site_up",  "site_reminder", "site_flapping", "uplink_down", "uplink_up",
    "iface_down",    "iface_up", "util_high",     "util_ok",       "sla_risk",    "sla_ok",
    "spool_filling", "spool_ok", "spool_dropped", "disk_low",      "disk_ok",     "test",
};

static const char *const severity_names[] = {"info", "warning", "critical"};

const char *np_alert_kind_name(enum np_alert_kind k)
{
    return (unsigned)k < NP_ALERT_KIND_COUNT ? kind_names[k] : "unknown";
}

int np_alert_kind_parse(const char *s, enum np_alert_kind *out)
{
    for (int i = 0; i < NP_ALERT_KIND_COUNT; i++) {
        if (strcmp(s, kind_names[i]) == 0) {
            *out = (enum np_alert_kind)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *np_alert_severity_name(enum np_alert_severity s)
{
    return (unsigned)s <= NP_ALERT_CRITICAL ? severity_names[s] : "unknown";
}

int np_alert_severity_parse(const char *s, enum np_alert_severity *out)
{
    for (int i = 0; i <= NP_ALERT_CRITICAL; i++) {
        if (strcmp(s, severity_names[i]) == 0) {
            *out = (enum np_alert_severity)i;
            return 0;
        }
    }
    return -EINVAL;
}

enum np_alert_severity np_alert_kind_severity(enum np_alert_kind k)
{
    switch (k) {
    case NP_ALERT_SITE_DOWN:
    case NP_ALERT_SITE_REMINDER:
    case NP_ALERT_UPLINK_DOWN:
    case NP_ALERT_SPOOL_DROPPED:
    case NP_ALERT_DISK_LOW:
        return NP_ALERT_CRITICAL;
    case NP_ALERT_SITE_FLAPPING:
    case NP_ALERT_IFACE_DOWN:
    case NP_ALERT_UTIL_HIGH:
    case NP_ALERT_SLA_RISK:
    case NP_ALERT_SPOOL_FILLING:
        return NP_ALERT_WARNING;
    default:
        return NP_ALERT_INFO;
    }
}

void np_alert_rules_defaults(struct np_alert_rules_config *c)
{
    memset(c, 0, sizeof *c);
    c->site_down_after_ms = 120000;
    c->hold_down_ms = 60000;
    c->settle_wait_ms = 600000;
    c->digest_window_ms = 30000;
    c->digest_min = 3;
    c->flap_window_ms = 3600000;
    c->flap_max = 3;
    c->flap_stable_ms = 900000;
    c->reminder_ms = 4 * 3600000;
    c->uplink = true;
    c->iface = true;
    c->uplink_hold_ms = 60000;
    c->iface_hold_ms = 60000;
    c->util_threshold = 0.9;
    c->util_duration_ms = 900000;
    c->util_clear = 0.8;
    c->util_clear_ms = 300000;
    c->sla = true;
    c->sla_budget_left = 0;
    c->spool_threshold = 0.8;
    c->spool_dropped = true;
    c->disk_free_min = 0.1;
}

struct np_alert *np_alert_new(enum np_alert_kind kind)
{
    struct np_alert *a = calloc(1, sizeof *a);
    if (a) {
        a->kind = kind;
        a->severity = np_alert_kind_severity(kind);
    }
    return a;
}

void np_alert_free(struct np_alert *a)
{
    if (a) {
        free(a->sites);
        free(a);
    }
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap) {
        n = cap - 1;
    }
    if (n) {
        memcpy(dst, src, n);
    }
    dst[n] = '\0';
}

/* The state_db rule for ids: 1..64 of [A-Za-z0-9._-], not starting '.' '-'. */
static bool valid_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > NP_ALERT_ID_MAX || s[0] == '.' || s[0] == '-') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

int np_alert_rules_new(const struct np_alert_rules_config *cfg, struct np_alert_rules **out)
{
    *out = NULL;
    if (cfg->site_down_after_ms <= 0 || cfg->hold_down_ms < 0 || cfg->settle_wait_ms < 0 ||
        cfg->digest_window_ms < 0 || cfg->flap_window_ms < 0 || cfg->flap_stable_ms < 0 ||
        cfg->reminder_ms < 0 || cfg->flap_max > FLAP_TRACK - 1) {
        return -EINVAL;
    }
    struct np_alert_rules *r = calloc(1, sizeof *r);
    if (!r) {
        return -ENOMEM;
    }
    r->cfg = *cfg;
    if (r->cfg.digest_min < 2) {
        r->cfg.digest_min = 2;
    }
    *out = r;
    return 0;
}

void np_alert_rules_free(struct np_alert_rules *r)
{
    if (!r) {
        return;
    }
    for (size_t i = 0; i < r->q_n; i++) {
        np_alert_free(r->queue[(r->q_head + i) % r->q_cap]);
    }
    for (int b = 0; b < 3; b++) {
        for (size_t i = 0; i < r->batches[b].n; i++) {
            np_alert_free(r->batches[b].v[i]);
        }
        free(r->batches[b].v);
    }
    free(r->queue);
    free(r->sites);
    free(r->conds);
    free(r->cond_index);
    free(r);
}

/* ---- queue ---------------------------------------------------------------- */

static int enqueue(struct np_alert_rules *r, struct np_alert *a)
{
    if (r->q_n == r->q_cap) {
        size_t cap = r->q_cap ? r->q_cap * 2 : 16;
        struct np_alert **q = malloc(cap * sizeof *q);
        if (!q) {
            np_alert_free(a);
            return -ENOMEM;
        }
        for (size_t i = 0; i < r->q_n; i++) {
            q[i] = r->queue[(r->q_head + i) % r->q_cap];
        }
        free(r->queue);
        r->queue = q;
        r->q_cap = cap;
        r->q_head = 0;
    }
    r->queue[(r->q_head + r->q_n) % r->q_cap] = a;
    r->q_n++;
    return 0;
}

struct np_alert *np_alert_rules_pop(struct np_alert_rules *r)
{
    if (!r->q_n) {
        return NULL;
    }
    struct np_alert *a = r->queue[r->q_head];
    r->q_head = (r->q_head + 1) % r->q_cap;
    r->q_n--;
    return a;
}

/* ---- sites ---------------------------------------------------------------- */

static struct site *find_site(const struct np_alert_rules *r, const char *id, size_t *pos)
{
    size_t lo = 0, hi = r->n_sites;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->sites[mid].id, id);
        if (c == 0) {
            if (pos) {
                *pos = mid;
            }
            return &r->sites[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (pos) {
        *pos = lo;
    }
    return NULL;
}

static struct site *get_site(struct np_alert_rules *r, const char *id, int64_t now_ms)
{
    size_t pos;
    struct site *s = find_site(r, id, &pos);
    if (s) {
        return s;
    }
    if (r->n_sites == r->cap_sites) {
        size_t cap = r->cap_sites ? r->cap_sites * 2 : 16;
        struct site *v = realloc(r->sites, cap * sizeof *v);
        if (!v) {
            return NULL;
        }
        r->sites = v;
        r->cap_sites = cap;
    }
    memmove(&r->sites[pos + 1], &r->sites[pos], (r->n_sites - pos) * sizeof *r->sites);
    r->n_sites++;
    s = &r->sites[pos];
    memset(s, 0, sizeof *s);
    copy_str(s->id, sizeof s->id, id);
    s->st = ST_UP;
    s->last_heard_ms = now_ms;
    return s;
}

bool np_alert_rules_site_down(const struct np_alert_rules *r, const char *site)
{
    const struct site *s = find_site(r, site, NULL);
    return s && s->st != ST_UP;
}

static bool in_maint(const struct np_alert_rules *r, const char *site, int64_t now_ms)
{
    return site[0] && r->cfg.in_maintenance &&
           r->cfg.in_maintenance(r->cfg.maintenance_ctx, site, now_ms);
}

static struct np_alert *site_alert(enum np_alert_kind kind, const struct site *s, int64_t now_ms)
{
    struct np_alert *a = np_alert_new(kind);
    if (!a) {
        return NULL;
    }
    a->time_ms = now_ms;
    copy_str(a->site, sizeof a->site, s->id);
    a->start_ms = s->down_since_ms;
    return a;
}

/* Batches: 0 DOWN, 1 UP, 2 REMINDER. */
static int batch_of(enum np_alert_kind k)
{
    return k == NP_ALERT_SITE_DOWN ? 0 : k == NP_ALERT_SITE_UP ? 1 : 2;
}

/* A site notice is due: through the digest batch, or at once. */
static int emit_site(struct np_alert_rules *r, struct np_alert *a, int64_t now_ms)
{
    if (!a) {
        return -ENOMEM;
    }
    if (r->cfg.digest_window_ms <= 0 || a->suppressed) {
        return enqueue(r, a);
    }
    struct batch *b = &r->batches[batch_of(a->kind)];
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        struct np_alert **v = realloc(b->v, cap * sizeof *v);
        if (!v) {
            np_alert_free(a);
            return -ENOMEM;
        }
        b->v = v;
        b->cap = cap;
    }
    if (b->n == 0) {
        b->due_ms = now_ms + r->cfg.digest_window_ms;
    }
    b->v[b->n++] = a;
    return 0;
}

static void flush_batch(struct np_alert_rules *r, int which, int64_t now_ms)
{
    struct batch *b = &r->batches[which];
    if (b->n == 0 || now_ms < b->due_ms) {
        return;
    }
    for (size_t i = 0; i < b->n; i++) {
        struct site *s = find_site(r, b->v[i]->site, NULL);
        if (s) {
            s->pending = false;
        }
    }
    if (b->n < r->cfg.digest_min) {
        for (size_t i = 0; i < b->n; i++) {
            enqueue(r, b->v[i]);
        }
        b->n = 0;
        return;
    }
    struct np_alert *d = np_alert_new(b->v[0]->kind);
    if (d) {
        d->sites = calloc(b->n, sizeof *d->sites);
    }
    if (!d || !d->sites) {
        /* Out of memory: send them one by one rather than lose them. */
        np_alert_free(d);
        for (size_t i = 0; i < b->n; i++) {
            enqueue(r, b->v[i]);
        }
        b->n = 0;
        return;
    }
    d->time_ms = now_ms;
    d->n_sites = b->n;
    d->start_ms = b->v[0]->start_ms;
    for (size_t i = 0; i < b->n; i++) {
        struct np_alert_site *ds = &d->sites[i];
        copy_str(ds->id, sizeof ds->id, b->v[i]->site);
        ds->start_ms = b->v[i]->start_ms;
        ds->end_ms = b->v[i]->end_ms;
        copy_str(ds->cause, sizeof ds->cause, b->v[i]->cause);
        if (b->v[i]->start_ms < d->start_ms) {
            d->start_ms = b->v[i]->start_ms;
        }
        np_alert_free(b->v[i]);
    }
    snprintf(d->key, sizeof d->key, "digest:%s:%" PRId64 ":%zu", np_alert_kind_name(d->kind),
             b->due_ms, d->n_sites);
    b->n = 0;
    enqueue(r, d);
}

/* Remove a site's pending notice of batch which (e.g. its DOWN when it came
 * back before the digest left). Returns true if one was removed. */
static bool unpend(struct np_alert_rules *r, int which, const char *site)
{
    struct batch *b = &r->batches[which];
    for (size_t i = 0; i < b->n; i++) {
        if (strcmp(b->v[i]->site, site) == 0) {
            np_alert_free(b->v[i]);
            memmove(&b->v[i], &b->v[i + 1], (b->n - i - 1) * sizeof *b->v);
            b->n--;
            return true;
        }
    }
    return false;
}

static unsigned recent_downs(struct site *s, const struct np_alert_rules *r, int64_t now_ms)
{
    unsigned n = 0;
    for (unsigned i = 0; i < s->n_downs && i < FLAP_TRACK; i++) {
        if (now_ms - s->downs[i] < r->cfg.flap_window_ms) {
            n++;
        }
    }
    return n;
}

static void note_down(struct site *s, int64_t now_ms)
{
    s->downs[s->n_downs % FLAP_TRACK] = now_ms;
    s->n_downs++;
}

/* The site has been silent for site_down_after: it is down now. */
static int site_went_down(struct np_alert_rules *r, struct site *s, int64_t now_ms, bool bounced)
{
    if (!bounced) {
        s->down_since_ms = s->last_heard_ms;
        s->settled = false;
        s->cause[0] = '\0';
    }
    s->st = ST_DOWN;
    if (r->cfg.flap_max && recent_downs(s, r, now_ms) >= r->cfg.flap_max) {
        note_down(s, now_ms);
        s->flap_outages++;
        if (s->flapping) {
            return 0; /* quiet until stable */
        }
        s->flapping = true;
        if (!s->notified) {
            /* a flapping notice replaces the DOWN; its UP comes when stable */
            struct np_alert *a = site_alert(NP_ALERT_SITE_FLAPPING, s, now_ms);
            if (!a) {
                return -ENOMEM;
            }
            a->count = recent_downs(s, r, now_ms);
            a->suppressed = in_maint(r, s->id, now_ms);
            snprintf(a->key, sizeof a->key, "site_flapping:%s:%" PRId64, s->id, now_ms);
            s->notified = !a->suppressed;
            return enqueue(r, a);
        }
        return 0;
    }
    note_down(s, now_ms);
    if (bounced) {
        return 0; /* the outage goes on; its DOWN (if any) stands */
    }
    s->notified = false;
    s->suppressed_rec = false;
    if (in_maint(r, s->id, now_ms)) {
        struct np_alert *a = site_alert(NP_ALERT_SITE_DOWN, s, now_ms);
        if (!a) {
            return -ENOMEM;
        }
        a->suppressed = true;
        snprintf(a->key, sizeof a->key, "site_down:%s:%" PRId64, s->id, s->down_since_ms);
        s->suppressed_rec = true;
        return enqueue(r, a);
    }
    struct np_alert *a = site_alert(NP_ALERT_SITE_DOWN, s, now_ms);
    if (!a) {
        return -ENOMEM;
    }
    snprintf(a->key, sizeof a->key, "site_down:%s:%" PRId64, s->id, s->down_since_ms);
    s->notified = true;
    s->pending = true;
    s->next_reminder_ms = r->cfg.reminder_ms ? now_ms + r->cfg.reminder_ms : 0;
    return emit_site(r, a, now_ms);
}

static int site_came_up(struct np_alert_rules *r, struct site *s, int64_t now_ms)
{
    s->st = ST_UP;
    bool was_flapping = s->flapping;
    s->flapping = false;
    if (!s->notified) {
        if (s->suppressed_rec) {
            struct np_alert *a = site_alert(NP_ALERT_SITE_UP, s, now_ms);
            if (!a) {
                return -ENOMEM;
            }
            a->suppressed = true;
            a->end_ms = s->settled ? s->settled_end_ms : s->resumed_ms;
            snprintf(a->key, sizeof a->key, "site_up:%s:%" PRId64, s->id, s->down_since_ms);
            s->suppressed_rec = false;
            return enqueue(r, a);
        }
        return 0;
    }
    s->notified = false;
    struct np_alert *a = site_alert(NP_ALERT_SITE_UP, s, now_ms);
    if (!a) {
        return -ENOMEM;
    }
    if (s->settled && !was_flapping) {
        a->start_ms = s->settled_start_ms;
        a->end_ms = s->settled_end_ms;
        copy_str(a->cause, sizeof a->cause, s->cause);
    } else {
        a->end_ms = s->resumed_ms;
        copy_str(a->cause, sizeof a->cause, was_flapping ? "flapping" : "pending");
    }
    a->count = was_flapping ? s->flap_outages : 0;
    s->flap_outages = 0;
    a->suppressed = in_maint(r, s->id, now_ms);
    snprintf(a->key, sizeof a->key, "site_up:%s:%" PRId64, s->id, s->down_since_ms);
    return emit_site(r, a, now_ms);
}

static void tick_site(struct np_alert_rules *r, struct site *s, int64_t now_ms)
{
    const struct np_alert_rules_config *c = &r->cfg;
    bool silent = now_ms - s->last_heard_ms >= c->site_down_after_ms;
    switch (s->st) {
    case ST_UP:
        if (silent) {
            site_went_down(r, s, now_ms, false);
        }
        break;
    case ST_DOWN:
        if (!s->notified && !s->suppressed_rec && !s->flapping && !in_maint(r, s->id, now_ms)) {
            /* went down in maintenance, still down after it: notify now */
            struct np_alert *a = site_alert(NP_ALERT_SITE_DOWN, s, now_ms);
            if (a) {
                snprintf(a->key, sizeof a->key, "site_down:%s:%" PRId64, s->id, s->down_since_ms);
                s->notified = true;
                s->next_reminder_ms = c->reminder_ms ? now_ms + c->reminder_ms : 0;
                emit_site(r, a, now_ms);
            }
        } else if (s->suppressed_rec && !in_maint(r, s->id, now_ms)) {
            s->suppressed_rec = false; /* notified on the next tick */
        }
        if (s->notified && !s->flapping && s->next_reminder_ms && now_ms >= s->next_reminder_ms) {
            struct np_alert *a = site_alert(NP_ALERT_SITE_REMINDER, s, now_ms);
            if (a) {
                snprintf(a->key, sizeof a->key, "site_reminder:%s:%" PRId64 ":%" PRId64, s->id,
                         s->down_since_ms, s->next_reminder_ms);
                a->suppressed = in_maint(r, s->id, now_ms);
                emit_site(r, a, now_ms);
            }
            s->next_reminder_ms += c->reminder_ms;
        }
        break;
    case ST_RECOVERING: {
        if (silent) {
            site_went_down(r, s, now_ms, true);
            break;
        }
        int64_t hold = s->flapping ? c->flap_stable_ms : c->hold_down_ms;
        int64_t up_for = now_ms - s->resumed_ms;
        if (up_for >= hold && (s->settled || s->flapping || up_for >= c->settle_wait_ms)) {
            site_came_up(r, s, now_ms);
        }
        break;
    }
    }
}

static int heard(struct np_alert_rules *r, const char *site, int64_t now_ms)
{
    struct site *s = get_site(r, site, now_ms);
    if (!s) {
        return -ENOMEM;
    }
    s->last_heard_ms = now_ms;
    if (s->st == ST_DOWN) {
        if (s->pending && unpend(r, 0, s->id)) {
            /* back before its DOWN left: nothing was said, nothing to say */
            s->pending = false;
            s->notified = false;
            s->st = ST_UP;
            return 0;
        }
        s->st = ST_RECOVERING;
        s->resumed_ms = now_ms;
        tick_site(r, s, now_ms); /* hold_down 0 and settled: UP at once */
    }
    return 0;
}

static int settled(struct np_alert_rules *r, const struct np_alert_input *in)
{
    struct site *s = find_site(r, in->site, NULL);
    if (!s || s->st == ST_UP || in->end_ms <= 0) {
        return 0;
    }
    /* The outage must belong to this silence: it ends after the site went
     * quiet (the agent's clock may differ a little: allow a down_after). */
    if (in->end_ms < s->down_since_ms - r->cfg.site_down_after_ms) {
        return 0;
    }
    if (!s->settled || in->end_ms - in->start_ms > s->settled_end_ms - s->settled_start_ms) {
        s->settled_start_ms = in->start_ms;
        s->settled_end_ms = in->end_ms;
        copy_str(s->cause, sizeof s->cause, in->cause ? in->cause : "unknown");
    }
    s->settled = true;
    return 0;
}

/* ---- conditions ----------------------------------------------------------- */

/* Order of conds: family, site, subject (as stored: cut at its size). */
static int cond_cmp(const struct cond *c, enum cond_family fam, const char *site, const char *sub)
{
    if (c->fam != fam) {
        return c->fam < fam ? -1 : 1;
    }
    int d = strcmp(c->site, site);
    return d ? d : strncmp(c->subject, sub, sizeof c->subject - 1);
}

/* FNV-1a over what identifies a cond: its family, its site and its subject
 * as stored (the first NP_ALERT_SUBJECT_MAX - 1 bytes). */
static uint32_t cond_hash(enum cond_family fam, const char *site, const char *sub)
{
    uint32_t h = 2166136261u ^ (uint32_t)fam;
    h *= 16777619u;
    for (const char *p = site; *p; p++) {
        h = (h ^ (unsigned char)*p) * 16777619u;
    }
    h = (h ^ 0xffu) * 16777619u; /* separator: no byte of a string */
    for (size_t i = 0; sub[i] && i < NP_ALERT_SUBJECT_MAX - 1; i++) {
        h = (h ^ (unsigned char)sub[i]) * 16777619u;
    }
    return h;
}

/* Rebuilds the hash index for the conds as they are now; on failure
 * (-ENOMEM) the index is dropped and lookups fall back to binary search. */
static void index_rebuild(struct np_alert_rules *r)
{
    size_t cap = r->index_cap ? r->index_cap : 64;
    while (cap < 2 * r->n_conds) {
        cap *= 2;
    }
    if (cap != r->index_cap) {
        free(r->cond_index);
        r->cond_index = malloc(cap * sizeof *r->cond_index);
        r->index_cap = r->cond_index ? cap : 0;
        if (!r->cond_index) {
            return;
        }
    }
    memset(r->cond_index, 0, cap * sizeof *r->cond_index);
    for (size_t i = 0; i < r->n_conds; i++) {
        size_t k = r->conds[i].hash & (cap - 1);
        while (r->cond_index[k]) {
            k = (k + 1) & (cap - 1);
        }
        r->cond_index[k] = (uint32_t)(i + 1);
    }
}

/* The condition (fam, site, subject), created when new. conds stay sorted
 * (the tick walks them in this order); a hash index finds one without string
 * compares along a binary search: a district's every interface has one for
 * utilisation, and every sample looks its own up. The pointer is good until
 * the next call. */
static struct cond *get_cond(struct np_alert_rules *r, enum cond_family fam, const char *site,
                             const char *subject)
{
    const char *sub = subject ? subject : "";
    uint32_t h = cond_hash(fam, site, sub);
    if (r->index_cap) {
        for (size_t k = h & (r->index_cap - 1); r->cond_index[k];
             k = (k + 1) & (r->index_cap - 1)) {
            struct cond *c = &r->conds[r->cond_index[k] - 1];
            if (c->hash == h && cond_cmp(c, fam, site, sub) == 0) {
                return c;
            }
        }
    }
    /* Not there (or no index): the sorted position, to insert at. */
    size_t lo = 0, hi = r->n_conds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int d = cond_cmp(&r->conds[mid], fam, site, sub);
        if (d == 0) {
            return &r->conds[mid];
        }
        if (d < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (r->n_conds == r->cap_conds) {
        size_t cap = r->cap_conds ? r->cap_conds * 2 : 16;
        struct cond *v = realloc(r->conds, cap * sizeof *v);
        if (!v) {
            return NULL;
        }
        r->conds = v;
        r->cap_conds = cap;
    }
    memmove(&r->conds[lo + 1], &r->conds[lo], (r->n_conds - lo) * sizeof *r->conds);
    r->n_conds++;
    struct cond *c = &r->conds[lo];
    memset(c, 0, sizeof *c);
    c->fam = fam;
    c->hash = h;
    copy_str(c->site, sizeof c->site, site);
    copy_str(c->subject, sizeof c->subject, sub);
    index_rebuild(r);
    return c;
}

static const struct {
    enum np_alert_kind on, off;
} fam_kinds[] = {
    [CF_UPLINK] = {NP_ALERT_UPLINK_DOWN, NP_ALERT_UPLINK_UP},
    [CF_IFACE] = {NP_ALERT_IFACE_DOWN, NP_ALERT_IFACE_UP},
    [CF_UTIL] = {NP_ALERT_UTIL_HIGH, NP_ALERT_UTIL_OK},
    [CF_SLA] = {NP_ALERT_SLA_RISK, NP_ALERT_SLA_OK},
    [CF_SPOOL] = {NP_ALERT_SPOOL_FILLING, NP_ALERT_SPOOL_OK},
    [CF_DISK] = {NP_ALERT_DISK_LOW, NP_ALERT_DISK_OK},
};

static int64_t fam_hold(const struct np_alert_rules *r, enum cond_family f)
{
    switch (f) {
    case CF_UPLINK:
        return r->cfg.uplink_hold_ms;
    case CF_IFACE:
        return r->cfg.iface_hold_ms;
    case CF_UTIL:
        return r->cfg.util_duration_ms;
    default:
        return 0;
    }
}

static int cond_notice(struct np_alert_rules *r, struct cond *c, bool on, int64_t now_ms)
{
    struct np_alert *a = np_alert_new(on ? fam_kinds[c->fam].on : fam_kinds[c->fam].off);
    if (!a) {
        return -ENOMEM;
    }
    a->time_ms = now_ms;
    copy_str(a->site, sizeof a->site, c->site);
    copy_str(a->subject, sizeof a->subject, c->subject);
    a->start_ms = c->start_ms;
    a->end_ms = on ? 0 : now_ms;
    a->value = c->value;
    a->threshold = c->threshold;
    a->suppressed = in_maint(r, c->site, now_ms);
    snprintf(a->key, sizeof a->key, "%s:%s:%s:%" PRId64, np_alert_kind_name(a->kind), c->site,
             c->subject, c->start_ms);
    return enqueue(r, a);
}

static void tick_cond(struct np_alert_rules *r, struct cond *c, int64_t now_ms)
{
    if (c->fam == CF_UTIL || c->fam == CF_SLA) {
        return; /* judged when their samples arrive (util_set, sla_set) */
    }
    if (c->is_true && !c->notified && now_ms - c->since_ms >= fam_hold(r, c->fam)) {
        /* the site's own DOWN covers an uplink or interface seen down while
         * it is silent */
        if ((c->fam == CF_UPLINK || c->fam == CF_IFACE) && c->site[0] &&
            np_alert_rules_site_down(r, c->site)) {
            return;
        }
        c->notified = true;
        cond_notice(r, c, true, now_ms);
    }
}

/* Sets the condition's truth; clears (with a notice if the on-notice went
 * out) when it no longer holds. */
static int cond_set(struct np_alert_rules *r, enum cond_family fam, const struct np_alert_input *in,
                    bool is_true, bool clear, int64_t since_ms, int64_t now_ms)
{
    const char *site = in->site ? in->site : "";
    struct cond *c = get_cond(r, fam, site, in->subject);
    if (!c) {
        return -ENOMEM;
    }
    c->value = in->value;
    c->threshold = in->threshold;
    if (is_true && !c->is_true) {
        c->is_true = true;
        c->since_ms = since_ms;
        c->start_ms = since_ms;
    } else if (!is_true && clear && c->is_true) {
        c->is_true = false;
        if (c->notified) {
            c->notified = false;
            return cond_notice(r, c, false, now_ms);
        }
        return 0;
    }
    tick_cond(r, c, now_ms);
    return 0;
}

/* Utilisation on the samples' timeline (see the header). */
static int util_set(struct np_alert_rules *r, const struct np_alert_input *in, int64_t now_ms)
{
    const struct np_alert_rules_config *cfg = &r->cfg;
    struct cond *c = get_cond(r, CF_UTIL, in->site, in->subject);
    if (!c) {
        return -ENOMEM;
    }
    int64_t t = in->time_ms;
    int64_t from = in->start_ms > 0 && in->start_ms <= t ? in->start_ms : t;
    bool gap = c->last_ms && t - c->last_ms > NP_ALERT_UTIL_GAP_MS;
    if (c->last_ms && t <= c->last_ms) {
        return 0; /* a sample seen already (replay) or out of order */
    }
    c->last_ms = t;
    c->threshold = cfg->util_threshold;
    if (!c->notified) {
        c->value = in->value;
        if (in->value < cfg->util_threshold) {
            c->is_true = false;
            return 0;
        }
        if (!c->is_true || gap) {
            c->is_true = true;
            c->since_ms = c->start_ms = from;
        }
        if (t - c->since_ms >= cfg->util_duration_ms) {
            c->notified = true;
            c->clearing = false;
            return cond_notice(r, c, true, now_ms);
        }
        return 0;
    }
    if (in->value >= cfg->util_clear) {
        c->clearing = false;
        c->value = in->value > c->value ? in->value : c->value; /* the peak, for the notice */
        return 0;
    }
    if (!c->clearing || gap) {
        c->clearing = true;
        c->clear_since_ms = from;
    }
    if (t - c->clear_since_ms < cfg->util_clear_ms) {
        return 0;
    }
    c->value = in->value;
    c->is_true = c->notified = c->clearing = false;
    return cond_notice(r, c, false, now_ms);
}

/* SLA per site and month (see the header). */
static int sla_set(struct np_alert_rules *r, const struct np_alert_input *in, int64_t now_ms)
{
    struct cond *c = get_cond(r, CF_SLA, in->site, NULL);
    if (!c) {
        return -ENOMEM;
    }
    if (c->start_ms != in->start_ms) { /* a new month: a clean slate */
        c->is_true = c->notified = false;
        c->start_ms = in->start_ms;
    }
    c->value = in->value;
    c->threshold = in->threshold;
    c->is_true = in->budget_left < r->cfg.sla_budget_left;
    if (c->is_true && !c->notified) {
        c->notified = true;
        c->since_ms = in->time_ms;
        return cond_notice(r, c, true, now_ms);
    }
    return 0;
}

void np_alert_sla_input(const char *site, int64_t month_start_ms, int64_t month_end_ms,
                        int64_t allowed_ms, int64_t used_ms, double target, int64_t now_ms,
                        struct np_alert_input *out)
{
    memset(out, 0, sizeof *out);
    out->kind = NP_ALERT_IN_SLA;
    out->site = site;
    out->time_ms = now_ms;
    out->start_ms = month_start_ms;
    out->end_ms = month_end_ms;
    out->threshold = target;
    if (allowed_ms > 0) {
        out->budget_left = (double)(allowed_ms - used_ms) / (double)allowed_ms;
    } else {
        out->budget_left = used_ms > 0 ? -1.0 : 1.0;
    }
    double den = allowed_ms > 0 && target < 1 ? (double)allowed_ms / (1 - target)
                                              : (double)(month_end_ms - month_start_ms);
    out->value = den > 0 ? 1.0 - (double)used_ms / den : 1.0;
    if (out->value < 0) {
        out->value = 0;
    }
}

static int dropped(struct np_alert_rules *r, const struct np_alert_input *in, int64_t now_ms)
{
    struct np_alert *a = np_alert_new(NP_ALERT_SPOOL_DROPPED);
    if (!a) {
        return -ENOMEM;
    }
    a->time_ms = now_ms;
    copy_str(a->site, sizeof a->site, in->site);
    a->start_ms = in->start_ms ? in->start_ms : in->time_ms;
    a->end_ms = in->end_ms;
    a->suppressed = in_maint(r, a->site, now_ms);
    snprintf(a->key, sizeof a->key, "spool_dropped:%s:%" PRId64 ":%" PRId64, a->site, a->start_ms,
             a->end_ms);
    return enqueue(r, a);
}

int np_alert_rules_input(struct np_alert_rules *r, const struct np_alert_input *in, int64_t now_ms)
{
    const struct np_alert_rules_config *c = &r->cfg;
    if (in->kind != NP_ALERT_IN_DISK && !valid_id(in->site)) {
        return -EINVAL;
    }
    switch (in->kind) {
    case NP_ALERT_IN_HEARD:
        return heard(r, in->site, now_ms);
    case NP_ALERT_IN_SETTLED:
        return settled(r, in);
    case NP_ALERT_IN_UPLINK:
        if (!c->uplink) {
            return 0;
        }
        if (!in->up && in->end_ms > 0) {
            return 0; /* already over when learned: the site's UP tells it */
        }
        return cond_set(r, CF_UPLINK, in, !in->up, in->up, in->time_ms, now_ms);
    case NP_ALERT_IN_IFACE:
        if (!c->iface || !in->subject) {
            return c->iface ? -EINVAL : 0;
        }
        return cond_set(r, CF_IFACE, in, !in->up, in->up, in->time_ms, now_ms);
    case NP_ALERT_IN_UTIL:
        if (c->util_threshold <= 0 || !in->subject) {
            return c->util_threshold > 0 ? -EINVAL : 0;
        }
        return util_set(r, in, now_ms);
    case NP_ALERT_IN_SLA:
        return c->sla ? sla_set(r, in, now_ms) : 0;
    case NP_ALERT_IN_SPOOL:
        if (c->spool_threshold <= 0) {
            return 0;
        } else {
            struct np_alert_input x = *in;
            x.threshold = c->spool_threshold;
            return cond_set(r, CF_SPOOL, &x, in->value >= c->spool_threshold,
                            in->value < c->spool_threshold - 0.1, in->time_ms, now_ms);
        }
    case NP_ALERT_IN_DROPPED:
        return c->spool_dropped ? dropped(r, in, now_ms) : 0;
    case NP_ALERT_IN_DISK:
        if (c->disk_free_min <= 0) {
            return 0;
        } else {
            struct np_alert_input x = *in;
            x.site = "";
            x.subject = NULL;
            x.threshold = c->disk_free_min;
            return cond_set(r, CF_DISK, &x, in->value < c->disk_free_min,
                            in->value >= c->disk_free_min + 0.02, in->time_ms, now_ms);
        }
    }
    return -EINVAL;
}

void np_alert_rules_tick(struct np_alert_rules *r, int64_t now_ms)
{
    for (size_t i = 0; i < r->n_sites; i++) {
        tick_site(r, &r->sites[i], now_ms);
    }
    for (size_t i = 0; i < r->n_conds; i++) {
        tick_cond(r, &r->conds[i], now_ms);
    }
    for (int b = 0; b < 3; b++) {
        flush_batch(r, b, now_ms);
    }
}

int np_alert_rules_restore(struct np_alert_rules *r, const char *site, int64_t since_ms,
                           bool notified, int64_t now_ms)
{
    if (!valid_id(site)) {
        return -EINVAL;
    }
    struct site *s = get_site(r, site, now_ms);
    if (!s) {
        return -ENOMEM;
    }
    s->st = ST_DOWN;
    s->down_since_ms = since_ms;
    s->last_heard_ms = now_ms - r->cfg.site_down_after_ms; /* silent until heard */
    s->notified = notified;
    s->suppressed_rec = !notified;
    s->next_reminder_ms = notified && r->cfg.reminder_ms ? now_ms + r->cfg.reminder_ms : 0;
    return 0;
}

static const enum cond_family kind_fams[] = {CF_UPLINK, CF_IFACE, CF_UTIL, CF_SPOOL, CF_DISK};

bool np_alert_kind_cond(enum np_alert_kind kind, enum np_alert_kind *off)
{
    for (size_t i = 0; i < sizeof kind_fams / sizeof kind_fams[0]; i++) {
        if (fam_kinds[kind_fams[i]].on == kind) {
            if (off) {
                *off = fam_kinds[kind_fams[i]].off;
            }
            return true;
        }
    }
    return false;
}

int np_alert_rules_restore_cond(struct np_alert_rules *r, enum np_alert_kind on_kind,
                                const char *site, const char *subject, int64_t start_ms,
                                double value, double threshold)
{
    const size_t n = sizeof kind_fams / sizeof kind_fams[0];
    size_t i = 0;
    while (i < n && fam_kinds[kind_fams[i]].on != on_kind) {
        i++;
    }
    if (i == n) {
        return -EINVAL;
    }
    bool district = kind_fams[i] == CF_DISK; /* the collector's own: no site */
    if (!district && !valid_id(site)) {
        return -EINVAL;
    }
    struct cond *c = get_cond(r, kind_fams[i], district ? "" : site, subject);
    if (!c) {
        return -ENOMEM;
    }
    c->is_true = c->notified = true;
    c->since_ms = c->start_ms = start_ms;
    c->value = value;
    c->threshold = threshold;
    return 0;
}

void np_alert_rules_each_down(const struct np_alert_rules *r, np_alert_rules_down_cb cb, void *ctx)
{
    for (size_t i = 0; i < r->n_sites; i++) {
        const struct site *s = &r->sites[i];
        if (s->st != ST_UP) {
            cb(ctx, s->id, s->down_since_ms, s->st == ST_RECOVERING);
        }
    }
}
