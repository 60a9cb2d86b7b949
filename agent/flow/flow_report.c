#include "flow_report.h"

#include "netpulse/clock.h"

#include <arpa/inet.h>
#include <errno.h>
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

/* local: np_flow_agg_is_local(agg, family, addr), which the caller knows. */
static void addr_identify(const struct np_flow_report_opts *o, bool local, uint8_t family,
                          const uint8_t *addr, struct addr_id *out)
{
    memset(out, 0, sizeof *out);
    out->family = family;
    if (o->privacy == NP_PRIVACY_NONE || !local) {
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
    addr_identify(opts, opts->privacy != NP_PRIVACY_NONE && np_flow_agg_is_local(agg, family, addr),
                  family, addr, &a);
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

const char *np_flow_proto_name(unsigned p, char *buf, size_t len)
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
};

/* ---- bounded heap: keeps the top n of a stream without holding it all ----
 * The root is the worst element kept; an offer better than the root replaces
 * it. Memory is n elements whatever the number of flows. */

typedef int (*rank_cmp)(const void *a, const void *b); /* < 0: a ranks before b */

struct top_heap {
    unsigned char *base;
    size_t n, cap, size;
    rank_cmp cmp;
};

static void *heap_at(const struct top_heap *h, size_t i)
{
    return h->base + i * h->size;
}

static void heap_swap(struct top_heap *h, size_t i, size_t j)
{
    unsigned char
        tmp[sizeof(struct talker) > sizeof(void *) ? sizeof(struct talker) : sizeof(void *)];
    memcpy(tmp, heap_at(h, i), h->size);
    memcpy(heap_at(h, i), heap_at(h, j), h->size);
    memcpy(heap_at(h, j), tmp, h->size);
}

/* True when element i ranks after element j (is worse). */
static bool heap_worse(const struct top_heap *h, size_t i, size_t j)
{
    return h->cmp(heap_at(h, i), heap_at(h, j)) > 0;
}

static void heap_offer(struct top_heap *h, const void *x)
{
    if (h->cap == 0) {
        return;
    }
    if (h->n < h->cap) {
        size_t i = h->n++;
        memcpy(heap_at(h, i), x, h->size);
        while (i > 0 && heap_worse(h, i, (i - 1) / 2)) {
            heap_swap(h, i, (i - 1) / 2);
            i = (i - 1) / 2;
        }
        return;
    }
    if (h->cmp(x, heap_at(h, 0)) >= 0) {
        return; /* not better than the worst kept */
    }
    memcpy(heap_at(h, 0), x, h->size);
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < h->n && heap_worse(h, l, w)) {
            w = l;
        }
        if (r < h->n && heap_worse(h, r, w)) {
            w = r;
        }
        if (w == i) {
            break;
        }
        heap_swap(h, i, w);
        i = w;
    }
}

/* Leaves the kept elements best first. */
static void heap_sort_out(struct top_heap *h)
{
    qsort(h->base, h->n, h->size, h->cmp);
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

/* ---- address tallies: a growing open-addressing set ----
 * Talkers are tallied by full address first (runs of sorted endpoints, below:
 * no prefix matching, no HMAC per flow), then the privacy rule runs once per
 * distinct address; addresses that become one prefix meet in this set. */

struct tally {
    uint64_t packets;
    uint64_t bytes_in;
    uint64_t bytes_out;
    struct addr_id id; /* family 0: empty slot */
};

struct tally_set {
    struct tally *slot;
    size_t mask, used;
};

/* 64 bits also on 32-bit targets: endpoint grouping buckets by the top bits. */
static uint64_t id_hash(const struct addr_id *a)
{
    uint64_t w[2], h;
    memcpy(w, a->id, sizeof w);
    w[0] ^= ((uint64_t)a->family << 56 | (uint64_t)a->kind << 48 | a->len) ^ 0xa0761d6478bd642full;
    w[1] ^= 0xe7037ed1a0b428dbull;
    /* Each product bit must depend on every input bit (addresses differ in
     * their last bytes only): fold hi and lo halves of the full product. */
#ifdef __SIZEOF_INT128__
    __uint128_t r = (__uint128_t)w[0] * w[1];
    h = (uint64_t)r ^ (uint64_t)(r >> 64);
#else
    h = (w[0] ^ (w[1] >> 29)) * (w[1] | 1);
    h ^= h >> 31;
#endif
    h = (h ^ (h >> 32)) * 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 29);
}

static int tally_init(struct tally_set *s, size_t cap)
{
    s->slot = calloc(cap, sizeof *s->slot);
    s->mask = cap - 1;
    s->used = 0;
    return s->slot ? 0 : -ENOMEM;
}

static struct tally *tally_slot(struct tally_set *s, const struct addr_id *a)
{
    for (size_t i = (size_t)id_hash(a) & s->mask;; i = (i + 1) & s->mask) {
        struct tally *t = &s->slot[i];
        if (t->id.family == 0 || memcmp(&t->id, a, sizeof *a) == 0) {
            return t;
        }
    }
}

/* The entry of a, created with zero counts; NULL when memory ran out. The
 * set doubles at 3/4 load, so it holds about as many entries as there are
 * distinct addresses, not a worst case of two per flow. */
static struct tally *tally_get(struct tally_set *s, const struct addr_id *a)
{
    struct tally *t = tally_slot(s, a);
    if (t->id.family != 0) {
        return t;
    }
    if ((s->used + 1) * 4 > (s->mask + 1) * 3) {
        struct tally_set bigger;
        if (tally_init(&bigger, (s->mask + 1) * 2) != 0) {
            return NULL;
        }
        for (size_t i = 0; i <= s->mask; i++) {
            if (s->slot[i].id.family != 0) {
                *tally_slot(&bigger, &s->slot[i].id) = s->slot[i];
            }
        }
        bigger.used = s->used;
        free(s->slot);
        *s = bigger;
        t = tally_slot(s, a);
    }
    t->id = *a;
    s->used++;
    return t;
}

static void tally_add(struct tally *t, uint64_t packets, uint64_t bytes_in, uint64_t bytes_out)
{
    t->packets += packets;
    t->bytes_in += bytes_in;
    t->bytes_out += bytes_out;
}

/* Flow endpoints for the talker tally, 8 bytes each: a hash of the address
 * in the high 38 bits, then the flow's slot in the table (np_flow_table_at)
 * and, in the low bit, the side (0: source, 1: destination). */
typedef uint64_t endpoint;
#define ENDPOINT_REF_BITS 26 /* a slot (< 2^25: at most 2^24 flows) and the side */
#define ENDPOINT_REF_MASK ((UINT64_C(1) << ENDPOINT_REF_BITS) - 1)

static const struct np_flow *endpoint_flow(const struct np_flow_table *t, endpoint e)
{
    return np_flow_table_at(t, (size_t)((e & ENDPOINT_REF_MASK) >> 1));
}

static const uint8_t *endpoint_addr(const struct np_flow_table *t, endpoint e)
{
    const struct np_flow *f = endpoint_flow(t, e);
    return (e & 1) ? f->key.dst : f->key.src;
}

static bool endpoint_same(const struct np_flow_table *t, endpoint a, endpoint b)
{
    return endpoint_flow(t, a)->key.family == endpoint_flow(t, b)->key.family &&
           memcmp(endpoint_addr(t, a), endpoint_addr(t, b), 16) == 0;
}

/* By address (for the rare run of one hash with several addresses). */
static int endpoint_cmp(const void *pa, const void *pb, void *table)
{
    const struct np_flow_table *t = table;
    endpoint a = *(const endpoint *)pa, b = *(const endpoint *)pb;
    uint8_t fa = endpoint_flow(t, a)->key.family, fb = endpoint_flow(t, b)->key.family;
    if (fa != fb) {
        return fa < fb ? -1 : 1;
    }
    return memcmp(endpoint_addr(t, a), endpoint_addr(t, b), 16);
}

/* Heapsort: in place (no merge buffer), integer compares only. */
static void sift_down(endpoint *e, size_t i, size_t n)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) {
            return;
        }
        if (c + 1 < n && e[c + 1] > e[c]) {
            c++;
        }
        if (e[i] >= e[c]) {
            return;
        }
        endpoint tmp = e[i];
        e[i] = e[c];
        e[c] = tmp;
        i = c;
    }
}

static void heap_sort_endpoints(endpoint *e, size_t n)
{
    for (size_t i = n / 2; i-- > 0;) {
        sift_down(e, i, n);
    }
    for (size_t k = n; k-- > 1;) {
        endpoint tmp = e[0];
        e[0] = e[k];
        e[k] = tmp;
        sift_down(e, 0, k);
    }
}

static void insertion_sort_endpoints(endpoint *e, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        endpoint v = e[i];
        size_t j = i;
        for (; j > 0 && e[j - 1] > v; j--) {
            e[j] = e[j - 1];
        }
        e[j] = v;
    }
}

#define SORT_SMALL_BUCKET 16
#define SORT_MAX_DEPTH 50 /* twice log2 of the most endpoints (2^25) */

/* Groups e[0..n) by address hash (inside a group, in no particular order):
 * quicksort on the hash with a three-way partition, so that a bucket filled
 * by one busy address (in thousands of flows) takes one linear pass; small
 * parts by insertion, and heapsort past a depth limit (crafted addresses
 * cannot make it quadratic). */
static void group_endpoints(endpoint *e, size_t n, unsigned depth)
{
    while (n > SORT_SMALL_BUCKET) {
        if (depth-- == 0) {
            heap_sort_endpoints(e, n);
            return;
        }
        uint64_t x = e[0] >> ENDPOINT_REF_BITS, y = e[n / 2] >> ENDPOINT_REF_BITS,
                 z = e[n - 1] >> ENDPOINT_REF_BITS;
        uint64_t pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        size_t lt = 0, i = 0, gt = n;
        while (i < gt) {
            uint64_t k = e[i] >> ENDPOINT_REF_BITS;
            endpoint v = e[i];
            if (k < pivot) {
                e[i++] = e[lt];
                e[lt++] = v;
            } else if (k > pivot) {
                e[i] = e[--gt];
                e[gt] = v;
            } else {
                i++;
            }
        }
        /* [0, lt) below the pivot, [lt, gt) equal, [gt, n) above: recurse
         * into the smaller side, loop on the larger. */
        if (lt < n - gt) {
            group_endpoints(e, lt, depth);
            e += gt;
            n -= gt;
        } else {
            group_endpoints(e + gt, n - gt, depth);
            n = lt;
        }
    }
    insertion_sort_endpoints(e, n);
}

/* Groups in place: one pass distributes the endpoints into buckets by the
 * top bits of their hash (American flag sort: each one moves straight to its
 * bucket), about four endpoints a bucket up to 2^15 buckets (bucket bounds: 2
 * bytes an endpoint, 256 KiB at most, beside the endpoints' own 16 bytes a
 * flow), then each bucket is grouped (group_endpoints). Returns 0 or
 * -ENOMEM. */
#define SORT_BUCKET_BITS_MIN 4
#define SORT_BUCKET_BITS_MAX 15

static int sort_endpoints(endpoint *e, size_t n)
{
    unsigned bits = SORT_BUCKET_BITS_MIN;
    while (bits < SORT_BUCKET_BITS_MAX && ((size_t)4 << bits) < n) {
        bits++;
    }
    const size_t nb = (size_t)1 << bits;
    uint32_t *next = calloc(2 * nb, sizeof *next);
    if (!next) {
        return -ENOMEM;
    }
    uint32_t *end = next + nb;
    const unsigned shift = 64 - bits;
    for (size_t i = 0; i < n; i++) {
        next[e[i] >> shift]++;
    }
    uint32_t at = 0;
    for (size_t b = 0; b < nb; b++) {
        uint32_t count = next[b];
        next[b] = at;
        at += count;
        end[b] = at;
    }
    for (size_t b = 0; b < nb; b++) {
        while (next[b] < end[b]) {
            endpoint v = e[next[b]];
            size_t t;
            while ((t = (size_t)(v >> shift)) != b) {
                endpoint w = e[next[t]];
                e[next[t]++] = v;
                v = w;
            }
            e[next[b]++] = v;
        }
    }
    for (size_t b = 0, start = 0; b < nb; start = end[b++]) {
        size_t m = end[b] - start;
        group_endpoints(e + start, m, SORT_MAX_DEPTH);
    }
    free(next);
    return 0;
}

/* Both endpoints of every flow, grouped so that each hash is one run (a run
 * holding several addresses is sorted by address in np_flow_report_talkers).
 * 16 bytes a flow, where a hash set of 48-byte tallies cost up to 3
 * times that per address while it grew: at 100,000 flows some 9 MiB on top
 * of the table. Returns the array (caller frees) or NULL. */
static endpoint *grouped_endpoints(const struct np_flow_table *t, size_t *n_out)
{
    size_t n = np_flow_table_count(t), i = 0;
    endpoint *ends = malloc((n ? n : 1) * 2 * sizeof *ends);
    if (!ends) {
        return NULL;
    }
    size_t cursor = 0;
    const struct np_flow *f;
    while ((f = np_flow_table_next(t, &cursor)) != NULL && i + 2 <= 2 * n) {
        for (unsigned side = 0; side < 2; side++) {
            struct addr_id a = {.family = f->key.family};
            memcpy(a.id, side ? f->key.dst : f->key.src, 16);
            uint64_t ref = (uint64_t)(cursor - 1) << 1 | side;
            ends[i++] = id_hash(&a) << ENDPOINT_REF_BITS | ref;
        }
    }
    if (sort_endpoints(ends, i) != 0) {
        free(ends);
        return NULL;
    }
    *n_out = i;
    return ends;
}

/* One address: its n endpoints e[] summed, then the privacy rule once. Only
 * prefixes merge addresses (into grouped); full addresses and keyed hashes
 * stay one talker each, straight into the ranking. Returns 0 or -ENOMEM. */
static int tally_address(const struct np_flow_agg *agg, const struct np_flow_report_opts *o,
                         const endpoint *e, size_t n, struct tally_set *grouped,
                         struct top_heap *heap)
{
    const struct np_flow_table *table = agg->table;
    struct talker tk = {.local = false};
    for (size_t i = 0; i < n; i++) {
        const struct np_flow *f = endpoint_flow(table, e[i]);
        tk.packets += f->packets;
        if (e[i] & 1) {
            tk.bytes_in += f->bytes;
        } else {
            tk.bytes_out += f->bytes;
        }
    }
    uint8_t family = endpoint_flow(table, e[0])->key.family;
    const uint8_t *addr = endpoint_addr(table, e[0]);
    tk.local = np_flow_agg_is_local(agg, family, addr);
    addr_identify(o, tk.local, family, addr, &tk.id);
    if (tk.id.kind == KIND_PREFIX) {
        struct tally *g = tally_get(grouped, &tk.id);
        if (!g) {
            return -ENOMEM;
        }
        tally_add(g, tk.packets, tk.bytes_in, tk.bytes_out);
        return 0;
    }
    heap_offer(heap, &tk);
    return 0;
}

int np_flow_report_talkers(const struct np_flow_agg *agg, const struct np_flow_report_opts *o,
                           struct np_flow_talker **out, size_t *n_out)
{
    struct tally_set grouped = {0};
    struct top_heap heap = {NULL, 0, o->top_n, sizeof(struct talker), talker_cmp};
    struct np_flow_talker *res = NULL;
    endpoint *ends = NULL;
    size_t n_ends = 0;
    int rc = -ENOMEM;

    *out = NULL;
    *n_out = 0;
    if (tally_init(&grouped, 64) != 0) {
        goto out_free;
    }
    heap.base = malloc((heap.cap ? heap.cap : 1) * heap.size);
    if (!heap.base) {
        goto out_free;
    }
    /* By full address: runs of the grouped endpoints. */
    const struct np_flow_table *table = agg->table;
    if (!(ends = grouped_endpoints(table, &n_ends))) {
        goto out_free;
    }
    for (size_t a = 0, b; a < n_ends; a = b) {
        /* A run of one hash, nearly always one address; several are sorted
         * by address first. */
        bool mixed = false;
        for (b = a + 1; b < n_ends && ends[b] >> ENDPOINT_REF_BITS == ends[a] >> ENDPOINT_REF_BITS;
             b++) {
            mixed = mixed || !endpoint_same(table, ends[a], ends[b]);
        }
        if (mixed) {
            qsort_r(ends + a, b - a, sizeof *ends, endpoint_cmp, (void *)table);
        }
        for (size_t i = a, j = b; i < b; i = j) {
            if (mixed) {
                for (j = i + 1; j < b && endpoint_same(table, ends[i], ends[j]); j++) {
                }
            }
            if (tally_address(agg, o, ends + i, j - i, &grouped, &heap) != 0) {
                goto out_free;
            }
        }
    }
    for (size_t i = 0; i <= grouped.mask; i++) {
        const struct tally *g = &grouped.slot[i];
        if (g->id.family == 0) {
            continue;
        }
        struct talker tk = {g->id, g->packets, g->bytes_in, g->bytes_out, true};
        heap_offer(&heap, &tk);
    }
    heap_sort_out(&heap);
    res = calloc(heap.n ? heap.n : 1, sizeof *res);
    if (!res) {
        goto out_free;
    }
    for (size_t i = 0; i < heap.n; i++) {
        const struct talker *t = heap_at(&heap, i);
        addr_id_name(&t->id, res[i].host, sizeof res[i].host);
        res[i].local = t->local;
        res[i].packets = t->packets;
        res[i].bytes_in = t->bytes_in;
        res[i].bytes_out = t->bytes_out;
    }
    *out = res;
    *n_out = heap.n;
    rc = 0;
out_free:
    free(ends);
    free(heap.base);
    free(grouped.slot);
    return rc;
}

static json_t *top_talkers_json(const struct np_flow_agg *agg, const struct np_flow_report_opts *o)
{
    struct np_flow_talker *talkers = NULL;
    size_t n = 0;
    json_t *arr = json_array();
    if (!arr || np_flow_report_talkers(agg, o, &talkers, &n) != 0) {
        goto out_fail;
    }
    for (size_t i = 0; i < n; i++) {
        const struct np_flow_talker *t = &talkers[i];
        json_t *row =
            json_pack("{s:s,s:b,s:I,s:I,s:I,s:I}", "host", t->host, "local", t->local, "packets",
                      (json_int_t)t->packets, "bytes", (json_int_t)(t->bytes_in + t->bytes_out),
                      "bytes_in", (json_int_t)t->bytes_in, "bytes_out", (json_int_t)t->bytes_out);
        if (!row || json_array_append_new(arr, row) != 0) {
            goto out_fail;
        }
    }
    free(talkers);
    return arr;
out_fail:
    free(talkers);
    json_decref(arr);
    return NULL;
}

int np_flow_report_top_flows(const struct np_flow_agg *agg, size_t top_n,
                             const struct np_flow ***out, size_t *n_out)
{
    struct top_heap heap = {NULL, 0, top_n, sizeof(const struct np_flow *), flow_cmp};
    *out = NULL;
    *n_out = 0;
    heap.base = malloc((top_n ? top_n : 1) * heap.size);
    if (!heap.base) {
        return -ENOMEM;
    }
    size_t cursor = 0;
    const struct np_flow *f;
    while ((f = np_flow_table_next(agg->table, &cursor)) != NULL) {
        /* Most flows are smaller than the smallest kept: no call for them. */
        if (heap.n == heap.cap && heap.cap > 0 &&
            f->bytes < (*(const struct np_flow *const *)heap_at(&heap, 0))->bytes) {
            continue;
        }
        heap_offer(&heap, &f);
    }
    heap_sort_out(&heap);
    *out = (const struct np_flow **)(void *)heap.base;
    *n_out = heap.n;
    return 0;
}

static json_t *flow_json(const struct np_flow_agg *agg, const struct np_flow_report_opts *o,
                         const struct np_flow *f)
{
    char src[64], dst[64], pbuf[8];
    np_flow_addr_name(agg, o, f->key.family, f->key.src, src, sizeof src);
    np_flow_addr_name(agg, o, f->key.family, f->key.dst, dst, sizeof dst);
    json_t *row = json_pack("{s:s,s:s,s:i,s:i,s:s,s:s,s:s,s:I,s:I}", "src", src, "dst", dst,
                            "sport", f->key.sport, "dport", f->key.dport, "proto",
                            np_flow_proto_name(f->key.proto, pbuf, sizeof pbuf), "app",
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
    const struct np_flow **top = NULL;
    size_t n = 0;
    json_t *arr = json_array();
    if (!arr || np_flow_report_top_flows(agg, o->top_n, &top, &n) != 0) {
        goto out_fail;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *row = flow_json(agg, o, top[i]);
        if (!row || json_array_append_new(arr, row) != 0) {
            goto out_fail;
        }
    }
    free(top);
    return arr;
out_fail:
    free(top);
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
            bad |= set_counter(protos, np_flow_proto_name(p, buf, sizeof buf), &st->proto[p]);
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
        json_pack("{s:i,s:i,s:I,s:I,s:I,s:I}", "count", (int)np_flow_table_count(agg->table), "max",
                  (int)np_flow_table_max(agg->table), "evicted",
                  (json_int_t)np_flow_table_evicted(agg->table), "evicted_packets",
                  (json_int_t)np_flow_table_evicted_packets(agg->table), "evicted_bytes",
                  (json_int_t)np_flow_table_evicted_bytes(agg->table), "memory_bytes",
                  (json_int_t)(sizeof *agg + np_flow_table_bytes(agg->table))));
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
