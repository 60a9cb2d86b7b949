/* Unit tests of the probes' pure rules: per-probe hysteresis, the uplink
 * quorum, HTTP status ranges, ICMP echo packets, [probe]/[uplink] validation. */
#include "probe/probe_config.h"
#include "probe/probe_logic.h"

#include "check.h"

#include <stdlib.h>
#include <sys/socket.h>

static const struct np_section_spec specs[] = {NP_PROBE_SECTION_SPEC, NP_UPLINK_SECTION_SPEC};

static int load(const char *text, struct np_config **cfg, struct np_err *err)
{
    int rc = np_config_load_string(text, "t.conf", specs, 2, cfg, err);
    if (rc == 0) {
        rc = np_probe_config_check(*cfg, err);
    }
    return rc;
}

static void test_streak(void)
{
    struct np_probe_streak s = {0};
    int64_t since = 0;
    /* default 1/1: every change is immediate, also out of UNKNOWN */
    CHECK(np_probe_streak_feed(&s, true, 1000, 1, 1, &since));
    CHECK_INT(s.state, NP_UPLINK_UP);
    CHECK_INT(since, 1000);
    CHECK(!np_probe_streak_feed(&s, true, 2000, 1, 1, &since));
    CHECK(np_probe_streak_feed(&s, false, 3000, 1, 1, &since));
    CHECK_INT(s.state, NP_UPLINK_DOWN);
    CHECK_INT(since, 3000);

    /* down_after 3: an interrupted streak starts over; since is its first round */
    struct np_probe_streak t = {0};
    CHECK(np_probe_streak_feed(&t, true, 0, 2, 3, &since) == false);
    CHECK(np_probe_streak_feed(&t, true, 10, 2, 3, &since));
    CHECK_INT(since, 0);
    CHECK(!np_probe_streak_feed(&t, false, 20, 2, 3, &since));
    CHECK(!np_probe_streak_feed(&t, false, 30, 2, 3, &since));
    CHECK(!np_probe_streak_feed(&t, true, 40, 2, 3, &since)); /* breaks the failure streak */
    CHECK(!np_probe_streak_feed(&t, false, 50, 2, 3, &since));
    CHECK(!np_probe_streak_feed(&t, false, 60, 2, 3, &since));
    CHECK_INT(t.state, NP_UPLINK_UP);
    CHECK(np_probe_streak_feed(&t, false, 70, 2, 3, &since));
    CHECK_INT(t.state, NP_UPLINK_DOWN);
    CHECK_INT(since, 50);
    /* up_after 2: one good round is not enough */
    CHECK(!np_probe_streak_feed(&t, true, 80, 2, 3, &since));
    CHECK(!np_probe_streak_feed(&t, false, 90, 2, 3, &since));
    CHECK(!np_probe_streak_feed(&t, true, 100, 2, 3, &since));
    CHECK(np_probe_streak_feed(&t, true, 110, 2, 3, &since));
    CHECK_INT(since, 100);
    CHECK_INT(t.state, NP_UPLINK_UP);
}

static void test_quorum_eval(void)
{
    static const struct {
        enum np_uplink_state cur;
        unsigned up, down, total, quorum;
        enum np_uplink_state want;
    } cases[] = {
        /* quorum 1 of 3 */
        {NP_UPLINK_UNKNOWN, 0, 0, 3, 1, NP_UPLINK_UNKNOWN}, /* nobody reported */
        {NP_UPLINK_UNKNOWN, 1, 0, 3, 1, NP_UPLINK_UP},
        {NP_UPLINK_UNKNOWN, 0, 2, 3, 1, NP_UPLINK_UNKNOWN}, /* the third may still be up */
        {NP_UPLINK_UP, 0, 2, 3, 1, NP_UPLINK_UP},
        {NP_UPLINK_UP, 0, 3, 3, 1, NP_UPLINK_DOWN},
        {NP_UPLINK_DOWN, 1, 2, 3, 1, NP_UPLINK_UP},
        /* majority of 3 = 2 */
        {NP_UPLINK_UNKNOWN, 1, 1, 3, 2, NP_UPLINK_UNKNOWN},
        {NP_UPLINK_UP, 1, 2, 3, 2, NP_UPLINK_DOWN},
        {NP_UPLINK_DOWN, 2, 1, 3, 2, NP_UPLINK_UP},
        {NP_UPLINK_UP, 1, 1, 3, 2, NP_UPLINK_UP}, /* undecided: keeps its state */
        /* all of 2 */
        {NP_UPLINK_UP, 1, 1, 2, 2, NP_UPLINK_DOWN},
        {NP_UPLINK_DOWN, 2, 0, 2, 2, NP_UPLINK_UP},
        {NP_UPLINK_DOWN, 1, 0, 2, 2, NP_UPLINK_DOWN},
        /* no probes */
        {NP_UPLINK_UNKNOWN, 0, 0, 0, 0, NP_UPLINK_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum np_uplink_state got = np_probe_uplink_eval(cases[i].cur, cases[i].up, cases[i].down,
                                                        cases[i].total, cases[i].quorum);
        if (got != cases[i].want) {
            fprintf(stderr, "case %zu: ", i);
        }
        CHECK_INT(got, cases[i].want);
    }
    unsigned q = 99;
    struct np_err err = {0};
    CHECK_INT(np_probe_config_quorum("majority", 3, &q, &err), 0);
    CHECK_INT(q, 2);
    CHECK_INT(np_probe_config_quorum("majority", 4, &q, &err), 0);
    CHECK_INT(q, 3);
    CHECK_INT(np_probe_config_quorum("ALL", 4, &q, &err), 0);
    CHECK_INT(q, 4);
    CHECK_INT(np_probe_config_quorum("2", 4, &q, &err), 0);
    CHECK_INT(q, 2);
    CHECK_INT(np_probe_config_quorum("5", 4, &q, &err), NP_ECONFIG);
    CHECK_INT(np_probe_config_quorum("0", 4, &q, &err), NP_ECONFIG);
    CHECK_INT(np_probe_config_quorum("2x", 4, &q, &err), NP_ECONFIG);
    CHECK_INT(np_probe_config_quorum("-1", 4, &q, &err), NP_ECONFIG);
    CHECK_INT(np_probe_config_quorum("1", 0, &q, &err), 0);
    CHECK_INT(q, 0);
}

static void test_status(void)
{
    char a[] = "200-399", b[] = "404", c[] = "500-5", d[] = "2xx", e[] = "600";
    char *items[] = {a, b};
    struct np_strlist l = {items, 2};
    struct np_status_range r[4];
    struct np_err err = {0};
    CHECK_INT(np_probe_parse_status(&l, r, 4, &err), 2);
    CHECK(np_probe_status_ok(200, r, 2));
    CHECK(np_probe_status_ok(399, r, 2));
    CHECK(!np_probe_status_ok(400, r, 2));
    CHECK(np_probe_status_ok(404, r, 2));
    CHECK(!np_probe_status_ok(0, r, 2));
    char *bad[] = {c, d, e};
    for (int i = 0; i < 3; i++) {
        struct np_strlist one = {&bad[i], 1};
        CHECK_INT(np_probe_parse_status(&one, r, 4, &err), NP_ECONFIG);
        CHECK_CONTAINS(err.msg, "expect_status");
    }
}

static void test_host_port(void)
{
    char host[64];
    uint16_t port = 0;
    CHECK_INT(np_probe_split_host_port("10.0.0.1:443", host, sizeof host, &port), 0);
    CHECK_STR(host, "10.0.0.1");
    CHECK_INT(port, 443);
    CHECK_INT(np_probe_split_host_port("[2001:db8::1]:53", host, sizeof host, &port), 0);
    CHECK_STR(host, "2001:db8::1");
    CHECK_INT(port, 53);
    CHECK_INT(np_probe_split_host_port("example.org:80", host, sizeof host, &port), 0);
    CHECK_INT(np_probe_split_host_port("2001:db8::1:53", host, sizeof host, &port), NP_ECONFIG);
    CHECK_INT(np_probe_split_host_port("host", host, sizeof host, &port), NP_ECONFIG);
    CHECK_INT(np_probe_split_host_port("host:0", host, sizeof host, &port), NP_ECONFIG);
    CHECK_INT(np_probe_split_host_port("host:65536", host, sizeof host, &port), NP_ECONFIG);
    CHECK_INT(np_probe_split_host_port(":80", host, sizeof host, &port), NP_ECONFIG);
    CHECK_INT(np_probe_split_host_port("[::1]80", host, sizeof host, &port), NP_ECONFIG);
}

static void test_icmp_packets(void)
{
    uint8_t pkt[NP_PROBE_ICMP_LEN];
    uint16_t id = 0, seq = 0;
    const uint64_t cookie = 0x0123456789abcdefULL;
    /* v4 request: type 8 and a valid checksum (sums to 0xffff) */
    size_t n = np_probe_icmp_build(pkt, AF_INET, 0x4242, 7, cookie);
    CHECK_INT(n, NP_PROBE_ICMP_LEN);
    CHECK_INT(pkt[0], 8);
    uint32_t sum = 0;
    for (size_t i = 0; i < n; i += 2) {
        sum += (uint32_t)(pkt[i] << 8 | pkt[i + 1]);
    }
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    CHECK_INT(sum, 0xffff);
    /* a request is not a reply */
    CHECK_INT(np_probe_icmp_parse(pkt, n, AF_INET, false, cookie, &id, &seq), -1);
    /* the same turned into a reply (as a ping socket hands it) */
    pkt[0] = 0;
    CHECK_INT(np_probe_icmp_parse(pkt, n, AF_INET, false, cookie, &id, &seq), 0);
    CHECK_INT(id, 0x4242);
    CHECK_INT(seq, 7);
    CHECK_INT(np_probe_icmp_parse(pkt, n, AF_INET, false, cookie + 1, &id, &seq), -1);
    CHECK_INT(np_probe_icmp_parse(pkt, 15, AF_INET, false, cookie, &id, &seq), -1);
    /* behind an IPv4 header with options (raw socket) */
    uint8_t raw[24 + NP_PROBE_ICMP_LEN] = {0x46};
    memcpy(raw + 24, pkt, n);
    CHECK_INT(np_probe_icmp_parse(raw, sizeof raw, AF_INET, true, cookie, &id, &seq), 0);
    raw[0] = 0x4f; /* IHL 60 > length */
    CHECK_INT(np_probe_icmp_parse(raw, 40, AF_INET, true, cookie, &id, &seq), -1);
    raw[0] = 0x44; /* IHL 16 < 20 */
    CHECK_INT(np_probe_icmp_parse(raw, sizeof raw, AF_INET, true, cookie, &id, &seq), -1);
    raw[0] = 0x65; /* not IPv4 */
    CHECK_INT(np_probe_icmp_parse(raw, sizeof raw, AF_INET, true, cookie, &id, &seq), -1);
    /* v6: 128 out, 129 back; the checksum is the kernel's */
    n = np_probe_icmp_build(pkt, AF_INET6, 1, 65535, cookie);
    CHECK_INT(pkt[0], 128);
    CHECK_INT(pkt[2] | pkt[3], 0);
    pkt[0] = 129;
    CHECK_INT(np_probe_icmp_parse(pkt, n, AF_INET6, false, cookie, &id, &seq), 0);
    CHECK_INT(seq, 65535);
    CHECK_INT(np_probe_icmp_parse(pkt, n, AF_INET, false, cookie, &id, &seq), -1);
}

static void test_config(void)
{
    static const struct {
        const char *text;
        const char *err; /* NULL: valid */
    } cases[] = {
        {"[probe a]\ntype = icmp\ntarget = 192.0.2.1\n", NULL},
        {"[probe a]\ntype = tcp\ntarget = [2001:db8::1]:443\n[uplink]\nquorum = all\n", NULL},
        {"[probe a]\ntype = http\ntarget = https://example.org/\nexpect_status = 200, 301-302\n",
         NULL},
        {"[probe a]\ntype = dns\ntarget = example.org\nserver = 192.0.2.53:5353\n", NULL},
        {"[probe a]\ntype = dns\ntarget = example.org\n", NULL},
        {"[probe a]\ntype = icmp\ntarget = 192.0.2.1\ncount = 5\ninterval = 1s\ntimeout = 500ms\n",
         "t.conf:4: count x 200ms"},
        {"[probe a]\ntype = tcp\ntarget = 192.0.2.1\n", "t.conf:3: tcp target"},
        {"[probe a]\ntype = http\ntarget = ftp://x/\n", "t.conf:3: http target"},
        {"[probe a]\ntype = http\ntarget = http://x/\nexpect_status = 2xx\n",
         "t.conf:4: expect_status"},
        {"[probe a]\ntype = icmp\ntarget = 192.0.2.1\nserver = 192.0.2.2\n",
         "t.conf:4: server applies to dns"},
        {"[probe a]\ntype = tcp\ntarget = h:1\ncount = 2\n", "t.conf:4: count applies"},
        {"[probe a]\ntype = dns\ntarget = example.org\nserver = resolver.example\n",
         "t.conf:4: server must be"},
        {"[probe a]\ntype = tcp\ntarget = h:1\ninterval = 2s\ntimeout = 2s\n",
         "t.conf:5: timeout must be shorter"},
        {"[probe a]\ntype = icmp\ntarget = 192.0.2.1\n\n[uplink]\nquorum = 2\n",
         "t.conf:6: quorum: 2 is more than the 1"},
        {"[uplink]\nquorum = most\n", "t.conf:2: quorum"},
        {"[probe a]\ntype = smtp\ntarget = x\n", "t.conf:2"},
        {"[probe a]\ntarget = x\n", "t.conf:1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct np_config *cfg = NULL;
        struct np_err err = {0};
        int rc = load(cases[i].text, &cfg, &err);
        if (cases[i].err) {
            CHECK_INT(rc, NP_ECONFIG);
            CHECK_CONTAINS(err.msg, cases[i].err);
        } else {
            if (rc != 0) {
                fprintf(stderr, "case %zu: %s\n", i, err.msg);
            }
            CHECK_INT(rc, 0);
        }
        np_config_free(cfg);
    }
}

int main(void)
{
    test_streak();
    test_quorum_eval();
    test_status();
    test_host_port();
    test_icmp_packets();
    test_config();
    return check_done("test_probe_logic");
}
