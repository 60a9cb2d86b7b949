/* snmp_config: the [snmp NAME] section of the agent's configuration.
 *
 * The option table is exported so that agent_config.c lists the section in its
 * agent_sections[] with NP_SNMP_SECTION_SPEC (an initialiser cannot copy an
 * extern struct), and calls np_snmp_config_check() after loading so --check
 * reports SNMP mistakes as FILE:LINE. Any thread may read a loaded config. */
#ifndef NP_AGENT_SNMP_SNMP_CONFIG_H
#define NP_AGENT_SNMP_SNMP_CONFIG_H

#include "netpulse/config.h"
#include "netpulse/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The [snmp NAME] section as the config module fills it. */
struct np_snmp_settings {
    char *name;
    char *host;
    int64_t port;
    int version;     /* index into np_snmp_versions */
    char *community; /* SECRET */
    char *user;
    int auth_protocol;   /* index into np_snmp_auth_names */
    char *auth_password; /* SECRET */
    int priv_protocol;   /* index into np_snmp_priv_names */
    char *priv_password; /* SECRET */
    char *context;
    int64_t interval_ms;
    int64_t timeout_ms;
    int64_t retries;
    int64_t max_repetitions;
    struct np_strlist interfaces;
    bool include_loopback;
    struct np_strlist rate_override;
};

#define NP_SNMP_N_OPTS 17
extern const struct np_opt np_snmp_opts[NP_SNMP_N_OPTS];

/* The section spec entry, for an initialiser list of struct np_section_spec. */
#define NP_SNMP_SECTION_SPEC                                                                       \
    {                                                                                              \
        "snmp", true, false, sizeof(struct np_snmp_settings),                                      \
            offsetof(struct np_snmp_settings, name), np_snmp_opts, NP_SNMP_N_OPTS,                 \
            "one SNMP device polled for interface counters"                                        \
    }

/* Checks what the option table cannot: version-specific keys, password
 * lengths, timeout x tries below the interval, rate_override items. Errors
 * read "FILE:LINE: [snmp NAME] message" in err. Returns 0 or NP_ECONFIG
 * (-ENOMEM). Any thread. */
int np_snmp_config_check(const struct np_config *cfg, struct np_err *err);

#endif
