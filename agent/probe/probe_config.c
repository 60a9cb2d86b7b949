#include "probe_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FIELD(f) offsetof(struct np_probe_settings, f)
#define UFIELD(f) offsetof(struct np_uplink_probe_settings, f)

static const char *const probe_types[] = {"icmp", "tcp", "http", "dns", NULL};

const struct np_opt np_probe_opts[] = {
    {"type", NP_OPT_ENUM, FIELD(type), NULL, 0, 0, probe_types, NP_OPT_REQUIRED,
     "icmp, tcp, http or dns"},
    {"target", NP_OPT_STRING, FIELD(target), NULL, 0, 0, NULL, NP_OPT_REQUIRED,
     "icmp: host or IP; tcp: host:port; http: URL; dns: the name to resolve"},
    {"server", NP_OPT_STRING, FIELD(server), "", 0, 0, NULL, 0,
     "dns: resolver IP[:port] to ask (c-ares); empty: the system resolver"},
    {"interval", NP_OPT_DURATION, FIELD(interval_ms), "10s", 200, 86400000, NULL, 0,
     "time between the starts of two rounds"},
    {"timeout", NP_OPT_DURATION, FIELD(timeout_ms), "2s", 10, 3600000, NULL, 0,
     "how long a round waits for its answer (icmp: per echo); below interval"},
    {"count", NP_OPT_INT, FIELD(count), "3", 1, NP_PROBE_ICMP_MAX_COUNT, NULL, 0,
     "icmp: echoes per round, 200 ms apart; loss = 1 - received / sent"},
    {"expect_status", NP_OPT_LIST, FIELD(expect_status), "200-399", 0, 0, NULL, 0,
     "http: statuses that count as up, e.g. 200-399 or 200, 204"},
};
_Static_assert(sizeof np_probe_opts / sizeof np_probe_opts[0] == NP_PROBE_N_OPTS,
               "NP_PROBE_N_OPTS");

const struct np_opt np_uplink_opts[] = {
    {"quorum", NP_OPT_STRING, UFIELD(quorum), "1", 0, 0, NULL, 0,
     "probes that must be up for the uplink to be up: a number, majority or all"},
    {"down_after", NP_OPT_INT, UFIELD(down_after), "1", 1, 100, NULL, 0,
     "consecutive failed rounds before a probe counts as down"},
    {"up_after", NP_OPT_INT, UFIELD(up_after), "1", 1, 100, NULL, 0,
     "consecutive good rounds before a probe counts as up"},
};
_Static_assert(sizeof np_uplink_opts / sizeof np_uplink_opts[0] == NP_UPLINK_N_OPTS,
               "NP_UPLINK_N_OPTS");

static int parse_int(const char *s, const char **end, long lo, long hi, long *out)
{
    char *e = NULL;
    if (*s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    long v = strtol(s, &e, 10);
    if (errno != 0 || e == s || v < lo || v > hi) {
        return -1;
    }
    *end = e;
    *out = v;
    return 0;
}

int np_probe_parse_status(const struct np_strlist *list, struct np_status_range *out, size_t max,
                          struct np_err *err)
{
    if (list->count == 0) {
        return np_err_set(err, NP_ECONFIG, "expect_status: at least one status is needed");
    }
    if (list->count > max) {
        return np_err_set(err, NP_ECONFIG, "expect_status: more than %zu items", max);
    }
    for (size_t i = 0; i < list->count; i++) {
        const char *s = list->items[i], *e = NULL;
        long lo = 0, hi = 0;
        if (parse_int(s, &e, 100, 599, &lo) != 0) {
            goto bad;
        }
        hi = lo;
        if (*e == '-') {
            if (parse_int(e + 1, &e, lo, 599, &hi) != 0) {
                goto bad;
            }
        }
        if (*e != '\0') {
            goto bad;
        }
        out[i].lo = (int)lo;
        out[i].hi = (int)hi;
        continue;
    bad:
        return np_err_set(err, NP_ECONFIG,
                          "expect_status: \"%.40s\" is not a status (100-599) or a range N-M", s);
    }
    return (int)list->count;
}

int np_probe_config_quorum(const char *text, size_t n_probes, unsigned *out, struct np_err *err)
{
    if (strcasecmp(text, "majority") == 0) {
        *out = n_probes ? (unsigned)(n_probes / 2 + 1) : 0;
        return 0;
    }
    if (strcasecmp(text, "all") == 0) {
        *out = (unsigned)n_probes;
        return 0;
    }
    const char *e = NULL;
    long v = 0;
    if (parse_int(text, &e, 1, 100000, &v) != 0 || *e != '\0') {
        return np_err_set(err, NP_ECONFIG,
                          "quorum: \"%.40s\" is not a number of probes, majority or all", text);
    }
    if (n_probes == 0) {
        *out = 0;
        return 0;
    }
    if ((size_t)v > n_probes) {
        return np_err_set(err, NP_ECONFIG, "quorum: %ld is more than the %zu [probe] sections", v,
                          n_probes);
    }
    *out = (unsigned)v;
    return 0;
}

int np_probe_split_host_port(const char *target, char *host, size_t host_len, uint16_t *port)
{
    const char *colon = NULL, *h = target;
    size_t hl = 0;
    if (target[0] == '[') {
        const char *close = strchr(target, ']');
        if (!close || close[1] != ':') {
            return NP_ECONFIG;
        }
        h = target + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(target, ':');
        if (!colon || strchr(target, ':') != colon) {
            return NP_ECONFIG; /* none, or an IPv6 address without brackets */
        }
        hl = (size_t)(colon - target);
    }
    const char *e = NULL;
    long p = 0;
    if (hl == 0 || hl >= host_len || parse_int(colon + 1, &e, 1, 65535, &p) != 0 || *e != '\0') {
        return NP_ECONFIG;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return 0;
}

int64_t np_probe_icmp_round_ms(const struct np_probe_settings *s)
{
    return (s->count - 1) * NP_PROBE_ICMP_SPACING_MS + s->timeout_ms;
}

static int at_line(const struct np_config *cfg, const void *inst, const char *key,
                   struct np_err *err, const char *what)
{
    int line = key ? np_config_line(cfg, inst, key) : 0;
    if (line == 0) {
        line = np_config_line(cfg, inst, NULL);
    }
    if (line == 0) {
        return np_err_set(err, NP_ECONFIG, "%s: %s", np_config_path(cfg), what);
    }
    return np_err_set(err, NP_ECONFIG, "%s:%d: %s", np_config_path(cfg), line, what);
}

static bool is_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* c-ares server syntax we accept: IP, IP:port, [IPv6]:port. */
static bool valid_server(const char *s)
{
    char host[64];
    uint16_t port = 0;
    if (is_ip(s)) {
        return true;
    }
    return np_probe_split_host_port(s, host, sizeof host, &port) == 0 && is_ip(host);
}

static bool valid_hostname(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == ':')) {
            return false;
        }
    }
    return true;
}

static int check_probe(const struct np_config *cfg, const struct np_probe_settings *s,
                       struct np_err *err)
{
    char msg[300];
    struct np_err detail = {0};
    int t = s->type;
    if (t != NP_PROBE_CHOICE_DNS && np_config_line(cfg, s, "server") != 0) {
        return at_line(cfg, s, "server", err, "server applies to dns probes only");
    }
    if (t != NP_PROBE_CHOICE_ICMP && np_config_line(cfg, s, "count") != 0) {
        return at_line(cfg, s, "count", err, "count applies to icmp probes only");
    }
    if (t != NP_PROBE_CHOICE_HTTP && np_config_line(cfg, s, "expect_status") != 0) {
        return at_line(cfg, s, "expect_status", err, "expect_status applies to http probes only");
    }
    if (s->timeout_ms >= s->interval_ms) {
        return at_line(cfg, s, "timeout", err, "timeout must be shorter than interval");
    }
    switch (t) {
    case NP_PROBE_CHOICE_ICMP:
        if (!valid_hostname(s->target)) {
            return at_line(cfg, s, "target", err, "target must be a host name or an IP address");
        }
        if (np_probe_icmp_round_ms(s) > s->interval_ms) {
            snprintf(msg, sizeof msg,
                     "count x 200ms + timeout (%lld ms) must fit in interval (%lld ms)",
                     (long long)np_probe_icmp_round_ms(s), (long long)s->interval_ms);
            return at_line(cfg, s, "count", err, msg);
        }
        break;
    case NP_PROBE_CHOICE_TCP: {
        char host[256];
        uint16_t port = 0;
        if (np_probe_split_host_port(s->target, host, sizeof host, &port) != 0 ||
            !valid_hostname(host)) {
            return at_line(cfg, s, "target", err,
                           "tcp target must be host:port or [IPv6]:port, port 1-65535");
        }
        break;
    }
    case NP_PROBE_CHOICE_HTTP: {
        struct np_status_range r[NP_PROBE_MAX_STATUS_RANGES];
        if (strncasecmp(s->target, "http://", 7) != 0 &&
            strncasecmp(s->target, "https://", 8) != 0) {
            return at_line(cfg, s, "target", err, "http target must be an http:// or https:// URL");
        }
        if (np_probe_parse_status(&s->expect_status, r, NP_PROBE_MAX_STATUS_RANGES, &detail) < 0) {
            return at_line(cfg, s, "expect_status", err, detail.msg);
        }
        break;
    }
    case NP_PROBE_CHOICE_DNS:
        if (!valid_hostname(s->target) || strchr(s->target, ':')) {
            return at_line(cfg, s, "target", err, "dns target must be a name to resolve");
        }
        if (s->server[0] != '\0' && !valid_server(s->server)) {
            return at_line(cfg, s, "server", err,
                           "server must be an IP address, IP:port or [IPv6]:port");
        }
        break;
    default:
        return at_line(cfg, s, "type", err, "unknown probe type");
    }
    return 0;
}

int np_probe_config_check(const struct np_config *cfg, struct np_err *err)
{
    size_t n = np_config_count(cfg, "probe");
    for (size_t i = 0; i < n; i++) {
        int rc = check_probe(cfg, np_config_instance(cfg, "probe", i), err);
        if (rc != 0) {
            return rc;
        }
    }
    const struct np_uplink_probe_settings *u = np_config_section(cfg, "uplink");
    if (u) {
        struct np_err detail = {0};
        unsigned q = 0;
        if (np_probe_config_quorum(u->quorum, n, &q, &detail) != 0) {
            return at_line(cfg, u, "quorum", err, detail.msg);
        }
    }
    return 0;
}
