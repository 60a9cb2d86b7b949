/* probe_config: the [probe NAME] sections and the [uplink] section (how the
 * probes' verdicts make the uplink state), and their validation beyond the
 * option tables.
 *
 *   [probe upstream]
 *   type = icmp            ; icmp, tcp, http, dns
 *   target = 192.0.2.53    ; icmp: host or IP; tcp: host:port ([v6]:port);
 *                          ; http: http:// or https:// URL; dns: the name to resolve
 *   server =               ; dns only: resolver IP[:port] asked through c-ares;
 *                          ; empty: the system resolver (getaddrinfo, cannot pick a server)
 *   interval = 10s
 *   timeout = 2s           ; per round (icmp: per echo, after the last one is sent)
 *   count = 3              ; icmp only: echoes per round, sent 200 ms apart
 *   expect_status = 200-399 ; http only: statuses (N or N-M, comma-separated) that count as up
 *
 *   [uplink]
 *   quorum = 1             ; probes that must be up for the uplink to be up: N, majority or all
 *   down_after = 1         ; consecutive failed rounds before a probe counts as down
 *   up_after = 1           ; consecutive good rounds before a probe counts as up
 *
 * Default quorum 1: the probes usually aim at different things upstream (the
 * ISP's router, a DNS server, a web site); one of them failing alone says
 * more about that target than about the school's link, and a false outage
 * costs more trust than a late one. Districts that want stricter rules set
 * majority or all.
 *
 * The option tables are exported so agent_config.c lists the sections in its
 * agent_sections[] with NP_PROBE_SECTION_SPEC and NP_UPLINK_SECTION_SPEC and
 * calls np_probe_config_check() after loading. A loaded config is immutable;
 * any thread may read it. */
#ifndef NP_AGENT_PROBE_PROBE_CONFIG_H
#define NP_AGENT_PROBE_PROBE_CONFIG_H

#include "netpulse/config.h"
#include "netpulse/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NP_PROBE_ICMP_MAX_COUNT 100
#define NP_PROBE_ICMP_SPACING_MS 200 /* between the echoes of one round */
#define NP_PROBE_MAX_STATUS_RANGES 16

/* Index into the type choices; enum np_probe_type is this + 1. */
enum np_probe_type_choice {
    NP_PROBE_CHOICE_ICMP,
    NP_PROBE_CHOICE_TCP,
    NP_PROBE_CHOICE_HTTP,
    NP_PROBE_CHOICE_DNS
};

struct np_probe_settings {
    char *name;   /* NAME of [probe NAME] */
    int type;     /* enum np_probe_type_choice */
    char *target; /* see above */
    char *server; /* dns: resolver; "" = system resolver */
    int64_t interval_ms;
    int64_t timeout_ms;
    int64_t count;                   /* icmp echoes per round */
    struct np_strlist expect_status; /* http: "200-399" by default */
};

struct np_uplink_probe_settings {
    char *quorum; /* "N", "majority" or "all"; resolve with np_probe_config_quorum() */
    int64_t down_after;
    int64_t up_after;
};

#define NP_PROBE_N_OPTS 7
extern const struct np_opt np_probe_opts[NP_PROBE_N_OPTS];
#define NP_UPLINK_N_OPTS 3
extern const struct np_opt np_uplink_opts[NP_UPLINK_N_OPTS];

/* Section spec entries, for an initialiser list of struct np_section_spec. */
#define NP_PROBE_SECTION_SPEC                                                                      \
    {                                                                                              \
        "probe", true, false, sizeof(struct np_probe_settings),                                    \
            offsetof(struct np_probe_settings, name), np_probe_opts, NP_PROBE_N_OPTS,              \
            "one uplink probe: icmp echo, tcp connect, http(s) get or dns query"                   \
    }
#define NP_UPLINK_SECTION_SPEC                                                                     \
    {                                                                                              \
        "uplink", false, false, sizeof(struct np_uplink_probe_settings), 0, np_uplink_opts,        \
            NP_UPLINK_N_OPTS, "how the probes decide whether the school's uplink is usable"        \
    }

/* An inclusive range of HTTP statuses. */
struct np_status_range {
    int lo, hi;
};

/* Checks every [probe] and the [uplink] section: target form per type, keys
 * that apply to one type only, timeout below the interval (icmp: the whole
 * echo series), expect_status syntax, dns server address, quorum against the
 * number of probes. Returns 0 or NP_ECONFIG with "FILE:LINE: message" in err.
 * Any thread. */
int np_probe_config_check(const struct np_config *cfg, struct np_err *err);

/* Parses the expect_status list into out[0..max). Returns the count, or
 * NP_ECONFIG with the offending item in err. Pure. */
int np_probe_parse_status(const struct np_strlist *list, struct np_status_range *out, size_t max,
                          struct np_err *err);

/* Resolves quorum text against n_probes: "majority" = n/2 + 1, "all" = n,
 * else a number 1..n. Returns 0 with *out set, or NP_ECONFIG (message in err,
 * without file/line). With n_probes 0 any valid form gives *out = 0. Pure. */
int np_probe_config_quorum(const char *text, size_t n_probes, unsigned *out, struct np_err *err);

/* Splits a tcp target "host:port" or "[v6]:port" into host (NUL-terminated,
 * brackets dropped) and port. Returns 0 or NP_ECONFIG. Pure. */
int np_probe_split_host_port(const char *target, char *host, size_t host_len, uint16_t *port);

/* The ICMP round length: (count - 1) * spacing + timeout. */
int64_t np_probe_icmp_round_ms(const struct np_probe_settings *s);

#endif
