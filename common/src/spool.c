#include "netpulse/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* Record header, little-endian:
 *   0 magic u32 "NPSR"   4 version u16   6 flags u16   8 payload length u32
 *  12 seq u64           20 created_ms i64             28 crc32 u32
 * The CRC covers bytes 0..27 and the payload, so a record is self-checking wherever it
 * is found (open resynchronises on it after damage). */
#define REC_MAGIC 0x5253504eu /* "NPSR" */
#define REC_VERSION 1u
#define HDR NP_SPOOL_RECORD_OVERHEAD
#define HDR_CRC_OFF 28u

/* State file, little-endian:
 *   0 magic u32 "NPST"  4 version u16  6 reserved u16  8 acked u64  16 dropped_through u64
 *  24 loss.first_seq  32 loss.last_seq  40 loss.batches  48 loss.bytes  56 loss.from_ms
 *  64 loss.to_ms  72 dropped_batches  80 dropped_bytes  88 crc32 u32 over 0..87 */
#define STATE_MAGIC 0x5453504eu /* "NPST" */
#define STATE_VERSION 1u
#define STATE_NAME "state"
#define STATE_TMP "state.tmp"

#define SEG_PREFIX "seg-"
#define SEG_SUFFIX ".spool"
#define SEG_NAME_LEN (sizeof SEG_PREFIX - 1 + 16 + sizeof SEG_SUFFIX - 1)
#define SEG_BYTES_MAX (UINT64_C(1) << 30)
#define SCAN_CHUNK 65536u

struct rec {
    uint64_t seq;
    int64_t created_ms;
    uint64_t off;
    uint32_t len;
};

struct seg {
    uint64_t name_seq; /* from the file name: <= every seq in it */
    uint64_t size;     /* bytes in the file, valid or not */
    bool tail_garbage; /* bad bytes after the last valid record: take no appends */
    struct rec *recs;
    size_t n, cap;
};

/* Everything the state file holds. */
struct state {
    uint64_t acked;
    uint64_t dropped_through; /* highest seq ever dropped */
    struct np_spool_loss loss;
    uint64_t dropped_batches, dropped_bytes;
};

struct np_spool {
    int dirfd; /* holds the flock */
    char *dir; /* for messages */
    uint64_t max_bytes, segment_bytes;
    enum np_spool_fsync fsync;
    int64_t interval_ms;

    struct seg *segs; /* oldest first */
    size_t nsegs, capsegs;
    uint64_t total_bytes; /* sum of segs[].size */
    uint64_t last_seq;
    struct state st;

    int wfd;           /* segs[nsegs - 1] opened for appends, or -1 */
    bool w_sealed;     /* segs[nsegs - 1] takes no more appends */
    bool w_dirty;      /* appended since the last fdatasync */
    int64_t synced_ms; /* monotonic time of the last fdatasync */
    int rfd;           /* cached read descriptor of segment rfd_name, or -1 */
    uint64_t rfd_name;

    uint64_t corrupt_bytes, truncated_bytes;
    unsigned char *scratch; /* payload buffer for checks at open */
    size_t scratch_cap;
};

static void put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint16_t get_u16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static uint32_t record_crc(const unsigned char *hdr, const void *payload, uint32_t len)
{
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, hdr, HDR_CRC_OFF);
    if (len > 0) {
        c = crc32(c, payload, len);
    }
    return (uint32_t)c;
}

static int64_t now_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void seg_name(char *buf, size_t cap, uint64_t seq)
{
    snprintf(buf, cap, SEG_PREFIX "%016" PRIx64 SEG_SUFFIX, seq);
}

/* Only names we write are ours: exactly 16 lower-case hex digits. */
static bool parse_seg_name(const char *name, uint64_t *seq)
{
    const size_t plen = sizeof SEG_PREFIX - 1;
    if (strlen(name) != SEG_NAME_LEN || strncmp(name, SEG_PREFIX, plen) != 0 ||
        strcmp(name + plen + 16, SEG_SUFFIX) != 0) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = plen; i < plen + 16; i++) {
        char c = name[i];
        unsigned d;
        if (c >= '0' && c <= '9') {
            d = (unsigned)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = (unsigned)(c - 'a' + 10);
        } else {
            return false;
        }
        v = (v << 4) | d;
    }
    *seq = v;
    return true;
}

/* Reads up to len bytes at off; returns the count (short only at end of file) or -errno. */
static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            break;
        }
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* Writes all of iov (modified); returns 0 or -errno. */
static int writev_full(int fd, struct iovec *iov, int iovcnt)
{
    while (iovcnt > 0) {
        ssize_t n = writev(fd, iov, iovcnt);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        size_t left = (size_t)n;
        while (iovcnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    return writev_full(fd, &iov, 1);
}

/* ---- state file ---- */

static void state_encode(const struct state *s, unsigned char *b)
{
    memset(b, 0, NP_SPOOL_STATE_BYTES);
    put_u32(b, STATE_MAGIC);
    put_u16(b + 4, STATE_VERSION);
    put_u64(b + 8, s->acked);
    put_u64(b + 16, s->dropped_through);
    put_u64(b + 24, s->loss.first_seq);
    put_u64(b + 32, s->loss.last_seq);
    put_u64(b + 40, s->loss.batches);
    put_u64(b + 48, s->loss.bytes);
    put_u64(b + 56, (uint64_t)s->loss.from_ms);
    put_u64(b + 64, (uint64_t)s->loss.to_ms);
    put_u64(b + 72, s->dropped_batches);
    put_u64(b + 80, s->dropped_bytes);
    put_u32(b + 88, (uint32_t)crc32(crc32(0L, Z_NULL, 0), b, 88));
}

/* Replaces the state file atomically. The fsyncs are unconditional: a state file lost
 * to a power cut would bring acknowledged data back, or move last_seq backwards once
 * every segment has been deleted. */
static int state_write(struct np_spool *sp, const struct state *s, struct np_err *err)
{
    unsigned char b[NP_SPOOL_STATE_BYTES];
    int rc;
    state_encode(s, b);
    int fd = openat(sp->dirfd, STATE_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        return np_err_set(err, rc, "spool: create %s/%s: %s", sp->dir, STATE_TMP, np_strerror(rc));
    }
    rc = write_full(fd, b, sizeof b);
    if (rc == 0 && fsync(fd) != 0) {
        rc = -errno;
    }
    if (close(fd) != 0 && rc == 0) {
        rc = -errno;
    }
    if (rc != 0) {
        np_err_set(err, rc, "spool: write %s/%s: %s", sp->dir, STATE_TMP, np_strerror(rc));
        goto out_unlink_tmp;
    }
    if (renameat(sp->dirfd, STATE_TMP, sp->dirfd, STATE_NAME) != 0) {
        rc = -errno;
        np_err_set(err, rc, "spool: rename %s/%s: %s", sp->dir, STATE_TMP, np_strerror(rc));
        goto out_unlink_tmp;
    }
    if (fsync(sp->dirfd) != 0) {
        rc = -errno;
        return np_err_set(err, rc, "spool: fsync dir=%s: %s", sp->dir, np_strerror(rc));
    }
    return 0;

out_unlink_tmp:
    unlinkat(sp->dirfd, STATE_TMP, 0);
    return rc;
}

static int state_load(struct np_spool *sp, struct np_err *err)
{
    unsigned char b[NP_SPOOL_STATE_BYTES + 1];
    int rc = 0;
    int fd = openat(sp->dirfd, STATE_NAME, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return 0; /* new spool, or nothing acknowledged or dropped yet */
        }
        rc = -errno;
        return np_err_set(err, rc, "spool: open %s/%s: %s", sp->dir, STATE_NAME, np_strerror(rc));
    }
    ssize_t n = pread_full(fd, b, sizeof b, 0);
    if (n < 0) {
        rc = (int)n;
        np_err_set(err, rc, "spool: read %s/%s: %s", sp->dir, STATE_NAME, np_strerror(rc));
        goto out_close;
    }
    if (n != NP_SPOOL_STATE_BYTES || get_u32(b) != STATE_MAGIC ||
        get_u32(b + 88) != (uint32_t)crc32(crc32(0L, Z_NULL, 0), b, 88)) {
        rc = np_err_set(err, NP_ECORRUPT,
                        "spool: state file %s/%s is corrupt (size=%zd); move it away to "
                        "reset the acknowledged position",
                        sp->dir, STATE_NAME, n);
        goto out_close;
    }
    if (get_u16(b + 4) != STATE_VERSION) {
        rc = np_err_set(err, NP_EVERSION, "spool: state file %s/%s has version %u, want %u",
                        sp->dir, STATE_NAME, get_u16(b + 4), STATE_VERSION);
        goto out_close;
    }
    sp->st.acked = get_u64(b + 8);
    sp->st.dropped_through = get_u64(b + 16);
    sp->st.loss.first_seq = get_u64(b + 24);
    sp->st.loss.last_seq = get_u64(b + 32);
    sp->st.loss.batches = get_u64(b + 40);
    sp->st.loss.bytes = get_u64(b + 48);
    sp->st.loss.from_ms = (int64_t)get_u64(b + 56);
    sp->st.loss.to_ms = (int64_t)get_u64(b + 64);
    sp->st.dropped_batches = get_u64(b + 72);
    sp->st.dropped_bytes = get_u64(b + 80);

out_close:
    close(fd);
    return rc;
}

/* ---- segments in memory ---- */

static struct seg *last_seg(struct np_spool *sp)
{
    return sp->nsegs ? &sp->segs[sp->nsegs - 1] : NULL;
}

static int seg_reserve(struct seg *s, size_t extra)
{
    if (s->n + extra <= s->cap) {
        return 0;
    }
    size_t cap = s->cap ? s->cap * 2 : 16;
    while (cap < s->n + extra) {
        cap *= 2;
    }
    struct rec *r = realloc(s->recs, cap * sizeof *r);
    if (!r) {
        return -ENOMEM;
    }
    s->recs = r;
    s->cap = cap;
    return 0;
}

static int segs_push(struct np_spool *sp, uint64_t name_seq, uint64_t size)
{
    if (sp->nsegs == sp->capsegs) {
        size_t cap = sp->capsegs ? sp->capsegs * 2 : 8;
        struct seg *s = realloc(sp->segs, cap * sizeof *s);
        if (!s) {
            return -ENOMEM;
        }
        sp->segs = s;
        sp->capsegs = cap;
    }
    sp->segs[sp->nsegs++] = (struct seg){.name_seq = name_seq, .size = size};
    return 0;
}

/* First index in s->recs with seq > key (s->n if none). */
static size_t seg_upper(const struct seg *s, uint64_t key)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->recs[mid].seq <= key) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Forgets segment i and deletes its file. Returns 0 or the -errno of unlink; the
 * segment is forgotten either way (its records are <= the acked or dropped position,
 * so open deletes a leftover file). */
static int seg_remove(struct np_spool *sp, size_t i, struct np_err *err)
{
    struct seg *s = &sp->segs[i];
    char name[SEG_NAME_LEN + 1];
    int rc = 0;
    seg_name(name, sizeof name, s->name_seq);
    if (i == sp->nsegs - 1 && sp->wfd >= 0) {
        close(sp->wfd);
        sp->wfd = -1;
        sp->w_dirty = false;
    }
    if (i == sp->nsegs - 1) {
        sp->w_sealed = false;
    }
    if (sp->rfd >= 0 && sp->rfd_name == s->name_seq) {
        close(sp->rfd);
        sp->rfd = -1;
    }
    if (unlinkat(sp->dirfd, name, 0) != 0 && errno != ENOENT) {
        rc = -errno;
        np_err_set(err, rc, "spool: unlink %s/%s: %s", sp->dir, name, np_strerror(rc));
    }
    sp->total_bytes -= s->size;
    free(s->recs);
    memmove(s, s + 1, (sp->nsegs - i - 1) * sizeof *s);
    sp->nsegs--;
    return rc;
}

/* The seq at or below which everything is gone: acknowledged or dropped. */
static uint64_t floor_seq(const struct np_spool *sp)
{
    return sp->st.acked > sp->st.dropped_through ? sp->st.acked : sp->st.dropped_through;
}

/* Deletes the oldest segments that hold nothing above the floor. Keeps an empty last
 * segment: it is the one being written. */
static int remove_consumed(struct np_spool *sp, struct np_err *err)
{
    int rc = 0;
    uint64_t fl = floor_seq(sp);
    while (sp->nsegs > 0) {
        struct seg *s = &sp->segs[0];
        bool consumed = s->n ? s->recs[s->n - 1].seq <= fl : sp->nsegs > 1;
        if (!consumed) {
            break;
        }
        int r = seg_remove(sp, 0, err);
        if (r != 0 && rc == 0) {
            rc = r;
        }
    }
    return rc;
}

/* ---- open: scanning and recovery ---- */

enum { REC_OK, REC_BAD, REC_NEWER };

static int scratch_reserve(struct np_spool *sp, size_t n)
{
    if (n <= sp->scratch_cap) {
        return 0;
    }
    unsigned char *p = realloc(sp->scratch, n);
    if (!p) {
        return -ENOMEM;
    }
    sp->scratch = p;
    sp->scratch_cap = n;
    return 0;
}

/* Checks the record at off of a file of size bytes: REC_OK (and *out filled), REC_BAD,
 * REC_NEWER (intact but of a version we do not know), or -errno. */
static int check_record_at(struct np_spool *sp, int fd, uint64_t off, uint64_t size,
                           struct rec *out)
{
    unsigned char h[HDR];
    if (size - off < HDR) {
        return REC_BAD;
    }
    ssize_t n = pread_full(fd, h, HDR, off);
    if (n < 0) {
        return (int)n;
    }
    if ((size_t)n < HDR || get_u32(h) != REC_MAGIC) {
        return REC_BAD;
    }
    uint32_t len = get_u32(h + 8);
    if (len > NP_SPOOL_PAYLOAD_MAX || size - off - HDR < len) {
        return REC_BAD;
    }
    int rc = scratch_reserve(sp, len);
    if (rc != 0) {
        return rc;
    }
    n = pread_full(fd, sp->scratch, len, off + HDR);
    if (n < 0) {
        return (int)n;
    }
    if ((size_t)n < len || record_crc(h, sp->scratch, len) != get_u32(h + HDR_CRC_OFF)) {
        return REC_BAD;
    }
    if (get_u16(h + 4) != REC_VERSION || get_u16(h + 6) != 0) {
        return REC_NEWER;
    }
    *out = (struct rec){
        .seq = get_u64(h + 12), .created_ms = (int64_t)get_u64(h + 20), .off = off, .len = len};
    return REC_OK;
}

static bool seq_fits(const struct rec *r, uint64_t prev, uint64_t lo, uint64_t limit)
{
    return r->seq > prev && r->seq >= lo && r->seq < limit;
}

/* Looks for the first valid record at or after from whose seq fits; sets *found and
 * returns 1, returns 0 if there is none, or -errno. Reads the file in chunks; only
 * positions holding the magic are checked further. */
static int find_next_record(struct np_spool *sp, int fd, unsigned char *buf, uint64_t from,
                            uint64_t size, uint64_t prev, uint64_t lo, uint64_t limit,
                            uint64_t *found)
{
    uint64_t pos = from;
    while (pos < size && size - pos >= HDR) {
        size_t want = size - pos < SCAN_CHUNK ? (size_t)(size - pos) : SCAN_CHUNK;
        ssize_t n = pread_full(fd, buf, want, pos);
        if (n < 0) {
            return (int)n;
        }
        if ((size_t)n < HDR) {
            return 0;
        }
        for (size_t i = 0; i + 4 <= (size_t)n; i++) {
            if (get_u32(buf + i) != REC_MAGIC) {
                continue;
            }
            struct rec r;
            int rc = check_record_at(sp, fd, pos + i, size, &r);
            if (rc < 0) {
                return rc;
            }
            if (rc == REC_OK && seq_fits(&r, prev, lo, limit)) {
                *found = pos + i;
                return 1;
            }
        }
        pos += (uint64_t)n - 3; /* a magic may straddle the chunk boundary */
    }
    return 0;
}

/* Scans segment i, whose records must have seqs in [name, limit). Fills its index,
 * skips bad stretches, and cuts a bad tail off the last segment. */
static int scan_segment(struct np_spool *sp, size_t i, bool is_last, uint64_t limit,
                        unsigned char *buf, struct np_err *err)
{
    struct seg *s = &sp->segs[i];
    char name[SEG_NAME_LEN + 1];
    int rc = 0;
    seg_name(name, sizeof name, s->name_seq);
    int fd = openat(sp->dirfd, name, (is_last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        return np_err_set(err, rc, "spool: open %s/%s: %s", sp->dir, name, np_strerror(rc));
    }
    struct stat stb;
    if (fstat(fd, &stb) != 0) {
        rc = -errno;
        np_err_set(err, rc, "spool: stat %s/%s: %s", sp->dir, name, np_strerror(rc));
        goto out_close;
    }
    uint64_t size = (uint64_t)stb.st_size;
    uint64_t off = 0;
    while (off < size) {
        struct rec r;
        rc = check_record_at(sp, fd, off, size, &r);
        if (rc < 0) {
            np_err_set(err, rc, "spool: read %s/%s: %s", sp->dir, name, np_strerror(rc));
            goto out_close;
        }
        if (rc == REC_NEWER) {
            rc = np_err_set(err, NP_EVERSION,
                            "spool: %s/%s offset=%" PRIu64 " holds a record of a newer format",
                            sp->dir, name, off);
            goto out_close;
        }
        if (rc == REC_OK && seq_fits(&r, sp->last_seq, s->name_seq, limit)) {
            rc = seg_reserve(s, 1);
            if (rc != 0) {
                np_err_set(err, rc, "spool: out of memory indexing %s/%s", sp->dir, name);
                goto out_close;
            }
            s->recs[s->n++] = r;
            sp->last_seq = r.seq;
            off += HDR + r.len;
            continue;
        }
        uint64_t next = 0;
        rc = find_next_record(sp, fd, buf, off + 1, size, sp->last_seq, s->name_seq, limit, &next);
        if (rc < 0) {
            np_err_set(err, rc, "spool: read %s/%s: %s", sp->dir, name, np_strerror(rc));
            goto out_close;
        }
        if (rc == 1) {
            sp->corrupt_bytes += next - off;
            off = next;
            continue;
        }
        if (is_last) {
            /* Nothing valid follows: the remains of an append cut short by a crash. */
            if (ftruncate(fd, (off_t)off) != 0 || fsync(fd) != 0) {
                rc = -errno;
                np_err_set(err, rc, "spool: truncate %s/%s: %s", sp->dir, name, np_strerror(rc));
                goto out_close;
            }
            sp->truncated_bytes += size - off;
            size = off;
        } else {
            sp->corrupt_bytes += size - off;
            s->tail_garbage = true;
        }
        break;
    }
    rc = 0;
    s->size = size;

out_close:
    close(fd);
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Collects the segment names in the directory, sorted; deletes empty ones. */
static int list_segments(struct np_spool *sp, uint64_t **out, size_t *count, struct np_err *err)
{
    uint64_t *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    int fd = openat(sp->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        return np_err_set(err, rc, "spool: open dir=%s: %s", sp->dir, np_strerror(rc));
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        rc = -errno;
        close(fd);
        return np_err_set(err, rc, "spool: open dir=%s: %s", sp->dir, np_strerror(rc));
    }
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno != 0) {
                rc = -errno;
                np_err_set(err, rc, "spool: read dir=%s: %s", sp->dir, np_strerror(rc));
                goto out_free;
            }
            break;
        }
        uint64_t seq;
        if (!parse_seg_name(de->d_name, &seq)) {
            continue;
        }
        struct stat stb;
        if (fstatat(sp->dirfd, de->d_name, &stb, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = -errno;
            np_err_set(err, rc, "spool: stat %s/%s: %s", sp->dir, de->d_name, np_strerror(rc));
            goto out_free;
        }
        if (!S_ISREG(stb.st_mode)) {
            continue;
        }
        if (stb.st_size == 0) {
            /* Created just before a crash, before its first record was written. */
            unlinkat(sp->dirfd, de->d_name, 0);
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            uint64_t *nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                rc = np_err_set(err, -ENOMEM, "spool: out of memory listing dir=%s", sp->dir);
                goto out_free;
            }
            v = nv;
            cap = ncap;
        }
        v[n++] = seq;
    }
    closedir(d);
    if (n > 1) {
        qsort(v, n, sizeof *v, cmp_u64);
    }
    *out = v;
    *count = n;
    return 0;

out_free:
    closedir(d);
    free(v);
    return rc;
}

/* Adds the records lost when segment 0 goes to the state in *st; returns their count. */
static size_t account_drop(const struct np_spool *sp, struct state *st)
{
    const struct seg *s = &sp->segs[0];
    size_t first = seg_upper(s, st->acked);
    for (size_t k = first; k < s->n; k++) {
        const struct rec *r = &s->recs[k];
        struct np_spool_loss *l = &st->loss;
        if (l->batches == 0) {
            *l = (struct np_spool_loss){.first_seq = r->seq,
                                        .last_seq = r->seq,
                                        .from_ms = r->created_ms,
                                        .to_ms = r->created_ms};
        }
        if (r->seq < l->first_seq) {
            l->first_seq = r->seq;
        }
        if (r->seq > l->last_seq) {
            l->last_seq = r->seq;
        }
        if (r->created_ms < l->from_ms) {
            l->from_ms = r->created_ms;
        }
        if (r->created_ms > l->to_ms) {
            l->to_ms = r->created_ms;
        }
        l->batches++;
        l->bytes += r->len;
        st->dropped_batches++;
        st->dropped_bytes += r->len;
        if (r->seq > st->dropped_through) {
            st->dropped_through = r->seq;
        }
    }
    return s->n - first;
}

/* Drops segment 0 for space: the loss is persisted before the file goes, so a crash in
 * between leaves a segment below dropped_through, which open deletes. */
static int drop_oldest(struct np_spool *sp, struct np_err *err)
{
    if (sp->nsegs == 0 || !sp->segs) {
        return 0;
    }
    struct state st = sp->st;
    if (account_drop(sp, &st) == 0) {
        return seg_remove(sp, 0, err);
    }
    int rc = state_write(sp, &st, err);
    if (rc == -ENOSPC || rc == -EDQUOT) {
        /* A full file system has no block for the new state file until the segment is
         * gone: drop first, then persist. Until that write succeeds the loss lives only
         * in memory, so a crash in this window forgets it; refusing to drop instead
         * would wedge the spool until an ack. */
        sp->st = st;
        rc = seg_remove(sp, 0, err);
        if (rc == 0) {
            rc = state_write(sp, &st, err);
        }
        return rc;
    }
    if (rc != 0) {
        return rc;
    }
    sp->st = st;
    return seg_remove(sp, 0, err);
}

/* Drops the oldest segments until need more bytes fit under max_bytes. *roll says whether
 * the last segment will be closed anyway; if it is the only one left and still in the
 * way, it is closed (set *roll) so it can go too. */
static int make_room(struct np_spool *sp, uint64_t need, bool *roll, struct np_err *err)
{
    while (sp->total_bytes + need > sp->max_bytes && sp->nsegs > 0) {
        if (sp->nsegs == 1 && !*roll) {
            *roll = true;
            continue;
        }
        int rc = drop_oldest(sp, err);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int resolve_opts(const struct np_spool_opts *o, struct np_spool *sp, struct np_err *err)
{
    struct np_spool_opts z = {0};
    if (!o) {
        o = &z;
    }
    sp->max_bytes = o->max_bytes ? o->max_bytes : NP_SPOOL_DEFAULT_MAX_BYTES;
    if (sp->max_bytes < NP_SPOOL_MIN_BYTES) {
        return np_err_set(err, -EINVAL, "spool: max_bytes=%" PRIu64 " is below %u", sp->max_bytes,
                          NP_SPOOL_MIN_BYTES);
    }
    if (o->segment_bytes) {
        sp->segment_bytes = o->segment_bytes;
        if (sp->segment_bytes > sp->max_bytes / 2 || sp->segment_bytes > SEG_BYTES_MAX) {
            return np_err_set(err, -EINVAL,
                              "spool: segment_bytes=%" PRIu64 " is over max_bytes/2=%" PRIu64
                              " or 1 GiB",
                              sp->segment_bytes, sp->max_bytes / 2);
        }
    } else {
        sp->segment_bytes = sp->max_bytes / 16;
        if (sp->segment_bytes > NP_SPOOL_DEFAULT_SEGMENT_BYTES) {
            sp->segment_bytes = NP_SPOOL_DEFAULT_SEGMENT_BYTES;
        }
    }
    if (o->fsync != NP_SPOOL_FSYNC_ALWAYS && o->fsync != NP_SPOOL_FSYNC_INTERVAL &&
        o->fsync != NP_SPOOL_FSYNC_NEVER) {
        return np_err_set(err, -EINVAL, "spool: unknown fsync policy %d", (int)o->fsync);
    }
    sp->fsync = o->fsync;
    if (o->fsync_interval_ms < 0) {
        return np_err_set(err, -EINVAL, "spool: fsync_interval_ms=%" PRId64 " is negative",
                          o->fsync_interval_ms);
    }
    sp->interval_ms = o->fsync_interval_ms ? o->fsync_interval_ms : NP_SPOOL_DEFAULT_INTERVAL_MS;
    return 0;
}

/* Scans the listed segments in order and builds the index. */
static int load_segments(struct np_spool *sp, struct np_err *err)
{
    uint64_t *names = NULL;
    size_t n = 0;
    unsigned char *buf = NULL;
    int rc = list_segments(sp, &names, &n, err);
    if (rc != 0) {
        return rc;
    }
    buf = malloc(SCAN_CHUNK);
    if (!buf) {
        rc = np_err_set(err, -ENOMEM, "spool: out of memory");
        goto out_free;
    }
    uint64_t fl = floor_seq(sp);
    for (size_t i = 0; i < n; i++) {
        char name[SEG_NAME_LEN + 1];
        seg_name(name, sizeof name, names[i]);
        /* Every seq in segment i is below the next segment's name: if that is at most
         * floor + 1, the whole segment is consumed and need not be read. */
        if (i + 1 < n && names[i + 1] <= fl + 1 && fl != UINT64_MAX) {
            unlinkat(sp->dirfd, name, 0);
            continue;
        }
        rc = segs_push(sp, names[i], 0);
        if (rc != 0) {
            np_err_set(err, rc, "spool: out of memory");
            goto out_free;
        }
        bool is_last = i + 1 == n;
        rc =
            scan_segment(sp, sp->nsegs - 1, is_last, is_last ? UINT64_MAX : names[i + 1], buf, err);
        if (rc != 0) {
            goto out_free;
        }
        struct seg *s = last_seg(sp);
        sp->total_bytes += s->size;
        if (s->n == 0) {
            /* All garbage (counted above) or truncated to nothing. */
            seg_remove(sp, sp->nsegs - 1, NULL);
        }
    }
    rc = 0;

out_free:
    free(buf);
    free(names);
    return rc;
}

int np_spool_open(const char *dir, const struct np_spool_opts *opts, struct np_spool **out,
                  struct np_err *err)
{
    int rc;
    if (!out) {
        return np_err_set(err, -EINVAL, "spool: open without out");
    }
    *out = NULL;
    if (!dir || !*dir) {
        return np_err_set(err, -EINVAL, "spool: empty directory name");
    }
    struct np_spool *sp = calloc(1, sizeof *sp);
    if (!sp) {
        return np_err_set(err, -ENOMEM, "spool: out of memory");
    }
    sp->dirfd = sp->wfd = sp->rfd = -1;
    rc = resolve_opts(opts, sp, err);
    if (rc != 0) {
        goto out_free;
    }
    sp->dir = strdup(dir);
    if (!sp->dir) {
        rc = np_err_set(err, -ENOMEM, "spool: out of memory");
        goto out_free;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        rc = -errno;
        np_err_set(err, rc, "spool: mkdir dir=%s: %s", dir, np_strerror(rc));
        goto out_free;
    }
    sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sp->dirfd < 0) {
        rc = -errno;
        np_err_set(err, rc, "spool: open dir=%s: %s", dir, np_strerror(rc));
        goto out_free;
    }
    if (flock(sp->dirfd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        np_err_set(err, rc, "spool: lock dir=%s: %s", dir,
                   rc == -EBUSY ? "in use by another spool" : np_strerror(rc));
        goto out_close_dir;
    }
    unlinkat(sp->dirfd, STATE_TMP, 0); /* left by a crash while replacing the state */
    rc = state_load(sp, err);
    if (rc != 0) {
        goto out_close_dir;
    }
    rc = load_segments(sp, err);
    if (rc != 0) {
        goto out_free_segs;
    }
    remove_consumed(sp, NULL); /* a failure here is retried by the next ack */
    struct seg *ls = last_seg(sp);
    sp->w_sealed = ls && ls->tail_garbage;
    if (sp->last_seq < floor_seq(sp)) {
        sp->last_seq = floor_seq(sp);
    }
    bool roll = true; /* nothing is being written yet: every segment may go */
    rc = make_room(sp, 0, &roll, err);
    if (rc != 0) {
        goto out_free_segs;
    }
    sp->synced_ms = now_mono_ms();
    free(sp->scratch);
    sp->scratch = NULL;
    sp->scratch_cap = 0;
    *out = sp;
    return 0;

out_free_segs:
    for (size_t i = 0; i < sp->nsegs; i++) {
        free(sp->segs[i].recs);
    }
    free(sp->segs);
    free(sp->scratch);
out_close_dir:
    close(sp->dirfd);
out_free:
    free(sp->dir);
    free(sp);
    return rc;
}

void np_spool_close(struct np_spool *sp)
{
    if (!sp) {
        return;
    }
    if (sp->wfd >= 0) {
        if (sp->w_dirty) {
            fdatasync(sp->wfd);
        }
        close(sp->wfd);
    }
    if (sp->rfd >= 0) {
        close(sp->rfd);
    }
    for (size_t i = 0; i < sp->nsegs; i++) {
        free(sp->segs[i].recs);
    }
    free(sp->segs);
    free(sp->scratch);
    close(sp->dirfd); /* releases the flock */
    free(sp->dir);
    free(sp);
}

/* ---- appending ---- */

static int sync_write_fd(struct np_spool *sp, struct np_err *err)
{
    if (sp->wfd < 0 || !sp->w_dirty) {
        return 0;
    }
    if (fdatasync(sp->wfd) != 0) {
        int rc = -errno;
        char name[SEG_NAME_LEN + 1];
        seg_name(name, sizeof name, last_seg(sp)->name_seq);
        return np_err_set(err, rc, "spool: fdatasync %s/%s: %s", sp->dir, name, np_strerror(rc));
    }
    sp->w_dirty = false;
    sp->synced_ms = now_mono_ms();
    return 0;
}

/* Closes the last segment and starts seg-<seq>. */
static int roll_segment(struct np_spool *sp, uint64_t seq, struct np_err *err)
{
    char name[SEG_NAME_LEN + 1];
    int rc = 0;
    if (sp->wfd >= 0) {
        if (sp->fsync != NP_SPOOL_FSYNC_NEVER) {
            rc = sync_write_fd(sp, err);
            if (rc != 0) {
                return rc;
            }
        }
        close(sp->wfd);
        sp->wfd = -1;
        sp->w_dirty = false;
    }
    struct seg *ls = last_seg(sp);
    if (ls && ls->size == 0) {
        /* Left empty by a failed append; its name may be the one we want now. */
        rc = seg_remove(sp, sp->nsegs - 1, err);
        if (rc != 0) {
            return rc;
        }
    }
    seg_name(name, sizeof name, seq);
    int fd = openat(sp->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        return np_err_set(err, rc, "spool: create %s/%s: %s", sp->dir, name, np_strerror(rc));
    }
    if (sp->fsync != NP_SPOOL_FSYNC_NEVER && fsync(sp->dirfd) != 0) {
        rc = -errno;
        np_err_set(err, rc, "spool: fsync dir=%s: %s", sp->dir, np_strerror(rc));
        goto out_unlink;
    }
    rc = segs_push(sp, seq, 0);
    if (rc != 0) {
        np_err_set(err, rc, "spool: out of memory");
        goto out_unlink;
    }
    sp->wfd = fd;
    sp->w_sealed = false;
    sp->w_dirty = false;
    return 0;

out_unlink:
    close(fd);
    unlinkat(sp->dirfd, name, 0);
    return rc;
}

static int open_write_fd(struct np_spool *sp, struct np_err *err)
{
    char name[SEG_NAME_LEN + 1];
    if (sp->wfd >= 0) {
        return 0;
    }
    seg_name(name, sizeof name, last_seg(sp)->name_seq);
    sp->wfd = openat(sp->dirfd, name, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (sp->wfd < 0) {
        int rc = -errno;
        return np_err_set(err, rc, "spool: open %s/%s: %s", sp->dir, name, np_strerror(rc));
    }
    return 0;
}

/* Undoes a failed append: the segment goes back to old_size, or, if that cannot be
 * made sure, takes no more appends (open will skip whatever is left there). */
static void undo_append(struct np_spool *sp, uint64_t old_size, bool seal)
{
    if (ftruncate(sp->wfd, (off_t)old_size) != 0 || seal) {
        /* Closed without another fdatasync: one that failed once says nothing more. */
        close(sp->wfd);
        sp->wfd = -1;
        sp->w_dirty = false;
        sp->w_sealed = true;
    }
}

int np_spool_append(struct np_spool *sp, uint64_t seq, int64_t created_ms, const void *data,
                    size_t len, struct np_err *err)
{
    int rc;
    if (!sp || (!data && len > 0)) {
        return np_err_set(err, -EINVAL, "spool: append without spool or data");
    }
    if (seq <= sp->last_seq) {
        return np_err_set(err, -EINVAL, "spool: seq=%" PRIu64 " is not after last_seq=%" PRIu64,
                          seq, sp->last_seq);
    }
    if (len > NP_SPOOL_PAYLOAD_MAX || HDR + (uint64_t)len > sp->max_bytes) {
        return np_err_set(err, NP_ETOOBIG,
                          "spool: record of %zu bytes over the limit (payload max %u, "
                          "max_bytes=%" PRIu64 ")",
                          len, NP_SPOOL_PAYLOAD_MAX, sp->max_bytes);
    }
    uint64_t rec_bytes = HDR + (uint64_t)len;
    struct seg *ls = last_seg(sp);
    bool roll = !ls || sp->w_sealed || (ls->size > 0 && ls->size + rec_bytes > sp->segment_bytes);
    rc = make_room(sp, rec_bytes, &roll, err);
    if (rc != 0) {
        return rc;
    }
    rc = roll || sp->nsegs == 0 ? roll_segment(sp, seq, err) : open_write_fd(sp, err);
    if (rc != 0) {
        return rc;
    }
    ls = last_seg(sp);
    rc = seg_reserve(ls, 1);
    if (rc != 0) {
        return np_err_set(err, rc, "spool: out of memory");
    }

    unsigned char h[HDR];
    memset(h, 0, sizeof h);
    put_u32(h, REC_MAGIC);
    put_u16(h + 4, REC_VERSION);
    put_u32(h + 8, (uint32_t)len);
    put_u64(h + 12, seq);
    put_u64(h + 20, (uint64_t)created_ms);
    put_u32(h + HDR_CRC_OFF, record_crc(h, data, (uint32_t)len));
    struct iovec iov[2] = {{.iov_base = h, .iov_len = HDR},
                           {.iov_base = (void *)data, .iov_len = len}};
    uint64_t old_size = ls->size;
    rc = writev_full(sp->wfd, iov, len > 0 ? 2 : 1);
    if (rc != 0) {
        undo_append(sp, old_size, false);
        char name[SEG_NAME_LEN + 1];
        seg_name(name, sizeof name, ls->name_seq);
        return np_err_set(err, rc, "spool: write %s/%s: %s", sp->dir, name, np_strerror(rc));
    }
    sp->w_dirty = true;
    if (sp->fsync == NP_SPOOL_FSYNC_ALWAYS || (sp->fsync == NP_SPOOL_FSYNC_INTERVAL &&
                                               now_mono_ms() - sp->synced_ms >= sp->interval_ms)) {
        rc = sync_write_fd(sp, err);
        if (rc != 0) {
            /* After a failed fdatasync the page cache state is unknown: take the record
             * back and write nothing more to this file. */
            undo_append(sp, old_size, true);
            return rc;
        }
    }
    ls->recs[ls->n++] =
        (struct rec){.seq = seq, .created_ms = created_ms, .off = old_size, .len = (uint32_t)len};
    ls->size += rec_bytes;
    sp->total_bytes += rec_bytes;
    sp->last_seq = seq;
    return 0;
}

int np_spool_sync(struct np_spool *sp, struct np_err *err)
{
    if (!sp) {
        return np_err_set(err, -EINVAL, "spool: sync without spool");
    }
    return sync_write_fd(sp, err);
}

/* ---- reading ---- */

/* Finds the first record with seq > key: segment *si, record *ri. */
static bool locate(const struct np_spool *sp, uint64_t key, size_t *si, size_t *ri)
{
    if (key == UINT64_MAX) {
        return false;
    }
    /* The last segment whose name is <= key + 1 is the first that can hold key + 1:
     * names are <= the seqs in their segment and above those of earlier segments. */
    size_t lo = 0, hi = sp->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sp->segs[mid].name_seq <= key + 1) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    for (size_t i = lo ? lo - 1 : 0; i < sp->nsegs; i++) {
        size_t r = seg_upper(&sp->segs[i], key);
        if (r < sp->segs[i].n) {
            *si = i;
            *ri = r;
            return true;
        }
    }
    return false;
}

static int read_fd(struct np_spool *sp, uint64_t name_seq, struct np_err *err)
{
    char name[SEG_NAME_LEN + 1];
    if (sp->rfd >= 0 && sp->rfd_name == name_seq) {
        return sp->rfd;
    }
    if (sp->rfd >= 0) {
        close(sp->rfd);
        sp->rfd = -1;
    }
    seg_name(name, sizeof name, name_seq);
    int fd = openat(sp->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        return np_err_set(err, rc, "spool: open %s/%s: %s", sp->dir, name, np_strerror(rc));
    }
    sp->rfd = fd;
    sp->rfd_name = name_seq;
    return fd;
}

int np_spool_read(struct np_spool *sp, uint64_t after_seq, uint64_t *seq, int64_t *created_ms,
                  void **data, size_t *len, struct np_err *err)
{
    if (!sp || !seq || !created_ms || !data || !len) {
        return np_err_set(err, -EINVAL, "spool: read with a NULL argument");
    }
    uint64_t key = after_seq > sp->st.acked ? after_seq : sp->st.acked;
    size_t si, ri;
    while (locate(sp, key, &si, &ri)) {
        struct seg *s = &sp->segs[si];
        struct rec r = s->recs[ri];
        int fd = read_fd(sp, s->name_seq, err);
        if (fd < 0) {
            return fd;
        }
        unsigned char h[HDR];
        unsigned char *buf = malloc(r.len ? r.len : 1);
        if (!buf) {
            return np_err_set(err, -ENOMEM, "spool: out of memory reading %" PRIu32 " bytes",
                              r.len);
        }
        ssize_t nh = pread_full(fd, h, HDR, r.off);
        ssize_t np = nh == HDR ? pread_full(fd, buf, r.len, r.off + HDR) : 0;
        if (nh < 0 || np < 0) {
            int rc = nh < 0 ? (int)nh : (int)np;
            free(buf);
            return np_err_set(err, rc, "spool: read dir=%s seq=%" PRIu64 ": %s", sp->dir, r.seq,
                              np_strerror(rc));
        }
        if (nh == HDR && np == (ssize_t)r.len && get_u32(h) == REC_MAGIC &&
            get_u16(h + 4) == REC_VERSION && get_u32(h + 8) == r.len && get_u64(h + 12) == r.seq &&
            (int64_t)get_u64(h + 20) == r.created_ms &&
            record_crc(h, buf, r.len) == get_u32(h + HDR_CRC_OFF)) {
            *seq = r.seq;
            *created_ms = r.created_ms;
            *data = buf;
            *len = r.len;
            return 0;
        }
        /* Damaged since open: never hand it out; forget it and go on. */
        free(buf);
        sp->corrupt_bytes += HDR + r.len;
        memmove(&s->recs[ri], &s->recs[ri + 1], (s->n - ri - 1) * sizeof *s->recs);
        s->n--;
    }
    return NP_ENODATA;
}

/* ---- acknowledging, state ---- */

int np_spool_ack(struct np_spool *sp, uint64_t seq, struct np_err *err)
{
    if (!sp) {
        return np_err_set(err, -EINVAL, "spool: ack without spool");
    }
    if (seq <= sp->st.acked) {
        return 0;
    }
    if (seq > sp->last_seq) {
        return np_err_set(err, -EINVAL, "spool: ack seq=%" PRIu64 " is after last_seq=%" PRIu64,
                          seq, sp->last_seq);
    }
    struct state st = sp->st;
    st.acked = seq;
    int rc = state_write(sp, &st, err);
    if (rc != 0) {
        return rc;
    }
    sp->st = st;
    return remove_consumed(sp, err);
}

uint64_t np_spool_last_seq(const struct np_spool *sp)
{
    return sp ? sp->last_seq : 0;
}

uint64_t np_spool_acked_seq(const struct np_spool *sp)
{
    return sp ? sp->st.acked : 0;
}

void np_spool_stats(const struct np_spool *sp, struct np_spool_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!sp) {
        return;
    }
    bool have_oldest = false;
    for (size_t i = 0; i < sp->nsegs; i++) {
        const struct seg *s = &sp->segs[i];
        size_t first = seg_upper(s, sp->st.acked);
        st->batches += s->n - first;
        if (!have_oldest && first < s->n) {
            st->oldest_ms = s->recs[first].created_ms;
            have_oldest = true;
        }
    }
    st->bytes = sp->total_bytes;
    st->segments = sp->nsegs;
    st->dropped_batches = sp->st.dropped_batches;
    st->dropped_bytes = sp->st.dropped_bytes;
    st->corrupt_bytes = sp->corrupt_bytes;
    st->truncated_bytes = sp->truncated_bytes;
}

bool np_spool_take_loss(struct np_spool *sp, struct np_spool_loss *loss)
{
    if (!sp || !loss || sp->st.loss.batches == 0) {
        return false;
    }
    *loss = sp->st.loss;
    struct state st = sp->st;
    st.loss = (struct np_spool_loss){0};
    sp->st = st;
    state_write(sp, &st, NULL); /* best effort, see spool.h */
    return true;
}
