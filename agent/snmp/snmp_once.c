/* snmp_once: `netpulse-agent --once` (one poll of every target) and
 * `--polls N` (N polls, with rates and status events) as JSON lines.
 *
 * stdout: one object per selected interface per line, keys
 *   target, ifIndex, ifName, ifAlias, ifDescr, ifType, ifHighSpeed, speedBps,
 *   operStatus, adminStatus, counterBits, inOctets, outOctets, sysUpTime, time
 * (time: UTC ISO 8601 of the reply carrying inOctets). Absent values are null;
 * counters above 2^63-1 (which JSON integers of jansson cannot hold) are
 * written as decimal strings. With --polls also
 *   poll (1..N), inBps, outBps (null unless rateValid), rateValid,
 *   rateStatus ("first-poll", "ok", "wrapped", "device-restart", ...: the
 *   first of in/out that carries no value, else "wrapped" if either did),
 *   intervalMs (between the two inOctets readings; null on the first poll)
 * and, before an interface's line, one line per status change:
 *   {"event":"operStatus"|"adminStatus", target, key, ifIndex, from, to, poll, time}
 * (time: the poll timestamp of the reply that showed the change).
 * errout: one line per failed target per poll:
 *   snmp: poll failed target=NAME host=HOST port=N err=REASON detail="..."
 * and with --polls one summary line per round: wall time, CPU, peak RSS and
 * the present anonymous/file-backed split, the concurrency cap, the most
 * polls in progress and queued at once, and v3 engine discoveries sent. */
#include "snmp_poller.h"

#include "snmp_internal.h"

#include "netpulse/clock.h"
#include "netpulse/log.h"

#include <inttypes.h>
#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

struct once_ctx {
    FILE *out, *errout;
    size_t failed;
    bool write_error;
    uv_loop_t *loop;
    /* --polls */
    bool rates;
    unsigned polls, round;
    int64_t interval_ms;
    uint64_t first_start_ns, round_start_ns;
    double round_cpu_ms;
    size_t round_failed, round_interfaces, round_targets;
    uv_timer_t next;
    struct np_snmp_poller *p;
};

static double cpu_ms(struct rusage *ru)
{
    if (getrusage(RUSAGE_SELF, ru) != 0) {
        return 0;
    }
    return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000.0 +
           (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1000.0;
}

/* Memory of this process image in KiB from /proc/self/status: peak RSS
 * (VmHWM, as ru_maxrss on Linux carries over the peak of the parent's image
 * from before exec) and the present RSS split into anonymous (heap, stacks,
 * relocated library data) and file-backed (library code and data) pages. */
struct mem_kib {
    long peak, anon, file;
};

static void mem_kib(const struct rusage *ru, struct mem_kib *m)
{
    static const struct {
        const char *name;
        size_t off;
    } fields[] = {
        {"VmHWM:", offsetof(struct mem_kib, peak)},
        {"RssAnon:", offsetof(struct mem_kib, anon)},
        {"RssFile:", offsetof(struct mem_kib, file)},
    };
    *m = (struct mem_kib){ru->ru_maxrss, -1, -1};
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
            size_t n = strlen(fields[i].name);
            char *end = NULL;
            long v = strncmp(line, fields[i].name, n) == 0 ? strtol(line + n, &end, 10) : -1;
            if (end && end != line + n && v >= 0) {
                *(long *)(void *)((char *)m + fields[i].off) = v;
            }
        }
    }
    if (f) {
        fclose(f);
    }
}

static void put_line(struct once_ctx *c, json_t *o)
{
    /* Strings are valid UTF-8 (np_snmp_text); JSON_ENSURE_ASCII keeps the
     * line plain ASCII for any terminal. */
    char *line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!line || fprintf(c->out, "%s\n", line) < 0) {
        c->write_error = true;
    }
    free(line);
}

static json_t *u64_json(uint64_t v)
{
    if (v <= (uint64_t)INT64_MAX) {
        return json_integer((json_int_t)v);
    }
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return json_string(buf);
}

static json_t *status_json(int st)
{
    const char *n = np_snmp_status_name(st);
    return n ? json_string(n) : (st ? json_integer(st) : json_null());
}

static void on_interface(void *ctx, const struct np_snmp_if_reading *r)
{
    struct once_ctx *c = ctx;
    char when[32];
    np_clock_format_utc(r->time_wall_ms, when, sizeof when);
    json_t *o = json_object();
    if (!o) {
        c->write_error = true;
        return;
    }
    json_object_set_new(o, "target", json_string(r->target));
    json_object_set_new(o, "ifIndex", json_integer(r->if_index));
    json_object_set_new(o, "ifName", json_string(r->if_name));
    json_object_set_new(o, "ifAlias", json_string(r->if_alias));
    json_object_set_new(o, "ifDescr", json_string(r->if_descr));
    json_object_set_new(o, "ifType", r->if_type ? json_integer(r->if_type) : json_null());
    json_object_set_new(o, "ifHighSpeed",
                        r->has_high_speed ? json_integer(r->high_speed_mbps) : json_null());
    json_object_set_new(o, "speedBps", r->speed_bps ? u64_json(r->speed_bps) : json_null());
    json_object_set_new(o, "operStatus", status_json(r->oper_status));
    json_object_set_new(o, "adminStatus", status_json(r->admin_status));
    json_object_set_new(o, "counterBits",
                        r->counter_bits ? json_integer(r->counter_bits) : json_null());
    json_object_set_new(o, "inOctets", r->counter_bits ? u64_json(r->in_octets) : json_null());
    json_object_set_new(o, "outOctets", r->counter_bits ? u64_json(r->out_octets) : json_null());
    json_object_set_new(o, "sysUpTime", u64_json(r->sys_uptime_cs));
    json_object_set_new(o, "time", json_string(when));
    if (c->rates) {
        const struct np_counter_delta *bad = !np_counter_valid(r->in.status)    ? &r->in
                                             : !np_counter_valid(r->out.status) ? &r->out
                                                                                : NULL;
        const char *st =
            !r->has_previous ? "first-poll"
            : bad            ? np_counter_status_name(bad->status)
            : (r->in.status == NP_COUNTER_WRAPPED || r->out.status == NP_COUNTER_WRAPPED)
                ? "wrapped"
                : "ok";
        json_object_set_new(o, "poll", json_integer(c->round));
        json_object_set_new(o, "inBps", r->rates_valid ? json_real(r->in.rate_bps) : json_null());
        json_object_set_new(o, "outBps", r->rates_valid ? json_real(r->out.rate_bps) : json_null());
        json_object_set_new(o, "rateValid", json_boolean(r->rates_valid));
        json_object_set_new(o, "rateStatus", json_string(st));
        json_object_set_new(o, "intervalMs",
                            r->has_previous ? json_integer(r->in.interval_ms) : json_null());
    }
    put_line(c, o);
}

static void on_event(void *ctx, const struct np_snmp_if_event *e)
{
    struct once_ctx *c = ctx;
    char when[32];
    np_clock_format_utc(e->time_wall_ms, when, sizeof when);
    json_t *o = json_object();
    if (!o) {
        c->write_error = true;
        return;
    }
    json_object_set_new(o, "event", json_string(e->what));
    json_object_set_new(o, "target", json_string(e->target));
    json_object_set_new(o, "key", json_string(e->key));
    json_object_set_new(o, "ifIndex", json_integer(e->if_index));
    json_object_set_new(o, "from", status_json(e->old_status));
    json_object_set_new(o, "to", status_json(e->new_status));
    json_object_set_new(o, "poll", json_integer(c->round));
    json_object_set_new(o, "time", json_string(when));
    put_line(c, o);
}

static void on_target_done(void *ctx, const struct np_snmp_target_result *res)
{
    struct once_ctx *c = ctx;
    c->round_targets++;
    c->round_interfaces += res->interfaces;
    if (res->failure == NP_SNMP_OK) {
        return;
    }
    c->failed++;
    c->round_failed++;
    fprintf(c->errout, "snmp: poll failed target=%s host=%s port=%u err=%s detail=\"%s\"\n",
            res->target, res->host, res->port, np_snmp_failure_name(res->failure), res->detail);
}

static void round_start(struct once_ctx *c, struct np_snmp_poller *p);

static void on_next(uv_timer_t *h)
{
    struct once_ctx *c = h->data;
    round_start(c, c->p);
}

static void on_all_done(struct np_snmp_poller *p, void *ctx)
{
    struct once_ctx *c = ctx;
    if (c->rates) {
        struct rusage ru;
        double cpu = cpu_ms(&ru) - c->round_cpu_ms;
        double wall = (double)(uv_hrtime() - c->round_start_ns) / 1e6;
        struct mem_kib m;
        struct np_snmp_poller_stats st;
        mem_kib(&ru, &m);
        np_snmp_poller_take_stats(p, &st);
        fprintf(c->errout,
                "snmp: poll round=%u targets=%zu failed=%zu interfaces=%zu wall_ms=%.1f "
                "cpu_ms=%.1f rss_kib=%ld rss_anon_kib=%ld rss_file_kib=%ld max_concurrent=%zu "
                "in_flight_max=%zu queued_max=%zu discoveries=%zu\n",
                c->round, c->round_targets, c->round_failed, c->round_interfaces, wall, cpu, m.peak,
                m.anon, m.file, st.max_concurrent, st.in_flight_max, st.queued_max, st.discoveries);
        fflush(c->errout);
    }
    if (fflush(c->out) != 0) {
        c->write_error = true;
    }
    if (c->round >= c->polls) {
        uv_stop(c->loop);
        return;
    }
    /* Rounds start interval_ms apart on the monotonic clock; an overrun
     * round is followed at once. */
    uint64_t due_ns = c->first_start_ns + (uint64_t)c->round * (uint64_t)c->interval_ms * 1000000u;
    uint64_t now_ns = uv_hrtime();
    uint64_t delay_ms = due_ns > now_ns ? (due_ns - now_ns + 999999u) / 1000000u : 0;
    c->p = p;
    c->next.data = c;
    uv_timer_start(&c->next, on_next, delay_ms, 0);
}

static void round_start(struct once_ctx *c, struct np_snmp_poller *p)
{
    struct rusage ru;
    c->round++;
    c->round_start_ns = uv_hrtime();
    if (c->round == 1) {
        c->first_start_ns = c->round_start_ns;
    }
    c->round_cpu_ms = cpu_ms(&ru);
    c->round_failed = c->round_interfaces = c->round_targets = 0;
    np_snmp_poller_take_stats(p, NULL);
    np_snmp_poller_poll_all_once(p, on_all_done);
}

int np_snmp_polls(const struct np_config *cfg, unsigned polls, int64_t interval_ms, FILE *out,
                  FILE *errout)
{
    uv_loop_t loop;
    int rc = uv_loop_init(&loop);
    if (rc != 0) {
        fprintf(errout, "snmp: cannot create loop: %s\n", uv_strerror(rc));
        return 2;
    }
    struct once_ctx c = {.out = out,
                         .errout = errout,
                         .loop = &loop,
                         .rates = polls > 1,
                         .polls = polls ? polls : 1,
                         .interval_ms = interval_ms > 0 ? interval_ms : 0};
    struct np_snmp_callbacks cb = {.on_interface = on_interface,
                                   .on_event = on_event,
                                   .on_target_done = on_target_done,
                                   .quiet = true};
    struct np_err err = {0};
    int ret = 2;
    uv_timer_init(&loop, &c.next);
    struct np_snmp_poller *p = np_snmp_poller_new(&loop, cfg, &cb, &c, &err);
    if (!p) {
        fprintf(errout, "%s\n", err.msg);
        goto out_timer;
    }
    if (np_snmp_poller_count(p) == 0) {
        fprintf(errout, "snmp: no [snmp NAME] section in the configuration\n");
        goto out_poller;
    }
    round_start(&c, p);
    uv_run(&loop, UV_RUN_DEFAULT);
    fflush(out);
    ret = c.failed || c.write_error || ferror(out) ? 1 : 0;
out_poller:
    np_snmp_poller_free(p);
out_timer:
    uv_close((uv_handle_t *)&c.next, NULL);
    uv_run(&loop, UV_RUN_DEFAULT); /* close callbacks free the poller */
    uv_loop_close(&loop);
    return ret;
}

int np_snmp_once(const struct np_config *cfg, FILE *out, FILE *errout)
{
    return np_snmp_polls(cfg, 1, 0, out, errout);
}
