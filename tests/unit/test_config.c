#include "netpulse/config.h"

#include "netpulse/err.h"

#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the agent's tables, declared as netpulse-agent will ---- */

struct agent_conf {
    char *id;
    char *collector;
    char *token;
    char *ca_file;
    char *spool_dir;
    uint64_t spool_max;
    int64_t batch_interval_ms;
};

struct snmp_conf {
    char *name;
    char *host;
    int64_t port;
    int version;
    char *community;
    int64_t interval_ms;
    struct np_strlist interfaces;
    char *user;
    int auth_protocol;
    char *auth_password;
    int priv_protocol;
    char *priv_password;
    uint64_t circuit_rate_bps;
};

struct pcap_conf {
    char *name;
    char *interface;
    char *filter;
    int64_t sample;
    struct np_strlist local_prefixes;
    int64_t export_interval_ms;
};

struct probe_conf {
    char *name;
    int type;
    char *target;
    int64_t interval_ms;
};

static const char *const snmp_versions[] = {"1", "2c", "3", NULL};
static const char *const auth_protocols[] = {"MD5",     "SHA",     "SHA-224", "SHA-256",
                                             "SHA-384", "SHA-512", NULL};
static const char *const priv_protocols[] = {"DES", "AES", "AES-128", "AES-192", "AES-256", NULL};
static const char *const probe_types[] = {"icmp", "tcp", "http", "dns", NULL};

#define MS_S 1000.0
#define MS_H 3600000.0
#define MS_D 86400000.0

static const struct np_opt agent_opts[] = {
    {.name = "id",
     .type = NP_OPT_STRING,
     .offset = offsetof(struct agent_conf, id),
     .flags = NP_OPT_REQUIRED,
     .help = "the site this agent speaks for"},
    {.name = "collector",
     .type = NP_OPT_STRING,
     .offset = offsetof(struct agent_conf, collector),
     .help = "collector URL"},
    {.name = "token",
     .type = NP_OPT_SECRET,
     .offset = offsetof(struct agent_conf, token),
     .help = "bearer token"},
    {.name = "ca_file",
     .type = NP_OPT_STRING,
     .offset = offsetof(struct agent_conf, ca_file),
     .help = "CA bundle; empty: system store"},
    {.name = "spool_dir",
     .type = NP_OPT_STRING,
     .offset = offsetof(struct agent_conf, spool_dir),
     .def = "/var/lib/netpulse/spool",
     .help = "spool folder"},
    {.name = "spool_max",
     .type = NP_OPT_SIZE,
     .offset = offsetof(struct agent_conf, spool_max),
     .def = "256MiB",
     .min = 1048576.0,
     .max = 1099511627776.0,
     .help = "spool cap"},
    {.name = "batch_interval",
     .type = NP_OPT_DURATION,
     .offset = offsetof(struct agent_conf, batch_interval_ms),
     .def = "10s",
     .min = MS_S,
     .max = MS_H,
     .help = "upload period"},
};

static const struct np_opt snmp_opts[] = {
    {.name = "host",
     .type = NP_OPT_STRING,
     .offset = offsetof(struct snmp_conf, host),
     .flags = NP_OPT_REQUIRED,
     .help = "device address"},
    {.name = "port",
     .type = NP_OPT_INT,
     .offset = offsetof(struct snmp_conf, port),
     .def = "161",
     .min = 1,
     .max = 65535,
     .help = "UDP port"},
    {.name = "version",
     .type = NP_OPT_ENUM,
     .offset = offsetof(struct snmp_conf, version),
     .def = "2c",
     .choices = snmp_versions,
     .help = "SNMP version"},
    {.name = "community",
     .type = NP_OPT_SECRET,
     .offset = offsetof(struct snmp_conf, community),
     .def = "public",
     .help = "v1/v2c community"},
    {.name = "interval",
     .type = NP_OPT_DURATION,
     .offset = offsetof(struct snmp_conf, interval_ms),
     .def = "60s",
     .min = MS_S,
     .max = MS_D,
     .help = "poll period"},
    {.name = "interfaces",
     .type = NP_OPT_LIST,
     .offset = offsetof(struct snmp_conf, interfaces),
     .def = "*",
     .help = "globs on ifName/ifAlias/ifDescr"},
    {.name = "user", .type = NP_OPT_STRING, .offset = offsetof(struct snmp_conf, user)},
    {.name = "auth_protocol",
     .type = NP_OPT_ENUM,
     .offset = offsetof(struct snmp_conf, auth_protocol),
     .def = "SHA-256",
     .choices = auth_protocols},
    {.name = "auth_password",
     .type = NP_OPT_SECRET,
     .offset = offsetof(struct snmp_conf, auth_password)},
    {.name = "priv_protocol",
     .type = NP_OPT_ENUM,
     .offset = offsetof(struct snmp_conf, priv_protocol),
     .def = "AES-128",
     .choices = priv_protocols},
    {.name = "priv_password",
     .type = NP_OPT_SECRET,
     .offset = offsetof(struct snmp_conf, priv_password)},
    {.name = "circuit_rate",
     .type = NP_OPT_RATE,
     .offset = offsetof(struct snmp_conf, circuit_rate_bps),
     .min = 0,
     .max = 400e9,
     .help = "provisioned rate; 0: ifHighSpeed"},
};

static const struct np_opt pcap_opts[] = {
    {.name = "interface",
     .type = NP_OPT_STRING,
     .offset = offsetof(struct pcap_conf, interface),
     .flags = NP_OPT_REQUIRED},
    {.name = "filter", .type = NP_OPT_STRING, .offset = offsetof(struct pcap_conf, filter)},
    {.name = "sample",
     .type = NP_OPT_INT,
     .offset = offsetof(struct pcap_conf, sample),
     .def = "1",
     .min = 1,
     .max = 65536},
    {.name = "local_prefixes",
     .type = NP_OPT_LIST,
     .offset = offsetof(struct pcap_conf, local_prefixes)},
    {.name = "export_interval",
     .type = NP_OPT_DURATION,
     .offset = offsetof(struct pcap_conf, export_interval_ms),
     .def = "60s",
     .min = MS_S,
     .max = MS_H},
};

static const struct np_opt probe_opts[] = {
    {.name = "type",
     .type = NP_OPT_ENUM,
     .offset = offsetof(struct probe_conf, type),
     .def = "icmp",
     .choices = probe_types},
    {.name = "target",
     .type = NP_OPT_STRING,
     .offset = offsetof(struct probe_conf, target),
     .flags = NP_OPT_REQUIRED},
    {.name = "interval",
     .type = NP_OPT_DURATION,
     .offset = offsetof(struct probe_conf, interval_ms),
     .def = "10s",
     .min = MS_S,
     .max = MS_H},
};

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const struct np_section_spec agent_specs[] = {
    {.name = "agent",
     .required = true,
     .size = sizeof(struct agent_conf),
     .opts = agent_opts,
     .n_opts = NELEMS(agent_opts),
     .help = "this agent"},
    {.name = "snmp",
     .named = true,
     .size = sizeof(struct snmp_conf),
     .name_offset = offsetof(struct snmp_conf, name),
     .opts = snmp_opts,
     .n_opts = NELEMS(snmp_opts),
     .help = "one section per polled device"},
    {.name = "pcap",
     .named = true,
     .size = sizeof(struct pcap_conf),
     .name_offset = offsetof(struct pcap_conf, name),
     .opts = pcap_opts,
     .n_opts = NELEMS(pcap_opts)},
    {.name = "probe",
     .named = true,
     .size = sizeof(struct probe_conf),
     .name_offset = offsetof(struct probe_conf, name),
     .opts = probe_opts,
     .n_opts = NELEMS(probe_opts)},
};

/* ---- the collector's tables ---- */

struct collector_conf {
    char *listen;
    char *tls_cert;
    char *tls_key;
    char *data_dir;
    char *rrdcached;
    bool plain_http;
};

struct targets_conf {
    double uptime;
    int64_t growth_years;
    double growth_elementary;
    double growth_middle;
    double growth_high;
};

struct smtp_conf {
    char *url;
    char *from;
    struct np_strlist to;
};

static const struct np_opt collector_opts[] = {
    {.name = "listen",
     .type = NP_OPT_STRING,
     .offset = offsetof(struct collector_conf, listen),
     .def = "0.0.0.0:8443"},
    {.name = "tls_cert",
     .type = NP_OPT_STRING,
     .offset = offsetof(struct collector_conf, tls_cert)},
    {.name = "tls_key", .type = NP_OPT_STRING, .offset = offsetof(struct collector_conf, tls_key)},
    {.name = "data_dir",
     .type = NP_OPT_STRING,
     .offset = offsetof(struct collector_conf, data_dir),
     .def = "/var/lib/netpulse"},
    {.name = "rrdcached",
     .type = NP_OPT_STRING,
     .offset = offsetof(struct collector_conf, rrdcached)},
    {.name = "plain_http",
     .type = NP_OPT_BOOL,
     .offset = offsetof(struct collector_conf, plain_http),
     .def = "no"},
};

static const struct np_opt targets_opts[] = {
    {.name = "uptime",
     .type = NP_OPT_RATIO,
     .offset = offsetof(struct targets_conf, uptime),
     .def = "99.5%",
     .min = 0,
     .max = 1},
    {.name = "growth_years",
     .type = NP_OPT_INT,
     .offset = offsetof(struct targets_conf, growth_years),
     .def = "5",
     .min = 1,
     .max = 50},
    {.name = "growth_elementary",
     .type = NP_OPT_RATIO,
     .offset = offsetof(struct targets_conf, growth_elementary),
     .def = "400%",
     .min = 0,
     .max = INFINITY},
    {.name = "growth_middle",
     .type = NP_OPT_RATIO,
     .offset = offsetof(struct targets_conf, growth_middle),
     .def = "400%"},
    {.name = "growth_high",
     .type = NP_OPT_RATIO,
     .offset = offsetof(struct targets_conf, growth_high),
     .def = "900%"},
};

static const struct np_opt smtp_opts[] = {
    {.name = "url", .type = NP_OPT_STRING, .offset = offsetof(struct smtp_conf, url)},
    {.name = "from", .type = NP_OPT_STRING, .offset = offsetof(struct smtp_conf, from)},
    {.name = "to",
     .type = NP_OPT_LIST,
     .offset = offsetof(struct smtp_conf, to),
     .flags = NP_OPT_REQUIRED,
     .help = "alert recipients"},
};

static const struct np_section_spec collector_specs[] = {
    {.name = "collector",
     .size = sizeof(struct collector_conf),
     .opts = collector_opts,
     .n_opts = NELEMS(collector_opts)},
    {.name = "targets",
     .size = sizeof(struct targets_conf),
     .opts = targets_opts,
     .n_opts = NELEMS(targets_opts)},
    {.name = "smtp",
     .size = sizeof(struct smtp_conf),
     .opts = smtp_opts,
     .n_opts = NELEMS(smtp_opts)},
};

/* The two examples of DESIGN.md, byte for byte. */
static const char agent_example[] =
    "# agent.conf\n"
    "[agent]\n"
    "id = school-0412                 ; the site this agent speaks for\n"
    "collector = https://collector.example.org:8443\n"
    "token_file = /etc/netpulse/agent.token\n"
    "ca_file = /etc/netpulse/ca.pem   ; empty: system store\n"
    "spool_dir = /var/lib/netpulse/spool\n"
    "spool_max = 256MiB\n"
    "batch_interval = 10s\n"
    "\n"
    "[snmp edge-router]               ; one section per polled device\n"
    "host = 192.0.2.1\n"
    "port = 161\n"
    "version = 2c                     ; 1, 2c or 3\n"
    "community = public\n"
    "interval = 60s\n"
    "interfaces = *                   ; globs on ifName/ifAlias/ifDescr; \"!lo*\" excludes\n"
    "\n"
    "[snmp core-switch]\n"
    "host = 192.0.2.2\n"
    "version = 3\n"
    "user = netpulse\n"
    "auth_protocol = SHA-256\n"
    "auth_password_file = /etc/netpulse/snmp-auth\n"
    "priv_protocol = AES-128\n"
    "priv_password_file = /etc/netpulse/snmp-priv\n"
    "\n"
    "[pcap wan]\n"
    "interface = eth0\n"
    "filter = not port 22\n"
    "sample = 1\n"
    "local_prefixes = 10.0.0.0/8, 2001:db8::/32\n"
    "export_interval = 60s\n"
    "\n"
    "[probe upstream]\n"
    "type = icmp                      ; icmp, tcp, http, dns\n"
    "target = 192.0.2.53\n"
    "interval = 10s\n";

static const char collector_example[] =
    "# collector.conf\n"
    "[collector]\n"
    "listen = 0.0.0.0:8443\n"
    "tls_cert = /etc/netpulse/collector.crt\n"
    "tls_key = /etc/netpulse/collector.key\n"
    "data_dir = /var/lib/netpulse\n"
    "rrdcached =                      ; e.g. unix:/run/rrdcached.sock; empty: librrd directly\n"
    "; plain_http = yes               ; labs and tests only: no TLS (refused unless set)\n"
    "\n"
    "[targets]\n"
    "uptime = 99.5%\n"
    "growth_years = 5\n"
    "growth_elementary = 400%\n"
    "growth_middle = 400%\n"
    "growth_high = 900%\n"
    "\n"
    "[smtp]\n"
    "url = smtp://mail.example.org:587\n"
    "from = netpulse@example.org\n"
    "to = noc@example.org\n";

/* ---- helpers ---- */

static char tmpdir[64];

/* Returns text with every `from` replaced by `to`; caller frees. */
static char *replace_all(const char *text, const char *from, const char *to)
{
    size_t lf = strlen(from), lt = strlen(to), n = 0;
    for (const char *p = strstr(text, from); p; p = strstr(p + lf, from)) {
        n++;
    }
    char *out = malloc(strlen(text) + n * lt + 1);
    char *o = out;
    const char *p = text;
    for (const char *hit = strstr(p, from); hit; hit = strstr(p, from)) {
        memcpy(o, p, (size_t)(hit - p));
        o += hit - p;
        memcpy(o, to, lt);
        o += lt;
        p = hit + lf;
    }
    size_t rest = strlen(p);
    memcpy(o, p, rest + 1);
    return out;
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        CHECK(fwrite(data, 1, len, f) == len);
        fclose(f);
    }
}

static char *tmp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
    return buf;
}

/* ---- the DESIGN.md examples ---- */

static void check_agent_example(const struct np_config *cfg, const char *token_file_dir)
{
    const struct agent_conf *a = np_config_section(cfg, "agent");
    CHECK(a != NULL);
    if (!a) {
        return;
    }
    CHECK_STR(a->id, "school-0412");
    CHECK_STR(a->collector, "https://collector.example.org:8443");
    CHECK_STR(a->token, "tok-123");
    CHECK_STR(a->spool_dir, "/var/lib/netpulse/spool");
    CHECK_U64(a->spool_max, 268435456);
    CHECK_INT(a->batch_interval_ms, 10000);
    char want[256];
    snprintf(want, sizeof want, "%sca.pem", token_file_dir);
    CHECK_STR(a->ca_file, want);
    CHECK_INT(np_config_line(cfg, a, NULL), 2);
    CHECK_INT(np_config_line(cfg, a, "id"), 3);
    CHECK_INT(np_config_line(cfg, a, "token"), 5);
    CHECK_INT(np_config_line(cfg, a, "token_file"), 5);
    CHECK_INT(np_config_line(cfg, a, "batch_interval"), 9);
    CHECK_INT(np_config_line(cfg, a, "nonexistent"), 0);

    CHECK_INT(np_config_count(cfg, "snmp"), 2);
    const struct snmp_conf *edge = np_config_instance(cfg, "snmp", 0);
    const struct snmp_conf *core = np_config_instance(cfg, "snmp", 1);
    CHECK(edge && core);
    CHECK(np_config_instance(cfg, "snmp", 2) == NULL);
    if (edge && core) {
        CHECK_STR(edge->name, "edge-router");
        CHECK_STR(edge->host, "192.0.2.1");
        CHECK_INT(edge->port, 161);
        CHECK_INT(edge->version, 1); /* "2c", the comment stripped */
        CHECK_STR(edge->community, "public");
        CHECK_INT(edge->interval_ms, 60000);
        CHECK_INT(edge->interfaces.count, 1);
        if (edge->interfaces.count == 1) {
            CHECK_STR(edge->interfaces.items[0], "*");
        }
        CHECK_STR(edge->auth_password, "");
        CHECK_U64(edge->circuit_rate_bps, 0);
        CHECK_INT(np_config_line(cfg, edge, NULL), 11);
        CHECK_INT(np_config_line(cfg, edge, "interfaces"), 17);
        CHECK_INT(np_config_line(cfg, edge, "user"), 0);

        CHECK_STR(core->name, "core-switch");
        CHECK_STR(core->host, "192.0.2.2");
        CHECK_INT(core->port, 161); /* default */
        CHECK_INT(core->version, 2);
        CHECK_STR(core->user, "netpulse");
        CHECK_INT(core->auth_protocol, 3);
        CHECK_STR(core->auth_password, "authpass"); /* first line, CR dropped */
        CHECK_INT(core->priv_protocol, 2);
        CHECK_STR(core->priv_password, "privpass"); /* no trailing newline in file */
        CHECK_STR(core->community, "public");       /* default */
        CHECK_INT(core->interval_ms, 60000);
        CHECK_INT(np_config_line(cfg, core, NULL), 19);
        CHECK_INT(np_config_line(cfg, core, "auth_password"), 24);
        CHECK_INT(np_config_line(cfg, core, "priv_password_file"), 26);
        CHECK_INT(np_config_line(cfg, core, "community"), 0);
    }

    CHECK_INT(np_config_count(cfg, "pcap"), 1);
    const struct pcap_conf *wan = np_config_instance(cfg, "pcap", 0);
    CHECK(wan != NULL);
    if (wan) {
        CHECK_STR(wan->name, "wan");
        CHECK_STR(wan->interface, "eth0");
        CHECK_STR(wan->filter, "not port 22");
        CHECK_INT(wan->sample, 1);
        CHECK_INT(wan->local_prefixes.count, 2);
        if (wan->local_prefixes.count == 2) {
            CHECK_STR(wan->local_prefixes.items[0], "10.0.0.0/8");
            CHECK_STR(wan->local_prefixes.items[1], "2001:db8::/32");
        }
        CHECK_INT(wan->export_interval_ms, 60000);
    }

    CHECK_INT(np_config_count(cfg, "probe"), 1);
    const struct probe_conf *up = np_config_instance(cfg, "probe", 0);
    CHECK(up != NULL);
    if (up) {
        CHECK_STR(up->name, "upstream");
        CHECK_INT(up->type, 0);
        CHECK_STR(up->target, "192.0.2.53");
        CHECK_INT(up->interval_ms, 10000);
    }
}

static void test_examples(void)
{
    struct np_config *cfg = NULL;
    struct np_err err = {0};
    char path[256], dir_slash[128];

    write_file(tmp_path(path, sizeof path, "agent.token"), "tok-123\n", 8);
    write_file(tmp_path(path, sizeof path, "snmp-auth"), "authpass\r\nsecond line\n", 22);
    write_file(tmp_path(path, sizeof path, "snmp-priv"), "privpass", 8);

    /* Absolute secret paths, from a string. */
    snprintf(dir_slash, sizeof dir_slash, "%s/", tmpdir);
    char *text = replace_all(agent_example, "/etc/netpulse/", dir_slash);
    CHECK_INT(
        np_config_load_string(text, "agent.conf", agent_specs, NELEMS(agent_specs), &cfg, &err), 0);
    CHECK_STR(err.msg, "");
    CHECK(cfg != NULL);
    if (cfg) {
        check_agent_example(cfg, dir_slash);
        CHECK_STR(np_config_path(cfg), "agent.conf");
    }
    np_config_free(cfg);
    free(text);

    /* Relative secret paths resolve against the config file's folder, not the
     * working directory. */
    text = replace_all(agent_example, "/etc/netpulse/", "");
    write_file(tmp_path(path, sizeof path, "agent.conf"), text, strlen(text));
    free(text);
    CHECK_INT(np_config_load(path, agent_specs, NELEMS(agent_specs), &cfg, &err), 0);
    CHECK_STR(err.msg, "");
    if (cfg) {
        check_agent_example(cfg, "");
        CHECK_STR(np_config_path(cfg), path);
    }
    np_config_free(cfg);

    /* Unchanged, the example's secrets live in /etc/netpulse. */
    if (access("/etc/netpulse/agent.token", F_OK) != 0 && errno == ENOENT) {
        CHECK_INT(np_config_load_string(agent_example, "agent.conf", agent_specs,
                                        NELEMS(agent_specs), &cfg, &err),
                  NP_ECONFIG);
        CHECK(cfg == NULL);
        CHECK_STR(err.msg, "agent.conf:5: token_file: cannot read /etc/netpulse/agent.token: "
                           "No such file or directory");
    }

    CHECK_INT(np_config_load_string(collector_example, "collector.conf", collector_specs,
                                    NELEMS(collector_specs), &cfg, &err),
              0);
    CHECK_STR(err.msg, "");
    const struct collector_conf *c = np_config_section(cfg, "collector");
    const struct targets_conf *t = np_config_section(cfg, "targets");
    const struct smtp_conf *s = np_config_section(cfg, "smtp");
    CHECK(c && t && s);
    if (c && t && s) {
        CHECK_STR(c->listen, "0.0.0.0:8443");
        CHECK_STR(c->tls_cert, "/etc/netpulse/collector.crt");
        CHECK_STR(c->tls_key, "/etc/netpulse/collector.key");
        CHECK_STR(c->data_dir, "/var/lib/netpulse");
        CHECK_STR(c->rrdcached, "");
        CHECK(!c->plain_http); /* commented out */
        CHECK_INT(np_config_line(cfg, c, "rrdcached"), 7);
        CHECK_INT(np_config_line(cfg, c, "plain_http"), 0);
        CHECK_DBL(t->uptime, 0.995, 1e-12);
        CHECK(t->uptime == 0.995);
        CHECK_INT(t->growth_years, 5);
        CHECK_DBL(t->growth_elementary, 4.0, 1e-12);
        CHECK_DBL(t->growth_middle, 4.0, 1e-12);
        CHECK_DBL(t->growth_high, 9.0, 1e-12);
        CHECK_INT(np_config_line(cfg, t, NULL), 10);
        CHECK_STR(s->url, "smtp://mail.example.org:587");
        CHECK_STR(s->from, "netpulse@example.org");
        CHECK_INT(s->to.count, 1);
        if (s->to.count == 1) {
            CHECK_STR(s->to.items[0], "noc@example.org");
        }
    }
    np_config_free(cfg);
}

/* ---- errors ---- */

enum which_spec { AGENT, COLLECTOR };

struct err_case {
    enum which_spec spec;
    const char *text;
    int rc;
    const char *msg;
};

#define X39 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
#define X40 X39 "x"
#define A "[agent]\nid = a\n" /* lines 1-2 */

static const struct err_case err_cases[] = {
    {AGENT, A "[snmp edge-router]\nhost = h\nintervall = 5s\n", NP_ECONFIG,
     "x.conf:5: unknown key \"intervall\" in [snmp edge-router]"},
    {AGENT, A "batch_interval = 10x\n", NP_ECONFIG,
     "x.conf:3: batch_interval: \"10x\" is not a duration (use 500ms, 10s, 5m, 1h, 7d)"},
    {AGENT, A "\n# c\n; c\n\n[snpm]\n", NP_ECONFIG, "x.conf:7: unknown section [snpm]"},
    {AGENT, A "[snpm edge]\n", NP_ECONFIG, "x.conf:3: unknown section [snpm edge]"},
    {AGENT, A "[snmp a]\nhost = x\nhost = y\n", NP_ECONFIG,
     "x.conf:5: duplicate key \"host\" in [snmp a]"},
    {AGENT, "[snmp a]\nhost = x\nhost = y\n" A, NP_ECONFIG,
     "x.conf:3: duplicate key \"host\" in [snmp a]"},
    {AGENT, A "[snmp a]\nhost = x\n[snmp b]\nhost = y\n\n\n[snmp a]\nhost = z\n", NP_ECONFIG,
     "x.conf:9: duplicate section [snmp a]"},
    {AGENT, A "[agent]\n", NP_ECONFIG, "x.conf:3: duplicate section [agent]"},
    {AGENT, "[snmp a]\ninterval = 0s\nhost = x\n" A, NP_ECONFIG,
     "x.conf:2: interval: 0s is below the minimum 1s"},
    {AGENT, "[snmp a]\ninterval = 999ms\nhost = x\n" A, NP_ECONFIG,
     "x.conf:2: interval: 999ms is below the minimum 1s"},
    {AGENT, "[snmp a]\ninterval = 1.5d\nhost = x\n" A, NP_ECONFIG,
     "x.conf:2: interval: 36h is above the maximum 1d"},
    {AGENT, A "[snmp a]\nhost = x\nport = 0\n", NP_ECONFIG,
     "x.conf:5: port: 0 is below the minimum 1"},
    {AGENT, A "[snmp a]\nhost = x\nport = 65536\n", NP_ECONFIG,
     "x.conf:5: port: 65536 is above the maximum 65535"},
    {AGENT, A "[snmp a]\nhost = x\nport = abc\n", NP_ECONFIG,
     "x.conf:5: port: \"abc\" is not an integer"},
    {AGENT, A "[snmp a]\nhost = x\nport = 1.0\n", NP_ECONFIG,
     "x.conf:5: port: \"1.0\" is not an integer"},
    {AGENT, A "[snmp a]\nhost = x\nport = 99999999999999999999\n", NP_ECONFIG,
     "x.conf:5: port: \"99999999999999999999\" is out of range"},
    {AGENT, A "[snmp a]\nhost = x\nversion = 4\n", NP_ECONFIG,
     "x.conf:5: version: \"4\" is not one of 1, 2c, 3"},
    {AGENT, A "[snmp a]\nhost = x\ninterfaces = eth0,,eth1\n", NP_ECONFIG,
     "x.conf:5: interfaces: empty item in list \"eth0,,eth1\""},
    {AGENT, A "[snmp a]\nhost = x\ninterfaces = eth0,\n", NP_ECONFIG,
     "x.conf:5: interfaces: empty item in list \"eth0,\""},
    {AGENT, A "[snmp a]\nhost = x\ncircuit_rate = 100MBps\n", NP_ECONFIG,
     "x.conf:5: circuit_rate: \"100MBps\" is not a rate (use 9600bps, 512kbps, 100Mbps, 1Gbps)"},
    {AGENT, A "[snmp a]\nhost = x\ncircuit_rate = 1Tbps\n", NP_ECONFIG,
     "x.conf:5: circuit_rate: 1Tbps is above the maximum 400Gbps"},
    {AGENT, A "spool_max = 256M\n", NP_ECONFIG,
     "x.conf:3: spool_max: \"256M\" is not a size (use 512B, 64KiB, 256MiB, 1GiB)"},
    {AGENT, A "spool_max = 1023KiB\n", NP_ECONFIG,
     "x.conf:3: spool_max: 1023KiB is below the minimum 1MiB"},
    {AGENT, A "[snmp a]\nport = 1\n", NP_ECONFIG,
     "x.conf:3: missing required key \"host\" in [snmp a]"},
    {AGENT, "[agent]\n[snmp a]\nhost = h\n", NP_ECONFIG,
     "x.conf:1: missing required key \"id\" in [agent]"},
    {AGENT, A "[probe up]\ntype = tcp\n\n[pcap wan]\ninterface = eth0\n", NP_ECONFIG,
     "x.conf:3: missing required key \"target\" in [probe up]"},
    {AGENT, "", NP_ECONFIG, "x.conf: missing section [agent]"},
    {AGENT, "# only a comment\n\n", NP_ECONFIG, "x.conf: missing section [agent]"},
    {AGENT, A "[snmp]\nhost = x\n", NP_ECONFIG,
     "x.conf:3: section [snmp] needs a name: [snmp NAME]"},
    {AGENT, "[agent x]\nid = a\n", NP_ECONFIG,
     "x.conf:1: section [agent] takes no name (found [agent x])"},
    {AGENT, "id = a\n[agent]\n", NP_ECONFIG, "x.conf:1: key \"id\" outside any section"},
    {AGENT, A "junk line\n", NP_ECONFIG, "x.conf:3: syntax error: expected \"key = value\""},
    {AGENT, A "junk\nbogus = 1\n", NP_ECONFIG, "x.conf:3: syntax error: expected \"key = value\""},
    {AGENT, A "bogus = 1\njunk\n", NP_ECONFIG, "x.conf:3: unknown key \"bogus\" in [agent]"},
    {AGENT, A "junk\n[nope]\n", NP_ECONFIG, "x.conf:3: syntax error: expected \"key = value\""},
    {AGENT, A "junk\n[snmp a]\n", NP_ECONFIG, "x.conf:3: syntax error: expected \"key = value\""},
    {AGENT, A "; comment = no\n", 0, NULL},
    {AGENT, A "x ; = 1\n", NP_ECONFIG, "x.conf:3: syntax error: expected \"key = value\""},
    {AGENT, "[agent\nid = a\n", NP_ECONFIG, "x.conf:1: syntax error: section header without \"]\""},
    {AGENT, "[agent] x\nid = a\n", NP_ECONFIG,
     "x.conf:1: syntax error: text after the section header"},
    {AGENT, "[agent]] ; c\nid = a\n", NP_ECONFIG,
     "x.conf:1: syntax error: text after the section header"},
    {AGENT, "[agent] ; fine\nid = a\n[ ]\n", NP_ECONFIG,
     "x.conf:3: syntax error: empty section header []"},
    {AGENT, A "[snmp a b]\n", NP_ECONFIG,
     "x.conf:3: invalid name \"a b\" in [snmp ...] (up to 63 letters, digits, - _ . : @)"},
    {AGENT, A "[snmp a/b]\n", NP_ECONFIG,
     "x.conf:3: invalid name \"a/b\" in [snmp ...] (up to 63 letters, digits, - _ . : @)"},
    {AGENT, A "[snmp " X40 "xxxxxxxxxxxxxxxxxxxxxxxx]\n", NP_ECONFIG,
     "x.conf:3: invalid name \"" X40 "...\" in [snmp ...] (up to 63 letters, digits, - _ . : @)"},
    {AGENT, A "[snmp " X40 "xxxxxxxxxxxxxxxxxxxxxxx]\nhost = h\n", 0, NULL}, /* 63: fits */
    {AGENT, A "[snmp a]\nhost = x\ncommunity = s3cret\ncommunity_file = /nonexistent\n", NP_ECONFIG,
     "x.conf:6: community and community_file both given in [snmp a] (line 5)"},
    {AGENT, A "[snmp a]\nhost = x\ncommunity_file = /nonexistent/np-test/c\n", NP_ECONFIG,
     "x.conf:5: community_file: cannot read /nonexistent/np-test/c: No such file or directory"},
    {AGENT, A "[snmp a]\nhost = x\ncommunity_file = /\n", NP_ECONFIG,
     "x.conf:5: community_file: cannot read /: not a regular file"},
    {AGENT, A "[snmp a]\nhost = x\ncommunity_file =\n", NP_ECONFIG,
     "x.conf:5: community_file: empty path"},
    {AGENT, A "[snmp a]\nhost_file = /etc/hostname\n", NP_ECONFIG,
     "x.conf:4: unknown key \"host_file\" in [snmp a]"},
    {AGENT, A "[snmp a]\nhost = x\nCommunity = y\n", NP_ECONFIG,
     "x.conf:5: unknown key \"Community\" in [snmp a]"},
    {AGENT, A "batch_interval = \x01" X40 "yy\n", NP_ECONFIG,
     "x.conf:3: batch_interval: \"?" X39 "...\" is not a duration (use 500ms, 10s, 5m, 1h, 7d)"},
    {AGENT, A "batch_interval = 10s # ten\n", NP_ECONFIG,
     "x.conf:3: batch_interval: \"10s # ten\" is not a duration (use 500ms, 10s, 5m, 1h, 7d)"},
    {AGENT, A "batch_interval =\n", NP_ECONFIG,
     "x.conf:3: batch_interval: \"\" is not a duration (use 500ms, 10s, 5m, 1h, 7d)"},
    {COLLECTOR, "[smtp]\nto = a\n[collector]\nplain_http = maybe\n", NP_ECONFIG,
     "x.conf:4: plain_http: \"maybe\" is not a boolean (use yes/no, true/false, on/off, 1/0)"},
    {COLLECTOR, "[smtp]\nto = a\n[targets]\nuptime = 99.5\n", NP_ECONFIG,
     "x.conf:4: uptime: 9950% is above the maximum 100%"},
    {COLLECTOR, "[smtp]\nto = a\n[targets]\nuptime = abc\n", NP_ECONFIG,
     "x.conf:4: uptime: \"abc\" is not a ratio (use 99.5% or 0.995)"},
    {COLLECTOR, "[smtp]\nto = a\n[targets]\ngrowth_years = 1.5\n", NP_ECONFIG,
     "x.conf:4: growth_years: \"1.5\" is not an integer"},
    {COLLECTOR, "[smtp]\nto = a\n[targets]\ngrowth_years = 0\n", NP_ECONFIG,
     "x.conf:4: growth_years: 0 is below the minimum 1"},
    {COLLECTOR, "[collector]\n", NP_ECONFIG,
     "x.conf: missing section [smtp] (key \"to\" is required)"},
    {COLLECTOR, "[smtp]\nto = a\n[collector]\n", 0, NULL},
};

static void test_errors(void)
{
    for (size_t i = 0; i < NELEMS(err_cases); i++) {
        const struct err_case *c = &err_cases[i];
        struct np_config *cfg = (struct np_config *)&cfg; /* must be reset to NULL on error */
        struct np_err err = {0};
        const struct np_section_spec *specs = c->spec == AGENT ? agent_specs : collector_specs;
        size_t n = c->spec == AGENT ? NELEMS(agent_specs) : NELEMS(collector_specs);
        int rc = np_config_load_string(c->text, "x.conf", specs, n, &cfg, &err);
        if (rc != c->rc) {
            fprintf(stderr, "case %zu: ", i);
        }
        CHECK_INT(rc, c->rc);
        CHECK_INT(err.code, c->rc);
        if (c->rc != 0) {
            CHECK(cfg == NULL);
            if (!c->msg || strcmp(err.msg, c->msg) != 0) {
                fprintf(stderr, "case %zu: ", i);
            }
            CHECK_STR(err.msg, c->msg);
            /* Secret values never reach a message. */
            CHECK(strstr(err.msg, "s3cret") == NULL);
        } else {
            CHECK(cfg != NULL);
            CHECK_STR(err.msg, "");
        }
        np_config_free(cfg == (struct np_config *)&cfg ? NULL : cfg);
    }
}

static void test_line_limits(void)
{
    struct np_config *cfg = NULL;
    struct np_err err = {0};
    char text[600];
    char value[400];

    /* 199 bytes after trimming fit libinih's 200-byte buffer; 200 do not. */
    memset(value, 'v', sizeof value);
    snprintf(text, sizeof text, "[agent]\n   id = %.*s   \n", 199 - 5, value);
    CHECK_INT(np_config_load_string(text, "x.conf", agent_specs, NELEMS(agent_specs), &cfg, &err),
              0);
    const struct agent_conf *a = np_config_section(cfg, "agent");
    CHECK(a && strlen(a->id) == 194);
    np_config_free(cfg);
    snprintf(text, sizeof text, "[agent]\nid = %.*s\n", 200 - 5, value);
    CHECK_INT(np_config_load_string(text, "x.conf", agent_specs, NELEMS(agent_specs), &cfg, &err),
              NP_ECONFIG);
    CHECK_STR(err.msg, "x.conf:2: line longer than 199 bytes");

    /* The whole text is capped. */
    size_t big = NP_CONFIG_MAX_FILE + 1;
    char *huge = malloc(big + 1);
    memset(huge, '\n', big);
    huge[big] = '\0';
    CHECK_INT(np_config_load_string(huge, "x.conf", agent_specs, NELEMS(agent_specs), &cfg, &err),
              NP_ETOOBIG);
    CHECK_STR(err.msg, "x.conf: larger than 1048576 bytes");
    CHECK(cfg == NULL);
    char path[256];
    write_file(tmp_path(path, sizeof path, "huge.conf"), huge, big);
    CHECK_INT(np_config_load(path, agent_specs, NELEMS(agent_specs), &cfg, &err), NP_ETOOBIG);
    CHECK_CONTAINS(err.msg, "huge.conf: larger than 1048576 bytes");
    /* Exactly at the cap is fine (and then lacks [agent]). */
    memcpy(huge, "[agent]\nid=a\n", 13);
    write_file(path, huge, big - 1);
    CHECK_INT(np_config_load(path, agent_specs, NELEMS(agent_specs), &cfg, &err), 0);
    np_config_free(cfg);
    free(huge);

    /* File-only problems: NUL bytes, a missing file. */
    write_file(tmp_path(path, sizeof path, "nul.conf"),
               "[agent]\nid = a\0"
               "b\n",
               16);
    CHECK_INT(np_config_load(path, agent_specs, NELEMS(agent_specs), &cfg, &err), NP_ECONFIG);
    char want[300];
    snprintf(want, sizeof want, "%s:2: NUL byte in line", path);
    CHECK_STR(err.msg, want);
    CHECK_INT(np_config_load("/nonexistent/np.conf", agent_specs, NELEMS(agent_specs), &cfg, &err),
              -ENOENT);
    CHECK_INT(err.code, -ENOENT);
    CHECK_STR(err.msg, "/nonexistent/np.conf: cannot read: No such file or directory");
    CHECK(cfg == NULL);
    CHECK_INT(np_config_load(tmpdir, agent_specs, NELEMS(agent_specs), &cfg, &err), -EISDIR);
    /* err may be NULL. */
    CHECK_INT(np_config_load_string("", "x", agent_specs, NELEMS(agent_specs), &cfg, NULL),
              NP_ECONFIG);
}

static void test_syntax_forms(void)
{
    struct np_config *cfg = NULL;
    struct np_err err = {0};
    static const char text[] = "\xEF\xBB\xBF"
                               "[agent]\r\n"
                               "  id: school-1   ; colon form, comment\r\n"
                               "\t[snmp a]   # header comment\n"
                               "    host = h\n"
                               "    port = 162\n"
                               "version = 2C\n"
                               "interfaces = eth0 , eth1,eth2 ; list\n"
                               "community = pub;lic\n"
                               "user = a # not a comment\n"
                               "auth_password = \n"
                               "[pcap p]\n"
                               "interface = eth0\n"
                               "local_prefixes =\n";
    CHECK_INT(np_config_load_string(text, NULL, agent_specs, NELEMS(agent_specs), &cfg, &err), 0);
    CHECK_STR(err.msg, "");
    const struct agent_conf *a = np_config_section(cfg, "agent");
    const struct snmp_conf *s = np_config_instance(cfg, "snmp", 0);
    const struct pcap_conf *p = np_config_instance(cfg, "pcap", 0);
    CHECK(a && s && p);
    if (a && s && p) {
        CHECK_STR(a->id, "school-1");
        CHECK_INT(np_config_line(cfg, a, NULL), 1);
        CHECK_INT(np_config_line(cfg, s, NULL), 3);
        CHECK_STR(s->host, "h");
        CHECK_INT(s->port, 162); /* indented: a key, not a continuation of host */
        CHECK_INT(np_config_line(cfg, s, "port"), 5);
        CHECK_INT(s->version, 1); /* ENUM ignores case */
        CHECK_INT(s->interfaces.count, 3);
        if (s->interfaces.count == 3) {
            CHECK_STR(s->interfaces.items[0], "eth0");
            CHECK_STR(s->interfaces.items[1], "eth1");
            CHECK_STR(s->interfaces.items[2], "eth2");
        }
        CHECK_STR(s->community, "pub;lic"); /* ';' only starts a comment after a blank */
        CHECK_STR(s->user, "a # not a comment");
        CHECK_STR(s->auth_password, "");
        CHECK_INT(p->local_prefixes.count, 0);
        CHECK(p->local_prefixes.items == NULL);
    }
    CHECK_STR(np_config_path(cfg), "<string>");
    np_config_free(cfg);

    static const struct {
        const char *v;
        bool want;
    } bools[] = {
        {"yes", true}, {"YES", true},    {"true", true}, {"On", true}, {"1", true},
        {"no", false}, {"false", false}, {"OFF", false}, {"0", false},
    };
    for (size_t i = 0; i < NELEMS(bools); i++) {
        char t[128];
        snprintf(t, sizeof t, "[smtp]\nto=a\n[collector]\nplain_http = %s\n", bools[i].v);
        CHECK_INT(
            np_config_load_string(t, "x", collector_specs, NELEMS(collector_specs), &cfg, &err), 0);
        const struct collector_conf *c = np_config_section(cfg, "collector");
        CHECK(c && c->plain_http == bools[i].want);
        np_config_free(cfg);
    }

    /* Negative integers without a range. */
    static const struct np_opt int_opts[] = {
        {.name = "n", .type = NP_OPT_INT, .offset = 0},
    };
    static const struct np_section_spec int_spec[] = {
        {.name = "s", .size = sizeof(int64_t), .opts = int_opts, .n_opts = 1},
    };
    CHECK_INT(
        np_config_load_string("[s]\nn = -9223372036854775808\n", "x", int_spec, 1, &cfg, &err), 0);
    const int64_t *n = np_config_section(cfg, "s");
    CHECK(n && *n == INT64_MIN);
    np_config_free(cfg);
}

static void test_defaults_and_queries(void)
{
    struct np_config *cfg = NULL;
    struct np_err err = {0};

    CHECK_INT(np_config_load_string("[agent]\nid = a\n", "x", agent_specs, NELEMS(agent_specs),
                                    &cfg, &err),
              0);
    const struct agent_conf *a = np_config_section(cfg, "agent");
    CHECK(a != NULL);
    if (a) {
        CHECK_STR(a->collector, ""); /* NULL default: empty, never NULL */
        CHECK_STR(a->token, "");
        CHECK_STR(a->spool_dir, "/var/lib/netpulse/spool");
        CHECK_U64(a->spool_max, 268435456);
        CHECK_INT(a->batch_interval_ms, 10000);
        CHECK_INT(np_config_line(cfg, a, "spool_max"), 0);
    }
    CHECK(np_config_instance(cfg, "agent", 0) == a);
    CHECK(np_config_instance(cfg, "agent", 1) == NULL);
    CHECK_INT(np_config_count(cfg, "agent"), 1);
    CHECK_INT(np_config_count(cfg, "snmp"), 0);
    CHECK_INT(np_config_count(cfg, "nope"), 0);
    CHECK(np_config_section(cfg, "snmp") == NULL);
    CHECK(np_config_section(cfg, "nope") == NULL);
    CHECK(np_config_instance(cfg, "snmp", 0) == NULL);
    CHECK_INT(np_config_line(cfg, &err, "id"), 0);
    CHECK_INT(np_config_line(cfg, NULL, "id"), 0);
    np_config_free(cfg);
    np_config_free(NULL);

    /* Singletons absent from the file still exist, with defaults. */
    CHECK_INT(np_config_load_string("[smtp]\nto = a, b\n", "x", collector_specs,
                                    NELEMS(collector_specs), &cfg, &err),
              0);
    const struct targets_conf *t = np_config_section(cfg, "targets");
    const struct collector_conf *c = np_config_section(cfg, "collector");
    CHECK(t && c);
    if (t && c) {
        CHECK(t->uptime == 0.995);
        CHECK_DBL(t->growth_high, 9.0, 1e-12);
        CHECK_INT(np_config_line(cfg, t, NULL), 0);
        CHECK_STR(c->rrdcached, "");
        CHECK(!c->plain_http);
    }
    np_config_free(cfg);

    /* Many named instances keep file order. */
    char text[4096];
    size_t o = (size_t)snprintf(text, sizeof text, "[agent]\nid = a\n");
    for (int i = 0; i < 50; i++) {
        o += (size_t)snprintf(text + o, sizeof text - o, "[probe p%d]\ntarget = t%d\n", i, i);
    }
    CHECK_INT(np_config_load_string(text, "x", agent_specs, NELEMS(agent_specs), &cfg, &err), 0);
    CHECK_INT(np_config_count(cfg, "probe"), 50);
    const struct probe_conf *p49 = np_config_instance(cfg, "probe", 49);
    CHECK(p49 != NULL);
    if (p49) {
        CHECK_STR(p49->name, "p49");
        CHECK_STR(p49->target, "t49");
        CHECK_INT(np_config_line(cfg, p49, NULL), 3 + 2 * 49);
    }
    np_config_free(cfg);
}

static void test_secret_files(void)
{
    struct np_config *cfg = NULL;
    struct np_err err = {0};
    char path[256], text[512], want[512];
    char data[NP_CONFIG_MAX_SECRET + 1];

    /* Exactly at the cap: accepted (first line only). */
    memset(data, 'k', sizeof data);
    write_file(tmp_path(path, sizeof path, "cap"), data, NP_CONFIG_MAX_SECRET);
    snprintf(text, sizeof text, "[agent]\nid = a\ntoken_file = %s\n", path);
    CHECK_INT(np_config_load_string(text, "x", agent_specs, NELEMS(agent_specs), &cfg, &err), 0);
    const struct agent_conf *a = np_config_section(cfg, "agent");
    CHECK(a && strlen(a->token) == NP_CONFIG_MAX_SECRET);
    np_config_free(cfg);

    /* One byte more, even past the first line: refused. */
    data[10] = '\n';
    write_file(path, data, NP_CONFIG_MAX_SECRET + 1);
    CHECK_INT(np_config_load_string(text, "x", agent_specs, NELEMS(agent_specs), &cfg, &err),
              NP_ECONFIG);
    snprintf(want, sizeof want, "x:3: token_file: %s is larger than 4096 bytes", path);
    CHECK_STR(err.msg, want);

    write_file(path, "", 0);
    CHECK_INT(np_config_load_string(text, "x", agent_specs, NELEMS(agent_specs), &cfg, &err), 0);
    a = np_config_section(cfg, "agent");
    CHECK(a && strcmp(a->token, "") == 0);
    np_config_free(cfg);

    write_file(path, "ab\0cd\n", 6);
    CHECK_INT(np_config_load_string(text, "x", agent_specs, NELEMS(agent_specs), &cfg, &err),
              NP_ECONFIG);
    snprintf(want, sizeof want, "x:3: token_file: %s contains a NUL byte", path);
    CHECK_STR(err.msg, want);

    /* " ; " inside a secret survives only through a file. */
    write_file(path, "pass ; word\n\n", 13);
    CHECK_INT(np_config_load_string(text, "x", agent_specs, NELEMS(agent_specs), &cfg, &err), 0);
    a = np_config_section(cfg, "agent");
    CHECK(a && strcmp(a->token, "pass ; word") == 0);
    np_config_free(cfg);

    /* A relative path from a string config is relative to name_for_errors' folder. */
    write_file(path, "rel\n", 4);
    char name[300];
    snprintf(name, sizeof name, "%s/virtual.conf", tmpdir);
    CHECK_INT(np_config_load_string("[agent]\nid = a\ntoken_file = cap\n", name, agent_specs,
                                    NELEMS(agent_specs), &cfg, &err),
              0);
    a = np_config_section(cfg, "agent");
    CHECK(a && strcmp(a->token, "rel") == 0);
    np_config_free(cfg);
    CHECK_INT(np_config_load_string("[agent]\nid = a\ntoken_file = missing\n", name, agent_specs,
                                    NELEMS(agent_specs), &cfg, &err),
              NP_ECONFIG);
    snprintf(want, sizeof want,
             "%s:3: token_file: cannot read %s/missing: No such file or directory", name, tmpdir);
    CHECK_STR(err.msg, want);

    /* The file form first, then the inline one: also refused, and the file's
     * contents appear nowhere. */
    snprintf(text, sizeof text, "[agent]\nid = a\ntoken_file = %s/cap\ntoken = s3cret\n", tmpdir);
    write_file(tmp_path(path, sizeof path, "cap"), "filesecret\n", 11);
    CHECK_INT(np_config_load_string(text, "x", agent_specs, NELEMS(agent_specs), &cfg, &err),
              NP_ECONFIG);
    CHECK_STR(err.msg, "x:4: token and token_file both given in [agent] (line 3)");

    /* A FIFO must neither hang the load nor be read. */
    tmp_path(path, sizeof path, "fifo");
    if (mkfifo(path, 0600) == 0) {
        snprintf(text, sizeof text, "[agent]\nid = a\ntoken_file = %s\n", path);
        CHECK_INT(np_config_load_string(text, "x", agent_specs, NELEMS(agent_specs), &cfg, &err),
                  NP_ECONFIG);
        snprintf(want, sizeof want, "x:3: token_file: cannot read %s: not a regular file", path);
        CHECK_STR(err.msg, want);
        unlink(path);
    }
}

static void test_bad_specs(void)
{
    struct np_config *cfg = NULL;
    struct np_err err = {0};

    static const struct np_opt bad_default[] = {
        {.name = "d", .type = NP_OPT_DURATION, .offset = 0, .def = "10q"},
    };
    static const struct np_opt bad_offset[] = {
        {.name = "d", .type = NP_OPT_DURATION, .offset = 4},
    };
    static const struct np_opt no_choices[] = {
        {.name = "e", .type = NP_OPT_ENUM, .offset = 0},
    };
    static const struct np_opt twice[] = {
        {.name = "a", .type = NP_OPT_BOOL, .offset = 0},
        {.name = "a", .type = NP_OPT_BOOL, .offset = 1},
    };
    static const struct np_opt out_of_range_default[] = {
        {.name = "d", .type = NP_OPT_DURATION, .offset = 0, .def = "0s", .min = 1000, .max = 2000},
    };
    const struct {
        struct np_section_spec spec;
        const char *msg;
    } cases[] = {
        {{.name = "bad", .size = 8, .opts = bad_default, .n_opts = 1},
         "x: invalid spec: [bad] default of d: \"10q\" is not a duration (use 500ms, 10s, 5m, 1h, "
         "7d)"},
        {{.name = "bad", .size = 8, .opts = out_of_range_default, .n_opts = 1},
         "x: invalid spec: [bad] default of d: 0s is below the minimum 1s"},
        {{.name = "bad", .size = 8, .opts = bad_offset, .n_opts = 1},
         "x: invalid spec: [bad] option 0 (d)"},
        {{.name = "bad", .size = 8, .opts = no_choices, .n_opts = 1},
         "x: invalid spec: [bad] option 0 (e)"},
        {{.name = "bad", .size = 8, .opts = twice, .n_opts = 2}, "x: invalid spec: [bad] a twice"},
        {{.name = "bad", .named = true, .size = 8, .name_offset = 4, .opts = twice, .n_opts = 1},
         "x: invalid spec: [bad] name_offset"},
        {{.name = NULL, .size = 8}, "x: invalid spec: section 0"},
    };
    for (size_t i = 0; i < NELEMS(cases); i++) {
        CHECK_INT(np_config_load_string("", "x", &cases[i].spec, 1, &cfg, &err), NP_ECONFIG);
        CHECK(cfg == NULL);
        CHECK_STR(err.msg, cases[i].msg);
    }
    static const struct np_section_spec dup[] = {
        {.name = "s", .size = 8},
        {.name = "s", .size = 8},
    };
    CHECK_INT(np_config_load_string("", "x", dup, 2, &cfg, &err), NP_ECONFIG);
    CHECK_STR(err.msg, "x: invalid spec: section [s] twice");

    static const struct np_section_spec need_site[] = {
        {.name = "site", .named = true, .required = true, .size = sizeof(char *)},
    };
    CHECK_INT(np_config_load_string("", "x", need_site, 1, &cfg, &err), NP_ECONFIG);
    CHECK_STR(err.msg, "x: missing section [site NAME]");
    CHECK_INT(np_config_load_string("[site a]\n[site b]\n", "x", need_site, 1, &cfg, &err), 0);
    CHECK_INT(np_config_count(cfg, "site"), 2);
    np_config_free(cfg);
}

static void test_describe(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f != NULL);
    if (!f) {
        return;
    }
    np_config_describe(agent_specs, NELEMS(agent_specs), f);
    np_config_describe(collector_specs, NELEMS(collector_specs), f);
    fclose(f);
    CHECK_CONTAINS(buf, "[agent]                         ; required: this agent\n");
    CHECK_CONTAINS(buf, "id =                            ; required string. the site this agent "
                        "speaks for\n");
    CHECK_CONTAINS(buf, "spool_max = 256MiB              ; size 1MiB..1TiB. spool cap\n");
    CHECK_CONTAINS(buf, "batch_interval = 10s            ; duration 1s..1h. upload period\n");
    CHECK_CONTAINS(buf, "[snmp NAME]                     ; any number: one section per polled "
                        "device\n");
    CHECK_CONTAINS(buf, "port = 161                      ; integer 1..65535. UDP port\n");
    CHECK_CONTAINS(buf, "version = 2c                    ; enum: 1, 2c, 3. SNMP version\n");
    CHECK_CONTAINS(buf, "community = public              ; secret, or community_file = PATH. "
                        "v1/v2c community\n");
    CHECK_CONTAINS(buf, "circuit_rate =                  ; rate 0bps..400Gbps. provisioned rate");
    CHECK_CONTAINS(buf, "uptime = 99.5%                  ; ratio 0%..100%\n");
    CHECK_CONTAINS(buf, "growth_elementary = 400%        ; ratio from 0%\n");
    CHECK_CONTAINS(buf, "plain_http = no                 ; boolean\n");
    CHECK_CONTAINS(buf, "to =                            ; required list. alert recipients\n");
    free(buf);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/np_test_config.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_examples();
    test_errors();
    test_line_limits();
    test_syntax_forms();
    test_defaults_and_queries();
    test_secret_files();
    test_bad_specs();
    test_describe();

    static const char *const files[] = {"agent.token", "snmp-auth", "snmp-priv", "agent.conf",
                                        "huge.conf",   "nul.conf",  "cap",       "fifo"};
    char path[256];
    for (size_t i = 0; i < NELEMS(files); i++) {
        unlink(tmp_path(path, sizeof path, files[i]));
    }
    CHECK(rmdir(tmpdir) == 0);
    return check_done("test_config");
}
