/* Unit tests of the SNMP module's pure parts: [snmp NAME] validation,
 * interface selection, rate overrides, text sanitising. */
#include "snmp/snmp_config.h"
#include "snmp/snmp_internal.h"

#include "check.h"

#include <stdlib.h>

static const struct np_section_spec specs[] = {NP_SNMP_SECTION_SPEC};

static int load(const char *text, struct np_config **cfg, struct np_err *err)
{
    int rc = np_config_load_string(text, "t.conf", specs, 1, cfg, err);
    if (rc == 0) {
        rc = np_snmp_config_check(*cfg, err);
    }
    return rc;
}

static void test_valid(void)
{
    struct np_config *cfg = NULL;
    struct np_err err = {0};
    int rc = load("[snmp a]\nhost = 127.0.0.1\ncommunity = public\n"
                  "rate_override = Gi0/1=100Mbps, eth*=1Gbps\n"
                  "[snmp b]\nhost = ::1\nversion = 3\nuser = u\nauth_protocol = sha-256\n"
                  "auth_password = 12345678\npriv_password = abcdefgh\npriv_protocol = AES\n",
                  &cfg, &err);
    CHECK_INT(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    struct np_snmp_target_conf *t = NULL;
    size_t n = 0;
    CHECK_INT(np_snmp_targets_load(cfg, &t, &n, false, &err), 0);
    CHECK_INT(n, 2);
    CHECK_INT(t[0].version, NP_SNMP_V2C);
    CHECK_INT(t[0].s->port, 161);
    CHECK_INT(t[0].s->interval_ms, 60000);
    CHECK_INT(t[0].s->timeout_ms, 2000);
    CHECK_INT(t[0].s->retries, 1);
    CHECK_INT(t[0].s->max_repetitions, 25);
    CHECK_INT(t[0].n_overrides, 2);
    CHECK_U64(np_snmp_rate_override_for(t[0].overrides, 2, "Gi0/1", "", ""), 100000000);
    CHECK_U64(np_snmp_rate_override_for(t[0].overrides, 2, "eth3", "", ""), 1000000000);
    CHECK_U64(np_snmp_rate_override_for(t[0].overrides, 2, "Gi0/2", "", ""), 0);
    CHECK_INT(t[1].version, NP_SNMP_V3);
    CHECK_INT(t[1].auth, NP_SNMP_AUTH_SHA256);
    CHECK_INT(t[1].priv, NP_SNMP_PRIV_AES128);
    np_snmp_targets_free(t, n);
    np_config_free(cfg);
}

static void test_errors(void)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"[snmp a]\nhost = h\n", "t.conf:1: [snmp a] versions 1 and 2c need community"},
        {"[snmp a]\nhost = h\nversion = 3\n", "t.conf:3: [snmp a] version 3 needs user"},
        {"[snmp a]\nhost = h\nversion = 3\nuser = u\npriv_password = abcdefgh\n",
         "t.conf:5: [snmp a] priv_password needs auth_password"},
        {"[snmp a]\nhost = h\nversion = 3\nuser = u\nauth_password = short\n",
         "t.conf:5: [snmp a] auth_password needs 8 characters"},
        {"[snmp a]\nhost = h\ncommunity = c\nuser = u\n", "t.conf:4: [snmp a] user, auth"},
        {"[snmp a]\nhost = h\ncommunity = c\ninterval = 2s\ntimeout = 1s\n",
         "t.conf:5: [snmp a] timeout x (retries + 1) must be below interval"},
        {"[snmp a]\nhost = h\ncommunity = c\nrate_override = eth0\n",
         "t.conf:4: [snmp a] rate_override items read GLOB=RATE"},
        {"[snmp a]\nhost = h\ncommunity = c\nrate_override = eth0=fast\n",
         "t.conf:4: [snmp a] rate_override needs GLOB=RATE"},
        {"[snmp a]\nhost = h\ncommunity = c\ninterfaces = eth*, !\n",
         "t.conf:4: [snmp a] an exclusion needs a glob"},
        {"[snmp a]\nhost = h\ncommunity = c\nversion = 3c\n", "t.conf:4:"},
        {"[snmp a]\nhost = h\ncommunity = c\nbogus = 1\n", "t.conf:4:"},
        {"[snmp a]\nhost = h\nversion=3\nuser=u\nauth_password=12345678\n"
         "auth_protocol = SHA-3\n",
         "t.conf:6:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct np_config *cfg = NULL;
        struct np_err err = {0};
        int rc = load(cases[i].text, &cfg, &err);
        CHECK_INT(rc, NP_ECONFIG);
        CHECK_CONTAINS(err.msg, cases[i].want);
        np_config_free(cfg);
    }
}

static void test_selection(void)
{
    const char *all[] = {"*"};
    const char *some[] = {"Gi*", "!Gi0/9", "uplink*"};
    const char *excl_only[] = {"!Vl*"};
    CHECK(np_snmp_if_selected(all, 1, false, "Gi0/1", "", "", 6));
    CHECK(!np_snmp_if_selected(all, 1, false, "lo", "", "", 24));
    CHECK(!np_snmp_if_selected(all, 1, false, "lo0", "", "", 1));
    CHECK(!np_snmp_if_selected(all, 1, false, "Null0", "", "", 1));
    CHECK(np_snmp_if_selected(all, 1, true, "lo", "", "", 24));
    CHECK(np_snmp_if_selected(all, 1, false, "", "", "", 6));
    CHECK(np_snmp_if_selected(some, 3, false, "Gi0/1", "", "", 6));
    CHECK(!np_snmp_if_selected(some, 3, false, "Gi0/9", "", "", 6));
    CHECK(np_snmp_if_selected(some, 3, false, "Te1/1", "uplink to district", "", 6));
    CHECK(!np_snmp_if_selected(some, 3, false, "Te1/1", "", "", 6));
    CHECK(np_snmp_if_selected(excl_only, 1, false, "Gi0/1", "", "", 6));
    CHECK(!np_snmp_if_selected(excl_only, 1, false, "Vl99", "", "", 53));
    CHECK(np_snmp_if_selected(NULL, 0, false, "eth0", "", "", 6));
    CHECK(np_snmp_if_selected(all, 1, false, "lock", "", "", 6));
}

static void test_text(void)
{
    char b[16];
    np_snmp_text(b, sizeof b, (const unsigned char *)"eth0\0\0", 6);
    CHECK_STR(b, "eth0");
    np_snmp_text(b, sizeof b,
                 (const unsigned char *)"a\x01"
                                        "b\xff"
                                        "c",
                 5);
    CHECK_STR(b, "a?b?c");
    np_snmp_text(b, sizeof b, (const unsigned char *)"\xc3\xa9t\xc3\xa9", 6);
    CHECK_STR(b, "\xc3\xa9t\xc3\xa9");
    np_snmp_text(b, sizeof b, (const unsigned char *)"\xed\xa0\x80", 3); /* surrogate */
    CHECK_STR(b, "???");
    np_snmp_text(b, 4, (const unsigned char *)"abcdef", 6);
    CHECK_STR(b, "abc");
    np_snmp_text(b, 5, (const unsigned char *)"abc\xc3\xa9", 5); /* no half character */
    CHECK_STR(b, "abc");
    CHECK_STR(np_snmp_status_name(1), "up");
    CHECK_STR(np_snmp_status_name(7), "lowerLayerDown");
    CHECK(np_snmp_status_name(8) == NULL);
}

int main(void)
{
    test_valid();
    test_errors();
    test_selection();
    test_text();
    return check_done("test_snmp_config");
}
