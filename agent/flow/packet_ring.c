#include "packet_ring.h"

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define REC_ALIGN 16u
#define REC_HEADER ((uint64_t)sizeof(struct np_packet_rec))
/* caplen of a record that only says "continue at the start of the buffer":
 * a record never wraps, so the tail end too short for it is skipped. */
#define REC_SKIP UINT32_MAX
#define MAX_CAPLEN (1u << 20)
#define MAX_RING_BYTES ((size_t)1 << 30)
#define CACHE_LINE 64

_Static_assert(sizeof(struct np_packet_rec) == REC_ALIGN, "record header is one alignment unit");

/* Positions are byte counts since the start (never wrap in 64 bits); the
 * offset in buf is pos & mask. head and tail sit on their own cache lines,
 * as do each side's private state, so the two threads share a line only when
 * one of them publishes or releases. */
struct np_packet_ring {
    alignas(CACHE_LINE) atomic_uint_least64_t head; /* bytes published by the producer */
    alignas(CACHE_LINE) atomic_uint_least64_t tail; /* bytes given back by the consumer */

    alignas(CACHE_LINE) uint64_t p_pos; /* producer: end of what it wrote */
    uint64_t p_tail;                    /* producer: tail as last seen */
    unsigned p_count;                   /* producer: records not yet published */

    alignas(CACHE_LINE) uint64_t c_pos; /* consumer: start of the next record */
    uint64_t c_head;                    /* consumer: head as last seen */
    unsigned c_count;                   /* consumer: records taken, not yet released */

    alignas(CACHE_LINE) uint8_t *buf;
    uint64_t size; /* power of two */
    uint64_t mask;
    uint64_t wake_free; /* a sleeping producer wants this much space free */
    uint64_t wake_fill; /* a sleeping consumer wants this much published */
    uint32_t max_caplen;

    /* Slow path only: a side that found nothing to do says so in its flag,
     * checks once more, and sleeps on its condition; the other side, after
     * moving its position, signals when it sees the flag. The flag and the
     * positions are sequentially consistent, so one of the two always sees
     * the other's store (no lost wake-up). Its own cache line: the fields
     * above are read on every put and get. */
    alignas(CACHE_LINE) atomic_bool p_waiting;
    atomic_bool c_waiting;
    atomic_bool closed;
    uv_mutex_t lock;
    uv_cond_t p_cond;
    uv_cond_t c_cond;
};

static uint64_t rec_size(uint32_t caplen)
{
    return (REC_HEADER + caplen + REC_ALIGN - 1) & ~(uint64_t)(REC_ALIGN - 1);
}

int np_packet_ring_new(size_t ring_bytes, uint32_t max_caplen, struct np_packet_ring **out)
{
    *out = NULL;
    if (max_caplen == 0 || max_caplen > MAX_CAPLEN || ring_bytes > MAX_RING_BYTES) {
        return -EINVAL;
    }
    /* Two of the largest records: one may need the whole tail end skipped. */
    uint64_t min = 2 * rec_size(max_caplen);
    uint64_t size = 4096;
    while (size < ring_bytes || size < min) {
        size <<= 1;
    }
    struct np_packet_ring *r = aligned_alloc(CACHE_LINE, sizeof *r);
    if (!r) {
        return -ENOMEM;
    }
    memset(r, 0, sizeof *r);
    int rc = -ENOMEM;
    r->buf = aligned_alloc(CACHE_LINE, (size_t)size);
    if (!r->buf) {
        goto out_free;
    }
    r->size = size;
    r->mask = size - 1;
    r->wake_free = size / 2 > min ? size / 2 : min;
    r->wake_fill = size / 4;
    r->max_caplen = max_caplen;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->p_waiting, false);
    atomic_init(&r->c_waiting, false);
    atomic_init(&r->closed, false);
    if ((rc = uv_mutex_init(&r->lock)) != 0) {
        goto out_free_buf;
    }
    if ((rc = uv_cond_init(&r->p_cond)) != 0) {
        goto out_destroy_lock;
    }
    if ((rc = uv_cond_init(&r->c_cond)) != 0) {
        goto out_destroy_p_cond;
    }
    *out = r;
    return 0;
out_destroy_p_cond:
    uv_cond_destroy(&r->p_cond);
out_destroy_lock:
    uv_mutex_destroy(&r->lock);
out_free_buf:
    free(r->buf);
out_free:
    free(r);
    return rc;
}

void np_packet_ring_free(struct np_packet_ring *r)
{
    if (!r) {
        return;
    }
    uv_cond_destroy(&r->c_cond);
    uv_cond_destroy(&r->p_cond);
    uv_mutex_destroy(&r->lock);
    free(r->buf);
    free(r);
}

/* The per-frame paths (put, get) stay short; what runs once per batch or when
 * a side must wait is kept out of line. */
#define SLOW_PATH __attribute__((noinline, cold))

static void wake(struct np_packet_ring *r, uv_cond_t *cond)
{
    uv_mutex_lock(&r->lock);
    uv_cond_signal(cond);
    uv_mutex_unlock(&r->lock);
}

/* Producer: makes every record written so far visible. A sleeping consumer
 * (it has given back all it took: tail is its position) is woken once
 * wake_fill bytes wait for it; the producer's own sleep and the end wake it
 * regardless. */
static SLOW_PATH void publish(struct np_packet_ring *r)
{
    r->p_count = 0;
    atomic_store(&r->head, r->p_pos);
    if (atomic_load(&r->c_waiting) && r->p_pos - atomic_load(&r->tail) >= r->wake_fill) {
        wake(r, &r->c_cond);
    }
}

static bool has_space(const struct np_packet_ring *r, uint64_t tail, uint64_t need)
{
    return r->p_pos + need - tail <= r->size;
}

/* Producer: returns when need bytes are free at p_pos. When the ring is full
 * it publishes everything (the consumer may be waiting for it) and sleeps
 * until wake_free bytes are free, so that it is woken once per part of the
 * ring, not once per record. */
static void wait_space(struct np_packet_ring *r, uint64_t need)
{
    r->p_tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (has_space(r, r->p_tail, need)) {
        return;
    }
    publish(r);
    uint64_t want = need > r->wake_free ? need : r->wake_free;
    atomic_store(&r->p_waiting, true); /* after the head: see wait_data */
    if (atomic_load(&r->c_waiting)) {
        wake(r, &r->c_cond);
    }
    uv_mutex_lock(&r->lock);
    while (!has_space(r, r->p_tail = atomic_load(&r->tail), want)) {
        uv_cond_wait(&r->p_cond, &r->lock);
    }
    uv_mutex_unlock(&r->lock);
    atomic_store(&r->p_waiting, false);
}

/* Producer: the offset in buf where a record of need bytes goes, when it
 * does not fit at p_pos as last seen: waits for space and, when the tail end
 * is too short, marks it skipped. */
static SLOW_PATH uint64_t make_room(struct np_packet_ring *r, uint64_t need)
{
    uint64_t off = r->p_pos & r->mask;
    uint64_t to_end = r->size - off; /* a multiple of REC_ALIGN: room for a skip record */
    uint64_t total = need <= to_end ? need : to_end + need;
    if (!has_space(r, r->p_tail, total)) {
        wait_space(r, total);
    }
    if (need > to_end) {
        struct np_packet_rec *skip = (struct np_packet_rec *)(void *)(r->buf + off);
        skip->caplen = REC_SKIP;
        r->p_pos += to_end;
        off = 0;
    }
    return off;
}

void np_packet_ring_put(struct np_packet_ring *r, uint64_t ts_us, const uint8_t *data,
                        uint32_t caplen, uint32_t wire_len)
{
    if (caplen > r->max_caplen) {
        caplen = r->max_caplen;
    }
    uint64_t need = rec_size(caplen);
    uint64_t off = r->p_pos & r->mask;
    if (need > r->size - off || !has_space(r, r->p_tail, need)) {
        off = make_room(r, need);
    }
    struct np_packet_rec *rec = (struct np_packet_rec *)(void *)(r->buf + off);
    rec->ts_us = ts_us;
    rec->caplen = caplen;
    rec->wire_len = wire_len;
    memcpy(rec->data, data, caplen);
    r->p_pos += need;
    if (++r->p_count == NP_PACKET_RING_BATCH) {
        publish(r);
    }
}

void np_packet_ring_close(struct np_packet_ring *r)
{
    publish(r);
    uv_mutex_lock(&r->lock);
    atomic_store(&r->closed, true);
    uv_cond_signal(&r->c_cond);
    uv_mutex_unlock(&r->lock);
}

/* Consumer: gives back the space of every record taken so far (the caller is
 * done with them: the last one is only borrowed until this call) and wakes a
 * producer waiting for that much. */
static SLOW_PATH void release(struct np_packet_ring *r)
{
    r->c_count = 0;
    atomic_store(&r->tail, r->c_pos);
    if (atomic_load(&r->p_waiting) &&
        r->size - (atomic_load(&r->head) - r->c_pos) >= r->wake_free) {
        wake(r, &r->p_cond);
    }
}

/* Consumer, ring empty: sleeps until wake_fill bytes are published, the
 * producer waits for space or is done. True when a record was published
 * past c_pos, false at the end. */
static SLOW_PATH bool wait_data(struct np_packet_ring *r)
{
    release(r);
    atomic_store(&r->c_waiting, true);
    uv_mutex_lock(&r->lock);
    for (;;) {
        /* The producer sets closed and p_waiting after publishing, so a
         * head read after them is at least that new. */
        bool closed = atomic_load(&r->closed);
        bool producer_waits = atomic_load(&r->p_waiting);
        r->c_head = atomic_load(&r->head);
        uint64_t fill = r->c_head - r->c_pos;
        if (closed || (producer_waits && fill > 0) || fill >= r->wake_fill) {
            break;
        }
        uv_cond_wait(&r->c_cond, &r->lock);
    }
    uv_mutex_unlock(&r->lock);
    atomic_store(&r->c_waiting, false);
    return r->c_head != r->c_pos;
}

/* Consumer: the next record when the fast path cannot say (a release is
 * due, nothing seen published, or a skip record); NULL at the end. */
static SLOW_PATH const struct np_packet_rec *get_slow(struct np_packet_ring *r)
{
    if (r->c_count >= NP_PACKET_RING_BATCH) {
        release(r);
    }
    for (;;) {
        if (r->c_pos == r->c_head) {
            r->c_head = atomic_load_explicit(&r->head, memory_order_acquire);
            if (r->c_pos == r->c_head && !wait_data(r)) {
                return NULL;
            }
        }
        uint64_t off = r->c_pos & r->mask;
        const struct np_packet_rec *rec = (const struct np_packet_rec *)(void *)(r->buf + off);
        if (rec->caplen == REC_SKIP) {
            r->c_pos += r->size - off;
            continue;
        }
        r->c_pos += rec_size(rec->caplen);
        r->c_count++;
        return rec;
    }
}

const struct np_packet_rec *np_packet_ring_get(struct np_packet_ring *r)
{
    if (r->c_pos == r->c_head || r->c_count >= NP_PACKET_RING_BATCH) {
        return get_slow(r);
    }
    const struct np_packet_rec *rec =
        (const struct np_packet_rec *)(void *)(r->buf + (r->c_pos & r->mask));
    if (rec->caplen == REC_SKIP) {
        return get_slow(r);
    }
    r->c_pos += rec_size(rec->caplen);
    r->c_count++;
    return rec;
}
