/* packet_ring: every frame comes out once, in order, with its header and
 * bytes (cut to max_caplen), across two threads, through rings small enough
 * that both sides sleep many times and records keep skipping the tail end. */
#include "flow/packet_ring.h"

#include "check.h"

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* Frame i: its captured length, wire length and bytes, all from i, so the
 * consumer can tell a lost, repeated, reordered or torn frame. */
static uint32_t frame_caplen(uint64_t i, uint32_t spread)
{
    return (uint32_t)((i * 2654435761u) >> 7) % spread;
}

static uint8_t frame_byte(uint64_t i, uint32_t k)
{
    return (uint8_t)(i * 31u + k * 7u + (i >> 8));
}

struct run {
    struct np_packet_ring *ring;
    uint64_t frames;
    uint32_t max_caplen;
    uint32_t spread;  /* captured lengths 0 .. spread - 1 (above max_caplen: cut) */
    unsigned stall;   /* every stall-th frame one side yields (0: never) */
    bool slow_reader; /* yield in the consumer instead of the producer */
};

static void producer(void *arg)
{
    struct run *r = arg;
    uint8_t frame[2048];
    for (uint64_t i = 0; i < r->frames; i++) {
        uint32_t caplen = frame_caplen(i, r->spread);
        for (uint32_t k = 0; k < caplen; k++) {
            frame[k] = frame_byte(i, k);
        }
        np_packet_ring_put(r->ring, i, frame, caplen, caplen + 1000u);
        if (r->stall && !r->slow_reader && i % r->stall == 0) {
            sched_yield();
        }
    }
    np_packet_ring_close(r->ring);
}

/* Consumes until NULL; returns the number of frames that came out wrong. */
static uint64_t consume(struct run *r, uint64_t *count)
{
    uint64_t bad = 0, i = 0;
    const struct np_packet_rec *rec;
    while ((rec = np_packet_ring_get(r->ring)) != NULL) {
        uint32_t want = frame_caplen(i, r->spread);
        want = want < r->max_caplen ? want : r->max_caplen;
        bool ok = rec->ts_us == i && rec->caplen == want &&
                  rec->wire_len == frame_caplen(i, r->spread) + 1000u;
        for (uint32_t k = 0; ok && k < rec->caplen; k++) {
            ok = rec->data[k] == frame_byte(i, k);
        }
        if (!ok && bad++ < 5) {
            fprintf(stderr, "frame %llu: ts %llu caplen %u (want %u) wire %u\n",
                    (unsigned long long)i, (unsigned long long)rec->ts_us, rec->caplen, want,
                    rec->wire_len);
        }
        if (r->stall && r->slow_reader && i % r->stall == 0) {
            sched_yield();
        }
        i++;
    }
    *count = i;
    return bad;
}

static void two_threads(size_t ring_bytes, uint32_t max_caplen, uint32_t spread, uint64_t frames,
                        unsigned stall, bool slow_reader)
{
    struct run r = {.frames = frames,
                    .max_caplen = max_caplen,
                    .spread = spread,
                    .stall = stall,
                    .slow_reader = slow_reader};
    CHECK_INT(np_packet_ring_new(ring_bytes, max_caplen, &r.ring), 0);
    if (!r.ring) {
        return;
    }
    uv_thread_t t;
    CHECK_INT(uv_thread_create(&t, producer, &r), 0);
    uint64_t count = 0;
    CHECK_U64(consume(&r, &count), 0);
    CHECK_U64(count, frames);
    CHECK(np_packet_ring_get(r.ring) == NULL); /* the end stays the end */
    uv_thread_join(&t);
    np_packet_ring_free(r.ring);
}

/* One thread: fewer frames than the ring holds, then close; zero-length and
 * over-long frames included. */
static void test_one_thread(void)
{
    struct np_packet_ring *ring = NULL;
    CHECK_INT(np_packet_ring_new(0, 128, &ring), 0);
    uint8_t frame[300];
    for (unsigned k = 0; k < sizeof frame; k++) {
        frame[k] = (uint8_t)k;
    }
    const uint32_t caplens[] = {0, 1, 15, 16, 17, 127, 128, 129, 300};
    const unsigned n = sizeof caplens / sizeof caplens[0];
    for (unsigned i = 0; i < n; i++) {
        np_packet_ring_put(ring, 1000 + i, frame, caplens[i], 60000 + i);
    }
    np_packet_ring_close(ring);
    for (unsigned i = 0; i < n; i++) {
        const struct np_packet_rec *rec = np_packet_ring_get(ring);
        CHECK(rec != NULL);
        if (!rec) {
            break;
        }
        CHECK_U64(rec->ts_us, 1000 + i);
        CHECK_INT(rec->caplen, caplens[i] < 128 ? caplens[i] : 128);
        CHECK_INT(rec->wire_len, 60000 + i);
        CHECK(memcmp(rec->data, frame, rec->caplen) == 0);
    }
    CHECK(np_packet_ring_get(ring) == NULL);
    np_packet_ring_free(ring);
    np_packet_ring_free(NULL);
}

static void test_bad_args(void)
{
    struct np_packet_ring *ring = (struct np_packet_ring *)&ring;
    CHECK_INT(np_packet_ring_new(4096, 0, &ring), -EINVAL);
    CHECK(ring == NULL);
    CHECK_INT(np_packet_ring_new(4096, (1u << 20) + 1, &ring), -EINVAL);
    CHECK_INT(np_packet_ring_new(SIZE_MAX, 128, &ring), -EINVAL);
}

int main(void)
{
    test_one_thread();
    test_bad_args();
    /* The smallest ring: full and empty all the time, a skip every few frames. */
    two_threads(0, 128, 200, 100000, 0, false);
    /* Full frames (caplen up to 1514) cut to 1024 in a ring of four of them. */
    two_threads(0, 1024, 1515, 30000, 0, false);
    /* Records of up to half the ring: a full ring may hold less than the
     * consumer's wake-up fill. */
    two_threads(0, 2000, 2001, 20000, 0, false);
    /* Either side much slower than the other: the other one sleeps. */
    two_threads(64 * 1024, 128, 129, 100000, 64, false);
    two_threads(64 * 1024, 128, 129, 100000, 64, true);
    return check_failures ? 1 : 0;
}
