#include "flow_table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

/* How many slots from the home slot an insertion into a full table looks at
 * for a victim. Small: eviction must cost about as much as a lookup. */
#define EVICT_WINDOW 16

struct np_flow_table {
    struct np_flow *slots;
    uint32_t mask; /* capacity - 1; capacity is a power of two >= 4/3 * max */
    uint32_t max;
    uint32_t count;
    uint64_t seed;
    uint64_t evicted;
    uint64_t evicted_packets;
    uint64_t evicted_bytes;
};

static const char *const app_names[NP_APP_COUNT] = {
    [NP_APP_OTHER] = "other", [NP_APP_WEB] = "web", [NP_APP_VIDEO] = "video", [NP_APP_DNS] = "dns",
    [NP_APP_QUIC] = "quic",   [NP_APP_VPN] = "vpn", [NP_APP_EMAIL] = "email",
};

const char *np_flow_app_name(enum np_flow_app app)
{
    if ((unsigned)app >= NP_APP_COUNT) {
        return "other";
    }
    return app_names[app];
}

static enum np_flow_app port_class(uint8_t proto, uint16_t port)
{
    bool tcp = proto == 6, udp = proto == 17;
    switch (port) {
    case 80:
        return tcp ? NP_APP_WEB : udp ? NP_APP_QUIC : NP_APP_OTHER;
    case 443:
        return tcp ? NP_APP_WEB : udp ? NP_APP_QUIC : NP_APP_OTHER;
    case 8000:
    case 8008:
    case 8080:
    case 8443:
        return tcp ? NP_APP_WEB : NP_APP_OTHER;
    case 53:
    case 853:
    case 5353:
        return NP_APP_DNS;
    case 25:
    case 110:
    case 143:
    case 465:
    case 587:
    case 993:
    case 995:
        return tcp ? NP_APP_EMAIL : NP_APP_OTHER;
    case 500:   /* IKE */
    case 4500:  /* IPsec NAT traversal */
    case 1194:  /* OpenVPN */
    case 1701:  /* L2TP */
    case 1723:  /* PPTP */
    case 51820: /* WireGuard */
        return NP_APP_VPN;
    case 554:  /* RTSP */
    case 1935: /* RTMP */
    case 8554: /* RTSP alternate */
        return NP_APP_VIDEO;
    default:
        break;
    }
    if (udp && ((port >= 3478 && port <= 3481) ||    /* STUN/TURN: Teams, Meet, WebRTC */
                (port >= 8801 && port <= 8810) ||    /* Zoom media */
                (port >= 19302 && port <= 19309))) { /* Google Meet */
        return NP_APP_VIDEO;
    }
    return NP_APP_OTHER;
}

enum np_flow_app np_flow_app_classify(const struct np_flow_key *key)
{
    switch (key->proto) {
    case 47: /* GRE */
    case 50: /* ESP */
    case 51: /* AH */
        return NP_APP_VPN;
    case 6:
    case 17:
    case 132:
        break;
    default:
        return NP_APP_OTHER;
    }
    enum np_flow_app s = port_class(key->proto, key->sport);
    enum np_flow_app d = port_class(key->proto, key->dport);
    if (s == NP_APP_OTHER) {
        return d;
    }
    if (d == NP_APP_OTHER) {
        return s;
    }
    return key->sport < key->dport ? s : d;
}

/* Key hash: 64-bit multiply-xorshift over the 44 key bytes. Never returns 0
 * (0 marks an empty slot). */
static uint32_t key_hash(uint64_t seed, const struct np_flow_key *k)
{
    _Static_assert(sizeof(struct np_flow_key) == 44, "flow key layout");
    const uint8_t *p = (const uint8_t *)k;
    uint64_t h = seed ^ 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i + 8 <= sizeof *k; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
    uint32_t tail;
    memcpy(&tail, p + 40, 4);
    h = (h ^ tail) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    uint32_t r = (uint32_t)(h ^ (h >> 32));
    return r ? r : 1;
}

int np_flow_table_new(uint32_t max_flows, struct np_flow_table **out)
{
    *out = NULL;
    if (max_flows == 0 || max_flows > (1u << 24)) {
        return -EINVAL;
    }
    uint32_t cap = 2;
    /* Load stays at or under 3/4: short probe runs, and 100,000 flows fit in
     * 11.5 MB (RSS matters on a school's edge router). */
    while (cap < max_flows + max_flows / 3 + 1) {
        cap <<= 1;
    }
    struct np_flow_table *t = calloc(1, sizeof *t);
    if (!t) {
        return -ENOMEM;
    }
    t->slots = calloc(cap, sizeof *t->slots);
    if (!t->slots) {
        free(t);
        return -ENOMEM;
    }
    t->mask = cap - 1;
    t->max = max_flows;
    if (getrandom(&t->seed, sizeof t->seed, GRND_NONBLOCK) != (ssize_t)sizeof t->seed) {
        t->seed = (uint64_t)(uintptr_t)t ^ 0x5bd1e995u; /* entropy pool not ready: still per-run */
    }
    *out = t;
    return 0;
}

void np_flow_table_free(struct np_flow_table *t)
{
    if (!t) {
        return;
    }
    free(t->slots);
    free(t);
}

static bool key_equal(const struct np_flow_key *a, const struct np_flow_key *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

const struct np_flow *np_flow_table_find(const struct np_flow_table *t,
                                         const struct np_flow_key *key)
{
    uint32_t h = key_hash(t->seed, key);
    for (uint32_t i = h & t->mask;; i = (i + 1) & t->mask) {
        const struct np_flow *f = &t->slots[i];
        if (f->hash == 0) {
            return NULL;
        }
        if (f->hash == h && key_equal(&f->key, key)) {
            return f;
        }
    }
}

/* Backward-shift deletion (Knuth 6.4 algorithm R): moves later members of the
 * probe run into the hole so lookups never need tombstones. */
static void delete_slot(struct np_flow_table *t, uint32_t i)
{
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & t->mask;
        struct np_flow *f = &t->slots[j];
        if (f->hash == 0) {
            break;
        }
        uint32_t home = f->hash & t->mask;
        /* f may move to i only if its home is not cyclically within (i, j]. */
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays) {
            continue;
        }
        t->slots[i] = *f;
        i = j;
    }
    memset(&t->slots[i], 0, sizeof t->slots[i]);
    t->count--;
}

static void evict_one(struct np_flow_table *t, uint32_t home)
{
    uint32_t victim = UINT32_MAX;
    uint64_t least = UINT64_MAX;
    /* The table is at most 3/4 full, so a window almost always holds flows;
     * past the window, the first flow found will do. */
    for (uint32_t n = 0, i = home; n <= t->mask; n++, i = (i + 1) & t->mask) {
        const struct np_flow *f = &t->slots[i];
        if (f->hash != 0 && f->bytes < least) {
            victim = i;
            least = f->bytes;
        }
        if (n >= EVICT_WINDOW && victim != UINT32_MAX) {
            break;
        }
    }
    t->evicted++;
    t->evicted_packets += t->slots[victim].packets;
    t->evicted_bytes += t->slots[victim].bytes;
    delete_slot(t, victim);
}

struct np_flow *np_flow_table_upsert(struct np_flow_table *t, const struct np_flow_key *key)
{
    uint32_t h = key_hash(t->seed, key);
    uint32_t i;
    for (i = h & t->mask;; i = (i + 1) & t->mask) {
        struct np_flow *f = &t->slots[i];
        if (f->hash == 0) {
            break;
        }
        if (f->hash == h && key_equal(&f->key, key)) {
            return f;
        }
    }
    if (t->count >= t->max) {
        evict_one(t, h & t->mask);
        /* The deletion may have shifted the run: find the free slot again. */
        for (i = h & t->mask; t->slots[i].hash != 0; i = (i + 1) & t->mask) {
        }
    }
    struct np_flow *f = &t->slots[i];
    memset(f, 0, sizeof *f);
    f->key = *key;
    f->hash = h;
    f->app = (uint8_t)np_flow_app_classify(key);
    t->count++;
    return f;
}

void np_flow_table_clear(struct np_flow_table *t)
{
    memset(t->slots, 0, ((size_t)t->mask + 1) * sizeof *t->slots);
    t->count = 0;
    t->evicted = 0;
    t->evicted_packets = 0;
    t->evicted_bytes = 0;
}

uint32_t np_flow_table_count(const struct np_flow_table *t)
{
    return t->count;
}

uint32_t np_flow_table_max(const struct np_flow_table *t)
{
    return t->max;
}

uint64_t np_flow_table_evicted(const struct np_flow_table *t)
{
    return t->evicted;
}

uint64_t np_flow_table_evicted_packets(const struct np_flow_table *t)
{
    return t->evicted_packets;
}

uint64_t np_flow_table_evicted_bytes(const struct np_flow_table *t)
{
    return t->evicted_bytes;
}

const struct np_flow *np_flow_table_next(const struct np_flow_table *t, size_t *cursor)
{
    while (*cursor <= t->mask) {
        const struct np_flow *f = &t->slots[(*cursor)++];
        if (f->hash != 0) {
            return f;
        }
    }
    return NULL;
}
