#include "netpulse/units.h"

#include "netpulse/err.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct np_unit {
    const char *name;
    uint64_t mult;   /* base units per one of this unit */
    bool whole_only; /* formatters: never with decimals in this unit */
};

/* Largest first: the formatters take the first unit that shows a value exactly.
 * Durations read best whole ("90s", not "1.5m"), except seconds ("1.5s"). */
static const struct np_unit np_duration_units[] = {
    {"d", 86400000, true}, {"h", 3600000, true}, {"m", 60000, true},
    {"s", 1000, false},    {"ms", 1, true},
};

static const struct np_unit np_size_binary_units[] = {
    {"TiB", UINT64_C(1) << 40, false},
    {"GiB", UINT64_C(1) << 30, false},
    {"MiB", UINT64_C(1) << 20, false},
    {"KiB", UINT64_C(1) << 10, false},
    {"B", 1, false},
};

static const struct np_unit np_size_decimal_units[] = {
    {"TB", UINT64_C(1000000000000), false},
    {"GB", 1000000000, false},
    {"MB", 1000000, false},
    {"kB", 1000, false},
    {"KB", 1000, false},
    {"B", 1, false},
};

static const struct np_unit np_rate_units[] = {
    {"Tbps", UINT64_C(1000000000000), false},
    {"Gbps", 1000000000, false},
    {"Mbps", 1000000, false},
    {"kbps", 1000, false},
    {"Kbps", 1000, false},
    {"bps", 1, false},
};

#define NP_NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Fraction digits kept; further digits change the value by less than 1e-18 of
 * a unit, far below the rounding to whole base units. 10^18 < 2^64. */
#define NP_FRAC_DIGITS_MAX 18

/* A number split by the shared grammar: int_part . frac / 10^frac_digits, unit. */
struct np_number {
    uint64_t int_part;
    uint64_t frac;    /* first frac_digits digits after the point */
    int frac_digits;  /* 0 when there is no point */
    const char *unit; /* points into the input; unit_len 0 when absent */
    size_t unit_len;
};

static bool np_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool np_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static uint64_t np_pow10(int n)
{
    uint64_t p = 1;
    while (n-- > 0) {
        p *= 10;
    }
    return p;
}

/* Splits s by the grammar in units.h. The integer part goes through strtoull
 * only after the span is known to be plain digits, so its sign, whitespace
 * and base handling never apply; ERANGE is the overflow check. */
static int np_number_scan(const char *s, struct np_number *n)
{
    const char *p = s;

    if (!s) {
        return NP_ECONFIG;
    }
    while (np_is_blank(*p)) {
        p++;
    }
    if (!np_is_digit(*p)) {
        return NP_ECONFIG;
    }
    const char *int_start = p;
    while (np_is_digit(*p)) {
        p++;
    }
    char *end = NULL;
    errno = 0;
    n->int_part = strtoull(int_start, &end, 10);
    if (errno == ERANGE || end != p) {
        return NP_ECONFIG;
    }
    n->frac = 0;
    n->frac_digits = 0;
    if (*p == '.') {
        p++;
        if (!np_is_digit(*p)) {
            return NP_ECONFIG;
        }
        for (; np_is_digit(*p); p++) {
            if (n->frac_digits < NP_FRAC_DIGITS_MAX) {
                n->frac = n->frac * 10 + (uint64_t)(*p - '0');
                n->frac_digits++;
            }
        }
    }
    while (np_is_blank(*p)) {
        p++;
    }
    n->unit = p;
    while (*p && !np_is_blank(*p)) {
        p++;
    }
    n->unit_len = (size_t)(p - n->unit);
    while (np_is_blank(*p)) {
        p++;
    }
    return *p == '\0' ? 0 : NP_ECONFIG;
}

static const struct np_unit *np_unit_find(const struct np_unit *units, size_t n_units,
                                          const char *name, size_t len)
{
    for (size_t i = 0; i < n_units; i++) {
        if (strlen(units[i].name) == len && memcmp(units[i].name, name, len) == 0) {
            return &units[i];
        }
    }
    return NULL;
}

/* n * mult, rounded to the nearest integer, if at most max. The fraction's share
 * is below mult (at most 2^40 here), well inside a double's exact range. */
static int np_number_scale(const struct np_number *n, uint64_t mult, uint64_t max, uint64_t *out)
{
    if (n->int_part > max / mult) {
        return NP_ECONFIG;
    }
    uint64_t whole = n->int_part * mult;
    uint64_t part = 0;
    if (n->frac_digits > 0) {
        double f = (double)n->frac / (double)np_pow10(n->frac_digits) * (double)mult;
        /* Round half up by hand: f >= 0, and llround() would need libm. */
        part = (uint64_t)(f + 0.5);
    }
    if (part > max - whole) {
        return NP_ECONFIG;
    }
    *out = whole + part;
    return 0;
}

static int np_parse_scaled(const char *s, const struct np_unit *units, size_t n_units,
                           uint64_t bare_mult, uint64_t max, uint64_t *out)
{
    struct np_number n;
    uint64_t mult = bare_mult;

    if (np_number_scan(s, &n) != 0) {
        return NP_ECONFIG;
    }
    if (n.unit_len > 0) {
        const struct np_unit *u = np_unit_find(units, n_units, n.unit, n.unit_len);
        if (!u) {
            return NP_ECONFIG;
        }
        mult = u->mult;
    }
    return np_number_scale(&n, mult, max, out);
}

int np_units_duration_ms(const char *s, int64_t *out_ms)
{
    uint64_t v;
    int rc = np_parse_scaled(s, np_duration_units, NP_NELEMS(np_duration_units), 1000,
                             (uint64_t)INT64_MAX, &v);
    if (rc == 0) {
        *out_ms = (int64_t)v;
    }
    return rc;
}

int np_units_size_bytes(const char *s, uint64_t *out)
{
    struct np_number n;
    uint64_t mult = 1;

    if (np_number_scan(s, &n) != 0) {
        return NP_ECONFIG;
    }
    if (n.unit_len > 0) {
        const struct np_unit *u =
            np_unit_find(np_size_binary_units, NP_NELEMS(np_size_binary_units), n.unit, n.unit_len);
        if (!u) {
            u = np_unit_find(np_size_decimal_units, NP_NELEMS(np_size_decimal_units), n.unit,
                             n.unit_len);
        }
        if (!u) {
            return NP_ECONFIG;
        }
        mult = u->mult;
    }
    return np_number_scale(&n, mult, UINT64_MAX, out);
}

int np_units_rate_bps(const char *s, uint64_t *out)
{
    return np_parse_scaled(s, np_rate_units, NP_NELEMS(np_rate_units), 1, UINT64_MAX, out);
}

/* 2^53: integers up to here are exact in a double. */
#define NP_DOUBLE_EXACT (UINT64_C(1) << 53)

int np_units_ratio(const char *s, double *out)
{
    struct np_number n;
    bool percent = false;

    if (np_number_scan(s, &n) != 0) {
        return NP_ECONFIG;
    }
    if (n.unit_len > 0) {
        if (n.unit_len != 1 || n.unit[0] != '%') {
            return NP_ECONFIG;
        }
        percent = true;
    }
    /* Prefer one correctly rounded division of exact integers, so "99.5%" and
     * "0.995" give the same double as the literal 0.995. */
    double v;
    uint64_t scale = np_pow10(n.frac_digits);
    if (n.frac_digits <= 15 && n.int_part < NP_DOUBLE_EXACT / scale) {
        uint64_t mantissa = n.int_part * scale + n.frac;
        v = (double)mantissa / ((double)scale * (percent ? 100.0 : 1.0));
    } else {
        v = ((double)n.int_part + (double)n.frac / (double)scale) / (percent ? 100.0 : 1.0);
    }
    if (!isfinite(v)) {
        return NP_ECONFIG;
    }
    *out = v;
    return 0;
}

/* Writes v in unit u if u shows it exactly as a whole number, or as a number
 * below 1000 with at most two decimals ("1.5s", "9.6kbps"; not "1.023kB" or
 * "976562.5KiB", which read worse than "1023B" and "1GB"). Returns false if
 * u does not qualify. */
static bool np_format_in(uint64_t v, const char *sign, const struct np_unit *u, char *buf,
                         size_t len)
{
    if (u->mult == 0 || (v < u->mult && !(v == 0 && u->mult == 1))) {
        return false;
    }
    uint64_t whole = v / u->mult;
    uint64_t rem = v % u->mult;
    if (rem == 0) {
        snprintf(buf, len, "%s%" PRIu64 "%s", sign, whole, u->name);
        return true;
    }
    /* rem < mult <= 10^12, so rem * 100 cannot overflow. */
    if (u->whole_only || whole >= 1000 || (rem * 100) % u->mult != 0) {
        return false;
    }
    unsigned centi = (unsigned)(rem * 100 / u->mult);
    if (centi % 10 == 0) {
        snprintf(buf, len, "%s%" PRIu64 ".%u%s", sign, whole, centi / 10, u->name);
    } else {
        snprintf(buf, len, "%s%" PRIu64 ".%02u%s", sign, whole, centi, u->name);
    }
    return true;
}

static char *np_format_scaled(uint64_t v, const char *sign, const struct np_unit *units,
                              size_t n_units, char *buf, size_t len)
{
    if (len == 0) {
        return buf;
    }
    for (size_t i = 0; i < n_units; i++) {
        if (np_format_in(v, sign, &units[i], buf, len)) {
            return buf;
        }
    }
    /* Unreachable with a base unit (mult 1) last in every table. */
    buf[0] = '\0';
    return buf;
}

char *np_units_format_duration(int64_t ms, char *buf, size_t len)
{
    /* Magnitude without negating INT64_MIN, which has no positive int64. */
    uint64_t mag = ms < 0 ? (uint64_t)(-(ms + 1)) + 1 : (uint64_t)ms;
    if (mag == 0) {
        if (len > 0) {
            snprintf(buf, len, "0s");
        }
        return buf;
    }
    return np_format_scaled(mag, ms < 0 ? "-" : "", np_duration_units, NP_NELEMS(np_duration_units),
                            buf, len);
}

char *np_units_format_size(uint64_t bytes, char *buf, size_t len)
{
    if (len == 0) {
        return buf;
    }
    /* Binary units when they show the value exactly (sizes are mostly powers of
     * two), else decimal ones, else plain bytes. */
    for (size_t i = 0; i + 1 < NP_NELEMS(np_size_binary_units); i++) {
        if (np_format_in(bytes, "", &np_size_binary_units[i], buf, len)) {
            return buf;
        }
    }
    /* Skip "KB": "kB" is the SI spelling and both parse the same. */
    for (size_t i = 0; i < NP_NELEMS(np_size_decimal_units); i++) {
        if (strcmp(np_size_decimal_units[i].name, "KB") == 0) {
            continue;
        }
        if (np_format_in(bytes, "", &np_size_decimal_units[i], buf, len)) {
            return buf;
        }
    }
    buf[0] = '\0';
    return buf;
}

char *np_units_format_rate(uint64_t bps, char *buf, size_t len)
{
    if (len == 0) {
        return buf;
    }
    for (size_t i = 0; i < NP_NELEMS(np_rate_units); i++) {
        if (strcmp(np_rate_units[i].name, "Kbps") == 0) {
            continue;
        }
        if (np_format_in(bps, "", &np_rate_units[i], buf, len)) {
            return buf;
        }
    }
    buf[0] = '\0';
    return buf;
}

char *np_units_format_ratio(double ratio, char *buf, size_t len)
{
    if (len > 0) {
        snprintf(buf, len, "%g%%", ratio * 100.0);
    }
    return buf;
}
