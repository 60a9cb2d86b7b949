#include "flow_capture.h"
#include "packet_ring.h"

#include "netpulse/clock.h"
#include "netpulse/log.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>

/* The decoder speaks libpcap's DLT numbers without including pcap.h. */
_Static_assert(NP_DLT_NULL == DLT_NULL, "DLT_NULL");
_Static_assert(NP_DLT_EN10MB == DLT_EN10MB, "DLT_EN10MB");
_Static_assert(NP_DLT_RAW == DLT_RAW, "DLT_RAW");
_Static_assert(NP_DLT_LOOP == DLT_LOOP, "DLT_LOOP");
_Static_assert(NP_DLT_LINUX_SLL == DLT_LINUX_SLL, "DLT_LINUX_SLL");
_Static_assert(NP_DLT_LINUX_SLL2 == DLT_LINUX_SLL2, "DLT_LINUX_SLL2");
_Static_assert(NP_DLT_IPV4 == DLT_IPV4, "DLT_IPV4");
_Static_assert(NP_DLT_IPV6 == DLT_IPV6, "DLT_IPV6");

/* What the per-packet handler needs; shared by offline and live capture. */
struct source {
    struct np_flow_agg *agg; /* the aggregator being filled (owned by the capturing thread) */
    int dlt;
    uint32_t snaplen;
    uint64_t frames; /* frames handed to agg, over the whole capture */
};

/* Capture time in microseconds (handles are opened with microsecond precision). */
static uint64_t capture_us(const struct pcap_pkthdr *h)
{
    return (uint64_t)h->ts.tv_sec * 1000000u + (uint64_t)h->ts.tv_usec;
}

/* The one per-packet path: pcap_dispatch() calls this on live interfaces;
 * offline files reach the same np_flow_agg_offer code, with the same
 * arguments, through the packet ring (read_offline, np_flow_agg_offer_ring).
 * Bytes are counted at h->len (wire length). The flow update of a packet runs
 * a few packets later, when its slot is in the cache (np_flow_agg_offer);
 * dispatch() flushes the rest before anyone reads the aggregator. */
static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
    struct source *src = (struct source *)user;
    uint32_t caplen = h->caplen < src->snaplen ? h->caplen : src->snaplen;
    src->frames++;
    np_flow_agg_offer(src->agg, src->dlt, capture_us(h), bytes, caplen, h->len);
}

/* pcap_dispatch, then every queued flow update done: between two calls the
 * aggregator is complete and may be reported or handed over. */
static int dispatch(pcap_t *p, struct source *src)
{
    int n = pcap_dispatch(p, -1, on_packet, (u_char *)src);
    np_flow_agg_flush(src->agg);
    return n;
}

static int set_filter(pcap_t *p, const char *filter, struct np_err *err)
{
    struct bpf_program prog;
    if (!filter || filter[0] == '\0') {
        return 0;
    }
    if (pcap_compile(p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        return np_err_set(err, NP_ECONFIG, "flow: bad filter \"%.80s\": %s", filter,
                          pcap_geterr(p));
    }
    int rc = 0;
    if (pcap_setfilter(p, &prog) != 0) {
        rc = np_err_set(err, NP_EPROTO, "flow: cannot set filter: %s", pcap_geterr(p));
    }
    pcap_freecode(&prog);
    return rc;
}

int np_flow_capture_check_filter(const char *filter, int snaplen, struct np_err *err)
{
    pcap_t *p = pcap_open_dead(DLT_EN10MB, snaplen);
    if (!p) {
        return np_err_set(err, -ENOMEM, "flow: pcap_open_dead failed");
    }
    struct bpf_program prog;
    int rc = 0;
    if (pcap_compile(p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        rc = np_err_set(err, NP_ECONFIG, "%s", pcap_geterr(p));
    } else {
        pcap_freecode(&prog);
    }
    pcap_close(p);
    return rc;
}

/* Aggregator and report options for settings s; prefixes[] must outlive the
 * aggregator. */
static int make_agg(const struct np_flow_settings *s, struct np_prefix *prefixes,
                    size_t n_prefixes_max, struct np_flow_agg **agg, struct np_err *err)
{
    int n = np_flow_settings_prefixes(s, prefixes, n_prefixes_max, err);
    if (n < 0) {
        return n;
    }
    struct np_flow_agg_config ac = {
        .max_flows = (uint32_t)s->flow_table_size,
        .sample = (uint32_t)s->sample,
        .local = prefixes,
        .n_local = (size_t)n,
    };
    int rc = np_flow_agg_new(&ac, agg);
    if (rc != 0) {
        return np_err_set(err, rc, "flow: cannot create the flow table: %s", np_strerror(rc));
    }
    return 0;
}

/* Offline files run as a two-stage pipeline over two threads: a reader thread
 * runs libpcap (file reads, record parsing, the BPF filter) and copies each
 * frame, cut to the snaplen, into a packet ring; the calling thread takes the
 * frames out in order and feeds the aggregator as on_packet does. libpcap's
 * share of the per-packet work then overlaps with the aggregation instead of
 * adding to it. 1 MiB holds about 7,000 headers-only frames: a side that
 * sleeps is woken after a quarter of the ring at the earliest (about 1,800 of
 * them), and the ring stays in the cache the two cores share. */
#define OFFLINE_RING_BYTES (1024u * 1024u)

struct reader {
    pcap_t *p;
    struct np_packet_ring *ring;
    int status; /* pcap_dispatch's last result (0 at the end, PCAP_ERROR); read after the join */
};

static void on_packet_copy(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
    np_packet_ring_put((struct np_packet_ring *)user, capture_us(h), bytes, h->caplen, h->len);
}

static void reader_thread(void *arg)
{
    struct reader *rd = arg;
    int n;
    while ((n = pcap_dispatch(rd->p, -1, on_packet_copy, (u_char *)rd->ring)) > 0) {
    }
    rd->status = n;
    np_packet_ring_close(rd->ring);
}

/* libpcap reads a file through stdio, 4 KiB per read(2) by default: a system
 * call every ~28 headers-only frames. The file is opened here with a larger
 * buffer and handed to libpcap; only the reader thread reads it (the join
 * orders the rest), so stdio need not lock it for every record. */
#define OFFLINE_STDIO_BYTES (256u * 1024u)

/* Opens path for reading by libpcap at microsecond precision; *stdio_buf
 * (freed by the caller after pcap_close, may be NULL) is the stream's buffer.
 * NULL with libpcap's message in errbuf and errno set when it cannot. */
static pcap_t *open_offline(const char *path, char **stdio_buf, char *errbuf)
{
    *stdio_buf = NULL;
    FILE *fp = strcmp(path, "-") == 0 ? NULL : fopen(path, "rb");
    char *buf = fp ? malloc(OFFLINE_STDIO_BYTES) : NULL;
    if (!buf || setvbuf(fp, buf, _IOFBF, OFFLINE_STDIO_BYTES) != 0) {
        /* stdin, an error, or no memory: libpcap opens the file itself
         * (and words its own message) */
        if (fp) {
            fclose(fp);
        }
        free(buf);
        errno = 0;
        return pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_MICRO, errbuf);
    }
    __fsetlocking(fp, FSETLOCKING_BYCALLER);
    errno = 0;
    pcap_t *p = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_MICRO, errbuf);
    if (!p) {
        int saved = errno;
        fclose(fp);
        free(buf);
        errno = saved;
        return NULL;
    }
    *stdio_buf = buf;
    return p;
}

/* Reads the whole file open in p into src->agg (flushed on return) through a
 * reader thread; *pcap_status gets pcap_dispatch's final result. Returns 0 or
 * -ENOMEM / a thread creation error (message in err; nothing read). */
static int read_offline(pcap_t *p, struct source *src, int *pcap_status, struct np_err *err)
{
    struct reader rd = {.p = p};
    int rc = np_packet_ring_new(OFFLINE_RING_BYTES, src->snaplen, &rd.ring);
    if (rc != 0) {
        return np_err_set(err, rc, "flow: cannot allocate the packet ring: %s", np_strerror(rc));
    }
    uv_thread_t thread;
    rc = uv_thread_create(&thread, reader_thread, &rd);
    if (rc != 0) {
        np_err_set(err, rc, "flow: cannot start the reader thread: %s", uv_strerror(rc));
        goto out_free_ring;
    }
    src->frames += np_flow_agg_offer_ring(src->agg, src->dlt, rd.ring);
    uv_thread_join(&thread);
    *pcap_status = rd.status;
out_free_ring:
    np_packet_ring_free(rd.ring);
    return rc;
}

int np_flow_pcap_file(const struct np_config *cfg, const char *pcap_path, long sample_override,
                      long top_override, FILE *out, struct np_err *err)
{
    struct np_flow_settings s = *np_flow_settings_default();
    if (cfg && np_config_count(cfg, "pcap") > 0) {
        s = *(const struct np_flow_settings *)np_config_instance(cfg, "pcap", 0);
    }
    if (sample_override > 0) {
        s.sample = sample_override;
    }
    if (top_override > 0) {
        s.top_n = top_override;
    }
    struct np_prefix prefixes[NP_FLOW_MAX_PREFIXES];
    struct np_flow_agg *agg = NULL;
    char errbuf[PCAP_ERRBUF_SIZE] = "";
    char *stdio_buf = NULL;
    int rc = make_agg(&s, prefixes, NP_FLOW_MAX_PREFIXES, &agg, err);
    if (rc != 0) {
        return rc;
    }
    pcap_t *p = open_offline(pcap_path, &stdio_buf, errbuf);
    if (!p) {
        rc = np_err_set(err, errno ? -errno : NP_EPROTO, "flow: cannot read %s: %s", pcap_path,
                        errbuf);
        goto out_free_agg;
    }
    rc = set_filter(p, s.filter, err);
    if (rc != 0) {
        goto out_close;
    }
    struct source src = {.agg = agg, .dlt = pcap_datalink(p), .snaplen = (uint32_t)s.snaplen};
    int n = 0;
    rc = read_offline(p, &src, &n, err);
    if (rc != 0) {
        goto out_close;
    }
    const char *read_error = NULL;
    if (n == PCAP_ERROR) {
        /* A capture cut mid-record still yields what came before it. */
        read_error = pcap_geterr(p);
        np_log(NP_LOG_WARN, "flow: read error file=%s err=%s", pcap_path, read_error);
    }
    struct np_flow_report_opts opts;
    np_flow_settings_report_opts(&s, &opts);
    opts.source = pcap_path;
    opts.link_type = pcap_datalink_val_to_name(src.dlt);
    json_t *report = np_flow_report_json(agg, &opts);
    if (!report) {
        rc = np_err_set(err, -ENOMEM, "flow: out of memory building the report");
        goto out_close;
    }
    if (read_error) {
        json_object_set_new(report, "read_error", json_string(read_error));
    }
    if (json_dumpf(report, out, JSON_COMPACT) != 0 || fputc('\n', out) == EOF || fflush(out) != 0) {
        rc = np_err_set(err, -EIO, "flow: cannot write the report");
    }
    json_decref(report);
out_close:
    pcap_close(p);
    free(stdio_buf);
out_free_agg:
    np_flow_agg_free(agg);
    return rc;
}

struct np_flow_capture {
    uv_async_t async; /* first: the close callback gets the struct back from it */
    const struct np_flow_settings *s;
    np_flow_export_cb cb;
    void *arg;
    pcap_t *p;
    struct source src; /* src.agg: the thread's current aggregator */
    struct np_prefix prefixes[NP_FLOW_MAX_PREFIXES];
    struct np_flow_report_opts opts;
    uv_thread_t thread;
    bool thread_started;
    atomic_bool stop;

    uv_mutex_t lock;           /* guards the two fields below */
    struct np_flow_agg *ready; /* snapshot of a finished interval waiting for the loop */
    struct np_flow_report_opts ready_opts;

    /* capture thread only (and np_flow_capture_stop after the join) */
    int fd; /* pcap_get_selectable_fd: polled by the thread, owned by p */
    struct pcap_stat last;
    uint64_t pending_recv, pending_drop, pending_ifdrop;
    uint64_t total_recv, total_drop; /* since the start */
    uint64_t next_export_ms;
};

/* TPACKET_V3 hands over a ring block when it is full or when this timeout has
 * passed since its first packet (the kernel never retires an empty block, so
 * the thread polls with its own timeout to keep exports regular on a quiet
 * interface). */
#define CAPTURE_BLOCK_TIMEOUT_MS 1000
/* Longest the thread sleeps in poll(): bounds how late a stop request or an
 * export is noticed. */
#define CAPTURE_POLL_MAX_MS 250

/* pcap_stat counters are u_int and wrap; deltas in unsigned arithmetic survive one wrap. */
static void take_stats(struct np_flow_capture *c)
{
    struct pcap_stat ps;
    if (pcap_stats(c->p, &ps) != 0) {
        return;
    }
    u_int recv = ps.ps_recv - c->last.ps_recv, drop = ps.ps_drop - c->last.ps_drop;
    c->pending_recv += recv;
    c->pending_drop += drop;
    c->pending_ifdrop += (u_int)(ps.ps_ifdrop - c->last.ps_ifdrop);
    c->total_recv += recv;
    c->total_drop += drop;
    c->last = ps;
}

/* Capture thread: hands a snapshot of the current interval to the loop (the
 * flows packed: a hand-over costs the flows present, not a second table) and
 * starts the next one, unless the loop still holds the previous snapshot or
 * memory ran out; then it keeps filling the current interval. */
static void export_interval(struct np_flow_capture *c)
{
    take_stats(c);
    uv_mutex_lock(&c->lock);
    bool busy = c->ready != NULL;
    uv_mutex_unlock(&c->lock);
    struct np_flow_agg *snap = NULL;
    if (busy || np_flow_agg_snapshot(c->src.agg, &snap) != 0) {
        return;
    }
    np_flow_agg_reset(c->src.agg);
    uv_mutex_lock(&c->lock);
    c->ready = snap;
    c->ready_opts = c->opts;
    c->ready_opts.live = true;
    c->ready_opts.received = c->pending_recv;
    c->ready_opts.kernel_dropped = c->pending_drop;
    c->ready_opts.if_dropped = c->pending_ifdrop;
    uv_mutex_unlock(&c->lock);
    c->pending_recv = c->pending_drop = c->pending_ifdrop = 0;
    if (c->ready_opts.kernel_dropped || c->ready_opts.if_dropped) {
        np_log(NP_LOG_WARN, "flow: capture drops pcap=%s kernel=%" PRIu64 " interface=%" PRIu64,
               c->s->name, c->ready_opts.kernel_dropped, c->ready_opts.if_dropped);
    }
    uv_async_send(&c->async);
}

/* Waits up to timeout_ms for a retired ring block (the handle is in
 * non-blocking mode, so pcap_dispatch itself never sleeps). */
static void wait_readable(const struct np_flow_capture *c, uint64_t timeout_ms)
{
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    (void)poll(&pfd, 1, (int)timeout_ms); /* EINTR or a timeout: dispatch finds nothing */
}

/* Reads what the handle holds; returns pcap_dispatch's result. */
static int read_frames(struct np_flow_capture *c)
{
    int n = dispatch(c->p, &c->src);
    if (n == PCAP_ERROR_BREAK) {
        n = 0;
    }
    return n;
}

/* At stop: frames the kernel accepted but the thread has not read yet sit in
 * a ring block the kernel retires only at CAPTURE_BLOCK_TIMEOUT_MS; wait for
 * them (bounded), so stopping does not lose the last second of traffic. */
static void drain(struct np_flow_capture *c)
{
    uint64_t deadline = np_clock_mono_ms() + CAPTURE_BLOCK_TIMEOUT_MS + CAPTURE_POLL_MAX_MS;
    for (;;) {
        take_stats(c);
        uint64_t now = np_clock_mono_ms();
        if (c->src.frames >= c->total_recv - c->total_drop || now >= deadline) {
            return;
        }
        wait_readable(c, deadline - now);
        if (read_frames(c) < 0) {
            return;
        }
    }
}

static void capture_thread(void *arg)
{
    struct np_flow_capture *c = arg;
    struct np_complain fail = {0};
    while (!atomic_load(&c->stop)) {
        uint64_t now = np_clock_mono_ms();
        uint64_t wait_ms = c->next_export_ms > now ? c->next_export_ms - now : 0;
        wait_readable(c, wait_ms < CAPTURE_POLL_MAX_MS ? wait_ms : CAPTURE_POLL_MAX_MS);
        if (read_frames(c) < 0) {
            np_complain(&fail, NP_LOG_ERR, "flow: capture failed pcap=%s iface=%s err=%s",
                        c->s->name, c->s->interface, pcap_geterr(c->p));
            return; /* interface gone: the loop's supervisor restarts the capture */
        }
        now = np_clock_mono_ms();
        if (now >= c->next_export_ms) {
            export_interval(c);
            c->next_export_ms += (uint64_t)c->s->export_interval_ms;
            if (c->next_export_ms <= now) { /* the thread was held up: no burst of catch-ups */
                c->next_export_ms = now + (uint64_t)c->s->export_interval_ms;
            }
        }
    }
    drain(c);
}

/* Loop thread: one finished interval arrives. */
static void on_async(uv_async_t *handle)
{
    struct np_flow_capture *c = (struct np_flow_capture *)handle;
    uv_mutex_lock(&c->lock);
    struct np_flow_agg *agg = c->ready;
    struct np_flow_report_opts opts = c->ready_opts;
    c->ready = NULL;
    uv_mutex_unlock(&c->lock);
    if (!agg) {
        return;
    }
    c->cb(c->s, agg, &opts, c->arg);
    np_flow_agg_free(agg);
}

static int activate_error(int rc)
{
    switch (rc) {
    case PCAP_ERROR_PERM_DENIED:
    case PCAP_ERROR_PROMISC_PERM_DENIED:
        return -EPERM;
    case PCAP_ERROR_NO_SUCH_DEVICE:
        return -ENODEV;
    case PCAP_ERROR_IFACE_NOT_UP:
        return -ENETDOWN;
    default:
        return NP_EPROTO;
    }
}

static int open_live(const struct np_flow_settings *s, pcap_t **out, struct np_err *err)
{
    char errbuf[PCAP_ERRBUF_SIZE] = "";
    if (s->interface[0] == '\0') {
        return np_err_set(err, NP_ECONFIG, "flow: pcap=%s has no interface", s->name);
    }
    pcap_t *p = pcap_create(s->interface, errbuf);
    if (!p) {
        return np_err_set(err, NP_EPROTO, "flow: pcap_create iface=%s: %s", s->interface, errbuf);
    }
    /* Immediate mode off: TPACKET_V3 hands over whole blocks (cheap), at the
     * latest CAPTURE_BLOCK_TIMEOUT_MS after their first frame. */
    pcap_set_snaplen(p, (int)s->snaplen);
    pcap_set_promisc(p, s->promiscuous ? 1 : 0);
    pcap_set_timeout(p, CAPTURE_BLOCK_TIMEOUT_MS);
    pcap_set_immediate_mode(p, 0);
    pcap_set_buffer_size(p, (int)(s->buffer_bytes > INT32_MAX ? INT32_MAX : s->buffer_bytes));
    int rc = pcap_activate(p);
    if (rc < 0) {
        int code = activate_error(rc);
        np_err_set(err, code, "flow: cannot capture iface=%s: %s", s->interface,
                   rc == PCAP_ERROR ? pcap_geterr(p) : pcap_statustostr(rc));
        pcap_close(p);
        return code;
    }
    if (rc > 0) {
        np_log(NP_LOG_WARN, "flow: capture warning iface=%s: %s", s->interface,
               pcap_statustostr(rc));
    }
    rc = set_filter(p, s->filter, err);
    if (rc != 0) {
        pcap_close(p);
        return rc;
    }
    /* Non-blocking, and the thread polls the fd with its own timeout: the
     * kernel never wakes a reader for an empty block, so a blocking read on a
     * quiet interface would hold exports back until the next packet. */
    if (pcap_setnonblock(p, 1, errbuf) != 0 || pcap_get_selectable_fd(p) < 0) {
        np_err_set(err, NP_EPROTO, "flow: cannot poll iface=%s: %s", s->interface,
                   errbuf[0] ? errbuf : "no selectable descriptor");
        pcap_close(p);
        return NP_EPROTO;
    }
    *out = p;
    return 0;
}

int np_flow_capture_start(uv_loop_t *loop, const struct np_flow_settings *s, np_flow_export_cb cb,
                          void *arg, struct np_flow_capture **out, struct np_err *err)
{
    *out = NULL;
    struct np_flow_capture *c = calloc(1, sizeof *c);
    if (!c) {
        return np_err_set(err, -ENOMEM, "flow: out of memory");
    }
    c->s = s;
    c->cb = cb;
    c->arg = arg;
    atomic_init(&c->stop, false);
    int rc = make_agg(s, c->prefixes, NP_FLOW_MAX_PREFIXES, &c->src.agg, err);
    if (rc != 0) {
        goto out_free;
    }
    rc = open_live(s, &c->p, err);
    if (rc != 0) {
        goto out_free_aggs;
    }
    c->fd = pcap_get_selectable_fd(c->p);
    c->src.dlt = pcap_datalink(c->p);
    c->src.snaplen = (uint32_t)s->snaplen;
    np_flow_settings_report_opts(s, &c->opts);
    c->opts.source = s->interface;
    c->opts.link_type = pcap_datalink_val_to_name(c->src.dlt);
    c->next_export_ms = np_clock_mono_ms() + (uint64_t)s->export_interval_ms;
    rc = uv_mutex_init(&c->lock);
    if (rc != 0) {
        np_err_set(err, rc, "flow: uv_mutex_init: %s", uv_strerror(rc));
        goto out_close_pcap;
    }
    rc = uv_async_init(loop, &c->async, on_async);
    if (rc != 0) {
        np_err_set(err, rc, "flow: uv_async_init: %s", uv_strerror(rc));
        goto out_destroy_lock;
    }
    rc = uv_thread_create(&c->thread, capture_thread, c);
    if (rc != 0) {
        np_err_set(err, rc, "flow: cannot start the capture thread: %s", uv_strerror(rc));
        np_flow_capture_stop(c); /* async is initialised: the close callback frees */
        return rc;
    }
    c->thread_started = true;
    np_log(NP_LOG_INFO, "flow: capturing pcap=%s iface=%s link=%s snaplen=%lld sample=%lld",
           s->name, s->interface, c->opts.link_type ? c->opts.link_type : "?",
           (long long)s->snaplen, (long long)s->sample);
    *out = c;
    return 0;
out_destroy_lock:
    uv_mutex_destroy(&c->lock);
out_close_pcap:
    pcap_close(c->p);
out_free_aggs:
    np_flow_agg_free(c->src.agg);
out_free:
    free(c);
    return rc;
}

static void on_closed(uv_handle_t *handle)
{
    struct np_flow_capture *c = (struct np_flow_capture *)handle;
    np_flow_agg_free(c->ready);
    np_flow_agg_free(c->src.agg);
    uv_mutex_destroy(&c->lock);
    free(c);
}

void np_flow_capture_stop(struct np_flow_capture *c)
{
    if (!c) {
        return;
    }
    if (c->thread_started) {
        atomic_store(&c->stop, true);
        pcap_breakloop(c->p);
        uv_thread_join(&c->thread);
        c->thread_started = false;
        /* An interval the loop has not seen yet, then the last partial one,
         * still go out: stopping loses nothing. */
        uv_mutex_lock(&c->lock);
        struct np_flow_agg *ready = c->ready;
        struct np_flow_report_opts ready_opts = c->ready_opts;
        c->ready = NULL;
        uv_mutex_unlock(&c->lock);
        if (ready) {
            c->cb(c->s, ready, &ready_opts, c->arg);
            np_flow_agg_free(ready);
        }
        take_stats(c);
        if (c->src.agg->stats.total.packets > 0) {
            struct np_flow_report_opts opts = c->opts;
            opts.live = true;
            opts.received = c->pending_recv;
            opts.kernel_dropped = c->pending_drop;
            opts.if_dropped = c->pending_ifdrop;
            c->cb(c->s, c->src.agg, &opts, c->arg);
        }
    }
    pcap_close(c->p);
    c->p = NULL;
    uv_close((uv_handle_t *)&c->async, on_closed);
}
