#include "flow_config.h"

#include "flow_capture.h"

#include <string.h>

#define FIELD(f) offsetof(struct np_flow_settings, f)

static const char *const privacy_modes[] = {"prefix", "hash", "none", NULL};

const struct np_opt np_flow_opts[] = {
    {"interface", NP_OPT_STRING, FIELD(interface), NULL, 0, 0, NULL, NP_OPT_REQUIRED,
     "interface to capture on (the WAN side), e.g. eth0"},
    {"filter", NP_OPT_STRING, FIELD(filter), "", 0, 0, NULL, 0,
     "BPF capture filter (pcap-filter(7)); empty: every packet"},
    {"snaplen", NP_OPT_INT, FIELD(snaplen), "128", 64, 262144, NULL, 0,
     "bytes captured per packet; headers only by default (bytes are counted at wire length)"},
    {"sample", NP_OPT_INT, FIELD(sample), "1", 1, 1000000, NULL, 0,
     "decode 1 packet in N at random; flow figures are scaled by N"},
    {"promiscuous", NP_OPT_BOOL, FIELD(promiscuous), "no", 0, 0, NULL, 0,
     "put the interface into promiscuous mode"},
    {"export_interval", NP_OPT_DURATION, FIELD(export_interval_ms), "60s", 1000, 3600000, NULL, 0,
     "how often the flow summary is exported"},
    /* The defaults keep a live capture of 100,000 active flows under 32 MiB
     * RSS (tests/bench/bench_flow_live.sh): the table holds them (8.5 MiB,
     * plus 6.6 MiB for the snapshot handed to the loop), and the ring, whose
     * pages all count as resident, holds 0.2 s of 100,000 frames/s. */
    {"flow_table_size", NP_OPT_INT, FIELD(flow_table_size), "100000", 16, 16777216, NULL, 0,
     "flows kept per interval; past it the smallest nearby flow is evicted (counted)"},
    {"buffer_size", NP_OPT_SIZE, FIELD(buffer_bytes), "4MiB", 1 << 20, 1073741824.0, NULL, 0,
     "kernel capture buffer (TPACKET_V3 ring; all of it is resident memory)"},
    {"local_prefixes", NP_OPT_LIST, FIELD(local_prefixes), NULL, 0, 0, NULL, 0,
     "CIDRs of the school's own addresses, e.g. 10.0.0.0/8, 2001:db8::/32 (direction, privacy)"},
    {"privacy", NP_OPT_ENUM, FIELD(privacy), "prefix", 0, 0, privacy_modes, 0,
     "how local addresses are reported: prefix, hash (HMAC with privacy_secret) or none"},
    {"privacy_prefix_v4", NP_OPT_INT, FIELD(privacy_prefix_v4), "24", 0, 32, NULL, 0,
     "prefix length a local IPv4 address is reported as (privacy = prefix)"},
    {"privacy_prefix_v6", NP_OPT_INT, FIELD(privacy_prefix_v6), "64", 0, 128, NULL, 0,
     "prefix length a local IPv6 address is reported as (privacy = prefix)"},
    {"privacy_secret", NP_OPT_SECRET, FIELD(privacy_secret), "", 0, 0, NULL, 0,
     "site secret keying the address hash (privacy = hash); or privacy_secret_file"},
    {"top_n", NP_OPT_INT, FIELD(top_n), "10", 0, 10000, NULL, 0,
     "top talkers and top flows reported per interval"},
};
_Static_assert(sizeof np_flow_opts / sizeof np_flow_opts[0] == NP_FLOW_N_OPTS, "NP_FLOW_N_OPTS");

static const struct np_flow_settings defaults = {
    .name = "default",
    .interface = "",
    .filter = "",
    .snaplen = 128,
    .sample = 1,
    .promiscuous = false,
    .export_interval_ms = 60000,
    .flow_table_size = 100000,
    .buffer_bytes = 4u << 20,
    .local_prefixes = {NULL, 0},
    .privacy = NP_PRIVACY_PREFIX,
    .privacy_prefix_v4 = 24,
    .privacy_prefix_v6 = 64,
    .privacy_secret = "",
    .top_n = 10,
};

const struct np_flow_settings *np_flow_settings_default(void)
{
    return &defaults;
}

int np_flow_settings_prefixes(const struct np_flow_settings *s, struct np_prefix *out, size_t max,
                              struct np_err *err)
{
    if (s->local_prefixes.count > max) {
        return np_err_set(err, NP_ECONFIG, "more than %zu local_prefixes", max);
    }
    for (size_t i = 0; i < s->local_prefixes.count; i++) {
        if (np_prefix_parse(s->local_prefixes.items[i], &out[i]) != 0) {
            return np_err_set(err, NP_ECONFIG, "local_prefixes: \"%.60s\" is not a CIDR prefix",
                              s->local_prefixes.items[i]);
        }
    }
    return (int)s->local_prefixes.count;
}

void np_flow_settings_report_opts(const struct np_flow_settings *s, struct np_flow_report_opts *out)
{
    memset(out, 0, sizeof *out);
    out->privacy = (enum np_privacy)s->privacy;
    out->prefix_v4 = (unsigned)s->privacy_prefix_v4;
    out->prefix_v6 = (unsigned)s->privacy_prefix_v6;
    out->secret = (const uint8_t *)s->privacy_secret;
    out->secret_len = strlen(s->privacy_secret);
    out->top_n = (unsigned)s->top_n;
}

static int at_line(const struct np_config *cfg, const void *inst, const char *key,
                   struct np_err *err, const char *what)
{
    int line = np_config_line(cfg, inst, key);
    if (line == 0) {
        line = np_config_line(cfg, inst, NULL);
    }
    return np_err_set(err, NP_ECONFIG, "%s:%d: %s", np_config_path(cfg), line, what);
}

int np_flow_config_validate(const struct np_config *cfg, struct np_err *err)
{
    size_t n = np_config_count(cfg, "pcap");
    for (size_t i = 0; i < n; i++) {
        const struct np_flow_settings *s = np_config_instance(cfg, "pcap", i);
        struct np_prefix prefixes[NP_FLOW_MAX_PREFIXES];
        struct np_err detail = {0};
        char msg[300];
        if (np_flow_settings_prefixes(s, prefixes, NP_FLOW_MAX_PREFIXES, &detail) < 0) {
            return at_line(cfg, s, "local_prefixes", err, detail.msg);
        }
        if (s->privacy == NP_PRIVACY_HASH && s->privacy_secret[0] == '\0') {
            return at_line(cfg, s, "privacy", err,
                           "privacy = hash needs privacy_secret or privacy_secret_file");
        }
        if (s->privacy == NP_PRIVACY_HASH && strlen(s->privacy_secret) < 16) {
            return at_line(cfg, s, "privacy_secret", err,
                           "privacy_secret must be at least 16 characters");
        }
        if (s->filter[0] != '\0' &&
            np_flow_capture_check_filter(s->filter, (int)s->snaplen, &detail) != 0) {
            snprintf(msg, sizeof msg, "filter: %.200s", detail.msg);
            return at_line(cfg, s, "filter", err, msg);
        }
    }
    return 0;
}
