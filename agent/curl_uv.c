/* curl_uv: libcurl multi on a libuv loop; see curl_uv.h.
 *
 * The shape follows libcurl's "multi-uv.c" example and the rules of
 * CURLMOPT_SOCKETFUNCTION(3) and CURLMOPT_TIMERFUNCTION(3): the timer callback
 * must not call curl_multi_socket_action() itself (a 0 ms timeout is run from
 * the loop on its next turn), and a socket is watched until libcurl says
 * CURL_POLL_REMOVE, which it does before it closes the descriptor. */
#include "curl_uv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

/* One socket libcurl asked us to watch. Freed in its uv_close callback. */
struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct np_curl_uv *cu;
    struct sock *prev, *next;
};

/* One running transfer. */
struct xfer {
    CURL *easy;
    np_curl_done_cb cb;
    void *ctx;
    struct xfer *prev, *next;
};

struct np_curl_uv {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct sock *socks; /* open (not closing) poll handles */
    struct xfer *xfers; /* running transfers */
    unsigned n_xfers;
    unsigned handles;     /* libuv handles not yet through their close callback */
    unsigned dispatching; /* depth of done-callback dispatch */
    bool free_requested;
    bool closing;
    bool global_init;
};

static void maybe_release(struct np_curl_uv *cu)
{
    if (cu->closing && cu->handles == 0) {
        if (cu->global_init) {
            curl_global_cleanup();
        }
        free(cu);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    struct np_curl_uv *cu;
    if (h->type == UV_POLL) {
        struct sock *s = h->data;
        cu = s->cu;
        free(s);
    } else {
        cu = h->data;
    }
    cu->handles--;
    maybe_release(cu);
}

static void sock_close(struct np_curl_uv *cu, struct sock *s)
{
    if (s->prev) {
        s->prev->next = s->next;
    } else {
        cu->socks = s->next;
    }
    if (s->next) {
        s->next->prev = s->prev;
    }
    s->prev = s->next = NULL;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
}

static struct xfer *xfer_find(struct np_curl_uv *cu, CURL *easy)
{
    for (struct xfer *x = cu->xfers; x; x = x->next) {
        if (x->easy == easy) {
            return x;
        }
    }
    return NULL;
}

static void xfer_unlink(struct np_curl_uv *cu, struct xfer *x)
{
    if (x->prev) {
        x->prev->next = x->next;
    } else {
        cu->xfers = x->next;
    }
    if (x->next) {
        x->next->prev = x->prev;
    }
    cu->n_xfers--;
}

static void teardown(struct np_curl_uv *cu);

/* Reports every finished transfer. Callbacks may add, cancel or free. */
static void check_done(struct np_curl_uv *cu)
{
    CURLMsg *msg;
    int left;
    cu->dispatching++;
    while (!cu->free_requested && cu->multi && (msg = curl_multi_info_read(cu->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        struct xfer *x = xfer_find(cu, easy);
        curl_multi_remove_handle(cu->multi, easy);
        if (!x) {
            continue;
        }
        xfer_unlink(cu, x);
        np_curl_done_cb cb = x->cb;
        void *ctx = x->ctx;
        free(x);
        cb(easy, result, ctx);
    }
    cu->dispatching--;
    if (cu->dispatching == 0 && cu->free_requested && !cu->closing) {
        teardown(cu);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *s = h->data;
    struct np_curl_uv *cu = s->cu;
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE) {
            flags |= CURL_CSELECT_IN;
        }
        if (events & UV_WRITABLE) {
            flags |= CURL_CSELECT_OUT;
        }
    }
    int running = 0;
    curl_multi_socket_action(cu->multi, s->fd, flags, &running);
    check_done(cu);
}

static void on_timer(uv_timer_t *t)
{
    struct np_curl_uv *cu = t->data;
    int running = 0;
    curl_multi_socket_action(cu->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(cu);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct np_curl_uv *cu = userp;
    struct sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(cu->multi, fd, NULL);
            sock_close(cu, s);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) {
            return -1;
        }
        if (uv_poll_init_socket(cu->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->fd = fd;
        s->cu = cu;
        s->poll.data = s;
        cu->handles++;
        s->next = cu->socks;
        if (cu->socks) {
            cu->socks->prev = s;
        }
        cu->socks = s;
        curl_multi_assign(cu->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) {
        events |= UV_READABLE;
    }
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) {
        events |= UV_WRITABLE;
    }
    if (uv_poll_start(&s->poll, events, on_poll) != 0) {
        return -1;
    }
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct np_curl_uv *cu = userp;
    if (timeout_ms < 0) {
        uv_timer_stop(&cu->timer);
        return 0;
    }
    /* 0 means "as soon as possible": the next turn of the loop, never here. */
    return uv_timer_start(&cu->timer, on_timer, (uint64_t)timeout_ms, 0) == 0 ? 0 : -1;
}

int np_curl_uv_new(uv_loop_t *loop, struct np_curl_uv **out, struct np_err *err)
{
    *out = NULL;
    struct np_curl_uv *cu = calloc(1, sizeof *cu);
    if (!cu) {
        return np_err_set(err, -ENOMEM, "curl: out of memory");
    }
    cu->loop = loop;
    CURLcode gc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (gc != CURLE_OK) {
        free(cu);
        return np_err_set(err, NP_EHTTP, "curl: global init failed: %s", curl_easy_strerror(gc));
    }
    cu->global_init = true;
    cu->multi = curl_multi_init();
    if (!cu->multi) {
        curl_global_cleanup();
        free(cu);
        return np_err_set(err, NP_EHTTP, "curl: curl_multi_init failed");
    }
    int rc = uv_timer_init(loop, &cu->timer);
    if (rc != 0) {
        curl_multi_cleanup(cu->multi);
        curl_global_cleanup();
        free(cu);
        return np_err_set(err, rc, "curl: timer: %s", uv_strerror(rc));
    }
    cu->timer.data = cu;
    cu->handles = 1;
    curl_multi_setopt(cu->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(cu->multi, CURLMOPT_SOCKETDATA, cu);
    curl_multi_setopt(cu->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(cu->multi, CURLMOPT_TIMERDATA, cu);
    /* Several transfers to the collector share one HTTP/2 connection. */
    curl_multi_setopt(cu->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    *out = cu;
    return 0;
}

int np_curl_uv_add(struct np_curl_uv *cu, CURL *easy, np_curl_done_cb cb, void *ctx)
{
    if (!cu || !easy || !cb || xfer_find(cu, easy)) {
        return -EINVAL;
    }
    if (cu->free_requested || cu->closing) {
        return -ESHUTDOWN;
    }
    struct xfer *x = calloc(1, sizeof *x);
    if (!x) {
        return -ENOMEM;
    }
    x->easy = easy;
    x->cb = cb;
    x->ctx = ctx;
    CURLMcode mc = curl_multi_add_handle(cu->multi, easy);
    if (mc != CURLM_OK) {
        free(x);
        return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : NP_EHTTP;
    }
    x->next = cu->xfers;
    if (cu->xfers) {
        cu->xfers->prev = x;
    }
    cu->xfers = x;
    cu->n_xfers++;
    return 0;
}

void np_curl_uv_cancel(struct np_curl_uv *cu, CURL *easy)
{
    if (!cu || !easy) {
        return;
    }
    struct xfer *x = xfer_find(cu, easy);
    if (!x) {
        return;
    }
    xfer_unlink(cu, x);
    free(x);
    if (cu->multi) {
        curl_multi_remove_handle(cu->multi, easy);
    }
}

unsigned np_curl_uv_running(const struct np_curl_uv *cu)
{
    return cu ? cu->n_xfers : 0;
}

static void teardown(struct np_curl_uv *cu)
{
    cu->closing = true;
    while (cu->xfers) {
        np_curl_uv_cancel(cu, cu->xfers->easy);
    }
    /* Cleanup closes cached connections and may still call socket_cb with
     * CURL_POLL_REMOVE; whatever it leaves open is closed below. */
    curl_multi_cleanup(cu->multi);
    cu->multi = NULL;
    while (cu->socks) {
        sock_close(cu, cu->socks);
    }
    uv_timer_stop(&cu->timer);
    uv_close((uv_handle_t *)&cu->timer, on_handle_closed);
}

void np_curl_uv_free(struct np_curl_uv *cu)
{
    if (!cu || cu->free_requested) {
        return;
    }
    cu->free_requested = true;
    if (cu->dispatching == 0) {
        teardown(cu);
    }
}
