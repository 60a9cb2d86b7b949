#include "netpulse/units.h"

#include "netpulse/err.h"

#include "check.h"

#include <math.h>
#include <stdint.h>

struct dur_case {
    const char *in;
    int rc;
    int64_t ms;
};

static const struct dur_case dur_cases[] = {
    {"500ms", 0, 500},
    {"10s", 0, 10000},
    {"5m", 0, 300000},
    {"1h", 0, 3600000},
    {"7d", 0, 604800000},
    {"0s", 0, 0},
    {"0", 0, 0},
    {"90", 0, 90000}, /* bare number: seconds */
    {"1.5s", 0, 1500},
    {"0.25m", 0, 15000},
    {"1.5", 0, 1500},
    {"0.001s", 0, 1},
    {"0.29s", 0, 290},    /* 0.29 * 1000 is 289.99... in binary: must round */
    {"1.0004s", 0, 1000}, /* rounded to the nearest ms */
    {"1.0005s", 0, 1001},
    {"2.5ms", 0, 3},
    {"10 s", 0, 10000}, /* whitespace between number and unit */
    {"10\ts", 0, 10000},
    {" 10s ", 0, 10000},
    {"007s", 0, 7000},
    {"1.123456789012345678901234s", 0, 1123},
    {"9223372036854775807ms", 0, INT64_MAX},
    {"9223372036854775.807s", 0, INT64_MAX},
    {"106751991167d", 0, INT64_C(9223372036828800000)},
    /* errors */
    {"", NP_ECONFIG, 0},
    {" ", NP_ECONFIG, 0},
    {"s", NP_ECONFIG, 0},
    {"ms", NP_ECONFIG, 0},
    {"-1s", NP_ECONFIG, 0},
    {"+1s", NP_ECONFIG, 0},
    {"10x", NP_ECONFIG, 0},
    {"10S", NP_ECONFIG, 0}, /* units are case-sensitive */
    {"10sec", NP_ECONFIG, 0},
    {"1w", NP_ECONFIG, 0},
    {"1y", NP_ECONFIG, 0},
    {"10s garbage", NP_ECONFIG, 0},
    {"10s5", NP_ECONFIG, 0},
    {"10 s s", NP_ECONFIG, 0},
    {"1.s", NP_ECONFIG, 0},
    {".5s", NP_ECONFIG, 0},
    {"1..5s", NP_ECONFIG, 0},
    {"1.5.3s", NP_ECONFIG, 0},
    {"1e3ms", NP_ECONFIG, 0},
    {"0x10s", NP_ECONFIG, 0},
    {"inf", NP_ECONFIG, 0},
    {"nan", NP_ECONFIG, 0},
    {"infs", NP_ECONFIG, 0},
    {"1,5s", NP_ECONFIG, 0},
    {"9223372036854775808ms", NP_ECONFIG, 0},
    {"9223372036854775807.6ms", NP_ECONFIG, 0},
    {"106751991168d", NP_ECONFIG, 0},
    {"18446744073709551616", NP_ECONFIG, 0},
    {"99999999999999999999999999s", NP_ECONFIG, 0},
    {"10s\n", NP_ECONFIG, 0},
};

struct u64_case {
    const char *in;
    int rc;
    uint64_t v;
};

static const struct u64_case size_cases[] = {
    {"0", 0, 0},
    {"0B", 0, 0},
    {"1", 0, 1},
    {"512B", 0, 512},
    {"512 B", 0, 512},
    {"64KiB", 0, 65536},
    {"256MiB", 0, 268435456},
    {"1GiB", 0, 1073741824},
    {"1TiB", 0, UINT64_C(1099511627776)},
    {"1.5KiB", 0, 1536},
    {"0.1KiB", 0, 102}, /* 102.4 rounds down */
    {"1kB", 0, 1000},
    {"1KB", 0, 1000},
    {"10MB", 0, 10000000},
    {"1GB", 0, 1000000000},
    {"2TB", 0, UINT64_C(2000000000000)},
    {"1.5GB", 0, 1500000000},
    {"18446744073709551615", 0, UINT64_MAX},
    {"18446744073709551615B", 0, UINT64_MAX},
    {"16777215TiB", 0, UINT64_C(16777215) << 40},
    /* errors */
    {"", NP_ECONFIG, 0},
    {"KiB", NP_ECONFIG, 0},
    {"-1B", NP_ECONFIG, 0},
    {"64kib", NP_ECONFIG, 0},
    {"64K", NP_ECONFIG, 0},
    {"64M", NP_ECONFIG, 0},
    {"64Kib", NP_ECONFIG, 0},
    {"64 KiB x", NP_ECONFIG, 0},
    {"1PiB", NP_ECONFIG, 0},
    {"1b", NP_ECONFIG, 0},
    {"1e6", NP_ECONFIG, 0},
    {"nan", NP_ECONFIG, 0},
    {"18446744073709551616", NP_ECONFIG, 0},
    {"16777216TiB", NP_ECONFIG, 0},
    {"18446744073709551615.5B", NP_ECONFIG, 0},
    {"18446744073.709551616GB", NP_ECONFIG, 0},
};

static const struct u64_case rate_cases[] = {
    {"9600bps", 0, 9600},
    {"9600", 0, 9600},
    {"512kbps", 0, 512000},
    {"512Kbps", 0, 512000},
    {"100Mbps", 0, 100000000},
    {"1Gbps", 0, 1000000000},
    {"10Gbps", 0, 10000000000},
    {"1.5Gbps", 0, 1500000000},
    {"2.5 Gbps", 0, 2500000000},
    {"1Tbps", 0, UINT64_C(1000000000000)},
    {"0", 0, 0},
    {"18446744073709551615bps", 0, UINT64_MAX},
    /* errors */
    {"", NP_ECONFIG, 0},
    {"Mbps", NP_ECONFIG, 0},
    {"100MBps", NP_ECONFIG, 0}, /* bytes per second: refused, not guessed */
    {"100Bps", NP_ECONFIG, 0},
    {"100mbps", NP_ECONFIG, 0},
    {"100M", NP_ECONFIG, 0},
    {"100 Mbit/s", NP_ECONFIG, 0},
    {"-1Mbps", NP_ECONFIG, 0},
    {"1Gbps!", NP_ECONFIG, 0},
    {"inf", NP_ECONFIG, 0},
    {"18446744073709551616", NP_ECONFIG, 0},
    {"18446745Tbps", NP_ECONFIG, 0},
};

struct ratio_case {
    const char *in;
    int rc;
    double v;
};

static const struct ratio_case ratio_cases[] = {
    {"99.5%", 0, 0.995},
    {"400%", 0, 4.0},
    {"900%", 0, 9.0},
    {"0.995", 0, 0.995},
    {"1", 0, 1.0},
    {"0%", 0, 0.0},
    {"100 %", 0, 1.0},
    {"99.9%", 0, 0.999},
    {"12.3456789012345678901%", 0, 0.123456789012345678901},
    /* errors */
    {"", NP_ECONFIG, 0},
    {"%", NP_ECONFIG, 0},
    {"-5%", NP_ECONFIG, 0},
    {"99.5%%", NP_ECONFIG, 0},
    {"99.5 percent", NP_ECONFIG, 0},
    {"nan", NP_ECONFIG, 0},
    {"inf", NP_ECONFIG, 0},
    {"1e2%", NP_ECONFIG, 0},
    {"0.5x", NP_ECONFIG, 0},
    {"99999999999999999999999%", NP_ECONFIG, 0},
};

static void test_parsers(void)
{
    for (size_t i = 0; i < sizeof dur_cases / sizeof dur_cases[0]; i++) {
        const struct dur_case *c = &dur_cases[i];
        int64_t v = -42;
        int rc = np_units_duration_ms(c->in, &v);
        if (rc != c->rc) {
            fprintf(stderr, "duration \"%s\": ", c->in);
        }
        CHECK_INT(rc, c->rc);
        if (c->rc == 0 && v != c->ms) {
            fprintf(stderr, "duration \"%s\": ", c->in);
        }
        CHECK_INT(v, c->rc == 0 ? c->ms : -42); /* unchanged on error */
    }
    for (size_t i = 0; i < sizeof size_cases / sizeof size_cases[0]; i++) {
        const struct u64_case *c = &size_cases[i];
        uint64_t v = 42;
        int rc = np_units_size_bytes(c->in, &v);
        if (rc != c->rc || (rc == 0 && v != c->v)) {
            fprintf(stderr, "size \"%s\": ", c->in);
        }
        CHECK_INT(rc, c->rc);
        CHECK_U64(v, c->rc == 0 ? c->v : 42);
    }
    for (size_t i = 0; i < sizeof rate_cases / sizeof rate_cases[0]; i++) {
        const struct u64_case *c = &rate_cases[i];
        uint64_t v = 42;
        int rc = np_units_rate_bps(c->in, &v);
        if (rc != c->rc || (rc == 0 && v != c->v)) {
            fprintf(stderr, "rate \"%s\": ", c->in);
        }
        CHECK_INT(rc, c->rc);
        CHECK_U64(v, c->rc == 0 ? c->v : 42);
    }
    for (size_t i = 0; i < sizeof ratio_cases / sizeof ratio_cases[0]; i++) {
        const struct ratio_case *c = &ratio_cases[i];
        double v = 42;
        int rc = np_units_ratio(c->in, &v);
        if (rc != c->rc) {
            fprintf(stderr, "ratio \"%s\": ", c->in);
        }
        CHECK_INT(rc, c->rc);
        CHECK_DBL(v, c->rc == 0 ? c->v : 42, 1e-15);
    }
    /* Exact, not just close: the config's 99.5% must equal the literal. */
    double r = 0;
    CHECK_INT(np_units_ratio("99.5%", &r), 0);
    CHECK(r == 0.995);
    CHECK_INT(np_units_ratio("0.995", &r), 0);
    CHECK(r == 0.995);
    CHECK(np_units_duration_ms(NULL, &(int64_t){0}) == NP_ECONFIG);
}

struct fmt_dur_case {
    int64_t ms;
    const char *out;
};

static const struct fmt_dur_case fmt_dur_cases[] = {
    {0, "0s"},
    {1, "1ms"},
    {500, "500ms"},
    {999, "999ms"},
    {1000, "1s"},
    {1500, "1.5s"},
    {1001, "1001ms"}, /* not "1.001s": at most two decimals */
    {1250, "1.25s"},
    {1010, "1.01s"},
    {999000, "999s"},
    {999500, "999.5s"},
    {1000500, "1000500ms"}, /* not "1000.5s": decimals only below 1000 */
    {10000, "10s"},
    {60000, "1m"},
    {90000, "90s"}, /* decimals only in seconds */
    {5400000, "90m"},
    {129600000, "36h"},
    {3600000, "1h"},
    {86400000, "1d"},
    {604800000, "7d"},
    {-5000, "-5s"},
    {INT64_MAX, "9223372036854775807ms"},
    {INT64_MIN, "-9223372036854775808ms"},
};

static void test_formatters(void)
{
    char buf[NP_UNITS_BUF];

    for (size_t i = 0; i < sizeof fmt_dur_cases / sizeof fmt_dur_cases[0]; i++) {
        const struct fmt_dur_case *c = &fmt_dur_cases[i];
        CHECK_STR(np_units_format_duration(c->ms, buf, sizeof buf), c->out);
        int64_t back = 0;
        if (c->ms >= 0) {
            CHECK_INT(np_units_duration_ms(buf, &back), 0);
            CHECK_INT(back, c->ms);
        }
    }
    static const struct {
        uint64_t v;
        const char *out;
    } sizes[] = {
        {0, "0B"},
        {1, "1B"},
        {1000, "1kB"},
        {1023, "1023B"},
        {1024, "1KiB"},
        {1536, "1.5KiB"},
        {1280, "1.25KiB"},
        {1500, "1.5kB"},
        {65536, "64KiB"},
        {268435456, "256MiB"},
        {1073741824, "1GiB"},
        {1000000000, "1GB"},
        {UINT64_C(1099511627776), "1TiB"},
        {UINT64_C(1073741825), "1073741825B"},
        {UINT64_MAX, "18446744073709551615B"},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        CHECK_STR(np_units_format_size(sizes[i].v, buf, sizeof buf), sizes[i].out);
        uint64_t back = 0;
        CHECK_INT(np_units_size_bytes(buf, &back), 0);
        CHECK_U64(back, sizes[i].v);
    }

    static const struct {
        uint64_t v;
        const char *out;
    } rates[] = {
        {0, "0bps"},
        {9600, "9.6kbps"},
        {512000, "512kbps"},
        {100000000, "100Mbps"},
        {1000000000, "1Gbps"},
        {1500000000, "1.5Gbps"},
        {10000000000, "10Gbps"},
        {1234567, "1234567bps"},
        {UINT64_MAX, "18446744073709551615bps"},
    };
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        CHECK_STR(np_units_format_rate(rates[i].v, buf, sizeof buf), rates[i].out);
        uint64_t back = 0;
        CHECK_INT(np_units_rate_bps(buf, &back), 0);
        CHECK_U64(back, rates[i].v);
    }

    CHECK_STR(np_units_format_ratio(0.995, buf, sizeof buf), "99.5%");
    CHECK_STR(np_units_format_ratio(4.0, buf, sizeof buf), "400%");
    CHECK_STR(np_units_format_ratio(0.0, buf, sizeof buf), "0%");

    /* Short buffers truncate like snprintf; length 0 writes nothing. */
    char small[4] = "zzz";
    CHECK_STR(np_units_format_duration(604800000, small, sizeof small), "7d");
    CHECK_STR(np_units_format_size(268435456, small, sizeof small), "256");
    char untouched[2] = "q";
    np_units_format_rate(1, untouched, 0);
    np_units_format_duration(0, untouched, 0);
    np_units_format_size(0, untouched, 0);
    np_units_format_ratio(1, untouched, 0);
    CHECK_STR(untouched, "q");
}

int main(void)
{
    test_parsers();
    test_formatters();
    return check_done("test_units");
}
