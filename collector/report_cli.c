#include "report_cli.h"

#include "netpulse/clock.h"
#include "netpulse/units.h"
#include "report.h"
#include "report_data.h"
#include "report_time.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define MAX_SITE_ARGS 4096

enum out_mode { OUT_TABLE, OUT_JSON, OUT_CSV };

struct query {
    const char *sites[MAX_SITE_ARGS];
    size_t n_sites;
    int64_t from_ms, to_ms;
    bool have_from, have_to, have_period;
    enum out_mode mode;
    const char *device, *iface;
    /* report */
    int year;
    const char *format, *out_path;
    bool no_graphs;
};

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "netpulse: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    return EXIT_USAGE;
}

/* Parses the options shared by uptime, capacity and report. */
static int parse_query(int argc, char **argv, struct query *q, bool report)
{
    int64_t now = np_clock_wall_ms();
    memset(q, 0, sizeof *q);
    np_report_month_of(now, &q->from_ms, &q->to_ms);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = strcmp(a, "--site") == 0 || strcmp(a, "--from") == 0 ||
                     strcmp(a, "--to") == 0 || strcmp(a, "--month") == 0 ||
                     strcmp(a, "--year") == 0 || strcmp(a, "--device") == 0 ||
                     strcmp(a, "--iface") == 0 || strcmp(a, "--format") == 0 ||
                     strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0;
        if (takes && !v) {
            return usage_error("option needs a value", a);
        }
        if (strcmp(a, "--site") == 0) {
            if (q->n_sites == MAX_SITE_ARGS || np_state_db_check_id(v) < 0) {
                return usage_error("bad or too many --site", v);
            }
            q->sites[q->n_sites++] = v;
        } else if (strcmp(a, "--from") == 0) {
            if (np_report_parse_time(v, &q->from_ms) < 0) {
                return usage_error("bad --from (YYYY-MM-DD[THH:MM[:SS]] or @SECONDS)", v);
            }
            q->have_from = true;
        } else if (strcmp(a, "--to") == 0) {
            if (np_report_parse_time(v, &q->to_ms) < 0) {
                return usage_error("bad --to (YYYY-MM-DD[THH:MM[:SS]] or @SECONDS)", v);
            }
            q->have_to = true;
        } else if (strcmp(a, "--month") == 0) {
            if (np_report_parse_month(v, &q->from_ms, &q->to_ms) < 0 || q->have_period) {
                return usage_error("bad --month (YYYY-MM)", v);
            }
            q->have_period = true;
        } else if (strcmp(a, "--year") == 0) {
            if (np_report_parse_year(v, &q->from_ms, &q->to_ms) < 0 || q->have_period) {
                return usage_error("bad --year (YYYY)", v);
            }
            q->have_period = true;
            q->year = (int)strtol(v, NULL, 10);
        } else if (strcmp(a, "--device") == 0) {
            q->device = v;
        } else if (strcmp(a, "--iface") == 0) {
            q->iface = v;
        } else if (strcmp(a, "--format") == 0 && report) {
            q->format = v;
        } else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && report) {
            q->out_path = v;
        } else if (strcmp(a, "--json") == 0 && !report) {
            q->mode = OUT_JSON;
            continue;
        } else if (strcmp(a, "--csv") == 0 && !report) {
            q->mode = OUT_CSV;
            continue;
        } else if (strcmp(a, "--no-graphs") == 0 && report) {
            q->no_graphs = true;
            continue;
        } else {
            return usage_error("unknown argument", a);
        }
        i++;
    }
    if ((q->have_from || q->have_to) && (q->have_period || !q->have_from || !q->have_to)) {
        return usage_error("give --from and --to together, or --month, or --year", NULL);
    }
    if (q->to_ms <= q->from_ms) {
        return usage_error("--to must be after --from", NULL);
    }
    if (!q->device != !q->iface) {
        return usage_error("--device and --iface go together", NULL);
    }
    return 0;
}

static int open_rrd(const struct np_collector_config *conf, struct np_rrd_store **rrd)
{
    struct np_rrd_store_options o = {conf->collector->data_dir, conf->collector->rrdcached};
    struct np_err err = {0};
    if (np_rrd_store_new(&o, rrd, &err) < 0) {
        fprintf(stderr, "netpulse: %s\n", err.msg);
        return EXIT_FAILED;
    }
    return 0;
}

/* The sites of the query as a JSON array of strings. */
static int query_ids(const struct np_report_ctx *ctx, const struct query *q, json_t **ids)
{
    struct np_err err = {0};
    if (q->n_sites == 0) {
        if (np_report_site_ids(ctx, ids, &err) < 0) {
            fprintf(stderr, "netpulse: %s\n", err.msg);
            return EXIT_FAILED;
        }
        return 0;
    }
    *ids = json_array();
    for (size_t i = 0; *ids && i < q->n_sites; i++) {
        json_array_append_new(*ids, json_string(q->sites[i]));
    }
    return *ids ? 0 : EXIT_FAILED;
}

static void print_rate(double bps, int width)
{
    char buf[NP_UNITS_BUF];
    if (isnan(bps)) {
        printf(" %*s", width, "-");
    } else {
        /* Mbps with one decimal: exact figures are in --json. */
        snprintf(buf, sizeof buf, "%.1fM", bps / 1e6);
        printf(" %*s", width, buf);
    }
}

static void print_dur(int64_t ms, int width)
{
    char buf[40];
    printf(" %*s", width, np_report_format_duration(ms, buf, sizeof buf));
}

static void csv_text(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"') {
            putchar('"');
        }
        putchar(*s);
    }
    putchar('"');
}

static void uptime_row(const struct np_site_figures *f, enum out_mode mode)
{
    const struct np_uptime_result *u = &f->up;
    char pct[32];
    if (u->has_data) {
        snprintf(pct, sizeof pct, "%.3f%%", u->ratio * 100);
    } else {
        snprintf(pct, sizeof pct, "no data");
    }
    if (mode == OUT_CSV) {
        csv_text(f->id);
        printf(",%s,%.4f,%s,%lld,%lld,%lld,%lld,%zu,%lld,%lld\n", u->has_data ? pct : "",
               (double)u->target_ppm / 10000.0,
               !u->has_data ? ""
               : u->met     ? "yes"
                            : "no",
               (long long)u->down_ms, (long long)u->maintenance_ms, (long long)u->no_data_ms,
               (long long)u->measured_ms, u->n_outages, (long long)f->budget_month.left_ms,
               (long long)f->budget_year.left_ms);
        return;
    }
    printf("%-20s %10s %7.2f%% %-4s", f->id, pct, (double)u->target_ppm / 10000.0,
           !u->has_data ? "-"
           : u->met     ? "yes"
                        : "no");
    print_dur(u->down_ms, 13);
    print_dur(u->maintenance_ms, 13);
    print_dur(u->no_data_ms, 13);
    printf(" %7zu", u->n_outages);
    print_dur(f->budget_month.left_ms, 13);
    print_dur(f->budget_year.left_ms, 13);
    printf("\n");
}

static void capacity_row(const struct np_site_figures *f, enum out_mode mode)
{
    const struct np_capacity_result *c = &f->cap;
    char busy[16], rec[256];
    np_capacity_hour_name(c->busiest[0], busy, sizeof busy);
    if (mode == OUT_CSV) {
        csv_text(f->id);
        printf(",%llu,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,",
               (unsigned long long)c->rate_last_bps, c->in.p95_bps, c->out.p95_bps, c->in.max_bps,
               c->out.max_bps, c->in.mean_bps, c->out.mean_bps, f->current_util, c->coverage);
        csv_text(busy);
        printf(",%s,", np_forecast_kind_name(f->forecast.kind));
        csv_text(np_report_recommendation(f, rec, sizeof rec));
        printf("\n");
        return;
    }
    printf("%-20s", f->id);
    print_rate(c->rate_last_bps ? (double)c->rate_last_bps : NAN, 9);
    print_rate(c->in.p95_bps, 9);
    print_rate(c->out.p95_bps, 9);
    print_rate(c->in.max_bps, 9);
    print_rate(c->out.max_bps, 9);
    print_rate(c->in.mean_bps, 9);
    if (isnan(f->current_util)) {
        printf(" %6s", "-");
    } else {
        printf(" %5.1f%%", f->current_util * 100);
    }
    printf(" %5.1f%% %-9s %-7s\n", c->coverage * 100, busy,
           np_forecast_kind_name(f->forecast.kind));
}

/* Runs uptime (capacity = false) or capacity over the query's sites. */
static int run_figures(const struct np_collector_config *conf, struct np_state_db *db, int argc,
                       char **argv, bool capacity)
{
    struct np_rrd_store *rrd = NULL;
    struct np_site_figures *f = NULL;
    json_t *ids = NULL, *arr = NULL;
    struct query *q = malloc(sizeof *q);
    int ret;
    size_t i;

    if (!q) {
        return EXIT_FAILED;
    }
    if ((ret = parse_query(argc, argv, q, false)) != 0 || (ret = open_rrd(conf, &rrd)) != 0) {
        free(q);
        return ret;
    }
    struct np_report_ctx ctx = {db, rrd, conf->targets, np_clock_wall_ms()};
    f = malloc(sizeof *f);
    if (!f || (ret = query_ids(&ctx, q, &ids)) != 0) {
        ret = EXIT_FAILED;
        goto out;
    }
    if (q->mode == OUT_JSON) {
        arr = json_array();
    } else if (q->mode == OUT_CSV) {
        printf(capacity ? "site,circuit_bps,p95_in_bps,p95_out_bps,max_in_bps,max_out_bps,"
                          "mean_in_bps,mean_out_bps,utilisation,coverage,busiest_hour,forecast,"
                          "recommendation\n"
                        : "site,uptime_percent,target_percent,met,down_ms,maintenance_ms,"
                          "no_data_ms,measured_ms,outages,budget_month_left_ms,"
                          "budget_year_left_ms\n");
    } else if (capacity) {
        printf("%-20s %9s %9s %9s %9s %9s %9s %6s %6s %-9s %-7s\n", "SITE", "CIRCUIT", "P95_IN",
               "P95_OUT", "MAX_IN", "MAX_OUT", "MEAN_IN", "UTIL", "DATA", "BUSIEST", "80%");
    } else {
        printf("%-20s %10s %8s %-4s %13s %13s %13s %7s %13s %13s\n", "SITE", "UPTIME", "TARGET",
               "MET", "DOWN", "MAINTENANCE", "NO_DATA", "OUTAGES", "BUDGET_MONTH", "BUDGET_YEAR");
    }
    for (i = 0; i < json_array_size(ids); i++) {
        struct np_err err = {0};
        const char *id = json_string_value(json_array_get(ids, i));
        ret = np_report_site(&ctx, id, q->from_ms, q->to_ms, q->device, q->iface, f, &err);
        if (ret < 0) {
            np_report_site_free(f);
            fprintf(stderr, "netpulse: %s: %s\n", id, err.msg);
            ret = ret == -ENOENT ? EXIT_USAGE : EXIT_FAILED;
            goto out;
        }
        if (arr) {
            json_array_append_new(arr,
                                  capacity ? np_report_capacity_json(f) : np_report_uptime_json(f));
        } else if (capacity) {
            capacity_row(f, q->mode);
        } else {
            uptime_row(f, q->mode);
        }
        np_report_site_free(f);
    }
    if (arr) {
        json_dumpf(arr, stdout, JSON_INDENT(1));
        putchar('\n');
    }
    ret = 0;
out:
    json_decref(arr);
    json_decref(ids);
    free(f);
    free(q);
    np_rrd_store_free(rrd);
    return ret;
}

int np_report_cli_uptime(const struct np_collector_config *conf, struct np_state_db *db, int argc,
                         char **argv)
{
    return run_figures(conf, db, argc, argv, false);
}

int np_report_cli_capacity(const struct np_collector_config *conf, struct np_state_db *db, int argc,
                           char **argv)
{
    return run_figures(conf, db, argc, argv, true);
}

int np_report_cli_report(const struct np_collector_config *conf, struct np_state_db *db, int argc,
                         char **argv)
{
    struct np_rrd_store *rrd = NULL;
    struct np_err err = {0};
    struct np_report_options opt = {0};
    struct query *q = malloc(sizeof *q);
    size_t n = 0;
    int ret;

    if (!q) {
        return EXIT_FAILED;
    }
    if ((ret = parse_query(argc, argv, q, true)) != 0) {
        goto out;
    }
    if (q->year == 0 || !q->out_path || !q->format || q->have_from) {
        ret = usage_error("report needs --year YYYY, --format and -o PATH", NULL);
        goto out;
    }
    if (np_report_format_parse(q->format, &opt.format) < 0) {
        ret = usage_error("--format must be html, csv or json", q->format);
        goto out;
    }
    if ((ret = open_rrd(conf, &rrd)) != 0) {
        goto out;
    }
    opt.year = q->year;
    opt.sites = q->sites;
    opt.n_sites = q->n_sites;
    opt.out_path = q->out_path;
    opt.graphs = !q->no_graphs;
    struct np_report_ctx ctx = {db, rrd, conf->targets, np_clock_wall_ms()};
    ret = np_report_annual(&ctx, &opt, &n, &err);
    if (ret < 0) {
        fprintf(stderr, "netpulse: %s\n", err.msg);
        ret = ret == -ENOENT ? EXIT_USAGE : EXIT_FAILED;
        goto out;
    }
    fprintf(stderr, "report: %zu schools written to %s\n", n, q->out_path);
    ret = 0;
out:
    np_rrd_store_free(rrd);
    free(q);
    return ret;
}

int np_report_cli_maintenance_add(struct np_state_db *db, int argc, char **argv)
{
    struct np_err err = {0};
    int64_t from, to, id = 0;
    int ret;
    if (argc != 4) {
        return usage_error("maintenance add SITE FROM TO REASON", NULL);
    }
    if (np_report_parse_time(argv[1], &from) < 0 || np_report_parse_time(argv[2], &to) < 0) {
        return usage_error("FROM and TO: YYYY-MM-DD[THH:MM[:SS]] (UTC) or @SECONDS", NULL);
    }
    ret = np_state_db_maintenance_add(db, argv[0], from, to, argv[3], &id, &err);
    if (ret < 0) {
        fprintf(stderr, "netpulse: maintenance add: %s\n", err.msg);
        return ret == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
    }
    printf("%lld\n", (long long)id);
    return 0;
}

static int print_window(const struct np_maintenance *m, void *ctx)
{
    char a[32], b[32];
    (void)ctx;
    printf("%-6lld %-20s %-19s  %-19s  %s\n", (long long)m->id, m->site_id,
           np_report_format_time(m->start_ms, a, sizeof a),
           np_report_format_time(m->end_ms, b, sizeof b), m->reason);
    return 0;
}

int np_report_cli_maintenance_list(struct np_state_db *db, int argc, char **argv)
{
    struct np_err err = {0};
    if (argc > 1 || (argc == 1 && np_state_db_check_id(argv[0]) < 0)) {
        return usage_error("maintenance list [SITE]", NULL);
    }
    printf("%-6s %-20s %-19s  %-19s  %s\n", "ID", "SITE", "FROM (UTC)", "TO (UTC)", "REASON");
    if (np_state_db_maintenance_list(db, argc ? argv[0] : NULL, INT64_MIN, INT64_MAX, print_window,
                                     NULL, &err) != 0) {
        fprintf(stderr, "netpulse: maintenance list: %s\n", err.msg);
        return EXIT_FAILED;
    }
    return 0;
}

int np_report_cli_maintenance_delete(struct np_state_db *db, int argc, char **argv)
{
    struct np_err err = {0};
    char *end;
    long long id;
    if (argc != 1) {
        return usage_error("maintenance delete ID", NULL);
    }
    errno = 0;
    id = strtoll(argv[0], &end, 10);
    if (!argv[0][0] || *end || errno || id <= 0) {
        return usage_error("bad maintenance id", argv[0]);
    }
    if (np_state_db_maintenance_delete(db, id, &err) < 0) {
        fprintf(stderr, "netpulse: maintenance delete: %s\n", err.msg);
        return EXIT_FAILED;
    }
    return 0;
}

int np_report_cli_circuit_set(struct np_state_db *db, int argc, char **argv)
{
    struct np_err err = {0};
    int64_t from;
    uint64_t rate;
    int ret;
    if (argc != 3) {
        return usage_error("circuit set SITE FROM RATE", NULL);
    }
    if (np_report_parse_time(argv[1], &from) < 0) {
        return usage_error("FROM: YYYY-MM-DD[THH:MM[:SS]] (UTC) or @SECONDS", argv[1]);
    }
    if (np_units_rate_bps(argv[2], &rate) < 0) {
        return usage_error("RATE: a rate with a unit, e.g. 1Gbps", argv[2]);
    }
    ret = np_state_db_rate_set(db, argv[0], from, rate, &err);
    if (ret < 0) {
        fprintf(stderr, "netpulse: circuit set: %s\n", err.msg);
        return ret == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
    }
    return 0;
}
