/* Unit tests of agent/flow/flow_report (JSON shape, privacy of local
 * addresses) and flow_config (validation with FILE:LINE). */
#include "flow/flow_config.h"
#include "flow/flow_report.h"

#include "check.h"

#include <stdlib.h>
#include <string.h>

/* Ethernet/IPv4/UDP 10.0.0.<src_last>:40000 -> <dst>:dport. */
static void frame(uint8_t *b, uint8_t src_last, const uint8_t dst[4], uint16_t dport)
{
    memset(b, 0, 64);
    b[12] = 0x08;
    b[14] = 0x45;
    b[17] = 28;
    b[23] = 17;
    b[26] = 10;
    b[29] = src_last;
    memcpy(b + 30, dst, 4);
    b[34] = 0x9c;
    b[35] = 0x40;
    b[36] = (uint8_t)(dport >> 8);
    b[37] = (uint8_t)dport;
    b[39] = 8;
}

static struct np_flow_agg *sample_agg(const struct np_prefix *local)
{
    struct np_flow_agg_config cfg = {.max_flows = 64, .sample = 1, .local = local, .n_local = 1};
    struct np_flow_agg *agg = NULL;
    if (np_flow_agg_new(&cfg, &agg) != 0) {
        return NULL;
    }
    static const uint8_t outside[4] = {192, 0, 2, 77};
    uint8_t b[64];
    for (uint8_t h = 1; h <= 5; h++) {
        frame(b, h, outside, 443);
        for (int i = 0; i < h; i++) {
            np_flow_agg_packet(agg, NP_DLT_EN10MB, 1000u * h, b, 64, 1000);
        }
    }
    frame(b, 9, outside, 53);
    np_flow_agg_packet(agg, NP_DLT_EN10MB, 9000, b, 64, 100);
    np_flow_agg_packet(agg, NP_DLT_EN10MB, 9000, b, 8, 8);
    return agg;
}

static char *render(struct np_flow_agg *agg, enum np_privacy mode, const char *secret)
{
    struct np_flow_report_opts o;
    memset(&o, 0, sizeof o);
    o.privacy = mode;
    o.prefix_v4 = 24;
    o.prefix_v6 = 64;
    o.secret = (const uint8_t *)secret;
    o.secret_len = secret ? strlen(secret) : 0;
    o.top_n = 3;
    json_t *j = np_flow_report_json(agg, &o);
    CHECK(j != NULL);
    if (!j) {
        return NULL;
    }
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return s;
}

static void test_shape_and_prefix_privacy(void)
{
    struct np_prefix local;
    CHECK_INT(np_prefix_parse("10.0.0.0/8", &local), 0);
    struct np_flow_agg *agg = sample_agg(&local);
    CHECK(agg != NULL);
    char *s = render(agg, NP_PRIVACY_PREFIX, NULL);
    CHECK_CONTAINS(s, "\"packets\":17");
    CHECK_CONTAINS(s, "\"bytes\":15108");
    CHECK_CONTAINS(s, "\"quic\":{\"bytes\":15000,\"packets\":15}");
    CHECK_CONTAINS(s, "\"dns\":{\"bytes\":100,\"packets\":1}");
    CHECK_CONTAINS(s, "\"out\":{\"bytes\":15100,\"packets\":16}");
    CHECK_CONTAINS(s, "\"udp\":{\"bytes\":15100,\"packets\":16}");
    CHECK_CONTAINS(s, "\"by_reason\":{\"bad_link\":{\"bytes\":8,\"packets\":1}}");
    /* All local hosts fold into one talker 10.0.0.0/24 with their sum. */
    CHECK_CONTAINS(s,
                   "{\"bytes\":15100,\"bytes_in\":0,\"bytes_out\":15100,\"host\":\"10.0.0.0/24\","
                   "\"local\":true,\"packets\":16}");
    CHECK_CONTAINS(s, "\"host\":\"192.0.2.77\"");
    /* Top flow: host .5 with 5 packets, reported by prefix. */
    CHECK_CONTAINS(s, "\"top_flows\":[{\"app\":\"quic\",\"bytes\":5000,\"direction\":\"out\","
                      "\"dport\":443,\"dst\":\"192.0.2.77\",\"packets\":5,\"proto\":\"udp\","
                      "\"sport\":40000,\"src\":\"10.0.0.0/24\"}");
    for (int h = 1; h <= 9; h++) {
        char full[32];
        snprintf(full, sizeof full, "\"10.0.0.%d\"", h);
        CHECK(strstr(s, full) == NULL);
    }
    free(s);

    s = render(agg, NP_PRIVACY_NONE, NULL);
    CHECK_CONTAINS(s, "\"src\":\"10.0.0.5\"");
    free(s);
    np_flow_agg_free(agg);
}

static void test_hash_privacy(void)
{
    struct np_prefix local;
    CHECK_INT(np_prefix_parse("10.0.0.0/8", &local), 0);
    struct np_flow_agg *agg = sample_agg(&local);
    char *a = render(agg, NP_PRIVACY_HASH, "site-secret-0412-abcdef");
    char *b = render(agg, NP_PRIVACY_HASH, "another-secret-0413-xyz");
    CHECK(a && b && strcmp(a, b) != 0);
    CHECK_CONTAINS(a, "\"src\":\"h:");
    CHECK(strstr(a, "10.0.0.") == NULL);
    /* Deterministic for one secret; distinct hosts stay distinct. */
    char n1[64], n2[64], n3[64];
    uint8_t h1[16] = {10, 0, 0, 1}, h2[16] = {10, 0, 0, 2}, out[16] = {192, 0, 2, 1};
    struct np_flow_report_opts o;
    memset(&o, 0, sizeof o);
    o.privacy = NP_PRIVACY_HASH;
    o.secret = (const uint8_t *)"k";
    o.secret_len = 1;
    np_flow_addr_name(agg, &o, 4, h1, n1, sizeof n1);
    np_flow_addr_name(agg, &o, 4, h2, n2, sizeof n2);
    CHECK(strncmp(n1, "h:", 2) == 0 && strlen(n1) == 18);
    CHECK(strcmp(n1, n2) != 0);
    np_flow_addr_name(agg, &o, 4, h1, n3, sizeof n3);
    CHECK_STR(n1, n3);
    np_flow_addr_name(agg, &o, 4, out, n3, sizeof n3);
    CHECK_STR(n3, "192.0.2.1");
    free(a);
    free(b);
    np_flow_agg_free(agg);
}

static void test_ipv6_prefix_name(void)
{
    struct np_prefix local;
    CHECK_INT(np_prefix_parse("2001:db8::/32", &local), 0);
    struct np_flow_agg_config cfg = {.max_flows = 4, .sample = 1, .local = &local, .n_local = 1};
    struct np_flow_agg *agg = NULL;
    CHECK_INT(np_flow_agg_new(&cfg, &agg), 0);
    struct np_flow_report_opts o;
    memset(&o, 0, sizeof o);
    o.prefix_v6 = 64;
    uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0xde, 0xad, 0, 0, 0, 0, 0, 1};
    char name[64];
    np_flow_addr_name(agg, &o, 6, a, name, sizeof name);
    CHECK_STR(name, "2001:db8:1:2::/64");
    np_flow_agg_free(agg);
}

static const struct np_section_spec specs[] = {NP_FLOW_SECTION_SPEC};

static int load(const char *text, struct np_err *err)
{
    struct np_config *cfg = NULL;
    int rc = np_config_load_string(text, "t.conf", specs, 1, &cfg, err);
    if (rc == 0) {
        rc = np_flow_config_validate(cfg, err);
    }
    np_config_free(cfg);
    return rc;
}

static void test_config(void)
{
    struct np_err err = {0};
    CHECK_INT(load("[pcap wan]\ninterface = eth0\nlocal_prefixes = 10.0.0.0/8, fd00::/8\n", &err),
              0);
    CHECK_INT(load("[pcap wan]\ninterface = eth0\n\nlocal_prefixes = 10.0.0.0/8, 10.0.0/8\n", &err),
              NP_ECONFIG);
    CHECK_CONTAINS(err.msg, "t.conf:4: local_prefixes: \"10.0.0/8\" is not a CIDR prefix");
    CHECK_INT(load("[pcap wan]\ninterface = eth0\nprivacy = hash\n", &err), NP_ECONFIG);
    CHECK_CONTAINS(err.msg, "t.conf:3: privacy = hash needs privacy_secret");
    CHECK_INT(load("[pcap wan]\ninterface = eth0\nprivacy = hash\nprivacy_secret = short\n", &err),
              NP_ECONFIG);
    CHECK_CONTAINS(err.msg, "t.conf:4: privacy_secret must be at least 16");
    CHECK_INT(load("[pcap wan]\ninterface = eth0\nprivacy = hash\n"
                   "privacy_secret = 0123456789abcdef0\n",
                   &err),
              0);
    CHECK_INT(load("[pcap wan]\ninterface = eth0\nfilter = not port 22\n", &err), 0);
    CHECK_INT(load("[pcap wan]\ninterface = eth0\nfilter = nott port\n", &err), NP_ECONFIG);
    CHECK_CONTAINS(err.msg, "t.conf:3: filter: ");
    CHECK_INT(load("[pcap wan]\ninterface = eth0\nsnaplen = 10\n", &err), NP_ECONFIG);
    CHECK_CONTAINS(err.msg, "t.conf:3");
    CHECK_INT(load("[pcap wan]\ninterface = eth0\nprivacy = full\n", &err), NP_ECONFIG);
    CHECK_INT(load("[pcap wan]\nfilter = tcp\n", &err), NP_ECONFIG); /* interface required */
    CHECK_INT(load("[pcap wan]\ninterface = eth0\nbogus = 1\n", &err), NP_ECONFIG);
    CHECK_CONTAINS(err.msg, "t.conf:3");
    const struct np_flow_settings *d = np_flow_settings_default();
    CHECK_INT(d->snaplen, 128);
    CHECK_INT(d->top_n, 10);
    CHECK_INT(d->privacy, NP_PRIVACY_PREFIX);
}

/* Talkers from thousands of flows: every address one talker (none split by
 * the endpoint grouping, none merged), sums kept, largest first. One outside
 * address in every flow fills a large sort bucket; each of 1000 local ones is
 * in 3 flows, mixed with others in small buckets. */
static void test_many_talkers(void)
{
    enum { FLOWS = 3000, HOSTS = 1000 };
    struct np_flow_agg_config cfg = {.max_flows = 4096, .sample = 1};
    struct np_flow_agg *agg = NULL;
    CHECK_INT(np_flow_agg_new(&cfg, &agg), 0);
    if (!agg) {
        return;
    }
    static const uint8_t outside[4] = {192, 0, 2, 77};
    uint8_t b[64];
    uint64_t bytes = 0, packets = 0;
    for (unsigned i = 0; i < FLOWS; i++) {
        frame(b, (uint8_t)(i % HOSTS % 250), outside, (uint16_t)(443 + i / HOSTS));
        b[28] = (uint8_t)(i % HOSTS / 250);
        for (unsigned k = 0; k <= i % 7; k++) {
            np_flow_agg_packet(agg, NP_DLT_EN10MB, 1000, b, 64, 100 + i % 13);
            bytes += 100 + i % 13;
            packets++;
        }
    }
    struct np_flow_report_opts o;
    memset(&o, 0, sizeof o);
    o.privacy = NP_PRIVACY_NONE;
    o.top_n = FLOWS + 10;
    struct np_flow_talker *t = NULL;
    size_t n = 0;
    CHECK_INT(np_flow_report_talkers(agg, &o, &t, &n), 0);
    CHECK_INT(n, HOSTS + 1);
    if (t && n == HOSTS + 1) {
        CHECK_STR(t[0].host, "192.0.2.77");
        CHECK_INT(t[0].bytes_in, bytes);
        uint64_t in = 0, out = 0, pk = 0;
        for (size_t i = 0; i < n; i++) {
            in += t[i].bytes_in;
            out += t[i].bytes_out;
            pk += t[i].packets;
            if (i > 0) {
                CHECK(t[i - 1].bytes_in + t[i - 1].bytes_out >= t[i].bytes_in + t[i].bytes_out);
                CHECK(strcmp(t[i - 1].host, t[i].host) != 0);
            }
        }
        CHECK_INT(in, bytes);
        CHECK_INT(out, bytes);
        CHECK_INT(pk, 2 * packets);
    }
    free(t);
    np_flow_agg_free(agg);
}

/* The offline path's loop (np_flow_agg_offer_ring) counts exactly what
 * np_flow_agg_packet does with the same frames, bad ones included. */
static void test_offer_ring(void)
{
    struct np_prefix local;
    CHECK_INT(np_prefix_parse("10.0.0.0/8", &local), 0);
    struct np_flow_agg_config cfg = {.max_flows = 1024, .sample = 1, .local = &local, .n_local = 1};
    struct np_flow_agg *direct = NULL, *ringed = NULL;
    struct np_packet_ring *ring = NULL;
    CHECK_INT(np_flow_agg_new(&cfg, &direct), 0);
    CHECK_INT(np_flow_agg_new(&cfg, &ringed), 0);
    CHECK_INT(np_packet_ring_new(1u << 20, 128, &ring), 0);
    if (!direct || !ringed || !ring) {
        goto out;
    }
    static const uint8_t outside[4] = {192, 0, 2, 77};
    uint8_t b[64];
    unsigned frames = 0;
    for (unsigned i = 0; i < 3000; i++, frames++) {
        frame(b, (uint8_t)(i % 200), outside, (uint16_t)(i % 3 ? 443 : 53));
        uint32_t caplen = i % 97 == 0 ? 8 : 64; /* now and then a cut frame: a drop */
        np_flow_agg_packet(direct, NP_DLT_EN10MB, 1000u + i, b, caplen, 60 + i % 1400);
        np_packet_ring_put(ring, 1000u + i, b, caplen, 60 + i % 1400);
    }
    np_packet_ring_close(ring);
    CHECK_INT(np_flow_agg_offer_ring(ringed, NP_DLT_EN10MB, ring), frames);
    CHECK(memcmp(&direct->stats, &ringed->stats, sizeof direct->stats) == 0);
    CHECK_INT(np_flow_table_count(ringed->table), np_flow_table_count(direct->table));
    size_t cursor = 0;
    const struct np_flow *f;
    while ((f = np_flow_table_next(direct->table, &cursor)) != NULL) {
        const struct np_flow *g = np_flow_table_find(ringed->table, &f->key);
        CHECK(g != NULL && g->packets == f->packets && g->bytes == f->bytes && g->dir == f->dir);
    }
out:
    np_packet_ring_free(ring);
    np_flow_agg_free(direct);
    np_flow_agg_free(ringed);
}

int main(void)
{
    test_shape_and_prefix_privacy();
    test_hash_privacy();
    test_ipv6_prefix_name();
    test_many_talkers();
    test_offer_ring();
    test_config();
    return check_done("test_flow_report");
}
