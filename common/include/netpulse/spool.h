/* spool: the agent's store-and-forward queue, an on-disk FIFO of encoded batches.
 *
 * A spool is a directory that holds:
 *   seg-<first seq, 16 hex digits>.spool  segment files: records appended in seq order;
 *   state                                 acknowledged seq, drop accounting (NP_SPOOL_STATE_BYTES);
 *   state.tmp                             only while the state file is being replaced.
 * A record is a NP_SPOOL_RECORD_OVERHEAD-byte header (magic, version, flags, payload
 * length, seq, created_ms, CRC-32 over the header fields and the payload; little-endian)
 * followed by the payload. Records are appended with write(); a segment is closed and a
 * new one started when the next record would take it over segment_bytes.
 *
 * Sequence numbers are the caller's (the agent's batch numbers): each append must carry
 * a seq greater than every seq the spool has held, acknowledged or dropped, and
 * np_spool_last_seq() says where to continue after a restart.
 *
 * Durability. With NP_SPOOL_FSYNC_ALWAYS a record is on disk (fdatasync) when
 * np_spool_append() returns 0. With NP_SPOOL_FSYNC_INTERVAL append syncs when
 * fsync_interval_ms have passed since the last sync, so the caller must call
 * np_spool_sync() from a timer for the last records of a burst. With
 * NP_SPOOL_FSYNC_NEVER only np_spool_sync() and np_spool_close() sync. A new segment
 * file is followed by an fsync of the directory (except with NEVER). The state file is
 * always replaced atomically (write temp, fsync, rename, fsync directory), whatever the
 * policy, so a power cut never brings acknowledged data back and last_seq never falls
 * below the acknowledged or dropped position. Records appended but not yet synced
 * (INTERVAL, NEVER) can be lost to a power cut, and np_spool_last_seq() then hands their
 * seqs out again: a receiver that dedups by seq must only have seen synced records.
 *
 * Recovery at open. Every record is checked (framing, CRC, seq increasing, seq within
 * the range its segment name allows). Bad bytes inside the data are skipped up to the
 * next valid record and counted in stats.corrupt_bytes; they are never returned as data.
 * Bad bytes at the end of the last segment with no valid record after them are what a
 * crash in the middle of an append leaves: they are cut off (ftruncate) and counted in
 * stats.truncated_bytes. Segments whose records are all acknowledged or dropped, or
 * that hold no valid record at all, are deleted.
 *
 * Disk bound (the exact guarantee). Whenever no np_spool_* call is running on the
 * spool, and after every crash once np_spool_open() has returned 0, the sum of st_size
 * of the segment files is <= max_bytes (unless deleting or truncating a file failed,
 * which the failing call reported), and the directory holds besides them only the
 * state file (NP_SPOOL_STATE_BYTES bytes, absent until the first ack or drop). So the
 * directory's files total at most max_bytes + NP_SPOOL_STATE_BYTES (plus as much again
 * for state.tmp while a call is replacing the state). To make room an append drops the
 * oldest segments, whole, including the one being written if needed (it is closed
 * first, and the new record starts a fresh segment); the records lost are accounted in
 * a struct np_spool_loss. So a drop never loses more than one segment beyond what the
 * new record needs, and the new record itself is never dropped.
 *
 * Memory: an index entry of 32 bytes per record held, built at open and kept up to date;
 * reads never rescan the files. Open reads every segment once.
 *
 * Threads: a spool is used by one thread at a time (the agent calls it from a libuv work
 * thread); calls block on disk I/O. Different spools are independent. One process at a
 * time may have a directory open: open takes an flock() on it.
 *
 * Nothing here logs, exits or aborts on input. */
#ifndef NP_COMMON_SPOOL_H
#define NP_COMMON_SPOOL_H

#include "netpulse/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NP_SPOOL_PAYLOAD_MAX (16u << 20) /* hard maximum of one record's payload */
#define NP_SPOOL_RECORD_OVERHEAD 32u     /* header bytes in front of each payload */
#define NP_SPOOL_STATE_BYTES 92u         /* size of the state file */
#define NP_SPOOL_MIN_BYTES 4096u         /* smallest max_bytes accepted */
#define NP_SPOOL_DEFAULT_MAX_BYTES (256u << 20)
#define NP_SPOOL_DEFAULT_SEGMENT_BYTES (4u << 20) /* upper end of the default, see opts */
#define NP_SPOOL_DEFAULT_INTERVAL_MS 100

enum np_spool_fsync {
    NP_SPOOL_FSYNC_ALWAYS,   /* fdatasync after every append, before it returns */
    NP_SPOOL_FSYNC_INTERVAL, /* fdatasync in append at most every fsync_interval_ms */
    NP_SPOOL_FSYNC_NEVER,    /* only np_spool_sync() and np_spool_close() */
};

/* Zero-initialised options are valid: 256 MiB, default segments, FSYNC_ALWAYS. */
struct np_spool_opts {
    uint64_t max_bytes;        /* bound on segment files; 0: NP_SPOOL_DEFAULT_MAX_BYTES;
                                  at least NP_SPOOL_MIN_BYTES */
    uint64_t segment_bytes;    /* roll size; 0: max_bytes / 16, at most 4 MiB; else at
                                  most max_bytes / 2 and 1 GiB */
    enum np_spool_fsync fsync; /* durability policy, see above */
    int64_t fsync_interval_ms; /* for FSYNC_INTERVAL; 0: NP_SPOOL_DEFAULT_INTERVAL_MS */
};

/* What was dropped to keep the bound, accumulated until np_spool_take_loss(). Every
 * dropped seq lies in [first_seq, last_seq]; the range can also cover seqs that were
 * acknowledged between two drops, batches is the exact count. bytes counts payload
 * bytes. from_ms and to_ms are the smallest and largest created_ms dropped. */
struct np_spool_loss {
    uint64_t first_seq, last_seq;
    uint64_t batches, bytes;
    int64_t from_ms, to_ms;
};

struct np_spool_stats {
    uint64_t batches;         /* records held and not acknowledged */
    uint64_t bytes;           /* st_size sum of the segment files: what max_bytes bounds */
    uint64_t segments;        /* segment files */
    uint64_t dropped_batches; /* dropped for space over the spool's life (persisted) */
    uint64_t dropped_bytes;   /* their payload bytes */
    uint64_t corrupt_bytes;   /* found bad since open: skipped at open or at read */
    uint64_t truncated_bytes; /* torn tail cut off at open */
    int64_t oldest_ms;        /* created_ms of the oldest unacknowledged record; 0 if none */
};

struct np_spool;

/* Opens the spool in dir, creating the directory (mode 0700; its parent must exist) if
 * missing, recovers it as described above and drops the oldest data if it holds more
 * than max_bytes (a smaller bound than last time). opts may be NULL for the defaults;
 * dir and opts are borrowed. On success *out is a spool the caller closes with
 * np_spool_close(); on error *out is NULL. Errors: -EINVAL (bad opts), -EBUSY (another
 * open spool has dir), NP_ECORRUPT (the state file failed its check: move it away to
 * reset the acknowledged position), NP_EVERSION (a record or the state file was written
 * by a newer format), -ENOMEM, other -errno from the file system. */
int np_spool_open(const char *dir, const struct np_spool_opts *opts, struct np_spool **out,
                  struct np_err *err);

/* Syncs unsynced appends (errors ignored: call np_spool_sync() first to see them),
 * closes and frees. Accepts NULL. */
void np_spool_close(struct np_spool *sp);

/* Appends one record. data (len bytes, may be NULL when len is 0) is borrowed and
 * copied. seq must be greater than np_spool_last_seq(). When the record does not fit
 * under max_bytes, the oldest segments are dropped first (see np_spool_take_loss()).
 * Returns 0 when the record is in the spool (and on disk with FSYNC_ALWAYS). On error
 * the record is not in the spool and the same seq may be appended again; drops done to
 * make room stay done. Errors: -EINVAL (seq not increasing, NULL data with len > 0),
 * NP_ETOOBIG (len over NP_SPOOL_PAYLOAD_MAX, or len + NP_SPOOL_RECORD_OVERHEAD over
 * max_bytes), -ENOMEM, -errno from write/fdatasync/open (e.g. -ENOSPC). */
int np_spool_append(struct np_spool *sp, uint64_t seq, int64_t created_ms, const void *data,
                    size_t len, struct np_err *err);

/* fdatasyncs what was appended since the last sync, whatever the policy. Errors: -errno. */
int np_spool_sync(struct np_spool *sp, struct np_err *err);

/* Reads the oldest record with seq > after_seq and seq > np_spool_acked_seq(): pass 0 to
 * start, then the seq just read, to walk the unacknowledged records oldest first. Cost:
 * a binary search in the index and two preads. On 0, *seq, *created_ms, *data and *len
 * are set and the caller frees *data with free() (never NULL, even for len 0). A record
 * that fails its check now is skipped (counted in stats.corrupt_bytes), never returned.
 * Errors: NP_ENODATA (no such record), -ENOMEM, -errno (e.g. -ENOENT when a segment was
 * removed behind the spool's back). On error the outputs are not touched. */
int np_spool_read(struct np_spool *sp, uint64_t after_seq, uint64_t *seq, int64_t *created_ms,
                  void **data, size_t *len, struct np_err *err);

/* Acknowledges every record with seq <= seq: persists the position in the state file
 * (two fsyncs, so when draining a backlog ack the highest of several batches at once),
 * then deletes the segments that hold only acknowledged records. An ack at or below the
 * current position is a no-op. Errors: -EINVAL (seq > np_spool_last_seq()), -errno from
 * writing the state (the position is unchanged) or from deleting a segment (the position
 * is already persisted and np_spool_acked_seq() shows it; the next open deletes the
 * leftover file). */
int np_spool_ack(struct np_spool *sp, uint64_t seq, struct np_err *err);

/* Highest seq the spool has held (appended, acknowledged or dropped); 0 for a new
 * spool. The next append must be above it. */
uint64_t np_spool_last_seq(const struct np_spool *sp);

/* Highest acknowledged seq; 0 if none. */
uint64_t np_spool_acked_seq(const struct np_spool *sp);

/* Fills *st (borrowed). Cost: one binary search per segment. */
void np_spool_stats(const struct np_spool *sp, struct np_spool_stats *st);

/* If data was dropped for space since the last call (in this process or before a restart:
 * the loss is persisted), copies the accumulated loss to *loss (borrowed), clears it and
 * returns true; else returns false and leaves *loss alone. Clearing is persisted best
 * effort: if that write fails the same loss may be reported again after a restart, never
 * forgotten. */
bool np_spool_take_loss(struct np_spool *sp, struct np_spool_loss *loss);

#endif
