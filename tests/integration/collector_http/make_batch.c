/* make_batch: helper of the collector HTTP tests.
 *
 *   make_batch batch OUT AGENT SEQ TIME_S [IFACES [IN_BPS [OUT_BPS]]]
 *       writes one encoded wire batch to OUT: IFACES interfaces (default 1)
 *       "eth0".."ethN-1" of device "edge", one 60 s sample each at TIME_S,
 *       in/out rates IN_BPS/OUT_BPS (defaults 1000000 and 2000000) plus the
 *       interface number (eth3 gets IN_BPS + 3), built with common's wire
 *       builder so it is exactly what an agent sends.
 *   make_batch enrol DB AGENT    prints a new token for AGENT (state_db)
 *   make_batch revoke DB AGENT   revokes AGENT's token
 *   make_batch applied DB AGENT  prints the agent's applied batch seq */
#include "state_db.h"

#include "netpulse/wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int num(const char *s, long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end) {
        fprintf(stderr, "make_batch: not a number: %s\n", s);
        return -1;
    }
    *out = v;
    return 0;
}

static int cmd_batch(int argc, char **argv)
{
    long long seq, time_s, ifaces = 1, in_bps = 1000000, out_bps = 2000000;
    if (argc < 6 || num(argv[4], &seq) || num(argv[5], &time_s) ||
        (argc > 6 && num(argv[6], &ifaces)) || (argc > 7 && num(argv[7], &in_bps)) ||
        (argc > 8 && num(argv[8], &out_bps))) {
        fprintf(stderr, "usage: make_batch batch OUT AGENT SEQ TIME_S [IFACES [IN [OUT]]]\n");
        return 2;
    }
    struct np_err err = {0};
    struct np_wire_builder *b = NULL;
    int64_t t_ms = (int64_t)time_s * 1000;
    if (np_wire_builder_new(argv[3], "0.1.0-test", t_ms - 3600000, NULL, &b, &err) != 0) {
        fprintf(stderr, "make_batch: %s\n", err.msg);
        return 1;
    }
    for (long long i = 0; i < ifaces; i++) {
        char name[32];
        snprintf(name, sizeof name, "eth%lld", i);
        Netpulse__InterfaceSample s = NETPULSE__INTERFACE_SAMPLE__INIT;
        s.device = (char *)"edge";
        s.if_index = (uint32_t)(i + 1);
        s.if_name = name;
        s.time_ms = t_ms;
        s.interval_ms = 60000;
        s.in_octets = (uint64_t)time_s * 1000;
        s.out_octets = (uint64_t)time_s * 2000;
        s.rate_valid = 1;
        s.in_bps = (double)(in_bps + i);
        s.out_bps = (double)(out_bps + i);
        s.rate_status = NETPULSE__RATE_STATUS__RATE_OK;
        s.oper_status = NETPULSE__IF_STATUS__IF_STATUS_UP;
        s.admin_status = NETPULSE__IF_STATUS__IF_STATUS_UP;
        s.counter_bits = 64;
        s.speed_bps = 1000000000;
        if (np_wire_builder_add_sample(b, &s, &err) != 0) {
            fprintf(stderr, "make_batch: sample %lld: %s\n", i, err.msg);
            np_wire_builder_free(b);
            return 1;
        }
    }
    Netpulse__Heartbeat hb = NETPULSE__HEARTBEAT__INIT;
    hb.uplink = NETPULSE__UPLINK_STATE__UPLINK_UP;
    np_wire_builder_set_heartbeat(b, &hb);
    uint8_t *out = NULL;
    size_t len = 0;
    int rc = np_wire_builder_finish(b, (uint64_t)seq, t_ms + 500, &out, &len, &err);
    np_wire_builder_free(b);
    if (rc != 0) {
        fprintf(stderr, "make_batch: %s\n", err.msg);
        return 1;
    }
    FILE *f = fopen(argv[2], "wb");
    if (!f || fwrite(out, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "make_batch: cannot write %s\n", argv[2]);
        free(out);
        return 1;
    }
    free(out);
    return 0;
}

static int cmd_db(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: make_batch enrol|revoke|applied DB AGENT\n");
        return 2;
    }
    struct np_err err = {0};
    struct np_state_db *db = NULL;
    int rc = np_state_db_open(argv[2], &db, &err);
    if (rc == 0) {
        if (strcmp(argv[1], "enrol") == 0) {
            char token[NP_STATE_DB_TOKEN_BUFSZ];
            rc = np_state_db_agent_enrol(db, argv[3], token, sizeof token, &err);
            if (rc == 0) {
                printf("%s\n", token);
            }
        } else if (strcmp(argv[1], "revoke") == 0) {
            rc = np_state_db_agent_revoke(db, argv[3], &err);
        } else {
            uint64_t seq = 0;
            rc = np_state_db_applied_seq(db, argv[3], &seq, &err);
            if (rc == 0) {
                printf("%" PRIu64 "\n", seq);
            }
        }
    }
    np_state_db_close(db);
    if (rc != 0) {
        fprintf(stderr, "make_batch: %s\n", err.msg[0] ? err.msg : np_strerror(rc));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "batch") == 0) {
        return cmd_batch(argc, argv);
    }
    if (argc >= 2 && (strcmp(argv[1], "enrol") == 0 || strcmp(argv[1], "revoke") == 0 ||
                      strcmp(argv[1], "applied") == 0)) {
        return cmd_db(argc, argv);
    }
    fprintf(stderr, "usage: make_batch batch|enrol|revoke|applied ...\n");
    return 2;
}
