/* collector_config: collector.conf, shared by netpulse-collector and the
 * netpulse CLI. Sections [collector], [targets], [smtp], [alerts] and
 * [webhook NAME] (alerts: alert_rules.h, alerter.h); key names are part of
 * the contract (DESIGN.md). Every option, its default and its help live in
 * the tables of collector_config.c, which also drive --help
 * (np_collector_config_describe).
 *
 * Beyond the per-option checks of netpulse/config.h, loading checks:
 * data_dir and journal_dir absolute; listen is HOST:PORT or [V6]:PORT with a
 * port 1..65535; rrdcached empty, unix:/ABSOLUTE, /ABSOLUTE or HOST[:PORT];
 * tls_cert and tls_key set unless plain_http = yes. The files themselves are
 * not opened here (the CLI never needs them).
 *
 * Threads: load in any thread; a loaded config is immutable and may be read
 * by any number of threads until np_collector_config_free(). */
#ifndef NP_COLLECTOR_COLLECTOR_CONFIG_H
#define NP_COLLECTOR_COLLECTOR_CONFIG_H

#include "netpulse/config.h"
#include "netpulse/err.h"
#include "netpulse/log.h"
#include "state_db.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define NP_COLLECTOR_DEFAULT_CONFIG "/etc/netpulse/collector.conf"

/* [collector] */
struct np_collector_settings {
    char *listen;            /* HOST:PORT, default 0.0.0.0:8443 */
    char *tls_cert;          /* PEM certificate (chain) */
    char *tls_key;           /* PEM private key */
    bool plain_http;         /* labs and tests only: serve without TLS */
    char *data_dir;          /* state.db, rrd/, journal/ */
    char *rrdcached;         /* "" : librrd directly */
    char *journal_dir;       /* as written in the file ("" : DATA_DIR/journal); see below */
    uint64_t max_body_bytes; /* largest request body accepted (ingest) */
    int log_level;           /* index into error, warning, notice, info, debug; see below */
    int64_t heartbeat_timeout_ms; /* silence that opens a suspected outage */
    char *web_root;               /* the dashboard's static files (web.h) */
    bool allow_root;              /* run even as root (main.c refuses otherwise) */
};

/* [dashboard]: who may see the dashboard (web_auth.h). */
struct np_collector_dashboard {
    bool public_read;         /* public: reading without login */
    int64_t session_idle_ms;  /* a session unused this long ends */
    int64_t session_max_ms;   /* a session ends this long after login */
    bool metrics_public;      /* /metrics without a token */
    char *metrics_token;      /* secret bearer for /metrics ("" : none) */
};

/* [targets]: the district's goals. Ratios: 0.995 = 99.5 %, 4.0 = +400 %.
 * uptime_<type>: 0 (not set, or a struct made without a config) means
 * "uptime"; read them through np_collector_uptime_target(). */
struct np_collector_targets {
    double uptime;
    double uptime_elementary;
    double uptime_middle;
    double uptime_high;
    double uptime_other;
    int64_t growth_years;
    double growth_elementary;
    double growth_middle;
    double growth_high;
};

/* [smtp]: alert e-mail. */
struct np_collector_smtp {
    char *url; /* smtp://host:587 (STARTTLS) or smtps://host:465; "" : no e-mail */
    char *from;
    struct np_strlist to;
    char *user;     /* "" : no AUTH */
    char *password; /* secret: password = or password_file = */
    int starttls;   /* smtp://: 0 required, 1 optional, 2 off (labs); see smtp_opts */
    char *ca_file;  /* PEM CA bundle for the server's certificate; "" : system store */
    int64_t timeout_ms; /* whole SMTP transaction */
};

/* [alerts]: rules, noise control, routing (alert_rules.h, alerter.h). */
struct np_collector_alerts {
    bool enabled;
    int64_t site_down_after_ms, hold_down_ms, settle_wait_ms;
    int64_t digest_window_ms, digest_min;
    int64_t flap_window_ms, flap_max, flap_stable_ms;
    int64_t reminder_ms;
    bool uplink, interface;
    int64_t uplink_hold_ms, interface_hold_ms;
    double utilisation;        /* 0: off */
    int64_t utilisation_for_ms;
    double utilisation_clear;  /* hysteresis: clears below this ... */
    int64_t utilisation_clear_for_ms; /* ... for this long */
    bool sla;
    double sla_budget_left;    /* at risk below this share of the month's budget left */
    int64_t sla_interval_ms;   /* how often the month's uptime is computed */
    double spool;              /* fill ratio; 0: off */
    bool spool_dropped;
    double disk_free_min;      /* 0: off */
    char *dashboard_url;       /* "" : https://LISTEN (or http:// with plain_http) */
    bool to_site_contacts;
    int site_contacts_min;     /* severity index: info, warning, critical */
    int district_min;
    struct np_strlist to_elementary, to_middle, to_high, to_other;
    int64_t retry_initial_ms, retry_max_ms, give_up_after_ms;
    int64_t poll_ms;
};

/* [webhook NAME]: one JSON webhook per section. */
struct np_collector_webhook {
    char *name;
    char *url;
    int format;       /* 0 generic, 1 slack, 2 teams */
    int min_severity; /* 0 info, 1 warning, 2 critical */
    int64_t timeout_ms;
    char *ca_file;
};

/* A loaded collector.conf with the derived paths. Everything is owned by it. */
struct np_collector_config {
    struct np_config *cfg; /* the parsed file (np_config_line() for messages) */
    const struct np_collector_settings *collector; /* borrowed from cfg */
    const struct np_collector_targets *targets;
    const struct np_collector_smtp *smtp;
    const struct np_collector_alerts *alerts;
    const struct np_collector_dashboard *dashboard;
    size_t n_webhooks; /* webhooks[0..n): borrowed from cfg, file order */
    const struct np_collector_webhook **webhooks;
    char *journal_dir;           /* journal_dir, or DATA_DIR/journal when empty */
    char *state_db_path;         /* DATA_DIR/state.db */
    enum np_log_level log_level; /* log_level as np_log_init() takes it */
};

/* Loads and checks path (borrowed). On success *out is freed with
 * np_collector_config_free(). Errors (netpulse/config.h): NP_ECONFIG with
 * "FILE:LINE: message", -errno when the file cannot be read, NP_ETOOBIG,
 * -ENOMEM. */
int np_collector_config_load(const char *path, struct np_collector_config **out,
                             struct np_err *err);

/* The same on text (borrowed); name prefixes messages. For tests and --check. */
int np_collector_config_load_string(const char *text, const char *name,
                                    struct np_collector_config **out, struct np_err *err);

/* Frees everything; accepts NULL. */
void np_collector_config_free(struct np_collector_config *c);

/* The uptime target of a site of school type type: the type's uptime_<type>
 * when set, else uptime; 0.995 (NP_UPTIME_DEFAULT_TARGET) when that is 0
 * too or t is NULL. Pure, any thread. */
double np_collector_uptime_target(const struct np_collector_targets *t,
                                  enum np_school_type type);

/* Prints every section's options with defaults and help (for --help). */
void np_collector_config_describe(FILE *out);

#endif
