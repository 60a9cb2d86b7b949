/* agent_config: the [agent] section and the table of every section the agent
 * reads. Each module owns its section spec; this file lists them in one place. */
#ifndef NP_AGENT_AGENT_CONFIG_H
#define NP_AGENT_AGENT_CONFIG_H

#include "netpulse/config.h"
#include "netpulse/err.h"

#include <stdint.h>

struct np_agent_settings {
    char *id;        /* the site this agent speaks for */
    char *collector; /* https://host:port */
    char *token;     /* bearer token (token = or token_file =) */
    char *ca_file;   /* empty: system store */
    char *proxy;     /* empty: libcurl's environment (https_proxy ...) */
    char *spool_dir;
    uint64_t spool_max_bytes;
    int64_t batch_interval_ms;
    int64_t drain_rate;   /* backlog batches sent per second after an outage */
    int64_t timeout_ms;   /* one POST to the collector, connect included */
    int spool_fsync;      /* enum np_spool_fsync: 0 always, 1 interval, 2 never */
    int64_t retry_max_ms; /* cap of the retry backoff */
    int log_level; /* index into np_agent_log_levels */
    char *user;    /* drop privileges to this user after opening capture handles */
    int64_t snmp_max_concurrent; /* SNMP polls (sessions) in progress at once */
};

/* Loads and validates path. On success *out owns everything; free it with
 * np_config_free(). Errors read "FILE:LINE: message" in err. */
int np_agent_config_load(const char *path, struct np_config **out, struct np_err *err);

/* The [agent] section of a loaded config (never NULL; borrowed from cfg). */
const struct np_agent_settings *np_agent_settings(const struct np_config *cfg);

/* Prints every section's options with defaults, for --help. */
void np_agent_config_describe(FILE *out);

#endif
