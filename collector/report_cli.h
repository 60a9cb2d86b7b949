/* report_cli: the reporting subcommands of `netpulse` (cli.c dispatches):
 *
 *   uptime   [--site ID]... [--from T --to T | --month YYYY-MM | --year YYYY]
 *            [--json | --csv]
 *   capacity [--site ID]... [period as above] [--device D --iface I]
 *            [--json | --csv]
 *   report   --year YYYY [--site ID]... --format html|csv|json -o PATH [--no-graphs]
 *   maintenance add SITE FROM TO REASON | list [SITE] | delete ID
 *   circuit set SITE FROM RATE          (a circuit upgrade: RATE like 1Gbps)
 * T is YYYY-MM-DD[THH:MM[:SS]] (UTC) or @UNIXSECONDS. The default period is
 * the current calendar month. Without --site, every site of the inventory.
 * Output: an aligned table (default), a JSON array of objects (--json, the
 * objects of report_data.h), or CSV (--csv).
 *
 * Each function takes the loaded config and open database (borrowed) and the
 * arguments after the subcommand words; returns the exit status (0 done,
 * 1 failed, 2 usage). Main thread of the CLI process. */
#ifndef NP_COLLECTOR_REPORT_CLI_H
#define NP_COLLECTOR_REPORT_CLI_H

#include "collector_config.h"
#include "state_db.h"

int np_report_cli_uptime(const struct np_collector_config *conf, struct np_state_db *db, int argc,
                         char **argv);
int np_report_cli_capacity(const struct np_collector_config *conf, struct np_state_db *db, int argc,
                           char **argv);
int np_report_cli_report(const struct np_collector_config *conf, struct np_state_db *db, int argc,
                         char **argv);
int np_report_cli_maintenance_add(struct np_state_db *db, int argc, char **argv);
int np_report_cli_maintenance_list(struct np_state_db *db, int argc, char **argv);
int np_report_cli_maintenance_delete(struct np_state_db *db, int argc, char **argv);
int np_report_cli_circuit_set(struct np_state_db *db, int argc, char **argv);

#endif
