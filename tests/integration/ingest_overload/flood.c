/* flood: helper of tests/integration/ingest_overload/run.sh.
 *
 *   flood URL CACERT TOKEN BODY N CONNS OUT
 *       posts the file BODY (a wire batch) N times at once with the bearer
 *       TOKEN, HTTP/2 over TLS, multiplexed over at most CONNS connections
 *       (libcurl's multi interface), every request in flight at the same time.
 *       OUT gets one line per answer as it comes: "HTTP_STATUS RETRY_AFTER_S"
 *       (status 0: no answer, curl failed). Exits 0 when every request was
 *       answered, 1 otherwise. */
#include <curl/curl.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

static int num(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v <= 0) {
        fprintf(stderr, "flood: not a positive number: %s\n", s);
        return -1;
    }
    *out = v;
    return 0;
}

static int read_file(const char *path, char **out, long *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    char *buf = NULL;
    int rc = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (*len = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)*len)) && fread(buf, 1, (size_t)*len, f) == (size_t)*len) {
        *out = buf;
        buf = NULL;
        rc = 0;
    } else {
        fprintf(stderr, "flood: cannot read %s\n", path);
    }
    free(buf);
    fclose(f);
    return rc;
}

int main(int argc, char **argv)
{
    long n, conns, len = 0;
    char *body = NULL;
    if (argc != 8 || num(argv[5], &n) || num(argv[6], &conns)) {
        fprintf(stderr, "usage: flood URL CACERT TOKEN BODY N CONNS OUT\n");
        return 2;
    }
    if (read_file(argv[4], &body, &len) != 0) {
        return 1;
    }
    FILE *out = fopen(argv[7], "w");
    if (!out) {
        perror(argv[7]);
        free(body);
        return 1;
    }
    char auth[300];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", argv[3]);
    struct curl_slist *headers = curl_slist_append(NULL, auth);
    headers = curl_slist_append(headers, "Content-Type: application/x-protobuf");

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
    CURL **easy = calloc((size_t)n, sizeof *easy);
    int rc = easy ? 0 : 1;
    for (long i = 0; easy && i < n; i++) {
        CURL *e = curl_easy_init();
        easy[i] = e;
        curl_easy_setopt(e, CURLOPT_URL, argv[1]);
        curl_easy_setopt(e, CURLOPT_CAINFO, argv[2]);
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L); /* wait for h2 rather than a new connection */
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, len);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(e, CURLOPT_TIMEOUT, 120L);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_multi_add_handle(multi, e);
    }
    long answered = 0, done = 0;
    int running = 1;
    while (easy && running) {
        curl_multi_perform(multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left))) {
            if (m->msg != CURLMSG_DONE) {
                continue;
            }
            long code = 0;
            curl_off_t retry_after = -1;
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            curl_easy_getinfo(m->easy_handle, CURLINFO_RETRY_AFTER, &retry_after);
            if (m->data.result != CURLE_OK) {
                fprintf(stderr, "flood: %s\n", curl_easy_strerror(m->data.result));
                code = 0;
            }
            fprintf(out, "%ld %ld\n", code, (long)retry_after);
            fflush(out);
            answered += code != 0;
            done++;
        }
        if (running) {
            curl_multi_poll(multi, NULL, 0, 1000, NULL);
        }
    }
    for (long i = 0; easy && i < n; i++) {
        curl_multi_remove_handle(multi, easy[i]);
        curl_easy_cleanup(easy[i]);
    }
    free(easy);
    curl_multi_cleanup(multi);
    curl_slist_free_all(headers);
    curl_global_cleanup();
    fclose(out);
    free(body);
    return rc == 0 && answered == n && done == n ? 0 : 1;
}
