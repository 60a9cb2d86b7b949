/* Fuzzes the period parsers of the report CLI and API (collector/report_time.h
 * np_report_parse_time, _month, _year; report_api.h np_report_api_period).
 * The whole input is parsed by each; then it is split at '\n' into up to four
 * fields (from, to, month, year; an empty field is absent) for the API's
 * period. Checks what an accepted value promises:
 *   time   a date form formats back to the same calendar day (and time of
 *          day when given), "@N" is N seconds, and the civil date round-trips
 *          through the day count;
 *   month  [start, end) starts on the 1st at midnight and is 28..31 days;
 *   year   365 or 366 days, 366 exactly in leap years;
 *   period non-empty.
 * Inputs are copied to an exact-size buffer so ASan sees any overread. */
#include "report_api.h"
#include "report_time.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT 256

static char *dup_n(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static void check_days(int64_t ms)
{
    int64_t days = ms / NP_MS_PER_DAY, y;
    unsigned m, d;
    np_report_civil_from_days(days, &y, &m, &d);
    if (m < 1 || m > 12 || d < 1 || d > 31 || np_report_days_from_civil(y, m, d) != days) {
        abort();
    }
}

static void check_time(const char *s)
{
    int64_t ms = -1;
    char buf[32], dur[48];
    if (np_report_parse_time(s, &ms) != 0) {
        return;
    }
    if (ms < 0) {
        abort();
    }
    check_days(ms);
    np_report_format_time(ms, buf, sizeof buf);
    np_report_format_duration(ms, dur, sizeof dur);
    np_report_format_duration(-ms, dur, sizeof dur);
    if (s[0] == '@') {
        if (ms % 1000 != 0 || ms / 1000 != strtoll(s + 1, NULL, 10)) {
            abort();
        }
        return;
    }
    /* "YYYY-MM-DD" back, and "HH:MM" after the 'T' or blank when given */
    if (strncmp(buf, s, 10) != 0 || (s[10] && strncmp(buf + 11, s + 11, 5) != 0)) {
        abort();
    }
    if (s[10] && s[16] == ':' && strncmp(buf + 17, s + 17, 2) != 0) {
        abort();
    }
}

static void check_month(const char *s)
{
    int64_t a = -1, b = -1, y;
    unsigned m, d;
    if (np_report_parse_month(s, &a, &b) != 0) {
        return;
    }
    np_report_civil_from_days(a / NP_MS_PER_DAY, &y, &m, &d);
    if (a < 0 || a % NP_MS_PER_DAY != 0 || d != 1 || b - a < 28 * NP_MS_PER_DAY ||
        b - a > 31 * NP_MS_PER_DAY || b != np_report_month_start_ms(y, m + 1)) {
        abort();
    }
}

static void check_year(const char *s)
{
    int64_t a = -1, b = -1, y;
    unsigned m, d;
    if (np_report_parse_year(s, &a, &b) != 0) {
        return;
    }
    np_report_civil_from_days(a / NP_MS_PER_DAY, &y, &m, &d);
    if (a < 0 || m != 1 || d != 1 || b - a != (np_report_is_leap(y) ? 366 : 365) * NP_MS_PER_DAY) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *whole, *field[4] = {NULL, NULL, NULL, NULL};
    const uint8_t *p = data, *end = data + size;
    int64_t from = 0, to = 0;

    if (size > FUZZ_MAX_INPUT) {
        return 0;
    }
    whole = dup_n(data, size);
    if (!whole) {
        return 0;
    }
    check_time(whole);
    check_month(whole);
    check_year(whole);
    free(whole);

    for (size_t i = 0; i < 4 && p <= end; i++) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        const uint8_t *e = nl ? nl : end;
        if (e > p) {
            field[i] = dup_n(p, (size_t)(e - p));
            if (!field[i]) {
                goto out;
            }
        }
        p = e + 1;
    }
    for (int summary = 0; summary < 2; summary++) {
        if (np_report_api_period(field[0], field[1], field[2], field[3], summary,
                                 INT64_C(1700000000000), &from, &to) == 0 &&
            from >= to) {
            abort();
        }
    }
out:
    for (size_t i = 0; i < 4; i++) {
        free(field[i]);
    }
    return 0;
}
