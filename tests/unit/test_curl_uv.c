/* test_curl_uv: libcurl multi on a libuv loop against real sockets.
 *
 *   test_curl_uv BASE_URL SILENT_URL REFUSED_URL
 * BASE_URL: an HTTP/1.1 keep-alive server (tests/integration/uplink/test_curl_uv.py)
 * SILENT_URL: a listener that never answers; REFUSED_URL: nothing listening. */
#include "curl_uv.h"

#include "check.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char *base_url, *silent_url, *refused_url;
static uv_loop_t loop;
static struct np_curl_uv *cu;
static unsigned pending;
static bool guard_fired;

struct body {
    unsigned char *data;
    size_t len, cap;
};

static size_t on_write(char *p, size_t size, size_t n, void *userp)
{
    struct body *b = userp;
    size_t len = size * n;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + len) {
            cap *= 2;
        }
        unsigned char *d = realloc(b->data, cap);
        if (!d) {
            return 0;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, len);
    b->len += len;
    return len;
}

struct req {
    CURL *easy;
    struct body body;
    CURLcode result;
    long code;
    int done; /* callbacks seen */
    char url[256];
};

static void req_init(struct req *r, const char *base, const char *path)
{
    memset(r, 0, sizeof *r);
    snprintf(r->url, sizeof r->url, "%s%s", base, path);
    r->easy = curl_easy_init();
    curl_easy_setopt(r->easy, CURLOPT_URL, r->url);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
}

static void req_fini(struct req *r)
{
    curl_easy_cleanup(r->easy);
    free(r->body.data);
}

static void on_done(CURL *easy, CURLcode result, void *ctx)
{
    struct req *r = ctx;
    CHECK(easy == r->easy);
    r->result = result;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->code);
    r->done++;
    if (--pending == 0) {
        uv_stop(&loop);
    }
}

static void on_guard(uv_timer_t *t)
{
    (void)t;
    guard_fired = true;
    uv_stop(&loop);
}

/* Runs the loop until pending reaches 0 or 10 s pass. */
static void run(void)
{
    uv_timer_t guard;
    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, on_guard, 10000, 0);
    guard_fired = false;
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(!guard_fired);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static bool is_pattern(const struct body *b, size_t n)
{
    if (b->len != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (b->data[i] != (unsigned char)((i * 7 + 3) & 0xFF)) {
            return false;
        }
    }
    return true;
}

/* Many transfers at once, each on its own connection. */
static void test_parallel(void)
{
    enum { N = 8 };
    static struct req r[N];
    for (int i = 0; i < N; i++) {
        char path[64];
        snprintf(path, sizeof path, "/data/%d", 100000 + i * 1000);
        req_init(&r[i], base_url, path);
        CHECK_INT(np_curl_uv_add(cu, r[i].easy, on_done, &r[i]), 0);
        pending++;
    }
    CHECK_INT(np_curl_uv_running(cu), N);
    CHECK_INT(np_curl_uv_add(cu, r[0].easy, on_done, &r[0]), -EINVAL);
    run();
    for (int i = 0; i < N; i++) {
        CHECK_INT(r[i].done, 1);
        CHECK_INT(r[i].result, CURLE_OK);
        CHECK_INT(r[i].code, 200);
        CHECK(is_pattern(&r[i].body, 100000 + (size_t)i * 1000));
        req_fini(&r[i]);
    }
    CHECK_INT(np_curl_uv_running(cu), 0);
}

/* One easy handle re-added from its own callback: the connection is reused. */
static struct req reuse;
static int reuse_rounds;
static long reuse_new_conns;

static void on_reuse(CURL *easy, CURLcode result, void *ctx)
{
    (void)ctx;
    long conns = -1;
    CHECK_INT(result, CURLE_OK);
    curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &conns);
    if (reuse_rounds > 0) {
        reuse_new_conns += conns;
    }
    CHECK(is_pattern(&reuse.body, 10));
    reuse.body.len = 0;
    if (++reuse_rounds < 4) {
        CHECK_INT(np_curl_uv_add(cu, easy, on_reuse, NULL), 0);
        return;
    }
    if (--pending == 0) {
        uv_stop(&loop);
    }
}

static void test_reuse(void)
{
    req_init(&reuse, base_url, "/data/10");
    CHECK_INT(np_curl_uv_add(cu, reuse.easy, on_reuse, NULL), 0);
    pending++;
    run();
    CHECK_INT(reuse_rounds, 4);
    CHECK_INT(reuse_new_conns, 0);
    req_fini(&reuse);
}

/* POST body, an HTTP error status, a refused connection, a timeout. */
static void test_results(void)
{
    static struct req post, st503, refused, timeout;
    static unsigned char payload[65536];
    for (size_t i = 0; i < sizeof payload; i++) {
        payload[i] = (unsigned char)((i * 7 + 3) & 0xFF);
    }
    req_init(&post, base_url, "/echo");
    curl_easy_setopt(post.easy, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(post.easy, CURLOPT_POSTFIELDSIZE, (long)sizeof payload);
    req_init(&st503, base_url, "/status/503");
    req_init(&refused, refused_url, "");
    req_init(&timeout, silent_url, "");
    curl_easy_setopt(timeout.easy, CURLOPT_TIMEOUT_MS, 300L);
    struct req *all[] = {&post, &st503, &refused, &timeout};
    for (size_t i = 0; i < 4; i++) {
        CHECK_INT(np_curl_uv_add(cu, all[i]->easy, on_done, all[i]), 0);
        pending++;
    }
    uint64_t t0 = uv_hrtime();
    run();
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    CHECK_INT(post.result, CURLE_OK);
    CHECK_INT(post.code, 200);
    CHECK(is_pattern(&post.body, sizeof payload));
    CHECK_INT(st503.result, CURLE_OK);
    CHECK_INT(st503.code, 503);
    CHECK_INT(refused.result, CURLE_COULDNT_CONNECT);
    CHECK_INT(timeout.result, CURLE_OPERATION_TIMEDOUT);
    CHECK(ms >= 250); /* the timeout came from libcurl's timer, not at once */
    for (size_t i = 0; i < 4; i++) {
        CHECK_INT(all[i]->done, 1);
        req_fini(all[i]);
    }
}

/* A hanging transfer cancelled from a timer: no callback, the handle is the
 * caller's again and works for a new transfer. */
static struct req hang;

static void on_cancel_timer(uv_timer_t *t)
{
    np_curl_uv_cancel(cu, hang.easy);
    CHECK_INT(np_curl_uv_running(cu), 0);
    np_curl_uv_cancel(cu, hang.easy); /* not running: nothing happens */
    curl_easy_setopt(hang.easy, CURLOPT_URL, base_url);
    CHECK_INT(np_curl_uv_add(cu, hang.easy, on_done, &hang), 0);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_cancel(void)
{
    uv_timer_t t;
    req_init(&hang, silent_url, "");
    CHECK_INT(np_curl_uv_add(cu, hang.easy, on_done, &hang), 0);
    pending++;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, on_cancel_timer, 200, 0);
    run();
    CHECK_INT(hang.done, 1); /* only the second transfer's callback */
    CHECK_INT(hang.result, CURLE_OK);
    CHECK_INT(hang.code, 404);
    req_fini(&hang);
}

/* np_curl_uv_free from inside a done callback, with another transfer still
 * hanging: no further callback, every handle closed, the loop ends. */
static struct req f_fast, f_hang;

static void on_done_free(CURL *easy, CURLcode result, void *ctx)
{
    on_done(easy, result, ctx);
    np_curl_uv_free(cu);
    CHECK_INT(np_curl_uv_add(cu, f_fast.easy, on_done, &f_fast), -ESHUTDOWN);
}

static void test_free_in_callback(void)
{
    req_init(&f_fast, base_url, "/data/5");
    req_init(&f_hang, silent_url, "");
    CHECK_INT(np_curl_uv_add(cu, f_hang.easy, on_done, &f_hang), 0);
    CHECK_INT(np_curl_uv_add(cu, f_fast.easy, on_done_free, &f_fast), 0);
    pending++;
    run();
    CHECK_INT(f_fast.done, 1);
    CHECK_INT(f_hang.done, 0);
    cu = NULL;
    /* Nothing is left on the loop: it returns on its own, and closes. */
    CHECK_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_INT(uv_loop_close(&loop), 0);
    req_fini(&f_fast);
    req_fini(&f_hang);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: test_curl_uv BASE_URL SILENT_URL REFUSED_URL\n");
        return 2;
    }
    base_url = argv[1];
    silent_url = argv[2];
    refused_url = argv[3];
    curl_global_init(CURL_GLOBAL_DEFAULT); /* outlives cu: easy handles are freed after it */
    uv_loop_init(&loop);
    struct np_err err = {0};
    CHECK_INT(np_curl_uv_new(&loop, &cu, &err), 0);
    if (!cu) {
        return 1;
    }
    test_parallel();
    test_reuse();
    test_results();
    test_cancel();
    test_free_in_callback();
    curl_global_cleanup();
    if (check_failures == 0) {
        printf("test_curl_uv: ok\n");
    }
    return check_failures;
}
