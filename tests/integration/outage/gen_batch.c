/* gen_batch: builds one wire batch with probe results, events and heartbeat
 * spool figures for the outage integration test, with common's wire builder
 * (exactly what an agent sends).
 *
 *   gen_batch OUT AGENT SEQ CREATED_MS AGENT_START_MS [ITEM...]
 *     probe=TIME_MS:INTERVAL_MS:ok|fail   one result of probe "upstream"
 *     uplink=up|down                      heartbeat uplink state
 *     spool=BATCHES:OLDEST_MS             heartbeat spool figures
 *     event=agent_start|uplink_up|uplink_down:TIME_MS */
#include "netpulse/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int num(const char *s, long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || (*end && *end != ':')) {
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    long long seq, created, start;
    if (argc < 6 || num(argv[3], &seq) || num(argv[4], &created) || num(argv[5], &start)) {
        fprintf(stderr, "usage: gen_batch OUT AGENT SEQ CREATED_MS AGENT_START_MS [ITEM...]\n");
        return 2;
    }
    struct np_err err = {0};
    struct np_wire_builder *b = NULL;
    if (np_wire_builder_new(argv[2], "0.1.0-test", start, NULL, &b, &err) != 0) {
        fprintf(stderr, "gen_batch: %s\n", err.msg);
        return 1;
    }
    Netpulse__Heartbeat hb = NETPULSE__HEARTBEAT__INIT;
    int rc = 0;
    for (int i = 6; i < argc && rc == 0; i++) {
        const char *a = argv[i];
        long long t = 0, iv = 0, n = 0;
        if (strncmp(a, "probe=", 6) == 0) {
            const char *p = a + 6, *c1 = strchr(p, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
            if (!c2 || num(p, &t) || num(c1 + 1, &iv)) {
                rc = -1;
                break;
            }
            Netpulse__ProbeResult r = NETPULSE__PROBE_RESULT__INIT;
            r.name = (char *)"upstream";
            r.type = NETPULSE__PROBE_TYPE__PROBE_TCP;
            r.target = (char *)"192.0.2.53:443";
            r.time_ms = t;
            r.interval_ms = iv;
            r.ok = strcmp(c2 + 1, "ok") == 0;
            r.sent = 1;
            r.received = r.ok;
            r.rtt_us = r.ok ? 12000 : 0;
            r.error = r.ok ? (char *)"" : (char *)"timeout";
            rc = np_wire_builder_add_probe(b, &r, &err);
        } else if (strcmp(a, "uplink=up") == 0 || strcmp(a, "uplink=down") == 0) {
            hb.uplink = a[7] == 'u' ? NETPULSE__UPLINK_STATE__UPLINK_UP
                                    : NETPULSE__UPLINK_STATE__UPLINK_DOWN;
        } else if (strncmp(a, "spool=", 6) == 0) {
            const char *c1 = strchr(a + 6, ':');
            if (!c1 || num(a + 6, &n) || num(c1 + 1, &t)) {
                rc = -1;
                break;
            }
            hb.spool_batches = (uint64_t)n;
            hb.spool_oldest_ms = t;
        } else if (strncmp(a, "event=", 6) == 0) {
            const char *c1 = strchr(a + 6, ':');
            Netpulse__Event e = NETPULSE__EVENT__INIT;
            if (!c1 || num(c1 + 1, &t)) {
                rc = -1;
                break;
            }
            size_t k = (size_t)(c1 - (a + 6));
            e.type = strncmp(a + 6, "agent_start", k) == 0 ? NETPULSE__EVENT_TYPE__EVENT_AGENT_START
                     : strncmp(a + 6, "uplink_up", k) == 0 ? NETPULSE__EVENT_TYPE__EVENT_UPLINK_UP
                     : strncmp(a + 6, "uplink_down", k) == 0
                         ? NETPULSE__EVENT_TYPE__EVENT_UPLINK_DOWN
                         : NETPULSE__EVENT_TYPE__EVENT_UNKNOWN;
            e.time_ms = t;
            rc = np_wire_builder_add_event(b, &e, &err);
        } else {
            rc = -1;
        }
    }
    if (rc != 0) {
        fprintf(stderr, "gen_batch: bad item or %s\n", err.msg);
        np_wire_builder_free(b);
        return 2;
    }
    np_wire_builder_set_heartbeat(b, &hb);
    uint8_t *out = NULL;
    size_t len = 0;
    rc = np_wire_builder_finish(b, (uint64_t)seq, created, &out, &len, &err);
    np_wire_builder_free(b);
    if (rc != 0) {
        fprintf(stderr, "gen_batch: %s\n", err.msg);
        return 1;
    }
    FILE *f = fopen(argv[1], "wb");
    if (!f || fwrite(out, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "gen_batch: cannot write %s\n", argv[1]);
        free(out);
        return 1;
    }
    free(out);
    return 0;
}
