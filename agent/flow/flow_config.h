/* flow_config: the [pcap NAME] sections (one per captured interface) and
 * their validation beyond the option table: CIDR lists, the BPF filter, the
 * privacy secret.
 *
 * The option table is exported so that agent_config.c lists the section in
 * its agent_sections[] with NP_FLOW_SECTION_SPEC. A loaded config is
 * immutable; any thread may read the settings. */
#ifndef NP_AGENT_FLOW_FLOW_CONFIG_H
#define NP_AGENT_FLOW_FLOW_CONFIG_H

#include "flow_agg.h"
#include "flow_report.h"

#include "netpulse/config.h"
#include "netpulse/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct np_flow_settings {
    char *name;      /* NAME of [pcap NAME] */
    char *interface; /* capture interface, e.g. eth0 */
    char *filter;    /* BPF filter; "" captures everything */
    int64_t snaplen; /* bytes captured per packet */
    int64_t sample;  /* 1-in-N */
    bool promiscuous;
    int64_t export_interval_ms;
    int64_t flow_table_size; /* maximum flows per interval */
    uint64_t buffer_bytes;   /* kernel ring buffer */
    struct np_strlist local_prefixes;
    int privacy; /* enum np_privacy, index into the choices */
    int64_t privacy_prefix_v4;
    int64_t privacy_prefix_v6;
    char *privacy_secret;
    int64_t top_n;
};

#define NP_FLOW_N_OPTS 14
extern const struct np_opt np_flow_opts[NP_FLOW_N_OPTS];

/* The section spec entry, for an initialiser list of struct np_section_spec. */
#define NP_FLOW_SECTION_SPEC                                                                       \
    {                                                                                              \
        "pcap", true, false, sizeof(struct np_flow_settings),                                      \
            offsetof(struct np_flow_settings, name), np_flow_opts, NP_FLOW_N_OPTS,                 \
            "packet flow sampling on one interface (libpcap)"                                      \
    }

/* Checks every [pcap] instance of cfg: local_prefixes are CIDRs, the filter
 * compiles, privacy = hash has a secret. Returns 0 or NP_ECONFIG with
 * "FILE:LINE: message" in err. Any thread. */
int np_flow_config_validate(const struct np_config *cfg, struct np_err *err);

/* Defaults of a section, for --pcap-file without a [pcap] section. Static. */
const struct np_flow_settings *np_flow_settings_default(void);

/* Parses s->local_prefixes into out[0..max): returns the count, or NP_ECONFIG
 * (with which item in err) when one is not a CIDR or there are more than max. */
int np_flow_settings_prefixes(const struct np_flow_settings *s, struct np_prefix *out, size_t max,
                              struct np_err *err);

/* Fills report options from s (privacy, lengths, secret borrowed from s, top_n). */
void np_flow_settings_report_opts(const struct np_flow_settings *s,
                                  struct np_flow_report_opts *out);

#define NP_FLOW_MAX_PREFIXES 256

#endif
