/* flows_store_test: the collector's flow-summary storage without the daemon
 * (so it also runs under ASan+UBSan on its own): state_db's flow_summaries
 * (put, replace on the same interval, keep the newest NP_STATE_DB_FLOW_KEEP,
 * JSON newest first) and rrd_store's flow+SOURCE.rrd (bits/s per class read
 * back with np_rrd_store_fetch). Real SQLite and librrd in a temp folder. */
#include "rrd_store.h"
#include "state_db.h"

#include "netpulse/wire.h"

#include "check.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A batch of school-1 with one summary of source over (end_s - 60, end_s]:
 * web = web_bytes, dns 1000 bytes, an unknown class name 500 (counts as
 * other), in 3000, out 4000. *out freed with np_wire_builder_free. */
static const Netpulse__Batch *make_batch(struct np_wire_builder **b, const char *source,
                                         int64_t end_s, uint64_t web_bytes)
{
    struct np_err err = {0};
    Netpulse__NamedCount web = NETPULSE__NAMED_COUNT__INIT, dns = NETPULSE__NAMED_COUNT__INIT,
                         odd = NETPULSE__NAMED_COUNT__INIT, tcp = NETPULSE__NAMED_COUNT__INIT;
    Netpulse__NamedCount *apps[] = {&web, &dns, &odd}, *protos[] = {&tcp};
    Netpulse__Talker tk = NETPULSE__TALKER__INIT;
    Netpulse__Talker *talkers[] = {&tk};
    Netpulse__Flow fl = NETPULSE__FLOW__INIT;
    Netpulse__Flow *flows[] = {&fl};
    Netpulse__FlowSummary f = NETPULSE__FLOW_SUMMARY__INIT;
    web.name = (char *)"web";
    web.bytes = web_bytes;
    web.packets = 10;
    dns.name = (char *)"dns";
    dns.bytes = 1000;
    dns.packets = 5;
    odd.name = (char *)"holo";
    odd.bytes = 500;
    odd.packets = 1;
    tcp.name = (char *)"tcp";
    tcp.bytes = web_bytes;
    tcp.packets = 10;
    tk.address = (char *)"10.1.2.0/24";
    tk.bytes_in = 3000;
    tk.bytes_out = 4000;
    tk.packets = 16;
    fl.proto = 6;
    fl.src_addr = (char *)"10.1.2.0/24";
    fl.src_port = 50000;
    fl.dst_addr = (char *)"198.51.100.7";
    fl.dst_port = 443;
    fl.bytes = web_bytes;
    fl.packets = 10;
    f.source = (char *)source;
    f.start_ms = (end_s - 60) * 1000;
    f.end_ms = end_s * 1000;
    f.packets = 16;
    f.bytes = web_bytes + 1500;
    f.bytes_in = 3000;
    f.bytes_out = 4000;
    f.n_by_app = 3;
    f.by_app = apps;
    f.n_by_protocol = 1;
    f.by_protocol = protos;
    f.n_top_talkers = 1;
    f.top_talkers = talkers;
    f.n_top_flows = 1;
    f.top_flows = flows;
    if (!*b && np_wire_builder_new("school-1", "test", (end_s - 7200) * 1000, NULL, b, &err) != 0) {
        return NULL;
    }
    np_wire_builder_reset(*b);
    if (np_wire_builder_add_flow_summary(*b, &f, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    return np_wire_builder_batch(*b);
}

int main(void)
{
    char dir[] = "/tmp/np-flows-store.XXXXXX", path[256], cmd[300];
    struct np_state_db *db = NULL;
    struct np_rrd_store *rrd = NULL;
    struct np_wire_builder *b = NULL;
    struct np_err err = {0};
    char token[NP_STATE_DB_TOKEN_BUFSZ];
    json_t *doc = NULL;
    const Netpulse__Batch *batch;
    int64_t t0 = ((int64_t)time(NULL) - 86400) / 60 * 60;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/state.db", dir);
    CHECK_INT(np_state_db_open(path, &db, &err), 0);
    CHECK_INT(np_state_db_agent_enrol(db, "school-1", token, sizeof token, &err), 0);
    struct np_rrd_store_options ro = {.data_dir = dir, .rrdcached = NULL};
    CHECK_INT(np_rrd_store_new(&ro, &rrd, &err), 0);

    /* 65 intervals of wan: 60 stay, newest first; lan2 once. */
    for (int i = 0; i < 65; i++) {
        batch = make_batch(&b, "wan", t0 + 60 * i, 6000 + (uint64_t)i);
        CHECK(batch != NULL);
        CHECK_INT(np_state_db_flows_put(db, batch, NP_STATE_DB_FLOW_KEEP, &err), 0);
        struct np_rrd_write_stats st = {0};
        CHECK_INT(np_rrd_store_write_flows(rrd, batch, &st, &err), 0);
        CHECK_U64(st.written, 1);
    }
    batch = make_batch(&b, "lan2", t0, 100);
    CHECK_INT(np_state_db_flows_put(db, batch, NP_STATE_DB_FLOW_KEEP, &err), 0);
    /* The same interval again replaces the row (a replay, or a re-send). */
    batch = make_batch(&b, "wan", t0 + 60 * 64, 99999);
    CHECK_INT(np_state_db_flows_put(db, batch, NP_STATE_DB_FLOW_KEEP, &err), 0);
    CHECK_INT(np_state_db_flows_put(db, batch, NP_STATE_DB_FLOW_KEEP, &err), 0);

    CHECK_INT(np_state_db_flows_json(db, "school-1", 100, &doc, &err), 0);
    json_t *sources = json_object_get(doc, "sources");
    CHECK_INT((int)json_array_size(sources), 2);
    json_t *lan2 = json_array_get(sources, 0), *wan = json_array_get(sources, 1);
    CHECK_STR(json_string_value(json_object_get(lan2, "source")), "lan2");
    CHECK_STR(json_string_value(json_object_get(wan, "source")), "wan");
    json_t *iv = json_object_get(wan, "intervals");
    CHECK_INT((int)json_array_size(iv), NP_STATE_DB_FLOW_KEEP);
    json_t *newest = json_array_get(iv, 0), *oldest = json_array_get(iv, 59);
    CHECK_U64((uint64_t)json_integer_value(json_object_get(newest, "end_ms")),
              (uint64_t)(t0 + 60 * 64) * 1000);
    CHECK_U64((uint64_t)json_integer_value(json_object_get(newest, "bytes")), 99999 + 1500);
    CHECK_U64((uint64_t)json_integer_value(json_object_get(oldest, "end_ms")),
              (uint64_t)(t0 + 60 * 5) * 1000);
    json_t *talker = json_array_get(json_object_get(newest, "top_talkers"), 0);
    CHECK_STR(json_string_value(json_object_get(talker, "address")), "10.1.2.0/24");
    CHECK_U64((uint64_t)json_integer_value(json_object_get(talker, "bytes")), 7000);
    json_t *flow = json_array_get(json_object_get(newest, "top_flows"), 0);
    CHECK_U64((uint64_t)json_integer_value(json_object_get(flow, "dport")), 443);
    CHECK_STR(json_string_value(json_object_get(
                  json_array_get(json_object_get(newest, "by_protocol"), 0), "name")),
              "tcp");
    json_decref(doc);
    doc = NULL;
    CHECK_INT(np_state_db_flows_json(db, "school-1", 1, &doc, &err), 0);
    CHECK_INT((int)json_array_size(
                  json_object_get(json_array_get(json_object_get(doc, "sources"), 1), "intervals")),
              1);
    json_decref(doc);
    doc = NULL;
    CHECK_INT(np_state_db_flows_json(db, "nosuch", 1, &doc, &err), -ENOENT);

    /* RRD: interval 10 (web 6010 bytes): bits/s = bytes * 8 / 60. */
    int64_t at = t0 + 600;
    CHECK_INT(np_rrd_store_fetch(rrd, NP_RRD_FLOW, "school-1", "wan", NULL, "AVERAGE", at - 120,
                                 at + 60, 60, &doc, NULL, &err),
              0);
    json_t *row = NULL, *it;
    size_t k;
    json_array_foreach(doc, k, it)
    {
        if (json_integer_value(json_object_get(it, "time")) == at) {
            row = it;
        }
    }
    CHECK(row != NULL);
    if (row) {
        CHECK(fabs(json_real_value(json_object_get(row, "web")) - 6010 * 8 / 60.0) < 1e-6);
        CHECK(fabs(json_real_value(json_object_get(row, "dns")) - 1000 * 8 / 60.0) < 1e-6);
        CHECK(fabs(json_real_value(json_object_get(row, "other")) - 500 * 8 / 60.0) < 1e-6);
        CHECK(fabs(json_real_value(json_object_get(row, "quic"))) < 1e-9);
        CHECK(fabs(json_real_value(json_object_get(row, "in")) - 400.0) < 1e-6);
        CHECK(fabs(json_real_value(json_object_get(row, "out")) - 4000 * 8 / 60.0) < 1e-6);
    }
    json_decref(doc);

    np_wire_builder_free(b);
    np_rrd_store_free(rrd);
    np_state_db_close(db);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
    return check_done("flows_store_test");
}
