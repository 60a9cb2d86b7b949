/* cli: the `netpulse` command for people.
 *
 *   netpulse [-c FILE] SUBCOMMAND [ARGS]     (FILE: NP_COLLECTOR_DEFAULT_CONFIG)
 *     site import CSV      create/update the site inventory (site_import.h)
 *     agent enrol ID       enrol an agent; prints its token once on stdout
 *     agent revoke ID      revoke an agent's token
 *     agent list           enrolled agents, their state and last contact
 *     check                validate the configuration
 * Every subcommand takes --help. The state database is DATA_DIR/state.db of
 * the configuration; DATA_DIR is created when missing.
 *
 * Exit status: 0 done; 1 the operation failed (e.g. a bad CSV row, unknown
 * agent); 2 usage or configuration error. Messages go to stderr; only results
 * (the token, the agent list) go to stdout.
 *
 * Threads: the main thread of a short-lived process. */
#ifndef NP_COLLECTOR_CLI_H
#define NP_COLLECTOR_CLI_H

/* Runs the command line argv[0..argc); returns the exit status. argv is
 * borrowed (getopt may permute it). */
int np_cli_main(int argc, char **argv);

#endif
