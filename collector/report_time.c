#include "report_time.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* http://howardhinnant.github.io/date_algorithms.html#days_from_civil: eras
 * of 400 years, March-based years so the leap day is the year's last day. */
int64_t np_report_days_from_civil(int64_t year, unsigned month, unsigned day)
{
    int64_t y = year - (month <= 2);
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t mp = month > 2 ? month - 3 : month + 9;
    int64_t doy = (153 * mp + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void np_report_civil_from_days(int64_t days, int64_t *year, unsigned *month, unsigned *day)
{
    int64_t z = days + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    unsigned m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *day = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *month = m;
    *year = yoe + era * 400 + (m <= 2);
}

int64_t np_report_month_start_ms(int64_t year, unsigned month)
{
    while (month > 12) {
        month -= 12;
        year++;
    }
    return np_report_days_from_civil(year, month, 1) * NP_MS_PER_DAY;
}

void np_report_month_of(int64_t wall_ms, int64_t *start_ms, int64_t *end_ms)
{
    int64_t y;
    unsigned m, d;
    np_report_civil_from_days(floor_div(wall_ms, NP_MS_PER_DAY), &y, &m, &d);
    *start_ms = np_report_month_start_ms(y, m);
    *end_ms = np_report_month_start_ms(y, m + 1);
}

void np_report_year_of(int64_t wall_ms, int64_t *start_ms, int64_t *end_ms)
{
    int64_t y;
    unsigned m, d;
    np_report_civil_from_days(floor_div(wall_ms, NP_MS_PER_DAY), &y, &m, &d);
    *start_ms = np_report_month_start_ms(y, 1);
    *end_ms = np_report_month_start_ms(y + 1, 1);
}

bool np_report_is_leap(int64_t year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static unsigned days_in_month(int64_t year, unsigned month)
{
    static const unsigned dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && np_report_is_leap(year) ? 29 : dm[month - 1];
}

/* Reads exactly n digits at *p into *out; advances *p. */
static bool digits(const char **p, int n, int64_t *out)
{
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool parse_ym(const char **p, int64_t *y, int64_t *m)
{
    if (!digits(p, 4, y) || **p != '-') {
        return false;
    }
    (*p)++;
    return digits(p, 2, m) && *m >= 1 && *m <= 12 && *y >= 1970 && *y <= 9999;
}

int np_report_parse_time(const char *s, int64_t *out_ms)
{
    int64_t y, m, d, hh = 0, mm = 0, ss = 0;
    const char *p = s;
    if (!s) {
        return -EINVAL;
    }
    if (s[0] == '@') {
        int64_t v = 0;
        p = s + 1;
        if (!*p || strlen(p) > 12) {
            return -EINVAL;
        }
        for (; *p; p++) {
            if (*p < '0' || *p > '9') {
                return -EINVAL;
            }
            v = v * 10 + (*p - '0');
        }
        *out_ms = v * 1000;
        return 0;
    }
    if (!parse_ym(&p, &y, &m) || *p++ != '-' || !digits(&p, 2, &d) || d < 1 ||
        d > days_in_month(y, (unsigned)m)) {
        return -EINVAL;
    }
    if (*p == 'T' || *p == ' ') {
        p++;
        if (!digits(&p, 2, &hh) || *p++ != ':' || !digits(&p, 2, &mm) || hh > 23 || mm > 59) {
            return -EINVAL;
        }
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &ss) || ss > 59) {
                return -EINVAL;
            }
        }
        if (*p == 'Z') {
            p++;
        }
    }
    if (*p) {
        return -EINVAL;
    }
    *out_ms = np_report_days_from_civil(y, (unsigned)m, (unsigned)d) * NP_MS_PER_DAY +
              ((hh * 60 + mm) * 60 + ss) * 1000;
    return 0;
}

int np_report_parse_month(const char *s, int64_t *start_ms, int64_t *end_ms)
{
    int64_t y, m;
    const char *p = s;
    if (!s || !parse_ym(&p, &y, &m) || *p) {
        return -EINVAL;
    }
    *start_ms = np_report_month_start_ms(y, (unsigned)m);
    *end_ms = np_report_month_start_ms(y, (unsigned)m + 1);
    return 0;
}

int np_report_parse_year(const char *s, int64_t *start_ms, int64_t *end_ms)
{
    int64_t y;
    const char *p = s;
    if (!s || !digits(&p, 4, &y) || *p || y < 1970) {
        return -EINVAL;
    }
    *start_ms = np_report_month_start_ms(y, 1);
    *end_ms = np_report_month_start_ms(y + 1, 1);
    return 0;
}

char *np_report_format_time(int64_t wall_ms, char *buf, size_t len)
{
    int64_t days = floor_div(wall_ms, NP_MS_PER_DAY), y;
    int64_t sec = floor_div(wall_ms - days * NP_MS_PER_DAY, 1000);
    unsigned m, d;
    np_report_civil_from_days(days, &y, &m, &d);
    snprintf(buf, len, "%04lld-%02u-%02u %02lld:%02lld:%02lld", (long long)y, m, d,
             (long long)(sec / 3600), (long long)(sec / 60 % 60), (long long)(sec % 60));
    return buf;
}

char *np_report_format_duration(int64_t ms, char *buf, size_t len)
{
    const char *sign = ms < 0 ? "-" : "";
    int64_t s = (ms < 0 ? -ms : ms) / 1000;
    if (s >= 86400) {
        snprintf(buf, len, "%s%lldd %02lld:%02lld:%02lld", sign, (long long)(s / 86400),
                 (long long)(s / 3600 % 24), (long long)(s / 60 % 60), (long long)(s % 60));
    } else {
        snprintf(buf, len, "%s%02lld:%02lld:%02lld", sign, (long long)(s / 3600),
                 (long long)(s / 60 % 60), (long long)(s % 60));
    }
    return buf;
}
