/* agent_run: daemon wiring; see agent_run.h. */
#include "agent_run.h"

#include "agent_config.h"
#include "curl_uv.h"
#include "flow/flow_capture.h"
#include "flow/flow_wire.h"
#include "privdrop.h"
#include "snmp/snmp_poller.h"
#include "uplink.h"
#if __has_include("probe/probe.h")
#include "probe/probe.h"
#define NP_HAVE_PROBES 1
#endif

#include "netpulse/clock.h"
#include "netpulse/log.h"

#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#ifndef NP_AGENT_VERSION
#define NP_AGENT_VERSION "0.0.0"
#endif

#define DEVICE_INFO_EVERY_MS (3600 * 1000) /* DeviceInfo resent now and then */

/* What the agent remembers per SNMP target between polls. */
struct target_state {
    char *name;
    bool known;     /* a poll finished before */
    bool reachable; /* its last poll answered */
    int64_t info_sent_mono_ms;
    uint64_t info_hash; /* of sys_name, sys_descr, sys_object_id */
};

/* Configs loaded so far: modules borrow their settings, and a module freed
 * on reload may still read them until the loop ran its close callbacks, so
 * every config lives until exit (one per SIGHUP: small). */
struct cfg_node {
    struct np_config *cfg;
    struct cfg_node *next;
};

struct agent {
    uv_loop_t loop;
    const char *config_path;
    struct cfg_node *cfgs; /* newest first: cfgs->cfg is the one in force */
    struct np_curl_uv *cu;
    struct np_uplink *uplink;
    struct np_snmp_poller *snmp;
    struct target_state *targets;
    size_t n_targets;
    struct np_flow_capture **captures;
    size_t n_captures;
#ifdef NP_HAVE_PROBES
    struct np_probe_set *probes;
#endif
    uv_signal_t sig_term, sig_int, sig_hup;
    bool stopping;
    int exit_code;
};

static const struct np_config *cur_cfg(const struct agent *a)
{
    return a->cfgs->cfg;
}

/* ---- SNMP -> uplink ---- */

static Netpulse__RateStatus rate_status(const struct np_snmp_if_reading *r)
{
    if (!r->has_previous) {
        return NETPULSE__RATE_STATUS__RATE_FIRST_POLL;
    }
    const enum np_counter_status st[2] = {r->in.status, r->out.status};
    bool wrapped = false;
    for (int i = 0; i < 2; i++) {
        switch (st[i]) {
        case NP_COUNTER_OK:
            break;
        case NP_COUNTER_WRAPPED:
            wrapped = true;
            break;
        case NP_COUNTER_BAD_INTERVAL:
            return NETPULSE__RATE_STATUS__RATE_BAD_INTERVAL;
        case NP_COUNTER_WIDTH_CHANGED:
            return NETPULSE__RATE_STATUS__RATE_WIDTH_CHANGED;
        case NP_COUNTER_DEVICE_RESTART:
            return NETPULSE__RATE_STATUS__RATE_DEVICE_RESTART;
        case NP_COUNTER_DISCONTINUITY:
            return NETPULSE__RATE_STATUS__RATE_DISCONTINUITY;
        case NP_COUNTER_WENT_BACK:
            return NETPULSE__RATE_STATUS__RATE_WENT_BACK;
        }
    }
    return wrapped ? NETPULSE__RATE_STATUS__RATE_WRAPPED : NETPULSE__RATE_STATUS__RATE_OK;
}

static Netpulse__IfStatus if_status(int s)
{
    return s >= 1 && s <= 7 ? (Netpulse__IfStatus)s : NETPULSE__IF_STATUS__IF_STATUS_UNKNOWN;
}

static void on_snmp_interface(void *ctx, const struct np_snmp_if_reading *r)
{
    struct agent *a = ctx;
    if (r->counter_bits != 32 && r->counter_bits != 64) {
        return; /* the device has no octet counters for it */
    }
    Netpulse__InterfaceSample s = NETPULSE__INTERFACE_SAMPLE__INIT;
    s.device = (char *)r->target;
    s.if_index = r->if_index;
    s.time_ms = r->time_wall_ms;
    s.interval_ms = r->has_previous ? r->in.interval_ms : 0;
    s.in_octets = r->in_octets;
    s.out_octets = r->out_octets;
    s.rate_valid = r->has_previous && r->rates_valid;
    if (s.rate_valid) {
        s.in_bps = r->in.rate_bps;
        s.out_bps = r->out.rate_bps;
    }
    s.rate_status = rate_status(r);
    s.oper_status = if_status(r->oper_status);
    s.admin_status = if_status(r->admin_status);
    s.counter_bits = r->counter_bits;
    s.sys_uptime_ticks = r->sys_uptime_cs;
    s.speed_bps = r->speed_bps;
    /* rate_limit_bps is the configured rate_override when it differs. */
    s.provisioned_bps = r->rate_limit_bps != r->speed_bps ? r->rate_limit_bps : 0;
    s.if_name = (char *)r->if_name;
    s.if_alias = (char *)r->if_alias;
    s.if_descr = (char *)r->if_descr;
    s.if_type = r->if_type > 0 ? (uint32_t)r->if_type : 0;
    struct np_err err = {0};
    if (np_uplink_add_sample(a->uplink, &s, &err) != 0) {
        np_log(NP_LOG_WARN, "agent: sample dropped target=%s if=%s err=%s", r->target, r->key,
               err.msg);
    }
}

static void on_snmp_event(void *ctx, const struct np_snmp_if_event *e)
{
    struct agent *a = ctx;
    bool admin = strcmp(e->what, "adminStatus") == 0;
    bool up = e->new_status == 1;
    Netpulse__Event ev = NETPULSE__EVENT__INIT;
    if (admin) {
        ev.type =
            up ? NETPULSE__EVENT_TYPE__EVENT_ADMIN_UP : NETPULSE__EVENT_TYPE__EVENT_ADMIN_DOWN;
    } else {
        ev.type = up ? NETPULSE__EVENT_TYPE__EVENT_INTERFACE_UP
                     : NETPULSE__EVENT_TYPE__EVENT_INTERFACE_DOWN;
    }
    char detail[96];
    snprintf(detail, sizeof detail, "%s %d -> %d", e->what, e->old_status, e->new_status);
    ev.time_ms = e->time_wall_ms;
    ev.device = (char *)e->target;
    ev.subject = (char *)e->key;
    ev.if_index = e->if_index;
    ev.detail = detail;
    struct np_err err = {0};
    if (np_uplink_add_event(a->uplink, &ev, &err) != 0) {
        np_log(NP_LOG_WARN, "agent: event dropped target=%s err=%s", e->target, err.msg);
    }
}

static struct target_state *target_get(struct agent *a, const char *name)
{
    for (size_t i = 0; i < a->n_targets; i++) {
        if (strcmp(a->targets[i].name, name) == 0) {
            return &a->targets[i];
        }
    }
    struct target_state *t = realloc(a->targets, (a->n_targets + 1) * sizeof *t);
    if (!t) {
        return NULL;
    }
    a->targets = t;
    t = &a->targets[a->n_targets];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) {
        return NULL;
    }
    a->n_targets++;
    return t;
}

static uint64_t hash_str(uint64_t h, const char *s)
{
    for (; s && *s; s++) { /* FNV-1a */
        h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
    }
    return (h ^ 0xff) * UINT64_C(1099511628211);
}

static void on_snmp_done(void *ctx, const struct np_snmp_target_result *res)
{
    struct agent *a = ctx;
    struct target_state *t = target_get(a, res->target);
    if (!t) {
        return;
    }
    bool ok = res->failure == NP_SNMP_OK;
    int64_t now_ms = np_clock_wall_ms();
    struct np_err err = {0};
    if (!t->known || t->reachable != ok) {
        /* The first poll only reports a failure: "reachable" is the normal state. */
        if (t->known || !ok) {
            Netpulse__Event ev = NETPULSE__EVENT__INIT;
            ev.type = ok ? NETPULSE__EVENT_TYPE__EVENT_DEVICE_REACHABLE
                         : NETPULSE__EVENT_TYPE__EVENT_DEVICE_UNREACHABLE;
            ev.time_ms = now_ms;
            ev.device = (char *)res->target;
            char detail[160];
            snprintf(detail, sizeof detail, "%s%s%s", np_snmp_failure_name(res->failure),
                     res->detail[0] ? ": " : "", res->detail);
            ev.detail = detail;
            (void)np_uplink_add_event(a->uplink, &ev, &err);
        }
        t->known = true;
        t->reachable = ok;
    }
    if (!ok) {
        return;
    }
    uint64_t h =
        hash_str(hash_str(hash_str(UINT64_C(14695981039346656037), res->sys_name), res->sys_descr),
                 res->sys_object_id);
    int64_t mono = (int64_t)np_clock_mono_ms();
    if (t->info_sent_mono_ms == 0 || h != t->info_hash ||
        mono - t->info_sent_mono_ms >= DEVICE_INFO_EVERY_MS) {
        Netpulse__DeviceInfo d = NETPULSE__DEVICE_INFO__INIT;
        d.device = (char *)res->target;
        d.time_ms = now_ms;
        d.sys_uptime_ticks = res->sys_uptime_cs;
        d.sys_name = (char *)res->sys_name;
        d.sys_descr = (char *)res->sys_descr;
        d.sys_object_id = (char *)res->sys_object_id;
        if (np_uplink_add_device(a->uplink, &d, &err) == 0) {
            t->info_sent_mono_ms = mono;
            t->info_hash = h;
        }
    }
}

/* ---- flows -> uplink ---- */

struct flow_export {
    const struct np_flow_settings *s;
    const struct np_flow_agg *agg;
    const struct np_flow_report_opts *opts;
};

static int add_flow(struct np_wire_builder *b, void *arg, struct np_err *err)
{
    const struct flow_export *x = arg;
    /* 0, 0: the interval runs from its first to its last frame. */
    return np_flow_wire_add(b, x->s->name, x->agg, x->opts, 0, 0, err);
}

/* One finished capture interval becomes a FlowSummary in the current batch. */
static void on_flow_export(const struct np_flow_settings *s, const struct np_flow_agg *agg,
                           const struct np_flow_report_opts *opts, void *arg)
{
    struct agent *a = arg;
    struct flow_export x = {s, agg, opts};
    struct np_err err = {0};
    if (np_uplink_add_with(a->uplink, add_flow, &x, &err) != 0) {
        np_log(NP_LOG_WARN, "agent: flow summary dropped pcap=%s err=%s", s->name, err.msg);
    }
}

/* ---- probes -> uplink ---- */

#ifdef NP_HAVE_PROBES
static void on_probe_result(const struct np_probe_result *r, void *ctx)
{
    struct agent *a = ctx;
    Netpulse__ProbeResult p = NETPULSE__PROBE_RESULT__INIT;
    p.name = (char *)r->name;
    p.type = (Netpulse__ProbeType)r->type;
    p.target = (char *)r->target;
    p.time_ms = r->time_ms;
    p.interval_ms = r->interval_ms;
    p.ok = r->ok;
    p.rtt_us = r->rtt_us;
    p.sent = r->sent;
    p.received = r->received;
    p.error = (char *)r->error;
    struct np_err err = {0};
    if (np_uplink_add_probe(a->uplink, &p, &err) != 0) {
        np_log(NP_LOG_WARN, "agent: probe result dropped probe=%s err=%s", r->name, err.msg);
    }
}

static void on_probe_event(const struct np_probe_event *e, void *ctx)
{
    struct agent *a = ctx;
    Netpulse__Event ev = NETPULSE__EVENT__INIT;
    ev.type = (Netpulse__EventType)e->type;
    ev.time_ms = e->time_ms;
    ev.subject = (char *)e->subject;
    ev.detail = (char *)e->detail;
    struct np_err err = {0};
    if (np_uplink_add_event(a->uplink, &ev, &err) != 0) {
        np_log(NP_LOG_WARN, "agent: probe event dropped err=%s", err.msg);
    }
    if (e->type == NP_PROBE_EV_UPLINK_UP || e->type == NP_PROBE_EV_UPLINK_DOWN) {
        np_uplink_set_link_state(a->uplink,
                                 e->type == NP_PROBE_EV_UPLINK_UP
                                     ? NETPULSE__UPLINK_STATE__UPLINK_UP
                                     : NETPULSE__UPLINK_STATE__UPLINK_DOWN,
                                 e->time_ms);
    }
}
#endif

/* ---- modules ---- */

static void stop_modules(struct agent *a)
{
#ifdef NP_HAVE_PROBES
    np_probe_set_free(a->probes);
    a->probes = NULL;
#endif
    np_snmp_poller_free(a->snmp);
    a->snmp = NULL;
    for (size_t i = 0; i < a->n_captures; i++) {
        np_flow_capture_stop(a->captures[i]);
    }
    free(a->captures);
    a->captures = NULL;
    a->n_captures = 0;
}

/* Starts the SNMP poller and the captures of the current config. A capture
 * that cannot start is logged and skipped (the rest of the agent still
 * works); returns -1 only when the SNMP poller cannot be created. */
static int start_modules(struct agent *a)
{
    const struct np_config *cfg = cur_cfg(a);
    struct np_err err = {0};
    if (np_config_count(cfg, "snmp") > 0) {
        struct np_snmp_callbacks cbs = {
            .on_interface = on_snmp_interface,
            .on_event = on_snmp_event,
            .on_target_done = on_snmp_done,
        };
        a->snmp = np_snmp_poller_new(&a->loop, cfg, &cbs, a, &err);
        if (!a->snmp) {
            np_log(NP_LOG_ERR, "agent: SNMP poller not started err=%s", err.msg);
            return -1;
        }
        int rc = np_snmp_poller_start(a->snmp);
        if (rc != 0) {
            np_log(NP_LOG_ERR, "agent: SNMP poller not started err=%s", uv_strerror(rc));
            return -1;
        }
    }
    size_t n = np_config_count(cfg, "pcap");
    if (n > 0) {
        a->captures = calloc(n, sizeof *a->captures);
        if (!a->captures) {
            return -1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const struct np_flow_settings *s = np_config_instance(cfg, "pcap", i);
        struct np_flow_capture *c = NULL;
        if (np_flow_capture_start(&a->loop, s, on_flow_export, a, &c, &err) != 0) {
            np_log(NP_LOG_ERR, "agent: capture not started pcap=%s err=%s", s->name, err.msg);
            continue;
        }
        a->captures[a->n_captures++] = c;
    }
    size_t n_probes = 0;
#ifdef NP_HAVE_PROBES
    static const struct np_probe_callbacks probe_cbs = {on_probe_result, on_probe_event};
    if (np_probe_set_new(&a->loop, cfg, &probe_cbs, a, &a->probes, &err) != 0) {
        np_log(NP_LOG_ERR, "agent: probes not started err=%s", err.msg);
        return -1;
    }
    int prc = np_probe_set_start(a->probes);
    if (prc != 0) {
        np_log(NP_LOG_ERR, "agent: probes not started err=%s", uv_strerror(prc));
        return -1;
    }
    n_probes = np_probe_set_count(a->probes);
#endif
    np_log(NP_LOG_INFO, "agent: running snmp_targets=%zu captures=%zu probes=%zu",
           a->snmp ? np_snmp_poller_count(a->snmp) : 0, a->n_captures, n_probes);
    return 0;
}

static void uplink_opts(const struct np_agent_settings *s, int64_t start_ms,
                        struct np_uplink_opts *o)
{
    memset(o, 0, sizeof *o);
    o->agent_id = s->id;
    o->agent_version = NP_AGENT_VERSION;
    o->agent_start_ms = start_ms;
    o->collector = s->collector;
    o->token = s->token;
    o->ca_file = s->ca_file;
    o->proxy = s->proxy;
    o->spool_dir = s->spool_dir;
    o->spool_max_bytes = s->spool_max_bytes;
    o->spool_fsync = (enum np_spool_fsync)s->spool_fsync;
    o->batch_interval_ms = s->batch_interval_ms;
    o->timeout_ms = s->timeout_ms;
    o->drain_rate = (uint32_t)s->drain_rate;
    o->retry_max_ms = s->retry_max_ms;
}

static const enum np_log_level levels[] = {NP_LOG_ERR, NP_LOG_WARN, NP_LOG_NOTICE, NP_LOG_INFO,
                                           NP_LOG_DEBUG};

/* ---- signals ---- */

static void on_closed_all(void *arg)
{
    struct agent *a = arg;
    uv_close((uv_handle_t *)&a->sig_term, NULL);
    uv_close((uv_handle_t *)&a->sig_int, NULL);
    uv_close((uv_handle_t *)&a->sig_hup, NULL);
    np_curl_uv_free(a->cu);
    a->cu = NULL;
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
    struct agent *a = h->data;
    if (a->stopping) {
        return;
    }
    a->stopping = true;
    np_log(NP_LOG_NOTICE, "agent: stopping signal=%d", signum);
    stop_modules(a);
    np_uplink_close(a->uplink, on_closed_all, a);
}

static void on_hup(uv_signal_t *h, int signum)
{
    (void)signum;
    struct agent *a = h->data;
    if (a->stopping) {
        return;
    }
    struct np_config *cfg = NULL;
    struct np_err err = {0};
    if (np_agent_config_load(a->config_path, &cfg, &err) != 0) {
        np_log(NP_LOG_ERR, "agent: reload refused, keeping the running configuration err=%s",
               err.msg);
        return;
    }
    struct cfg_node *node = calloc(1, sizeof *node);
    if (!node) {
        np_config_free(cfg);
        np_log(NP_LOG_ERR, "agent: reload refused err=out of memory");
        return;
    }
    const struct np_agent_settings *old = np_agent_settings(cur_cfg(a));
    const struct np_agent_settings *s = np_agent_settings(cfg);
    if (strcmp(old->id, s->id) != 0 || strcmp(old->spool_dir, s->spool_dir) != 0 ||
        old->spool_max_bytes != s->spool_max_bytes || old->spool_fsync != s->spool_fsync ||
        old->batch_interval_ms != s->batch_interval_ms) {
        np_log(NP_LOG_WARN, "agent: id, spool_dir, spool_max, spool_fsync and batch_interval "
                            "change only at restart");
    }
    node->cfg = cfg;
    node->next = a->cfgs;
    a->cfgs = node;
    np_log_set_level(levels[s->log_level]);
    struct np_uplink_opts o;
    uplink_opts(s, 0, &o);
    if (np_uplink_reconfigure(a->uplink, &o) != 0) {
        np_log(NP_LOG_ERR, "agent: uplink settings not changed err=out of memory");
    }
    stop_modules(a);
    if (start_modules(a) != 0) {
        np_log(NP_LOG_ERR, "agent: modules failed after reload; uplink keeps running");
    }
    np_log(NP_LOG_NOTICE, "agent: configuration reloaded file=%s", a->config_path);
}

/* ---- main ---- */

/* privdrop.h: the configured user, CAP_NET_RAW at most. */
static int drop_privileges(struct agent *a)
{
    struct np_err err = {0};
    if (np_privdrop_agent(cur_cfg(a), &err) != 0) {
        np_log(NP_LOG_ERR, "agent: cannot drop privileges, stopping err=%s", err.msg);
        return -1;
    }
    return 0;
}

int np_agent_run(const char *config_path, struct np_config *cfg)
{
    struct agent a;
    memset(&a, 0, sizeof a);
    a.config_path = config_path;
    a.cfgs = calloc(1, sizeof *a.cfgs);
    if (!a.cfgs) {
        np_config_free(cfg);
        return 1;
    }
    a.cfgs->cfg = cfg;
    int status = 1;
    const struct np_agent_settings *s = np_agent_settings(cfg);
    np_log_set_level(levels[s->log_level]);
    int64_t start_ms = np_clock_wall_ms();
    int rc = uv_loop_init(&a.loop);
    if (rc != 0) {
        np_log(NP_LOG_ERR, "agent: loop err=%s", uv_strerror(rc));
        goto out_free;
    }
    struct np_err err = {0};
    if (np_curl_uv_new(&a.loop, &a.cu, &err) != 0) {
        np_log(NP_LOG_ERR, "agent: %s", err.msg);
        goto out_close_loop;
    }
    struct np_uplink_opts o;
    uplink_opts(s, start_ms, &o);
    if (np_uplink_open(&a.loop, a.cu, &o, &a.uplink, &err) != 0) {
        np_log(NP_LOG_ERR, "agent: uplink not started err=%s", err.msg);
        goto out_free_curl;
    }
    Netpulse__Event ev = NETPULSE__EVENT__INIT;
    ev.type = NETPULSE__EVENT_TYPE__EVENT_AGENT_START;
    ev.time_ms = start_ms;
    ev.detail = "netpulse-agent " NP_AGENT_VERSION " started";
    (void)np_uplink_add_event(a.uplink, &ev, &err);

    uv_signal_t *sigs[] = {&a.sig_term, &a.sig_int, &a.sig_hup};
    for (size_t i = 0; i < 3; i++) {
        uv_signal_init(&a.loop, sigs[i]);
        sigs[i]->data = &a;
    }
    uv_signal_start(&a.sig_term, on_stop_signal, SIGTERM);
    uv_signal_start(&a.sig_int, on_stop_signal, SIGINT);
    uv_signal_start(&a.sig_hup, on_hup, SIGHUP);
    signal(SIGPIPE, SIG_IGN);

    /* Capture handles and raw sockets are open now: drop privileges. */
    if (start_modules(&a) != 0 || drop_privileges(&a) != 0) {
        a.exit_code = 1;
        a.stopping = true;
        stop_modules(&a);
        np_uplink_close(a.uplink, on_closed_all, &a);
    } else {
        np_uplink_start(a.uplink);
        np_log(NP_LOG_NOTICE, "agent: started id=%s collector=%s", s->id, s->collector);
    }
    /* Runs until the stop signal's close chain has closed every handle. */
    uv_run(&a.loop, UV_RUN_DEFAULT);
    np_uplink_free(a.uplink); /* syncs and closes the spool */
    status = a.exit_code;
    if (status == 0) {
        np_log(NP_LOG_NOTICE, "agent: stopped");
    }
    goto out_close_loop;

out_free_curl:
    np_curl_uv_free(a.cu);
    uv_run(&a.loop, UV_RUN_DEFAULT);
out_close_loop:
    if (uv_loop_close(&a.loop) != 0) {
        np_log(NP_LOG_WARN, "agent: handles left open at exit");
    }
out_free:
    for (size_t i = 0; i < a.n_targets; i++) {
        free(a.targets[i].name);
    }
    free(a.targets);
    while (a.cfgs) {
        struct cfg_node *n = a.cfgs->next;
        np_config_free(a.cfgs->cfg);
        free(a.cfgs);
        a.cfgs = n;
    }
    np_log_flush();
    return status;
}
