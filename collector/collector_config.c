#include "collector_config.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define C(f) offsetof(struct np_collector_settings, f)
#define T(f) offsetof(struct np_collector_targets, f)
#define M(f) offsetof(struct np_collector_smtp, f)

/* Index + NP_LOG_ERR is the np_log_level (syslog priority). */
static const char *const log_levels[] = {"error", "warning", "notice", "info", "debug", NULL};

static const struct np_opt collector_opts[] = {
    {"listen", NP_OPT_STRING, C(listen), "0.0.0.0:8443", 0, 0, NULL, 0,
     "address and port of the HTTPS server (HOST:PORT, [V6]:PORT)"},
    {"tls_cert", NP_OPT_STRING, C(tls_cert), "/etc/netpulse/collector.crt", 0, 0, NULL, 0,
     "PEM certificate chain of the server"},
    {"tls_key", NP_OPT_STRING, C(tls_key), "/etc/netpulse/collector.key", 0, 0, NULL, 0,
     "PEM private key of the server"},
    {"plain_http", NP_OPT_BOOL, C(plain_http), "no", 0, 0, NULL, 0,
     "serve plain HTTP without TLS: labs and tests only"},
    {"data_dir", NP_OPT_STRING, C(data_dir), "/var/lib/netpulse", 0, 0, NULL, 0,
     "folder of state.db, rrd/ and journal/ (absolute)"},
    {"rrdcached", NP_OPT_STRING, C(rrdcached), "", 0, 0, NULL, 0,
     "rrdcached address, e.g. unix:/run/rrdcached.sock; empty: librrd directly"},
    {"journal_dir", NP_OPT_STRING, C(journal_dir), "", 0, 0, NULL, 0,
     "folder of the ingest journal; empty: DATA_DIR/journal"},
    {"max_body", NP_OPT_SIZE, C(max_body_bytes), "8MiB", 1024, 64.0 * 1024 * 1024, NULL, 0,
     "largest request body accepted (an encoded batch is at most 8MiB)"},
    {"log_level", NP_OPT_ENUM, C(log_level), "info", 0, 0, log_levels, 0,
     "error, warning, notice, info or debug"},
};

static const struct np_opt targets_opts[] = {
    {"uptime", NP_OPT_RATIO, T(uptime), "99.5%", 0, 1, NULL, 0,
     "uptime target of each site's uplink per month"},
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
};

static const struct np_section_spec sections[] = {
    {"collector", false, false, sizeof(struct np_collector_settings), 0, collector_opts,
     sizeof collector_opts / sizeof collector_opts[0], "the collector daemon"},
    {"targets", false, false, sizeof(struct np_collector_targets), 0, targets_opts,
     sizeof targets_opts / sizeof targets_opts[0], "the district's uptime and growth targets"},
    {"smtp", false, false, sizeof(struct np_collector_smtp), 0, smtp_opts,
     sizeof smtp_opts / sizeof smtp_opts[0], "alert e-mail"},
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
    return !errno && !*end && v >= 1 && v <= 65535;
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

static bool valid_rrdcached(const char *s)
{
    if (!s[0]) {
        return true;
    }
    if (strncmp(s, "unix:", 5) == 0) {
        return s[5] == '/';
    }
    return !strpbrk(s, " \t");
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
        ret = bad(cfg, s, "listen", err, "listen must be HOST:PORT or [IPV6]:PORT, port 1..65535");
        goto out_free_cfg;
    }
    if (!valid_rrdcached(s->rrdcached)) {
        ret = bad(cfg, s, "rrdcached", err,
                  "rrdcached must be empty, unix:/ABSOLUTE/PATH, /ABSOLUTE/PATH or HOST[:PORT]");
        goto out_free_cfg;
    }
    if (!s->plain_http && (!s->tls_cert[0] || !s->tls_key[0])) {
        ret = bad(cfg, s, s->tls_cert[0] ? "tls_key" : "tls_cert", err,
                  "tls_cert and tls_key are required unless plain_http = yes");
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
    c->journal_dir = s->journal_dir[0] ? strdup(s->journal_dir) : join(s->data_dir, "journal");
    c->state_db_path = join(s->data_dir, "state.db");
    if (!c->journal_dir || !c->state_db_path) {
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
    free(c);
}

void np_collector_config_describe(FILE *out)
{
    np_config_describe(sections, N_SECTIONS, out);
}
