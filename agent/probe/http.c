/* http: a round is one GET of the target URL through libcurl's multi
 * interface on the loop (curl_uv.h). The round is up when the transfer
 * completes with a status in expect_status. Each round opens a fresh
 * connection (no reuse), so it measures what a user's first request meets:
 * lookup, TCP and TLS handshakes and the answer; rtt is the whole transfer.
 * Redirects are not followed (a 3xx is an answer). The body is discarded. */
#include "probe_internal.h"

#include "curl_uv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct http {
    CURL *easy;
    bool global_init;
    bool busy; /* added to curl_uv, done callback not yet run */
    size_t n_ranges;
    struct np_status_range ranges[NP_PROBE_MAX_STATUS_RANGES];
    char errbuf[CURL_ERROR_SIZE];
};

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * nmemb;
}

static int http_open(struct np_probe *p, struct np_err *err)
{
    struct http *h = calloc(1, sizeof *h);
    if (!h) {
        return np_err_set(err, -ENOMEM, "probe: out of memory");
    }
    p->impl = h;
    int n =
        np_probe_parse_status(&p->cfg->expect_status, h->ranges, NP_PROBE_MAX_STATUS_RANGES, err);
    if (n < 0) {
        return n;
    }
    h->n_ranges = (size_t)n;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return np_err_set(err, NP_EHTTP, "probe: %s: curl_global_init failed", p->cfg->name);
    }
    h->global_init = true;
    h->easy = curl_easy_init();
    if (!h->easy) {
        return np_err_set(err, NP_EHTTP, "probe: %s: curl_easy_init failed", p->cfg->name);
    }
    CURL *e = h->easy;
    CURLcode rc = CURLE_OK;
    rc |= curl_easy_setopt(e, CURLOPT_URL, p->cfg->target);
    rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    rc |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)p->cfg->timeout_ms);
    rc |= curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    rc |= curl_easy_setopt(e, CURLOPT_USERAGENT, "netpulse-agent probe");
    rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    rc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
    if (rc != CURLE_OK) {
        return np_err_set(err, NP_EHTTP, "probe: %s: libcurl refused an option", p->cfg->name);
    }
    return 0;
}

static int http_attach(struct np_probe *p, struct np_err *err)
{
    (void)p;
    (void)err;
    return 0;
}

static void on_done(CURL *easy, CURLcode result, void *ctx)
{
    struct np_probe *p = ctx;
    struct http *h = p->impl;
    char why[CURL_ERROR_SIZE + 32];
    h->busy = false;
    if (result != CURLE_OK) {
        if (result == CURLE_OPERATION_TIMEDOUT) {
            snprintf(why, sizeof why, "timeout");
        } else {
            snprintf(why, sizeof why, "%s", h->errbuf[0] ? h->errbuf : curl_easy_strerror(result));
        }
        np_probe_round_done(p, false, 0, 1, 0, why);
        return;
    }
    long status = 0;
    curl_off_t total_us = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &total_us);
    bool ok = np_probe_status_ok((int)status, h->ranges, h->n_ranges);
    snprintf(why, sizeof why, "HTTP status %ld", status);
    np_probe_round_done(p, ok, ok && total_us > 0 ? (uint64_t)total_us : 0, 1, ok, ok ? "" : why);
}

static void http_start(struct np_probe *p)
{
    struct http *h = p->impl;
    h->errbuf[0] = '\0';
    int rc = np_curl_uv_add(p->set->curl, h->easy, on_done, p);
    if (rc != 0) {
        np_probe_round_done(p, false, 0, 1, 0, "cannot start the transfer");
        return;
    }
    h->busy = true;
}

static void stop(struct np_probe *p)
{
    struct http *h = p->impl;
    if (h && h->busy) {
        np_curl_uv_cancel(p->set->curl, h->easy);
        h->busy = false;
    }
}

static void http_timeout(struct np_probe *p)
{
    stop(p);
    np_probe_round_done(p, false, 0, 1, 0, "timeout");
}

static void http_close(struct np_probe *p)
{
    stop(p);
}

static void http_release(struct np_probe *p)
{
    struct http *h = p->impl;
    if (!h) {
        return;
    }
    if (h->easy) {
        curl_easy_cleanup(h->easy);
    }
    if (h->global_init) {
        curl_global_cleanup();
    }
    free(h);
    p->impl = NULL;
}

const struct np_probe_ops np_probe_http_ops = {
    http_open, http_attach, http_start, http_timeout, http_close, http_release,
};
