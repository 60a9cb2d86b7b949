/* agent_run: the daemon mode of netpulse-agent (`netpulse-agent -c FILE`).
 *
 * Wires the modules onto one libuv loop: the SNMP poller in periodic mode
 * (every [snmp NAME]), live flow capture (every [pcap NAME]), and the uplink
 * (spool + collector) that everything reports into. Signals:
 *   SIGTERM, SIGINT  the current batch goes to the spool, the loop winds
 *                    down, exit 0;
 *   SIGHUP           the config file is loaded again; if it validates, the
 *                    SNMP poller and captures restart with it and the
 *                    uplink's reloadable settings change (collector, token,
 *                    ca_file, proxy, timeout, drain_rate, retry_max,
 *                    log_level); else it is refused and nothing changes.
 *                    id, spool_dir, spool_max, spool_fsync and batch_interval
 *                    need a restart.
 *
 * Probe results and events (agent/probe, every [probe NAME]) feed
 * np_uplink_add_probe, np_uplink_add_event and np_uplink_set_link_state; each
 * finished capture interval becomes a FlowSummary (np_flow_wire_add) through
 * np_uplink_add_with. */
#ifndef NP_AGENT_AGENT_RUN_H
#define NP_AGENT_AGENT_RUN_H

#include "netpulse/config.h"

/* Runs the daemon until SIGTERM/SIGINT. cfg (loaded from config_path) is
 * taken over: it is freed here, as are the configs loaded on SIGHUP. Returns
 * the process exit status: 0 after a clean stop, 1 when a module could not
 * start (the reason is logged). Main thread. */
int np_agent_run(const char *config_path, struct np_config *cfg);

#endif
