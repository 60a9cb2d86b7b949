/* report_time: the calendar arithmetic of the uptime and capacity reports.
 *
 * Reports run on calendar periods (a month, a year) in UTC: the collector
 * stores wall-clock UTC everywhere, and a district spans one time zone, so a
 * period boundary off by the zone's offset moves at most a few hours between
 * adjacent months and never changes a yearly figure's meaning. Busiest hours
 * take a fixed offset (capacity.h) because there the local hour is the point.
 *
 * Proleptic Gregorian calendar by day counting (H. Hinnant's days_from_civil
 * algorithm), so leap years need no table. Pure, no allocation, any thread. */
#ifndef NP_COLLECTOR_REPORT_TIME_H
#define NP_COLLECTOR_REPORT_TIME_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define NP_MS_PER_DAY INT64_C(86400000)

/* Days since 1970-01-01 of year-month-day (month 1..12, day 1..31). */
int64_t np_report_days_from_civil(int64_t year, unsigned month, unsigned day);

/* The civil date of a day number (inverse of the above). */
void np_report_civil_from_days(int64_t days, int64_t *year, unsigned *month, unsigned *day);

/* Start of the calendar month (month may be 13: January of year + 1) in ms. */
int64_t np_report_month_start_ms(int64_t year, unsigned month);

/* [start, end) of the calendar month / year containing wall_ms. */
void np_report_month_of(int64_t wall_ms, int64_t *start_ms, int64_t *end_ms);
void np_report_year_of(int64_t wall_ms, int64_t *start_ms, int64_t *end_ms);

/* Whether year is a leap year. */
bool np_report_is_leap(int64_t year);

/* Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS]" (UTC; a trailing Z allowed) or
 * Unix seconds "@N" into ms. Returns 0 or -EINVAL. s borrowed. */
int np_report_parse_time(const char *s, int64_t *out_ms);

/* Parses "YYYY-MM" into [start, end) of that month; "YYYY" into the year.
 * Returns 0 or -EINVAL. */
int np_report_parse_month(const char *s, int64_t *start_ms, int64_t *end_ms);
int np_report_parse_year(const char *s, int64_t *start_ms, int64_t *end_ms);

/* Formats wall_ms as "YYYY-MM-DD HH:MM:SS" (UTC) into buf (>= 20 bytes). */
char *np_report_format_time(int64_t wall_ms, char *buf, size_t len);

/* Formats a duration in ms as "3d 04:05:06" / "04:05:06" (whole seconds,
 * rounded down; a negative value gets a leading '-'). */
char *np_report_format_duration(int64_t ms, char *buf, size_t len);

#endif
