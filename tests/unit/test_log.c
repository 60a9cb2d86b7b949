#include "netpulse/log.h"

#include "netpulse/err.h"

#include "check.h"

#include <stdlib.h>
#include <unistd.h>

static FILE *out;

/* Returns everything logged since the last call (static buffer). */
static const char *drain(void)
{
    static char buf[8192];
    long len = ftell(out);
    rewind(out);
    size_t n = fread(buf, 1, sizeof buf - 1, out);
    buf[n] = '\0';
    CHECK_INT((long)n, len);
    rewind(out);
    if (ftruncate(fileno(out), 0) != 0) {
        perror("ftruncate");
    }
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) {
        n += *s == '\n';
    }
    return n;
}

static void test_levels(void)
{
    np_log_init("test", NP_LOG_STDERR, NP_LOG_INFO);
    np_log(NP_LOG_DEBUG, "hidden debug");
    np_log(NP_LOG_INFO, "snmp: polled target=%s", "edge");
    np_log(NP_LOG_ERR, "snmp: failed target=%s err=%s", "core", "timeout");
    const char *s = drain();
    CHECK(strstr(s, "hidden debug") == NULL);
    CHECK_CONTAINS(s, "test[");
    CHECK_CONTAINS(s, "info: snmp: polled target=edge\n");
    CHECK_CONTAINS(s, "error: snmp: failed target=core err=timeout\n");
    CHECK_INT(count_lines(s), 2);

    np_log_set_level(NP_LOG_DEBUG);
    np_log(NP_LOG_DEBUG, "now visible");
    CHECK_CONTAINS(drain(), "debug: now visible");
}

static void test_repeats(void)
{
    np_log_init("test", NP_LOG_STDERR, NP_LOG_DEBUG);
    np_log_set_repeat_window_ms(60000);
    for (int i = 0; i < 5; i++) {
        np_log(NP_LOG_WARN, "uplink: post failed err=refused");
    }
    const char *s = drain();
    CHECK_INT(count_lines(s), 1);
    np_log(NP_LOG_WARN, "uplink: recovered");
    s = drain();
    CHECK_CONTAINS(s, "last message repeated 4 times");
    CHECK_CONTAINS(s, "uplink: recovered");
    CHECK_INT(count_lines(s), 2);

    /* A different level is a different message. */
    np_log(NP_LOG_ERR, "uplink: recovered");
    CHECK_INT(count_lines(drain()), 1);

    np_log(NP_LOG_ERR, "uplink: recovered");
    np_log_flush();
    CHECK_CONTAINS(drain(), "last message repeated 1 times");

    np_log_set_repeat_window_ms(0);
    np_log(NP_LOG_ERR, "same");
    np_log(NP_LOG_ERR, "same");
    CHECK_INT(count_lines(drain()), 2);
}

static void test_complain(void)
{
    struct np_complain c = {0};
    np_log_set_repeat_window_ms(0);
    np_complain(&c, NP_LOG_WARN, "rrd: write failed file=%s", "a.rrd");
    CHECK_CONTAINS(drain(), "warning: rrd: write failed file=a.rrd\n");
    np_complain(&c, NP_LOG_WARN, "rrd: write failed file=%s", "a.rrd");
    np_complain(&c, NP_LOG_WARN, "rrd: write failed file=%s", "a.rrd");
    CHECK_INT(count_lines(drain()), 0);
    CHECK_U64(c.failures, 3);
    CHECK_U64(c.interval_ms, 60000);

    c.next_report_ms = 0; /* pretend the interval passed */
    np_complain(&c, NP_LOG_WARN, "rrd: write failed file=%s", "a.rrd");
    CHECK_CONTAINS(drain(), "still failing, 4 times");
    CHECK_U64(c.interval_ms, 120000);

    np_complain_release(&c, "rrd: write ok file=%s", "a.rrd");
    CHECK_CONTAINS(drain(), "notice: rrd: write ok file=a.rrd (recovered after 4 failures)");
    CHECK(!c.failing);
    np_complain_release(&c, "rrd: write ok file=%s", "a.rrd");
    CHECK_INT(count_lines(drain()), 0);
}

static void test_parse(void)
{
    enum np_log_level l;
    CHECK_INT(np_log_level_parse("debug", &l), 0);
    CHECK_INT(l, NP_LOG_DEBUG);
    CHECK_INT(np_log_level_parse("Warning", &l), 0);
    CHECK_INT(l, NP_LOG_WARN);
    CHECK_INT(np_log_level_parse("verbose", &l), NP_ECONFIG);
}

int main(void)
{
    out = tmpfile();
    if (!out) {
        perror("tmpfile");
        return 1;
    }
    np_log_set_stream(out);
    test_levels();
    test_repeats();
    test_complain();
    test_parse();
    np_log_set_stream(NULL);
    fclose(out);
    return check_done("test_log");
}
