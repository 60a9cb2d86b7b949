/* tcp: a round is one uv_tcp_connect to host:port; rtt is the time to the
 * established connection (one round trip of the handshake, plus the name
 * lookup for a host name). The connection is closed at once. */
#include "probe_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct tcp {
    uv_tcp_t tcp;
    uv_connect_t req;
    bool open; /* tcp initialised and its close callback not yet run */
    uint32_t round_id;
    uint16_t port;
    char host[256];
};

static void on_tcp_closed(uv_handle_t *h)
{
    struct np_probe *p = h->data;
    struct tcp *t = p->impl;
    t->open = false;
    np_probe_unref(p);
}

static void close_tcp(struct tcp *t)
{
    if (t->open && !uv_is_closing((uv_handle_t *)&t->tcp)) {
        uv_close((uv_handle_t *)&t->tcp, on_tcp_closed);
    }
}

static int tcp_open(struct np_probe *p, struct np_err *err)
{
    struct tcp *t = calloc(1, sizeof *t);
    if (!t) {
        return np_err_set(err, -ENOMEM, "probe: out of memory");
    }
    p->impl = t;
    if (np_probe_split_host_port(p->cfg->target, t->host, sizeof t->host, &t->port) != 0) {
        return np_err_set(err, NP_ECONFIG, "probe: %s: target is not host:port", p->cfg->name);
    }
    return 0;
}

static int tcp_attach(struct np_probe *p, struct np_err *err)
{
    (void)p;
    (void)err;
    return 0;
}

static void on_connect(uv_connect_t *req, int status)
{
    struct np_probe *p = req->data;
    struct tcp *t = p->impl;
    if (status != UV_ECANCELED && p->running && t->round_id == p->round_id) {
        uint64_t rtt = np_probe_elapsed_us(p);
        np_probe_round_done(p, status == 0, status == 0 ? rtt : 0, 1, status == 0,
                            status == 0 ? "" : np_probe_strerror(status));
    }
    close_tcp(t);
}

static void on_resolved(struct np_probe *p, int status, const struct sockaddr_storage *addr,
                        socklen_t len)
{
    struct tcp *t = p->impl;
    (void)len;
    if (status != 0) {
        np_probe_round_done(p, false, 0, 1, 0, np_probe_strerror(status));
        return;
    }
    int rc = uv_tcp_init(p->set->loop, &t->tcp);
    if (rc != 0) {
        np_probe_round_done(p, false, 0, 1, 0, np_probe_strerror(rc));
        return;
    }
    t->tcp.data = p;
    t->open = true;
    np_probe_ref(p);
    t->req.data = p;
    t->round_id = p->round_id;
    rc = uv_tcp_connect(&t->req, &t->tcp, (const struct sockaddr *)addr, on_connect);
    if (rc != 0) {
        /* e.g. ENETUNREACH straight from connect(2) */
        np_probe_round_done(p, false, 0, 1, 0, np_probe_strerror(rc));
        close_tcp(t);
    }
}

static void tcp_start(struct np_probe *p)
{
    struct tcp *t = p->impl;
    if (t->open) {
        /* the last round's handle is still closing (a stalled loop) */
        np_probe_round_done(p, false, 0, 0, 0, "previous connection still closing");
        return;
    }
    int rc = np_probe_resolve(p, t->host, AF_UNSPEC, t->port, on_resolved);
    if (rc != 0) {
        np_probe_round_done(p, false, 0, 1, 0, np_probe_strerror(rc));
    }
}

static void tcp_timeout(struct np_probe *p)
{
    np_probe_round_done(p, false, 0, 1, 0, "timeout");
    close_tcp(p->impl); /* the connect callback then runs with UV_ECANCELED */
}

static void tcp_close(struct np_probe *p)
{
    close_tcp(p->impl);
}

static void tcp_release(struct np_probe *p)
{
    free(p->impl);
    p->impl = NULL;
}

const struct np_probe_ops np_probe_tcp_ops = {
    tcp_open, tcp_attach, tcp_start, tcp_timeout, tcp_close, tcp_release,
};
