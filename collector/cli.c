#include "cli.h"

#include "alert_db.h"
#include "alerter.h"
#include "collector_config.h"
#include "netpulse/clock.h"
#include "report_cli.h"
#include "site_import.h"
#include "state_db.h"
#include "web_auth.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define EXIT_FAILED 1
#define EXIT_USAGE 2

struct cli_ctx {
    const char *config_path;
    struct np_collector_config *conf;
    struct np_state_db *db;
};

struct subcommand {
    const char *group; /* "site", "agent", or NULL for a top-level word */
    const char *name;
    const char *args;
    const char *summary; /* one line for the overview */
    const char *help;
    int (*run)(struct cli_ctx *ctx, int argc, char **argv);
    int n_args; /* positional arguments required; -1: the command checks its own */
};

static int run_site_import(struct cli_ctx *ctx, int argc, char **argv);
static int run_agent_enrol(struct cli_ctx *ctx, int argc, char **argv);
static int run_agent_revoke(struct cli_ctx *ctx, int argc, char **argv);
static int run_agent_list(struct cli_ctx *ctx, int argc, char **argv);
static int run_check(struct cli_ctx *ctx, int argc, char **argv);
static int run_alert_test(struct cli_ctx *ctx, int argc, char **argv);
static int run_alert_list(struct cli_ctx *ctx, int argc, char **argv);
static int run_report_cmd(struct cli_ctx *ctx, int argc, char **argv);
static int run_user(struct cli_ctx *ctx, int argc, char **argv);

static const struct subcommand commands[] = {
    {"site", "import", "CSV", "create or update sites from a CSV file",
     "Create or update sites from a CSV file with the header\n"
     "  id,name,school_type,circuit_rate,baseline_rate,baseline_year,contacts\n"
     "(id, name and school_type required; school_type elementary, middle, high or\n"
     "other; rates with a unit such as 1Gbps; RFC 4180 quoting). All rows or none:\n"
     "the first bad cell is reported as FILE:LINE:COLUMN: message.",
     run_site_import, 1},
    {"agent", "enrol", "ID", "enrol an agent and print its token once",
     "Enrol the agent of site ID and print its bearer token once on stdout (only a\n"
     "salted hash is kept). Put the token in the agent's token_file. An unknown site\n"
     "is created as a stub that `site import` fills in later. An enrolled agent must\n"
     "be revoked before it can get a new token.",
     run_agent_enrol, 1},
    {"agent", "revoke", "ID", "revoke an agent's token",
     "Revoke the token of agent ID; its batches are refused from now on.", run_agent_revoke, 1},
    {"agent", "list", "", "list enrolled agents",
     "List enrolled agents: state, enrolment, last contact, last batch.", run_agent_list, 0},
    {NULL, "check", "", "validate the configuration",
     "Validate the configuration file and exit (0: valid, 2: errors).", run_check, 0},
    /* Reports (report_cli.h): they parse their own options. */
    {NULL, "uptime", "[--site ID]... [PERIOD] [--json|--csv]", "uptime of site uplinks",
     "Uptime of each site's uplink over a period: percent, target met, downtime,\n"
     "maintenance, time without data (neither up nor down), outages and the downtime\n"
     "budget left this month and year. PERIOD: --from T --to T | --month YYYY-MM |\n"
     "--year YYYY (default: this month); T is YYYY-MM-DD[THH:MM[:SS]] UTC or @SECONDS.",
     run_report_cmd, -1},
    {NULL, "capacity", "[--site ID]... [PERIOD] [--json|--csv]",
     "capacity of site uplinks",
     "95th percentile (of the 5-minute averages: sorted, index ceil(0.95 N) - 1), peak,\n"
     "mean, utilisation against the rate in force at each sample, busiest hours,\n"
     "growth against the baseline and target, forecast of 80 % utilisation.\n"
     "PERIOD as for uptime. --device D --iface I name the uplink (default: the\n"
     "interface called uplink or wan, else the fastest).",
     run_report_cmd, -1},
    {NULL, "report", "--year YYYY --format F -o PATH [--site ID]...",
     "annual capacity assessment",
     "The annual capacity assessment (F: html, csv or json): district summary,\n"
     "upgrade list, then a section per school with its graph (HTML: one\n"
     "self-contained file that prints to PDF with a page per school).\n"
     "--no-graphs skips rendering the graphs.",
     run_report_cmd, -1},
    {"maintenance", "add", "SITE FROM TO REASON", "declare a maintenance window",
     "Declare planned maintenance of SITE from FROM to TO (YYYY-MM-DD[THH:MM[:SS]] UTC\n"
     "or @SECONDS): not counted against uptime. Prints the window's id.",
     run_report_cmd, 4},
    {"maintenance", "list", "[SITE]", "list maintenance windows",
     "List declared maintenance windows (of SITE).", run_report_cmd, -1},
    {"maintenance", "delete", "ID", "delete a maintenance window",
     "Delete maintenance window ID.", run_report_cmd, 1},
    {"circuit", "set", "SITE FROM RATE", "record a circuit rate change",
     "Record that SITE's provisioned rate is RATE (e.g. 1Gbps) from FROM on (a circuit\n"
     "upgrade); utilisation is computed against the rate in force at each sample.",
     run_report_cmd, 3},
    /* Alerts (alerter.h, alert_db.h). */
    {"alert", "test", "[--to ADDR]", "send a test e-mail and print the SMTP outcome",
     "Send a test message the configured way ([smtp]: url, STARTTLS, AUTH, CA file,\n"
     "timeout) to [smtp] to, or to ADDR, and print the server's reply code or curl's\n"
     "error. Exit 0 when the server accepted the message, 1 when not.",
     run_alert_test, -1},
    {"alert", "list", "[--limit N]", "recent alerts and their delivery state",
     "List the newest alerts (default 50) from DATA_DIR/alerts.db: time, kind,\n"
     "severity, site, delivery state (sent/pending/failed/suppressed), attempts and\n"
     "the last error.",
     run_alert_list, -1},
    /* Dashboard users (web_auth.h). */
    {"user", "add", "NAME [--admin] [--password-stdin]", "add a dashboard user",
     "Add dashboard user NAME (or set a new password of an existing one) and print a\n"
     "new random password once; --password-stdin reads it from the first line of\n"
     "stdin instead. --admin: may change things (maintenance, enrolment, revocation).\n"
     "Passwords are kept as PBKDF2-HMAC-SHA256 hashes.",
     run_user, -1},
    {"user", "token", "NAME", "create an API token for a user",
     "Create a new API token for user NAME and print it once (only its hash is kept).\n"
     "Send it as \"Authorization: Bearer TOKEN\" to the API, graphs and /metrics.",
     run_user, 1},
    {"user", "list", "", "list dashboard users", "List dashboard users, roles and tokens.",
     run_user, 0},
    {"user", "delete", "NAME", "delete a dashboard user",
     "Delete dashboard user NAME and its tokens; its sessions end within seconds.", run_user, 1},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out,
            "usage: netpulse [-c FILE] SUBCOMMAND [ARGS]\n"
            "  -c, --config FILE  collector configuration (default " NP_COLLECTOR_DEFAULT_CONFIG
            ")\n"
            "  -h, --help         this help\n\n"
            "subcommands (each takes --help):\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        char words[64];
        snprintf(words, sizeof words, "%s%s%s %s", commands[i].group ? commands[i].group : "",
                 commands[i].group ? " " : "", commands[i].name, commands[i].args);
        fprintf(out, "  %-22s %s\n", words, commands[i].summary);
    }
}

static void command_help(FILE *out, const struct subcommand *c)
{
    fprintf(out, "usage: netpulse [-c FILE] %s%s%s %s\n\n%s\n", c->group ? c->group : "",
            c->group ? " " : "", c->name, c->args, c->help);
}

/* Loads the configuration and opens the state database. */
static int open_state(struct cli_ctx *ctx)
{
    struct np_err err = {0};
    int ret;

    ret = np_collector_config_load(ctx->config_path, &ctx->conf, &err);
    if (ret < 0) {
        fprintf(stderr, "%s\n", err.msg);
        if (ret != NP_ECONFIG && strcmp(ctx->config_path, NP_COLLECTOR_DEFAULT_CONFIG) == 0) {
            fprintf(stderr, "netpulse: give the collector's configuration with -c FILE\n");
        }
        return EXIT_USAGE;
    }
    if (mkdir(ctx->conf->collector->data_dir, 0750) < 0 && errno != EEXIST) {
        fprintf(stderr, "netpulse: cannot create data_dir %s: %s\n", ctx->conf->collector->data_dir,
                np_strerror(-errno));
        return EXIT_FAILED;
    }
    ret = np_state_db_open(ctx->conf->state_db_path, &ctx->db, &err);
    if (ret < 0) {
        fprintf(stderr, "netpulse: %s\n", err.msg);
        return EXIT_FAILED;
    }
    return 0;
}

static int run_check(struct cli_ctx *ctx, int argc, char **argv)
{
    struct np_err err = {0};
    (void)argc;
    (void)argv;
    if (np_collector_config_load(ctx->config_path, &ctx->conf, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return EXIT_USAGE;
    }
    printf("%s: ok\n", ctx->config_path);
    return 0;
}

static int run_alert_test(struct cli_ctx *ctx, int argc, char **argv)
{
    struct np_err err = {0};
    const char *to = NULL;
    char detail[512];
    long code = 0;
    int ret;
    if (argc == 2 && strcmp(argv[0], "--to") == 0) {
        to = argv[1];
    } else if (argc != 0) {
        fprintf(stderr, "usage: netpulse [-c FILE] alert test [--to ADDR]\n");
        return EXIT_USAGE;
    }
    ret = np_collector_config_load(ctx->config_path, &ctx->conf, &err);
    if (ret < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return EXIT_USAGE;
    }
    ret = np_alerter_send_test(ctx->conf, to, &code, detail, sizeof detail, &err);
    if (ret == -EINVAL) {
        fprintf(stderr, "netpulse: %s\n", err.msg);
        return EXIT_USAGE;
    }
    if (ret != 0) {
        printf("alert test: failed: smtp_code=%ld error=%s\n", code,
               detail[0] ? detail : err.msg);
        return EXIT_FAILED;
    }
    printf("alert test: sent: smtp_code=%ld\n", code);
    return 0;
}

static int print_alert(const struct np_alert_row *r, void *arg)
{
    char when[32];
    const char *state;
    (void)arg;
    np_clock_format_utc(r->created_ms, when, sizeof when);
    if (r->suppressed) {
        state = "suppressed";
    } else if (r->n_deliveries == 0) {
        state = "no-route";
    } else if (r->n_pending) {
        state = "pending";
    } else if (r->n_failed) {
        state = r->n_sent ? "partial" : "failed";
    } else {
        state = "sent";
    }
    char site[32];
    if (r->n_sites) {
        snprintf(site, sizeof site, "(%zu sites)", r->n_sites);
    } else {
        snprintf(site, sizeof site, "%.31s", r->site[0] ? r->site : "-");
    }
    printf("%-6" PRId64 " %-24s %-14s %-8s %-24s %-10s %-4" PRId64 " %-4ld %s\n", r->id, when,
           r->kind, r->severity, site, state, r->attempts, r->last_code,
           r->n_pending || r->n_failed ? r->last_error : "");
    return 0;
}

static int run_alert_list(struct cli_ctx *ctx, int argc, char **argv)
{
    struct np_err err = {0};
    struct np_alert_db *adb = NULL;
    long long limit = 50;
    char path[4096];
    int ret;
    if (argc == 2 && strcmp(argv[0], "--limit") == 0) {
        char *end = NULL;
        limit = strtoll(argv[1], &end, 10);
        if (!argv[1][0] || *end || limit < 1) {
            fprintf(stderr, "netpulse: --limit takes a positive number\n");
            return EXIT_USAGE;
        }
    } else if (argc != 0) {
        fprintf(stderr, "usage: netpulse [-c FILE] alert list [--limit N]\n");
        return EXIT_USAGE;
    }
    ret = np_collector_config_load(ctx->config_path, &ctx->conf, &err);
    if (ret < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return EXIT_USAGE;
    }
    ret = snprintf(path, sizeof path, "%s/alerts.db", ctx->conf->collector->data_dir);
    if (ret < 0 || (size_t)ret >= sizeof path) {
        fprintf(stderr, "netpulse: data_dir too long\n");
        return EXIT_FAILED;
    }
    if (np_alert_db_open(path, &adb, &err) != 0) {
        fprintf(stderr, "netpulse: %s\n", err.msg);
        return EXIT_FAILED;
    }
    printf("%-6s %-24s %-14s %-8s %-24s %-10s %-4s %-4s %s\n", "ID", "TIME", "KIND", "SEVERITY",
           "SITE", "DELIVERY", "TRY", "CODE", "LAST_ERROR");
    ret = np_alert_db_list(adb, (size_t)limit, print_alert, NULL, &err);
    np_alert_db_close(adb);
    if (ret != 0) {
        fprintf(stderr, "netpulse: alert list: %s\n", err.msg);
        return EXIT_FAILED;
    }
    return 0;
}

/* The reporting commands live in report_cli.c; find which one by name. */
static const struct subcommand *current_cmd;

static int run_report_cmd(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct subcommand *c = current_cmd;
    int ret = open_state(ctx);
    if (ret != 0) {
        return ret;
    }
    if (!c->group && strcmp(c->name, "uptime") == 0) {
        return np_report_cli_uptime(ctx->conf, ctx->db, argc, argv);
    }
    if (!c->group && strcmp(c->name, "capacity") == 0) {
        return np_report_cli_capacity(ctx->conf, ctx->db, argc, argv);
    }
    if (!c->group && strcmp(c->name, "report") == 0) {
        return np_report_cli_report(ctx->conf, ctx->db, argc, argv);
    }
    if (strcmp(c->name, "add") == 0) {
        return np_report_cli_maintenance_add(ctx->db, argc, argv);
    }
    if (strcmp(c->name, "list") == 0) {
        return np_report_cli_maintenance_list(ctx->db, argc, argv);
    }
    if (strcmp(c->name, "delete") == 0) {
        return np_report_cli_maintenance_delete(ctx->db, argc, argv);
    }
    return np_report_cli_circuit_set(ctx->db, argc, argv);
}

static int run_user(struct cli_ctx *ctx, int argc, char **argv)
{
    int ret = open_state(ctx); /* creates state.db with its schema first */
    if (ret != 0) {
        return ret;
    }
    return np_web_auth_cli(ctx->conf->state_db_path, current_cmd->name, argc, argv);
}

static int run_site_import(struct cli_ctx *ctx, int argc, char **argv)
{
    struct np_site_import_result res;
    struct np_err err = {0};
    int ret = open_state(ctx);
    (void)argc;
    if (ret != 0) {
        return ret;
    }
    ret = np_site_import_file(ctx->db, argv[0], &res, &err);
    if (ret < 0) {
        fprintf(stderr, "%s\nnetpulse: site import: nothing imported\n", err.msg);
        return EXIT_FAILED;
    }
    fprintf(stderr, "site import: %zu sites from %s (%zu created, %zu updated)\n", res.rows,
            argv[0], res.created, res.updated);
    return 0;
}

static int run_agent_enrol(struct cli_ctx *ctx, int argc, char **argv)
{
    char token[NP_STATE_DB_TOKEN_BUFSZ];
    struct np_err err = {0};
    int ret = open_state(ctx);
    (void)argc;
    if (ret != 0) {
        return ret;
    }
    ret = np_state_db_agent_enrol(ctx->db, argv[0], token, sizeof token, &err);
    if (ret < 0) {
        fprintf(stderr, "netpulse: agent enrol: %s\n", err.msg);
        return ret == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
    }
    printf("%s\n", token);
    fflush(stdout);
    memset(token, 0, sizeof token);
    fprintf(stderr,
            "agent enrol: the token of agent %s is above; it is shown only this once.\n"
            "Put it in the agent's token_file (e.g. /etc/netpulse/agent.token, mode 0600).\n",
            argv[0]);
    return 0;
}

static int run_agent_revoke(struct cli_ctx *ctx, int argc, char **argv)
{
    struct np_err err = {0};
    int ret = open_state(ctx);
    (void)argc;
    if (ret != 0) {
        return ret;
    }
    ret = np_state_db_agent_revoke(ctx->db, argv[0], &err);
    if (ret < 0) {
        fprintf(stderr, "netpulse: agent revoke: %s\n", err.msg);
        return ret == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
    }
    fprintf(stderr, "agent revoke: agent %s revoked\n", argv[0]);
    return 0;
}

static int print_agent(const struct np_agent_info *a, void *arg)
{
    char created[32], seen[32];
    (void)arg;
    np_clock_format_utc(a->created_ms, created, sizeof created);
    if (a->last_seen_ms > 0) {
        np_clock_format_utc(a->last_seen_ms, seen, sizeof seen);
    } else {
        snprintf(seen, sizeof seen, "never");
    }
    printf("%-24s %-8s %-25s %-25s %" PRIu64 "\n", a->id, a->revoked_ms ? "revoked" : "active",
           created, seen, a->applied_seq);
    return 0;
}

static int run_agent_list(struct cli_ctx *ctx, int argc, char **argv)
{
    int ret = open_state(ctx);
    (void)argc;
    (void)argv;
    if (ret != 0) {
        return ret;
    }
    printf("%-24s %-8s %-25s %-25s %s\n", "ID", "STATE", "ENROLLED", "LAST_SEEN", "LAST_BATCH");
    if (np_state_db_agent_list(ctx->db, print_agent, NULL) != 0) {
        fprintf(stderr, "netpulse: agent list: reading the state database failed\n");
        return EXIT_FAILED;
    }
    return 0;
}

/* Finds the subcommand named by argv[0] (and argv[1] for a group); *used says
 * how many words it took. */
static const struct subcommand *find_command(int argc, char **argv, int *used,
                                             const char **group_out)
{
    *group_out = NULL;
    for (size_t i = 0; i < N_COMMANDS; i++) {
        const struct subcommand *c = &commands[i];
        if (!c->group && strcmp(argv[0], c->name) == 0) {
            *used = 1;
            return c;
        }
        if (c->group && strcmp(argv[0], c->group) == 0) {
            *group_out = c->group;
            if (argc > 1 && strcmp(argv[1], c->name) == 0) {
                *used = 2;
                return c;
            }
        }
    }
    return NULL;
}

static void group_usage(FILE *out, const char *group)
{
    fprintf(out, "usage: netpulse [-c FILE] %s SUBCOMMAND\n", group);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (commands[i].group && strcmp(commands[i].group, group) == 0) {
            fprintf(out, "  %s %s %s\n", group, commands[i].name, commands[i].args);
        }
    }
}

int np_cli_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_ctx ctx = {.config_path = NP_COLLECTOR_DEFAULT_CONFIG};
    const struct subcommand *cmd;
    const char *group = NULL;
    int opt, used = 0, ret, nargs;
    char **args;

    /* '+': stop at the subcommand; its own words and options follow. */
    while ((opt = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            ctx.config_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    cmd = find_command(argc - optind, argv + optind, &used, &group);
    if (!cmd) {
        if (group) {
            if (optind + 1 < argc &&
                (strcmp(argv[optind + 1], "--help") == 0 || strcmp(argv[optind + 1], "-h") == 0)) {
                group_usage(stdout, group);
                return 0;
            }
            fprintf(stderr, "netpulse: unknown %s subcommand%s%s\n", group,
                    optind + 1 < argc ? ": " : "", optind + 1 < argc ? argv[optind + 1] : "");
            group_usage(stderr, group);
        } else {
            fprintf(stderr, "netpulse: unknown subcommand: %s\n", argv[optind]);
            usage(stderr);
        }
        return EXIT_USAGE;
    }
    args = argv + optind + used;
    nargs = argc - optind - used;
    for (int i = 0; i < nargs; i++) {
        if (strcmp(args[i], "--help") == 0 || strcmp(args[i], "-h") == 0) {
            command_help(stdout, cmd);
            if (cmd->run == run_check) {
                fputs("\nConfiguration options:\n", stdout);
                np_collector_config_describe(stdout);
            }
            return 0;
        }
        if (strcmp(args[i], "--") == 0) {
            memmove(&args[i], &args[i + 1], (size_t)(nargs - i - 1) * sizeof *args);
            nargs--;
            break;
        }
        if (args[i][0] == '-' && args[i][1] && cmd->n_args >= 0) {
            fprintf(stderr, "netpulse: unknown option %s\n", args[i]);
            command_help(stderr, cmd);
            return EXIT_USAGE;
        }
    }
    if (cmd->n_args >= 0 && nargs != cmd->n_args) {
        command_help(stderr, cmd);
        return EXIT_USAGE;
    }
    current_cmd = cmd;
    ret = cmd->run(&ctx, nargs, args);
    np_state_db_close(ctx.db);
    np_collector_config_free(ctx.conf);
    return ret;
}
