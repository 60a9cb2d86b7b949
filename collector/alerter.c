#include "alerter.h"

#include "alert_db.h"
#include "alert_mail.h"
#include "curl_uv.h"
#include "iface_key.h"
#include "metrics.h"
#include "netpulse/clock.h"
#include "netpulse/log.h"
#include "netpulse/wire.h"
#include "report_data.h"
#include "report_time.h"
#include "state_db.h"

#include <curl/curl.h>
#include <jansson.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>

#define TICK_MS 1000
#define SITES_EVERY 15     /* polls between reads of the inventory */
#define MAX_INFLIGHT 8     /* deliveries at once */
#define DUE_BATCH 16       /* deliveries taken per due job */
#define MAX_RECIPIENTS 200 /* per e-mail */
#define MAX_MAINT 4096     /* maintenance windows cached */
#define SLA_BATCH 32       /* sites per SLA job: the job queue is not held long */
#define ALERTS_DB "alerts.db"

/* ---- caches kept on the loop thread --------------------------------------- */

struct site_info {
    char id[NP_ALERT_ID_MAX + 1];
    char *name;
    char *contacts;
    int school_type;      /* enum np_school_type; -1 unknown */
    uint64_t circuit_bps; /* the inventory's circuit rate; 0: not known */
    uint64_t applied_seq;
    bool known_seq;
};

struct maint {
    char site[NP_ALERT_ID_MAX + 1];
    int64_t start_ms, end_ms;
};

/* An outage read for a recovering site. */
struct settle {
    char site[NP_ALERT_ID_MAX + 1];
    int64_t start_ms, end_ms;
    char cause[NP_ALERT_CAUSE_MAX];
};

/* A delivery taken from the database. */
struct delivery {
    int64_t id;
    int64_t attempts, created_ms;
    char *channel, *target;
    char *body;
    size_t len, off;
    /* while sending */
    CURL *easy;
    struct curl_slist *list;
    char errbuf[CURL_ERROR_SIZE];
    bool done; /* transfer over; its ATTEMPT job owns it now */
    struct np_alerter *al;
    struct delivery *next; /* in flight list */
};

enum job_kind { JOB_RESTORE, JOB_POLL, JOB_RECORD, JOB_DUE, JOB_ATTEMPT, JOB_SLA };

/* One site's month for the SLA rule (JOB_SLA). */
struct sla_row {
    char site[NP_ALERT_ID_MAX + 1];
    bool ok; /* computed */
    int64_t month_start_ms, month_end_ms, allowed_ms, used_ms;
    double target;
};

struct job {
    enum job_kind kind;
    struct job *next;
    int ret;
    struct np_err err;
    int64_t now_ms;
    /* POLL */
    bool read_sites;
    struct site_info *sites; /* sorted by id */
    size_t n_sites;
    struct maint *maint;
    size_t n_maint;
    char (*recovering)[NP_ALERT_ID_MAX + 1];
    int64_t *recovering_since;
    size_t n_recovering;
    struct settle *settles;
    size_t n_settles, cap_settles;
    double disk_free;
    /* RECORD */
    struct np_alert *alert;
    char *subject;
    struct np_delivery_new dnew[1 + 16];
    char *dbody[1 + 16];
    char *dtarget[1 + 16];
    char dchannel[1 + 16][80];
    size_t n_dnew;
    bool created;
    /* DUE */
    int64_t *exclude;
    size_t n_exclude;
    struct delivery **taken;
    size_t n_taken;
    int64_t next_due_ms;
    /* ATTEMPT */
    struct delivery *d;
    bool sent, give_up;
    long code;
    char error[CURL_ERROR_SIZE + 64];
    int64_t retry_ms;
    /* RESTORE */
    struct settle *down; /* site, start = since, end = notified */
    size_t n_down, cap_down;
    /* SLA */
    struct sla_row *sla;
    size_t n_sla;
    double sla_s; /* time taken */
};

/* What the ingest metrics said of an agent at the last tick. */
struct seen {
    char id[72];
    int64_t last_seen_ms;
};

struct np_alerter {
    uv_loop_t *loop;
    const struct np_metrics *metrics; /* borrowed; NULL: heard from applied seqs */
    struct seen *seen;
    size_t n_seen, cap_seen;
    struct np_collector_config *cfg;
    const struct np_collector_alerts *a;
    char *dashboard_url;
    struct np_alert_rules *rules;
    struct np_curl_uv *cu;
    struct np_alert_db *adb; /* jobs only */
    struct np_state_db *sdb; /* jobs only */
    uv_timer_t tick;
    uv_work_t work;
    struct job *q_head, *q_tail, *running;
    unsigned n_jobs;
    struct site_info *sites;
    size_t n_sites;
    struct maint *maint;
    size_t n_maint;
    struct delivery *inflight;
    unsigned n_inflight;
    int64_t mono0_ms, wall0_ms;
    int64_t next_poll_ms, next_due_ms; /* wall timeline; 0: not scheduled */
    int64_t next_sla_ms;
    size_t sla_cursor; /* next site of the SLA round (index in sites) */
    bool sla_queued;
    unsigned polls;
    bool poll_queued, due_queued, restored, stopping;
    bool need_sites; /* a site without name/contacts yet: read the inventory */
    struct np_complain smtp_complain;
};

static int64_t now_ms(const struct np_alerter *al)
{
    return al->wall0_ms + ((int64_t)uv_now(al->loop) - al->mono0_ms);
}

/* ---- site cache ----------------------------------------------------------- */

static int cmp_site(const void *a, const void *b)
{
    return strcmp(((const struct site_info *)a)->id, ((const struct site_info *)b)->id);
}

static struct site_info *find_site(struct site_info *v, size_t n, const char *id)
{
    struct site_info key;
    if (!n) {
        return NULL;
    }
    snprintf(key.id, sizeof key.id, "%s", id);
    return bsearch(&key, v, n, sizeof *v, cmp_site);
}

static void free_sites(struct site_info *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].contacts);
    }
    free(v);
}

static const char *site_name_cb(void *ctx, const char *id)
{
    struct np_alerter *al = ctx;
    struct site_info *s = find_site(al->sites, al->n_sites, id);
    return s ? s->name : NULL;
}

static bool maint_cb(void *ctx, const char *site, int64_t t)
{
    struct np_alerter *al = ctx;
    for (size_t i = 0; i < al->n_maint; i++) {
        if (strcmp(al->maint[i].site, site) == 0 && t >= al->maint[i].start_ms &&
            t < al->maint[i].end_ms) {
            return true;
        }
    }
    return false;
}

/* ---- the job queue: one database job at a time, in order ------------------ */

static void job_free(struct job *j)
{
    if (!j) {
        return;
    }
    free_sites(j->sites, j->n_sites);
    free(j->maint);
    free(j->recovering);
    free(j->recovering_since);
    free(j->settles);
    np_alert_free(j->alert);
    free(j->subject);
    for (size_t i = 0; i < j->n_dnew; i++) {
        free(j->dbody[i]);
        free(j->dtarget[i]);
    }
    free(j->exclude);
    for (size_t i = 0; i < j->n_taken; i++) {
        if (j->taken[i]) {
            free(j->taken[i]->channel);
            free(j->taken[i]->target);
            free(j->taken[i]->body);
            free(j->taken[i]);
        }
    }
    free(j->taken);
    free(j->down);
    free(j->sla);
    free(j);
}

static void run_next_job(struct np_alerter *al);
static void job_work(uv_work_t *w);
static void job_after(uv_work_t *w, int status);

static void queue_job(struct np_alerter *al, struct job *j)
{
    j->next = NULL;
    if (al->q_tail) {
        al->q_tail->next = j;
    } else {
        al->q_head = j;
    }
    al->q_tail = j;
    al->n_jobs++;
    run_next_job(al);
}

static void run_next_job(struct np_alerter *al)
{
    if (al->running || !al->q_head) {
        return;
    }
    struct job *j = al->q_head;
    al->q_head = j->next;
    if (!al->q_head) {
        al->q_tail = NULL;
    }
    al->running = j;
    al->work.data = al;
    int rc = uv_queue_work(al->loop, &al->work, job_work, job_after);
    if (rc != 0) {
        np_log(NP_LOG_ERR, "alerter: cannot queue a job err=%s", uv_strerror(rc));
        al->running = NULL;
        al->n_jobs--;
        job_free(j);
    }
}

/* ---- jobs: the thread-pool side ------------------------------------------- */

struct poll_ctx {
    struct job *j;
    size_t cap;
};

static int on_agent(const struct np_agent_info *ag, void *arg)
{
    struct poll_ctx *pc = arg;
    struct job *j = pc->j;
    if (ag->revoked_ms || ag->applied_seq == 0) {
        return 0;
    }
    if (j->n_sites == pc->cap) {
        size_t cap = pc->cap ? pc->cap * 2 : 64;
        struct site_info *v = realloc(j->sites, cap * sizeof *v);
        if (!v) {
            return -ENOMEM;
        }
        j->sites = v;
        pc->cap = cap;
    }
    struct site_info *s = &j->sites[j->n_sites++];
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "%s", ag->id);
    s->applied_seq = ag->applied_seq;
    s->known_seq = true;
    s->school_type = -1;
    return 0;
}

static int on_maint(const struct np_maintenance *m, void *arg)
{
    struct job *j = arg;
    if (j->n_maint >= MAX_MAINT) {
        return 0;
    }
    struct maint *x = &j->maint[j->n_maint++];
    snprintf(x->site, sizeof x->site, "%s", m->site_id);
    x->start_ms = m->start_ms;
    x->end_ms = m->end_ms;
    return 0;
}

static void add_settle(struct job *j, const char *site, int64_t start, int64_t end,
                       const char *cause)
{
    if (j->n_settles == j->cap_settles) {
        size_t cap = j->cap_settles ? j->cap_settles * 2 : 16;
        struct settle *v = realloc(j->settles, cap * sizeof *v);
        if (!v) {
            return;
        }
        j->settles = v;
        j->cap_settles = cap;
    }
    struct settle *s = &j->settles[j->n_settles++];
    snprintf(s->site, sizeof s->site, "%s", site);
    s->start_ms = start;
    s->end_ms = end;
    snprintf(s->cause, sizeof s->cause, "%s", cause);
}

/* The rate in force now: the latest recorded change (`netpulse circuit set`)
 * that has started, else the inventory's. */
struct rate_now {
    int64_t now_ms;
    uint64_t bps;
};

static int on_rate_change(int64_t from_ms, uint64_t rate_bps, void *ctx)
{
    struct rate_now *r = ctx;
    if (from_ms > r->now_ms) {
        return 1; /* oldest first: the rest lie ahead too */
    }
    if (rate_bps > 0) {
        r->bps = rate_bps;
    }
    return 0;
}

static void poll_sites_info(struct np_alerter *al, struct job *j)
{
    json_t *arr = NULL;
    struct np_err err = {0};
    if (np_state_db_sites_json(al->sdb, &arr, &err) != 0) {
        np_log(NP_LOG_WARN, "alerter: reading the site inventory failed err=%s", err.msg);
        return;
    }
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        const char *id = json_string_value(json_object_get(o, "id"));
        struct site_info *s = id ? find_site(j->sites, j->n_sites, id) : NULL;
        if (!s) {
            continue; /* no agent heard: no alerts */
        }
        const char *name = json_string_value(json_object_get(o, "name"));
        const char *contacts = json_string_value(json_object_get(o, "contacts"));
        const char *type = json_string_value(json_object_get(o, "school_type"));
        enum np_school_type t;
        s->name = name ? strdup(name) : NULL;
        s->contacts = contacts ? strdup(contacts) : NULL;
        json_t *circuit = json_object_get(o, "circuit_bps");
        struct rate_now rn = {np_clock_wall_ms(),
                              json_is_integer(circuit) && json_integer_value(circuit) > 0
                                  ? (uint64_t)json_integer_value(circuit)
                                  : 0};
        if (np_state_db_rates_list(al->sdb, id, on_rate_change, &rn, &err) < 0) {
            np_log(NP_LOG_WARN, "alerter: reading circuit changes failed site=%s err=%s", id,
                   err.msg);
        }
        s->circuit_bps = rn.bps;
        s->school_type = type && np_school_type_parse(type, &t) == 0 ? (int)t : -1;
    }
    json_decref(arr);
}

static void work_poll(struct np_alerter *al, struct job *j)
{
    struct poll_ctx pc = {j, 0};
    if ((j->ret = np_state_db_agent_list(al->sdb, on_agent, &pc)) != 0) {
        return;
    }
    if (j->n_sites) {
        qsort(j->sites, j->n_sites, sizeof *j->sites, cmp_site);
    }
    if (j->read_sites) {
        poll_sites_info(al, j);
    }
    j->maint = calloc(MAX_MAINT, sizeof *j->maint);
    if (j->maint) {
        np_state_db_maintenance_list(al->sdb, NULL, j->now_ms - 1000,
                                     j->now_ms + 2 * al->a->poll_ms + 60000, on_maint, j, NULL);
    }
    for (size_t i = 0; i < j->n_recovering; i++) {
        json_t *arr = NULL;
        int64_t from = j->recovering_since[i] - al->a->site_down_after_ms;
        if (np_state_db_outages_json(al->sdb, j->recovering[i], from, j->now_ms + 1, j->now_ms,
                                     &arr, NULL) != 0) {
            continue;
        }
        size_t k;
        json_t *o;
        json_array_foreach(arr, k, o)
        {
            const char *state = json_string_value(json_object_get(o, "state"));
            const char *cause = json_string_value(json_object_get(o, "cause"));
            json_t *end = json_object_get(o, "end_ms");
            if (state && strcmp(state, "confirmed") == 0 && json_is_integer(end)) {
                add_settle(j, j->recovering[i], json_integer_value(json_object_get(o, "start_ms")),
                           json_integer_value(end), cause ? cause : "unknown");
            }
        }
        json_decref(arr);
    }
    struct statvfs vfs;
    j->disk_free = -1;
    if (statvfs(al->cfg->collector->data_dir, &vfs) == 0 && vfs.f_blocks > 0) {
        j->disk_free = (double)vfs.f_bavail / (double)vfs.f_blocks;
    }
}

static int on_due(const struct np_delivery *d, void *arg)
{
    struct job *j = arg;
    for (size_t i = 0; i < j->n_exclude; i++) {
        if (j->exclude[i] == d->id) {
            return 0;
        }
    }
    struct delivery *x = calloc(1, sizeof *x);
    if (!x) {
        return -ENOMEM;
    }
    x->id = d->id;
    x->attempts = d->attempts;
    x->created_ms = d->created_ms;
    x->channel = strdup(d->channel);
    x->target = strdup(d->target);
    x->body = malloc(d->body_len + 1);
    if (x->body) {
        memcpy(x->body, d->body, d->body_len);
        x->body[d->body_len] = '\0';
    }
    x->len = d->body_len;
    j->taken[j->n_taken++] = x;
    if (!x->channel || !x->target || !x->body) {
        return -ENOMEM;
    }
    return 0;
}

static int on_down(const char *site, int64_t since, bool notified, void *arg)
{
    struct job *j = arg;
    if (j->n_down == j->cap_down) {
        size_t cap = j->cap_down ? j->cap_down * 2 : 16;
        struct settle *v = realloc(j->down, cap * sizeof *v);
        if (!v) {
            return -ENOMEM;
        }
        j->down = v;
        j->cap_down = cap;
    }
    struct settle *s = &j->down[j->n_down++];
    snprintf(s->site, sizeof s->site, "%s", site);
    s->start_ms = since;
    s->end_ms = notified;
    return 0;
}

/* The month-to-date downtime budget of every site in j->sla (report_data.h,
 * without RRD series: the outages and maintenance in the state database are
 * the evidence, as for `netpulse uptime`). */
static void work_sla(struct np_alerter *al, struct job *j)
{
    struct np_report_ctx ctx = {al->sdb, NULL, al->cfg->targets, j->now_ms};
    int64_t from, to;
    uint64_t t0 = np_clock_mono_ns();
    np_report_month_of(j->now_ms, &from, &to);
    if (j->now_ms <= from) {
        return;
    }
    for (size_t i = 0; i < j->n_sla; i++) {
        struct sla_row *x = &j->sla[i];
        struct np_site_figures *f = calloc(1, sizeof *f);
        struct np_err err = {0};
        if (!f) {
            j->ret = -ENOMEM;
            return;
        }
        if (np_report_site(&ctx, x->site, from, j->now_ms, NULL, NULL, f, &err) == 0 &&
            f->budget_month.end_ms > f->budget_month.start_ms) {
            x->ok = true;
            x->month_start_ms = f->budget_month.start_ms;
            x->month_end_ms = f->budget_month.end_ms;
            x->allowed_ms = f->budget_month.allowed_ms;
            x->used_ms = f->budget_month.used_ms;
            x->target = np_collector_uptime_target(al->cfg->targets, f->school_type);
        } else if (err.msg[0]) {
            np_log(NP_LOG_DEBUG, "alerter: month uptime not computed site=%s err=%s", x->site,
                   err.msg);
        }
        np_report_site_free(f);
        free(f);
    }
    j->sla_s = (double)(np_clock_mono_ns() - t0) / 1e9;
}

static void job_work(uv_work_t *w)
{
    struct np_alerter *al = w->data;
    struct job *j = al->running;
    switch (j->kind) {
    case JOB_RESTORE:
        j->ret = np_alert_db_down_sites(al->adb, on_down, j, &j->err);
        break;
    case JOB_POLL:
        work_poll(al, j);
        break;
    case JOB_RECORD:
        j->ret = np_alert_db_record(al->adb, j->alert, j->subject, j->dnew, j->n_dnew, j->now_ms,
                                    NULL, &j->created, &j->err);
        break;
    case JOB_DUE:
        j->taken = calloc(DUE_BATCH, sizeof *j->taken);
        if (!j->taken) {
            j->ret = -ENOMEM;
            break;
        }
        j->ret =
            np_alert_db_due(al->adb, j->now_ms, DUE_BATCH > MAX_INFLIGHT ? MAX_INFLIGHT : DUE_BATCH,
                            on_due, j, &j->next_due_ms, &j->err);
        break;
    case JOB_ATTEMPT:
        j->ret = np_alert_db_attempt(al->adb, j->d->id, j->sent, j->code, j->error, j->now_ms,
                                     j->retry_ms, j->give_up, &j->err);
        break;
    case JOB_SLA:
        work_sla(al, j);
        break;
    }
}

/* ---- jobs: back on the loop ----------------------------------------------- */

static void process_notices(struct np_alerter *al);
static void queue_due(struct np_alerter *al);
static void start_delivery(struct np_alerter *al, struct delivery *d);

static void feed(struct np_alerter *al, const struct np_alert_input *in)
{
    int rc = np_alert_rules_input(al->rules, in, now_ms(al));
    if (rc != 0 && rc != -EINVAL) {
        np_log(NP_LOG_WARN, "alerter: input refused err=%s", np_strerror(rc));
    }
}

static void after_poll(struct np_alerter *al, struct job *j)
{
    if (j->ret != 0) {
        np_log(NP_LOG_WARN, "alerter: reading the state database failed err=%s",
               j->err.msg[0] ? j->err.msg : np_strerror(j->ret));
        return;
    }
    /* heard: applied sequence grew since the last poll (or first sight) */
    for (size_t i = 0; i < j->n_sites; i++) {
        struct site_info *s = &j->sites[i];
        struct site_info *old = find_site(al->sites, al->n_sites, s->id);
        if (!old || (!al->metrics && s->applied_seq != old->applied_seq)) {
            struct np_alert_input in = {.kind = NP_ALERT_IN_HEARD, .site = s->id};
            feed(al, &in);
        }
        if (!j->read_sites && !old) {
            al->need_sites = true;
        }
        if (!j->read_sites && old) { /* keep the names and contacts read before */
            s->name = old->name;
            s->contacts = old->contacts;
            s->school_type = old->school_type;
            s->circuit_bps = old->circuit_bps;
            old->name = old->contacts = NULL;
        }
    }
    free_sites(al->sites, al->n_sites);
    al->sites = j->sites;
    al->n_sites = j->n_sites;
    j->sites = NULL;
    j->n_sites = 0;
    if (j->maint) {
        free(al->maint);
        al->maint = j->maint;
        al->n_maint = j->n_maint;
        j->maint = NULL;
    }
    for (size_t i = 0; i < j->n_settles; i++) {
        struct settle *s = &j->settles[i];
        struct np_alert_input in = {.kind = NP_ALERT_IN_SETTLED,
                                    .site = s->site,
                                    .start_ms = s->start_ms,
                                    .end_ms = s->end_ms,
                                    .cause = s->cause};
        feed(al, &in);
    }
    if (j->disk_free >= 0) {
        struct np_alert_input in = {
            .kind = NP_ALERT_IN_DISK, .time_ms = j->now_ms, .value = j->disk_free};
        feed(al, &in);
    }
    process_notices(al);
}

static void after_due(struct np_alerter *al, struct job *j)
{
    al->due_queued = false;
    if (j->ret != 0) {
        np_log(NP_LOG_WARN, "alerter: reading deliveries failed err=%s",
               j->err.msg[0] ? j->err.msg : np_strerror(j->ret));
        al->next_due_ms = now_ms(al) + 5000;
        return;
    }
    for (size_t i = 0; i < j->n_taken; i++) {
        struct delivery *d = j->taken[i];
        j->taken[i] = NULL;
        if (al->stopping) {
            free(d->channel);
            free(d->target);
            free(d->body);
            free(d);
            continue;
        }
        start_delivery(al, d);
    }
    if (j->n_taken == DUE_BATCH || j->n_taken == MAX_INFLIGHT) {
        al->next_due_ms = now_ms(al); /* more may be due */
    } else {
        al->next_due_ms = j->next_due_ms;
    }
}

static void free_delivery(struct delivery *d)
{
    if (d->easy) {
        curl_easy_cleanup(d->easy);
    }
    curl_slist_free_all(d->list);
    free(d->channel);
    free(d->target);
    free(d->body);
    free(d);
}

static void after_attempt(struct np_alerter *al, struct job *j)
{
    struct delivery **pp = &al->inflight;
    while (*pp && *pp != j->d) {
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = j->d->next;
        al->n_inflight--;
    }
    if (j->ret != 0 && j->ret != -ENOENT) {
        np_log(NP_LOG_ERR, "alerter: recording a delivery attempt failed id=%" PRId64 " err=%s",
               j->d->id, j->err.msg);
    }
    free_delivery(j->d);
    j->d = NULL;
    if (!al->next_due_ms || j->retry_ms < al->next_due_ms) {
        al->next_due_ms = j->sent || j->give_up ? now_ms(al) : j->retry_ms;
    }
}

static void after_sla(struct np_alerter *al, struct job *j)
{
    al->sla_queued = false;
    size_t n_ok = 0;
    for (size_t i = 0; i < j->n_sla; i++) {
        const struct sla_row *x = &j->sla[i];
        if (!x->ok) {
            continue;
        }
        struct np_alert_input in;
        np_alert_sla_input(x->site, x->month_start_ms, x->month_end_ms, x->allowed_ms, x->used_ms,
                           x->target, j->now_ms, &in);
        feed(al, &in);
        n_ok++;
    }
    np_log(NP_LOG_DEBUG, "alerter: month uptime computed sites=%zu of %zu seconds=%.3f", n_ok,
           j->n_sla, j->sla_s);
    process_notices(al);
}

static void after_restore(struct np_alerter *al, struct job *j)
{
    al->restored = true;
    if (j->ret != 0) {
        np_log(NP_LOG_ERR, "alerter: reading the sites recorded down failed err=%s", j->err.msg);
        return;
    }
    for (size_t i = 0; i < j->n_down; i++) {
        np_alert_rules_restore(al->rules, j->down[i].site, j->down[i].start_ms,
                               j->down[i].end_ms != 0, now_ms(al));
    }
    if (j->n_down) {
        np_log(NP_LOG_INFO, "alerter: restored sites_down=%zu", j->n_down);
    }
    al->next_due_ms = now_ms(al); /* deliveries left pending by the last run */
}

static void job_after(uv_work_t *w, int status)
{
    struct np_alerter *al = w->data;
    struct job *j = al->running;
    (void)status;
    al->running = NULL;
    al->n_jobs--;
    switch (j->kind) {
    case JOB_RESTORE:
        after_restore(al, j);
        break;
    case JOB_POLL:
        al->poll_queued = false;
        after_poll(al, j);
        break;
    case JOB_RECORD:
        if (j->ret != 0) {
            np_log(NP_LOG_ERR, "alerter: recording alert failed key=%s err=%s", j->alert->key,
                   j->err.msg);
        } else if (j->created) {
            np_log(j->alert->suppressed ? NP_LOG_INFO : NP_LOG_NOTICE,
                   "alerter: alert kind=%s site=%s sites=%zu severity=%s%s deliveries=%zu",
                   np_alert_kind_name(j->alert->kind), j->alert->site[0] ? j->alert->site : "-",
                   j->alert->n_sites, np_alert_severity_name(j->alert->severity),
                   j->alert->suppressed ? " suppressed=maintenance" : "", j->n_dnew);
            if (!j->alert->suppressed) {
                al->next_due_ms = now_ms(al);
            }
        }
        break;
    case JOB_DUE:
        after_due(al, j);
        break;
    case JOB_ATTEMPT:
        after_attempt(al, j);
        break;
    case JOB_SLA:
        after_sla(al, j);
        break;
    }
    job_free(j);
    if (!al->stopping) {
        queue_due(al);
    }
    run_next_job(al);
}

/* ---- routing, rendering, recording ---------------------------------------- */

struct rcpts {
    char *v[MAX_RECIPIENTS];
    size_t n;
};

static int add_rcpt(const char *addr, void *arg)
{
    struct rcpts *r = arg;
    if (r->n >= MAX_RECIPIENTS || !np_alert_mail_valid_address(addr)) {
        return 0;
    }
    for (size_t i = 0; i < r->n; i++) {
        if (strcasecmp(r->v[i], addr) == 0) {
            return 0;
        }
    }
    r->v[r->n] = strdup(addr);
    if (r->v[r->n]) {
        r->n++;
    }
    return 0;
}

static void route_site(struct np_alerter *al, const char *site, struct rcpts *r)
{
    const struct np_collector_alerts *a = al->a;
    struct site_info *s = find_site(al->sites, al->n_sites, site);
    if (!s) {
        return;
    }
    if (a->to_site_contacts && s->contacts) {
        /* site import refuses control characters: a contacts field with them
         * did not come from there, so none of it is trusted */
        bool clean = true;
        for (const unsigned char *p = (const unsigned char *)s->contacts; *p; p++) {
            clean = clean && *p >= 0x20 && *p != 0x7f;
        }
        if (clean) {
            np_alert_mail_split(s->contacts, add_rcpt, r, NULL);
        } else {
            np_log(NP_LOG_WARN, "alerter: contacts with control characters ignored site=%s", s->id);
        }
    }
    const struct np_strlist *l = NULL;
    switch (s->school_type) {
    case NP_SCHOOL_ELEMENTARY:
        l = &a->to_elementary;
        break;
    case NP_SCHOOL_MIDDLE:
        l = &a->to_middle;
        break;
    case NP_SCHOOL_HIGH:
        l = &a->to_high;
        break;
    case NP_SCHOOL_OTHER:
        l = &a->to_other;
        break;
    default:
        break;
    }
    for (size_t i = 0; l && i < l->count; i++) {
        add_rcpt(l->items[i], r);
    }
}

/* A recovery goes to whoever got the notice it ends: it routes with that
 * notice's severity. */
static int route_severity(const struct np_alert *x)
{
    static const enum np_alert_kind on_of[][2] = {
        {NP_ALERT_SITE_UP, NP_ALERT_SITE_DOWN},   {NP_ALERT_UPLINK_UP, NP_ALERT_UPLINK_DOWN},
        {NP_ALERT_IFACE_UP, NP_ALERT_IFACE_DOWN}, {NP_ALERT_UTIL_OK, NP_ALERT_UTIL_HIGH},
        {NP_ALERT_SLA_OK, NP_ALERT_SLA_RISK},     {NP_ALERT_SPOOL_OK, NP_ALERT_SPOOL_FILLING},
        {NP_ALERT_DISK_OK, NP_ALERT_DISK_LOW},
    };
    for (size_t i = 0; i < sizeof on_of / sizeof on_of[0]; i++) {
        if (x->kind == on_of[i][0]) {
            return (int)np_alert_kind_severity(on_of[i][1]);
        }
    }
    return (int)x->severity;
}

static void route(struct np_alerter *al, const struct np_alert *x, struct rcpts *r)
{
    const struct np_collector_smtp *m = al->cfg->smtp;
    if (route_severity(x) >= al->a->district_min) {
        for (size_t i = 0; i < m->to.count; i++) {
            add_rcpt(m->to.items[i], r);
        }
    }
    if (route_severity(x) >= al->a->site_contacts_min) {
        if (x->n_sites) {
            for (size_t i = 0; i < x->n_sites; i++) {
                route_site(al, x->sites[i].id, r);
            }
        } else if (x->site[0]) {
            route_site(al, x->site, r);
        }
    }
}

static char *webhook_json(const struct np_alert *x, const struct np_alert_text *t, int format,
                          const char *site_name)
{
    json_t *o = NULL;
    if (format == 1) { /* slack */
        char *s = NULL;
        size_t n = strlen(t->subject) + strlen(t->text) + 2;
        s = malloc(n);
        if (!s) {
            return NULL;
        }
        snprintf(s, n, "%s\n%s", t->subject, t->text);
        o = json_pack("{s:s}", "text", s);
        free(s);
    } else if (format == 2) { /* teams: MessageCard */
        const char *color = x->severity == NP_ALERT_CRITICAL  ? "D70000"
                            : x->severity == NP_ALERT_WARNING ? "FFA500"
                                                              : "2E8B57";
        o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "@type", "MessageCard", "@context",
                      "https://schema.org/extensions", "summary", t->subject, "themeColor", color,
                      "title", t->subject, "text", t->text);
        if (o && t->link[0]) {
            json_object_set_new(o, "potentialAction",
                                json_pack("[{s:s, s:s, s:[{s:s, s:s}]}]", "@type", "OpenUri",
                                          "name", "Dashboard", "targets", "os", "default", "uri",
                                          t->link));
        }
    } else {
        json_t *sites = json_array();
        for (size_t i = 0; sites && i < x->n_sites; i++) {
            json_array_append_new(sites, json_pack("{s:s, s:I, s:I, s:s}", "id", x->sites[i].id,
                                                   "start_ms", (json_int_t)x->sites[i].start_ms,
                                                   "end_ms", (json_int_t)x->sites[i].end_ms,
                                                   "cause", x->sites[i].cause));
        }
        o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:b, s:s, s:s, s:s, "
                      "s:o}",
                      "source", "netpulse", "kind", np_alert_kind_name(x->kind), "severity",
                      np_alert_severity_name(x->severity), "key", x->key, "site", x->site,
                      "subject", x->subject, "time_ms", (json_int_t)x->time_ms, "start_ms",
                      (json_int_t)x->start_ms, "end_ms", (json_int_t)x->end_ms, "cause", x->cause,
                      "suppressed", x->suppressed, "title", t->subject, "text", t->text, "link",
                      t->link, "sites", sites ? sites : json_null());
        if (o && site_name) {
            json_object_set_new(o, "site_name", json_string(site_name));
        }
    }
    if (!o) {
        return NULL;
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* Turns a notice into a RECORD job: the e-mail and the webhook bodies are
 * built now, so a retry after a restart sends exactly the same bytes. */
static void record_notice(struct np_alerter *al, struct np_alert *x)
{
    struct np_alert_render_opts ro = {al->dashboard_url, site_name_cb, al};
    struct np_alert_text t;
    struct job *j = calloc(1, sizeof *j);
    if (!j || np_alert_render(x, &ro, &t) != 0) {
        np_log(NP_LOG_ERR, "alerter: out of memory, alert lost key=%s", x->key);
        free(j);
        np_alert_free(x);
        return;
    }
    j->kind = JOB_RECORD;
    j->alert = x;
    j->now_ms = now_ms(al);
    j->subject = strdup(t.subject);
    const struct np_collector_smtp *m = al->cfg->smtp;
    if (m->url[0]) {
        struct rcpts r = {{0}, 0};
        route(al, x, &r);
        if (r.n) {
            const char *to[MAX_RECIPIENTS];
            struct np_err err = {0};
            char *msg = NULL, *targets = NULL;
            size_t len = 0, tlen = 0;
            for (size_t i = 0; i < r.n; i++) {
                to[i] = r.v[i];
                tlen += strlen(r.v[i]) + 1;
            }
            struct np_alert_mail_headers h = {m->from, to,      r.n,         x->time_ms,
                                              x->key,  x->kind, x->severity, x->site};
            targets = calloc(1, tlen + 1);
            if (targets && np_alert_mail_build(&t, &h, &msg, &len, &err) == 0) {
                for (size_t i = 0; i < r.n; i++) {
                    strncat(targets, r.v[i], tlen);
                    if (i + 1 < r.n) {
                        strncat(targets, ",", 2);
                    }
                }
                snprintf(j->dchannel[j->n_dnew], sizeof j->dchannel[0], "smtp");
                j->dbody[j->n_dnew] = msg;
                j->dtarget[j->n_dnew] = targets;
                j->dnew[j->n_dnew] =
                    (struct np_delivery_new){j->dchannel[j->n_dnew], targets, msg, len};
                j->n_dnew++;
            } else {
                np_log(NP_LOG_ERR, "alerter: cannot build the e-mail key=%s err=%s", x->key,
                       err.msg);
                free(targets);
            }
            for (size_t i = 0; i < r.n; i++) {
                free(r.v[i]);
            }
        }
    }
    for (size_t i = 0; i < al->cfg->n_webhooks && j->n_dnew < 17; i++) {
        const struct np_collector_webhook *w = al->cfg->webhooks[i];
        if (route_severity(x) < w->min_severity) {
            continue;
        }
        char *body = webhook_json(x, &t, w->format, x->site[0] ? site_name_cb(al, x->site) : NULL);
        if (!body) {
            continue;
        }
        snprintf(j->dchannel[j->n_dnew], sizeof j->dchannel[0], "webhook:%s", w->name);
        j->dbody[j->n_dnew] = body;
        j->dtarget[j->n_dnew] = strdup(w->name);
        j->dnew[j->n_dnew] = (struct np_delivery_new){j->dchannel[j->n_dnew], j->dtarget[j->n_dnew],
                                                      body, strlen(body)};
        j->n_dnew++;
    }
    np_alert_text_free(&t);
    queue_job(al, j);
}

static void process_notices(struct np_alerter *al)
{
    struct np_alert *x;
    while ((x = np_alert_rules_pop(al->rules)) != NULL) {
        record_notice(al, x);
    }
}

/* ---- delivery through libcurl --------------------------------------------- */

static size_t read_body(char *buf, size_t size, size_t nitems, void *arg)
{
    struct delivery *d = arg;
    size_t n = size * nitems, left = d->len - d->off;
    if (n > left) {
        n = left;
    }
    memcpy(buf, d->body + d->off, n);
    d->off += n;
    return n;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* The SMTP options shared by the daemon and `netpulse alert test`. */
static int smtp_setup(CURL *easy, const struct np_collector_smtp *m, const char *rcpts,
                      struct curl_slist **list, void *reader, char *errbuf)
{
    char one[NP_ALERT_MAIL_ADDR_MAX + 3];
    const char *p = rcpts;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (len && len <= NP_ALERT_MAIL_ADDR_MAX) {
            char addr[NP_ALERT_MAIL_ADDR_MAX + 1];
            memcpy(addr, p, len);
            addr[len] = '\0';
            if (np_alert_mail_valid_address(addr)) {
                snprintf(one, sizeof one, "<%s>", addr);
                struct curl_slist *l = curl_slist_append(*list, one);
                if (!l) {
                    return -ENOMEM;
                }
                *list = l;
            }
        }
        p += len;
        if (*p) {
            p++;
        }
    }
    if (!*list) {
        return -EINVAL;
    }
    snprintf(one, sizeof one, "<%s>", m->from);
    curl_easy_setopt(easy, CURLOPT_URL, m->url);
    curl_easy_setopt(easy, CURLOPT_MAIL_FROM, one);
    curl_easy_setopt(easy, CURLOPT_MAIL_RCPT, *list);
    curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(easy, CURLOPT_READFUNCTION, read_body);
    curl_easy_setopt(easy, CURLOPT_READDATA, reader);
    /* smtp://: STARTTLS required unless the config says otherwise; smtps://
     * is TLS from the first byte either way. */
    curl_easy_setopt(easy, CURLOPT_USE_SSL,
                     m->starttls == 0   ? (long)CURLUSESSL_ALL
                     : m->starttls == 1 ? (long)CURLUSESSL_TRY
                                        : (long)CURLUSESSL_NONE);
    if (m->ca_file[0]) {
        curl_easy_setopt(easy, CURLOPT_CAINFO, m->ca_file);
    }
    if (m->user[0]) {
        curl_easy_setopt(easy, CURLOPT_USERNAME, m->user);
        curl_easy_setopt(easy, CURLOPT_PASSWORD, m->password);
    }
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)m->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(m->timeout_ms < 15000 ? m->timeout_ms : 15000));
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    return 0;
}

static void queue_attempt(struct np_alerter *al, struct delivery *d, bool sent, long code,
                          const char *error)
{
    struct job *j = calloc(1, sizeof *j);
    int64_t now = now_ms(al);
    if (!j) {
        np_log(NP_LOG_ERR, "alerter: out of memory recording an attempt id=%" PRId64, d->id);
        return; /* stays in flight (never retried in this run): not sent twice */
    }
    j->kind = JOB_ATTEMPT;
    j->d = d;
    j->sent = sent;
    j->code = code;
    j->now_ms = now;
    snprintf(j->error, sizeof j->error, "%s", error ? error : "");
    if (!sent) {
        int64_t wait = al->a->retry_initial_ms;
        for (int64_t i = 0; i < d->attempts && wait < al->a->retry_max_ms; i++) {
            wait *= 2;
        }
        if (wait > al->a->retry_max_ms) {
            wait = al->a->retry_max_ms;
        }
        j->retry_ms = now + wait;
        j->give_up = now - d->created_ms >= al->a->give_up_after_ms;
    }
    queue_job(al, j);
}

static void on_done(CURL *easy, CURLcode result, void *ctx)
{
    struct delivery *d = ctx;
    struct np_alerter *al = d->al;
    long code = 0;
    d->done = true;
    char error[CURL_ERROR_SIZE + 64];
    bool smtp = strcmp(d->channel, "smtp") == 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    bool ok = result == CURLE_OK && (smtp || (code >= 200 && code < 300));
    if (result != CURLE_OK) {
        snprintf(error, sizeof error, "%s%s%s", curl_easy_strerror(result),
                 d->errbuf[0] ? ": " : "", d->errbuf);
    } else if (!ok) {
        snprintf(error, sizeof error, "HTTP status %ld", code);
    } else {
        error[0] = '\0';
    }
    if (ok) {
        np_log(NP_LOG_INFO, "alerter: delivered id=%" PRId64 " channel=%s code=%ld", d->id,
               d->channel, code);
        if (smtp) {
            np_complain_release(&al->smtp_complain, "alerter: smtp delivery");
        }
    } else if (smtp) {
        np_complain(&al->smtp_complain, NP_LOG_WARN,
                    "alerter: smtp delivery failed id=%" PRId64 " code=%ld err=%s", d->id, code,
                    error);
    } else {
        np_log(NP_LOG_WARN, "alerter: delivery failed id=%" PRId64 " channel=%s err=%s", d->id,
               d->channel, error);
    }
    queue_attempt(al, d, ok, code, error);
}

static const struct np_collector_webhook *find_webhook(struct np_alerter *al, const char *name)
{
    for (size_t i = 0; i < al->cfg->n_webhooks; i++) {
        if (strcmp(al->cfg->webhooks[i]->name, name) == 0) {
            return al->cfg->webhooks[i];
        }
    }
    return NULL;
}

static void start_delivery(struct np_alerter *al, struct delivery *d)
{
    const char *why = NULL;
    int rc;
    d->al = al;
    d->next = al->inflight;
    al->inflight = d;
    al->n_inflight++;
    d->easy = curl_easy_init();
    if (!d->easy) {
        why = "out of memory";
        goto out_fail;
    }
    if (strcmp(d->channel, "smtp") == 0) {
        if (!al->cfg->smtp->url[0]) {
            why = "[smtp] url is no longer set";
            goto out_fail;
        }
        if (smtp_setup(d->easy, al->cfg->smtp, d->target, &d->list, d, d->errbuf) != 0) {
            why = "no valid recipient";
            goto out_fail;
        }
        curl_easy_setopt(d->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)d->len);
    } else if (strncmp(d->channel, "webhook:", 8) == 0) {
        const struct np_collector_webhook *w = find_webhook(al, d->channel + 8);
        if (!w) {
            why = "webhook no longer configured";
            goto out_fail;
        }
        d->list = curl_slist_append(NULL, "Content-Type: application/json");
        curl_easy_setopt(d->easy, CURLOPT_URL, w->url);
        curl_easy_setopt(d->easy, CURLOPT_HTTPHEADER, d->list);
        curl_easy_setopt(d->easy, CURLOPT_POSTFIELDS, d->body);
        curl_easy_setopt(d->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)d->len);
        curl_easy_setopt(d->easy, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(d->easy, CURLOPT_TIMEOUT_MS, (long)w->timeout_ms);
        curl_easy_setopt(d->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(d->easy, CURLOPT_ERRORBUFFER, d->errbuf);
        curl_easy_setopt(d->easy, CURLOPT_PROTOCOLS_STR, "http,https");
        if (w->ca_file[0]) {
            curl_easy_setopt(d->easy, CURLOPT_CAINFO, w->ca_file);
        }
    } else {
        why = "unknown channel";
        goto out_fail;
    }
    if ((rc = np_curl_uv_add(al->cu, d->easy, on_done, d)) != 0) {
        why = np_strerror(rc);
        goto out_fail;
    }
    return;

out_fail:
    np_log(NP_LOG_WARN, "alerter: delivery not started id=%" PRId64 " channel=%s err=%s", d->id,
           d->channel, why);
    d->done = true;
    queue_attempt(al, d, false, 0, why);
}

/* ---- timers --------------------------------------------------------------- */

struct rec_ctx {
    struct job *j;
    size_t cap;
};

static void on_down_site(void *ctx, const char *site, int64_t since, bool recovering)
{
    struct rec_ctx *rc = ctx;
    struct job *j = rc->j;
    if (!recovering || j->n_recovering >= rc->cap) {
        return;
    }
    snprintf(j->recovering[j->n_recovering], sizeof j->recovering[0], "%s", site);
    j->recovering_since[j->n_recovering++] = since;
}

static void queue_poll(struct np_alerter *al)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        return;
    }
    j->kind = JOB_POLL;
    j->now_ms = now_ms(al);
    j->read_sites = al->polls++ % SITES_EVERY == 0 || al->need_sites;
    al->need_sites = false;
    size_t cap = 256;
    j->recovering = calloc(cap, sizeof *j->recovering);
    j->recovering_since = calloc(cap, sizeof *j->recovering_since);
    struct rec_ctx rc = {j, j->recovering && j->recovering_since ? cap : 0};
    np_alert_rules_each_down(al->rules, on_down_site, &rc);
    al->poll_queued = true;
    queue_job(al, j);
}

static void queue_due(struct np_alerter *al)
{
    int64_t now = now_ms(al);
    if (al->due_queued || !al->next_due_ms || al->next_due_ms > now ||
        al->n_inflight >= MAX_INFLIGHT || al->stopping) {
        return;
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        return;
    }
    j->kind = JOB_DUE;
    j->now_ms = now;
    j->exclude = calloc(al->n_inflight + 1, sizeof *j->exclude);
    for (struct delivery *d = al->inflight; d && j->exclude; d = d->next) {
        j->exclude[j->n_exclude++] = d->id;
    }
    al->due_queued = true;
    al->next_due_ms = 0;
    queue_job(al, j);
}

/* Every sla_interval a round over the sites heard: the month-to-date uptime,
 * off the loop (it reads a year of outages per site), SLA_BATCH sites per
 * job so that alerts recorded meanwhile do not wait long. Returns whether
 * the round is over. */
static bool queue_sla(struct np_alerter *al)
{
    if (al->sla_cursor >= al->n_sites) {
        al->sla_cursor = 0; /* the inventory shrank */
    }
    size_t n = al->n_sites - al->sla_cursor;
    n = n > SLA_BATCH ? SLA_BATCH : n;
    struct job *j = calloc(1, sizeof *j);
    if (!j || !n || !(j->sla = calloc(n, sizeof *j->sla))) {
        free(j);
        return true;
    }
    j->kind = JOB_SLA;
    j->now_ms = now_ms(al);
    for (size_t i = 0; i < n; i++) {
        memcpy(j->sla[i].site, al->sites[al->sla_cursor + i].id, sizeof j->sla[i].site);
    }
    j->n_sla = n;
    al->sla_cursor += n;
    al->sla_queued = true;
    queue_job(al, j);
    if (al->sla_cursor < al->n_sites) {
        return false;
    }
    al->sla_cursor = 0;
    return true;
}

static int cmp_seen(const void *a, const void *b)
{
    return strcmp(((const struct seen *)a)->id, ((const struct seen *)b)->id);
}

/* Heard: ingest received a batch of the agent (its newest created_ms moved)
 * since the last tick. Receipt, not application: a backlog being applied
 * slowly must not look like silence. */
static void check_metrics(struct np_alerter *al)
{
    const struct np_metrics *m = al->metrics;
    bool resort = false;
    size_t n_heard = 0;
    for (size_t i = 0; m && i < m->n_agents; i++) {
        const struct np_metrics_agent *ag = &m->agents[i];
        struct seen key, *s;
        snprintf(key.id, sizeof key.id, "%s", ag->id);
        s = al->n_seen ? bsearch(&key, al->seen, al->n_seen, sizeof *al->seen, cmp_seen) : NULL;
        if (s && s->last_seen_ms == ag->last_seen_ms) {
            continue;
        }
        if (!s) {
            if (al->n_seen == al->cap_seen) {
                size_t cap = al->cap_seen ? al->cap_seen * 2 : 64;
                struct seen *v = realloc(al->seen, cap * sizeof *v);
                if (!v) {
                    continue;
                }
                al->seen = v;
                al->cap_seen = cap;
            }
            s = &al->seen[al->n_seen++];
            memcpy(s->id, key.id, sizeof s->id);
            resort = true;
        }
        s->last_seen_ms = ag->last_seen_ms;
        struct np_alert_input in = {.kind = NP_ALERT_IN_HEARD, .site = ag->id};
        feed(al, &in);
        n_heard++;
        if (resort) {
            qsort(al->seen, al->n_seen, sizeof *al->seen, cmp_seen);
            resort = false;
        }
    }
    if (n_heard) {
        np_log(NP_LOG_DEBUG, "alerter: heard agents=%zu of %zu", n_heard, m->n_agents);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct np_alerter *al = t->data;
    int64_t now = now_ms(al);
    if (al->stopping || !al->restored) {
        return;
    }
    if (!al->poll_queued && now >= al->next_poll_ms) {
        al->next_poll_ms = now + al->a->poll_ms;
        queue_poll(al);
    }
    if (al->a->sla && !al->sla_queued && now >= al->next_sla_ms && al->n_sites) {
        /* a round not over goes on at the next tick */
        al->next_sla_ms = queue_sla(al) ? now + al->a->sla_interval_ms : now;
    }
    check_metrics(al);
    np_alert_rules_tick(al->rules, now);
    process_notices(al);
    queue_due(al);
}

/* ---- life cycle ----------------------------------------------------------- */

/* The conditions notified before a restart (np_alerter_new, before the loop
 * runs: so no event of a batch can overtake them). */
static int on_open_cond(enum np_alert_kind on_kind, const char *site, const char *subject,
                        int64_t start_ms, double value, double threshold, void *ctx)
{
    int rc = np_alert_rules_restore_cond(ctx, on_kind, site, subject, start_ms, value, threshold);
    if (rc == 0) {
        np_log(NP_LOG_INFO, "alerter: restored condition kind=%s site=%s subject=%s",
               np_alert_kind_name(on_kind), site[0] ? site : "-", subject[0] ? subject : "-");
    }
    return rc == -ENOMEM ? rc : 0;
}

static char *default_dashboard(const struct np_collector_config *cfg)
{
    const char *url = cfg->alerts->dashboard_url;
    if (url[0]) {
        size_t n = strlen(url);
        while (n > 0 && url[n - 1] == '/') {
            n--;
        }
        return strndup(url, n);
    }
    size_t n = strlen(cfg->collector->listen) + 16;
    char *s = malloc(n);
    if (s) {
        snprintf(s, n, "%s://%s", cfg->collector->plain_http ? "http" : "https",
                 cfg->collector->listen);
    }
    return s;
}

int np_alerter_new(uv_loop_t *loop, const char *config_path, const struct np_metrics *metrics,
                   struct np_alerter **out, struct np_err *err)
{
    struct np_alerter *al;
    int ret;
    char *path = NULL;
    *out = NULL;
    al = calloc(1, sizeof *al);
    if (!al) {
        return np_err_set(err, -ENOMEM, "alerter: out of memory");
    }
    al->loop = loop;
    al->metrics = metrics;
    if ((ret = np_collector_config_load(config_path, &al->cfg, err)) != 0) {
        goto out_free;
    }
    al->a = al->cfg->alerts;
    if (!al->a->enabled) {
        np_log(NP_LOG_NOTICE, "alerter: disabled ([alerts] enabled = no)");
        ret = 0;
        goto out_free;
    }
    struct np_alert_rules_config rc;
    np_alert_rules_defaults(&rc);
    rc.site_down_after_ms = al->a->site_down_after_ms;
    rc.hold_down_ms = al->a->hold_down_ms;
    rc.settle_wait_ms = al->a->settle_wait_ms;
    rc.digest_window_ms = al->a->digest_window_ms;
    rc.digest_min = (unsigned)al->a->digest_min;
    rc.flap_window_ms = al->a->flap_window_ms;
    rc.flap_max = (unsigned)al->a->flap_max;
    rc.flap_stable_ms = al->a->flap_stable_ms;
    rc.reminder_ms = al->a->reminder_ms;
    rc.uplink = al->a->uplink;
    rc.iface = al->a->interface;
    rc.uplink_hold_ms = al->a->uplink_hold_ms;
    rc.iface_hold_ms = al->a->interface_hold_ms;
    rc.util_threshold = al->a->utilisation;
    rc.util_duration_ms = al->a->utilisation_for_ms;
    rc.util_clear = al->a->utilisation_clear;
    rc.util_clear_ms = al->a->utilisation_clear_for_ms;
    rc.sla = al->a->sla;
    rc.sla_budget_left = al->a->sla_budget_left;
    rc.spool_threshold = al->a->spool;
    rc.spool_dropped = al->a->spool_dropped;
    rc.disk_free_min = al->a->disk_free_min;
    rc.in_maintenance = maint_cb;
    rc.maintenance_ctx = al;
    if ((ret = np_alert_rules_new(&rc, &al->rules)) != 0) {
        np_err_set(err, ret, "alerter: invalid rule settings");
        goto out_free;
    }
    al->dashboard_url = default_dashboard(al->cfg);
    size_t plen = strlen(al->cfg->collector->data_dir) + sizeof ALERTS_DB + 2;
    path = malloc(plen);
    if (!al->dashboard_url || !path) {
        ret = np_err_set(err, -ENOMEM, "alerter: out of memory");
        goto out_free;
    }
    snprintf(path, plen, "%s/%s", al->cfg->collector->data_dir, ALERTS_DB);
    if ((ret = np_alert_db_open(path, &al->adb, err)) != 0 ||
        (ret = np_alert_db_open_conditions(al->adb, on_open_cond, al->rules, err)) != 0 ||
        (ret = np_state_db_open(al->cfg->state_db_path, &al->sdb, err)) != 0 ||
        (ret = np_curl_uv_new(loop, &al->cu, err)) != 0) {
        goto out_free;
    }
    free(path);
    uv_timer_init(loop, &al->tick);
    al->tick.data = al;
    al->mono0_ms = (int64_t)uv_now(loop);
    al->wall0_ms = np_clock_wall_ms();
    *out = al;
    return 0;

out_free:
    free(path);
    np_curl_uv_free(al->cu);
    np_state_db_close(al->sdb);
    np_alert_db_close(al->adb);
    np_alert_rules_free(al->rules);
    free(al->dashboard_url);
    np_collector_config_free(al->cfg);
    free(al);
    return ret;
}

int np_alerter_start(struct np_alerter *al, struct np_err *err)
{
    (void)err;
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        return np_err_set(err, -ENOMEM, "alerter: out of memory");
    }
    j->kind = JOB_RESTORE;
    queue_job(al, j);
    uv_timer_start(&al->tick, on_tick, TICK_MS / 4, TICK_MS);
    np_log(NP_LOG_INFO, "alerter: started smtp=%s webhooks=%zu site_down_after_ms=%" PRId64,
           al->cfg->smtp->url[0] ? "yes" : "no", al->cfg->n_webhooks, al->a->site_down_after_ms);
    return 0;
}

int np_alerter_input(struct np_alerter *al, const struct np_alert_input *in)
{
    if (!al || al->stopping) {
        return 0;
    }
    int rc = np_alert_rules_input(al->rules, in, now_ms(al));
    process_notices(al);
    return rc;
}

/* Appends src to dst (cap bytes, len used) as far as it fits, cut bytewise
 * like snprintf; returns the new length. */
static size_t put_str(char *dst, size_t cap, size_t len, const char *src)
{
    size_t n = strlen(src);
    if (n > cap - 1 - len) {
        n = cap - 1 - len;
    }
    memcpy(dst + len, src, n);
    dst[len + n] = '\0';
    return len + n;
}

/* Drops an incomplete UTF-8 sequence that snprintf's cut left at the end of s
 * (the way ingest cuts the subjects of interface events). */
static void cut_utf8(char *s)
{
    size_t len = strlen(s), lead = len;
    while (lead > 0 && ((unsigned char)s[lead - 1] & 0xC0) == 0x80) {
        lead--; /* back over continuation bytes */
    }
    if (lead == 0) {
        return;
    }
    unsigned char c = (unsigned char)s[lead - 1];
    size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (len - (lead - 1) < need) {
        s[lead - 1] = '\0';
    }
}

void np_alerter_batch(struct np_alerter *al, const Netpulse__Batch *b)
{
    if (!al || al->stopping || al->a->utilisation <= 0) {
        return;
    }
    const struct site_info *site = find_site(al->sites, al->n_sites, b->agent_id);
    char key[NP_IFACE_KEY_MAX], subject[NP_ALERT_SUBJECT_MAX];
    int64_t now = now_ms(al);
    for (size_t i = 0; i < b->n_samples; i++) {
        const Netpulse__InterfaceSample *x = b->samples[i];
        if (!x->rate_valid || x->oper_status != NETPULSE__IF_STATUS__IF_STATUS_UP) {
            continue;
        }
        uint64_t rate = x->provisioned_bps;
        if (!rate && site && site->circuit_bps && np_iface_named_uplink(x->if_name, x->if_alias)) {
            rate = site->circuit_bps;
        }
        if (!rate) {
            rate = x->speed_bps;
        }
        if (!rate) {
            continue; /* no capacity known: no utilisation */
        }
        double busier = x->in_bps > x->out_bps ? x->in_bps : x->out_bps;
        np_iface_key(x->if_name, x->if_index, key, sizeof key);
        /* "DEVICE/KEY" (or KEY): no snprintf per sample, this runs for all. */
        size_t n = 0, want = strlen(key);
        if (x->device && x->device[0]) {
            want += strlen(x->device) + 1;
            n = put_str(subject, sizeof subject, n, x->device);
            n = put_str(subject, sizeof subject, n, "/");
        }
        put_str(subject, sizeof subject, n, key);
        if (want >= sizeof subject) {
            cut_utf8(subject);
        }
        struct np_alert_input in = {.kind = NP_ALERT_IN_UTIL,
                                    .site = b->agent_id,
                                    .subject = subject,
                                    .time_ms = x->time_ms,
                                    .start_ms =
                                        x->interval_ms > 0 ? x->time_ms - x->interval_ms : 0,
                                    .value = busier / (double)rate};
        int rc = np_alert_rules_input(al->rules, &in, now);
        if (rc != 0 && rc != -EINVAL) {
            np_log(NP_LOG_WARN, "alerter: utilisation input refused site=%s err=%s", b->agent_id,
                   np_strerror(rc));
        }
    }
    process_notices(al);
}

void np_alerter_stop(struct np_alerter *al)
{
    if (!al || al->stopping) {
        return;
    }
    al->stopping = true;
    uv_timer_stop(&al->tick);
    /* running transfers: cancelled; their rows stay pending for next time.
     * Finished ones belong to their queued ATTEMPT job, which still runs. */
    struct delivery **pp = &al->inflight;
    while (*pp) {
        struct delivery *d = *pp;
        if (d->done) {
            pp = &d->next;
            continue;
        }
        *pp = d->next;
        al->n_inflight--;
        if (d->easy) {
            np_curl_uv_cancel(al->cu, d->easy);
        }
        free_delivery(d);
    }
}

unsigned np_alerter_busy(const struct np_alerter *al)
{
    return al ? al->n_jobs : 0;
}

static void on_tick_closed(uv_handle_t *h)
{
    struct np_alerter *al = h->data;
    free(al);
}

void np_alerter_free(struct np_alerter *al)
{
    if (!al) {
        return;
    }
    np_alerter_stop(al);
    if (al->running) {
        /* a database job still runs in the pool (shutdown deadline passed):
         * leave it its memory rather than free it under its feet */
        np_log(NP_LOG_WARN, "alerter: exiting with a database job running");
        return;
    }
    while (al->q_head) {
        struct job *j = al->q_head;
        al->q_head = j->next;
        if (j->d) {
            free_delivery(j->d);
            j->d = NULL;
        }
        job_free(j);
    }
    np_curl_uv_free(al->cu);
    np_state_db_close(al->sdb);
    np_alert_db_close(al->adb);
    np_alert_rules_free(al->rules);
    free_sites(al->sites, al->n_sites);
    free(al->maint);
    free(al->seen);
    free(al->dashboard_url);
    np_collector_config_free(al->cfg);
    uv_close((uv_handle_t *)&al->tick, on_tick_closed);
}

/* ---- `netpulse alert test` ------------------------------------------------ */

int np_alerter_send_test(const struct np_collector_config *cfg, const char *to_override,
                         long *smtp_code, char *detail, size_t len, struct np_err *err)
{
    const struct np_collector_smtp *m = cfg->smtp;
    struct rcpts r = {{0}, 0};
    struct np_alert_text t = {0};
    struct delivery d = {0};
    struct np_alert *x = NULL;
    char *targets = NULL;
    CURL *easy = NULL;
    int ret = 0;
    *smtp_code = 0;
    if (detail && len) {
        detail[0] = '\0';
    }
    if (!m->url[0]) {
        return np_err_set(err, -EINVAL, "alert test: [smtp] url is not set");
    }
    if (to_override) {
        if (!np_alert_mail_valid_address(to_override)) {
            return np_err_set(err, -EINVAL, "alert test: not a plain e-mail address: --to");
        }
        add_rcpt(to_override, &r);
    } else {
        for (size_t i = 0; i < m->to.count; i++) {
            add_rcpt(m->to.items[i], &r);
        }
    }
    if (!r.n) {
        return np_err_set(err, -EINVAL, "alert test: no recipient ([smtp] to or --to)");
    }
    x = np_alert_new(NP_ALERT_TEST);
    char *dash = default_dashboard(cfg);
    struct np_alert_render_opts ro = {dash ? dash : "", NULL, NULL};
    if (!x || !dash || np_alert_render(x ? x : NULL, &ro, &t) != 0) {
        ret = np_err_set(err, -ENOMEM, "alert test: out of memory");
        free(dash);
        goto out;
    }
    free(dash);
    x->time_ms = np_clock_wall_ms();
    char key[64];
    snprintf(key, sizeof key, "test:%" PRId64, x->time_ms);
    const char *to[MAX_RECIPIENTS];
    size_t tlen = 1;
    for (size_t i = 0; i < r.n; i++) {
        to[i] = r.v[i];
        tlen += strlen(r.v[i]) + 1;
    }
    struct np_alert_mail_headers h = {m->from, to,      r.n,         x->time_ms,
                                      key,     x->kind, x->severity, NULL};
    if ((ret = np_alert_mail_build(&t, &h, &d.body, &d.len, err)) != 0) {
        goto out;
    }
    targets = calloc(1, tlen);
    easy = curl_easy_init();
    if (!targets || !easy) {
        ret = np_err_set(err, -ENOMEM, "alert test: out of memory");
        goto out;
    }
    for (size_t i = 0; i < r.n; i++) {
        strncat(targets, r.v[i], tlen);
        strncat(targets, ",", 2);
    }
    if ((ret = smtp_setup(easy, m, targets, &d.list, &d, d.errbuf)) != 0) {
        np_err_set(err, ret, "alert test: cannot set up the transfer");
        goto out;
    }
    curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)d.len);
    CURLcode cc = curl_easy_perform(easy);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, smtp_code);
    if (detail && len) {
        snprintf(detail, len, "%s",
                 cc == CURLE_OK ? ""
                 : d.errbuf[0]  ? d.errbuf
                                : curl_easy_strerror(cc));
    }
    if (cc != CURLE_OK) {
        ret = np_err_set(err, NP_EHTTP, "alert test: %s", curl_easy_strerror(cc));
    }
out:
    if (easy) {
        curl_easy_cleanup(easy);
    }
    curl_slist_free_all(d.list);
    free(d.body);
    free(targets);
    np_alert_text_free(&t);
    np_alert_free(x);
    for (size_t i = 0; i < r.n; i++) {
        free(r.v[i]);
    }
    return ret;
}
