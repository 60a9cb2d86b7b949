/* alert_feeder: plays the agents of many sites for the alert tests. Batches
 * are built with common's wire builder (exactly what an agent sends) and
 * POSTed to the collector's ingest over one keep-alive connection.
 *
 *   alert_feeder URL TOKENS_FILE      (TOKENS_FILE: lines "SITE TOKEN")
 * Commands on stdin, one per line; each answers "ok" or "err ..." on stdout:
 *   beat SITE...            one live batch per site: probe "upstream" ok now
 *   backlog FROM TO SITE... per site, the batch an agent spools during a cut
 *                           [FROM, TO) (ms): failed probes every second,
 *                           UPLINK_DOWN at FROM, UPLINK_UP at TO
 *   ifevent SITE down|up TIME DEVICE IFNAME_HEX ALIAS_HEX
 *                           one live batch with a sample of interface IFNAME
 *                           (ifIndex 3, ifAlias ALIAS; both hex, any bytes) of
 *                           DEVICE and its INTERFACE_DOWN/UP event at TIME (ms)
 *   util SITE IFNAME IN OUT SPEED PROV INTERVAL
 *                           one live batch with a sample of interface IFNAME
 *                           (device "edge", ifIndex 3, oper up, valid rate):
 *                           IN/OUT bits/s, ifSpeed SPEED and provisioned rate
 *                           PROV (bits/s, 0: none) over INTERVAL ms
 *   overflow SITE FROM TO   one live batch with a SPOOL_OVERFLOW event: the
 *                           batches of [FROM, TO] (ms) were dropped
 *   again SITE              POSTs the site's last batch again (same seq)
 *   hangup                  closes every connection (before the collector
 *                           stops, as an agent between batches)
 *   url URL                 POSTs to URL from now on (a restarted collector;
 *                           the sites' sequence numbers go on)
 * The batches of one command are POSTed in parallel (as agents do).
 *   quit */
#include "netpulse/clock.h"
#include "netpulse/wire.h"

#include <curl/curl.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SITES 256

struct site {
    char id[80];
    char auth[160];
    unsigned long long seq;
    /* the request being sent */
    CURL *easy;
    struct curl_slist *headers;
    uint8_t *buf;
    size_t len;
    uint8_t *last; /* the last batch POSTed, for "again" */
    size_t last_len;
};

/* What a batch carries besides the probe (ifevent, overflow). */
struct extra {
    Netpulse__EventType type;
    int64_t t, from, to;
    const char *device, *if_name, *alias;
    bool util;                    /* a sample with a rate, no event */
    double in_bps, out_bps;       /* util */
    uint64_t speed_bps, prov_bps; /* util */
    int64_t interval_ms;          /* util */
};

static struct site sites[MAX_SITES];
static size_t n_sites;
static CURLM *multi;
static const char *url;
static char url_buf[512];
static int64_t start_ms;

static struct site *find(const char *id)
{
    for (size_t i = 0; i < n_sites; i++) {
        if (strcmp(sites[i].id, id) == 0) {
            return &sites[i];
        }
    }
    return NULL;
}

/* The site named by the next word of the command line; NULL: none. */
static struct site *find_tok(char **save)
{
    char *id = strtok_r(NULL, " \r\n", save);
    return id ? find(id) : NULL;
}

static size_t sink(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

static void probe(struct np_wire_builder *b, int64_t t, bool ok)
{
    Netpulse__ProbeResult r = NETPULSE__PROBE_RESULT__INIT;
    struct np_err err = {0};
    r.name = (char *)"upstream";
    r.type = NETPULSE__PROBE_TYPE__PROBE_TCP;
    r.target = (char *)"192.0.2.53:443";
    r.time_ms = t;
    r.interval_ms = 1000;
    r.ok = ok;
    r.sent = 1;
    r.received = ok;
    np_wire_builder_add_probe(b, &r, &err);
}

static void event(struct np_wire_builder *b, Netpulse__EventType type, int64_t t)
{
    Netpulse__Event e = NETPULSE__EVENT__INIT;
    struct np_err err = {0};
    e.type = type;
    e.time_ms = t;
    np_wire_builder_add_event(b, &e, &err);
}

/* Builds one batch and adds its POST to the multi handle; from/to > 0: a
 * backlog batch of a cut. All added are sent at once by run_all() (agents
 * send in parallel; one after the other, 50 sites would take seconds). */
static void post(struct site *s, uint8_t *buf, size_t len);

static int add_batch(struct site *s, int64_t from, int64_t to, const struct extra *x)
{
    struct np_err err = {0};
    struct np_wire_builder *b = NULL;
    int64_t now = np_clock_wall_ms();
    if (np_wire_builder_new(s->id, "0.1.0-test", start_ms, NULL, &b, &err) != 0) {
        fprintf(stderr, "alert_feeder: %s\n", err.msg);
        return -1;
    }
    Netpulse__Heartbeat hb = NETPULSE__HEARTBEAT__INIT;
    hb.uplink = NETPULSE__UPLINK_STATE__UPLINK_UP;
    int64_t created = now;
    if (from > 0) {
        event(b, NETPULSE__EVENT_TYPE__EVENT_UPLINK_DOWN, from);
        for (int64_t t = from; t < to; t += 1000) {
            probe(b, t, false);
        }
        event(b, NETPULSE__EVENT_TYPE__EVENT_UPLINK_UP, to);
        probe(b, to, true);
        created = to;
        hb.uplink_since_ms = to;
    } else {
        probe(b, now, true);
    }
    if (x && (x->util || x->type == NETPULSE__EVENT_TYPE__EVENT_INTERFACE_DOWN ||
              x->type == NETPULSE__EVENT_TYPE__EVENT_INTERFACE_UP)) {
        bool up = x->util || x->type == NETPULSE__EVENT_TYPE__EVENT_INTERFACE_UP;
        Netpulse__InterfaceSample smp = NETPULSE__INTERFACE_SAMPLE__INIT;
        smp.device = (char *)x->device;
        smp.if_index = 3;
        smp.if_name = (char *)x->if_name;
        smp.if_alias = (char *)x->alias;
        smp.time_ms = now;
        smp.interval_ms = x->util ? x->interval_ms : 60000;
        smp.in_octets = (uint64_t)now;
        smp.out_octets = (uint64_t)now * 2;
        smp.rate_status = NETPULSE__RATE_STATUS__RATE_FIRST_POLL;
        smp.oper_status =
            up ? NETPULSE__IF_STATUS__IF_STATUS_UP : NETPULSE__IF_STATUS__IF_STATUS_DOWN;
        smp.admin_status = NETPULSE__IF_STATUS__IF_STATUS_UP;
        smp.counter_bits = 64;
        smp.speed_bps = x->util ? x->speed_bps : 1000000000;
        if (x->util) {
            smp.rate_status = NETPULSE__RATE_STATUS__RATE_OK;
            smp.rate_valid = true;
            smp.in_bps = x->in_bps;
            smp.out_bps = x->out_bps;
            smp.provisioned_bps = x->prov_bps;
        }
        if (np_wire_builder_add_sample(b, &smp, &err) != 0) {
            fprintf(stderr, "alert_feeder: sample: %s\n", err.msg);
        }
    }
    if (x && (x->type == NETPULSE__EVENT_TYPE__EVENT_INTERFACE_DOWN ||
              x->type == NETPULSE__EVENT_TYPE__EVENT_INTERFACE_UP)) {
        Netpulse__Event e = NETPULSE__EVENT__INIT;
        e.type = x->type;
        e.time_ms = x->t;
        e.device = (char *)x->device;
        e.subject = (char *)x->if_name;
        e.if_index = 3;
        e.detail = (char *)"oper status changed";
        if (np_wire_builder_add_event(b, &e, &err) != 0) {
            fprintf(stderr, "alert_feeder: event: %s\n", err.msg);
        }
    } else if (x && x->type == NETPULSE__EVENT_TYPE__EVENT_SPOOL_OVERFLOW) {
        Netpulse__Event e = NETPULSE__EVENT__INIT;
        e.type = x->type;
        e.time_ms = now;
        e.first_seq = 1000;
        e.last_seq = 1041;
        e.from_ms = x->from;
        e.to_ms = x->to;
        e.batches = 42;
        e.bytes = 42 * 4096;
        if (np_wire_builder_add_event(b, &e, &err) != 0) {
            fprintf(stderr, "alert_feeder: event: %s\n", err.msg);
        }
    }
    np_wire_builder_set_heartbeat(b, &hb);
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = np_wire_builder_finish(b, ++s->seq, created, &buf, &len, &err);
    np_wire_builder_free(b);
    if (rc != 0) {
        fprintf(stderr, "alert_feeder: finish: %s\n", err.msg);
        return -1;
    }
    post(s, buf, len);
    return 0;
}

/* Adds the POST of buf (taken) to the multi handle. */
static void post(struct site *s, uint8_t *buf, size_t len)
{
    if (!s->easy) {
        s->easy = curl_easy_init();
        curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(s->easy, CURLOPT_TIMEOUT, 10L);
        curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
    }
    s->headers = curl_slist_append(NULL, s->auth);
    s->headers = curl_slist_append(s->headers, "Content-Type: application/x-protobuf");
    s->buf = buf;
    s->len = len;
    curl_easy_setopt(s->easy, CURLOPT_URL, url);
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, (const char *)buf);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_multi_add_handle(multi, s->easy);
}

/* Decodes hex into a new string; NULL when malformed. */
static char *unhex(const char *h)
{
    size_t n = h ? strlen(h) : 1;
    char *out = n % 2 == 0 ? malloc(n / 2 + 1) : NULL;
    if (!out) {
        return NULL;
    }
    for (size_t i = 0; i < n / 2; i++) {
        char pair[3] = {h[2 * i], h[2 * i + 1], '\0'};
        char *end = NULL;
        out[i] = (char)strtoul(pair, &end, 16);
        if (*end) {
            free(out);
            return NULL;
        }
    }
    out[n / 2] = '\0';
    return out;
}

/* Runs every added POST to its end; returns how many failed. */
static int run_all(void)
{
    int running = 1, bad = 0, left;
    while (running) {
        curl_multi_perform(multi, &running);
        if (running) {
            curl_multi_poll(multi, NULL, 0, 1000, NULL);
        }
    }
    CURLMsg *m;
    while ((m = curl_multi_info_read(multi, &left)) != NULL) {
        struct site *s = NULL;
        long code = 0;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
        if (m->data.result != CURLE_OK || code != 200) {
            fprintf(stderr, "alert_feeder: post site=%s seq=%llu curl=%s code=%ld\n", s->id, s->seq,
                    curl_easy_strerror(m->data.result), code);
            bad++;
        }
        curl_multi_remove_handle(multi, m->easy_handle);
        curl_slist_free_all(s->headers);
        s->headers = NULL;
        free(s->last);
        s->last = s->buf;
        s->last_len = s->len;
        s->buf = NULL;
    }
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: alert_feeder URL TOKENS_FILE\n");
        return 2;
    }
    url = argv[1];
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        perror("alert_feeder: tokens");
        return 1;
    }
    char line[65536];
    while (n_sites < MAX_SITES && fgets(line, sizeof line, f)) {
        char *sp = strchr(line, ' ');
        if (!sp) {
            continue;
        }
        *sp = '\0';
        sp[strcspn(sp + 1, "\r\n") + 1] = '\0';
        snprintf(sites[n_sites].id, sizeof sites[n_sites].id, "%.79s", line);
        snprintf(sites[n_sites].auth, sizeof sites[n_sites].auth, "Authorization: Bearer %.130s",
                 sp + 1);
        n_sites++;
    }
    fclose(f);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    multi = curl_multi_init();
    start_ms = np_clock_wall_ms();
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof line, stdin)) {
        char *save = NULL;
        char *cmd = strtok_r(line, " \r\n", &save);
        int bad = 0;
        if (!cmd) {
            continue;
        }
        if (strcmp(cmd, "quit") == 0) {
            break;
        }
        if (strcmp(cmd, "beat") == 0) {
            char *id;
            while ((id = strtok_r(NULL, " \r\n", &save)) != NULL) {
                struct site *s = find(id);
                bad += !s || add_batch(s, 0, 0, NULL) != 0;
            }
            bad += run_all();
        } else if (strcmp(cmd, "backlog") == 0) {
            char *a = strtok_r(NULL, " \r\n", &save);
            char *b = strtok_r(NULL, " \r\n", &save);
            char *id;
            bad = !a || !b;
            while (!bad && (id = strtok_r(NULL, " \r\n", &save)) != NULL) {
                struct site *s = find(id);
                bad += !s || add_batch(s, strtoll(a, NULL, 10), strtoll(b, NULL, 10), NULL);
            }
            bad += run_all();
        } else if (strcmp(cmd, "ifevent") == 0) {
            struct site *s = find_tok(&save);
            char *dir = strtok_r(NULL, " \r\n", &save);
            char *t = strtok_r(NULL, " \r\n", &save);
            char *dev = strtok_r(NULL, " \r\n", &save);
            char *name = unhex(strtok_r(NULL, " \r\n", &save));
            char *alias = unhex(strtok_r(NULL, " \r\n", &save));
            bad = !s || !dir || !t || !dev || !name || !alias;
            if (!bad) {
                struct extra x = {.type = strcmp(dir, "up") == 0
                                              ? NETPULSE__EVENT_TYPE__EVENT_INTERFACE_UP
                                              : NETPULSE__EVENT_TYPE__EVENT_INTERFACE_DOWN,
                                  .t = strtoll(t, NULL, 10),
                                  .device = dev,
                                  .if_name = name,
                                  .alias = alias};
                bad = add_batch(s, 0, 0, &x) != 0;
                bad += run_all();
            }
            free(name);
            free(alias);
        } else if (strcmp(cmd, "util") == 0) {
            struct site *s = find_tok(&save);
            char *v[6];
            bad = !s;
            for (int i = 0; i < 6; i++) {
                v[i] = strtok_r(NULL, " \r\n", &save);
                bad += !v[i];
            }
            if (!bad) {
                struct extra x = {.util = true,
                                  .device = "edge",
                                  .if_name = v[0],
                                  .alias = v[0],
                                  .in_bps = strtod(v[1], NULL),
                                  .out_bps = strtod(v[2], NULL),
                                  .speed_bps = strtoull(v[3], NULL, 10),
                                  .prov_bps = strtoull(v[4], NULL, 10),
                                  .interval_ms = strtoll(v[5], NULL, 10)};
                bad = add_batch(s, 0, 0, &x) != 0;
                bad += run_all();
            }
        } else if (strcmp(cmd, "overflow") == 0) {
            struct site *s = find_tok(&save);
            char *a = strtok_r(NULL, " \r\n", &save);
            char *b = strtok_r(NULL, " \r\n", &save);
            bad = !s || !a || !b;
            if (!bad) {
                struct extra x = {.type = NETPULSE__EVENT_TYPE__EVENT_SPOOL_OVERFLOW,
                                  .from = strtoll(a, NULL, 10),
                                  .to = strtoll(b, NULL, 10)};
                bad = add_batch(s, 0, 0, &x) != 0;
                bad += run_all();
            }
        } else if (strcmp(cmd, "hangup") == 0) {
            for (size_t i = 0; i < n_sites; i++) {
                if (sites[i].easy) {
                    curl_easy_cleanup(sites[i].easy);
                    sites[i].easy = NULL;
                }
            }
            curl_multi_cleanup(multi); /* and its connection cache */
            multi = curl_multi_init();
            bad = !multi;
        } else if (strcmp(cmd, "url") == 0) {
            char *u = strtok_r(NULL, " \r\n", &save);
            bad = !u || strlen(u) >= sizeof url_buf;
            if (!bad) {
                snprintf(url_buf, sizeof url_buf, "%s", u);
                url = url_buf;
            }
        } else if (strcmp(cmd, "again") == 0) {
            struct site *s = find_tok(&save);
            uint8_t *copy = s && s->last ? malloc(s->last_len) : NULL;
            bad = !copy;
            if (!bad) {
                memcpy(copy, s->last, s->last_len);
                post(s, copy, s->last_len);
                bad = run_all();
            }
        } else {
            bad = 1;
        }
        printf(bad ? "err %d\n" : "ok\n", bad);
    }
    for (size_t i = 0; i < n_sites; i++) {
        if (sites[i].easy) {
            curl_easy_cleanup(sites[i].easy);
        }
        free(sites[i].last);
    }
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return 0;
}
