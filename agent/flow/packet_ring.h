/* packet_ring: a bounded single-producer / single-consumer queue of captured
 * frames between two threads (the offline capture's reader thread and the
 * thread that aggregates). Each record is a copy of one frame's capture
 * header (time, captured and wire length) and of its captured bytes, cut to
 * the ring's max_caplen; records take the space they need (16-byte header,
 * bytes rounded up to 16), so a ring of headers-only frames holds many more
 * than one of full frames.
 *
 * The producer publishes records in batches (NP_PACKET_RING_BATCH) and the
 * consumer gives space back in batches, so the two threads touch the shared
 * positions once per batch, not per frame. A producer finding the ring full
 * sleeps until half of it is free again; a consumer finding it empty sleeps
 * until a quarter of it is filled, the producer waits for space, or the end
 * (mutex and condition variable, only on these slow paths), so that a side
 * sleeps once per stretch of the ring, not once per frame. Pure: no libpcap,
 * no I/O. */
#ifndef NP_AGENT_FLOW_PACKET_RING_H
#define NP_AGENT_FLOW_PACKET_RING_H

#include <stddef.h>
#include <stdint.h>

/* Records per publication (producer) and per release (consumer). */
#define NP_PACKET_RING_BATCH 128

/* One frame as the consumer sees it. */
struct np_packet_rec {
    uint64_t ts_us;    /* capture time, wall clock, microseconds */
    uint32_t caplen;   /* bytes in data[]: the captured length, at most max_caplen */
    uint32_t wire_len; /* the frame's length on the wire */
    uint8_t data[];
};

struct np_packet_ring;

/* Allocates a ring of about ring_bytes (at most 1 GiB; rounded up to a power
 * of two, and to at least two records of max_caplen bytes) for frames cut to
 * max_caplen bytes (1 .. 1 MiB). Returns 0, -EINVAL, -ENOMEM or another
 * negative errno from the mutex and condition set-up; free with
 * np_packet_ring_free. Any thread. */
int np_packet_ring_new(size_t ring_bytes, uint32_t max_caplen, struct np_packet_ring **out);

/* Frees r (NULL is fine). Both threads must be done with it. */
void np_packet_ring_free(struct np_packet_ring *r);

/* Producer thread: copies one frame into the ring (the first
 * min(caplen, max_caplen) bytes of data, borrowed for the call). Blocks while
 * the ring is full. The consumer sees the frame at the latest after the batch
 * it belongs to is complete or np_packet_ring_close. */
void np_packet_ring_put(struct np_packet_ring *r, uint64_t ts_us, const uint8_t *data,
                        uint32_t caplen, uint32_t wire_len);

/* Producer thread: no more frames; publishes what is left and wakes the
 * consumer. Call once; put nothing afterwards. */
void np_packet_ring_close(struct np_packet_ring *r);

/* Consumer thread: the next frame, in the order they were put, or NULL when
 * the producer has closed the ring and every frame was taken. Blocks while
 * the ring is empty and open. The record is borrowed until the next call;
 * the consumer must keep calling until NULL (a producer may be waiting for
 * space). */
const struct np_packet_rec *np_packet_ring_get(struct np_packet_ring *r);

#endif
