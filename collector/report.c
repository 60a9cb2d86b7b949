#include "report.h"

#include "report_time.h"

#include <openssl/evp.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GRAPH_WIDTH "760"
#define GRAPH_HEIGHT "160"
#define MAX_OUTAGES_SHOWN 8

int np_report_format_parse(const char *s, enum np_report_format *out)
{
    if (s && strcmp(s, "html") == 0) {
        *out = NP_REPORT_HTML;
    } else if (s && strcmp(s, "csv") == 0) {
        *out = NP_REPORT_CSV;
    } else if (s && strcmp(s, "json") == 0) {
        *out = NP_REPORT_JSON;
    } else {
        return -EINVAL;
    }
    return 0;
}

/* ---- small writers -------------------------------------------------------------- */

static void html_text(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

static void csv_field(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"') {
            fputc('"', f);
        }
        fputc(*s, f);
    }
    fputc('"', f);
}

/* Mbit/s with a sensible precision, or "n/a". */
static char *mbps(double bps, char *buf, size_t len)
{
    if (isnan(bps)) {
        snprintf(buf, len, "n/a");
    } else if (bps >= 1e9 * 10) {
        snprintf(buf, len, "%.0f Mbit/s", bps / 1e6);
    } else {
        snprintf(buf, len, "%.1f Mbit/s", bps / 1e6);
    }
    return buf;
}

static char *pct(double ratio, char *buf, size_t len)
{
    if (isnan(ratio)) {
        snprintf(buf, len, "n/a");
    } else {
        snprintf(buf, len, "%.1f %%", ratio * 100);
    }
    return buf;
}

/* Uptime needs more digits: 99.50 % and 99.49 % must read differently. */
static char *uptime_pct(const struct np_uptime_result *u, char *buf, size_t len)
{
    if (!u->has_data) {
        snprintf(buf, len, "no data");
    } else {
        snprintf(buf, len, "%.3f %%", u->ratio * 100);
    }
    return buf;
}

static char *forecast_text(const struct np_forecast *fc, char *buf, size_t len)
{
    char t[32];
    switch (fc->kind) {
    case NP_FORECAST_REACHED:
        snprintf(buf, len, "80 %% already reached");
        break;
    case NP_FORECAST_AT:
        np_report_format_time(fc->reach_ms, t, sizeof t);
        t[7] = '\0';
        snprintf(buf, len, "80 %% by %s (%+.0f %%/year)", t, fc->yearly_growth * 100);
        break;
    case NP_FORECAST_NEVER:
        snprintf(buf, len, "not within 50 years");
        break;
    default:
        snprintf(buf, len, "not enough data (%zu months)", fc->points);
        break;
    }
    return buf;
}

/* ---- graph ------------------------------------------------------------------------- */

/* Renders the year's traffic of the uplink into a data: URI (malloc'ed), or
 * NULL when there is nothing to draw or rendering failed. */
static char *graph_uri(const struct np_report_ctx *ctx, const struct np_site_figures *f)
{
    char path[PATH_MAX], start[32], end[32], title[200], def_in[PATH_MAX + 32],
        def_out[PATH_MAX + 32], p95[96], cap[96], upper[40];
    const char *argv[24];
    unsigned char *png = NULL;
    size_t len = 0;
    char *uri = NULL;
    int argc = 0;
    double used = f->used_bps;

    if (!ctx->rrd || !f->has_uplink || !f->has_series ||
        np_rrd_store_path(ctx->rrd, NP_RRD_IFACE, f->id, f->device, f->iface, path, sizeof path) <
            0 ||
        strchr(path, ':')) {
        return NULL;
    }
    np_rrd_store_flush(ctx->rrd, NP_RRD_IFACE, f->id, f->device, f->iface, NULL);
    snprintf(start, sizeof start, "%lld", (long long)(f->from_ms / 1000));
    snprintf(end, sizeof end, "%lld", (long long)(f->to_ms / 1000));
    snprintf(title, sizeof title, "%s: uplink traffic (5-minute averages)", f->id);
    snprintf(def_in, sizeof def_in, "DEF:in=%s:in_bps:AVERAGE", path);
    snprintf(def_out, sizeof def_out, "DEF:out=%s:out_bps:AVERAGE", path);
    argv[argc++] = "--start";
    argv[argc++] = start;
    argv[argc++] = "--end";
    argv[argc++] = end;
    argv[argc++] = "--width";
    argv[argc++] = GRAPH_WIDTH;
    argv[argc++] = "--height";
    argv[argc++] = GRAPH_HEIGHT;
    argv[argc++] = "--imgformat";
    argv[argc++] = "PNG";
    argv[argc++] = "--lower-limit";
    argv[argc++] = "0";
    /* Room for the 80 % line: HRULEs do not widen rrdtool's autoscale, and
     * the headroom to it is the point of the graph. Data above still widens. */
    if (f->cap.rate_last_bps > 0 || !isnan(used)) {
        double top = fmax(isnan(used) ? 0 : used, 0.8 * (double)f->cap.rate_last_bps) * 1.1;
        snprintf(upper, sizeof upper, "%.0f", top);
        argv[argc++] = "--upper-limit";
        argv[argc++] = upper;
    }
    argv[argc++] = "--vertical-label";
    argv[argc++] = "bits/s";
    argv[argc++] = "--title";
    argv[argc++] = title;
    argv[argc++] = def_in;
    argv[argc++] = def_out;
    argv[argc++] = "AREA:in#4a90d9:In";
    argv[argc++] = "LINE1:out#e07b39:Out";
    /* Our own 95th percentile (capacity.h), not rrdtool's PERCENT, so the
     * line is the figure printed beside it. */
    if (!isnan(used)) {
        snprintf(p95, sizeof p95, "HRULE:%.0f#2a7a2a:95th percentile", used);
        argv[argc++] = p95;
    }
    if (f->cap.rate_last_bps > 0) {
        snprintf(cap, sizeof cap, "HRULE:%.0f#cc0000:80 %% of circuit",
                 0.8 * (double)f->cap.rate_last_bps);
        argv[argc++] = cap;
    }
    if (np_rrd_store_graph(ctx->rrd, argc, argv, &png, &len, NULL) < 0 || len == 0) {
        free(png);
        return NULL;
    }
    {
        size_t prefix = strlen("data:image/png;base64,");
        uri = malloc(prefix + 4 * ((len + 2) / 3) + 1);
        if (uri) {
            memcpy(uri, "data:image/png;base64,", prefix);
            EVP_EncodeBlock((unsigned char *)uri + prefix, png, (int)len);
        }
    }
    free(png);
    return uri;
}

/* ---- HTML ----------------------------------------------------------------------- */

static const char css[] =
    "body{font-family:'DejaVu Sans',Arial,sans-serif;font-size:10pt;color:#222;margin:0 12px}"
    "h1{font-size:18pt;margin:6px 0}h2{font-size:14pt;margin:4px 0 6px;border-bottom:2px solid "
    "#4a90d9}h3{font-size:11pt;margin:8px 0 3px}"
    "table{border-collapse:collapse;margin:3px 0}td,th{border:1px solid #bbb;padding:2px "
    "5px;text-align:left;font-size:9pt}th{background:#eef3fa}"
    "td.n{text-align:right}.ok{color:#1d6b1d;font-weight:bold}.bad{color:#b00000;font-weight:"
    "bold}.na{color:#777}"
    ".rec{background:#fff6d6;border-left:4px solid #e0b000;padding:4px 8px;margin:6px 0}"
    ".cols{display:flex;gap:14px}.cols>div{flex:1}"
    "td{white-space:nowrap}table.heat td{width:11px;height:9px;padding:0;border:1px solid #fff}"
    "table.heat th{font-size:7pt;padding:0 2px}"
    "img.graph{width:100%;max-width:760px}"
    "section.school{break-before:page;page-break-before:always}"
    "@page{size:A4;margin:12mm}"
    "@media print{body{margin:0}}";

static void html_head(FILE *o, int year)
{
    fprintf(o,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>Annual capacity assessment %d</title><style>%s</style></head><body>\n",
            year, css);
}

static void html_summary(FILE *o, int year, json_t *summary, size_t n)
{
    json_t *up = json_object_get(summary, "uptime"), *gr = json_object_get(summary, "growth");
    json_t *list = json_object_get(summary, "upgrades"), *it;
    char b1[40];
    size_t i;
    fprintf(o,
            "<section class=\"summary\"><h1>Annual capacity assessment %d</h1>\n"
            "<h2>District summary</h2>\n<table>"
            "<tr><th>Schools assessed</th><td class=\"n\">%zu</td></tr>"
            "<tr><th>Meeting the uptime target</th><td class=\"n\">%lld</td></tr>"
            "<tr><th>Missing the uptime target</th><td class=\"n\">%lld</td></tr>"
            "<tr><th>No uptime data</th><td class=\"n\">%lld</td></tr>"
            "<tr><th>On track for the growth target</th><td class=\"n\">%lld</td></tr>"
            "<tr><th>Behind the growth target</th><td class=\"n\">%lld</td></tr>"
            "<tr><th>Growth not known (no baseline)</th><td class=\"n\">%lld</td></tr>"
            "</table>\n",
            year, n, (long long)json_integer_value(json_object_get(up, "met")),
            (long long)json_integer_value(json_object_get(up, "missed")),
            (long long)json_integer_value(json_object_get(up, "no_data")),
            (long long)json_integer_value(json_object_get(gr, "on_track")),
            (long long)json_integer_value(json_object_get(gr, "behind")),
            (long long)json_integer_value(json_object_get(gr, "unknown")));
    fprintf(o, "<h3>Upgrade list, by need</h3>\n");
    if (json_array_size(list) == 0) {
        fprintf(o, "<p>No school needs an upgrade this year.</p>\n");
    } else {
        fprintf(o, "<table><tr><th>#</th><th>School</th><th>Type</th><th>Circuit</th>"
                   "<th>Utilisation (p95)</th><th>Recommendation</th></tr>\n");
        json_array_foreach(list, i, it)
        {
            fprintf(o, "<tr><td class=\"n\">%lld</td><td>",
                    (long long)json_integer_value(json_object_get(it, "rank")));
            html_text(o, json_string_value(json_object_get(it, "name")));
            fprintf(o, " (");
            html_text(o, json_string_value(json_object_get(it, "site")));
            fprintf(
                o, ")</td><td>%s</td><td class=\"n\">%s</td><td class=\"n\">",
                json_string_value(json_object_get(it, "school_type")),
                mbps((double)json_integer_value(json_object_get(it, "rate_bps")), b1, sizeof b1));
            json_t *u = json_object_get(it, "utilisation");
            fprintf(o, "%s</td><td>",
                    pct(json_is_number(u) ? json_number_value(u) : NAN, b1, sizeof b1));
            html_text(o, json_string_value(json_object_get(it, "recommendation")));
            fprintf(o, "</td></tr>\n");
        }
        fprintf(o, "</table>\n");
    }
    fprintf(o, "</section>\n");
}

static void html_heatmap(FILE *o, const struct np_capacity_result *c)
{
    static const char *const days[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    double max = 0;
    for (int b = 0; b < NP_CAPACITY_HOURS; b++) {
        double v = fmax(isnan(c->hour_in_bps[b]) ? 0 : c->hour_in_bps[b],
                        isnan(c->hour_out_bps[b]) ? 0 : c->hour_out_bps[b]);
        max = v > max ? v : max;
    }
    fprintf(o, "<table class=\"heat\"><tr><th></th>");
    for (int h = 0; h < 24; h++) {
        fprintf(o, "<th>%d</th>", h);
    }
    fprintf(o, "</tr>\n");
    for (int d = 0; d < 7; d++) {
        fprintf(o, "<tr><th>%s</th>", days[d]);
        for (int h = 0; h < 24; h++) {
            int b = d * 24 + h;
            double v = fmax(isnan(c->hour_in_bps[b]) ? 0 : c->hour_in_bps[b],
                            isnan(c->hour_out_bps[b]) ? 0 : c->hour_out_bps[b]);
            int shade = max > 0 ? (int)(255 - 200 * v / max) : 255;
            if (c->hour_n[b] == 0) {
                fprintf(o, "<td style=\"background:#ddd\"></td>");
            } else {
                fprintf(o, "<td style=\"background:rgb(%d,%d,255)\"></td>", shade, shade);
            }
        }
        fprintf(o, "</tr>\n");
    }
    fprintf(o, "</table>\n");
}

static void html_outages(FILE *o, const struct np_uptime_result *u)
{
    char b1[40], b2[40];
    fprintf(o,
            "<h3>Outages (%zu)</h3><table>"
            "<tr><th>Start (UTC)</th><th>Duration</th><th>Cause</th></tr>",
            u->n_outages);
    for (size_t i = 0; i < u->n_outages && i < MAX_OUTAGES_SHOWN; i++) {
        const struct np_outage_report *r = &u->outages[i];
        fprintf(o, "<tr><td>%s</td><td class=\"n\">%s%s</td><td>%s</td></tr>",
                np_report_format_time(r->start_ms, b1, sizeof b1),
                np_report_format_duration(r->duration_ms, b2, sizeof b2),
                r->maintenance_ms ? " (in maintenance)" : "", np_outage_cause_name(r->cause));
    }
    if (u->n_outages > MAX_OUTAGES_SHOWN) {
        fprintf(o, "<tr><td colspan=\"3\">and %zu more</td></tr>",
                u->n_outages - MAX_OUTAGES_SHOWN);
    }
    fprintf(o, "</table>\n");
}

static void html_school(FILE *o, const struct np_report_ctx *ctx, const struct np_site_figures *f,
                        bool graphs)
{
    const struct np_uptime_result *u = &f->up;
    const struct np_capacity_result *c = &f->cap;
    char b1[64], b2[64], b3[64], rec[256];
    char *uri = graphs ? graph_uri(ctx, f) : NULL;

    fprintf(o, "<section class=\"school\" id=\"site-");
    html_text(o, f->id);
    fprintf(o, "\"><h2>School: ");
    html_text(o, f->name);
    fprintf(o, " (");
    html_text(o, f->id);
    fprintf(o, ")</h2>\n<p>Type: %s. Uplink: ", np_school_type_name(f->school_type));
    if (f->has_uplink) {
        html_text(o, f->device);
        fprintf(o, " / ");
        html_text(o, f->iface);
    } else {
        fprintf(o, "<span class=\"na\">not known</span>");
    }
    fprintf(o, ".</p>\n<div class=\"rec\"><b>Recommendation:</b> ");
    html_text(o, np_report_recommendation(f, rec, sizeof rec));
    fprintf(o, "</div>\n<div class=\"cols\"><div><h3>Uptime</h3><table>");
    fprintf(o, "<tr><th>Uptime</th><td class=\"n\">%s</td></tr>", uptime_pct(u, b1, sizeof b1));
    fprintf(o, "<tr><th>Target</th><td class=\"n\">%.1f %%</td></tr>",
            (double)u->target_ppm / 10000.0);
    fprintf(o, "<tr><th>Target met</th><td class=\"n %s\">%s</td></tr>",
            !u->has_data ? "na"
            : u->met     ? "ok"
                         : "bad",
            !u->has_data ? "no data"
            : u->met     ? "yes"
                         : "no");
    fprintf(o, "<tr><th>Downtime</th><td class=\"n\">%s</td></tr>",
            np_report_format_duration(u->down_ms, b1, sizeof b1));
    fprintf(o, "<tr><th>Maintenance</th><td class=\"n\">%s</td></tr>",
            np_report_format_duration(u->maintenance_ms, b1, sizeof b1));
    fprintf(o, "<tr><th>No data</th><td class=\"n\">%s</td></tr>",
            np_report_format_duration(u->no_data_ms, b1, sizeof b1));
    fprintf(o, "<tr><th>Budget left (year)</th><td class=\"n\">%s</td></tr>",
            np_report_format_duration(f->budget_year.left_ms, b1, sizeof b1));
    fprintf(o, "</table></div>\n<div><h3>Capacity</h3><table>");
    fprintf(o, "<tr><th>Circuit</th><td class=\"n\">%s%s</td></tr>",
            c->rate_last_bps ? mbps((double)c->rate_last_bps, b1, sizeof b1) : "unknown",
            c->rate_changes ? " (upgraded this year)" : "");
    fprintf(o, "<tr><th>95th percentile in / out</th><td class=\"n\">%s / %s</td></tr>",
            mbps(c->in.p95_bps, b1, sizeof b1), mbps(c->out.p95_bps, b2, sizeof b2));
    fprintf(o, "<tr><th>Peak in / out</th><td class=\"n\">%s / %s</td></tr>",
            mbps(c->in.max_bps, b1, sizeof b1), mbps(c->out.max_bps, b2, sizeof b2));
    fprintf(o, "<tr><th>Mean in / out</th><td class=\"n\">%s / %s</td></tr>",
            mbps(c->in.mean_bps, b1, sizeof b1), mbps(c->out.mean_bps, b2, sizeof b2));
    fprintf(o, "<tr><th>Utilisation (p95, rate in force)</th><td class=\"n\">%s</td></tr>",
            pct(fmax(isnan(c->in.util_p95) ? -1 : c->in.util_p95,
                     isnan(c->out.util_p95) ? -1 : c->out.util_p95) < 0
                    ? NAN
                    : fmax(c->in.util_p95, c->out.util_p95),
                b1, sizeof b1));
    fprintf(o, "<tr><th>Data coverage</th><td class=\"n\">%s</td></tr>",
            pct(c->n_samples ? c->coverage : NAN, b1, sizeof b1));
    fprintf(o, "<tr><th>Forecast</th><td class=\"n\">%s</td></tr>",
            forecast_text(&f->forecast, b1, sizeof b1));
    fprintf(o, "</table></div>\n<div><h3>Growth (target +%.0f %% in %lld years)</h3><table>",
            f->growth_target * 100, (long long)ctx->targets->growth_years);
    if (f->growth_provisioned.known) {
        fprintf(o,
                "<tr><th>Provisioned since %d</th><td class=\"n\">%+.0f %%</td></tr>"
                "<tr><th>Expected by now</th><td class=\"n\">%+.0f %%</td></tr>"
                "<tr><th>On track</th><td class=\"n %s\">%s</td></tr>"
                "<tr><th>Needed per year</th><td class=\"n\">%+.1f %%</td></tr>",
                f->baseline_year, f->growth_provisioned.growth * 100,
                f->growth_provisioned.expected_growth * 100,
                f->growth_provisioned.on_track ? "ok" : "bad",
                f->growth_provisioned.on_track ? "yes" : "no",
                f->growth_provisioned.needed_yearly * 100);
    } else {
        fprintf(o, "<tr><th>Provisioned</th><td class=\"na\">no baseline</td></tr>");
    }
    if (f->growth_used.known) {
        fprintf(o, "<tr><th>Used (p95) since %d</th><td class=\"n\">%+.0f %%</td></tr>",
                f->baseline_year, f->growth_used.growth * 100);
    } else {
        fprintf(o, "<tr><th>Used (p95)</th><td class=\"na\">no baseline data</td></tr>");
    }
    fprintf(o, "</table></div></div>\n");

    if (uri) {
        fprintf(o, "<h3>Traffic</h3><img class=\"graph\" alt=\"traffic graph of ");
        html_text(o, f->id);
        fprintf(o, "\" src=\"%s\">\n", uri);
    } else {
        fprintf(o, "<h3>Traffic</h3><p class=\"na\">No graph: no traffic data.</p>\n");
    }
    free(uri);
    fprintf(o, "<div class=\"cols\"><div><h3>Busiest hours (UTC)</h3>");
    html_heatmap(o, c);
    fprintf(o, "<p>");
    for (int b = 0; b < NP_CAPACITY_BUSIEST && c->busiest[b] >= 0; b++) {
        fprintf(o, "%s%s",
                b ? ", " : "Busiest: ", np_capacity_hour_name(c->busiest[b], b1, sizeof b1));
    }
    fprintf(o, "</p>\n");
    html_outages(o, u);
    fprintf(o, "</div>\n<div><h3>Monthly 95th percentile (Mbit/s)</h3><table>"
               "<tr><th>Month</th><th>In</th><th>Out</th><th>Circuit</th></tr>");
    for (size_t i = 0; i < f->n_months; i++) {
        const struct np_capacity_month *m = &f->months[i];
        snprintf(b1, sizeof b1, "%.1f", m->p95_in_bps / 1e6);
        snprintf(b2, sizeof b2, "%.1f", m->p95_out_bps / 1e6);
        snprintf(b3, sizeof b3, "%.0f", (double)m->rate_bps / 1e6);
        fprintf(o,
                "<tr><td>%04d-%02u</td><td class=\"n\">%s</td><td class=\"n\">%s</td>"
                "<td class=\"n\">%s</td></tr>",
                m->year, m->month, m->known_in ? b1 : "no data", m->known_out ? b2 : "no data",
                m->rate_bps ? b3 : "unknown");
    }
    fprintf(o, "</table></div></div>\n</section>\n");
}

/* ---- CSV ------------------------------------------------------------------------ */

static void csv_num(FILE *o, double v)
{
    if (isnan(v)) {
        fputc(',', o);
    } else {
        fprintf(o, ",%.6g", v);
    }
}

static void csv_row(FILE *o, const struct np_site_figures *f)
{
    char rec[256], when[32] = "";
    const struct np_uptime_result *u = &f->up;
    csv_field(o, f->id);
    fputc(',', o);
    csv_field(o, f->name);
    fprintf(o, ",%s", np_school_type_name(f->school_type));
    csv_num(o, u->has_data ? u->ratio * 100 : NAN);
    fprintf(o, ",%s,%lld,%lld,%lld,%lld",
            !u->has_data ? ""
            : u->met     ? "yes"
                         : "no",
            (long long)(u->down_ms / 1000), (long long)(u->maintenance_ms / 1000),
            (long long)(u->no_data_ms / 1000), (long long)(f->budget_year.left_ms / 1000));
    fprintf(o, ",%llu", (unsigned long long)f->cap.rate_last_bps);
    csv_num(o, f->cap.in.p95_bps);
    csv_num(o, f->cap.out.p95_bps);
    csv_num(o, f->cap.in.max_bps);
    csv_num(o, f->cap.out.max_bps);
    csv_num(o, f->cap.in.mean_bps);
    csv_num(o, f->cap.out.mean_bps);
    csv_num(o, f->current_util);
    csv_num(o, f->growth_provisioned.known ? f->growth_provisioned.growth : NAN);
    fprintf(o, ",%s",
            !f->growth_provisioned.known     ? ""
            : f->growth_provisioned.on_track ? "yes"
                                             : "no");
    csv_num(o, f->growth_provisioned.known ? f->growth_provisioned.needed_yearly : NAN);
    if (f->forecast.kind == NP_FORECAST_AT || f->forecast.kind == NP_FORECAST_REACHED) {
        np_report_format_time(f->forecast.reach_ms, when, sizeof when);
        when[10] = '\0';
    }
    fprintf(o, ",%s,%s,", np_forecast_kind_name(f->forecast.kind), when);
    csv_field(o, np_report_recommendation(f, rec, sizeof rec));
    fputs("\r\n", o);
}

/* ---- the report --------------------------------------------------------------- */

int np_report_annual(const struct np_report_ctx *ctx, const struct np_report_options *opt,
                     size_t *n_sites_out, struct np_err *err)
{
    struct np_site_figures **figs = NULL;
    json_t *ids = NULL, *summary = NULL, *doc = NULL;
    size_t n = 0;
    int64_t from, to;
    char tmp[PATH_MAX];
    FILE *o = NULL;
    int ret = 0;

    if (opt->year < 1970 || opt->year > 9999 || !opt->out_path) {
        return np_err_set(err, -EINVAL, "report: bad year or no output path");
    }
    from = np_report_month_start_ms(opt->year, 1);
    to = np_report_month_start_ms(opt->year + 1, 1);
    if (opt->n_sites > 0) {
        ids = json_array();
        for (size_t i = 0; ids && i < opt->n_sites; i++) {
            json_array_append_new(ids, json_string(opt->sites[i]));
        }
        if (!ids) {
            return np_err_set(err, -ENOMEM, "report: out of memory");
        }
    } else if ((ret = np_report_site_ids(ctx, &ids, err)) < 0) {
        return ret;
    }
    n = json_array_size(ids);
    figs = calloc(n ? n : 1, sizeof *figs);
    if (!figs) {
        ret = np_err_set(err, -ENOMEM, "report: out of memory");
        goto out_free;
    }
    for (size_t i = 0; i < n; i++) {
        figs[i] = malloc(sizeof *figs[i]);
        if (!figs[i]) {
            ret = np_err_set(err, -ENOMEM, "report: out of memory");
            goto out_free;
        }
        ret = np_report_site(ctx, json_string_value(json_array_get(ids, i)), from, to, NULL, NULL,
                             figs[i], err);
        if (ret < 0) {
            np_report_site_free(figs[i]);
            free(figs[i]);
            figs[i] = NULL;
            goto out_free;
        }
    }
    summary = np_report_summary_json(figs, n);
    if (!summary) {
        ret = np_err_set(err, -ENOMEM, "report: out of memory");
        goto out_free;
    }

    if (snprintf(tmp, sizeof tmp, "%s.tmp", opt->out_path) >= (int)sizeof tmp) {
        ret = np_err_set(err, -ENAMETOOLONG, "report: output path too long");
        goto out_free;
    }
    o = fopen(tmp, "w");
    if (!o) {
        ret = -errno;
        np_err_set(err, ret, "report: cannot write %s: %s", tmp, np_strerror(ret));
        goto out_free;
    }
    switch (opt->format) {
    case NP_REPORT_HTML:
        html_head(o, opt->year);
        html_summary(o, opt->year, summary, n);
        for (size_t i = 0; i < n; i++) {
            html_school(o, ctx, figs[i], opt->graphs);
        }
        fprintf(o, "</body></html>\n");
        break;
    case NP_REPORT_CSV:
        fputs("site,name,school_type,uptime_percent,uptime_met,downtime_s,maintenance_s,"
              "no_data_s,budget_left_year_s,circuit_bps,p95_in_bps,p95_out_bps,max_in_bps,"
              "max_out_bps,mean_in_bps,mean_out_bps,utilisation,provisioned_growth,"
              "growth_on_track,growth_needed_yearly,forecast,forecast_date,recommendation\r\n",
              o);
        for (size_t i = 0; i < n; i++) {
            csv_row(o, figs[i]);
        }
        break;
    case NP_REPORT_JSON: {
        json_t *sites = json_array();
        for (size_t i = 0; sites && i < n; i++) {
            json_array_append_new(sites,
                                  json_pack("{s:o, s:o}", "uptime", np_report_uptime_json(figs[i]),
                                            "capacity", np_report_capacity_json(figs[i])));
        }
        doc = json_pack("{s:i, s:O, s:o}", "year", opt->year, "summary", summary, "sites",
                        sites ? sites : json_null());
        if (!doc || json_dumpf(doc, o, JSON_INDENT(1)) < 0) {
            ret = np_err_set(err, -ENOMEM, "report: out of memory");
        }
        fputc('\n', o);
        break;
    }
    }
    if (ferror(o) && ret == 0) {
        ret = np_err_set(err, -EIO, "report: write error on %s", tmp);
    }
    if (fclose(o) != 0 && ret == 0) {
        ret = np_err_set(err, -errno, "report: cannot write %s", tmp);
    }
    o = NULL;
    if (ret == 0 && rename(tmp, opt->out_path) < 0) {
        ret = -errno;
        np_err_set(err, ret, "report: rename to %s: %s", opt->out_path, np_strerror(ret));
    }
    if (ret < 0) {
        remove(tmp);
    }
    if (n_sites_out) {
        *n_sites_out = n;
    }

out_free:
    json_decref(doc);
    json_decref(summary);
    json_decref(ids);
    for (size_t i = 0; figs && i < n; i++) {
        if (figs[i]) {
            np_report_site_free(figs[i]);
            free(figs[i]);
        }
    }
    free(figs);
    return ret;
}
