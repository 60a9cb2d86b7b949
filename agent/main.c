/* netpulse-agent: options, config, modules onto the loop, run, tear down. */
#include "agent_config.h"
#include "agent_run.h"
#include "flow/flow_capture.h"
#include "flow/flow_live.h"
#include "snmp/snmp_poller.h"

#include "netpulse/log.h"
#include "netpulse/units.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: netpulse-agent -c FILE [--check | --once | --pcap-file PCAP "
                 "[--sample N] [--top N] | --capture-for DURATION] [--foreground]\n"
                 "  -c, --config FILE    configuration (INI)\n"
                 "      --check          validate the configuration and exit (2 on errors)\n"
                 "      --once           poll every SNMP target once, print JSON lines, exit\n"
                 "      --polls N        poll every SNMP target N times, adding rates\n"
                 "                       (inBps, outBps, rateValid, rateStatus) and status\n"
                 "                       events to the JSON lines; a summary per round on stderr\n"
                 "      --interval DURATION  with --polls: time between rounds (default 5s)\n"
                 "      --pcap-file PCAP aggregate an offline capture, print a JSON summary\n"
                 "      --sample N       with --pcap-file: decode 1 packet in N\n"
                 "      --top N          with --pcap-file: top talkers and flows listed\n"
                 "      --capture-for DURATION  capture live on every [pcap] section for\n"
                 "                       DURATION (e.g. 5s), print a JSON summary per export\n"
                 "                       interval and for the last partial one, exit\n"
                 "  -f, --foreground     log to stderr instead of syslog\n"
                 "  -h, --help           this help and every configuration option\n\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, 'k'},
        {"once", no_argument, NULL, 'o'},
        {"pcap-file", required_argument, NULL, 'p'},
        {"foreground", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {"sample", required_argument, NULL, 's'},
        {"top", required_argument, NULL, 't'},
        {"capture-for", required_argument, NULL, 'C'},
        {"polls", required_argument, NULL, 'P'},
        {"interval", required_argument, NULL, 'I'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *pcap_path = NULL;
    int check = 0, once = 0, foreground = 0, opt;
    long sample = 0, top = 0, polls = 1;
    int64_t capture_ms = 0, interval_ms = 5000;
    char *end = NULL;
    while ((opt = getopt_long(argc, argv, "c:fh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'k':
            check = 1;
            break;
        case 'o':
            once = 1;
            break;
        case 'p':
            pcap_path = optarg;
            break;
        case 'f':
            foreground = 1;
            break;
        case 's':
        case 't':
            errno = 0;
            *(opt == 's' ? &sample : &top) = strtol(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || (opt == 's' ? sample : top) < 1) {
                fprintf(stderr, "netpulse-agent: --%s wants a positive number\n",
                        opt == 's' ? "sample" : "top");
                return 2;
            }
            break;
        case 'C':
            if (np_units_duration_ms(optarg, &capture_ms) != 0 || capture_ms <= 0) {
                fprintf(stderr, "netpulse-agent: --capture-for wants a duration (e.g. 5s)\n");
                return 2;
            }
            break;
        case 'P':
            errno = 0;
            polls = strtol(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || polls < 1 || polls > 100000) {
                fprintf(stderr, "netpulse-agent: --polls wants a number from 1 to 100000\n");
                return 2;
            }
            once = 1;
            break;
        case 'I':
            if (np_units_duration_ms(optarg, &interval_ms) != 0 || interval_ms <= 0) {
                fprintf(stderr, "netpulse-agent: --interval wants a duration (e.g. 2s)\n");
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            np_agent_config_describe(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!config_path || optind != argc) {
        usage(stderr);
        return 2;
    }
    int interactive = foreground || check || once || pcap_path || capture_ms;
    np_log_init("netpulse-agent", interactive ? NP_LOG_STDERR : NP_LOG_SYSLOG, NP_LOG_INFO);

    struct np_config *cfg = NULL;
    struct np_err err = {0};
    if (np_agent_config_load(config_path, &cfg, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    int rc = 0;
    if (check) {
        printf("%s: ok\n", config_path);
    } else if (pcap_path) {
        if (np_flow_pcap_file(cfg, pcap_path, sample, top, stdout, &err) != 0) {
            fprintf(stderr, "netpulse-agent: %s\n", err.msg);
            rc = 1;
        }
    } else if (capture_ms > 0) {
        if (np_flow_live_run(cfg, capture_ms, stdout, NULL, &err) != 0) {
            fprintf(stderr, "netpulse-agent: %s\n", err.msg);
            rc = 1;
        }
    } else if (once) {
        rc = np_snmp_polls(cfg, (unsigned)polls, interval_ms, stdout, stderr);
    } else {
        rc = np_agent_run(config_path, cfg); /* takes cfg */
        cfg = NULL;
    }
    np_config_free(cfg);
    return rc;
}
