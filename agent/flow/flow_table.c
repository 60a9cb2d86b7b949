#include "flow_table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/types.h>

/* How many slots from the home slot an insertion into a full table looks at
 * for a victim. Small: eviction must cost about as much as a lookup. */
#define EVICT_WINDOW 16

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

static inline uint32_t next_slot(const struct np_flow_table *t, uint32_t i)
{
    return ++i == t->cap ? 0 : i;
}

/* The flows: 64-byte aligned; a table of 2 MiB or more is aligned to 2 MiB
 * and asks for transparent huge pages, because a random lookup in a 10 MB
 * table of 4 KiB pages is a TLB miss as well as a cache miss (Linux with THP
 * "madvise"; elsewhere the advice is ignored). */
static void *alloc_slots(size_t size)
{
    const size_t huge = (size_t)2 << 20;
    void *p = NULL;
    if (size < huge) {
        return aligned_alloc(64, size);
    }
    if (posix_memalign(&p, huge, size) != 0) {
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    (void)madvise(p, size & ~(huge - 1), MADV_HUGEPAGE);
#endif
    return p;
}

int np_flow_table_new(uint32_t max_flows, struct np_flow_table **out)
{
    _Static_assert(sizeof(struct np_flow) == 64, "a flow is one cache line");
    *out = NULL;
    if (max_flows == 0 || max_flows > (1u << 24)) {
        return -EINVAL;
    }
    /* Load stays at or under 4/5: with the tag array, even a miss scans about
     * 13 tags (one or two cache lines) on average. */
    uint32_t cap = max_flows + max_flows / 4 + 1;
    cap = (cap + 15) & ~15u;
    struct np_flow_table *t = calloc(1, sizeof *t);
    if (!t) {
        return -ENOMEM;
    }
    t->tags = calloc(cap, sizeof *t->tags);
    /* Flows are written on insertion only; the tag says whether one is live,
     * so the array needs no zeroing (and untouched pages cost no memory). */
    t->slots = alloc_slots((size_t)cap * sizeof *t->slots);
    if (!t->tags || !t->slots) {
        free(t->tags);
        free(t->slots);
        free(t);
        return -ENOMEM;
    }
    t->cap = cap;
    t->max = max_flows;
    if (getrandom(&t->seed, sizeof t->seed, GRND_NONBLOCK) != (ssize_t)sizeof t->seed) {
        t->seed = (uint64_t)(uintptr_t)t ^ 0x5bd1e995u; /* entropy pool not ready: still per-run */
    }
    *out = t;
    return 0;
}

int np_flow_table_snapshot(const struct np_flow_table *t, struct np_flow_table **out)
{
    *out = NULL;
    struct np_flow_table *s = calloc(1, sizeof *s);
    if (!s) {
        return -ENOMEM;
    }
    /* One private mapping of exactly the flows present (slots, then tags),
     * returned to the kernel at free. Not malloc: a snapshot is made on the
     * capture thread and freed on the loop's, and glibc would keep such
     * blocks in the capture thread's arena after raising its mmap threshold
     * to their size, so resident memory would creep up interval by
     * interval. No huge pages: a snapshot is read once, in order. */
    size_t n = t->count ? t->count : 1;
    size_t bytes = n * (sizeof *s->slots + sizeof *s->tags);
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        free(s);
        return -ENOMEM;
    }
    s->slots = m;
    s->tags = (uint32_t *)(void *)(s->slots + n);
    s->map_bytes = bytes;
    uint32_t j = 0;
    for (uint32_t i = 0; i < t->cap && j < t->count; i++) {
        if (t->tags[i] != 0) {
            s->tags[j] = t->tags[i];
            s->slots[j++] = t->slots[i];
        }
    }
    s->cap = j;
    s->count = j;
    s->max = t->max;
    s->seed = t->seed;
    s->evicted = t->evicted;
    s->evicted_packets = t->evicted_packets;
    s->evicted_bytes = t->evicted_bytes;
    s->packed = true;
    *out = s;
    return 0;
}

void np_flow_table_free(struct np_flow_table *t)
{
    if (!t) {
        return;
    }
    if (t->packed) {
        munmap(t->slots, t->map_bytes);
    } else {
        free(t->tags);
        free(t->slots);
    }
    free(t);
}

const struct np_flow *np_flow_table_find(const struct np_flow_table *t,
                                         const struct np_flow_key *key)
{
    uint32_t h = np_flow_table_hash(t, key);
    if (t->packed) {
        for (uint32_t i = 0; i < t->cap; i++) {
            if (t->tags[i] == h && np_flow_key_equal(&t->slots[i].key, key)) {
                return &t->slots[i];
            }
        }
        return NULL;
    }
    for (uint32_t i = np_flow_table_home(t, h);; i = next_slot(t, i)) {
        uint32_t tag = t->tags[i];
        if (tag == 0) {
            return NULL;
        }
        if (tag == h && np_flow_key_equal(&t->slots[i].key, key)) {
            return &t->slots[i];
        }
    }
}

/* Backward-shift deletion (Knuth 6.4 algorithm R): moves later members of the
 * probe run into the hole so lookups never need tombstones. */
static void delete_slot(struct np_flow_table *t, uint32_t i)
{
    uint32_t j = i;
    for (;;) {
        j = next_slot(t, j);
        uint32_t tag = t->tags[j];
        if (tag == 0) {
            break;
        }
        uint32_t home = np_flow_table_home(t, tag);
        /* The flow at j may move to i only if its home is not cyclically within (i, j]. */
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays) {
            continue;
        }
        t->tags[i] = tag;
        t->slots[i] = t->slots[j];
        i = j;
    }
    t->tags[i] = 0;
    t->count--;
}

static void evict_one(struct np_flow_table *t, uint32_t home)
{
    uint32_t victim = UINT32_MAX;
    uint64_t least = UINT64_MAX;
    /* The table is at most 4/5 full, so a window almost always holds flows;
     * past the window, the first flow found will do. */
    for (uint32_t n = 0, i = home; n < t->cap; n++, i = next_slot(t, i)) {
        if (t->tags[i] != 0 && t->slots[i].bytes < least) {
            victim = i;
            least = t->slots[i].bytes;
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
    return np_flow_table_upsert_hashed(t, key, np_flow_table_hash(t, key));
}

struct np_flow *np_flow_table_insert(struct np_flow_table *t, const struct np_flow_key *key,
                                     uint32_t h, uint32_t i)
{
    if (t->count >= t->max) {
        uint32_t home = np_flow_table_home(t, h);
        evict_one(t, home);
        /* The deletion may have shifted the run: find the free slot again. */
        for (i = home; t->tags[i] != 0; i = next_slot(t, i)) {
        }
    }
    struct np_flow *f = &t->slots[i];
    t->tags[i] = h;
    f->key = *key;
    f->app = (uint8_t)np_flow_app_classify(key);
    f->dir = 0;
    f->pad[0] = f->pad[1] = 0;
    f->packets = 0;
    f->bytes = 0;
    t->count++;
    return f;
}

void np_flow_table_clear(struct np_flow_table *t)
{
    memset(t->tags, 0, (size_t)t->cap * sizeof *t->tags);
    t->count = 0;
    t->evicted = 0;
    t->evicted_packets = 0;
    t->evicted_bytes = 0;
}

uint32_t np_flow_table_count(const struct np_flow_table *t)
{
    return t->count;
}

size_t np_flow_table_bytes(const struct np_flow_table *t)
{
    return sizeof *t + (size_t)t->cap * (sizeof *t->tags + sizeof *t->slots);
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
