#include "flow_report.h"

#include "netpulse/clock.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How a reported address is identified: the full address, its prefix, or the
 * keyed hash. Talkers are aggregated on this. */
enum addr_kind { KIND_FULL = 0, KIND_PREFIX, KIND_HASH };

struct addr_id {
    uint8_t family;
    uint8_t kind;
    uint8_t len; /* prefix length for KIND_PREFIX */
    uint8_t pad;
    uint8_t id[16];
};

static void addr_identify(const struct np_flow_agg *agg, const struct np_flow_report_opts *o,
                          uint8_t family, const uint8_t *addr, struct addr_id *out)
{
    memset(out, 0, sizeof *out);
    out->family = family;
    if (o->privacy == NP_PRIVACY_NONE || !np_flow_agg_is_local(agg, family, addr)) {
        memcpy(out->id, addr, 16);
        return;
    }
    if (o->privacy == NP_PRIVACY_HASH) {
        uint8_t mac[EVP_MAX_MD_SIZE];
        unsigned mac_len = 0;
        static const uint8_t empty_key[1] = {0};
        if (HMAC(EVP_sha256(), o->secret_len ? (const void *)o->secret : empty_key,
                 (int)o->secret_len, addr, family == 4 ? 4u : 16u, mac, &mac_len) &&
            mac_len >= 8) {
            out->kind = KIND_HASH;
            memcpy(out->id, mac, 8);
            return;
        }
        /* HMAC failing (no memory) must not leak the address: fall back to the prefix. */
    }
    unsigned len = family == 4 ? o->prefix_v4 : o->prefix_v6;
    out->kind = KIND_PREFIX;
    out->len = (uint8_t)len;
    np_addr_mask(family, addr, len, out->id);
}

static void addr_id_name(const struct addr_id *a, char *buf, size_t len)
{
    char text[INET6_ADDRSTRLEN];
    if (a->kind == KIND_HASH) {
        snprintf(buf, len, "h:%02x%02x%02x%02x%02x%02x%02x%02x", a->id[0], a->id[1], a->id[2],
                 a->id[3], a->id[4], a->id[5], a->id[6], a->id[7]);
        return;
    }
    if (!inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->id, text, sizeof text)) {
        snprintf(buf, len, "?");
        return;
    }
    if (a->kind == KIND_PREFIX) {
        snprintf(buf, len, "%s/%u", text, (unsigned)a->len);
    } else {
        snprintf(buf, len, "%s", text);
    }
}

void np_flow_addr_name(const struct np_flow_agg *agg, const struct np_flow_report_opts *opts,
                       uint8_t family, const uint8_t *addr, char *buf, size_t len)
{
    struct addr_id a;
    addr_identify(agg, opts, family, addr, &a);
    addr_id_name(&a, buf, len);
}

static json_t *counter_json(const struct np_flow_counter *c)
{
    return json_pack("{s:I,s:I}", "packets", (json_int_t)c->packets, "bytes", (json_int_t)c->bytes);
}

/* Adds key -> counter to obj; returns 0 or -1 (no memory). */
static int set_counter(json_t *obj, const char *key, const struct np_flow_counter *c)
{
    json_t *v = counter_json(c);
    return v ? json_object_set_new(obj, key, v) : -1;
}

static const char *proto_name(unsigned p, char *buf, size_t len)
{
    switch (p) {
    case 1:
        return "icmp";
    case 2:
        return "igmp";
    case 4:
        return "ipip";
    case 6:
        return "tcp";
    case 17:
        return "udp";
    case 41:
        return "ipv6";
    case 47:
        return "gre";
    case 50:
        return "esp";
    case 51:
        return "ah";
    case 58:
        return "icmpv6";
    case 89:
        return "ospf";
    case 103:
        return "pim";
    case 112:
        return "vrrp";
    case 132:
        return "sctp";
    default:
        snprintf(buf, len, "%u", p);
        return buf;
    }
}

struct talker {
    struct addr_id id;
    uint64_t packets;
    uint64_t bytes_in;  /* as destination */
    uint64_t bytes_out; /* as source */
    bool local;
    bool used;
};

struct talker_set {
    struct talker *slot;
    size_t mask;
};

static size_t id_hash(const struct addr_id *a)
{
    uint64_t h = 0xcbf29ce484222325ull;
    const uint8_t *p = (const uint8_t *)a;
    for (size_t i = 0; i < sizeof *a; i++) {
        h = (h ^ p[i]) * 0x100000001b3ull;
    }
    return (size_t)(h ^ (h >> 32));
}

static struct talker *talker_get(struct talker_set *s, const struct addr_id *a)
{
    for (size_t i = id_hash(a) & s->mask;; i = (i + 1) & s->mask) {
        struct talker *t = &s->slot[i];
        if (!t->used) {
            t->used = true;
            t->id = *a;
            return t;
        }
        if (memcmp(&t->id, a, sizeof *a) == 0) {
            return t;
        }
    }
}

static int talker_cmp(const void *pa, const void *pb)
{
    const struct talker *a = pa, *b = pb;
    uint64_t ta = a->bytes_in + a->bytes_out, tb = b->bytes_in + b->bytes_out;
    if (ta != tb) {
        return ta > tb ? -1 : 1;
    }
    return memcmp(&a->id, &b->id, sizeof a->id);
}

static int flow_cmp(const void *pa, const void *pb)
{
    const struct np_flow *a = *(const struct np_flow *const *)pa;
    const struct np_flow *b = *(const struct np_flow *const *)pb;
    if (a->bytes != b->bytes) {
        return a->bytes > b->bytes ? -1 : 1;
    }
    return memcmp(&a->key, &b->key, sizeof a->key);
}

static json_t *top_talkers_json(const struct np_flow_agg *agg, const struct np_flow_report_opts *o)
{
    size_t nflows = np_flow_table_count(agg->table);
    size_t cap = 16;
    while (cap < 4 * nflows) {
        cap <<= 1;
    }
    json_t *arr = json_array();
    struct talker_set set = {calloc(cap, sizeof(struct talker)), cap - 1};
    if (!arr || !set.slot) {
        goto out_fail;
    }
    size_t cursor = 0;
    const struct np_flow *f;
    while ((f = np_flow_table_next(agg->table, &cursor)) != NULL) {
        struct addr_id a;
        addr_identify(agg, o, f->key.family, f->key.src, &a);
        struct talker *t = talker_get(&set, &a);
        t->packets += f->packets;
        t->bytes_out += f->bytes;
        t->local = np_flow_agg_is_local(agg, f->key.family, f->key.src);
        addr_identify(agg, o, f->key.family, f->key.dst, &a);
        t = talker_get(&set, &a);
        t->packets += f->packets;
        t->bytes_in += f->bytes;
        t->local = np_flow_agg_is_local(agg, f->key.family, f->key.dst);
    }
    /* Compact the used slots to the front and sort them. */
    size_t n = 0;
    for (size_t i = 0; i < cap; i++) {
        if (set.slot[i].used) {
            set.slot[n++] = set.slot[i];
        }
    }
    qsort(set.slot, n, sizeof *set.slot, talker_cmp);
    for (size_t i = 0; i < n && i < o->top_n; i++) {
        const struct talker *t = &set.slot[i];
        char name[64];
        addr_id_name(&t->id, name, sizeof name);
        json_t *row =
            json_pack("{s:s,s:b,s:I,s:I,s:I,s:I}", "host", name, "local", t->local, "packets",
                      (json_int_t)t->packets, "bytes", (json_int_t)(t->bytes_in + t->bytes_out),
                      "bytes_in", (json_int_t)t->bytes_in, "bytes_out", (json_int_t)t->bytes_out);
        if (!row || json_array_append_new(arr, row) != 0) {
            goto out_fail;
        }
    }
    free(set.slot);
    return arr;
out_fail:
    free(set.slot);
    json_decref(arr);
    return NULL;
}

static json_t *flow_json(const struct np_flow_agg *agg, const struct np_flow_report_opts *o,
                         const struct np_flow *f)
{
    char src[64], dst[64], pbuf[8];
    np_flow_addr_name(agg, o, f->key.family, f->key.src, src, sizeof src);
    np_flow_addr_name(agg, o, f->key.family, f->key.dst, dst, sizeof dst);
    json_t *row = json_pack("{s:s,s:s,s:i,s:i,s:s,s:s,s:s,s:I,s:I}", "src", src, "dst", dst,
                            "sport", f->key.sport, "dport", f->key.dport, "proto",
                            proto_name(f->key.proto, pbuf, sizeof pbuf), "app",
                            np_flow_app_name((enum np_flow_app)f->app), "direction",
                            np_flow_dir_name(np_flow_agg_direction(agg, &f->key)), "packets",
                            (json_int_t)f->packets, "bytes", (json_int_t)f->bytes);
    if (row && f->key.vlan != NP_VLAN_NONE) {
        json_object_set_new(row, "vlan", json_integer(f->key.vlan));
        if (f->key.vlan_inner != NP_VLAN_NONE) {
            json_object_set_new(row, "vlan_inner", json_integer(f->key.vlan_inner));
        }
    }
    return row;
}

static json_t *top_flows_json(const struct np_flow_agg *agg, const struct np_flow_report_opts *o)
{
    size_t nflows = np_flow_table_count(agg->table);
    json_t *arr = json_array();
    const struct np_flow **all = calloc(nflows ? nflows : 1, sizeof *all);
    if (!arr || !all) {
        goto out_fail;
    }
    size_t cursor = 0, n = 0;
    const struct np_flow *f;
    while ((f = np_flow_table_next(agg->table, &cursor)) != NULL && n < nflows) {
        all[n++] = f;
    }
    qsort(all, n, sizeof *all, flow_cmp);
    for (size_t i = 0; i < n && i < o->top_n; i++) {
        json_t *row = flow_json(agg, o, all[i]);
        if (!row || json_array_append_new(arr, row) != 0) {
            goto out_fail;
        }
    }
    free(all);
    return arr;
out_fail:
    free(all);
    json_decref(arr);
    return NULL;
}

json_t *np_flow_report_json(const struct np_flow_agg *agg, const struct np_flow_report_opts *o)
{
    const struct np_flow_stats *st = &agg->stats;
    char buf[32], t0[32], t1[32];
    int bad = 0;
    json_t *root = json_object();
    if (!root) {
        return NULL;
    }
    if (o->source) {
        bad |= json_object_set_new(root, "source", json_string(o->source));
    }
    if (o->link_type) {
        bad |= json_object_set_new(root, "link_type", json_string(o->link_type));
    }
    if (st->total.packets) {
        np_clock_format_utc((int64_t)(st->first_us / 1000), t0, sizeof t0);
        np_clock_format_utc((int64_t)(st->last_us / 1000), t1, sizeof t1);
        bad |= json_object_set_new(root, "start", json_string(t0));
        bad |= json_object_set_new(root, "end", json_string(t1));
    }
    bad |= json_object_set_new(root, "sample", json_integer(agg->cfg.sample));
    bad |= json_object_set_new(root, "packets", json_integer((json_int_t)st->total.packets));
    bad |= json_object_set_new(root, "bytes", json_integer((json_int_t)st->total.bytes));
    bad |=
        json_object_set_new(root, "sampled_packets", json_integer((json_int_t)st->sampled.packets));
    bad |= set_counter(root, "ipv4", &st->ipv4);
    bad |= set_counter(root, "ipv6", &st->ipv6);
    bad |= set_counter(root, "not_ip", &st->not_ip);

    json_t *dir = json_object();
    bad |= json_object_set_new(root, "direction", dir);
    for (int d = 0; dir && d < NP_DIR_COUNT; d++) {
        bad |= set_counter(dir, np_flow_dir_name((enum np_flow_dir)d), &st->dir[d]);
    }
    json_t *protos = json_object();
    bad |= json_object_set_new(root, "protocols", protos);
    for (unsigned p = 0; protos && p < 256; p++) {
        if (st->proto[p].packets) {
            bad |= set_counter(protos, proto_name(p, buf, sizeof buf), &st->proto[p]);
        }
    }
    json_t *apps = json_object();
    bad |= json_object_set_new(root, "applications", apps);
    for (int a = 0; apps && a < NP_APP_COUNT; a++) {
        bad |= set_counter(apps, np_flow_app_name((enum np_flow_app)a), &st->app[a]);
    }
    json_t *vlans = json_object();
    bad |= json_object_set_new(root, "vlans", vlans);
    for (unsigned v = 0; vlans && v < NP_VLAN_SLOTS; v++) {
        if (st->vlan[v].packets) {
            if (v == NP_VLAN_SLOTS - 1) {
                snprintf(buf, sizeof buf, "untagged");
            } else {
                snprintf(buf, sizeof buf, "%u", v);
            }
            bad |= set_counter(vlans, buf, &st->vlan[v]);
        }
    }
    bad |= json_object_set_new(
        root, "flows",
        json_pack("{s:i,s:i,s:I,s:I,s:I}", "count", (int)np_flow_table_count(agg->table), "max",
                  (int)np_flow_table_max(agg->table), "evicted",
                  (json_int_t)np_flow_table_evicted(agg->table), "evicted_packets",
                  (json_int_t)np_flow_table_evicted_packets(agg->table), "evicted_bytes",
                  (json_int_t)np_flow_table_evicted_bytes(agg->table)));
    bad |= json_object_set_new(root, "top_flows", top_flows_json(agg, o));
    bad |= json_object_set_new(root, "top_talkers", top_talkers_json(agg, o));
    bad |= json_object_set_new(root, "fragments",
                               json_pack("{s:I,s:I,s:I}", "first", (json_int_t)st->frag_first,
                                         "matched", (json_int_t)st->frag_matched, "unmatched",
                                         (json_int_t)st->frag_unmatched));

    struct np_flow_counter dropped = {0, 0};
    json_t *reasons = json_object();
    for (int r = NP_PKT_DROP_FIRST; reasons && r < NP_PKT_STATUS_COUNT; r++) {
        if (st->drop[r].packets) {
            dropped.packets += st->drop[r].packets;
            dropped.bytes += st->drop[r].bytes;
            bad |= set_counter(reasons, np_pkt_status_name((enum np_pkt_status)r), &st->drop[r]);
        }
    }
    json_t *drops = counter_json(&dropped);
    if (drops && reasons) {
        bad |= json_object_set_new(drops, "by_reason", reasons);
    } else {
        json_decref(reasons);
        bad = 1;
    }
    bad |= json_object_set_new(root, "drops", drops);
    if (o->live) {
        bad |= json_object_set_new(root, "capture",
                                   json_pack("{s:I,s:I,s:I}", "received", (json_int_t)o->received,
                                             "kernel_dropped", (json_int_t)o->kernel_dropped,
                                             "if_dropped", (json_int_t)o->if_dropped));
    }
    if (bad) {
        /* json_object_set_new with a NULL value fails and is how allocation
         * failures surface here; nothing half-built goes out. */
        json_decref(root);
        return NULL;
    }
    return root;
}
