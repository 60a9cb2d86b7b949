#include "agent_config.h"

#include "flow/flow_config.h"
#include "probe/probe_config.h"
#include "snmp/snmp_config.h"

#include <stddef.h>

#define SETTING(f) offsetof(struct np_agent_settings, f)

static const char *const log_levels[] = {"error", "warning", "notice", "info", "debug", NULL};
static const char *const spool_fsyncs[] = {"always", "interval", "never", NULL};

static const struct np_opt agent_opts[] = {
    {"id", NP_OPT_STRING, SETTING(id), NULL, 0, 0, NULL, NP_OPT_REQUIRED,
     "the site this agent speaks for"},
    {"collector", NP_OPT_STRING, SETTING(collector), "", 0, 0, NULL, 0,
     "collector URL, e.g. https://collector.example.org:8443"},
    {"token", NP_OPT_SECRET, SETTING(token), "", 0, 0, NULL, 0,
     "bearer token from `netpulse agent enrol`"},
    {"ca_file", NP_OPT_STRING, SETTING(ca_file), "", 0, 0, NULL, 0,
     "CA bundle for the collector's certificate; empty: the system store"},
    {"proxy", NP_OPT_STRING, SETTING(proxy), "", 0, 0, NULL, 0,
     "HTTP(S) proxy URL; empty: the https_proxy/no_proxy environment"},
    {"spool_dir", NP_OPT_STRING, SETTING(spool_dir), "/var/lib/netpulse/spool", 0, 0, NULL, 0,
     "folder of the store-and-forward spool"},
    {"spool_max", NP_OPT_SIZE, SETTING(spool_max_bytes), "256MiB", 4096, 1099511627776.0,
     NULL, 0, "disk bound of the spool; past it the oldest data is dropped and reported"},
    {"batch_interval", NP_OPT_DURATION, SETTING(batch_interval_ms), "10s", 1000, 3600000, NULL,
     0, "how often a batch (and heartbeat) goes to the collector"},
    {"drain_rate", NP_OPT_INT, SETTING(drain_rate), "10", 1, 10000, NULL, 0,
     "after an outage, spooled batches sent per second (oldest first)"},
    {"timeout", NP_OPT_DURATION, SETTING(timeout_ms), "30s", 1000, 600000, NULL, 0,
     "time allowed for one upload to the collector, connecting included"},
    {"retry_max", NP_OPT_DURATION, SETTING(retry_max_ms), "5m", 1000, 3600000, NULL, 0,
     "longest wait between retries (exponential backoff with jitter)"},
    {"spool_fsync", NP_OPT_ENUM, SETTING(spool_fsync), "always", 0, 0, spool_fsyncs, 0,
     "always: every batch on disk before it is sent; interval: within 1s; never: "
     "only before it is sent and at exit"},
    {"log_level", NP_OPT_ENUM, SETTING(log_level), "info", 0, 0, log_levels, 0,
     "error, warning, notice, info or debug"},
    {"user", NP_OPT_STRING, SETTING(user), "", 0, 0, NULL, 0,
     "user to run as once capture handles and raw sockets are open"},
    {"snmp_max_concurrent", NP_OPT_INT, SETTING(snmp_max_concurrent), "32", 1, 1024, NULL, 0,
     "most SNMP devices polled at once (one session each); polls due beyond it wait their "
     "turn"},
};

static const struct np_section_spec agent_sections[] = {
    {"agent", false, true, sizeof(struct np_agent_settings), 0, agent_opts,
     sizeof agent_opts / sizeof agent_opts[0], "the agent itself"},
    NP_FLOW_SECTION_SPEC,
    NP_SNMP_SECTION_SPEC,
    NP_PROBE_SECTION_SPEC,
    NP_UPLINK_SECTION_SPEC,
};

int np_agent_config_load(const char *path, struct np_config **out, struct np_err *err)
{
    int rc = np_config_load(path, agent_sections,
                            sizeof agent_sections / sizeof agent_sections[0], out, err);
    if (rc == 0) {
        rc = np_flow_config_validate(*out, err);
    }
    if (rc == 0) {
        rc = np_snmp_config_check(*out, err);
    }
    if (rc == 0) {
        rc = np_probe_config_check(*out, err);
    }
    if (rc != 0) {
        np_config_free(*out);
        *out = NULL;
    }
    return rc;
}

const struct np_agent_settings *np_agent_settings(const struct np_config *cfg)
{
    return np_config_section(cfg, "agent");
}

void np_agent_config_describe(FILE *out)
{
    np_config_describe(agent_sections, sizeof agent_sections / sizeof agent_sections[0], out);
}
