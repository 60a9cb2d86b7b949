/* probe: the set of probes, their schedule, and the probe and uplink states;
 * see probe.h. The per-type work is in icmp.c, tcp.c, dns.c and http.c. */
#include "probe.h"

#include "curl_uv.h"
#include "probe_internal.h"

#include "netpulse/clock.h"
#include "netpulse/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct np_probe_ops *ops_for(int choice)
{
    switch (choice) {
    case NP_PROBE_CHOICE_ICMP:
        return &np_probe_icmp_ops;
    case NP_PROBE_CHOICE_TCP:
        return &np_probe_tcp_ops;
    case NP_PROBE_CHOICE_HTTP:
        return &np_probe_http_ops;
    case NP_PROBE_CHOICE_DNS:
        return &np_probe_dns_ops;
    default:
        return NULL;
    }
}

static const char *type_name(enum np_probe_type t)
{
    switch (t) {
    case NP_PROBE_ICMP:
        return "icmp";
    case NP_PROBE_TCP:
        return "tcp";
    case NP_PROBE_HTTP:
        return "http";
    case NP_PROBE_DNS:
        return "dns";
    }
    return "?";
}

static void release(struct np_probe_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        struct np_probe *p = &set->probes[i];
        if (p->ops) {
            p->ops->release(p);
        }
    }
    free(set->probes);
    free(set);
}

void np_probe_ref(struct np_probe *p)
{
    p->set->refs++;
}

void np_probe_unref(struct np_probe *p)
{
    struct np_probe_set *set = p->set;
    set->refs--;
    if (set->closing && set->refs == 0) {
        release(set);
    }
}

void np_probe_on_close(uv_handle_t *h)
{
    np_probe_unref(h->data);
}

uint64_t np_probe_elapsed_us(const struct np_probe *p)
{
    return (uv_hrtime() - p->round_mono_ns) / 1000;
}

const char *np_probe_strerror(int code)
{
    switch (code) {
    case UV_ECONNREFUSED:
        return "connection refused";
    case UV_ETIMEDOUT:
        return "timeout";
    case UV_EHOSTUNREACH:
        return "host unreachable";
    case UV_ENETUNREACH:
        return "network unreachable";
    case UV_ECONNRESET:
        return "connection reset";
    case UV_EAI_NONAME:
        return "name not found";
    case UV_EAI_AGAIN:
        return "name resolution failed (temporary)";
    default:
        return uv_strerror(code);
    }
}

/* ---- state: probe and uplink ---- */

static void emit_event(struct np_probe_set *set, enum np_probe_event_type type, int64_t time_ms,
                       int64_t since_ms, const char *subject, const char *detail)
{
    if (set->cbs.event) {
        struct np_probe_event e = {type, time_ms, since_ms, subject, detail};
        set->cbs.event(&e, set->ctx);
    }
}

static void update_states(struct np_probe *p, const struct np_probe_result *r)
{
    struct np_probe_set *set = p->set;
    char detail[256];
    int64_t since_ms = r->time_ms;
    if (np_probe_streak_feed(&p->streak, r->ok, r->time_ms, set->up_after, set->down_after,
                             &since_ms)) {
        bool up = p->streak.state == NP_UPLINK_UP;
        if (up) {
            snprintf(detail, sizeof detail, "%s %s up", type_name(p->type), r->target);
        } else {
            snprintf(detail, sizeof detail, "%s %s down: %.160s", type_name(p->type), r->target,
                     r->error);
        }
        np_log(up ? NP_LOG_NOTICE : NP_LOG_WARN, "probe: %s name=%s type=%s target=%s%s%s",
               up ? "up" : "down", r->name, type_name(p->type), r->target,
               up ? "" : " err=", up ? "" : r->error);
        emit_event(set, up ? NP_PROBE_EV_PROBE_UP : NP_PROBE_EV_PROBE_DOWN, r->time_ms, since_ms,
                   r->name, detail);
    }
    unsigned n_up = 0, n_down = 0;
    for (size_t i = 0; i < set->n; i++) {
        n_up += set->probes[i].streak.state == NP_UPLINK_UP;
        n_down += set->probes[i].streak.state == NP_UPLINK_DOWN;
    }
    enum np_uplink_state now =
        np_probe_uplink_eval(set->uplink, n_up, n_down, (unsigned)set->n, set->quorum);
    if (now == set->uplink) {
        return;
    }
    set->uplink = now;
    set->uplink_since_ms = r->time_ms;
    snprintf(detail, sizeof detail, "%u of %zu probes up, %u down, quorum %u; decided by %s", n_up,
             set->n, n_down, set->quorum, r->name);
    np_log(now == NP_UPLINK_UP ? NP_LOG_NOTICE : NP_LOG_WARN,
           "probe: uplink %s up=%u down=%u "
           "probes=%zu quorum=%u by=%s",
           now == NP_UPLINK_UP ? "up" : "down", n_up, n_down, set->n, set->quorum, r->name);
    /* The deciding probe's own streak start is the best estimate of when it
     * began; with several probes it is the start of the round that tipped it. */
    emit_event(set, now == NP_UPLINK_UP ? NP_PROBE_EV_UPLINK_UP : NP_PROBE_EV_UPLINK_DOWN,
               r->time_ms, since_ms, r->name, detail);
}

void np_probe_round_done(struct np_probe *p, bool ok, uint64_t rtt_us, uint32_t sent,
                         uint32_t received, const char *error)
{
    struct np_probe_set *set = p->set;
    if (!p->running || set->closing) {
        return;
    }
    p->running = false;
    uv_timer_stop(&p->deadline);
    struct np_probe_result r = {
        .name = p->cfg->name,
        .type = p->type,
        .target = p->cfg->target,
        .time_ms = p->round_wall_ms,
        .interval_ms = p->cfg->interval_ms,
        .ok = ok,
        .rtt_us = rtt_us,
        .sent = sent,
        .received = received > sent ? sent : received,
        .error = ok || !error ? "" : error,
    };
    if (!ok && r.error[0] == '\0') {
        r.error = "failed";
    }
    if (set->cbs.result) {
        set->cbs.result(&r, set->ctx);
    }
    update_states(p, &r);
}

static void on_deadline(uv_timer_t *t)
{
    struct np_probe *p = t->data;
    if (p->running && !p->set->closing) {
        p->ops->timeout(p);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct np_probe *p = t->data;
    if (p->set->closing) {
        return;
    }
    if (p->running) {
        /* Cannot happen with the validated timeout < interval unless the loop
         * stalled; the round in progress keeps its own deadline. */
        p->skipped++;
        np_log(NP_LOG_WARN, "probe: round skipped name=%s skipped=%llu", p->cfg->name,
               (unsigned long long)p->skipped);
        return;
    }
    p->running = true;
    p->round_id++;
    p->round_wall_ms = np_clock_wall_ms();
    p->round_mono_ns = uv_hrtime();
    uv_timer_start(&p->deadline, on_deadline, (uint64_t)p->round_len_ms, 0);
    p->ops->start(p);
}

/* ---- name resolution ---- */

struct resolve_req {
    uv_getaddrinfo_t req;
    struct np_probe *p;
    uint32_t round_id;
    uint16_t port;
    np_probe_resolved_cb cb;
};

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct resolve_req *rr = req->data;
    struct np_probe *p = rr->p;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (status == 0) {
        status = UV_EAI_NONAME;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
            if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
                ai->ai_addrlen <= sizeof ss) {
                memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
                len = ai->ai_addrlen;
                status = 0;
                break;
            }
        }
    }
    uv_freeaddrinfo(res);
    bool current = !p->set->closing && p->running && p->round_id == rr->round_id;
    np_probe_resolved_cb cb = rr->cb;
    uint16_t port = rr->port;
    free(rr);
    if (current) {
        if (status == 0) {
            if (ss.ss_family == AF_INET) {
                ((struct sockaddr_in *)&ss)->sin_port = htons(port);
            } else {
                ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
            }
        }
        cb(p, status, status == 0 ? &ss : NULL, len);
    }
    np_probe_unref(p);
}

int np_probe_resolve(struct np_probe *p, const char *host, int family, uint16_t port,
                     np_probe_resolved_cb cb)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if ((family == AF_UNSPEC || family == AF_INET) &&
        uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0) {
        cb(p, 0, &ss, sizeof(struct sockaddr_in));
        return 0;
    }
    if ((family == AF_UNSPEC || family == AF_INET6) &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0) {
        cb(p, 0, &ss, sizeof(struct sockaddr_in6));
        return 0;
    }
    struct resolve_req *rr = calloc(1, sizeof *rr);
    if (!rr) {
        return UV_ENOMEM;
    }
    rr->p = p;
    rr->round_id = p->round_id;
    rr->port = port;
    rr->cb = cb;
    rr->req.data = rr;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    int rc = uv_getaddrinfo(p->set->loop, &rr->req, on_resolved, host, NULL, &hints);
    if (rc != 0) {
        free(rr);
        return rc;
    }
    np_probe_ref(p);
    return 0;
}

/* ---- the set ---- */

int np_probe_set_new(uv_loop_t *loop, const struct np_config *cfg,
                     const struct np_probe_callbacks *cbs, void *ctx, struct np_probe_set **out,
                     struct np_err *err)
{
    int rc = 0;
    *out = NULL;
    struct np_probe_set *set = calloc(1, sizeof *set);
    if (!set) {
        return np_err_set(err, -ENOMEM, "probe: out of memory");
    }
    set->loop = loop;
    set->cfg = cfg;
    if (cbs) {
        set->cbs = *cbs;
    }
    set->ctx = ctx;
    set->n = np_config_count(cfg, "probe");
    set->up_after = set->down_after = 1;
    const struct np_uplink_probe_settings *u = np_config_section(cfg, "uplink");
    if (u) {
        set->up_after = (unsigned)u->up_after;
        set->down_after = (unsigned)u->down_after;
        if (np_probe_config_quorum(u->quorum, set->n, &set->quorum, err) != 0) {
            free(set);
            return NP_ECONFIG;
        }
    } else {
        set->quorum = set->n ? 1 : 0;
    }
    if (set->n) {
        set->probes = calloc(set->n, sizeof *set->probes);
        if (!set->probes) {
            free(set);
            return np_err_set(err, -ENOMEM, "probe: out of memory");
        }
    }
    bool need_curl = false;
    size_t opened = 0;
    for (; opened < set->n; opened++) {
        struct np_probe *p = &set->probes[opened];
        p->set = set;
        p->cfg = np_config_instance(cfg, "probe", opened);
        p->type = (enum np_probe_type)(p->cfg->type + 1);
        p->kind = "";
        p->round_len_ms =
            p->type == NP_PROBE_ICMP ? np_probe_icmp_round_ms(p->cfg) : p->cfg->timeout_ms;
        const struct np_probe_ops *ops = ops_for(p->cfg->type);
        if (!ops) {
            rc = np_err_set(err, NP_ECONFIG, "probe: %s: unknown type", p->cfg->name);
            break;
        }
        need_curl |= p->type == NP_PROBE_HTTP;
        p->ops = ops; /* release() undoes a partial open() too */
        rc = ops->open(p, err);
        if (rc != 0) {
            break;
        }
    }
    if (rc != 0) {
        release(set); /* no handle exists yet */
        return rc;
    }
    /* From here on handles exist: errors go through np_probe_set_free(). */
    if (need_curl) {
        rc = np_curl_uv_new(loop, &set->curl, err);
    }
    for (size_t i = 0; rc == 0 && i < set->n; i++) {
        struct np_probe *p = &set->probes[i];
        uv_timer_init(loop, &p->tick);
        p->tick.data = p;
        np_probe_ref(p);
        uv_timer_init(loop, &p->deadline);
        p->deadline.data = p;
        np_probe_ref(p);
        rc = p->ops->attach(p, err);
    }
    if (rc != 0) {
        np_probe_set_free(set);
        return rc;
    }
    for (size_t i = 0; i < set->n; i++) {
        np_log(NP_LOG_INFO, "probe: ready name=%s type=%s target=%s interval_ms=%lld%s%s",
               set->probes[i].cfg->name, type_name(set->probes[i].type), set->probes[i].cfg->target,
               (long long)set->probes[i].cfg->interval_ms, set->probes[i].kind[0] ? " socket=" : "",
               set->probes[i].kind);
    }
    *out = set;
    return 0;
}

int np_probe_set_start(struct np_probe_set *set)
{
    if (set->started) {
        return UV_EALREADY;
    }
    set->started = true;
    for (size_t i = 0; i < set->n; i++) {
        struct np_probe *p = &set->probes[i];
        int rc = uv_timer_start(&p->tick, on_tick, 0, (uint64_t)p->cfg->interval_ms);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

void np_probe_set_free(struct np_probe_set *set)
{
    if (!set || set->closing) {
        return;
    }
    set->closing = true;
    for (size_t i = 0; i < set->n; i++) {
        struct np_probe *p = &set->probes[i];
        if (!p->ops) {
            continue;
        }
        p->running = false;
        p->ops->close(p);
        if (p->tick.loop && !uv_is_closing((uv_handle_t *)&p->tick)) {
            uv_close((uv_handle_t *)&p->tick, np_probe_on_close);
        }
        if (p->deadline.loop && !uv_is_closing((uv_handle_t *)&p->deadline)) {
            uv_close((uv_handle_t *)&p->deadline, np_probe_on_close);
        }
    }
    np_curl_uv_free(set->curl);
    set->curl = NULL;
    if (set->refs == 0) {
        release(set);
    }
}

enum np_uplink_state np_probe_uplink_state(const struct np_probe_set *set, int64_t *since_ms)
{
    if (since_ms) {
        *since_ms = set->uplink_since_ms;
    }
    return set->uplink;
}

size_t np_probe_set_count(const struct np_probe_set *set)
{
    return set->n;
}

const char *np_probe_name(const struct np_probe_set *set, size_t i)
{
    return i < set->n ? set->probes[i].cfg->name : NULL;
}

const char *np_probe_socket_kind(const struct np_probe_set *set, size_t i)
{
    return i < set->n ? set->probes[i].kind : NULL;
}
