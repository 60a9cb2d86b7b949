/* Unit tests of the graph parameter validator (rrd_graph.h) and the static
 * path mapping (web.h). */
#include "rrd_graph.h"
#include "web.h"

#include "check.h"

#include <errno.h>
#include <string.h>

#define NOW 1790000000

static int parse(const char *path, const char *query, struct np_graph_req *r)
{
    struct np_err err = {0};
    return np_rrd_graph_parse(path, strlen(path), query, strlen(query), NOW, r, &err);
}

static void test_good(void)
{
    struct np_graph_req r;
    CHECK_INT(parse("oak-es/traffic.png", "", &r), 0);
    CHECK_STR(r.site, "oak-es");
    CHECK_INT(r.format, NP_GRAPH_PNG);
    CHECK_INT(r.to_s, NOW);
    CHECK_INT(r.from_s, NOW - 86400);
    CHECK_INT(r.width, 800);
    CHECK_INT(r.height, 250);
    CHECK_INT(parse("oak-es/traffic.svg", "range=year&width=2000&height=80", &r), 0);
    CHECK_INT(r.format, NP_GRAPH_SVG);
    CHECK_INT(r.from_s, NOW - 366 * 86400);
    CHECK_INT(r.width, 2000);
    CHECK_INT(parse("a/traffic.png", "from=1700000000&to=1700086400", &r), 0);
    CHECK_INT(r.from_s, 1700000000);
    CHECK_INT(r.to_s, 1700086400);
    CHECK_INT(parse("a/traffic.png", "device=edge&iface=Gi0%2F1", &r), 0);
    CHECK_STR(r.device, "edge");
    CHECK_STR(r.iface, "Gi0/1");
    CHECK_INT(parse("a/traffic.png", "range=week&&", &r), 0);
}

static void test_bad(void)
{
    static const struct {
        const char *path, *query;
    } cases[] = {
        {"oak-es/traffic.png", "range=day%0ADEF:x=/etc/passwd:a:AVERAGE"},
        {"oak-es/traffic.png", "range=day:x"},
        {"oak-es/traffic.png", "range=DAY"},
        {"oak-es/traffic.png", "range="},
        {"oak-es/traffic.png", "range"},
        {"oak-es/traffic.png", "width=1:2"},
        {"oak-es/traffic.png", "width=199"},
        {"oak-es/traffic.png", "width=2001"},
        {"oak-es/traffic.png", "width=+800"},
        {"oak-es/traffic.png", "width=800&width=800"},
        {"oak-es/traffic.png", "height=79"},
        {"oak-es/traffic.png", "height=1e3"},
        {"oak-es/traffic.png", "from=1700000000"},
        {"oak-es/traffic.png", "from=1700000000&to=1700000000"},
        {"oak-es/traffic.png", "from=1700000001&to=1700000000"},
        {"oak-es/traffic.png", "from=1&to=2"},
        {"oak-es/traffic.png", "from=1000000000&to=1700000000"},
        {"oak-es/traffic.png", "from=-1&to=1700000000"},
        {"oak-es/traffic.png", "range=day&from=1700000000&to=1700086400"},
        {"oak-es/traffic.png", "foo=bar"},
        {"oak-es/traffic.png", "DEF:x=y"},
        {"oak-es/traffic.png", "device=edge"},
        {"oak-es/traffic.png", "device=edge%0A&iface=eth0"},
        {"oak-es/traffic.png", "device=e%00&iface=eth0"},
        {"oak-es/traffic.png", "device=e&iface=%zz"},
        {"oak-es/traffic.png", "range=%"},
        {"oak-es/traffic.png", "range=%4"},
        {"../etc/traffic.png", ""},
        {"oak-es/../traffic.png", ""},
        {".hidden/traffic.png", ""},
        {"oak:es/traffic.png", ""},
        {"oak es/traffic.png", ""},
        {"/traffic.png", ""},
        {"oak-es/traffic.gif", ""},
        {"oak-es/traffic.png/x", ""},
        {"oak-es", ""},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct np_graph_req r;
        int rc = parse(cases[i].path, cases[i].query, &r);
        if (rc != -EINVAL) {
            fprintf(stderr, "case %zu: %s ? %s accepted\n", i, cases[i].path, cases[i].query);
        }
        CHECK_INT(rc, -EINVAL);
    }
}

static void test_build(void)
{
    struct np_graph_req r;
    struct np_graph_args a;
    struct np_err err = {0};
    CHECK_INT(parse("oak-es/traffic.svg", "range=week", &r), 0);
    CHECK_INT(np_rrd_graph_build(&r, "/var/lib/netpulse/rrd/oak-es/if+edge+eth0.rrd", 100000000, &a,
                                 &err),
              0);
    bool have_p95 = false, have_hrule = false, have_svg = false, have_def5 = false;
    for (int i = 0; i < a.argc; i++) {
        CHECK(strchr(a.argv[i], '\n') == NULL);
        have_p95 = have_p95 || strcmp(a.argv[i], "VDEF:in95=in5,95,PERCENT") == 0;
        have_hrule = have_hrule || strcmp(a.argv[i], "HRULE:100000000#c62828:Capacity") == 0;
        have_svg = have_svg || strcmp(a.argv[i], "SVG") == 0;
        have_def5 = have_def5 || strcmp(a.argv[i], "DEF:in5=/var/lib/netpulse/rrd/oak-es/"
                                                    "if+edge+eth0.rrd:in_bps:AVERAGE:step=300") == 0;
    }
    CHECK(have_def5);
    CHECK(have_p95);
    CHECK(have_hrule);
    CHECK(have_svg);
    /* A path that could split a DEF is refused. */
    CHECK_INT(np_rrd_graph_build(&r, "/data:x/rrd/a.rrd", 0, &a, &err), -EINVAL);
    CHECK_INT(np_rrd_graph_build(&r, "/data\n/a.rrd", 0, &a, &err), -EINVAL);
    CHECK_INT(np_rrd_graph_build(&r, "/data\\/a.rrd", 0, &a, &err), -EINVAL);
}

static void test_map_path(void)
{
    static const struct {
        const char *url, *file;
    } good[] = {
        {"/", "index.html"},
        {"/district", "district.html"},
        {"/sites/oak-es", "site.html"},
        {"/sites/oak-es/", "site.html"},
        {"/static/app.js", "static/app.js"},
        {"/login.html", "login.html"},
        {"/static/style.css", "static/style.css"},
    };
    static const char *const bad[] = {
        "/..",           "/../etc/passwd", "/static/../x.html", "/.env.txt", "/static/.x.js",
        "/static//a.js", "/a.exe",         "/static/",          "/sites/..", "/sites/a/b",
        "/x%2e.html",    "/x\\y.html",     "/a b.html",         "",          "/static/a.js/",
    };
    char out[256];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK_INT(np_web_map_path(good[i].url, strlen(good[i].url), out, sizeof out), 0);
        CHECK_STR(out, good[i].file);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = np_web_map_path(bad[i], strlen(bad[i]), out, sizeof out);
        if (rc == 0) {
            fprintf(stderr, "mapped %s -> %s\n", bad[i], out);
        }
        CHECK_INT(rc, -1);
    }
    CHECK_STR(np_web_content_type("a.js"), "text/javascript; charset=utf-8");
    CHECK(np_web_content_type("a.sh") == NULL);
}

int main(void)
{
    test_good();
    test_bad();
    test_build();
    test_map_path();
    return check_failures != 0;
}
