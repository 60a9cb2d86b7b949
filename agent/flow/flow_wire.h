/* flow_wire: one export interval of a struct np_flow_agg as the uplink's
 * Netpulse__FlowSummary (common/proto/netpulse.proto), added to a batch
 * builder. The same figures and the same privacy rule as the JSON summary
 * (flow_report): local addresses leave as their prefix or keyed hash.
 *
 * Lists (by protocol, by application, top talkers, top flows, decode errors)
 * hold only non-zero entries and at most NP_FLOW_WIRE_MAX_ENTRIES each, the
 * wire's default per-list limit. */
#ifndef NP_AGENT_FLOW_FLOW_WIRE_H
#define NP_AGENT_FLOW_FLOW_WIRE_H

#include "flow_agg.h"
#include "flow_report.h"

#include "netpulse/err.h"
#include "netpulse/wire.h"

#include <stdint.h>

#define NP_FLOW_WIRE_MAX_ENTRIES 4096

/* Converts agg's current interval (borrowed; opts borrowed: privacy, top_n,
 * capture drops) into a FlowSummary for source (the [pcap NAME]) covering
 * start_ms..end_ms (wall clock; both 0: the first and last frame's times) and
 * adds it to b, which copies it. Returns 0; the builder's errors (NP_ETOOBIG:
 * batch full, close it and add again to the next one; NP_EPROTO: a field out
 * of range, e.g. implausible times) with the message in err; -ENOMEM. The
 * thread that owns agg calls it (the loop, in the export callback). */
int np_flow_wire_add(struct np_wire_builder *b, const char *source, const struct np_flow_agg *agg,
                     const struct np_flow_report_opts *opts, int64_t start_ms, int64_t end_ms,
                     struct np_err *err);

#endif
