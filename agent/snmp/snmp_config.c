/* snmp_config: the [snmp NAME] option table, its validation, interface
 * selection and the text helpers. Pure: no net-snmp, no loop. */
#include "snmp_config.h"

#include "snmp_internal.h"

#include "netpulse/log.h"
#include "netpulse/units.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#define SNMP_SETTING(f) offsetof(struct np_snmp_settings, f)

static const char *const versions[] = {"1", "2c", "3", NULL};
/* Index order matches enum np_snmp_auth from NP_SNMP_AUTH_MD5 on (+1). */
static const char *const auth_names[] = {"MD5",     "SHA",     "SHA-224", "SHA-256",
                                         "SHA-384", "SHA-512", "SHA-1",   NULL};
static const char *const priv_names[] = {"DES", "AES", "AES-128", "AES-192", "AES-256", NULL};

const struct np_opt np_snmp_opts[NP_SNMP_N_OPTS] = {
    {"host", NP_OPT_STRING, SNMP_SETTING(host), NULL, 0, 0, NULL, NP_OPT_REQUIRED,
     "device address (IPv4, IPv6 or name)"},
    {"port", NP_OPT_INT, SNMP_SETTING(port), "161", 1, 65535, NULL, 0, "UDP port"},
    {"version", NP_OPT_ENUM, SNMP_SETTING(version), "2c", 0, 0, versions, 0, "1, 2c or 3"},
    {"community", NP_OPT_SECRET, SNMP_SETTING(community), "", 0, 0, NULL, 0,
     "v1/v2c community (or community_file)"},
    {"user", NP_OPT_STRING, SNMP_SETTING(user), "", 0, 0, NULL, 0, "v3 USM user"},
    {"auth_protocol", NP_OPT_ENUM, SNMP_SETTING(auth_protocol), "SHA", 0, 0, auth_names, 0,
     "v3: SHA, SHA-224, SHA-256, SHA-384, SHA-512 (MD5 only by name, with a warning)"},
    {"auth_password", NP_OPT_SECRET, SNMP_SETTING(auth_password), "", 0, 0, NULL, 0,
     "v3 authentication passphrase (or auth_password_file); set: authNoPriv at least"},
    {"priv_protocol", NP_OPT_ENUM, SNMP_SETTING(priv_protocol), "AES-128", 0, 0, priv_names, 0,
     "v3: AES (= AES-128), AES-192, AES-256 (DES only by name, with a warning)"},
    {"priv_password", NP_OPT_SECRET, SNMP_SETTING(priv_password), "", 0, 0, NULL, 0,
     "v3 privacy passphrase (or priv_password_file); set: authPriv"},
    {"context", NP_OPT_STRING, SNMP_SETTING(context), "", 0, 0, NULL, 0, "v3 context name"},
    {"interval", NP_OPT_DURATION, SNMP_SETTING(interval_ms), "60s", 1000, 86400000.0, NULL, 0,
     "time between polls"},
    {"timeout", NP_OPT_DURATION, SNMP_SETTING(timeout_ms), "2s", 10, 60000, NULL, 0,
     "wait for each reply before a retry"},
    {"retries", NP_OPT_INT, SNMP_SETTING(retries), "1", 0, 10, NULL, 0,
     "retransmissions of a request"},
    {"max_repetitions", NP_OPT_INT, SNMP_SETTING(max_repetitions), "25", 1, 200, NULL, 0,
     "GETBULK max-repetitions (rows per column per request)"},
    {"interfaces", NP_OPT_LIST, SNMP_SETTING(interfaces), "*", 0, 0, NULL, 0,
     "globs on ifName/ifAlias/ifDescr; \"!glob\" excludes"},
    {"include_loopback", NP_OPT_BOOL, SNMP_SETTING(include_loopback), "no", 0, 0, NULL, 0,
     "also poll loopback and null interfaces"},
    {"rate_override", NP_OPT_LIST, SNMP_SETTING(rate_override), NULL, 0, 0, NULL, 0,
     "provisioned rates, e.g. Gi0/1=100Mbps, eth0=1Gbps (glob=rate)"},
};

_Static_assert(sizeof np_snmp_opts / sizeof np_snmp_opts[0] == NP_SNMP_N_OPTS, "count");

static int bad(const struct np_config *cfg, const void *inst, const char *key, struct np_err *err,
               const char *what)
{
    int line = np_config_line(cfg, inst, key);
    if (line <= 0) {
        line = np_config_line(cfg, inst, NULL);
    }
    const struct np_snmp_settings *s = inst;
    return np_err_set(err, NP_ECONFIG, "%s:%d: [snmp %s] %s", np_config_path(cfg), line, s->name,
                      what);
}

static enum np_snmp_auth auth_of(int idx)
{
    switch (idx) {
    case 0:
        return NP_SNMP_AUTH_MD5;
    case 1:
    case 6:
        return NP_SNMP_AUTH_SHA1;
    case 2:
        return NP_SNMP_AUTH_SHA224;
    case 3:
        return NP_SNMP_AUTH_SHA256;
    case 4:
        return NP_SNMP_AUTH_SHA384;
    default:
        return NP_SNMP_AUTH_SHA512;
    }
}

static enum np_snmp_priv priv_of(int idx)
{
    switch (idx) {
    case 0:
        return NP_SNMP_PRIV_DES;
    case 1:
    case 2:
        return NP_SNMP_PRIV_AES128;
    case 3:
        return NP_SNMP_PRIV_AES192;
    default:
        return NP_SNMP_PRIV_AES256;
    }
}

static int load_overrides(const struct np_config *cfg, const struct np_snmp_settings *s,
                          struct np_snmp_target_conf *t, struct np_err *err)
{
    if (s->rate_override.count == 0) {
        return 0;
    }
    t->overrides = calloc(s->rate_override.count, sizeof *t->overrides);
    if (!t->overrides) {
        return np_err_set(err, -ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < s->rate_override.count; i++) {
        const char *item = s->rate_override.items[i];
        const char *eq = strrchr(item, '=');
        if (!eq || eq == item || !eq[1]) {
            return bad(cfg, s, "rate_override", err,
                       "rate_override items read GLOB=RATE (e.g. Gi0/1=100Mbps)");
        }
        size_t plen = (size_t)(eq - item);
        while (plen > 0 && (item[plen - 1] == ' ' || item[plen - 1] == '\t')) {
            plen--;
        }
        const char *rate = eq + 1;
        while (*rate == ' ' || *rate == '\t') {
            rate++;
        }
        uint64_t bps = 0;
        if (plen == 0 || np_units_rate_bps(rate, &bps) != 0 || bps == 0) {
            return bad(cfg, s, "rate_override", err,
                       "rate_override needs GLOB=RATE with a rate above 0 (e.g. 100Mbps)");
        }
        t->overrides[i].pattern = strndup(item, plen);
        if (!t->overrides[i].pattern) {
            return np_err_set(err, -ENOMEM, "out of memory");
        }
        t->overrides[i].rate_bps = bps;
        t->n_overrides = i + 1;
    }
    return 0;
}

static int validate(const struct np_config *cfg, const struct np_snmp_settings *s,
                    struct np_snmp_target_conf *t, bool warn, struct np_err *err)
{
    memset(t, 0, sizeof *t);
    t->s = s;
    t->version = (enum np_snmp_version)s->version;
    t->auth = NP_SNMP_AUTH_NONE;
    t->priv = NP_SNMP_PRIV_NONE;
    if (!s->host[0]) {
        return bad(cfg, s, "host", err, "host is empty");
    }
    if (t->version == NP_SNMP_V3) {
        if (!s->user[0]) {
            return bad(cfg, s, "version", err, "version 3 needs user");
        }
        if (s->community[0]) {
            return bad(cfg, s, "community", err, "community is for versions 1 and 2c");
        }
        if (s->priv_password[0] && !s->auth_password[0]) {
            return bad(cfg, s, "priv_password", err,
                       "priv_password needs auth_password (no privacy without authentication)");
        }
        if (s->auth_password[0]) {
            t->auth = auth_of(s->auth_protocol);
            /* RFC 3414 2.6: a passphrase of fewer than 8 octets is rejected by agents. */
            if (strlen(s->auth_password) < 8) {
                return bad(cfg, s, "auth_password", err,
                           "auth_password needs 8 characters or more");
            }
        }
        if (s->priv_password[0]) {
            t->priv = priv_of(s->priv_protocol);
            if (strlen(s->priv_password) < 8) {
                return bad(cfg, s, "priv_password", err,
                           "priv_password needs 8 characters or more");
            }
        }
        if (warn && t->auth == NP_SNMP_AUTH_MD5) {
            np_log(NP_LOG_WARN, "snmp: weak protocol target=%s auth_protocol=MD5 (prefer SHA-256)",
                   s->name);
        }
        if (warn && t->priv == NP_SNMP_PRIV_DES) {
            np_log(NP_LOG_WARN, "snmp: weak protocol target=%s priv_protocol=DES (prefer AES)",
                   s->name);
        }
    } else {
        if (!s->community[0]) {
            return bad(cfg, s, "community", err, "versions 1 and 2c need community");
        }
        if (s->user[0] || s->auth_password[0] || s->priv_password[0] || s->context[0]) {
            return bad(cfg, s, s->user[0] ? "user" : NULL, err,
                       "user, auth_password, priv_password and context are for version 3");
        }
    }
    if (s->timeout_ms * (s->retries + 1) >= s->interval_ms) {
        return bad(cfg, s, "timeout", err, "timeout x (retries + 1) must be below interval");
    }
    for (size_t i = 0; i < s->interfaces.count; i++) {
        const char *g = s->interfaces.items[i];
        if (g[0] == '!' && !g[1]) {
            return bad(cfg, s, "interfaces", err, "an exclusion needs a glob after '!'");
        }
    }
    return load_overrides(cfg, s, t, err);
}

void np_snmp_targets_free(struct np_snmp_target_conf *t, size_t n)
{
    if (!t) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < t[i].n_overrides; j++) {
            free(t[i].overrides[j].pattern);
        }
        free(t[i].overrides);
    }
    free(t);
}

int np_snmp_targets_load(const struct np_config *cfg, struct np_snmp_target_conf **out, size_t *n,
                         bool warn, struct np_err *err)
{
    *out = NULL;
    *n = 0;
    size_t count = np_config_count(cfg, "snmp");
    if (count == 0) {
        return 0;
    }
    struct np_snmp_target_conf *t = calloc(count, sizeof *t);
    if (!t) {
        return np_err_set(err, -ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < count; i++) {
        const struct np_snmp_settings *s = np_config_instance(cfg, "snmp", i);
        int rc = validate(cfg, s, &t[i], warn, err);
        if (rc != 0) {
            np_snmp_targets_free(t, i + 1);
            return rc;
        }
    }
    *out = t;
    *n = count;
    return 0;
}

int np_snmp_config_check(const struct np_config *cfg, struct np_err *err)
{
    struct np_snmp_target_conf *t = NULL;
    size_t n = 0;
    int rc = np_snmp_targets_load(cfg, &t, &n, false, err);
    np_snmp_targets_free(t, n);
    return rc;
}

static bool glob_any(const char *pattern, const char *name, const char *alias, const char *descr)
{
    return (name[0] && fnmatch(pattern, name, 0) == 0) ||
           (alias[0] && fnmatch(pattern, alias, 0) == 0) ||
           (descr[0] && fnmatch(pattern, descr, 0) == 0) || (strcmp(pattern, "*") == 0);
}

static bool is_loopback_or_null(const char *name, const char *descr, int if_type)
{
    if (if_type == 24) { /* IANAifType softwareLoopback */
        return true;
    }
    const char *n = name[0] ? name : descr;
    if (strcmp(n, "lo") == 0 || (strncmp(n, "lo", 2) == 0 && n[2] >= '0' && n[2] <= '9')) {
        return true;
    }
    return strncmp(n, "Null", 4) == 0 || strncmp(n, "null", 4) == 0;
}

bool np_snmp_if_selected(const char *const *patterns, size_t n_patterns, bool include_loopback,
                         const char *name, const char *alias, const char *descr, int if_type)
{
    if (!include_loopback && is_loopback_or_null(name, descr, if_type)) {
        return false;
    }
    bool any_positive = false, matched = false;
    for (size_t i = 0; i < n_patterns; i++) {
        const char *p = patterns[i];
        if (p[0] == '!') {
            if (glob_any(p + 1, name, alias, descr)) {
                return false;
            }
        } else {
            any_positive = true;
            matched = matched || glob_any(p, name, alias, descr);
        }
    }
    return !any_positive || matched;
}

uint64_t np_snmp_rate_override_for(const struct np_snmp_rate_override *o, size_t n,
                                   const char *name, const char *alias, const char *descr)
{
    for (size_t i = 0; i < n; i++) {
        if (glob_any(o[i].pattern, name, alias, descr)) {
            return o[i].rate_bps;
        }
    }
    return 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t need;
    uint32_t cp;
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len < need) {
        return 0;
    }
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((need == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (need == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
        return 0;
    }
    return need;
}

void np_snmp_text(char *dst, size_t cap, const unsigned char *src, size_t len)
{
    size_t o = 0;
    /* Some agents count a C string's NUL in the OCTET STRING (RFC 2579
     * DisplayString has none); drop trailing NULs. */
    while (len > 0 && src[len - 1] == 0) {
        len--;
    }
    for (size_t i = 0; i < len && o + 1 < cap;) {
        size_t k = utf8_seq(src + i, len - i);
        if (k == 0 || (k == 1 && (src[i] < 0x20 || src[i] == 0x7F))) {
            dst[o++] = '?';
            i++;
            continue;
        }
        if (o + k >= cap) {
            break;
        }
        memcpy(dst + o, src + i, k);
        o += k;
        i += k;
    }
    dst[o] = '\0';
}

const char *np_snmp_status_name(int status)
{
    static const char *const names[] = {NULL,      "up",      "down",       "testing",
                                        "unknown", "dormant", "notPresent", "lowerLayerDown"};
    if (status < 1 || status > 7) {
        return NULL;
    }
    return names[status];
}
