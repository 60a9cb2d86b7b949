#include "flow_live.h"

#include "flow_capture.h"
#include "flow_config.h"
#include "flow_report.h"

#include "netpulse/log.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <uv.h>

struct live;

struct live_section {
    struct live *run;
    struct np_flow_capture *cap; /* NULL until started, and after stopping */
    uint64_t seq;                /* intervals written */
};

struct live {
    uv_loop_t loop;
    uv_timer_t tick;
    uv_timer_t deadline;
    uv_signal_t sigint;
    uv_signal_t sigterm;
    FILE *out;
    struct live_section *sections;
    size_t n_sections;
    bool stopping;
    int write_rc; /* first failure writing a summary */
    uint64_t start_ns;
    uint64_t last_tick_ns;
    struct np_flow_live_stats st;
};

/* Loop thread, from the capture's uv_async (or from np_flow_capture_stop). */
static void on_export(const struct np_flow_settings *s, const struct np_flow_agg *agg,
                      const struct np_flow_report_opts *opts, void *arg)
{
    struct live_section *sec = arg;
    struct live *run = sec->run;
    json_t *report = np_flow_report_json(agg, opts);
    int bad = report == NULL;
    if (report) {
        bad |= json_object_set_new(report, "pcap", json_string(s->name));
        bad |= json_object_set_new(report, "interval", json_integer((json_int_t)sec->seq));
    }
    sec->seq++;
    if (!bad && json_dumpf(report, run->out, JSON_COMPACT) == 0 && fputc('\n', run->out) != EOF &&
        fflush(run->out) == 0) {
        run->st.exports++;
    } else if (run->write_rc == 0) {
        run->write_rc = bad ? -ENOMEM : -EIO;
        np_log(NP_LOG_ERR, "flow: cannot write a summary pcap=%s err=%s", s->name,
               np_strerror(run->write_rc));
    }
    json_decref(report);
}

static void on_tick(uv_timer_t *t)
{
    struct live *run = t->data;
    uint64_t now = uv_hrtime();
    uint64_t gap_ms = (now - run->last_tick_ns) / 1000000u;
    if (gap_ms > run->st.max_gap_ms) {
        run->st.max_gap_ms = gap_ms;
    }
    run->last_tick_ns = now;
    run->st.timer_ticks++;
}

/* Stops every capture (each writes what it still holds), then closes the
 * loop's own handles; uv_run returns once the close callbacks have run.
 * Idempotent. */
static void live_stop(struct live *run)
{
    if (run->stopping) {
        return;
    }
    run->stopping = true;
    run->st.duration_ms = (uv_hrtime() - run->start_ns) / 1000000u;
    uv_timer_stop(&run->tick);
    for (size_t i = 0; i < run->n_sections; i++) {
        np_flow_capture_stop(run->sections[i].cap);
        run->sections[i].cap = NULL;
    }
    uv_close((uv_handle_t *)&run->tick, NULL);
    uv_close((uv_handle_t *)&run->deadline, NULL);
    uv_close((uv_handle_t *)&run->sigint, NULL);
    uv_close((uv_handle_t *)&run->sigterm, NULL);
}

static void on_deadline(uv_timer_t *t)
{
    live_stop(t->data);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    struct live *run = sig->data;
    np_log(NP_LOG_INFO, "flow: capture interrupted signal=%d", signum);
    run->st.interrupted = 1;
    live_stop(run);
}

int np_flow_live_run(const struct np_config *cfg, int64_t duration_ms, FILE *out,
                     struct np_flow_live_stats *stats, struct np_err *err)
{
    size_t n = cfg ? np_config_count(cfg, "pcap") : 0;
    if (n == 0) {
        return np_err_set(err, NP_ECONFIG, "flow: live capture needs a [pcap NAME] section");
    }
    if (duration_ms <= 0) {
        return np_err_set(err, NP_ECONFIG, "flow: capture duration must be positive");
    }
    struct live *run = calloc(1, sizeof *run);
    if (!run) {
        return np_err_set(err, -ENOMEM, "flow: out of memory");
    }
    run->sections = calloc(n, sizeof *run->sections);
    int rc = run->sections ? uv_loop_init(&run->loop) : -ENOMEM;
    if (rc != 0) {
        np_err_set(err, rc, "flow: cannot create the loop: %s", np_strerror(rc));
        goto out_free;
    }
    run->out = out;
    run->n_sections = n;
    /* Handle inits on an initialised loop only fail on bad arguments. */
    uv_timer_init(&run->loop, &run->tick);
    uv_timer_init(&run->loop, &run->deadline);
    uv_signal_init(&run->loop, &run->sigint);
    uv_signal_init(&run->loop, &run->sigterm);
    run->tick.data = run->deadline.data = run->sigint.data = run->sigterm.data = run;

    for (size_t i = 0; i < n; i++) {
        const struct np_flow_settings *s = np_config_instance(cfg, "pcap", i);
        run->sections[i].run = run;
        rc = np_flow_capture_start(&run->loop, s, on_export, &run->sections[i],
                                   &run->sections[i].cap, err);
        if (rc != 0) {
            goto out_stop;
        }
    }
    run->start_ns = run->last_tick_ns = uv_hrtime();
    uv_timer_start(&run->tick, on_tick, NP_FLOW_LIVE_TICK_MS, NP_FLOW_LIVE_TICK_MS);
    uv_timer_start(&run->deadline, on_deadline, (uint64_t)duration_ms, 0);
    uv_signal_start(&run->sigint, on_signal, SIGINT);
    uv_signal_start(&run->sigterm, on_signal, SIGTERM);
    uv_run(&run->loop, UV_RUN_DEFAULT);
    np_log(NP_LOG_INFO,
           "flow: capture done exports=%" PRIu64 " timer_ticks=%" PRIu64
           " max_timer_gap_ms=%" PRIu64 " duration_ms=%" PRIu64,
           run->st.exports, run->st.timer_ticks, run->st.max_gap_ms, run->st.duration_ms);
    rc = run->write_rc;
    if (rc != 0) {
        np_err_set(err, rc, "flow: cannot write the summary: %s", np_strerror(rc));
    }
out_stop:
    live_stop(run); /* no-op after a full run */
    uv_run(&run->loop, UV_RUN_DEFAULT);
    uv_loop_close(&run->loop);
    if (stats) {
        *stats = run->st;
    }
out_free:
    free(run->sections);
    free(run);
    return rc;
}
