/* Unit tests of collector/http_parse: bearer tokens, query strings, the read
 * API's parameters, site paths and capped gzip inflation (gzip input made
 * here with zlib, so what is inflated is known). */
#include "http_parse.h"

#include "check.h"

#include <zlib.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void test_bearer(void)
{
    static const struct {
        const char *in;
        int rc;
        const char *token;
    } cases[] = {
        {"Bearer abc", 0, "abc"},         {"bearer np1_XYZ-._~+/=", 0, "np1_XYZ-._~+/="},
        {"BEARER   spaced", 0, "spaced"}, {"Bearer ", -EINVAL, ""},
        {"Bearer    ", -EINVAL, ""},      {"Bearer", -EINVAL, ""},
        {"Basic abc", -EINVAL, ""},       {"Bearer a b", -EINVAL, ""},
        {"Bearer a\tb", -EINVAL, ""},     {"Bearer caf\xc3\xa9", -EINVAL, ""},
        {"Bearerabc", -EINVAL, ""},       {"", -EINVAL, ""},
    };
    char out[16];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(out, 'x', sizeof out);
        int rc = np_http_bearer_token(cases[i].in, strlen(cases[i].in), out, sizeof out);
        CHECK_INT(rc, cases[i].rc);
        CHECK_STR(out, cases[i].token);
    }
    /* Absent header; a token exactly at and just over the buffer. */
    CHECK_INT(np_http_bearer_token(NULL, 0, out, sizeof out), -EINVAL);
    CHECK_INT(np_http_bearer_token("Bearer 123456789012345", 22, out, sizeof out), 0);
    CHECK_STR(out, "123456789012345");
    CHECK_INT(np_http_bearer_token("Bearer 1234567890123456", 23, out, sizeof out), -EINVAL);
    /* The length bounds the view: bytes after it are not read. */
    CHECK_INT(np_http_bearer_token("Bearer abcdef", 10, out, sizeof out), 0);
    CHECK_STR(out, "abc");
    /* An embedded NUL is a control byte. */
    CHECK_INT(np_http_bearer_token("Bearer a\0b", 10, out, sizeof out), -EINVAL);
}

static void test_query(void)
{
    static const struct {
        const char *q, *key;
        int rc;
        const char *value;
    } cases[] = {
        {"from=1&to=2", "from", 1, "1"},
        {"from=1&to=2", "to", 1, "2"},
        {"from=1&to=2", "step", 0, ""},
        {"xfrom=1&from=3", "from", 1, "3"},
        {"from&from=4", "from", 1, "4"},
        {"from=5&from=6", "from", 1, "5"},
        {"from=", "from", 1, ""},
        {"device=core%2Dsw+1&iface=Gi0%2F1", "device", 1, "core-sw 1"},
        {"device=core%2Dsw+1&iface=Gi0%2F1", "iface", 1, "Gi0/1"},
        {"iface=%e2%82%ac", "iface", 1, "\xe2\x82\xac"},
        {"iface=%", "iface", -EINVAL, ""},
        {"iface=%4", "iface", -EINVAL, ""},
        {"iface=%4&x=1", "iface", -EINVAL, ""},
        {"iface=%zz", "iface", -EINVAL, ""},
        {"iface=a%00b", "iface", -EINVAL, ""},
        {"iface=0123456789abcdef", "iface", -EINVAL, ""}, /* 16 bytes + NUL > 16 */
        {"iface=0123456789abcde", "iface", 1, "0123456789abcde"},
        {"&&&", "from", 0, ""},
        {"", "from", 0, ""},
    };
    char out[16];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        out[0] = '\0';
        int rc = np_http_query_get(cases[i].q, strlen(cases[i].q), cases[i].key, out, sizeof out);
        if (rc != cases[i].rc) {
            fprintf(stderr, "case %zu: \"%s\" key %s\n", i, cases[i].q, cases[i].key);
        }
        CHECK_INT(rc, cases[i].rc);
        if (rc == 1) {
            CHECK_STR(out, cases[i].value);
        }
    }
    /* A cut %XX at the end of the view, though the bytes after it look fine. */
    CHECK_INT(np_http_query_get("a=%41", 4, "a", out, sizeof out), -EINVAL);
    CHECK_INT(np_http_query_get("a=%41", 5, "a", out, sizeof out), 1);
    CHECK_STR(out, "A");
}

static void test_i64(void)
{
    int64_t v = 7;
    CHECK_INT(np_http_parse_i64("1700000000", &v), 0);
    CHECK_INT(v, 1700000000);
    CHECK_INT(np_http_parse_i64("-5", &v), 0);
    CHECK_INT(v, -5);
    CHECK_INT(np_http_parse_i64("", &v), -EINVAL);
    CHECK_INT(np_http_parse_i64(" 5", &v), -EINVAL);
    CHECK_INT(np_http_parse_i64("5 ", &v), -EINVAL);
    CHECK_INT(np_http_parse_i64("5x", &v), -EINVAL);
    CHECK_INT(np_http_parse_i64("99999999999999999999", &v), -EINVAL);
}

static void test_series_query(void)
{
    struct np_http_series_query sq;
    const int64_t now = 1700000000;
    const char *q = "";
    CHECK(np_http_series_query_parse(q, 0, now, &sq) == NULL);
    CHECK_INT(sq.from_s, now - 86400);
    CHECK_INT(sq.to_s, now);
    CHECK_INT(sq.step_s, 0);
    CHECK_STR(sq.cf, "AVERAGE");
    CHECK_STR(sq.device, "");

    q = "from=100&to=200&step=60&cf=MAX&device=edge&iface=eth0";
    CHECK(np_http_series_query_parse(q, strlen(q), now, &sq) == NULL);
    CHECK_INT(sq.from_s, 100);
    CHECK_INT(sq.to_s, 200);
    CHECK_INT(sq.step_s, 60);
    CHECK_STR(sq.cf, "MAX");
    CHECK_STR(sq.device, "edge");
    CHECK_STR(sq.iface, "eth0");

    static const struct {
        const char *q, *why;
    } bad[] = {
        {"from=x", "from: expected Unix seconds"},
        {"to=1e9", "to: expected Unix seconds"},
        {"step=-1", "step: expected seconds"},
        {"step=31622401", "step: expected seconds"},
        {"cf=MIN", "cf: AVERAGE or MAX"},
        {"cf=AVERAGEX", "cf: AVERAGE or MAX"},
        {"probe=%G0", "device/iface/probe: malformed"},
        {"from=200&to=200", "from must be before to"},
        {"from=1700000000", "from must be before to"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = np_http_series_query_parse(bad[i].q, strlen(bad[i].q), now, &sq);
        CHECK_STR(why, bad[i].why);
    }
}

static void test_range_query(void)
{
    int64_t from, to;
    const int64_t now = 1700000000;
    CHECK(np_http_range_query_parse("", 0, now, &from, &to) == NULL);
    CHECK_INT(from, now - 30 * 86400);
    CHECK_INT(to, now + 1);
    const char *q = "from=-10&to=10";
    CHECK(np_http_range_query_parse(q, strlen(q), now, &from, &to) == NULL);
    CHECK_INT(from, -10);
    CHECK_INT(to, 10);
    q = "from=4398046511105"; /* 2^42 + 1 */
    CHECK_STR(np_http_range_query_parse(q, strlen(q), now, &from, &to),
              "from: expected Unix seconds");
    q = "to=-4398046511105";
    CHECK_STR(np_http_range_query_parse(q, strlen(q), now, &from, &to),
              "to: expected Unix seconds");
    q = "from=5&to=5";
    CHECK_STR(np_http_range_query_parse(q, strlen(q), now, &from, &to), "from must be before to");
}

static void test_site_path(void)
{
    static const struct {
        const char *path;
        int rc;
        const char *site;
        enum np_http_site_sub sub;
    } cases[] = {
        {"/api/v1/sites/school-1", 0, "school-1", NP_HTTP_SITE},
        {"/api/v1/sites/school-1/", 0, "school-1", NP_HTTP_SITE},
        {"/api/v1/sites/school-1/series", 0, "school-1", NP_HTTP_SITE_SERIES},
        {"/api/v1/sites/s/events", 0, "s", NP_HTTP_SITE_EVENTS},
        {"/api/v1/sites/s/outages", 0, "s", NP_HTTP_SITE_OUTAGES},
        {"/api/v1/sites/s/uptime", 0, "s", NP_HTTP_SITE_UPTIME},
        {"/api/v1/sites/s/capacity", 0, "s", NP_HTTP_SITE_CAPACITY},
        {"/api/v1/sites/", -ENOENT, "", NP_HTTP_SITE},
        {"/api/v1/sites//series", -ENOENT, "", NP_HTTP_SITE},
        {"/api/v1/sites/s/series/", -ENOENT, "", NP_HTTP_SITE},
        {"/api/v1/sites/s/seriesx", -ENOENT, "", NP_HTTP_SITE},
        {"/api/v1/sites/s//", -ENOENT, "", NP_HTTP_SITE},
        {"/api/v1/sites/s/a/series", -ENOENT, "", NP_HTTP_SITE},
        {"/api/v1/site/s", -ENOENT, "", NP_HTTP_SITE},
        {"/api/v1/sites/0123456789abcdef", -ENOENT, "", NP_HTTP_SITE}, /* over site_len */
        {"/api/v1/sites/0123456789abcde", 0, "0123456789abcde", NP_HTTP_SITE},
    };
    char site[16];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum np_http_site_sub sub = NP_HTTP_SITE;
        int rc = np_http_site_path(cases[i].path, strlen(cases[i].path), site, sizeof site, &sub);
        if (rc != cases[i].rc) {
            fprintf(stderr, "case %zu: %s\n", i, cases[i].path);
        }
        CHECK_INT(rc, cases[i].rc);
        CHECK_STR(site, cases[i].site);
        if (rc == 0) {
            CHECK_INT(sub, cases[i].sub);
        }
    }
    enum np_http_site_sub sub;
    CHECK_INT(np_http_site_path("/api/v1/sites/a\0b", 16, site, sizeof site, &sub), -ENOENT);
}

/* gzip of in[0..len) with zlib (deflateInit2 with 16 + window bits). */
static uint8_t *gzip(const uint8_t *in, size_t len, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return NULL;
    }
    size_t cap = deflateBound(&zs, (uLong)len);
    uint8_t *out = malloc(cap);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    if (!out || deflate(&zs, Z_FINISH) != Z_STREAM_END) {
        free(out);
        deflateEnd(&zs);
        return NULL;
    }
    *out_len = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

static void test_gunzip(void)
{
    size_t n = 300000, gz_len = 0, out_len = 99;
    uint8_t *plain = malloc(n), *out = NULL;
    struct np_err err = {0};
    for (size_t i = 0; i < n; i++) {
        plain[i] = (uint8_t)(i * 7 % 251);
    }
    uint8_t *gz = gzip(plain, n, &gz_len);
    CHECK(gz != NULL);

    /* Round trip, growing past the first guess; exactly at the cap. */
    CHECK_INT(np_http_gunzip(gz, gz_len, n, &out, &out_len, &err), 0);
    CHECK_U64(out_len, n);
    CHECK(out && memcmp(out, plain, n) == 0);
    free(out);

    /* One byte over the cap. */
    CHECK_INT(np_http_gunzip(gz, gz_len, n - 1, &out, &out_len, &err), NP_ETOOBIG);
    CHECK(out == NULL);
    CHECK_U64(out_len, 0);
    CHECK_CONTAINS(err.msg, "inflates to more than");

    /* Truncated, trailing bytes, corrupt, not gzip at all, empty. */
    CHECK_INT(np_http_gunzip(gz, gz_len - 5, n, &out, &out_len, &err), NP_EPROTO);
    CHECK_CONTAINS(err.msg, "truncated");
    uint8_t *longer = malloc(gz_len + 3);
    memcpy(longer, gz, gz_len);
    memcpy(longer + gz_len, "abc", 3);
    CHECK_INT(np_http_gunzip(longer, gz_len + 3, n, &out, &out_len, &err), NP_EPROTO);
    CHECK_CONTAINS(err.msg, "after the end");
    longer[gz_len - 2] ^= 0xff; /* the length field of the trailer */
    CHECK_INT(np_http_gunzip(longer, gz_len, n, &out, &out_len, &err), NP_EPROTO);
    CHECK_INT(np_http_gunzip(plain, 1000, n, &out, &out_len, &err), NP_EPROTO);
    CHECK_INT(np_http_gunzip(plain, 0, n, &out, &out_len, &err), NP_EPROTO);
    free(longer);

    /* An empty member inflates to nothing; err may be NULL. */
    size_t e_len = 0;
    uint8_t *e = gzip((const uint8_t *)"", 0, &e_len);
    CHECK_INT(np_http_gunzip(e, e_len, 10, &out, &out_len, NULL), 0);
    CHECK_U64(out_len, 0);
    free(out);
    free(e);

    /* A bomb: 64 MiB of zeros in about 64 KiB, refused at a 1 MiB cap. */
    size_t big = 64u << 20, bomb_len = 0;
    uint8_t *zeros = calloc(1, big);
    uint8_t *bomb = zeros ? gzip(zeros, big, &bomb_len) : NULL;
    free(zeros);
    CHECK(bomb != NULL);
    CHECK_INT(np_http_gunzip(bomb, bomb_len, 1u << 20, &out, &out_len, &err), NP_ETOOBIG);
    free(bomb);
    free(gz);
    free(plain);
}

int main(void)
{
    test_bearer();
    test_query();
    test_i64();
    test_series_query();
    test_range_query();
    test_site_path();
    test_gunzip();
    return check_done("test_http_parse");
}
