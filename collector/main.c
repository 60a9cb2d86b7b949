/* netpulse-collector: options, config, modules onto the loop, run, tear down. */
#include "api.h"
#include "collector_config.h"
#include "http_server.h"
#include "ingest.h"
#include "metrics.h"
#include "rrd_store.h"

#include "netpulse/log.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

struct collector {
    const char *config_path;
    uv_loop_t loop;
    struct np_collector_config *cfg;
    struct np_metrics metrics;
    struct np_rrd_store *rrd;
    struct np_ingest *ingest;
    struct np_api *api;
    struct np_http_server *server;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain_timer;
    uint64_t drain_deadline_ms;
    bool stopping;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: netpulse-collector -c FILE [--check] [--foreground]\n"
                 "  -c, --config FILE    configuration (INI)\n"
                 "      --check          validate the configuration and exit (2 on errors)\n"
                 "  -f, --foreground     log to stderr instead of syslog\n"
                 "  -h, --help           this help and every configuration option\n\n");
}

/* Waits (a few seconds at most) for connections and API jobs to end, then stops. */
static void on_drain_tick(uv_timer_t *t)
{
    struct collector *c = t->data;
    if ((np_http_server_connections(c->server) > 0 || np_api_busy(c->api) > 0) &&
        uv_now(&c->loop) < c->drain_deadline_ms) {
        return;
    }
    uv_close((uv_handle_t *)&c->drain_timer, NULL);
    uv_close((uv_handle_t *)&c->sig_term, NULL);
    uv_close((uv_handle_t *)&c->sig_int, NULL);
    uv_close((uv_handle_t *)&c->sig_hup, NULL);
    uv_stop(&c->loop);
}

static void on_ingest_drained(void *arg)
{
    struct collector *c = arg;
    np_log(NP_LOG_INFO, "collector: journal flushed, stopping");
    c->drain_deadline_ms = uv_now(&c->loop) + 3000;
    uv_timer_start(&c->drain_timer, on_drain_tick, 0, 50);
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
    struct collector *c = h->data;
    if (c->stopping) {
        return;
    }
    c->stopping = true;
    np_log(NP_LOG_NOTICE, "collector: signal=%d, stopping", signum);
    np_http_server_stop(c->server);
    np_ingest_shutdown(c->ingest, on_ingest_drained, c);
}

/* SIGHUP: a new configuration only if it validates; TLS keys for new connections. */
static void on_hup(uv_signal_t *h, int signum)
{
    (void)signum;
    struct collector *c = h->data;
    struct np_collector_config *cfg = NULL;
    struct np_err err = {0};
    if (np_collector_config_load(c->config_path, &cfg, &err) != 0) {
        np_log(NP_LOG_ERR, "collector: reload refused, keeping the old config: %s", err.msg);
        return;
    }
    const struct np_collector_settings *s = cfg->collector;
    if (np_http_server_reload_tls(c->server, s->tls_cert, s->tls_key, &err) != 0) {
        np_log(NP_LOG_ERR, "collector: reload refused, keeping the old config: %s", err.msg);
        np_collector_config_free(cfg);
        return;
    }
    np_log_set_level(cfg->log_level);
    np_collector_config_free(c->cfg);
    c->cfg = cfg;
    np_log(NP_LOG_NOTICE, "collector: configuration reloaded (listen, data_dir, journal_dir and "
                          "rrdcached take effect at restart)");
}

static int run(struct collector *c)
{
    const struct np_collector_settings *s = c->cfg->collector;
    const char *db_path = c->cfg->state_db_path;
    struct np_err err = {0};
    int rc;
    np_metrics_init(&c->metrics);
    struct np_rrd_store_options ro = {.data_dir = s->data_dir, .rrdcached = s->rrdcached};
    struct np_ingest_opts io = {.journal_dir = c->cfg->journal_dir,
                                .state_db_path = db_path,
                                .metrics = &c->metrics,
                                .max_body_bytes = s->max_body_bytes};
    struct np_http_server_opts ho = {.listen = s->listen,
                                     .plain_http = s->plain_http,
                                     .tls_cert = s->tls_cert,
                                     .tls_key = s->tls_key,
                                     .max_body_bytes = s->max_body_bytes};
    if ((rc = np_rrd_store_new(&ro, &c->rrd, &err)) != 0) {
        goto out;
    }
    io.rrd = c->rrd;
    if ((rc = np_ingest_open(&c->loop, &io, &c->ingest, &err)) != 0 ||
        (rc = np_api_new(&c->loop, db_path, &c->metrics, c->rrd, c->ingest, &c->api, &err)) ||
        (rc = np_http_server_new(&c->loop, &ho, &c->server, &err)) != 0) {
        goto out;
    }
    if ((rc = np_api_register(c->api, c->server)) != 0 ||
        (rc = np_http_server_listen(c->server, &err)) != 0 ||
        (rc = np_ingest_start(c->ingest, &err)) != 0) {
        goto out;
    }
    uv_signal_t *sigs[] = {&c->sig_term, &c->sig_int, &c->sig_hup};
    int signums[] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(&c->loop, sigs[i]);
        sigs[i]->data = c;
        uv_signal_start(sigs[i], i == 2 ? on_hup : on_stop_signal, signums[i]);
    }
    uv_timer_init(&c->loop, &c->drain_timer);
    c->drain_timer.data = c;
    np_log(NP_LOG_NOTICE, "collector: started port=%d", np_http_server_port(c->server));
    uv_run(&c->loop, UV_RUN_DEFAULT);
out:
    if (rc != 0) {
        np_log(NP_LOG_ERR, "collector: cannot start: %s", err.msg[0] ? err.msg : np_strerror(rc));
    }
    np_ingest_free(c->ingest); /* journal: last sync and ack */
    uv_run(&c->loop, UV_RUN_NOWAIT);
    np_api_free(c->api);
    np_http_server_free(c->server);
    np_rrd_store_free(c->rrd);
    np_metrics_free(&c->metrics);
    return rc == 0 ? 0 : 1;
}

static void close_leftover(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, 'k'},
        {"foreground", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct collector c = {0};
    int check = 0, foreground = 0, opt;
    while ((opt = getopt_long(argc, argv, "c:fh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            c.config_path = optarg;
            break;
        case 'k':
            check = 1;
            break;
        case 'f':
            foreground = 1;
            break;
        case 'h':
            usage(stdout);
            np_collector_config_describe(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!c.config_path || optind != argc) {
        usage(stderr);
        return 2;
    }
    np_log_init("netpulse-collector", foreground || check ? NP_LOG_STDERR : NP_LOG_SYSLOG,
                NP_LOG_INFO);
    struct np_err err = {0};
    if (np_collector_config_load(c.config_path, &c.cfg, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    np_log_set_level(c.cfg->log_level);
    if (check) {
        printf("%s: ok\n", c.config_path);
        np_collector_config_free(c.cfg);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    int rc = uv_loop_init(&c.loop);
    if (rc == 0) {
        rc = run(&c);
        uv_walk(&c.loop, close_leftover, NULL);
        uv_run(&c.loop, UV_RUN_DEFAULT);
        uv_loop_close(&c.loop);
    } else {
        fprintf(stderr, "netpulse-collector: uv_loop_init: %s\n", uv_strerror(rc));
        rc = 1;
    }
    np_collector_config_free(c.cfg);
    np_log_flush();
    return rc;
}
