#include "netpulse/counters.h"

#include "check.h"

#define W32 NP_UPTIME_WRAP_TIMETICKS
#define M32 ((uint64_t)UINT32_MAX)
#define M64 UINT64_MAX
#define GBPS 1000000000ull

struct reading_case {
    const char *name;
    struct np_counter_reading prev, cur;
    uint64_t max_rate_bps;
    enum np_counter_status want;
    uint64_t want_delta;
};

/* A reading at time t seconds with a counter of width w and an uptime. */
#define R(t, v, w, up)                                                                             \
    {                                                                                              \
        .time_ms = (t)*1000, .value = (v), .width_bits = (w), .has_uptime = true,                  \
        .uptime_cs = (up), .uptime_wrap = W32                                                      \
    }
/* The same without uptime. */
#define RN(t, v, w)                                                                                \
    {                                                                                              \
        .time_ms = (t)*1000, .value = (v), .width_bits = (w)                                       \
    }

static const struct reading_case cases[] = {
    {"plain increase 64", R(0, 1000, 64, 100000), R(60, 751000, 64, 106000), 0, NP_COUNTER_OK,
     750000},
    {"no traffic", R(0, 5, 64, 100000), R(60, 5, 64, 106000), GBPS, NP_COUNTER_OK, 0},
    {"increase above speed is trusted", R(0, 0, 64, 0), R(1, 1000000000, 64, 100), 1000000,
     NP_COUNTER_OK, 1000000000},
    {"32-bit wrap by one", R(0, M32, 32, 1000), R(60, 0, 32, 7000), 0, NP_COUNTER_WRAPPED, 1},
    {"32-bit wrap plausible at 1G", R(0, M32 - 999, 32, 1000), R(60, 1000000000, 32, 7000), GBPS,
     NP_COUNTER_WRAPPED, 1000001000},
    {"32-bit wrap implausible at 10M", R(0, M32 - 999, 32, 1000), R(60, 1000000000, 32, 7000),
     10000000, NP_COUNTER_WENT_BACK, 0},
    {"32-bit went back (cleared), speed unknown", R(0, 100000, 32, 1000), R(60, 5, 32, 7000), 0,
     NP_COUNTER_WENT_BACK, 0},
    {"32-bit wrap over half range, speed unknown", R(0, 0x80000000ull, 32, 1000),
     R(60, 0, 32, 7000), 0, NP_COUNTER_WENT_BACK, 0},
    {"32-bit wrap just under half range", R(0, 0x80000001ull, 32, 1000),
     R(60, 0, 32, 7000), 0, NP_COUNTER_WRAPPED, 0x7fffffffull},
    {"64-bit wrap at the top", R(0, M64 - 9, 64, 1000), R(60, 10, 64, 7000), GBPS,
     NP_COUNTER_WRAPPED, 20},
    {"64-bit went back", R(0, 123456789, 64, 1000), R(60, 1000, 64, 7000), GBPS,
     NP_COUNTER_WENT_BACK, 0},
    {"64-bit went back, speed unknown", R(0, 123456789, 64, 1000), R(60, 1000, 64, 7000), 0,
     NP_COUNTER_WENT_BACK, 0},
    {"zero interval", R(60, 1, 64, 1000), R(60, 2, 64, 1000), 0, NP_COUNTER_BAD_INTERVAL, 0},
    {"negative interval", R(60, 1, 64, 1000), R(0, 2, 64, 7000), 0, NP_COUNTER_BAD_INTERVAL, 0},
    {"width 32 to 64", R(0, 1, 32, 1000), R(60, 2, 64, 7000), 0, NP_COUNTER_WIDTH_CHANGED, 0},
    {"width 64 to 32", R(0, 1, 64, 1000), R(60, 2, 32, 7000), 0, NP_COUNTER_WIDTH_CHANGED, 0},
    {"bogus width", R(0, 1, 16, 1000), R(60, 2, 16, 7000), 0, NP_COUNTER_WIDTH_CHANGED, 0},
    {"32-bit value over 32 bits", R(0, 1, 32, 1000), R(60, M32 + 2, 32, 7000), 0,
     NP_COUNTER_WIDTH_CHANGED, 0},
    {"restart: uptime back to near zero", R(0, 5000000, 64, 8640000), R(60, 100, 64, 3000), 0,
     NP_COUNTER_DEVICE_RESTART, 0},
    {"restart hidden as a counter increase", R(0, 100, 64, 8640000), R(60, 5000000, 64, 3000), 0,
     NP_COUNTER_DEVICE_RESTART, 0},
    {"restart long ago: uptime advanced less than the clock", R(0, 100, 64, 1000),
     R(3600, 200, 64, 2000), 0, NP_COUNTER_DEVICE_RESTART, 0},
    {"uptime slack: 5 s late is fine", R(0, 100, 64, 10000), R(60, 200, 64, 15500), 0,
     NP_COUNTER_OK, 100},
    {"uptime wrap at 497 days is not a restart", R(0, 1000, 64, M32 - 2999),
     R(60, 2000, 64, 3000), 0, NP_COUNTER_OK, 1000},
    {"uptime wrap with wrong advance is a restart", R(0, 1000, 64, M32 - 2999),
     R(60, 2000, 64, 90000), 0, NP_COUNTER_DEVICE_RESTART, 0},
    {"uptime wrap plus counter wrap", R(0, M32 - 9, 32, M32 - 2999), R(60, 10, 32, 3000), 0,
     NP_COUNTER_WRAPPED, 20},
    {"no uptime: no restart check", RN(0, 100, 64), RN(60, 200, 64), 0, NP_COUNTER_OK, 100},
};

static void test_cases(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct reading_case *tc = &cases[i];
        struct np_counter_delta d;
        enum np_counter_status st = np_counter_delta(&tc->prev, &tc->cur, tc->max_rate_bps, &d);
        if (st != tc->want || d.delta != tc->want_delta) {
            fprintf(stderr, "case \"%s\": got %s delta %llu, want %s delta %llu\n", tc->name,
                    np_counter_status_name(st), (unsigned long long)d.delta,
                    np_counter_status_name(tc->want), (unsigned long long)tc->want_delta);
            check_failures++;
        }
        CHECK_INT(d.status, st);
        if (!np_counter_valid(st)) {
            CHECK_DBL(d.rate_bps, 0, 0);
        }
    }
}

static void test_rate(void)
{
    struct np_counter_reading a = RN(0, 0, 64), b = RN(0, 125000000, 64);
    a.time_ms = 1000;
    b.time_ms = 1000 + 59500; /* the real interval, not the schedule's 60 s */
    struct np_counter_delta d;
    CHECK_INT(np_counter_delta(&a, &b, GBPS, &d), NP_COUNTER_OK);
    CHECK_INT(d.interval_ms, 59500);
    CHECK_DBL(d.rate_bps, 125000000.0 * 8 / 59.5, 1e-3);
}

static void test_discontinuity_time(void)
{
    struct np_counter_reading a = RN(0, 100, 64), b = RN(60, 200, 64);
    a.has_discontinuity = b.has_discontinuity = true;
    a.discontinuity_cs = b.discontinuity_cs = 4242;
    struct np_counter_delta d;
    CHECK_INT(np_counter_delta(&a, &b, 0, &d), NP_COUNTER_OK);
    b.discontinuity_cs = 9000;
    CHECK_INT(np_counter_delta(&a, &b, 0, &d), NP_COUNTER_DISCONTINUITY);
    CHECK_U64(d.delta, 0);
    /* Only one side knows it: no verdict from it. */
    a.has_discontinuity = false;
    CHECK_INT(np_counter_delta(&a, &b, 0, &d), NP_COUNTER_OK);
}

static void test_engine_time(void)
{
    /* snmpEngineTime in seconds * 100 does not wrap at 2^32 centiseconds. */
    struct np_counter_reading a = RN(0, 100, 64), b = RN(60, 200, 64);
    a.has_uptime = b.has_uptime = true;
    a.uptime_cs = M32 - 100;
    b.uptime_cs = M32 + 5900;
    CHECK(!np_counter_restarted(&a, &b));
    b.uptime_cs = 100; /* back without a modulus: restart */
    CHECK(np_counter_restarted(&a, &b));
}

/* Every wrap edge for both widths: a step of k octets across the top. */
static void test_wrap_edges(void)
{
    const unsigned widths[] = {32, 64};
    for (size_t w = 0; w < 2; w++) {
        uint64_t mask = widths[w] == 64 ? M64 : M32;
        for (uint64_t k = 1; k < 2000; k += 37) {
            for (uint64_t before = 0; before < k; before += 7) {
                struct np_counter_reading a = RN(0, mask - before, widths[w]);
                struct np_counter_reading b = RN(10, k - before - 1, widths[w]);
                struct np_counter_delta d;
                enum np_counter_status st = np_counter_delta(&a, &b, GBPS, &d);
                CHECK_INT(st, NP_COUNTER_WRAPPED);
                CHECK_U64(d.delta, k);
            }
        }
    }
}

int main(void)
{
    test_cases();
    test_rate();
    test_discontinuity_time();
    test_engine_time();
    test_wrap_edges();
    CHECK_STR(np_counter_status_name(NP_COUNTER_DEVICE_RESTART), "device-restart");
    return check_done("test_counters");
}
