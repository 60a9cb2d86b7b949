/* probe_run: test driver of agent/probe. Loads an agent config, runs its
 * probes on a libuv loop and prints one JSON object per line on stdout
 * (flushed at once, so a test can react while it runs):
 *   {"kind":"probe","name":..,"socket":"ping"|"raw"|""}   once per probe at start
 *   {"kind":"result","name":..,"type":..,"target":..,"time_ms":..,"interval_ms":..,
 *    "ok":..,"rtt_us":..,"sent":..,"received":..,"error":..}
 *   {"kind":"event","type":"PROBE_UP"|"PROBE_DOWN"|"UPLINK_UP"|"UPLINK_DOWN",
 *    "time_ms":..,"since_ms":..,"subject":..,"detail":..,"uplink":..}
 * and stops after --rounds N results of every probe, after --for DURATION,
 * or on SIGTERM/SIGINT; then frees the set and runs the loop dry (so leak
 * checkers see a clean teardown). Exit 0, 2 on usage or config errors, 1
 * when the probes cannot start.
 *
 *   probe_run -c FILE [--rounds N] [--for DURATION]  */
#include "agent_config.h"
#include "probe/probe.h"

#include "netpulse/log.h"
#include "netpulse/units.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct run {
    uv_loop_t *loop;
    struct np_probe_set *set;
    uv_signal_t sigterm, sigint;
    uv_timer_t stop_timer;
    long rounds;   /* 0: unlimited */
    long *results; /* per probe */
    bool stopping;
};

static const char *const type_names[] = {"?", "icmp", "tcp", "http", "dns"};
static const char *const uplink_names[] = {"UNKNOWN", "UP", "DOWN"};

static void put(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        free(s);
    }
}

static void stop(struct run *r)
{
    if (r->stopping) {
        return;
    }
    r->stopping = true;
    np_probe_set_free(r->set);
    r->set = NULL;
    uv_close((uv_handle_t *)&r->sigterm, NULL);
    uv_close((uv_handle_t *)&r->sigint, NULL);
    uv_close((uv_handle_t *)&r->stop_timer, NULL);
}

static void on_stop_timer(uv_timer_t *t)
{
    stop(t->data);
}

static void on_result(const struct np_probe_result *res, void *ctx)
{
    struct run *r = ctx;
    json_t *o = json_object();
    json_object_set_new(o, "kind", json_string("result"));
    json_object_set_new(o, "name", json_string(res->name));
    json_object_set_new(o, "type", json_string(type_names[res->type <= 4 ? res->type : 0]));
    json_object_set_new(o, "target", json_string(res->target));
    json_object_set_new(o, "time_ms", json_integer(res->time_ms));
    json_object_set_new(o, "interval_ms", json_integer(res->interval_ms));
    json_object_set_new(o, "ok", json_boolean(res->ok));
    json_object_set_new(o, "rtt_us", json_integer((json_int_t)res->rtt_us));
    json_object_set_new(o, "sent", json_integer(res->sent));
    json_object_set_new(o, "received", json_integer(res->received));
    json_object_set_new(o, "error", json_string(res->error));
    put(o);
    if (r->rounds <= 0) {
        return;
    }
    size_t n = np_probe_set_count(r->set);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(np_probe_name(r->set, i), res->name) == 0) {
            r->results[i]++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (r->results[i] < r->rounds) {
            return;
        }
    }
    /* Not from inside the callback: the set is still dispatching. */
    uv_timer_start(&r->stop_timer, on_stop_timer, 0, 0);
}

static void on_event(const struct np_probe_event *e, void *ctx)
{
    struct run *r = ctx;
    const char *t = e->type == NP_PROBE_EV_UPLINK_UP     ? "UPLINK_UP"
                    : e->type == NP_PROBE_EV_UPLINK_DOWN ? "UPLINK_DOWN"
                    : e->type == NP_PROBE_EV_PROBE_UP    ? "PROBE_UP"
                                                         : "PROBE_DOWN";
    json_t *o = json_object();
    json_object_set_new(o, "kind", json_string("event"));
    json_object_set_new(o, "type", json_string(t));
    json_object_set_new(o, "time_ms", json_integer(e->time_ms));
    json_object_set_new(o, "since_ms", json_integer(e->since_ms));
    json_object_set_new(o, "subject", json_string(e->subject));
    json_object_set_new(o, "detail", json_string(e->detail));
    json_object_set_new(o, "uplink",
                        json_string(uplink_names[np_probe_uplink_state(r->set, NULL)]));
    put(o);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    stop(s->data);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"rounds", required_argument, NULL, 'r'},
        {"for", required_argument, NULL, 'f'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    struct run r;
    memset(&r, 0, sizeof r);
    int64_t for_ms = 0;
    int opt;
    char *end = NULL;
    while ((opt = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'r':
            errno = 0;
            r.rounds = strtol(optarg, &end, 10);
            if (errno || *end || r.rounds < 1) {
                fprintf(stderr, "probe_run: --rounds wants a positive number\n");
                return 2;
            }
            break;
        case 'f':
            if (np_units_duration_ms(optarg, &for_ms) != 0 || for_ms <= 0) {
                fprintf(stderr, "probe_run: --for wants a duration\n");
                return 2;
            }
            break;
        default:
            fprintf(stderr, "usage: probe_run -c FILE [--rounds N] [--for DURATION]\n");
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: probe_run -c FILE [--rounds N] [--for DURATION]\n");
        return 2;
    }
    np_log_init("probe_run", NP_LOG_STDERR, NP_LOG_INFO);
    struct np_config *cfg = NULL;
    struct np_err err = {0};
    if (np_agent_config_load(path, &cfg, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    r.loop = &loop;
    struct np_probe_callbacks cbs = {on_result, on_event};
    int rc = np_probe_set_new(&loop, cfg, &cbs, &r, &r.set, &err);
    if (rc != 0) {
        fprintf(stderr, "probe_run: %s\n", err.msg);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        np_config_free(cfg);
        return 1;
    }
    size_t n = np_probe_set_count(r.set);
    r.results = calloc(n ? n : 1, sizeof *r.results);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "kind", json_string("probe"));
        json_object_set_new(o, "name", json_string(np_probe_name(r.set, i)));
        json_object_set_new(o, "socket", json_string(np_probe_socket_kind(r.set, i)));
        put(o);
    }
    uv_signal_init(&loop, &r.sigterm);
    uv_signal_init(&loop, &r.sigint);
    uv_timer_init(&loop, &r.stop_timer);
    r.sigterm.data = r.sigint.data = r.stop_timer.data = &r;
    uv_signal_start(&r.sigterm, on_signal, SIGTERM);
    uv_signal_start(&r.sigint, on_signal, SIGINT);
    if (for_ms > 0) {
        uv_timer_start(&r.stop_timer, on_stop_timer, (uint64_t)for_ms, 0);
    }
    rc = np_probe_set_start(r.set);
    if (rc != 0) {
        fprintf(stderr, "probe_run: start: %s\n", uv_strerror(rc));
        stop(&r);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&loop) == 0 ? 0 : 1;
    if (rc != 0) {
        fprintf(stderr, "probe_run: handles left open at exit\n");
    }
    free(r.results);
    np_config_free(cfg);
    return rc;
}
