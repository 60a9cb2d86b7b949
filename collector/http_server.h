/* http_server: the collector's HTTP server on its libuv loop, built on libh2o
 * (its libuv flavour, Debian libh2o-dev 2.2): HTTP/1.1 and HTTP/2 (ALPN "h2")
 * over TLS, or plain HTTP/1.1 when the configuration says so explicitly.
 *
 * This is the only module that sets h2o up. Handlers receive h2o's request
 * (h2o_req_t) and answer with the helpers below, at once or later (see
 * struct np_http_pending).
 *
 * Limits against misbehaving clients (all hard):
 * - body: h2o buffers at most 2 x max_body_bytes (above that: 413 over
 *   HTTP/1.1, RST_STREAM REFUSED_STREAM over HTTP/2, from h2o 2.2 itself);
 *   handlers that take bodies refuse what is over max_body_bytes with a 413
 *   and a reason;
 * - time: the TLS handshake must end within handshake_timeout_ms, an
 *   HTTP/1.1 request (headers and body) must arrive within request_timeout_ms
 *   of its first byte (or of the previous response), and an HTTP/2
 *   connection may stay idle request_timeout_ms: a slow-loris client that
 *   sends part of a request and stalls is dropped;
 * - connections: at most max_connections are open at once; further ones are
 *   accepted and closed at once (so they do not pile up in the backlog).
 *
 * Threads: everything runs on the loop thread. */
#ifndef NP_COLLECTOR_HTTP_SERVER_H
#define NP_COLLECTOR_HTTP_SERVER_H

#include "netpulse/err.h"

#include <uv.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct st_h2o_req_t; /* h2o's request: opaque outside this module, use the helpers */

#define NP_HTTP_DEFAULT_MAX_BODY (8u << 20)
#define NP_HTTP_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000
#define NP_HTTP_DEFAULT_REQUEST_TIMEOUT_MS 10000
#define NP_HTTP_DEFAULT_MAX_CONNECTIONS 1024

struct np_http_server_opts {
    const char *listen;            /* "HOST:PORT", "[V6]:PORT"; port 0 picks a free one */
    bool plain_http;               /* no TLS; labs and tests only */
    const char *tls_cert;          /* PEM certificate chain file (unless plain_http) */
    const char *tls_key;           /* PEM private key file */
    uint64_t max_body_bytes;       /* 0: NP_HTTP_DEFAULT_MAX_BODY */
    uint64_t handshake_timeout_ms; /* 0: default */
    uint64_t request_timeout_ms;   /* 0: default */
    unsigned max_connections;      /* 0: default */
    int listen_fd; /* > 0: an already bound TCP socket to listen on instead of `listen`
                    * (systemd socket activation); the server takes it over */
};

struct np_http_server;

/* A route handler. Returns 0 when it answered or will answer (see
 * np_http_pending_new); non-zero makes the server answer 404. ctx is the
 * pointer given to np_http_server_route(). */
typedef int (*np_http_handler_cb)(void *ctx, struct st_h2o_req_t *req);

/* Creates the server: h2o context on loop, TLS context (certificate and key
 * are read now; errors carry OpenSSL's reason). Strings in o are copied.
 * Does not listen yet. *out is freed with np_http_server_free().
 * Errors: NP_ECONFIG (bad listen address, TLS files unusable, neither TLS
 * nor plain_http), -ENOMEM. */
int np_http_server_new(uv_loop_t *loop, const struct np_http_server_opts *o,
                       struct np_http_server **out, struct np_err *err);

/* Adds a route: requests whose normalised path equals path, or (prefix) starts
 * with it, go to cb. Routes are tried in the order added. path is copied.
 * Before np_http_server_listen() only. Errors: -ENOMEM. */
int np_http_server_route(struct np_http_server *s, const char *path, bool prefix,
                         np_http_handler_cb cb, void *ctx);

/* A guard runs before routing for every request (access control, headers
 * every response carries; web_auth.h). It returns 0 to let the request go on
 * to the routes, non-zero when it has answered. One guard; ctx is passed
 * through. Before np_http_server_listen() only. */
typedef int (*np_http_guard_cb)(void *ctx, struct st_h2o_req_t *req);
void np_http_server_set_guard(struct np_http_server *s, np_http_guard_cb cb, void *ctx);

/* Binds and listens. Errors: -errno from libuv (e.g. -EADDRINUSE). */
int np_http_server_listen(struct np_http_server *s, struct np_err *err);

/* The bound port (useful with port 0); 0 before listening. */
int np_http_server_port(const struct np_http_server *s);

/* Loads a new certificate and key (copied paths) into a new TLS context used
 * for connections accepted from now on; open connections keep theirs. On
 * error the old context stays. Errors: NP_ECONFIG with OpenSSL's reason. */
int np_http_server_reload_tls(struct np_http_server *s, const char *cert, const char *key,
                              struct np_err *err);

/* Stops accepting and asks open connections to finish (HTTP/2 GOAWAY, no
 * keep-alive). Idempotent. */
void np_http_server_stop(struct np_http_server *s);

/* Connections open now. */
unsigned np_http_server_connections(const struct np_http_server *s);

/* Frees the server. With connections still open, h2o's context cannot be
 * disposed: it is left to the process exit (logged). Runs the loop without
 * waiting (UV_RUN_NOWAIT) so closed handles are released; call it after the
 * loop has stopped. Accepts NULL. */
void np_http_server_free(struct np_http_server *s);

/* ---- answering ---- */

/* Sends a complete response: status, reason phrase, content type and body
 * (copied). Loop thread. */
void np_http_reply(struct st_h2o_req_t *req, int status, const char *reason,
                   const char *content_type, const char *body, size_t len);

/* Adds a response header (name lower case; both copied into the request's
 * pool) to the answer given later by np_http_reply() or a pending reply. A
 * cache-control header given here replaces the default "no-store". */
void np_http_add_header(struct st_h2o_req_t *req, const char *name, const char *value);

/* A request to be answered later (after a work job, a journal sync). If the
 * client goes away first, h2o frees the request; the pending handle then
 * reports it gone instead of dangling. */
struct np_http_pending;

/* Creates a pending handle for req; the handler then returns 0. NULL when out
 * of memory (answer at once then). The caller ends it with exactly one of
 * np_http_pending_reply() or np_http_pending_free(). */
struct np_http_pending *np_http_pending_new(struct st_h2o_req_t *req);

/* The request, or NULL when the client has gone. Borrowed. */
struct st_h2o_req_t *np_http_pending_req(const struct np_http_pending *p);

/* Answers (if the request is still there) as np_http_reply() and frees p. */
void np_http_pending_reply(struct np_http_pending *p, int status, const char *reason,
                           const char *content_type, const char *body, size_t len);

/* Frees p without answering (the request, if still there, must be answered
 * by the caller before returning to the loop). Accepts NULL. */
void np_http_pending_free(struct np_http_pending *p);

/* ---- reading requests (borrowed views into h2o's request) ---- */

struct np_http_view {
    const char *base;
    size_t len;
};

/* Method, normalised path (no query), query string (after '?', maybe empty),
 * body. */
struct np_http_view np_http_method(const struct st_h2o_req_t *req);
struct np_http_view np_http_path(const struct st_h2o_req_t *req);
struct np_http_view np_http_query(const struct st_h2o_req_t *req);
struct np_http_view np_http_body(const struct st_h2o_req_t *req);

/* The authority (Host header, or HTTP/2 :authority); .len 0 when absent. */
struct np_http_view np_http_authority(const struct st_h2o_req_t *req);

/* First value of header name (lower case); .base NULL when absent. */
struct np_http_view np_http_header(const struct st_h2o_req_t *req, const char *name);

/* Whether v equals the NUL-terminated s. */
bool np_http_view_is(struct np_http_view v, const char *s);

#endif
