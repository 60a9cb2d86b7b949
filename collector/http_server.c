/* http_server: libh2o (libuv flavour) on the collector's loop; see http_server.h. */
#include "http_server.h"

#include "netpulse/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* h2o's headers are not written for our warning set. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <h2o.h>
#include <h2o/http2.h>
#pragma GCC diagnostic pop

#include <openssl/err.h>
#include <openssl/ssl.h>

struct route {
    char *path;
    size_t len;
    bool prefix;
    np_http_handler_cb cb;
    void *ctx;
};

/* The handler h2o calls; we route ourselves. */
struct root_handler {
    h2o_handler_t super;
    struct np_http_server *server;
};

struct np_http_server {
    uv_loop_t *loop;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    bool ctx_inited;
    SSL_CTX *ssl_ctx; /* NULL with plain_http; the one new connections get */
    bool plain_http;
    struct sockaddr_storage addr;
    int listen_fd; /* > 0: socket activation's socket, used instead of addr */
    uv_tcp_t listener;
    bool listening;
    bool stopped;
    int port;
    unsigned conns;
    unsigned max_conns;
    unsigned refused;
    struct route *routes;
    size_t n_routes;
    np_http_guard_cb guard;
    void *guard_ctx;
};

/* One accepted TCP connection; h2o owns it after h2o_accept until its close
 * callback. */
struct conn {
    uv_tcp_t tcp;
    struct np_http_server *server;
};

static int parse_listen(const char *s, struct sockaddr_storage *out, struct np_err *err)
{
    char host[128];
    const char *colon, *hs;
    size_t hl;
    memset(out, 0, sizeof *out);
    if (!s || !*s) {
        return np_err_set(err, NP_ECONFIG, "http: listen address is empty");
    }
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':') {
            return np_err_set(err, NP_ECONFIG, "http: listen=\"%s\": expected [ADDRESS]:PORT", s);
        }
        hs = s + 1;
        hl = (size_t)(end - hs);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            return np_err_set(err, NP_ECONFIG, "http: listen=\"%s\": expected HOST:PORT", s);
        }
        hs = s;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= sizeof host) {
        return np_err_set(err, NP_ECONFIG, "http: listen=\"%s\": bad address", s);
    }
    memcpy(host, hs, hl);
    host[hl] = '\0';
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || port > 65535 || colon[1] == '-' ||
        colon[1] == '+') {
        return np_err_set(err, NP_ECONFIG, "http: listen=\"%s\": bad port", s);
    }
    if (s[0] == '[') {
        if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) != 0) {
            return np_err_set(err, NP_ECONFIG, "http: listen=\"%s\": bad IPv6 address", s);
        }
    } else if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) != 0) {
        return np_err_set(err, NP_ECONFIG,
                          "http: listen=\"%s\": bad IPv4 address (use [ADDRESS] for IPv6)", s);
    }
    return 0;
}

/* Collects OpenSSL's error queue into err. */
static int ssl_fail(struct np_err *err, const char *what, const char *path)
{
    char reason[160] = "unknown error";
    unsigned long e = ERR_get_error();
    if (e != 0) {
        ERR_error_string_n(e, reason, sizeof reason);
    }
    ERR_clear_error();
    return np_err_set(err, NP_ECONFIG, "http: %s %s: %s", what, path ? path : "", reason);
}

static int tls_context_new(const char *cert, const char *key, SSL_CTX **out, struct np_err *err)
{
    *out = NULL;
    if (!cert || !*cert || !key || !*key) {
        return np_err_set(err, NP_ECONFIG,
                          "http: tls_cert and tls_key are required (or plain_http = yes)");
    }
    SSL_CTX *c = SSL_CTX_new(TLS_server_method());
    if (!c) {
        return ssl_fail(err, "SSL_CTX_new", NULL);
    }
    int rc;
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(c, cert) != 1) {
        rc = ssl_fail(err, "cannot load tls_cert", cert);
        goto out_free;
    }
    if (SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1) {
        rc = ssl_fail(err, "cannot load tls_key", key);
        goto out_free;
    }
    if (SSL_CTX_check_private_key(c) != 1) {
        rc = ssl_fail(err, "tls_key does not match tls_cert", key);
        goto out_free;
    }
    /* HTTP/2 first, then HTTP/1.1 (h2o's list). */
    h2o_ssl_register_alpn_protocols(c, h2o_http2_alpn_protocols);
    *out = c;
    return 0;

out_free:
    SSL_CTX_free(c);
    return rc;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct np_http_server *s = ((struct root_handler *)self)->server;
    if (s->guard && s->guard(s->guard_ctx, req) != 0) {
        return 0;
    }
    for (size_t i = 0; i < s->n_routes; i++) {
        const struct route *r = &s->routes[i];
        bool match = r->prefix ? req->path_normalized.len >= r->len &&
                                     memcmp(req->path_normalized.base, r->path, r->len) == 0
                               : h2o_memis(req->path_normalized.base, req->path_normalized.len,
                                           r->path, r->len);
        if (match) {
            if (r->cb(r->ctx, req) == 0) {
                return 0;
            }
            break;
        }
    }
    np_http_reply(req, 404, "Not Found", "text/plain; charset=utf-8", H2O_STRLIT("not found\n"));
    return 0;
}

int np_http_server_new(uv_loop_t *loop, const struct np_http_server_opts *o,
                       struct np_http_server **out, struct np_err *err)
{
    *out = NULL;
    struct np_http_server *s = calloc(1, sizeof *s);
    if (!s) {
        return np_err_set(err, -ENOMEM, "http: out of memory");
    }
    int rc = parse_listen(o->listen, &s->addr, err);
    if (rc != 0) {
        goto out_free;
    }
    s->loop = loop;
    s->listen_fd = o->listen_fd;
    s->plain_http = o->plain_http;
    s->max_conns = o->max_connections ? o->max_connections : NP_HTTP_DEFAULT_MAX_CONNECTIONS;
    if (!o->plain_http) {
        rc = tls_context_new(o->tls_cert, o->tls_key, &s->ssl_ctx, err);
        if (rc != 0) {
            goto out_free;
        }
    }

    h2o_config_init(&s->config);
    s->config.server_name = h2o_iovec_init(H2O_STRLIT("netpulse-collector"));
    /* h2o 2.2 answers a body over its limit with 413 over HTTP/1.1 but only
     * with RST_STREAM(REFUSED_STREAM) over HTTP/2, which clients retry. So h2o
     * gets twice the limit as the hard bound of what it buffers, and handlers
     * refuse what is over max_body with a 413 and a reason. */
    uint64_t max_body = o->max_body_bytes ? o->max_body_bytes : NP_HTTP_DEFAULT_MAX_BODY;
    s->config.max_request_entity_size = (size_t)(max_body * 2);
    uint64_t req_ms =
        o->request_timeout_ms ? o->request_timeout_ms : NP_HTTP_DEFAULT_REQUEST_TIMEOUT_MS;
    s->config.handshake_timeout =
        o->handshake_timeout_ms ? o->handshake_timeout_ms : NP_HTTP_DEFAULT_HANDSHAKE_TIMEOUT_MS;
    s->config.http1.req_timeout = req_ms;
    s->config.http1.upgrade_to_http2 = 0; /* h2c only by prior knowledge over TLS/ALPN */
    s->config.http2.idle_timeout = req_ms;
    s->config.http2.graceful_shutdown_timeout = 2000;
    h2o_hostconf_t *host =
        h2o_config_register_host(&s->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    struct root_handler *h = (struct root_handler *)h2o_create_handler(path, sizeof *h);
    h->super.on_req = on_req;
    h->server = s;

    h2o_context_init(&s->ctx, loop, &s->config);
    s->ctx_inited = true;
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->config.hosts;
    s->accept_ctx.ssl_ctx = s->ssl_ctx;
    *out = s;
    return 0;

out_free:
    free(s);
    return rc;
}

int np_http_server_route(struct np_http_server *s, const char *path, bool prefix,
                         np_http_handler_cb cb, void *ctx)
{
    struct route *r = realloc(s->routes, (s->n_routes + 1) * sizeof *r);
    if (!r) {
        return -ENOMEM;
    }
    s->routes = r;
    char *p = strdup(path);
    if (!p) {
        return -ENOMEM;
    }
    s->routes[s->n_routes++] =
        (struct route){.path = p, .len = strlen(p), .prefix = prefix, .cb = cb, .ctx = ctx};
    return 0;
}

void np_http_server_set_guard(struct np_http_server *s, np_http_guard_cb cb, void *ctx)
{
    s->guard = cb;
    s->guard_ctx = ctx;
}

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = (struct conn *)h;
    c->server->conns--;
    free(c);
}

static void on_refused_closed(uv_handle_t *h)
{
    free(h);
}

static void on_accept(uv_stream_t *listener, int status)
{
    struct np_http_server *s = listener->data;
    if (status != 0) {
        np_log(NP_LOG_WARN, "http: accept failed err=%s", uv_strerror(status));
        return;
    }
    struct conn *c = malloc(sizeof *c);
    if (!c) {
        return;
    }
    c->server = s;
    uv_tcp_init(s->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_refused_closed);
        return;
    }
    if (s->conns >= s->max_conns || s->stopped) {
        /* Over the cap: close at once rather than leave it in the backlog. */
        if (s->refused++ % 1000 == 0) {
            np_log(NP_LOG_WARN, "http: connection refused, at the limit max_connections=%u",
                   s->max_conns);
        }
        uv_close((uv_handle_t *)&c->tcp, on_refused_closed);
        return;
    }
    s->conns++;
    uv_tcp_nodelay(&c->tcp, 1);
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_closed);
    h2o_accept(&s->accept_ctx, sock);
}

int np_http_server_listen(struct np_http_server *s, struct np_err *err)
{
    int rc = uv_tcp_init(s->loop, &s->listener);
    if (rc != 0) {
        return np_err_set(err, rc, "http: uv_tcp_init: %s", uv_strerror(rc));
    }
    s->listener.data = s;
    s->listening = true;
    if (s->listen_fd > 0) { /* socket activation: bound (and listening) already */
        rc = uv_tcp_open(&s->listener, s->listen_fd);
    } else {
        rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&s->addr, 0);
    }
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)&s->listener, 511, on_accept);
    }
    if (rc != 0) {
        return np_err_set(err, rc, "http: cannot listen: %s", uv_strerror(rc));
    }
    struct sockaddr_storage bound = {0};
    int len = sizeof bound;
    char host[INET6_ADDRSTRLEN] = "?";
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len) == 0) {
        bool v6 = bound.ss_family == AF_INET6;
        s->port = ntohs(v6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                           : ((struct sockaddr_in *)&bound)->sin_port);
        if (v6) {
            uv_ip6_name((struct sockaddr_in6 *)&bound, host, sizeof host);
        } else {
            uv_ip4_name((struct sockaddr_in *)&bound, host, sizeof host);
        }
    }
    /* The bound port (listen = HOST:0 picks one): tests read it from here or
     * from netpulse-collector --port-file. */
    np_log(NP_LOG_INFO, "http: listening addr=%s%s%s:%d tls=%s",
           bound.ss_family == AF_INET6 ? "[" : "", host, bound.ss_family == AF_INET6 ? "]" : "",
           s->port, s->plain_http ? "no" : "yes");
    return 0;
}

int np_http_server_port(const struct np_http_server *s)
{
    return s->port;
}

int np_http_server_reload_tls(struct np_http_server *s, const char *cert, const char *key,
                              struct np_err *err)
{
    if (s->plain_http) {
        return 0;
    }
    SSL_CTX *c;
    int rc = tls_context_new(cert, key, &c, err);
    if (rc != 0) {
        return rc;
    }
    /* Open connections hold their own reference (SSL_new takes one). */
    SSL_CTX_free(s->ssl_ctx);
    s->ssl_ctx = c;
    s->accept_ctx.ssl_ctx = c;
    return 0;
}

void np_http_server_stop(struct np_http_server *s)
{
    if (!s || s->stopped) {
        return;
    }
    s->stopped = true;
    if (s->listening) {
        uv_close((uv_handle_t *)&s->listener, NULL);
        s->listening = false;
    }
    h2o_context_request_shutdown(&s->ctx);
}

unsigned np_http_server_connections(const struct np_http_server *s)
{
    return s->conns;
}

void np_http_server_free(struct np_http_server *s)
{
    if (!s) {
        return;
    }
    np_http_server_stop(s);
    uv_run(s->loop, UV_RUN_NOWAIT); /* the listener's close */
    if (s->conns == 0) {
        /* h2o 2.2's HTTP/2 shutdown request arms a context-level timer entry
         * that h2o_context_dispose() asserts is gone (lib/common/timeout.c). */
        if (h2o_timeout_is_linked(&s->ctx.http2._graceful_shutdown_timeout)) {
            h2o_timeout_unlink(&s->ctx.http2._graceful_shutdown_timeout);
        }
        h2o_context_dispose(&s->ctx);
        h2o_config_dispose(&s->config);
        SSL_CTX_free(s->ssl_ctx);
        for (size_t i = 0; i < s->n_routes; i++) {
            free(s->routes[i].path);
        }
        free(s->routes);
        free(s);
        return;
    }
    /* h2o cannot dispose a context with live connections; the process is
     * about to exit and takes them along. */
    np_log(NP_LOG_NOTICE, "http: exiting with connections=%u still open", s->conns);
}

/* ---- answering ---- */

void np_http_reply(struct st_h2o_req_t *req, int status, const char *reason,
                   const char *content_type, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = len;
    if (content_type) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type,
                       strlen(content_type));
    }
    if (h2o_find_header(&req->res.headers, H2O_TOKEN_CACHE_CONTROL, -1) < 0) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                       H2O_STRLIT("no-store"));
    }
    h2o_send_inline(req, body, len);
}

void np_http_add_header(struct st_h2o_req_t *req, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    h2o_iovec_t n = h2o_strdup(&req->pool, name, nl);
    h2o_iovec_t v = h2o_strdup(&req->pool, value, vl);
    h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 1, NULL, v.base, v.len);
}

struct np_http_pending {
    h2o_req_t *req;
    struct np_http_pending **slot; /* in req's pool; cleared when we finish first */
};

/* Runs when h2o frees the request's pool (answered or client gone). */
static void on_req_pool_dispose(void *p)
{
    struct np_http_pending **slot = p;
    if (*slot) {
        (*slot)->req = NULL;
        (*slot)->slot = NULL;
    }
}

struct np_http_pending *np_http_pending_new(struct st_h2o_req_t *req)
{
    struct np_http_pending *p = malloc(sizeof *p);
    if (!p) {
        return NULL;
    }
    struct np_http_pending **slot =
        h2o_mem_alloc_shared(&req->pool, sizeof *slot, on_req_pool_dispose);
    *slot = p;
    p->req = req;
    p->slot = slot;
    return p;
}

struct st_h2o_req_t *np_http_pending_req(const struct np_http_pending *p)
{
    return p->req;
}

void np_http_pending_free(struct np_http_pending *p)
{
    if (!p) {
        return;
    }
    if (p->slot) {
        *p->slot = NULL;
    }
    free(p);
}

void np_http_pending_reply(struct np_http_pending *p, int status, const char *reason,
                           const char *content_type, const char *body, size_t len)
{
    h2o_req_t *req = p->req;
    np_http_pending_free(p);
    if (req) {
        np_http_reply(req, status, reason, content_type, body, len);
    }
}

/* ---- reading ---- */

struct np_http_view np_http_method(const struct st_h2o_req_t *req)
{
    return (struct np_http_view){req->method.base, req->method.len};
}

struct np_http_view np_http_path(const struct st_h2o_req_t *req)
{
    return (struct np_http_view){req->path_normalized.base, req->path_normalized.len};
}

struct np_http_view np_http_query(const struct st_h2o_req_t *req)
{
    if (req->query_at == SIZE_MAX || req->query_at >= req->path.len) {
        return (struct np_http_view){"", 0};
    }
    return (struct np_http_view){req->path.base + req->query_at + 1,
                                 req->path.len - req->query_at - 1};
}

struct np_http_view np_http_body(const struct st_h2o_req_t *req)
{
    if (!req->entity.base) {
        return (struct np_http_view){"", 0};
    }
    return (struct np_http_view){req->entity.base, req->entity.len};
}

struct np_http_view np_http_authority(const struct st_h2o_req_t *req)
{
    return (struct np_http_view){req->authority.base, req->authority.base ? req->authority.len : 0};
}

struct np_http_view np_http_header(const struct st_h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i < 0) {
        return (struct np_http_view){NULL, 0};
    }
    const h2o_header_t *h = &req->headers.entries[i];
    return (struct np_http_view){h->value.base, h->value.len};
}

bool np_http_view_is(struct np_http_view v, const char *s)
{
    size_t n = strlen(s);
    return v.base && v.len == n && memcmp(v.base, s, n) == 0;
}
