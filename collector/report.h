/* report: the annual capacity assessment (`netpulse report`).
 *
 * One document for the district's budget meeting: a district summary first
 * (how many schools meet the uptime target, how many are on track for the
 * growth target, the upgrade list ranked by need), then one section per
 * school: uptime and capacity figures (report_data.h), a traffic graph of the
 * year rendered by librrd (rrd_store.h np_rrd_store_graph) with the 95th
 * percentile and 80 %-of-circuit lines, a busiest-hours heat map, the monthly
 * 95th percentiles, the outages, and a recommendation.
 *
 * Formats:
 *   html  one self-contained file: CSS inline, graphs as base64 data: URIs;
 *         prints to PDF with a page break before each school (A4).
 *   csv   one row per school (RFC 4180; header row first).
 *   json  {"year", "summary", "sites": [{"uptime": {...}, "capacity": {...}}]}
 *         with the same objects as `netpulse uptime/capacity --json`.
 * The output is written to PATH.tmp and renamed over PATH when complete.
 *
 * Threads: the caller's (blocks on disk). Errors: -errno (cannot write),
 * -EINVAL, and those of report_data.h. */
#ifndef NP_COLLECTOR_REPORT_H
#define NP_COLLECTOR_REPORT_H

#include "report_data.h"

#include <stdbool.h>
#include <stddef.h>

enum np_report_format { NP_REPORT_HTML, NP_REPORT_CSV, NP_REPORT_JSON };

struct np_report_options {
    int year;
    const char *const *sites; /* NULL / n_sites 0: every site */
    size_t n_sites;
    enum np_report_format format;
    const char *out_path;
    bool graphs; /* html: render graphs (off: faster, e.g. for tests of figures) */
};

/* "html", "csv", "json" -> format. 0 or -EINVAL. */
int np_report_format_parse(const char *s, enum np_report_format *out);

/* Writes the report. *n_sites_out (may be NULL) gets the number of schools. */
int np_report_annual(const struct np_report_ctx *ctx, const struct np_report_options *opt,
                     size_t *n_sites_out, struct np_err *err);

#endif
