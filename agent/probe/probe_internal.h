/* probe_internal: what probe.c shares with the per-type files (icmp.c,
 * tcp.c, dns.c, http.c). Not for other modules.
 *
 * Life of a round: probe.c's interval timer calls ops->start(); the type
 * code does its work and ends the round exactly once with
 * np_probe_round_done() (a late answer after that is ignored: it checks
 * p->round_id or p->running). When the round's deadline passes first,
 * probe.c calls ops->timeout(), which stops the work and ends the round.
 *
 * Handles and requests: every libuv handle or request a probe opens is
 * counted with np_probe_ref() and uncounted with np_probe_unref() when its
 * close (or completion) callback ran; the set's memory goes when the set is
 * being freed and the count reaches 0. np_probe_on_close() is the close
 * callback for handles embedded in the type's struct whose data is the
 * probe. */
#ifndef NP_AGENT_PROBE_PROBE_INTERNAL_H
#define NP_AGENT_PROBE_PROBE_INTERNAL_H

#include "probe.h"
#include "probe_config.h"
#include "probe_logic.h"

#include <netinet/in.h>
#include <sys/socket.h>

struct np_probe;
struct np_curl_uv;

struct np_probe_ops {
    /* At np_probe_set_new(): allocate p->impl, open sockets; no libuv handle
     * yet, so a failure needs no loop turn to undo. 0 or error in err. */
    int (*open)(struct np_probe *p, struct np_err *err);
    /* After every open() succeeded: init the type's libuv handles. */
    int (*attach)(struct np_probe *p, struct np_err *err);
    void (*start)(struct np_probe *p);
    /* The deadline passed with the round running: stop, np_probe_round_done(). */
    void (*timeout)(struct np_probe *p);
    /* The set is being freed: stop everything, uv_close every handle. */
    void (*close)(struct np_probe *p);
    /* Every handle is closed: free p->impl. May be called without open(). */
    void (*release)(struct np_probe *p);
};

struct np_probe {
    struct np_probe_set *set;
    const struct np_probe_settings *cfg; /* borrowed from the config */
    enum np_probe_type type;
    const struct np_probe_ops *ops;
    void *impl;
    uv_timer_t tick;     /* every interval */
    uv_timer_t deadline; /* end of the current round */
    bool running;
    uint32_t round_id;      /* incremented at every start */
    int64_t round_wall_ms;  /* wall clock at the round's start */
    uint64_t round_mono_ns; /* uv_hrtime() at the round's start */
    int64_t round_len_ms;   /* deadline after the start */
    uint64_t skipped;       /* rounds not started because the last one still ran */
    struct np_probe_streak streak;
    const char *kind; /* "ping", "raw" or "" */
};

struct np_probe_set {
    uv_loop_t *loop;
    const struct np_config *cfg;
    struct np_probe_callbacks cbs;
    void *ctx;
    struct np_probe *probes;
    size_t n;
    unsigned quorum, up_after, down_after;
    enum np_uplink_state uplink;
    int64_t uplink_since_ms;
    struct np_curl_uv *curl; /* created when there is an http probe */
    unsigned refs;           /* open handles and pending requests */
    bool started, closing;
};

void np_probe_ref(struct np_probe *p);
void np_probe_unref(struct np_probe *p);
void np_probe_on_close(uv_handle_t *h);

/* Ends the current round (ignored when none runs or the set is closing).
 * error: "" or NULL when ok; copied. */
void np_probe_round_done(struct np_probe *p, bool ok, uint64_t rtt_us, uint32_t sent,
                         uint32_t received, const char *error);

/* Microseconds since the round's start. */
uint64_t np_probe_elapsed_us(const struct np_probe *p);

/* Turns "host" into an address on the loop: numeric forms at once, names
 * through uv_getaddrinfo (thread pool). family AF_UNSPEC or AF_INET/AF_INET6.
 * cb runs once with status 0 and the address, or a negative uv code: inside
 * this call for a numeric host, later for a name, and then not at all when
 * the round ended meanwhile or the set is closing. Returns 0 or a negative
 * uv code (cb not called). */
typedef void (*np_probe_resolved_cb)(struct np_probe *p, int status,
                                     const struct sockaddr_storage *addr, socklen_t len);
int np_probe_resolve(struct np_probe *p, const char *host, int family, uint16_t port,
                     np_probe_resolved_cb cb);

/* Text of a uv / errno code for a result's error field, in people's words
 * ("connection refused", "timeout", "host unreachable"). */
const char *np_probe_strerror(int uv_code);

extern const struct np_probe_ops np_probe_icmp_ops;
extern const struct np_probe_ops np_probe_tcp_ops;
extern const struct np_probe_ops np_probe_dns_ops;
extern const struct np_probe_ops np_probe_http_ops;

#endif
