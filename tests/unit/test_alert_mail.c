/* Unit tests of collector/alert_mail: rendering and MIME building with
 * hostile data (CR/LF, header lines, boundaries, very long and invalid
 * UTF-8 names), address validation. The integration test parses the real
 * messages with Python's email module as well. */
#include "alert_mail.h"

#include "check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *hostile_name;

static const char *name_cb(void *ctx, const char *id)
{
    (void)ctx;
    (void)id;
    return hostile_name;
}

/* Every header line is "Known-Name: ..." or a folded continuation; no bare
 * CR or LF anywhere; lines <= 998; exactly one of each single header. */
static void check_headers(const char *msg)
{
    static const char *const known[] = {"From:",
                                        "To:",
                                        "Subject:",
                                        "Date:",
                                        "Message-ID:",
                                        "MIME-Version:",
                                        "Auto-Submitted:",
                                        "X-Netpulse-Alert:",
                                        "X-Netpulse-Severity:",
                                        "X-Netpulse-Site:",
                                        "Content-Type:"};
    const char *end = strstr(msg, "\r\n\r\n");
    CHECK(end != NULL);
    if (!end) {
        return;
    }
    size_t seen[sizeof known / sizeof known[0]] = {0};
    const char *p = msg;
    while (p < end + 2) {
        const char *eol = strstr(p, "\r\n");
        CHECK(eol != NULL);
        if (!eol) {
            return;
        }
        CHECK(eol - p <= 998);
        for (const char *q = p; q < eol; q++) {
            CHECK(*q != '\r' && *q != '\n');
            CHECK((unsigned char)*q >= 0x20 && (unsigned char)*q < 0x7F);
        }
        if (*p != ' ') {
            bool ok = false;
            for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
                if (strncmp(p, known[i], strlen(known[i])) == 0) {
                    seen[i]++;
                    ok = true;
                }
            }
            if (!ok) {
                fprintf(stderr, "unexpected header line: %.*s\n", (int)(eol - p), p);
            }
            CHECK(ok);
        }
        p = eol + 2;
    }
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        CHECK(seen[i] <= 1);
    }
    /* the whole message: CRLF only */
    for (const char *q = msg; *q; q++) {
        if (*q == '\n') {
            CHECK(q > msg && q[-1] == '\r');
        }
        if (*q == '\r') {
            CHECK(q[1] == '\n');
        }
    }
}

static size_t count_str(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++) {
        n++;
    }
    return n;
}

static char *build_for(const char *name, const char *subject_iface, size_t *len)
{
    struct np_alert *a = np_alert_new(NP_ALERT_SITE_DOWN);
    struct np_alert_text t;
    struct np_alert_render_opts o = {"https://np.example.org:8443", name_cb, NULL};
    const char *to[] = {"noc@example.org", "head@school-1.example.org"};
    char *msg = NULL;
    hostile_name = name;
    snprintf(a->site, sizeof a->site, "school-1");
    if (subject_iface) {
        a->kind = NP_ALERT_IFACE_DOWN;
        snprintf(a->subject, sizeof a->subject, "%s", subject_iface);
    }
    a->start_ms = 1790000000000;
    a->time_ms = a->start_ms + 125000;
    CHECK_INT(np_alert_render(a, &o, &t), 0);
    CHECK(strchr(t.subject, '\r') == NULL && strchr(t.subject, '\n') == NULL);
    CHECK(strlen(t.subject) <= NP_ALERT_MAIL_SUBJECT_MAX);
    CHECK_STR(t.link, "https://np.example.org:8443/sites/school-1");
    struct np_alert_mail_headers h = {"netpulse@example.org", to,      2,           a->time_ms,
                                      "site_down:x:1",        a->kind, a->severity, a->site};
    struct np_err err = {0};
    CHECK_INT(np_alert_mail_build(&t, &h, &msg, len, &err), 0);
    if (msg) {
        check_headers(msg);
        CHECK(strstr(msg, "\r\nDate: Mon, 21 Sep 2026 14:15:25 +0000\r\n") != NULL);
        CHECK_CONTAINS(msg, "Message-ID: <");
        CHECK_CONTAINS(msg, "@example.org>\r\n");
        CHECK_CONTAINS(msg, "X-Netpulse-Site: school-1\r\n");
        CHECK_CONTAINS(msg, "Content-Transfer-Encoding: base64");
        /* the boundary as declared, and each delimiter line of it: 3 */
        const char *bq = strstr(msg, "boundary=\"");
        CHECK(bq != NULL);
        if (bq) {
            char delim[80] = "\r\n--";
            size_t bl = strcspn(bq + 10, "\"");
            CHECK(bl < 60);
            memcpy(delim + 4, bq + 10, bl);
            delim[4 + bl] = '\0';
            CHECK_INT(count_str(msg, delim), 3);
        }
        CHECK_INT(strlen(msg), *len);
    }
    np_alert_text_free(&t);
    np_alert_free(a);
    return msg;
}

static void test_hostile(void)
{
    size_t len;
    static const char *const names[] = {
        "Evil School\r\nBcc: attacker@evil.example\r\n\r\nbody",
        "a\nTo: x@evil.example",
        "a\rCc: x@evil.example",
        "--=_np0000000000000000_00000000\r\nContent-Type: text/html\r\n\r\n<script>",
        "=?UTF-8?B?DQpCY2M6IHhAeQ==?=",
        "\x7f\x01\x1b[31mred\xc2\x85next\xe2\x80\xa8line",
        "\xff\xfe invalid \xc3\x28 utf8 \xed\xa0\x80",
        "\xc3\x89"
        "cole \xc3\x89l\xc3\xa9mentaire Zo\xc3\xab \xe2\x80\x93 \xe5\x8c\x97\xe4\xba\xac",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *m = build_for(names[i], NULL, &len);
        CHECK(m != NULL);
        if (m) {
            /* the data is there, inside the Subject line, never a header */
            CHECK(strstr(m, "\r\nBcc") == NULL && strstr(m, "\r\nCc") == NULL);
            CHECK(strstr(m, "\r\nTo: noc@example.org,\r\n head@school-1.example.org\r\n"));
        }
        free(m);
        m = build_for("ok", names[i], &len); /* as an interface alias */
        CHECK(m != NULL);
        if (m) {
            CHECK(strstr(m, "\r\nBcc") == NULL && strstr(m, "\r\nCc") == NULL);
        }
        free(m);
    }
    /* UTF-8 name: encoded words */
    char *m = build_for(names[7], NULL, &len);
    CHECK_CONTAINS(m, "Subject: =?UTF-8?B?");
    free(m);
    /* ASCII name: plain subject */
    m = build_for("Lincoln High", NULL, &len);
    CHECK_CONTAINS(m, "Subject: [netpulse] Lincoln High: unreachable\r\n");
    free(m);
    /* very long name: cut, folded */
    char *big = malloc(100001);
    memset(big, 'A', 100000);
    big[100000] = '\0';
    m = build_for(big, NULL, &len);
    CHECK(m != NULL && len < 20000);
    free(m);
    for (size_t i = 0; i < 100000; i += 2) {
        memcpy(big + i, "\xc3\xa9", 2);
    }
    m = build_for(big, NULL, &len);
    CHECK(m != NULL);
    free(m);
    free(big);
}

static void test_html_escaped(void)
{
    struct np_alert *a = np_alert_new(NP_ALERT_SITE_UP);
    struct np_alert_text t;
    struct np_alert_render_opts o = {"https://x.example/\"><script>", name_cb, NULL};
    hostile_name = "<b>&\"'</b>";
    snprintf(a->site, sizeof a->site, "s1");
    snprintf(a->cause, sizeof a->cause, "link");
    a->start_ms = 1000000;
    a->end_ms = 1000000 + 3723000;
    CHECK_INT(np_alert_render(a, &o, &t), 0);
    CHECK(strstr(t.html, "<b>") == NULL);
    CHECK(strstr(t.html, "<script>") == NULL);
    CHECK_CONTAINS(t.html, "&lt;b&gt;&amp;&quot;&#39;&lt;/b&gt;");
    CHECK_CONTAINS(t.text, "duration 1h 02m 03s");
    CHECK_CONTAINS(t.text, "Cause: link");
    CHECK_CONTAINS(t.subject, "reachable again after 1h 02m 03s");
    np_alert_text_free(&t);
    np_alert_free(a);
}

static void test_digest(void)
{
    struct np_alert *a = np_alert_new(NP_ALERT_SITE_DOWN);
    struct np_alert_text t;
    struct np_alert_render_opts o = {"https://np.example.org", NULL, NULL};
    a->n_sites = 3;
    a->sites = calloc(3, sizeof *a->sites);
    for (int i = 0; i < 3; i++) {
        snprintf(a->sites[i].id, sizeof a->sites[i].id, "school-%d", i);
        a->sites[i].start_ms = 1790000000000;
    }
    CHECK_INT(np_alert_render(a, &o, &t), 0);
    CHECK_STR(t.subject, "[netpulse] 3 sites unreachable");
    CHECK_CONTAINS(t.text, "- school-2: no heartbeat since 2026-09-21");
    CHECK_CONTAINS(t.text, "https://np.example.org/sites/school-1");
    CHECK_STR(t.link, "");
    np_alert_text_free(&t);
    np_alert_free(a);
}

static int collect(const char *addr, void *ctx)
{
    char *buf = ctx;
    strncat(buf, addr, 200);
    strncat(buf, "|", 2);
    return 0;
}

static void test_addresses(void)
{
    static const char *const good[] = {"noc@example.org", "a.b+c@d-e.example", "x@y",
                                       "o'neil@school.k12.example.us"};
    static const char *const bad[] = {"",
                                      "noc",
                                      "@example.org",
                                      "noc@",
                                      "a@b.c\r\nBcc: x@y.z",
                                      "<noc@example.org>",
                                      "Noc <noc@example.org>",
                                      "a b@c.d",
                                      "a..b@c.d",
                                      ".a@c.d",
                                      "a@-c.d",
                                      "a@c..d",
                                      "a@c.d.",
                                      "a@[127.0.0.1]",
                                      "a\"b@c.d",
                                      "a@b@c.d",
                                      "\xc3\xa9@c.d"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK(np_alert_mail_valid_address(good[i]));
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (np_alert_mail_valid_address(bad[i])) {
            fprintf(stderr, "accepted: %s\n", bad[i]);
        }
        CHECK(!np_alert_mail_valid_address(bad[i]));
    }
    char buf[1024] = "";
    size_t invalid = 0;
    CHECK_INT(
        np_alert_mail_split("a@x.org; bad, b@y.org\r\nBcc: c@z.org;;", collect, buf, &invalid), 0);
    CHECK_STR(buf, "a@x.org|b@y.org|c@z.org|");
    CHECK_INT(invalid, 2);

    /* a bad recipient or sender refuses the whole message */
    struct np_alert_text t = {(char *)"s", (char *)"t", (char *)"h", (char *)""};
    const char *to[] = {"x@y.org\r\nBcc: z@evil.example"};
    struct np_alert_mail_headers h = {"n@example.org", to,  1, 0, "k", NP_ALERT_TEST,
                                      NP_ALERT_INFO,   NULL};
    char *m = NULL;
    size_t len;
    CHECK_INT(np_alert_mail_build(&t, &h, &m, &len, NULL), -EINVAL);
    CHECK(m == NULL);
    h.n_to = 0;
    CHECK_INT(np_alert_mail_build(&t, &h, &m, &len, NULL), -EINVAL);
    to[0] = "ok@example.org";
    h.n_to = 1;
    h.from = "evil\r\n@example.org";
    CHECK_INT(np_alert_mail_build(&t, &h, &m, &len, NULL), -EINVAL);
}

static void test_duration(void)
{
    char b[40];
    CHECK_STR(np_alert_format_duration(0, b, sizeof b), "0s");
    CHECK_STR(np_alert_format_duration(59499, b, sizeof b), "59s");
    CHECK_STR(np_alert_format_duration(61000, b, sizeof b), "1m 01s");
    CHECK_STR(np_alert_format_duration(86400000LL * 2 + 3600000 * 4 + 300000, b, sizeof b),
              "2d 4h 05m");
}

int main(void)
{
    test_hostile();
    test_html_escaped();
    test_digest();
    test_addresses();
    test_duration();
    return check_done("test_alert_mail");
}
