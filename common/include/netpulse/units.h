/* units: parsing and formatting of values that carry a unit.
 *
 * Grammar shared by every parser (after optional leading whitespace):
 *     DIGITS [ "." DIGITS ] [ WHITESPACE ] [ UNIT ] [ WHITESPACE ]
 * Signs, exponents, hex, "inf", "nan", a leading or trailing "." and anything
 * after the unit are errors, as are the empty string and an unknown unit. Units
 * are case-sensitive. A fraction is scaled by the unit and rounded to the
 * nearest whole base unit (1.5s = 1500 ms, 0.1KiB = 102 bytes). A result that
 * does not fit the output type is an error. Parsing does not depend on the
 * locale. On error *out is left unchanged.
 *
 * All functions are pure: no allocation, no global state, any thread. */
#ifndef NP_COMMON_UNITS_H
#define NP_COMMON_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Big enough for any formatted value of this module. */
#define NP_UNITS_BUF 32

/* Parses a duration into milliseconds: ms, s, m (minutes), h, d; a bare number
 * is seconds ("90" = 90 s). Result at most INT64_MAX ms. s is borrowed.
 * Returns 0 or NP_ECONFIG. */
int np_units_duration_ms(const char *s, int64_t *out_ms);

/* Parses a size into bytes: B, KiB MiB GiB TiB (binary, 1024^n), kB/KB MB GB TB
 * (decimal, 1000^n); a bare number is bytes. Returns 0 or NP_ECONFIG. */
int np_units_size_bytes(const char *s, uint64_t *out);

/* Parses a network rate into bits per second: bps, kbps/Kbps, Mbps, Gbps, Tbps,
 * all decimal (1000^n) as network rates are; a bare number is bps. Bytes per
 * second ("MBps") is not accepted. Returns 0 or NP_ECONFIG. */
int np_units_rate_bps(const char *s, uint64_t *out);

/* Parses a ratio: "99.5%" = 0.995, "400%" = 4.0, bare "0.995" = 0.995. Never
 * negative, never NaN or infinite. Returns 0 or NP_ECONFIG. */
int np_units_ratio(const char *s, double *out);

/* Formatters: write the value into buf (len bytes, NP_UNITS_BUF is enough) in
 * the largest unit that shows it exactly, as a whole number or as a number
 * below 1000 with at most two decimals, e.g. 1500 ms -> "1.5s", 1001 ms ->
 * "1001ms", 268435456 -> "256MiB", 1000 -> "1kB", 1500000000 -> "1.5Gbps",
 * 0 -> "0s". Sizes prefer binary units, then decimal ones. The output parses
 * back to the same value (except a negative duration: "-5s"). Truncates like
 * snprintf when len is short; writes nothing when len is 0. Returns buf, so a
 * call can be an argument of printf. */
char *np_units_format_duration(int64_t ms, char *buf, size_t len);
char *np_units_format_size(uint64_t bytes, char *buf, size_t len);
char *np_units_format_rate(uint64_t bps, char *buf, size_t len);

/* Writes ratio as a percentage with up to six significant digits: 0.995 ->
 * "99.5%", 4.0 -> "400%". Same buffer rules as above. */
char *np_units_format_ratio(double ratio, char *buf, size_t len);

#endif
