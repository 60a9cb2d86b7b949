/* flow_report: turns one interval of a struct np_flow_agg into the JSON
 * summary (--pcap-file output, and what the uplink sends), applying the
 * privacy rule to local addresses.
 *
 * Privacy: an address inside the local prefixes is reported as its prefix
 * (e.g. "10.1.2.0/24"), or as "h:" + 16 hex digits of HMAC-SHA256(secret,
 * address), or in full only with NP_PRIVACY_NONE. Addresses outside the
 * local prefixes are kept. Top talkers are aggregated by the reported name, so
 * a /24 appears once with the sum of its hosts.
 *
 * Pure apart from jansson and OpenSSL's HMAC; any thread, on an aggregator
 * that thread owns. */
#ifndef NP_AGENT_FLOW_FLOW_REPORT_H
#define NP_AGENT_FLOW_FLOW_REPORT_H

#include "flow_agg.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum np_privacy { NP_PRIVACY_PREFIX = 0, NP_PRIVACY_HASH, NP_PRIVACY_NONE };

struct np_flow_report_opts {
    enum np_privacy privacy;
    unsigned prefix_v4;    /* bits kept of a local IPv4 address (default 24) */
    unsigned prefix_v6;    /* bits kept of a local IPv6 address (default 64) */
    const uint8_t *secret; /* HMAC key for NP_PRIVACY_HASH; borrowed */
    size_t secret_len;
    unsigned top_n;          /* top talkers and top flows listed */
    const char *source;      /* borrowed; "file" or interface name, NULL: left out */
    const char *link_type;   /* borrowed; NULL: left out */
    bool live;               /* capture counters below are reported */
    uint64_t received;       /* pcap_stats ps_recv over the interval */
    uint64_t kernel_dropped; /* ps_drop: no buffer space in the kernel */
    uint64_t if_dropped;     /* ps_ifdrop: dropped by the interface or driver */
};

/* Writes the name under which addr is reported into buf (at least 64 bytes). */
void np_flow_addr_name(const struct np_flow_agg *agg, const struct np_flow_report_opts *opts,
                       uint8_t family, const uint8_t *addr, char *buf, size_t len);

/* One row of the top talkers: an address as reported (privacy applied). */
struct np_flow_talker {
    char host[64];
    bool local;
    uint64_t packets;
    uint64_t bytes_in;  /* as destination */
    uint64_t bytes_out; /* as source */
};

/* The top opts->top_n talkers of agg, largest (bytes in + out) first,
 * aggregated by reported name. *out is a new array of *n_out entries that the
 * caller frees with free(). Returns 0 or -ENOMEM. */
int np_flow_report_talkers(const struct np_flow_agg *agg, const struct np_flow_report_opts *opts,
                           struct np_flow_talker **out, size_t *n_out);

/* The top_n largest flows of agg by bytes (ties in key order): *out is a new
 * array (caller frees it with free()) of *n_out pointers borrowed from agg's
 * table, valid while agg is unchanged. Returns 0 or -ENOMEM. */
int np_flow_report_top_flows(const struct np_flow_agg *agg, size_t top_n,
                             const struct np_flow ***out, size_t *n_out);

/* Report name of IP protocol p ("tcp", "udp" ..., else its number written
 * into buf). Returns a static string or buf. */
const char *np_flow_proto_name(unsigned p, char *buf, size_t len);

/* Builds the summary of agg's current interval. Returns a new reference
 * (caller json_decref()s it) or NULL when memory ran out. */
json_t *np_flow_report_json(const struct np_flow_agg *agg, const struct np_flow_report_opts *opts);

#endif
