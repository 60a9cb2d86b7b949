#include "collector_config.h"

#include "alert_mail.h"
#include "uptime.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#ifndef NP_DEFAULT_WEB_ROOT
#define NP_DEFAULT_WEB_ROOT "/usr/local/share/netpulse/web"
#endif
#define C(f) offsetof(struct np_collector_settings, f)
#define T(f) offsetof(struct np_collector_targets, f)
#define M(f) offsetof(struct np_collector_smtp, f)
#define A(f) offsetof(struct np_collector_alerts, f)
#define W(f) offsetof(struct np_collector_webhook, f)

/* Index + NP_LOG_ERR is the np_log_level (syslog priority). */
static const char *const log_levels[] = {"error", "warning", "notice", "info", "debug", NULL};
static const char *const starttls_modes[] = {"required", "optional", "off", NULL};
static const char *const severities[] = {"info", "warning", "critical", NULL};
static const char *const webhook_formats[] = {"generic", "slack", "teams", NULL};

static const struct np_opt collector_opts[] = {
    {"listen", NP_OPT_STRING, C(listen), "0.0.0.0:8443", 0, 0, NULL, 0,
     "address and port of the HTTPS server (HOST:PORT, [V6]:PORT); port 0 picks a free one "
     "(logged, and written to --port-file)"},
    {"tls_cert", NP_OPT_STRING, C(tls_cert), "/etc/netpulse/collector.crt", 0, 0, NULL, 0,
     "PEM certificate chain of the server"},
    {"tls_key", NP_OPT_STRING, C(tls_key), "/etc/netpulse/collector.key", 0, 0, NULL, 0,
     "PEM private key of the server"},
    {"plain_http", NP_OPT_BOOL, C(plain_http), "no", 0, 0, NULL, 0,
     "serve plain HTTP without TLS: labs and tests only"},
    {"allow_root", NP_OPT_BOOL, C(allow_root), "no", 0, 0, NULL, 0,
     "run even as root (refused otherwise: run as an unprivileged user; low ports through "
     "CAP_NET_BIND_SERVICE or systemd socket activation)"},
    {"data_dir", NP_OPT_STRING, C(data_dir), "/var/lib/netpulse", 0, 0, NULL, 0,
     "folder of state.db, rrd/ and journal/ (absolute)"},
    {"rrdcached", NP_OPT_STRING, C(rrdcached), "", 0, 0, NULL, 0,
     "rrdcached's local socket, e.g. unix:/run/rrdcached.sock; empty: librrd directly"},
    {"journal_dir", NP_OPT_STRING, C(journal_dir), "", 0, 0, NULL, 0,
     "folder of the ingest journal; empty: DATA_DIR/journal"},
    {"max_body", NP_OPT_SIZE, C(max_body_bytes), "8MiB", 1024, 64.0 * 1024 * 1024, NULL, 0,
     "largest request body accepted (an encoded batch is at most 8MiB)"},
    {"log_level", NP_OPT_ENUM, C(log_level), "info", 0, 0, log_levels, 0,
     "error, warning, notice, info or debug"},
    {"heartbeat_timeout", NP_OPT_DURATION, C(heartbeat_timeout_ms), "30s", 1000, 86400000.0, NULL,
     0,
     "an agent silent for longer opens a suspected outage (about 3 batch intervals); its "
     "backlog settles it"},
    {"web_root", NP_OPT_STRING, C(web_root), NP_DEFAULT_WEB_ROOT, 0, 0, NULL, 0,
     "folder of the dashboard's static files (dashboards/web)"},
};

#define D(f) offsetof(struct np_collector_dashboard, f)
static const struct np_opt dashboard_opts[] = {
    {"public", NP_OPT_BOOL, D(public_read), "no", 0, 0, NULL, 0,
     "let anyone read the dashboard and API without logging in (changes stay admin-only)"},
    {"session_idle", NP_OPT_DURATION, D(session_idle_ms), "1h", 60000, 30 * 86400000.0, NULL, 0,
     "a login session unused this long ends"},
    {"session_max", NP_OPT_DURATION, D(session_max_ms), "12h", 60000, 90 * 86400000.0, NULL, 0,
     "a login session ends this long after the login"},
    {"metrics_public", NP_OPT_BOOL, D(metrics_public), "no", 0, 0, NULL, 0,
     "serve /metrics without a token"},
    {"metrics_token", NP_OPT_SECRET, D(metrics_token), "", 0, 0, NULL, 0,
     "bearer token a Prometheus scraper sends for /metrics (user API tokens work too)"},
};

static const struct np_opt targets_opts[] = {
    {"uptime", NP_OPT_RATIO, T(uptime), "99.5%", 0, 1, NULL, 0,
     "uptime target of each site's uplink per month"},
    {"uptime_elementary", NP_OPT_RATIO, T(uptime_elementary), NULL, 0, 1, NULL, 0,
     "uptime target of elementary schools; unset: uptime"},
    {"uptime_middle", NP_OPT_RATIO, T(uptime_middle), NULL, 0, 1, NULL, 0,
     "uptime target of middle schools; unset: uptime"},
    {"uptime_high", NP_OPT_RATIO, T(uptime_high), NULL, 0, 1, NULL, 0,
     "uptime target of high schools; unset: uptime"},
    {"uptime_other", NP_OPT_RATIO, T(uptime_other), NULL, 0, 1, NULL, 0,
     "uptime target of other sites (offices, libraries); unset: uptime"},
    {"growth_years", NP_OPT_INT, T(growth_years), "5", 1, 30, NULL, 0,
     "years over which bandwidth growth is assessed"},
    {"growth_elementary", NP_OPT_RATIO, T(growth_elementary), "400%", 0, 100, NULL, 0,
     "bandwidth growth target for elementary schools over growth_years"},
    {"growth_middle", NP_OPT_RATIO, T(growth_middle), "400%", 0, 100, NULL, 0,
     "bandwidth growth target for middle schools over growth_years"},
    {"growth_high", NP_OPT_RATIO, T(growth_high), "900%", 0, 100, NULL, 0,
     "bandwidth growth target for high schools over growth_years"},
};

static const struct np_opt smtp_opts[] = {
    {"url", NP_OPT_STRING, M(url), "", 0, 0, NULL, 0,
     "smtp://HOST:587 (STARTTLS) or smtps://HOST:465; empty: no alert e-mail"},
    {"from", NP_OPT_STRING, M(from), "", 0, 0, NULL, 0, "sender address of alert e-mail"},
    {"to", NP_OPT_LIST, M(to), NULL, 0, 0, NULL, 0, "recipients, comma-separated"},
    {"user", NP_OPT_STRING, M(user), "", 0, 0, NULL, 0, "SMTP AUTH user; empty: no AUTH"},
    {"password", NP_OPT_SECRET, M(password), "", 0, 0, NULL, 0,
     "SMTP AUTH password (or password_file = PATH)"},
    {"starttls", NP_OPT_ENUM, M(starttls), "required", 0, 0, starttls_modes, 0,
     "smtp:// only: required (refuse a server without STARTTLS), optional, or off (labs)"},
    {"ca_file", NP_OPT_STRING, M(ca_file), "", 0, 0, NULL, 0,
     "PEM CA bundle that signs the mail server's certificate; empty: system store"},
    {"timeout", NP_OPT_DURATION, M(timeout_ms), "60s", 1000, 3600000, NULL, 0,
     "longest SMTP transaction (connect to QUIT); a failed one is retried later"},
};

/* Defaults a district wants out of the box (alert_rules.h has the semantics). */
static const struct np_opt alerts_opts[] = {
    {"enabled", NP_OPT_BOOL, A(enabled), "yes", 0, 0, NULL, 0, "evaluate alert rules and notify"},
    {"site_down_after", NP_OPT_DURATION, A(site_down_after_ms), "2m", 1000, 86400000, NULL, 0,
     "a site whose agent is silent this long is down (its notice may wait digest_window more)"},
    {"hold_down", NP_OPT_DURATION, A(hold_down_ms), "1m", 0, 86400000, NULL, 0,
     "a site must be heard this long before it counts as recovered (flap damping)"},
    {"settle_wait", NP_OPT_DURATION, A(settle_wait_ms), "10m", 0, 86400000, NULL, 0,
     "longest wait for the agent's backlog to tell the outage's cause before the recovery "
     "notice"},
    {"digest_window", NP_OPT_DURATION, A(digest_window_ms), "30s", 0, 3600000, NULL, 0,
     "down/recovery notices due within this window leave together; 0: no digests"},
    {"digest_min", NP_OPT_INT, A(digest_min), "3", 2, 100000, NULL, 0,
     "notices in one window that make one digest listing the sites"},
    {"flap_window", NP_OPT_DURATION, A(flap_window_ms), "1h", 0, 7 * 86400000.0, NULL, 0,
     "window of flap damping"},
    {"flap_max", NP_OPT_INT, A(flap_max), "3", 0, 30, NULL, 0,
     "down notices per site within flap_window before it is 'flapping' and kept quiet; 0: off"},
    {"flap_stable", NP_OPT_DURATION, A(flap_stable_ms), "15m", 0, 86400000, NULL, 0,
     "a flapping site must be heard this long before its recovery notice"},
    {"reminder", NP_OPT_DURATION, A(reminder_ms), "4h", 0, 30 * 86400000.0, NULL, 0,
     "repeat the notice of a site still down this often; 0: never"},
    {"uplink", NP_OPT_BOOL, A(uplink), "yes", 0, 0, NULL, 0,
     "notify an uplink down seen by the agent's probes while it still reaches the collector"},
    {"uplink_hold", NP_OPT_DURATION, A(uplink_hold_ms), "1m", 0, 86400000, NULL, 0,
     "an uplink must be down this long before the notice"},
    {"interface", NP_OPT_BOOL, A(interface), "yes", 0, 0, NULL, 0,
     "notify monitored interfaces going down and up"},
    {"interface_hold", NP_OPT_DURATION, A(interface_hold_ms), "1m", 0, 86400000, NULL, 0,
     "an interface must be down this long before the notice"},
    {"utilisation", NP_OPT_RATIO, A(utilisation), "90%", 0, 1, NULL, 0,
     "notify an interface whose busier direction runs above this share of its rate "
     "(agent's provisioned rate; the site's circuit rate for its uplink/WAN interface; "
     "else ifSpeed) for utilisation_for; 0%: off"},
    {"utilisation_for", NP_OPT_DURATION, A(utilisation_for_ms), "15m", 0, 86400000, NULL, 0,
     "how long every sample must stay at or above utilisation before the notice"},
    {"utilisation_clear", NP_OPT_RATIO, A(utilisation_clear), "80%", 0, 1, NULL, 0,
     "a notified high utilisation clears when samples stay below this (hysteresis)"},
    {"utilisation_clear_for", NP_OPT_DURATION, A(utilisation_clear_for_ms), "5m", 0, 86400000, NULL,
     0, "how long samples must stay below utilisation_clear before the all-clear"},
    {"sla", NP_OPT_BOOL, A(sla), "yes", 0, 0, NULL, 0,
     "notify (once per site and month) when a site's month is projected to miss its "
     "[targets] uptime"},
    {"sla_budget_left", NP_OPT_RATIO, A(sla_budget_left), "0%", 0, 1, NULL, 0,
     "at risk when less than this share of the month's downtime budget is left; 0%: only "
     "when even a clean rest of the month misses the target"},
    {"sla_interval", NP_OPT_DURATION, A(sla_interval_ms), "1m", 1000, 86400000, NULL, 0,
     "how often every site's month-to-date uptime is computed"},
    {"spool", NP_OPT_RATIO, A(spool), "80%", 0, 1, NULL, 0,
     "notify an agent spool fuller than this; 0%: off"},
    {"spool_dropped", NP_OPT_BOOL, A(spool_dropped), "yes", 0, 0, NULL, 0,
     "notify an agent that dropped data (spool overflow)"},
    {"disk_free_min", NP_OPT_RATIO, A(disk_free_min), "10%", 0, 1, NULL, 0,
     "notify when data_dir's file system has less free space; 0%: off"},
    {"dashboard_url", NP_OPT_STRING, A(dashboard_url), "", 0, 0, NULL, 0,
     "base URL of links in notices (the site page is URL/sites/ID); empty: from listen"},
    {"to_site_contacts", NP_OPT_BOOL, A(to_site_contacts), "yes", 0, 0, NULL, 0,
     "also mail the site's contacts (the inventory's contacts column)"},
    {"site_contacts_min", NP_OPT_ENUM, A(site_contacts_min), "warning", 0, 0, severities, 0,
     "least severity mailed to site contacts and school-type lists: info, warning, critical"},
    {"district_min", NP_OPT_ENUM, A(district_min), "info", 0, 0, severities, 0,
     "least severity mailed to [smtp] to (district-wide)"},
    {"to_elementary", NP_OPT_LIST, A(to_elementary), NULL, 0, 0, NULL, 0,
     "recipients of notices about elementary schools"},
    {"to_middle", NP_OPT_LIST, A(to_middle), NULL, 0, 0, NULL, 0,
     "recipients of notices about middle schools"},
    {"to_high", NP_OPT_LIST, A(to_high), NULL, 0, 0, NULL, 0,
     "recipients of notices about high schools"},
    {"to_other", NP_OPT_LIST, A(to_other), NULL, 0, 0, NULL, 0,
     "recipients of notices about other sites"},
    {"retry_initial", NP_OPT_DURATION, A(retry_initial_ms), "30s", 100, 86400000, NULL, 0,
     "first wait before a failed delivery is tried again (doubles each time)"},
    {"retry_max", NP_OPT_DURATION, A(retry_max_ms), "30m", 100, 86400000, NULL, 0,
     "longest wait between delivery attempts"},
    {"give_up_after", NP_OPT_DURATION, A(give_up_after_ms), "2d", 1000, 30 * 86400000.0, NULL, 0,
     "a delivery still failing this long after its alert is abandoned"},
    {"poll", NP_OPT_DURATION, A(poll_ms), "2s", 200, 60000, NULL, 0,
     "how often agents' progress and outages are read from the state database"},
};

static const struct np_opt webhook_opts[] = {
    {"url", NP_OPT_STRING, W(url), NULL, 0, 0, NULL, NP_OPT_REQUIRED,
     "https:// (or http://) address the JSON is POSTed to"},
    {"format", NP_OPT_ENUM, W(format), "generic", 0, 0, webhook_formats, 0,
     "generic (netpulse's JSON), slack ({\"text\": ...}) or teams (MessageCard)"},
    {"min_severity", NP_OPT_ENUM, W(min_severity), "info", 0, 0, severities, 0,
     "least severity sent: info, warning, critical"},
    {"timeout", NP_OPT_DURATION, W(timeout_ms), "30s", 1000, 600000, NULL, 0,
     "longest request"},
    {"ca_file", NP_OPT_STRING, W(ca_file), "", 0, 0, NULL, 0,
     "PEM CA bundle for an https:// url; empty: system store"},
};

static const struct np_section_spec sections[] = {
    {"collector", false, false, sizeof(struct np_collector_settings), 0, collector_opts,
     sizeof collector_opts / sizeof collector_opts[0], "the collector daemon"},
    {"targets", false, false, sizeof(struct np_collector_targets), 0, targets_opts,
     sizeof targets_opts / sizeof targets_opts[0], "the district's uptime and growth targets"},
    {"smtp", false, false, sizeof(struct np_collector_smtp), 0, smtp_opts,
     sizeof smtp_opts / sizeof smtp_opts[0], "alert e-mail"},
    {"alerts", false, false, sizeof(struct np_collector_alerts), 0, alerts_opts,
     sizeof alerts_opts / sizeof alerts_opts[0], "alert rules, noise control and routing"},
    {"webhook", true, false, sizeof(struct np_collector_webhook), W(name), webhook_opts,
     sizeof webhook_opts / sizeof webhook_opts[0], "a JSON webhook receiving every alert"},
    {"dashboard", false, false, sizeof(struct np_collector_dashboard), 0, dashboard_opts,
     sizeof dashboard_opts / sizeof dashboard_opts[0], "access to the dashboard and /metrics"},
};
#define N_SECTIONS (sizeof sections / sizeof sections[0])

/* "FILE:LINE: message" for key of instance (LINE 0 when from the default). */
static int bad(const struct np_config *cfg, const void *inst, const char *key, struct np_err *err,
               const char *msg)
{
    int line = np_config_line(cfg, inst, key);
    if (line > 0) {
        return np_err_set(err, NP_ECONFIG, "%s:%d: %s", np_config_path(cfg), line, msg);
    }
    return np_err_set(err, NP_ECONFIG, "%s: %s", np_config_path(cfg), msg);
}

static bool valid_port(const char *s)
{
    char *end = NULL;
    long v;
    if (!s || s[0] < '0' || s[0] > '9') {
        return false;
    }
    errno = 0;
    v = strtol(s, &end, 10);
    /* 0: an ephemeral port, picked at bind (tests, several collectors on one host). */
    return !errno && !*end && v >= 0 && v <= 65535;
}

/* HOST:PORT or [V6]:PORT; HOST non-empty without ':' or blanks. */
static bool valid_listen(const char *s)
{
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        return close && close > s + 1 && close[1] == ':' && valid_port(close + 2);
    }
    colon = strrchr(s, ':');
    if (!colon || colon == s || strchr(s, ':') != colon || strpbrk(s, " \t")) {
        return false;
    }
    return valid_port(colon + 1);
}

/* Empty, or a local socket by absolute path: rrd_store names files by
 * absolute path, which rrdcached takes only over a local socket. */
static bool valid_rrdcached(const char *s)
{
    const char *path = strncmp(s, "unix:", 5) == 0 ? s + 5 : s;
    return !s[0] || path[0] == '/';
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    if (s) {
        size_t la = strlen(a);
        /* data_dir "/" or ".../": do not double the slash */
        snprintf(s, n, "%s%s%s", a, la && a[la - 1] == '/' ? "" : "/", b);
    }
    return s;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* URLs go to libcurl: a known scheme, no blanks or control characters. */
static bool valid_url(const char *s, const char *const *schemes)
{
    bool known = false;
    for (size_t i = 0; schemes[i]; i++) {
        known = known || (starts_with(s, schemes[i]) && s[strlen(schemes[i])]);
    }
    for (const unsigned char *p = (const unsigned char *)s; known && *p; p++) {
        if (*p <= 0x20 || *p == 0x7f || *p == '"' || *p == '<' || *p == '>') {
            return false;
        }
    }
    return known;
}

static int check_addresses(const struct np_config *cfg, const void *inst, const char *key,
                           const struct np_strlist *l, struct np_err *err)
{
    for (size_t i = 0; i < l->count; i++) {
        if (!np_alert_mail_valid_address(l->items[i])) {
            return bad(cfg, inst, key, err, "not a plain e-mail address (local@domain)");
        }
    }
    return 0;
}

/* [smtp], [alerts], [webhook NAME]: what the alerter will hand to libcurl. */
static int check_alerting(const struct np_config *cfg, struct np_err *err)
{
    static const char *const smtp_schemes[] = {"smtp://", "smtps://", NULL};
    static const char *const web_schemes[] = {"https://", "http://", NULL};
    const struct np_collector_smtp *m = np_config_section(cfg, "smtp");
    const struct np_collector_alerts *a = np_config_section(cfg, "alerts");
    int ret;
    if (m->url[0]) {
        if (!valid_url(m->url, smtp_schemes)) {
            return bad(cfg, m, "url", err, "url must be smtp://HOST[:PORT] or smtps://HOST[:PORT]");
        }
        if (!np_alert_mail_valid_address(m->from)) {
            return bad(cfg, m, "from", err, "from must be a plain e-mail address (local@domain)");
        }
    }
    if ((ret = check_addresses(cfg, m, "to", &m->to, err)) != 0 ||
        (ret = check_addresses(cfg, a, "to_elementary", &a->to_elementary, err)) != 0 ||
        (ret = check_addresses(cfg, a, "to_middle", &a->to_middle, err)) != 0 ||
        (ret = check_addresses(cfg, a, "to_high", &a->to_high, err)) != 0 ||
        (ret = check_addresses(cfg, a, "to_other", &a->to_other, err)) != 0) {
        return ret;
    }
    if (a->dashboard_url[0] && !valid_url(a->dashboard_url, web_schemes)) {
        return bad(cfg, a, "dashboard_url", err, "dashboard_url must be an http(s):// URL");
    }
    if (a->utilisation > 0 && a->utilisation_clear > a->utilisation) {
        return bad(cfg, a, "utilisation_clear", err,
                   "utilisation_clear must not be above utilisation");
    }
    if (a->retry_max_ms < a->retry_initial_ms) {
        return bad(cfg, a, "retry_max", err, "retry_max must not be below retry_initial");
    }
    for (size_t i = 0; i < np_config_count(cfg, "webhook"); i++) {
        const struct np_collector_webhook *w = np_config_instance(cfg, "webhook", i);
        if (!valid_url(w->url, web_schemes)) {
            return bad(cfg, w, "url", err, "url must be an https:// or http:// URL");
        }
    }
    return 0;
}

/* [targets] uptime_<type>: 0 stands for "not set" (the uptime value), so an
 * explicit 0% would silently mean 99.5 %: refuse it. */
static int check_targets(const struct np_config *cfg, struct np_err *err)
{
    static const char *const keys[] = {"uptime_elementary", "uptime_middle", "uptime_high",
                                       "uptime_other"};
    const struct np_collector_targets *t = np_config_section(cfg, "targets");
    const double v[] = {t->uptime_elementary, t->uptime_middle, t->uptime_high, t->uptime_other};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (v[i] <= 0 && np_config_line(cfg, t, keys[i]) > 0) {
            return bad(cfg, t, keys[i], err, "an uptime target must be above 0%");
        }
    }
    return 0;
}

double np_collector_uptime_target(const struct np_collector_targets *t, enum np_school_type type)
{
    double v = 0;
    if (!t) {
        return NP_UPTIME_DEFAULT_TARGET;
    }
    switch (type) {
    case NP_SCHOOL_ELEMENTARY:
        v = t->uptime_elementary;
        break;
    case NP_SCHOOL_MIDDLE:
        v = t->uptime_middle;
        break;
    case NP_SCHOOL_HIGH:
        v = t->uptime_high;
        break;
    case NP_SCHOOL_OTHER:
        v = t->uptime_other;
        break;
    }
    if (!(v > 0)) {
        v = t->uptime;
    }
    return v > 0 ? v : NP_UPTIME_DEFAULT_TARGET;
}

static int finish(struct np_config *cfg, struct np_collector_config **out, struct np_err *err)
{
    struct np_collector_config *c;
    const struct np_collector_settings *s = np_config_section(cfg, "collector");
    int ret;

    if (s->data_dir[0] != '/') {
        ret = bad(cfg, s, "data_dir", err, "data_dir must be an absolute path");
        goto out_free_cfg;
    }
    if (s->journal_dir[0] && s->journal_dir[0] != '/') {
        ret = bad(cfg, s, "journal_dir", err, "journal_dir must be an absolute path");
        goto out_free_cfg;
    }
    if (!valid_listen(s->listen)) {
        ret = bad(cfg, s, "listen", err, "listen must be HOST:PORT or [IPV6]:PORT, port 0..65535");
        goto out_free_cfg;
    }
    if (!valid_rrdcached(s->rrdcached)) {
        ret = bad(cfg, s, "rrdcached", err,
                  "rrdcached must be empty, unix:/ABSOLUTE/PATH or /ABSOLUTE/PATH (a local socket)");
        goto out_free_cfg;
    }
    if (!s->plain_http && (!s->tls_cert[0] || !s->tls_key[0])) {
        ret = bad(cfg, s, s->tls_cert[0] ? "tls_key" : "tls_cert", err,
                  "tls_cert and tls_key are required unless plain_http = yes");
        goto out_free_cfg;
    }
    if ((ret = check_alerting(cfg, err)) != 0 || (ret = check_targets(cfg, err)) != 0) {
        goto out_free_cfg;
    }

    c = calloc(1, sizeof *c);
    if (!c) {
        ret = np_err_set(err, -ENOMEM, "config: out of memory");
        goto out_free_cfg;
    }
    c->cfg = cfg;
    c->collector = s;
    c->targets = np_config_section(cfg, "targets");
    c->smtp = np_config_section(cfg, "smtp");
    c->alerts = np_config_section(cfg, "alerts");
    c->dashboard = np_config_section(cfg, "dashboard");
    c->n_webhooks = np_config_count(cfg, "webhook");
    c->webhooks = calloc(c->n_webhooks + 1, sizeof *c->webhooks);
    for (size_t i = 0; c->webhooks && i < c->n_webhooks; i++) {
        c->webhooks[i] = np_config_instance(cfg, "webhook", i);
    }
    c->journal_dir = s->journal_dir[0] ? strdup(s->journal_dir) : join(s->data_dir, "journal");
    c->state_db_path = join(s->data_dir, "state.db");
    if (!c->journal_dir || !c->state_db_path || !c->webhooks) {
        np_collector_config_free(c);
        return np_err_set(err, -ENOMEM, "config: out of memory");
    }
    /* The choice's index + NP_LOG_ERR is the syslog priority np_log() takes. */
    c->log_level = (enum np_log_level)(s->log_level + NP_LOG_ERR);
    *out = c;
    return 0;

out_free_cfg:
    np_config_free(cfg);
    return ret;
}

int np_collector_config_load(const char *path, struct np_collector_config **out, struct np_err *err)
{
    struct np_config *cfg = NULL;
    int ret;
    *out = NULL;
    ret = np_config_load(path, sections, N_SECTIONS, &cfg, err);
    if (ret < 0) {
        return ret;
    }
    return finish(cfg, out, err);
}

int np_collector_config_load_string(const char *text, const char *name,
                                    struct np_collector_config **out, struct np_err *err)
{
    struct np_config *cfg = NULL;
    int ret;
    *out = NULL;
    ret = np_config_load_string(text, name, sections, N_SECTIONS, &cfg, err);
    if (ret < 0) {
        return ret;
    }
    return finish(cfg, out, err);
}

void np_collector_config_free(struct np_collector_config *c)
{
    if (!c) {
        return;
    }
    np_config_free(c->cfg);
    free(c->journal_dir);
    free(c->state_db_path);
    free(c->webhooks);
    free(c);
}

void np_collector_config_describe(FILE *out)
{
    np_config_describe(sections, N_SECTIONS, out);
}
