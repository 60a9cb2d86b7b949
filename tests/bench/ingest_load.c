/* ingest_load: load generator of tests/bench/bench_ingest.sh.
 *
 * Simulated agents, each enrolled with its own token, post wire batches to
 * the collector with libcurl's multi interface, HTTP/2 over TLS, one
 * connection per agent and one batch in flight per agent (like the agent's
 * uplink): the next batch goes when the previous one is acknowledged; a 503
 * (backlog full) is retried by that agent after 20 ms, as an agent would
 * later, while the other agents go on.
 *
 * Each agent has IFACES interfaces of device "edge"; a batch holds PER_BATCH
 * samples = IFACES interfaces x (PER_BATCH / IFACES) consecutive 60 s polls
 * with valid rates. Batch seq s covers polls (s-1)*k .. s*k-1 from T0, so a
 * run started at --first-seq continues where the previous one stopped (the
 * warm-up run creates the files with seq 1). Batches are encoded before the
 * clock starts.
 *
 *   ingest_load post URL CACERT TOKENS IFACES PER_BATCH FIRST_SEQ BATCHES T0 [REPLIES]
 *       TOKENS: lines "AGENT TOKEN". Prints one JSON line: requests,
 *       samples, seconds (first request to last acknowledgement), samples_per_s,
 *       latency percentiles (ms per batch, first attempt to acknowledgement,
 *       503 retries included), retries_503, errors. REPLIES (used by
 *       tests/integration/ingest_overload): a file that gets one line per
 *       answer as it comes, "AGENT SEQ HTTP_STATUS FIRST_LINE_OF_BODY"
 *       (status 0: no answer, curl failed).
 *   ingest_load collectd HOST PORT AGENTS IFACES PER_BATCH FIRST_SEQ BATCHES T0 RATE
 *       the same samples (same agents, interfaces, times and values) as
 *       collectd network-protocol packets over UDP (the "equal sender" to
 *       collectd-tg, which cannot send given timestamps): host = agent,
 *       plugin "netpulse", plugin instance "edge", type "netpulse_if"
 *       (in_bps, out_bps, oper: GAUGE), type instance the interface. RATE
 *       value lists per second at most (0: unpaced). Prints one JSON line. */
#include "netpulse/wire.h"

#include <curl/curl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define POLL_S 60
#define MAX_AGENTS 4096

struct agent {
    char id[NP_WIRE_MAX_AGENT_ID + 1];
    char auth[300];
    struct curl_slist *headers;
    CURL *easy;
    uint8_t **batches; /* encoded */
    size_t *lens;
    size_t next; /* index of the batch in flight or next */
    uint64_t started_ns; /* first attempt of batch next: latency includes 503 retries */
    uint64_t retry_ns;   /* 0, or when to try batch next again after a 503 */
    char resp[256];
    size_t resp_len;
};

#define RETRY_NS 20000000u /* after a 503 */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int num(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno) {
        fprintf(stderr, "ingest_load: not a number: %s\n", s);
        return -1;
    }
    *out = v;
    return 0;
}

/* The values of sample (iface i, poll p): deterministic, valid, distinct. */
static double in_rate(long long i, long long p)
{
    return 1e6 + (double)i * 1000 + (double)(p % 1000);
}

static double out_rate(long long i, long long p)
{
    return 2e6 + (double)i * 1000 + (double)(p % 1000);
}

static int encode_batch(const char *agent, long long ifaces, long long per_batch, long long seq,
                        long long t0, uint8_t **out, size_t *len)
{
    struct np_err err = {0};
    struct np_wire_builder *b = NULL;
    long long k = per_batch / ifaces;
    long long p0 = (seq - 1) * k;
    int64_t last_ms = (int64_t)(t0 + (p0 + k - 1) * POLL_S) * 1000;
    if (np_wire_builder_new(agent, "0.1.0-bench", (int64_t)t0 * 1000 - 3600000, NULL, &b, &err)) {
        fprintf(stderr, "ingest_load: %s\n", err.msg);
        return -1;
    }
    for (long long p = p0; p < p0 + k; p++) {
        for (long long i = 0; i < ifaces; i++) {
            char name[32];
            snprintf(name, sizeof name, "eth%lld", i);
            Netpulse__InterfaceSample s = NETPULSE__INTERFACE_SAMPLE__INIT;
            s.device = (char *)"edge";
            s.if_index = (uint32_t)(i + 1);
            s.if_name = name;
            s.time_ms = (int64_t)(t0 + p * POLL_S) * 1000;
            s.interval_ms = POLL_S * 1000;
            s.in_octets = (uint64_t)p * 1000;
            s.out_octets = (uint64_t)p * 2000;
            s.rate_valid = 1;
            s.in_bps = in_rate(i, p);
            s.out_bps = out_rate(i, p);
            s.rate_status = NETPULSE__RATE_STATUS__RATE_OK;
            s.oper_status = NETPULSE__IF_STATUS__IF_STATUS_UP;
            s.admin_status = NETPULSE__IF_STATUS__IF_STATUS_UP;
            s.counter_bits = 64;
            s.speed_bps = 1000000000;
            if (np_wire_builder_add_sample(b, &s, &err) != 0) {
                fprintf(stderr, "ingest_load: %s\n", err.msg);
                np_wire_builder_free(b);
                return -1;
            }
        }
    }
    Netpulse__Heartbeat hb = NETPULSE__HEARTBEAT__INIT;
    hb.uplink = NETPULSE__UPLINK_STATE__UPLINK_UP;
    np_wire_builder_set_heartbeat(b, &hb);
    int rc = np_wire_builder_finish(b, (uint64_t)seq, last_ms + 500, out, len, &err);
    np_wire_builder_free(b);
    if (rc != 0) {
        fprintf(stderr, "ingest_load: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct agent *a = userdata;
    size_t n = size * nmemb, room = sizeof a->resp - 1 - a->resp_len;
    memcpy(a->resp + a->resp_len, ptr, n < room ? n : room);
    a->resp_len += n < room ? n : room;
    a->resp[a->resp_len] = '\0';
    return n;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

static double pct(const uint64_t *v, size_t n, double p)
{
    if (n == 0) {
        return 0;
    }
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)v[i] / 1e6;
}

static void start_request(CURLM *multi, struct agent *a)
{
    a->resp_len = 0;
    a->resp[0] = '\0';
    curl_easy_setopt(a->easy, CURLOPT_POSTFIELDS, (const char *)a->batches[a->next]);
    curl_easy_setopt(a->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)a->lens[a->next]);
    if (!a->retry_ns) {
        a->started_ns = now_ns();
    }
    a->retry_ns = 0;
    curl_multi_add_handle(multi, a->easy);
}

static int cmd_post(int argc, char **argv)
{
    long long ifaces, per_batch, first_seq, n_batches, t0;
    if ((argc != 10 && argc != 11) || num(argv[5], &ifaces) || num(argv[6], &per_batch) ||
        num(argv[7], &first_seq) || num(argv[8], &n_batches) || num(argv[9], &t0) || ifaces <= 0 ||
        per_batch % ifaces != 0 || first_seq < 1 || n_batches < 1) {
        fprintf(stderr, "usage: ingest_load post URL CACERT TOKENS IFACES PER_BATCH FIRST_SEQ "
                        "BATCHES T0 [REPLIES] (PER_BATCH a multiple of IFACES)\n");
        return 2;
    }
    FILE *replies = NULL;
    if (argc == 11 && !(replies = fopen(argv[10], "w"))) {
        perror(argv[10]);
        return 1;
    }
    const char *url = argv[2], *cacert = argv[3];
    FILE *f = fopen(argv[4], "r");
    if (!f) {
        perror(argv[4]);
        return 1;
    }
    struct agent *agents = calloc(MAX_AGENTS, sizeof *agents);
    size_t n_agents = 0;
    char line[512];
    while (agents && n_agents < MAX_AGENTS && fgets(line, sizeof line, f)) {
        char *sp = strchr(line, ' ');
        char *nl = strchr(line, '\n');
        if (nl) {
            *nl = '\0';
        }
        if (!sp || (size_t)(sp - line) > NP_WIRE_MAX_AGENT_ID) {
            continue;
        }
        struct agent *a = &agents[n_agents++];
        memcpy(a->id, line, (size_t)(sp - line));
        snprintf(a->auth, sizeof a->auth, "Authorization: Bearer %s", sp + 1);
    }
    fclose(f);
    if (!agents || n_agents == 0) {
        fprintf(stderr, "ingest_load: no agents in %s\n", argv[4]);
        return 1;
    }

    /* Encode everything first: the clock measures the collector, not us. */
    for (size_t i = 0; i < n_agents; i++) {
        struct agent *a = &agents[i];
        a->batches = calloc((size_t)n_batches, sizeof *a->batches);
        a->lens = calloc((size_t)n_batches, sizeof *a->lens);
        if (!a->batches || !a->lens) {
            return 1;
        }
        for (long long k = 0; k < n_batches; k++) {
            if (encode_batch(a->id, ifaces, per_batch, first_seq + k, t0, &a->batches[k],
                             &a->lens[k]) != 0) {
                return 1;
            }
        }
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    /* One connection per agent, as in the field: no multiplexing of several
     * agents' streams over one connection. */
    curl_multi_setopt(multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)n_agents + 16);
    for (size_t i = 0; i < n_agents; i++) {
        struct agent *a = &agents[i];
        a->easy = curl_easy_init();
        a->headers = curl_slist_append(NULL, a->auth);
        a->headers = curl_slist_append(a->headers, "Content-Type: application/x-protobuf");
        curl_easy_setopt(a->easy, CURLOPT_URL, url);
        curl_easy_setopt(a->easy, CURLOPT_CAINFO, cacert);
        curl_easy_setopt(a->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
        curl_easy_setopt(a->easy, CURLOPT_HTTPHEADER, a->headers);
        curl_easy_setopt(a->easy, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(a->easy, CURLOPT_WRITEDATA, a);
        curl_easy_setopt(a->easy, CURLOPT_PRIVATE, a);
        curl_easy_setopt(a->easy, CURLOPT_TIMEOUT, 120L);
        curl_easy_setopt(a->easy, CURLOPT_NOSIGNAL, 1L);
    }

    size_t cap_lat = n_agents * (size_t)n_batches;
    uint64_t *lat = malloc(cap_lat * sizeof *lat);
    size_t n_lat = 0, done_agents = 0;
    uint64_t retries = 0, errors = 0, not_h2 = 0, samples = 0;
    uint64_t t_start = now_ns(), t_end = t_start;
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    for (size_t i = 0; i < n_agents; i++) {
        start_request(multi, &agents[i]);
    }
    while (done_agents < n_agents) {
        int running = 0, left = 0;
        curl_multi_perform(multi, &running);
        CURLMsg *m;
        while ((m = curl_multi_info_read(multi, &left))) {
            if (m->msg != CURLMSG_DONE) {
                continue;
            }
            struct agent *a = NULL;
            CURL *e = m->easy_handle;
            CURLcode res = m->data.result;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&a);
            long code = 0, ver = 0;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
            curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &ver);
            curl_multi_remove_handle(multi, e);
            uint64_t t = now_ns();
            if (replies) {
                fprintf(replies, "%s %lld %ld %.*s\n", a->id, first_seq + (long long)a->next,
                        res == CURLE_OK ? code : 0L, (int)strcspn(a->resp, "\r\n"), a->resp);
                fflush(replies);
            }
            if (res == CURLE_OK && code == 200) {
                lat[n_lat++] = t - a->started_ns;
                not_h2 += ver != CURL_HTTP_VERSION_2_0;
                samples += (uint64_t)per_batch;
                a->next++;
                t_end = t;
            } else if (res == CURLE_OK && code == 503) {
                /* Backlog full: this agent tries again in 20 ms, as an agent
                 * would; the others go on. */
                retries++;
                a->retry_ns = t + RETRY_NS;
                continue;
            } else {
                errors++;
                if (errors <= 5) {
                    fprintf(stderr, "ingest_load: agent=%s seq=%lld curl=%s http=%ld body=%s\n",
                            a->id, first_seq + (long long)a->next, curl_easy_strerror(res), code,
                            a->resp);
                }
                a->next++; /* counted as lost; go on */
            }
            if (a->next < (size_t)n_batches) {
                start_request(multi, a);
            } else {
                done_agents++;
            }
        }
        uint64_t t = now_ns(), wait_ns = 100000000u;
        for (size_t i = 0; i < n_agents; i++) {
            struct agent *a = &agents[i];
            if (a->retry_ns && a->retry_ns <= t) {
                start_request(multi, a);
            } else if (a->retry_ns && a->retry_ns - t < wait_ns) {
                wait_ns = a->retry_ns - t;
            }
        }
        if (done_agents < n_agents) {
            curl_multi_poll(multi, NULL, 0, (int)(wait_ns / 1000000u) + 1, NULL);
        }
    }
    qsort(lat, n_lat, sizeof *lat, cmp_u64);
    double secs = (double)(t_end - t_start) / 1e9;
    printf("{\"agents\": %zu, \"requests\": %zu, \"samples\": %" PRIu64 ", \"seconds\": %.3f, "
           "\"samples_per_s\": %.0f, \"p50_ms\": %.2f, \"p90_ms\": %.2f, \"p99_ms\": %.2f, "
           "\"max_ms\": %.2f, \"retries_503\": %" PRIu64 ", \"errors\": %" PRIu64
           ", \"not_http2\": %" PRIu64 ", \"t_start_wall\": %.6f}\n",
           n_agents, n_lat, samples, secs, secs > 0 ? (double)samples / secs : 0,
           pct(lat, n_lat, 0.50), pct(lat, n_lat, 0.90), pct(lat, n_lat, 0.99),
           pct(lat, n_lat, 1.0), retries, errors, not_h2,
           (double)wall.tv_sec + (double)wall.tv_nsec / 1e9);
    for (size_t i = 0; i < n_agents; i++) {
        curl_easy_cleanup(agents[i].easy);
        curl_slist_free_all(agents[i].headers);
        for (long long k = 0; k < n_batches; k++) {
            free(agents[i].batches[k]);
        }
        free(agents[i].batches);
        free(agents[i].lens);
    }
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    if (replies) {
        fclose(replies);
    }
    free(lat);
    free(agents);
    return errors ? 1 : 0;
}

/* ---- collectd's binary network protocol (src/network.c) ---- */

struct pkt {
    uint8_t buf[1452]; /* collectd's default payload size */
    size_t len;
    char host[80], type_instance[32]; /* what the receiver already holds */
};

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put64be(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[7 - i] = (uint8_t)(v >> (8 * i));
    }
}

static void part_string(struct pkt *k, uint16_t type, const char *s)
{
    size_t n = strlen(s) + 1;
    put16(k->buf + k->len, type);
    put16(k->buf + k->len + 2, (uint16_t)(4 + n));
    memcpy(k->buf + k->len + 4, s, n);
    k->len += 4 + n;
}

static void part_u64(struct pkt *k, uint16_t type, uint64_t v)
{
    put16(k->buf + k->len, type);
    put16(k->buf + k->len + 2, 12);
    put64be(k->buf + k->len + 4, v);
    k->len += 12;
}

/* A new packet starts with the parts every value list shares. */
static void pkt_reset(struct pkt *k)
{
    k->len = 0;
    k->host[0] = k->type_instance[0] = '\0';
    part_string(k, 0x0002, "netpulse");          /* plugin */
    part_string(k, 0x0003, "edge");              /* plugin instance */
    part_string(k, 0x0004, "netpulse_if");       /* type */
    part_u64(k, 0x0009, (uint64_t)POLL_S << 30); /* interval (2^-30 s) */
}

static int cmd_collectd(int argc, char **argv)
{
    long long port, n_agents, ifaces, per_batch, first_seq, n_batches, t0, rate;
    if (argc != 11 || num(argv[3], &port) || num(argv[4], &n_agents) || num(argv[5], &ifaces) ||
        num(argv[6], &per_batch) || num(argv[7], &first_seq) || num(argv[8], &n_batches) ||
        num(argv[9], &t0) || num(argv[10], &rate) || ifaces <= 0 || per_batch % ifaces != 0) {
        fprintf(stderr, "usage: ingest_load collectd HOST PORT AGENTS IFACES PER_BATCH FIRST_SEQ "
                        "BATCHES T0 RATE\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (fd < 0 || inet_pton(AF_INET, argv[2], &to.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
        fprintf(stderr, "ingest_load: bad address %s\n", argv[2]);
        return 1;
    }
    int sndbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    struct pkt k;
    pkt_reset(&k);
    long long per_poll = per_batch / ifaces;
    uint64_t sent = 0, packets = 0, send_errors = 0, t_start = now_ns();
    /* Batch by batch and agent by agent, the order the collector gets them. */
    for (long long s = first_seq; s < first_seq + n_batches; s++) {
        for (long long a = 0; a < n_agents; a++) {
            char host[80];
            snprintf(host, sizeof host, "bench-%04lld", a);
            for (long long p = (s - 1) * per_poll; p < s * per_poll; p++) {
                for (long long i = 0; i < ifaces; i++) {
                    char ti[32];
                    snprintf(ti, sizeof ti, "eth%lld", i);
                    /* host + type instance + time + values, worst case */
                    if (k.len + 4 + sizeof host + 4 + sizeof ti + 12 + 6 + 3 * 9 > sizeof k.buf) {
                        send_errors += send(fd, k.buf, k.len, 0) < 0;
                        packets++;
                        pkt_reset(&k);
                    }
                    if (strcmp(k.host, host) != 0) {
                        part_string(&k, 0x0000, host);
                        snprintf(k.host, sizeof k.host, "%s", host);
                    }
                    if (strcmp(k.type_instance, ti) != 0) {
                        part_string(&k, 0x0005, ti);
                        snprintf(k.type_instance, sizeof k.type_instance, "%s", ti);
                    }
                    part_u64(&k, 0x0008, (uint64_t)(t0 + p * POLL_S) << 30); /* time (hr) */
                    /* values: count, types (1 = GAUGE), then little-endian doubles */
                    uint8_t *v = k.buf + k.len;
                    put16(v, 0x0006);
                    put16(v + 2, 6 + 3 * 9);
                    put16(v + 4, 3);
                    v[6] = v[7] = v[8] = 1;
                    double vals[3] = {in_rate(i, p), out_rate(i, p), 1.0};
                    memcpy(v + 9, vals, sizeof vals); /* x86-64: host order is little-endian */
                    k.len += 6 + 3 * 9;
                    sent++;
                    if (rate > 0 && sent % 64 == 0) {
                        uint64_t due = t_start + sent * 1000000000ull / (uint64_t)rate;
                        uint64_t t = now_ns();
                        if (due > t) {
                            usleep((useconds_t)((due - t) / 1000));
                        }
                    }
                }
            }
        }
    }
    if (k.len) {
        send_errors += send(fd, k.buf, k.len, 0) < 0;
        packets++;
    }
    double secs = (double)(now_ns() - t_start) / 1e9;
    printf("{\"value_lists\": %" PRIu64 ", \"packets\": %" PRIu64 ", \"send_errors\": %" PRIu64
           ", \"seconds\": %.3f}\n",
           sent, packets, send_errors, secs);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "post") == 0) {
        return cmd_post(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "collectd") == 0) {
        return cmd_collectd(argc, argv);
    }
    fprintf(stderr, "usage: ingest_load post|collectd ... (see the top of ingest_load.c)\n");
    return 2;
}
