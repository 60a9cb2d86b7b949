/* icmp: echo request / reply rounds on a ping socket or a raw socket.
 *
 * Ping sockets (socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), Linux 3.0+, and
 * the ICMPv6 twin) need no privilege when the process's group is inside
 * net.ipv4.ping_group_range (it covers IPv6 too). The kernel then picks the
 * echo identifier itself (the socket's "port") and hands the socket only the
 * replies carrying it, without the IP header. Otherwise we fall back to a
 * raw socket, which needs CAP_NET_RAW at open time only: it is opened in
 * np_probe_set_new() so the agent may drop privileges afterwards. A raw
 * socket sees every ICMP message reaching the host, so the kernel filter
 * (ICMP_FILTER, ICMP6_FILTER) keeps echo replies only, and our identifier,
 * the sequence window of the current round and a random 64-bit cookie in
 * the payload drop everyone else's (another ping, another probe, a late
 * reply of an earlier round). */
#include "probe_internal.h"

#include "netpulse/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/icmp6.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* <linux/icmp.h> clashes with glibc's <netinet/ip_icmp.h>; these two are ABI. */
#define NP_ICMP_FILTER 1 /* SOL_RAW option: bit n set drops ICMP type n */
#define NP_ICMP_ECHOREPLY 0

enum { V4, V6, NFAM };

struct icmp {
    int fd[NFAM];
    bool raw[NFAM];
    uv_poll_t poll[NFAM];
    uv_timer_t pace; /* sends the echoes of a round NP_PROBE_ICMP_SPACING_MS apart */
    uint16_t id;     /* raw sockets; ping sockets get the kernel's */
    uint64_t cookie;
    uint16_t seq_next;
    /* the round */
    int fam;
    struct sockaddr_storage dst;
    socklen_t dst_len;
    uint16_t seq_base;
    uint32_t next, sent, received, send_failed;
    int last_errno;
    uint64_t rtt_sum_us;
    uint64_t sent_ns[NP_PROBE_ICMP_MAX_COUNT];
    bool got[NP_PROBE_ICMP_MAX_COUNT];
};

static int open_socket(struct icmp *ic, int fam, const char *name, struct np_err *err)
{
    int family = fam == V4 ? AF_INET : AF_INET6;
    int proto = fam == V4 ? IPPROTO_ICMP : IPPROTO_ICMPV6;
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
    if (fd >= 0) {
        ic->fd[fam] = fd;
        ic->raw[fam] = false;
        return 0;
    }
    int ping_errno = errno;
    fd = socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
    if (fd < 0) {
        int raw_errno = errno;
        return np_err_set(err, -raw_errno,
                          "probe: %s: no ICMP%s socket: ping socket: %s (is the group in "
                          "net.ipv4.ping_group_range?); raw socket: %s (needs CAP_NET_RAW)",
                          name, fam == V4 ? "" : "v6", strerror(ping_errno), strerror(raw_errno));
    }
    int rc = 0;
    if (fam == V4) {
        uint32_t mask = ~(1u << NP_ICMP_ECHOREPLY);
        rc = setsockopt(fd, SOL_RAW, NP_ICMP_FILTER, &mask, sizeof mask);
    } else {
        struct icmp6_filter f;
        ICMP6_FILTER_SETBLOCKALL(&f);
        ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f);
        rc = setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof f);
    }
    if (rc != 0) {
        /* Only an optimisation: replies are checked anyway. */
        np_log(NP_LOG_DEBUG, "probe: icmp filter not set name=%s err=%s", name, strerror(errno));
    }
    ic->fd[fam] = fd;
    ic->raw[fam] = true;
    return 0;
}

static int icmp_open(struct np_probe *p, struct np_err *err)
{
    struct icmp *ic = calloc(1, sizeof *ic);
    if (!ic) {
        return np_err_set(err, -ENOMEM, "probe: out of memory");
    }
    p->impl = ic;
    ic->fd[V4] = ic->fd[V6] = -1;
    if (getrandom(&ic->cookie, sizeof ic->cookie, 0) != (ssize_t)sizeof ic->cookie) {
        ic->cookie = uv_hrtime() ^ (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)p;
    }
    ic->id = (uint16_t)(ic->cookie >> 48);
    ic->seq_next = (uint16_t)ic->cookie;
    unsigned char buf[16];
    bool v4 = inet_pton(AF_INET, p->cfg->target, buf) == 1;
    bool v6 = inet_pton(AF_INET6, p->cfg->target, buf) == 1;
    if (v4 || v6) {
        return open_socket(ic, v4 ? V4 : V6, p->cfg->name, err);
    }
    /* A name: either family may come back; IPv6 may be absent on the host. */
    struct np_err e6 = {0};
    int rc4 = open_socket(ic, V4, p->cfg->name, err);
    int rc6 = open_socket(ic, V6, p->cfg->name, &e6);
    if (rc4 != 0 && rc6 != 0) {
        return rc4;
    }
    np_err_clear(err);
    return 0;
}

static void finish(struct np_probe *p)
{
    struct icmp *ic = p->impl;
    uv_timer_stop(&ic->pace);
    char why[128] = "";
    if (ic->received == 0) {
        if (ic->send_failed == ic->sent && ic->last_errno != 0) {
            snprintf(why, sizeof why, "send: %s",
                     np_probe_strerror(uv_translate_sys_error(ic->last_errno)));
        } else {
            snprintf(why, sizeof why, "timeout");
        }
    }
    uint64_t rtt = ic->received ? ic->rtt_sum_us / ic->received : 0;
    np_probe_round_done(p, ic->received > 0, rtt, ic->sent, ic->received, why);
}

static void send_one(struct np_probe *p)
{
    struct icmp *ic = p->impl;
    uint8_t pkt[NP_PROBE_ICMP_LEN];
    uint32_t i = ic->next++;
    size_t len = np_probe_icmp_build(pkt, ic->fam == V4 ? AF_INET : AF_INET6, ic->id,
                                     (uint16_t)(ic->seq_base + i), ic->cookie);
    ic->sent_ns[i] = uv_hrtime();
    ic->sent++;
    ssize_t n = sendto(ic->fd[ic->fam], pkt, len, 0, (struct sockaddr *)&ic->dst, ic->dst_len);
    if (n < 0) {
        ic->send_failed++;
        ic->last_errno = errno;
    }
    if (ic->next >= (uint32_t)p->cfg->count) {
        uv_timer_stop(&ic->pace);
    }
    if (ic->next >= (uint32_t)p->cfg->count && ic->received + ic->send_failed >= ic->sent) {
        finish(p);
    }
}

static void on_pace(uv_timer_t *t)
{
    struct np_probe *p = t->data;
    struct icmp *ic = p->impl;
    if (p->running && ic->next < (uint32_t)p->cfg->count) {
        send_one(p);
    }
}

static void on_resolved(struct np_probe *p, int status, const struct sockaddr_storage *addr,
                        socklen_t len)
{
    struct icmp *ic = p->impl;
    if (status != 0) {
        np_probe_round_done(p, false, 0, 0, 0, np_probe_strerror(status));
        return;
    }
    ic->fam = addr->ss_family == AF_INET ? V4 : V6;
    if (ic->fd[ic->fam] < 0) {
        np_probe_round_done(p, false, 0, 0, 0, "no socket for the address family");
        return;
    }
    memcpy(&ic->dst, addr, len);
    ic->dst_len = len;
    ic->seq_base = ic->seq_next;
    ic->seq_next = (uint16_t)(ic->seq_next + p->cfg->count);
    ic->next = ic->sent = ic->received = ic->send_failed = 0;
    ic->last_errno = 0;
    ic->rtt_sum_us = 0;
    memset(ic->got, 0, sizeof ic->got);
    if (p->cfg->count > 1) {
        uv_timer_start(&ic->pace, on_pace, NP_PROBE_ICMP_SPACING_MS, NP_PROBE_ICMP_SPACING_MS);
    }
    send_one(p);
}

static void icmp_start(struct np_probe *p)
{
    struct icmp *ic = p->impl;
    int fam = ic->fd[V4] >= 0 && ic->fd[V6] >= 0 ? AF_UNSPEC : ic->fd[V4] >= 0 ? AF_INET : AF_INET6;
    int rc = np_probe_resolve(p, p->cfg->target, fam, 0, on_resolved);
    if (rc != 0) {
        np_probe_round_done(p, false, 0, 0, 0, np_probe_strerror(rc));
    }
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    struct np_probe *p = h->data;
    struct icmp *ic = p->impl;
    int fam = h == &ic->poll[V4] ? V4 : V6;
    (void)events;
    if (status < 0) {
        return;
    }
    for (int budget = 0; budget < 64; budget++) {
        uint8_t buf[1500];
        struct sockaddr_storage from;
        socklen_t from_len = sizeof from;
        ssize_t n = recvfrom(ic->fd[fam], buf, sizeof buf, 0, (struct sockaddr *)&from, &from_len);
        if (n < 0) {
            break; /* EAGAIN, or an error queued by the kernel: nothing for us */
        }
        uint64_t now_ns = uv_hrtime();
        uint16_t id = 0, seq = 0;
        if (np_probe_icmp_parse(buf, (size_t)n, fam == V4 ? AF_INET : AF_INET6,
                                ic->raw[fam] && fam == V4, ic->cookie, &id, &seq) != 0) {
            continue;
        }
        if (ic->raw[fam] && id != ic->id) {
            continue;
        }
        if (!p->running || fam != ic->fam) {
            continue; /* a reply after its round ended */
        }
        uint16_t idx = (uint16_t)(seq - ic->seq_base);
        if (idx >= ic->next || ic->got[idx]) {
            continue; /* an earlier round's, or a duplicate */
        }
        ic->got[idx] = true;
        ic->received++;
        ic->rtt_sum_us += (now_ns - ic->sent_ns[idx]) / 1000;
        if (ic->next >= (uint32_t)p->cfg->count && ic->received + ic->send_failed >= ic->sent) {
            finish(p);
        }
    }
}

static int icmp_attach(struct np_probe *p, struct np_err *err)
{
    struct icmp *ic = p->impl;
    uv_timer_init(p->set->loop, &ic->pace);
    ic->pace.data = p;
    np_probe_ref(p);
    for (int f = 0; f < NFAM; f++) {
        if (ic->fd[f] < 0) {
            continue;
        }
        int rc = uv_poll_init_socket(p->set->loop, &ic->poll[f], ic->fd[f]);
        if (rc != 0) {
            return np_err_set(err, rc, "probe: %s: uv_poll_init: %s", p->cfg->name,
                              uv_strerror(rc));
        }
        ic->poll[f].data = p;
        np_probe_ref(p);
        rc = uv_poll_start(&ic->poll[f], UV_READABLE, on_readable);
        if (rc != 0) {
            return np_err_set(err, rc, "probe: %s: uv_poll_start: %s", p->cfg->name,
                              uv_strerror(rc));
        }
    }
    p->kind = ic->raw[ic->fd[V4] >= 0 ? V4 : V6] ? "raw" : "ping";
    return 0;
}

static void icmp_timeout(struct np_probe *p)
{
    finish(p);
}

static void close_handle(uv_handle_t *h)
{
    if (h->loop && !uv_is_closing(h)) {
        uv_close(h, np_probe_on_close);
    }
}

static void icmp_close(struct np_probe *p)
{
    struct icmp *ic = p->impl;
    close_handle((uv_handle_t *)&ic->pace);
    for (int f = 0; f < NFAM; f++) {
        close_handle((uv_handle_t *)&ic->poll[f]);
    }
}

static void icmp_release(struct np_probe *p)
{
    struct icmp *ic = p->impl;
    if (!ic) {
        return;
    }
    for (int f = 0; f < NFAM; f++) {
        if (ic->fd[f] >= 0) {
            close(ic->fd[f]);
        }
    }
    free(ic);
    p->impl = NULL;
}

const struct np_probe_ops np_probe_icmp_ops = {
    icmp_open, icmp_attach, icmp_start, icmp_timeout, icmp_close, icmp_release,
};
