/* dns: a round is one A query for the target name.
 *
 * With `server` set the query goes through c-ares to that resolver only, on
 * the loop: c-ares reports the sockets it wants watched through its socket
 * state callback (one uv_poll each) and its next timeout through
 * ares_timeout() (one uv_timer); both lead to ares_process_fd(). One try,
 * bounded by the probe's timeout; the answer must carry at least one A record.
 * Without `server`, uv_getaddrinfo asks the system resolver from the thread
 * pool (it honours /etc/hosts and nsswitch and cannot be pointed at a
 * server; a lookup that hangs past the timeout keeps a pool thread until
 * libc gives up, its answer is then ignored). */
#include "probe_internal.h"

#include <ares.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NP_DNS_CLASS_IN 1
#define NP_DNS_TYPE_A 1

struct dns_sock {
    uv_poll_t poll;
    ares_socket_t fd;
    struct np_probe *p;
    struct dns_sock *next;
};

struct dns {
    bool lib_init;
    ares_channel ch; /* NULL without a server */
    uv_timer_t timer;
    struct dns_sock *socks;
};

static void on_sock_closed(uv_handle_t *h)
{
    struct dns_sock *s = h->data;
    struct np_probe *p = s->p;
    free(s);
    np_probe_unref(p);
}

static void drop_sock(struct dns *d, struct dns_sock *s)
{
    for (struct dns_sock **pp = &d->socks; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static void on_timer(uv_timer_t *t);

static void reset_timer(struct np_probe *p)
{
    struct dns *d = p->impl;
    struct timeval tv;
    if (!d->ch || p->set->closing) {
        return;
    }
    if (ares_timeout(d->ch, NULL, &tv)) {
        uint64_t ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)(tv.tv_usec + 999) / 1000;
        uv_timer_start(&d->timer, on_timer, ms, 0);
    } else {
        uv_timer_stop(&d->timer);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct dns_sock *s = h->data;
    struct np_probe *p = s->p;
    struct dns *d = p->impl;
    if (status < 0) {
        events = UV_READABLE | UV_WRITABLE; /* let c-ares find the error */
    }
    ares_process_fd(d->ch, (events & UV_READABLE) ? s->fd : ARES_SOCKET_BAD,
                    (events & UV_WRITABLE) ? s->fd : ARES_SOCKET_BAD);
    reset_timer(p);
}

static void on_timer(uv_timer_t *t)
{
    struct np_probe *p = t->data;
    struct dns *d = p->impl;
    ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    reset_timer(p);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct np_probe *p = data;
    struct dns *d = p->impl;
    struct dns_sock *s = d->socks;
    while (s && s->fd != fd) {
        s = s->next;
    }
    if (!readable && !writable) {
        if (s) {
            drop_sock(d, s);
        }
        return;
    }
    if (p->set->closing) {
        return;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) {
            return; /* the query then times out */
        }
        if (uv_poll_init_socket(p->set->loop, &s->poll, fd) != 0) {
            free(s);
            return;
        }
        s->fd = fd;
        s->p = p;
        s->poll.data = s;
        s->next = d->socks;
        d->socks = s;
        np_probe_ref(p);
    }
    uv_poll_start(&s->poll, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), on_poll);
}

static int dns_open(struct np_probe *p, struct np_err *err)
{
    struct dns *d = calloc(1, sizeof *d);
    if (!d) {
        return np_err_set(err, -ENOMEM, "probe: out of memory");
    }
    p->impl = d;
    if (p->cfg->server[0] == '\0') {
        return 0;
    }
    int rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        return np_err_set(err, NP_ECONFIG, "probe: %s: c-ares: %s", p->cfg->name,
                          ares_strerror(rc));
    }
    d->lib_init = true;
    struct ares_options o;
    memset(&o, 0, sizeof o);
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
    o.timeout = (int)p->cfg->timeout_ms; /* milliseconds with ARES_OPT_TIMEOUTMS */
    o.tries = 1;
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = p;
    rc = ares_init_options(
        &d->ch, &o, ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB);
    if (rc != ARES_SUCCESS) {
        d->ch = NULL;
        return np_err_set(err, NP_ECONFIG, "probe: %s: c-ares: %s", p->cfg->name,
                          ares_strerror(rc));
    }
    rc = ares_set_servers_ports_csv(d->ch, p->cfg->server);
    if (rc != ARES_SUCCESS) {
        return np_err_set(err, NP_ECONFIG, "probe: %s: server \"%.60s\": %s", p->cfg->name,
                          p->cfg->server, ares_strerror(rc));
    }
    return 0;
}

static int dns_attach(struct np_probe *p, struct np_err *err)
{
    struct dns *d = p->impl;
    (void)err;
    if (d->ch) {
        uv_timer_init(p->set->loop, &d->timer);
        d->timer.data = p;
        np_probe_ref(p);
    }
    return 0;
}

static const char *ares_reason(int status)
{
    switch (status) {
    case ARES_ETIMEOUT:
        return "timeout";
    case ARES_ENOTFOUND:
        return "name not found";
    case ARES_ENODATA:
        return "no A record";
    case ARES_ESERVFAIL:
        return "server failure";
    case ARES_EREFUSED:
        return "query refused";
    case ARES_ECONNREFUSED:
        return "connection refused";
    default:
        return ares_strerror(status);
    }
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct np_probe *p = arg;
    (void)timeouts;
    if (!p->running || p->set->closing) {
        return; /* cancelled at the deadline, or the channel is being destroyed */
    }
    uint64_t rtt = np_probe_elapsed_us(p);
    if (status == ARES_SUCCESS) {
        struct ares_addrttl addrs[8];
        int n = 8;
        status = ares_parse_a_reply(abuf, alen, NULL, addrs, &n);
        if (status == ARES_SUCCESS && n == 0) {
            status = ARES_ENODATA;
        }
    }
    if (status == ARES_SUCCESS) {
        np_probe_round_done(p, true, rtt, 1, 1, "");
    } else {
        np_probe_round_done(p, false, 0, 1, 0, ares_reason(status));
    }
}

static void on_system_resolved(struct np_probe *p, int status, const struct sockaddr_storage *addr,
                               socklen_t len)
{
    (void)addr;
    (void)len;
    if (status == 0) {
        np_probe_round_done(p, true, np_probe_elapsed_us(p), 1, 1, "");
    } else {
        np_probe_round_done(p, false, 0, 1, 0, np_probe_strerror(status));
    }
}

static void dns_start(struct np_probe *p)
{
    struct dns *d = p->impl;
    if (!d->ch) {
        int rc = np_probe_resolve(p, p->cfg->target, AF_UNSPEC, 0, on_system_resolved);
        if (rc != 0) {
            np_probe_round_done(p, false, 0, 1, 0, np_probe_strerror(rc));
        }
        return;
    }
    ares_query(d->ch, p->cfg->target, NP_DNS_CLASS_IN, NP_DNS_TYPE_A, on_answer, p);
    reset_timer(p);
}

static void dns_timeout(struct np_probe *p)
{
    struct dns *d = p->impl;
    np_probe_round_done(p, false, 0, 1, 0, "timeout");
    if (d->ch) {
        ares_cancel(d->ch); /* on_answer sees the round over and ignores it */
        reset_timer(p);
    }
}

static void dns_close(struct np_probe *p)
{
    struct dns *d = p->impl;
    if (!d || !d->ch) {
        return;
    }
    /* Closes c-ares's sockets: the state callback drops their poll handles
     * first; pending queries end with ARES_EDESTRUCTION, ignored. */
    ares_destroy(d->ch);
    d->ch = NULL;
    while (d->socks) {
        drop_sock(d, d->socks);
    }
    if (d->timer.loop && !uv_is_closing((uv_handle_t *)&d->timer)) {
        uv_close((uv_handle_t *)&d->timer, np_probe_on_close);
    }
}

static void dns_release(struct np_probe *p)
{
    struct dns *d = p->impl;
    if (!d) {
        return;
    }
    if (d->ch) {
        ares_destroy(d->ch); /* only when open() failed half-way: no handles yet */
    }
    if (d->lib_init) {
        ares_library_cleanup();
    }
    free(d);
    p->impl = NULL;
}

const struct np_probe_ops np_probe_dns_ops = {
    dns_open, dns_attach, dns_start, dns_timeout, dns_close, dns_release,
};
