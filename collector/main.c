/* netpulse-collector: options, config, modules onto the loop, run, tear down. */
#include "alerter.h"
#include "api.h"
#include "collector_config.h"
#include "http_server.h"
#include "ingest.h"
#include "metrics.h"
#include "rrd_store.h"
#include "web.h"
#include "web_auth.h"

#include "netpulse/log.h"

#include <systemd/sd-daemon.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

struct collector {
    const char *config_path;
    const char *port_file; /* --port-file: the bound port is written there */
    bool allow_root;       /* --allow-root */
    int listen_fd;         /* > 0: the socket systemd passed (socket activation) */
    uv_loop_t loop;
    struct np_collector_config *cfg;
    struct np_metrics metrics;
    struct np_rrd_store *rrd;
    struct np_ingest *ingest;
    struct np_api *api;
    struct np_alerter *alerter; /* NULL: [alerts] enabled = no */
    struct np_http_server *server;
    struct np_web_auth *auth; /* login, sessions, the access guard */
    struct np_web *web;       /* dashboard files, graphs, report downloads */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain_timer;
    uint64_t drain_deadline_ms;
    bool stopping;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: netpulse-collector -c FILE [--check] [--foreground] [--port-file PATH]\n"
                 "                          [--allow-root]\n"
                 "  -c, --config FILE    configuration (INI)\n"
                 "      --check          validate the configuration and exit (2 on errors)\n"
                 "  -f, --foreground     log to stderr instead of syslog\n"
                 "      --port-file PATH once listening, write the bound port there (with\n"
                 "                       listen = HOST:0, the port the system picked)\n"
                 "      --allow-root     run even as root (refused otherwise; also\n"
                 "                       allow_root = yes or NETPULSE_ALLOW_ROOT=1)\n"
                 "  -h, --help           this help and every configuration option\n\n");
}

/* Waits (a few seconds at most) for connections and API jobs to end, then stops. */
static void on_drain_tick(uv_timer_t *t)
{
    struct collector *c = t->data;
    if ((np_http_server_connections(c->server) > 0 || np_api_busy(c->api) > 0 ||
         np_alerter_busy(c->alerter) > 0 || np_web_busy(c->web) > 0 ||
         np_web_auth_busy(c->auth) > 0) &&
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
    np_alerter_stop(c->alerter);
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

/* PATH.tmp then rename: a reader never sees a partial number. Before the
 * loop runs (blocking is fine). */
static int write_port_file(const char *path, int port, struct np_err *err)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        return np_err_set(err, -ENAMETOOLONG, "collector: port file %s: name too long", path);
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        return np_err_set(err, -errno, "collector: port file %s: %s", path, strerror(errno));
    }
    bool ok = fprintf(f, "%d\n", port) > 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno ? errno : EIO;
        unlink(tmp);
        return np_err_set(err, -e, "collector: port file %s: %s", path, strerror(e));
    }
    return 0;
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
                                .max_body_bytes = s->max_body_bytes,
                                .heartbeat_timeout_ms = s->heartbeat_timeout_ms};
    struct np_http_server_opts ho = {.listen = s->listen,
                                     .plain_http = s->plain_http,
                                     .tls_cert = s->tls_cert,
                                     .tls_key = s->tls_key,
                                     .listen_fd = c->listen_fd,
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
    const struct np_collector_dashboard *d = c->cfg->dashboard;
    struct np_web_auth_opts ao = {.state_db_path = db_path,
                                  .public_read = d->public_read,
                                  .tls = !s->plain_http,
                                  .session_idle_ms = d->session_idle_ms,
                                  .session_max_ms = d->session_max_ms,
                                  .metrics_public = d->metrics_public,
                                  .metrics_token = d->metrics_token};
    struct np_web_opts wo = {.web_root = s->web_root,
                             .state_db_path = db_path,
                             .rrd = c->rrd,
                             .targets = c->cfg->targets};
    if ((rc = np_web_auth_new(&c->loop, &ao, &c->auth, &err)) != 0 ||
        (rc = np_web_new(&c->loop, &wo, &c->web, &err)) != 0 ||
        (rc = np_web_auth_register(c->auth, c->server)) != 0) {
        goto out;
    }
    np_api_set_targets(c->api, c->cfg->targets); /* [targets] for the report endpoints */
    /* The web's catch-all "/" route goes last. */
    if ((rc = np_api_register(c->api, c->server)) != 0 ||
        (rc = np_web_register(c->web, c->server)) != 0 ||
        (rc = np_http_server_listen(c->server, &err)) != 0 ||
        (c->port_file &&
         (rc = write_port_file(c->port_file, np_http_server_port(c->server), &err)) != 0) ||
        (rc = np_ingest_start(c->ingest, &err)) != 0 ||
        (rc = np_alerter_new(&c->loop, c->config_path, &c->metrics, &c->alerter, &err)) != 0 ||
        (c->alerter && (rc = np_alerter_start(c->alerter, &err)) != 0)) {
        goto out;
    }
    np_ingest_set_alerter(c->ingest, c->alerter); /* events of applied batches */
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
    np_web_auth_stop(c->auth);
    uv_run(&c->loop, UV_RUN_NOWAIT);
    np_api_free(c->api);
    np_web_free(c->web);
    np_web_auth_free(c->auth);
    np_alerter_free(c->alerter);
    np_http_server_free(c->server);
    np_rrd_store_free(c->rrd);
    np_metrics_free(&c->metrics);
    return rc == 0 ? 0 : 1;
}

/* Least privilege: the collector needs no root (ports below 1024 come from
 * CAP_NET_BIND_SERVICE or socket activation), so running as root must be
 * asked for explicitly. */
static bool root_refused(const struct collector *c)
{
    const char *env = getenv("NETPULSE_ALLOW_ROOT");
    bool allowed = c->allow_root || c->cfg->collector->allow_root ||
                   (env && (strcmp(env, "1") == 0 || strcmp(env, "yes") == 0));
    if (geteuid() != 0 || allowed) {
        return false;
    }
    fprintf(stderr, "netpulse-collector: refusing to run as root: run it as an unprivileged "
                    "user (e.g. netpulse), with CAP_NET_BIND_SERVICE or systemd socket "
                    "activation for ports below 1024; --allow-root (or allow_root = yes in "
                    "[collector]) overrides\n");
    return true;
}

/* systemd socket activation (sd_listen_fds(3)): one passed stream socket
 * replaces `listen`. *fd stays 0 without LISTEN_FDS. */
static int passed_socket(int *fd, struct np_err *err)
{
    int n = sd_listen_fds(1);
    if (n < 0) {
        return np_err_set(err, n, "collector: sd_listen_fds: %s", strerror(-n));
    }
    if (n == 0) {
        return 0;
    }
    if (n != 1 || sd_is_socket(SD_LISTEN_FDS_START, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
        return np_err_set(err, NP_ECONFIG,
                          "collector: socket activation passed %d sockets; expected one "
                          "listening TCP socket",
                          n);
    }
    *fd = SD_LISTEN_FDS_START;
    np_log(NP_LOG_INFO, "collector: socket activation fd=%d (listen is not used)", *fd);
    return 0;
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
        {"port-file", required_argument, NULL, 'p'},
        {"allow-root", no_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    struct collector c = {0};
    int check = 0, foreground = 0, opt;
    /* Every time netpulse shows is UTC (pages, API, reports); librrd labels
     * graph axes in the process's time zone, so make that UTC too. */
    setenv("TZ", "UTC", 1);
    tzset();
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
        case 'p':
            c.port_file = optarg;
            break;
        case 'R':
            c.allow_root = true;
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
    if (root_refused(&c) || passed_socket(&c.listen_fd, &err) != 0) {
        if (err.msg[0]) {
            fprintf(stderr, "netpulse-collector: %s\n", err.msg);
        }
        np_collector_config_free(c.cfg);
        return 2;
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
