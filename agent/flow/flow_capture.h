/* flow_capture: the libpcap adapter (the only file that includes pcap.h).
 *
 * Offline (--pcap-file) and live capture share one per-packet path: a pcap_t
 * (pcap_open_offline or pcap_create + pcap_activate), the section's BPF filter
 * and snaplen, and each frame, cut to the snaplen, offered to a struct
 * np_flow_agg. Live capture offers from its pcap_dispatch() handler. An
 * offline file is read by a second thread that copies each frame into a
 * packet ring (packet_ring.h); the calling thread offers them in order, so
 * libpcap's work and the aggregation overlap on two cores.
 *
 * Live capture runs one thread per [pcap] section. The thread owns the one
 * aggregator it fills; at each export interval it hands the loop a snapshot
 * (np_flow_agg_snapshot: the counters and only the flows present, packed) with
 * uv_async_send and clears its table, so capture never waits for the loop and
 * memory holds one full table, not two. If the loop still holds the previous
 * snapshot, the thread keeps filling the current interval (it grows; nothing
 * is lost). Kernel drops
 * from pcap_stats are reported with every export. libpcap's errbuf becomes
 * struct np_err. */
#ifndef NP_AGENT_FLOW_FLOW_CAPTURE_H
#define NP_AGENT_FLOW_FLOW_CAPTURE_H

#include "flow_agg.h"
#include "flow_config.h"
#include "flow_report.h"

#include "netpulse/config.h"
#include "netpulse/err.h"

#include <stdio.h>
#include <uv.h>

/* Compiles filter for Ethernet without a device, to validate a config.
 * Returns 0 or NP_ECONFIG with libpcap's message in err. Any thread. */
int np_flow_capture_check_filter(const char *filter, int snaplen, struct np_err *err);

/* Runs the capture file at pcap_path (pcap or pcapng) through the first
 * [pcap] section of cfg (defaults when there is none; sample_override and
 * top_override replace the section's values when > 0) and writes one JSON
 * summary line to out. Returns 0; -errno / NP_EPROTO when the file cannot be
 * read (message in err); -ENOMEM; a thread creation error. Blocks (and runs
 * a reader thread until it returns): call it from main, not the loop. */
int np_flow_pcap_file(const struct np_config *cfg, const char *pcap_path, long sample_override,
                      long top_override, FILE *out, struct np_err *err);

/* Called on the loop thread with one finished interval. agg (a read-only
 * snapshot) and opts are borrowed for the duration of the call only. */
typedef void (*np_flow_export_cb)(const struct np_flow_settings *s, const struct np_flow_agg *agg,
                                  const struct np_flow_report_opts *opts, void *arg);

struct np_flow_capture;

/* Opens the interface of s (borrowed; must outlive the capture), starts its
 * capture thread, and calls cb(arg) on loop's thread at each export. Call on
 * the loop thread. Returns 0, NP_ECONFIG (bad settings), -EPERM/-ENODEV/... or
 * NP_EPROTO from libpcap (message in err), -ENOMEM. *out is stopped and freed
 * with np_flow_capture_stop. */
int np_flow_capture_start(uv_loop_t *loop, const struct np_flow_settings *s, np_flow_export_cb cb,
                          void *arg, struct np_flow_capture **out, struct np_err *err);

/* Stops the thread (pcap_breakloop), joins it, closes the pcap handle and the
 * async handle; the memory is freed in the close callback, so run the loop
 * once more afterwards. Call on the loop thread. NULL is fine. */
void np_flow_capture_stop(struct np_flow_capture *c);

#endif
