/* test_spool: the on-disk FIFO. Payloads are derived from their seq (length and bytes
 * from a PRNG seeded by the seq), so any record read back can be checked on its own.
 * NP_TEST_SEED=<n> replays a run of the randomised parts. */
#include "netpulse/spool.h"

#include "check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char base_dir[512];
static int dir_counter;
static uint64_t rng_state;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t rnd(void)
{
    return splitmix(&rng_state);
}

static uint64_t rnd_below(uint64_t n)
{
    return n ? rnd() % n : 0;
}

/* ---- deterministic payloads ---- */

static size_t plen(uint64_t seq, size_t maxlen)
{
    uint64_t s = seq * UINT64_C(0x2545f4914f6cdd1d);
    return 1 + (size_t)(splitmix(&s) % maxlen);
}

static void fill_payload(uint64_t seq, unsigned char *buf, size_t len)
{
    uint64_t s = seq ^ UINT64_C(0x5eed5eed5eed5eed);
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (i % 8 == 0) {
            v = splitmix(&s);
        }
        buf[i] = (unsigned char)(v >> (8 * (i % 8)));
    }
}

static bool payload_ok(uint64_t seq, const void *data, size_t len, size_t want_len)
{
    if (len != want_len) {
        return false;
    }
    unsigned char *exp = malloc(len ? len : 1);
    if (!exp) {
        return false;
    }
    fill_payload(seq, exp, len);
    bool ok = memcmp(exp, data, len) == 0;
    free(exp);
    return ok;
}

static int64_t created_of(uint64_t seq)
{
    return INT64_C(1700000000000) + (int64_t)seq * 1000;
}

static int append_len(struct np_spool *sp, uint64_t seq, size_t len)
{
    struct np_err err = {0};
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) {
        return -ENOMEM;
    }
    fill_payload(seq, buf, len);
    int rc = np_spool_append(sp, seq, created_of(seq), buf, len, &err);
    if (rc != 0 && rc != NP_ETOOBIG && rc != -EINVAL) {
        fprintf(stderr, "append seq=%" PRIu64 ": %s\n", seq, err.msg);
    }
    free(buf);
    return rc;
}

static int append_seq(struct np_spool *sp, uint64_t seq, size_t maxlen)
{
    return append_len(sp, seq, plen(seq, maxlen));
}

/* Reads every unacknowledged record after `after`, checking each payload against
 * want_len(seq) (or plen(seq, maxlen) when fixed_len is 0) and the order. Stores the
 * seqs in out (up to cap) and returns the count. */
static size_t read_all(struct np_spool *sp, uint64_t after, size_t maxlen, size_t fixed_len,
                       uint64_t *out, size_t cap)
{
    size_t n = 0;
    uint64_t prev = after;
    for (;;) {
        uint64_t seq;
        int64_t created;
        void *data;
        size_t len;
        struct np_err err = {0};
        int rc = np_spool_read(sp, prev, &seq, &created, &data, &len, &err);
        if (rc == NP_ENODATA) {
            break;
        }
        CHECK_INT(rc, 0);
        if (rc != 0) {
            fprintf(stderr, "read: %s\n", err.msg);
            break;
        }
        CHECK(seq > prev);
        CHECK_INT(created, created_of(seq));
        size_t want = fixed_len ? fixed_len : plen(seq, maxlen);
        if (!payload_ok(seq, data, len, want)) {
            CHECK(!"payload intact");
            fprintf(stderr, "  seq=%" PRIu64 " len=%zu want_len=%zu\n", seq, len, want);
        }
        free(data);
        if (n < cap) {
            out[n] = seq;
        }
        n++;
        prev = seq;
    }
    return n;
}

/* ---- files ---- */

static void new_dir(char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/s%d", base_dir, dir_counter++);
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            rm_tree(p);
        } else {
            unlink(p);
        }
    }
    closedir(d);
    rmdir(dir);
}

/* Sum of st_size of the regular files in dir; *nseg gets the segment file count. */
static uint64_t dir_usage(const char *dir, size_t *nseg)
{
    uint64_t sum = 0;
    size_t n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        return 0;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char p[1024];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (lstat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            sum += (uint64_t)st.st_size;
            if (strncmp(de->d_name, "seg-", 4) == 0) {
                n++;
            }
        }
    }
    closedir(d);
    if (nseg) {
        *nseg = n;
    }
    return sum;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Path of the n-th segment file (0: oldest; SIZE_MAX: newest); false if none. */
static bool seg_path(const char *dir, size_t nth, char *out, size_t cap)
{
    char best[64] = "";
    char names[64][64];
    size_t count = 0;
    DIR *d = opendir(dir);
    if (!d) {
        return false;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (strncmp(de->d_name, "seg-", 4) != 0 || len >= 64) {
            continue;
        }
        if (count < 64) {
            memcpy(names[count++], de->d_name, len + 1);
        }
        if (strcmp(de->d_name, best) > 0) {
            memcpy(best, de->d_name, len + 1);
        }
    }
    closedir(d);
    if (count == 0) {
        return false;
    }
    if (nth == SIZE_MAX) {
        snprintf(out, cap, "%s/%s", dir, best);
        return true;
    }
    /* names are fixed width hex: lexical order is seq order */
    qsort(names, count, sizeof names[0], cmp_name);
    if (nth >= count) {
        return false;
    }
    snprintf(out, cap, "%s/%s", dir, names[nth]);
    return true;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    struct stat st;
    int fd = open(path, O_RDONLY);
    unsigned char *buf = NULL;
    if (fd < 0 || fstat(fd, &st) != 0) {
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf || read(fd, buf, (size_t)st.st_size) != st.st_size) {
        free(buf);
        buf = NULL;
        goto out;
    }
    *len = (size_t)st.st_size;
out:
    if (fd >= 0) {
        close(fd);
    }
    return buf;
}

static bool spit(const char *path, const unsigned char *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        return false;
    }
    bool ok = write(fd, buf, len) == (ssize_t)len;
    return close(fd) == 0 && ok;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : UINT64_MAX;
}

static struct np_spool *open_ok(const char *dir, const struct np_spool_opts *o)
{
    struct np_spool *sp = NULL;
    struct np_err err = {0};
    int rc = np_spool_open(dir, o, &sp, &err);
    CHECK_INT(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "open %s: %s\n", dir, err.msg);
    }
    return sp;
}

#define HDR NP_SPOOL_RECORD_OVERHEAD

/* ---- basics ---- */

static void test_basics(void)
{
    char dir[600];
    uint64_t seqs[64];
    struct np_err err = {0};
    new_dir(dir, sizeof dir);
    struct np_spool *sp = open_ok(dir, NULL);
    if (!sp) {
        return;
    }
    CHECK_U64(np_spool_last_seq(sp), 0);
    CHECK_U64(np_spool_acked_seq(sp), 0);
    CHECK_INT(read_all(sp, 0, 1000, 0, seqs, 64), 0);
    for (uint64_t s = 1; s <= 10; s++) {
        CHECK_INT(append_seq(sp, s, 1000), 0);
    }
    CHECK_U64(np_spool_last_seq(sp), 10);
    CHECK_INT(read_all(sp, 0, 1000, 0, seqs, 64), 10);
    for (uint64_t s = 1; s <= 10; s++) {
        CHECK_U64(seqs[s - 1], s);
    }
    CHECK_INT(read_all(sp, 4, 1000, 0, seqs, 64), 6);
    CHECK_U64(seqs[0], 5);

    /* seq must increase; NULL data only with len 0 */
    CHECK_INT(append_seq(sp, 10, 1000), -EINVAL);
    CHECK_INT(append_seq(sp, 3, 1000), -EINVAL);
    CHECK_INT(np_spool_append(sp, 11, 0, NULL, 5, &err), -EINVAL);
    CHECK_INT(append_seq(sp, 11, 1000), 0);
    {
        uint64_t seq;
        int64_t created;
        void *data = NULL;
        size_t len = 0;
        CHECK_INT(np_spool_read(sp, 10, &seq, &created, &data, &len, &err), 0);
        CHECK_U64(seq, 11);
        CHECK_INT(len, plen(11, 1000));
        free(data);
        CHECK_INT(np_spool_read(sp, 11, &seq, &created, &data, &len, &err), NP_ENODATA);
    }

    /* ack */
    CHECK_INT(np_spool_ack(sp, 4, &err), 0);
    CHECK_U64(np_spool_acked_seq(sp), 4);
    CHECK_INT(np_spool_ack(sp, 3, &err), 0); /* at or below: no-op */
    CHECK_U64(np_spool_acked_seq(sp), 4);
    CHECK_INT(np_spool_ack(sp, 12, &err), -EINVAL);
    CHECK_INT(read_all(sp, 0, 1000, 0, seqs, 64), 7 - 0); /* 5..10 and 11 */
    CHECK_U64(seqs[0], 5);
    struct np_spool_stats st;
    np_spool_stats(sp, &st);
    CHECK_U64(st.batches, 7);
    CHECK_INT(st.oldest_ms, created_of(5));
    CHECK_U64(st.corrupt_bytes, 0);
    CHECK_U64(st.dropped_batches, 0);
    size_t nseg;
    CHECK_U64(st.bytes + NP_SPOOL_STATE_BYTES, dir_usage(dir, &nseg));
    CHECK_U64(st.segments, nseg);

    /* one open spool per directory */
    {
        struct np_spool *sp2 = NULL;
        CHECK_INT(np_spool_open(dir, NULL, &sp2, &err), -EBUSY);
        CHECK(sp2 == NULL);
    }
    np_spool_close(sp);

    /* reopen keeps unacknowledged records and the ack position */
    sp = open_ok(dir, NULL);
    if (!sp) {
        return;
    }
    CHECK_U64(np_spool_last_seq(sp), 11);
    CHECK_U64(np_spool_acked_seq(sp), 4);
    CHECK_INT(read_all(sp, 0, 1000, 0, seqs, 64), 7);
    CHECK_U64(seqs[0], 5);
    CHECK_U64(seqs[6], 11);
    CHECK_INT(append_seq(sp, 11, 1000), -EINVAL);
    CHECK_INT(append_seq(sp, 12, 1000), 0);
    np_spool_close(sp);

    /* everything acknowledged: no segment left, yet the sequence goes on */
    sp = open_ok(dir, NULL);
    if (!sp) {
        return;
    }
    CHECK_INT(read_all(sp, 0, 1000, 0, seqs, 64), 8);
    CHECK_INT(np_spool_ack(sp, 12, &err), 0);
    np_spool_stats(sp, &st);
    CHECK_U64(st.batches, 0);
    CHECK_U64(st.bytes, 0);
    CHECK_INT(st.oldest_ms, 0);
    dir_usage(dir, &nseg);
    CHECK_INT(nseg, 0);
    np_spool_close(sp);
    sp = open_ok(dir, NULL);
    if (!sp) {
        return;
    }
    CHECK_U64(np_spool_last_seq(sp), 12);
    CHECK_U64(np_spool_acked_seq(sp), 12);
    CHECK_INT(read_all(sp, 0, 1000, 0, seqs, 64), 0);
    CHECK_INT(append_seq(sp, 12, 1000), -EINVAL);
    CHECK_INT(append_seq(sp, 20, 1000), 0); /* gaps are the caller's business */
    CHECK_INT(read_all(sp, 0, 1000, 0, seqs, 64), 1);
    CHECK_U64(seqs[0], 20);
    np_spool_close(sp);
    np_spool_close(NULL);
}

static void test_opts(void)
{
    char dir[600];
    struct np_err err = {0};
    struct np_spool *sp = NULL;
    static const struct {
        struct np_spool_opts o;
        int rc;
    } cases[] = {
        {{.max_bytes = NP_SPOOL_MIN_BYTES - 1}, -EINVAL},
        {{.max_bytes = 1 << 20, .segment_bytes = (1 << 19) + 1}, -EINVAL},
        {{.max_bytes = 1 << 20, .segment_bytes = 1 << 19}, 0},
        {{.fsync = (enum np_spool_fsync)7}, -EINVAL},
        {{.fsync = NP_SPOOL_FSYNC_INTERVAL, .fsync_interval_ms = -1}, -EINVAL},
        {{.fsync = NP_SPOOL_FSYNC_INTERVAL, .fsync_interval_ms = 0}, 0},
        {{.max_bytes = NP_SPOOL_MIN_BYTES, .fsync = NP_SPOOL_FSYNC_NEVER}, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        new_dir(dir, sizeof dir);
        int rc = np_spool_open(dir, &cases[i].o, &sp, &err);
        CHECK_INT(rc, cases[i].rc);
        if (rc != 0) {
            CHECK(sp == NULL);
            CHECK_CONTAINS(err.msg, "spool: ");
        }
        np_spool_close(sp);
        sp = NULL;
    }
    CHECK_INT(np_spool_open("", NULL, &sp, &err), -EINVAL);
    CHECK_INT(np_spool_open("/nonexistent-np-parent/spool", NULL, &sp, &err), -ENOENT);
    CHECK_CONTAINS(err.msg, "nonexistent-np-parent");

    /* the record limits: payload hard maximum, and a record must fit under max_bytes */
    new_dir(dir, sizeof dir);
    struct np_spool_opts o = {.max_bytes = NP_SPOOL_MIN_BYTES, .fsync = NP_SPOOL_FSYNC_NEVER};
    sp = open_ok(dir, &o);
    if (!sp) {
        return;
    }
    static unsigned char big[NP_SPOOL_MIN_BYTES];
    CHECK_INT(np_spool_append(sp, 1, 0, big, (size_t)NP_SPOOL_PAYLOAD_MAX + 1, &err), NP_ETOOBIG);
    CHECK_INT(append_len(sp, 1, NP_SPOOL_MIN_BYTES - HDR + 1), NP_ETOOBIG);
    CHECK_INT(append_len(sp, 1, NP_SPOOL_MIN_BYTES - HDR), 0); /* exactly max_bytes */
    CHECK_INT(append_len(sp, 2, 100), 0);                      /* drops seq 1 */
    struct np_spool_loss l;
    CHECK(np_spool_take_loss(sp, &l));
    CHECK_U64(l.first_seq, 1);
    CHECK_U64(l.last_seq, 1);
    CHECK_U64(l.bytes, NP_SPOOL_MIN_BYTES - HDR);
    CHECK(!np_spool_take_loss(sp, &l));
    CHECK(dir_usage(dir, NULL) <= NP_SPOOL_MIN_BYTES + NP_SPOOL_STATE_BYTES);
    /* an empty payload is a record too */
    CHECK_INT(np_spool_append(sp, 3, 42, NULL, 0, &err), 0);
    np_spool_close(sp);
    sp = open_ok(dir, &o);
    if (!sp) {
        return;
    }
    {
        uint64_t seq;
        int64_t created;
        void *data = NULL;
        size_t len = 99;
        CHECK_INT(np_spool_read(sp, 2, &seq, &created, &data, &len, &err), 0);
        CHECK_U64(seq, 3);
        CHECK_INT(created, 42);
        CHECK_INT(len, 0);
        CHECK(data != NULL);
        free(data);
    }
    np_spool_close(sp);
}

/* ---- segments ---- */

static void test_rolling(void)
{
    char dir[600], path[700];
    uint64_t seqs[256];
    struct np_err err = {0};
    size_t nseg, nseg2;
    new_dir(dir, sizeof dir);
    struct np_spool_opts o = {.max_bytes = 1 << 20,
                              .segment_bytes = 8192,
                              .fsync = NP_SPOOL_FSYNC_INTERVAL,
                              .fsync_interval_ms = 5};
    struct np_spool *sp = open_ok(dir, &o);
    if (!sp) {
        return;
    }
    for (uint64_t s = 1; s <= 200; s++) {
        CHECK_INT(append_seq(sp, s, 2000), 0);
    }
    CHECK_INT(np_spool_sync(sp, &err), 0);
    dir_usage(dir, &nseg);
    CHECK(nseg >= 20);
    for (size_t i = 0; i < nseg; i++) {
        CHECK(seg_path(dir, i, path, sizeof path));
        CHECK(file_size(path) <= 8192);
    }
    /* the first segment is named after seq 1, the newest after a later one */
    CHECK(seg_path(dir, 0, path, sizeof path));
    CHECK_CONTAINS(path, "seg-0000000000000001.spool");

    CHECK_INT(np_spool_ack(sp, 100, &err), 0);
    dir_usage(dir, &nseg2);
    CHECK(nseg2 < nseg);
    CHECK(nseg2 >= nseg / 2 - 1);
    /* the oldest segment left holds 101: its name is <= 101 and the next one's is > 101 */
    {
        char p2[700];
        CHECK(seg_path(dir, 0, path, sizeof path));
        CHECK(seg_path(dir, 1, p2, sizeof p2));
        const char *b1 = strrchr(path, '/') + 1, *b2 = strrchr(p2, '/') + 1;
        CHECK(strcmp(b1, "seg-0000000000000065.spool") <= 0);
        CHECK(strcmp(b2, "seg-0000000000000065.spool") > 0);
    }
    CHECK_INT(read_all(sp, 0, 2000, 0, seqs, 256), 100);
    CHECK_U64(seqs[0], 101);
    /* read after ack skips acknowledged records even when asked for older ones */
    CHECK_INT(read_all(sp, 50, 2000, 0, seqs, 256), 100);
    CHECK_INT(read_all(sp, 150, 2000, 0, seqs, 256), 50);
    CHECK_U64(seqs[0], 151);
    np_spool_close(sp);

    sp = open_ok(dir, &o);
    if (!sp) {
        return;
    }
    CHECK_U64(np_spool_acked_seq(sp), 100);
    CHECK_U64(np_spool_last_seq(sp), 200);
    CHECK_INT(read_all(sp, 0, 2000, 0, seqs, 256), 100);
    for (size_t i = 0; i < 100; i++) {
        CHECK_U64(seqs[i], 101 + i);
    }
    struct np_spool_stats st;
    np_spool_stats(sp, &st);
    CHECK_U64(st.corrupt_bytes, 0);
    CHECK_U64(st.truncated_bytes, 0);
    CHECK_U64(st.batches, 100);
    CHECK_U64(st.segments, nseg2);
    CHECK_INT(append_seq(sp, 201, 2000), 0);
    np_spool_close(sp);
}

/* ---- torn tails and corruption ---- */

static void test_torn_tail(void)
{
    enum { TORN_MAXLEN = 160 }; /* each cut costs an open with ftruncate + fsync */
    char dir[600], path[700];
    uint64_t seqs[16];
    struct np_spool_opts o = {.fsync = NP_SPOOL_FSYNC_NEVER};
    new_dir(dir, sizeof dir);
    struct np_spool *sp = open_ok(dir, &o);
    if (!sp) {
        return;
    }
    for (uint64_t s = 1; s <= 5; s++) {
        CHECK_INT(append_seq(sp, s, TORN_MAXLEN), 0);
    }
    np_spool_close(sp);
    if (!seg_path(dir, SIZE_MAX, path, sizeof path)) {
        CHECK(!"no segment");
        return;
    }
    size_t size;
    unsigned char *orig = slurp(path, &size);
    if (!orig) {
        CHECK(!"slurp");
        return;
    }
    size_t start = size - (HDR + plen(5, TORN_MAXLEN));
    unsigned cuts = 0;
    /* a crash mid-append, at every byte of the last record */
    for (size_t cut = start; cut < size; cut++) {
        CHECK(spit(path, orig, cut));
        sp = open_ok(dir, &o);
        if (!sp) {
            break;
        }
        struct np_spool_stats st;
        np_spool_stats(sp, &st);
        CHECK_U64(np_spool_last_seq(sp), 4);
        CHECK_INT(read_all(sp, 0, TORN_MAXLEN, 0, seqs, 16), 4);
        CHECK_U64(seqs[3], 4);
        CHECK_U64(st.truncated_bytes, cut - start);
        CHECK_U64(st.corrupt_bytes, 0);
        CHECK_U64(file_size(path), start);
        /* the writer goes on where it stopped, in the same file */
        CHECK_INT(append_seq(sp, 5, TORN_MAXLEN), 0);
        np_spool_close(sp);
        CHECK_U64(file_size(path), size);
        cuts++;
    }
    CHECK_INT(cuts, size - start);

    /* size grown without data (zeros), or garbage at the end: cut off */
    for (int k = 0; k < 2; k++) {
        unsigned char *ext = malloc(size + 100);
        if (!ext) {
            break;
        }
        memcpy(ext, orig, size);
        for (size_t i = 0; i < 100; i++) {
            ext[size + i] = k == 0 ? 0 : (unsigned char)rnd();
        }
        size_t extra = 1 + rnd_below(100);
        CHECK(spit(path, ext, size + extra));
        free(ext);
        sp = open_ok(dir, &o);
        if (!sp) {
            break;
        }
        struct np_spool_stats st;
        np_spool_stats(sp, &st);
        CHECK_INT(read_all(sp, 0, TORN_MAXLEN, 0, seqs, 16), 5);
        CHECK_U64(st.truncated_bytes, extra);
        CHECK_U64(file_size(path), size);
        np_spool_close(sp);
    }
    free(orig);

    /* the torn record was the only one of the newest segment: the file goes */
    new_dir(dir, sizeof dir);
    o.max_bytes = 1 << 20;
    o.segment_bytes = 4096;
    sp = open_ok(dir, &o);
    if (!sp) {
        return;
    }
    for (uint64_t s = 1; s <= 4; s++) {
        CHECK_INT(append_len(sp, s, 1000), 0); /* 3 x 1032 bytes fill a 4096-byte segment */
    }
    np_spool_close(sp);
    size_t nseg;
    dir_usage(dir, &nseg);
    CHECK_INT(nseg, 2);
    CHECK(seg_path(dir, SIZE_MAX, path, sizeof path));
    CHECK_CONTAINS(path, "seg-0000000000000004.spool");
    orig = slurp(path, &size);
    if (!orig) {
        CHECK(!"slurp");
        return;
    }
    CHECK_INT(size, HDR + 1000);
    for (size_t cut = 0; cut < size; cut += 1 + rnd_below(40)) {
        CHECK(spit(path, orig, cut));
        sp = open_ok(dir, &o);
        if (!sp) {
            break;
        }
        CHECK_U64(np_spool_last_seq(sp), 3);
        CHECK_INT(read_all(sp, 0, 0, 1000, seqs, 16), 3);
        CHECK_U64(file_size(path), UINT64_MAX); /* gone */
        CHECK_INT(append_len(sp, 4, 1000), 0);
        np_spool_close(sp);
        CHECK_U64(file_size(path), size);
    }
    free(orig);
}

/* Flips each byte of record `victim` (1-based) of the segment file in turn: the record
 * must never be read back, its neighbours must, and its bytes are reported corrupt. */
static void flip_each_byte(const char *dir, const struct np_spool_opts *o, const char *path,
                           size_t maxlen, uint64_t victim, uint64_t first_in_file,
                           uint64_t last_seq)
{
    size_t size;
    uint64_t seqs[64];
    unsigned char *orig = slurp(path, &size);
    if (!orig) {
        CHECK(!"slurp");
        return;
    }
    size_t off = 0;
    for (uint64_t s = first_in_file; s < victim; s++) {
        off += HDR + plen(s, maxlen);
    }
    size_t vlen = HDR + plen(victim, maxlen);
    int f0 = check_failures;
    bool victim_last = off + vlen == size;
    for (size_t b = off; b < off + vlen; b++) {
        orig[b] ^= (unsigned char)(1u << (b % 8)) | 0x10;
        CHECK(spit(path, orig, size));
        orig[b] ^= (unsigned char)(1u << (b % 8)) | 0x10;
        struct np_spool *sp = open_ok(dir, o);
        if (!sp) {
            break;
        }
        size_t n = read_all(sp, 0, maxlen, 0, seqs, 64);
        CHECK_INT(n, last_seq - 1);
        for (size_t i = 0; i < n && i < 64; i++) {
            CHECK(seqs[i] != victim);
        }
        struct np_spool_stats st;
        np_spool_stats(sp, &st);
        CHECK_U64(st.corrupt_bytes, vlen);
        CHECK_U64(st.truncated_bytes, 0);
        CHECK_U64(np_spool_last_seq(sp), last_seq);
        CHECK_U64(file_size(path), size); /* kept, not cut */
        np_spool_close(sp);
        if (check_failures > f0) {
            fprintf(stderr, "flip at byte %zu of record %" PRIu64 " (last in file: %d)\n", b - off,
                    victim, victim_last);
            break;
        }
    }
    CHECK(spit(path, orig, size));
    free(orig);
}

static void test_corrupt_middle(void)
{
    char dir[600], path[700];
    uint64_t seqs[64];
    struct np_err err = {0};
    struct np_spool_opts o = {.fsync = NP_SPOOL_FSYNC_NEVER};

    /* middle record of the only (last) segment */
    new_dir(dir, sizeof dir);
    struct np_spool *sp = open_ok(dir, &o);
    if (!sp) {
        return;
    }
    for (uint64_t s = 1; s <= 3; s++) {
        CHECK_INT(append_seq(sp, s, 200), 0);
    }
    np_spool_close(sp);
    CHECK(seg_path(dir, 0, path, sizeof path));
    flip_each_byte(dir, &o, path, 200, 2, 1, 3);

    /* appends after a damaged record survive a reopen; the damage stays reported */
    {
        size_t size;
        unsigned char *buf = slurp(path, &size);
        if (buf) {
            buf[HDR + plen(1, 200) + HDR + 3] ^= 0xff; /* payload byte of record 2 */
            CHECK(spit(path, buf, size));
            free(buf);
        }
        sp = open_ok(dir, &o);
        if (sp) {
            CHECK_INT(append_seq(sp, 4, 200), 0);
            np_spool_close(sp);
        }
        sp = open_ok(dir, &o);
        if (sp) {
            struct np_spool_stats st;
            np_spool_stats(sp, &st);
            CHECK_INT(read_all(sp, 0, 200, 0, seqs, 64), 3);
            CHECK_U64(seqs[0], 1);
            CHECK_U64(seqs[1], 3);
            CHECK_U64(seqs[2], 4);
            CHECK_U64(st.corrupt_bytes, HDR + plen(2, 200));
            np_spool_close(sp);
        }
    }

    /* a middle record, and the last record, of a segment that is not the last one */
    new_dir(dir, sizeof dir);
    o.max_bytes = 1 << 20;
    o.segment_bytes = 1024;
    sp = open_ok(dir, &o);
    if (!sp) {
        return;
    }
    for (uint64_t s = 1; s <= 12; s++) {
        CHECK_INT(append_len(sp, s, 200), 0); /* 232 bytes: 4 records per segment */
    }
    np_spool_close(sp);
    CHECK(seg_path(dir, 0, path, sizeof path));
    CHECK_INT(file_size(path), 4 * (HDR + 200));
    {
        /* flip_each_byte derives lengths from plen(); here all are 200: use maxlen so
         * that plen() is not used, by checking a few bytes by hand instead */
        size_t size;
        unsigned char *orig = slurp(path, &size);
        static const size_t victims[] = {1, 3}; /* 0-based: record 2, record 4 (last) */
        for (size_t v = 0; orig && v < 2; v++) {
            size_t off = victims[v] * (HDR + 200);
            for (size_t b = off; b < off + HDR + 200; b += 1 + rnd_below(9)) {
                orig[b] ^= 0x81;
                CHECK(spit(path, orig, size));
                orig[b] ^= 0x81;
                sp = open_ok(dir, &o);
                if (!sp) {
                    break;
                }
                size_t n = read_all(sp, 0, 0, 200, seqs, 64);
                CHECK_INT(n, 11);
                for (size_t i = 0; i < n && i < 64; i++) {
                    CHECK(seqs[i] != victims[v] + 1);
                }
                struct np_spool_stats st;
                np_spool_stats(sp, &st);
                CHECK_U64(st.corrupt_bytes, HDR + 200);
                CHECK_U64(st.truncated_bytes, 0);
                CHECK_U64(np_spool_last_seq(sp), 12);
                np_spool_close(sp);
            }
        }
        if (orig) {
            CHECK(spit(path, orig, size));
        }
        free(orig);
    }

    /* damaged after open: the read skips it and counts it */
    new_dir(dir, sizeof dir);
    o = (struct np_spool_opts){.fsync = NP_SPOOL_FSYNC_NEVER};
    sp = open_ok(dir, &o);
    if (!sp) {
        return;
    }
    for (uint64_t s = 1; s <= 3; s++) {
        CHECK_INT(append_seq(sp, s, 200), 0);
    }
    CHECK_INT(np_spool_sync(sp, &err), 0);
    CHECK(seg_path(dir, 0, path, sizeof path));
    {
        int fd = open(path, O_WRONLY);
        unsigned char x = 0xee;
        CHECK(fd >= 0);
        CHECK(pwrite(fd, &x, 1, (off_t)(HDR + plen(1, 200) + HDR + 1)) == 1);
        close(fd);
    }
    CHECK_INT(read_all(sp, 0, 200, 0, seqs, 64), 2);
    CHECK_U64(seqs[0], 1);
    CHECK_U64(seqs[1], 3);
    struct np_spool_stats st;
    np_spool_stats(sp, &st);
    CHECK_U64(st.corrupt_bytes, HDR + plen(2, 200));
    np_spool_close(sp);
}

/* A write that fails half way (here: RLIMIT_FSIZE, as ENOSPC would) is taken back, and
 * the same seq can be appended again. */
static void test_write_failure(void)
{
    char dir[600], path[700];
    uint64_t seqs[16];
    new_dir(dir, sizeof dir);
    struct np_spool *sp = open_ok(dir, NULL);
    if (!sp) {
        return;
    }
    for (uint64_t s = 1; s <= 3; s++) {
        CHECK_INT(append_len(sp, s, 1000), 0);
    }
    CHECK(seg_path(dir, SIZE_MAX, path, sizeof path));
    uint64_t size = file_size(path);
    struct rlimit old, lim;
    CHECK_INT(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)size + 500;
    signal(SIGXFSZ, SIG_IGN);
    CHECK_INT(setrlimit(RLIMIT_FSIZE, &lim), 0);
    struct np_err err = {0};
    unsigned char buf[1000];
    fill_payload(4, buf, sizeof buf);
    int rc = np_spool_append(sp, 4, created_of(4), buf, sizeof buf, &err);
    CHECK_INT(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    CHECK_INT(rc, -EFBIG);
    CHECK_CONTAINS(err.msg, "write");
    CHECK_U64(file_size(path), size); /* the partial record was taken back */
    CHECK_U64(np_spool_last_seq(sp), 3);
    CHECK_INT(append_len(sp, 4, 1000), 0);
    np_spool_close(sp);
    sp = open_ok(dir, NULL);
    if (!sp) {
        return;
    }
    CHECK_INT(read_all(sp, 0, 0, 1000, seqs, 16), 4);
    struct np_spool_stats st;
    np_spool_stats(sp, &st);
    CHECK_U64(st.corrupt_bytes, 0);
    CHECK_U64(st.truncated_bytes, 0);
    np_spool_close(sp);
}

static void test_state_file(void)
{
    char dir[600], path[700];
    struct np_err err = {0};
    struct np_spool *sp;
    new_dir(dir, sizeof dir);
    sp = open_ok(dir, NULL);
    if (!sp) {
        return;
    }
    for (uint64_t s = 1; s <= 3; s++) {
        CHECK_INT(append_seq(sp, s, 100), 0);
    }
    CHECK_INT(np_spool_ack(sp, 2, &err), 0);
    np_spool_close(sp);
    snprintf(path, sizeof path, "%s/state", dir);
    CHECK_U64(file_size(path), NP_SPOOL_STATE_BYTES);
    size_t size;
    unsigned char *orig = slurp(path, &size);
    if (!orig) {
        CHECK(!"slurp");
        return;
    }
    orig[9] ^= 1;
    CHECK(spit(path, orig, size));
    sp = NULL;
    CHECK_INT(np_spool_open(dir, NULL, &sp, &err), NP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "state");
    CHECK(spit(path, orig, 10));
    CHECK_INT(np_spool_open(dir, NULL, &sp, &err), NP_ECORRUPT);
    orig[9] ^= 1;
    CHECK(spit(path, orig, size));
    sp = open_ok(dir, NULL);
    CHECK_U64(np_spool_acked_seq(sp), 2);
    np_spool_close(sp);
    /* a leftover temp file from a crash is ignored and removed */
    snprintf(path, sizeof path, "%s/state.tmp", dir);
    CHECK(spit(path, (const unsigned char *)"junk", 4));
    sp = open_ok(dir, NULL);
    CHECK_U64(np_spool_acked_seq(sp), 2);
    CHECK_U64(file_size(path), UINT64_MAX);
    np_spool_close(sp);
    free(orig);
}

/* ---- the bound ---- */

struct loss_model {
    struct np_spool_loss l;
};

static void loss_add(struct np_spool_loss *l, uint64_t seq, size_t len)
{
    if (l->batches == 0) {
        *l = (struct np_spool_loss){.first_seq = seq,
                                    .last_seq = seq,
                                    .from_ms = created_of(seq),
                                    .to_ms = created_of(seq)};
    }
    if (seq < l->first_seq) {
        l->first_seq = seq;
        l->from_ms = created_of(seq);
    }
    if (seq > l->last_seq) {
        l->last_seq = seq;
        l->to_ms = created_of(seq);
    }
    l->batches++;
    l->bytes += len;
}

static void check_loss(const struct np_spool_loss *got, const struct np_spool_loss *want)
{
    CHECK_U64(got->first_seq, want->first_seq);
    CHECK_U64(got->last_seq, want->last_seq);
    CHECK_U64(got->batches, want->batches);
    CHECK_U64(got->bytes, want->bytes);
    CHECK_INT(got->from_ms, want->from_ms);
    CHECK_INT(got->to_ms, want->to_ms);
}

static void test_bound(void)
{
    enum { N = 1000, MAXLEN = 8000 };
    char dir[600];
    struct np_err err = {0};
    new_dir(dir, sizeof dir);
    /* every drop rewrites the state file (two fsyncs): few, large segments keep this quick */
    struct np_spool_opts o = {
        .max_bytes = 200 * 1024, .segment_bytes = 32 * 1024, .fsync = NP_SPOOL_FSYNC_NEVER};
    struct np_spool *sp = open_ok(dir, &o);
    if (!sp) {
        return;
    }
    /* model: the seqs that should be readable, oldest first */
    static uint64_t q[N + 1];
    size_t qh = 0, qt = 0;
    struct np_spool_loss want = {0}, got;
    uint64_t dropped = 0, dropped_bytes = 0, acked = 0;
    unsigned takes = 0, reopens = 0;
    CHECK(!np_spool_take_loss(sp, &got));
    int f0 = check_failures;
    for (uint64_t s = 1; s <= N && sp; s++) {
        CHECK_INT(append_seq(sp, s, MAXLEN), 0);
        q[qt++] = s;
        /* the bound, after every call */
        struct np_spool_stats st;
        np_spool_stats(sp, &st);
        CHECK(st.bytes <= o.max_bytes);
        CHECK(dir_usage(dir, NULL) <= o.max_bytes + NP_SPOOL_STATE_BYTES);
        /* the new record is never the one dropped */
        uint64_t seq;
        int64_t created;
        void *data;
        size_t len;
        CHECK_INT(np_spool_read(sp, s - 1, &seq, &created, &data, &len, &err), 0);
        CHECK_U64(seq, s);
        free(data);
        /* drops take the oldest: whatever the model holds below the oldest readable
         * record was dropped */
        CHECK_INT(np_spool_read(sp, 0, &seq, &created, &data, &len, &err), 0);
        free(data);
        while (qh < qt && q[qh] < seq) {
            loss_add(&want, q[qh], plen(q[qh], MAXLEN));
            dropped++;
            dropped_bytes += plen(q[qh], MAXLEN);
            qh++;
        }
        CHECK_U64(q[qh], seq);
        if (rnd_below(150) == 0 && qt - qh > 1) {
            /* ack a random prefix */
            size_t k = qh + rnd_below(qt - qh - 1);
            CHECK_INT(np_spool_ack(sp, q[k], &err), 0);
            acked = q[k];
            qh = k + 1;
        }
        if (rnd_below(20) == 0) {
            bool have = np_spool_take_loss(sp, &got);
            CHECK_INT(have, want.batches > 0);
            if (have) {
                check_loss(&got, &want);
                takes++;
            }
            want = (struct np_spool_loss){0};
        }
        if (rnd_below(50) == 0) {
            np_spool_close(sp);
            sp = open_ok(dir, &o);
            reopens++;
            CHECK_U64(np_spool_acked_seq(sp), acked);
        }
        if (s % 250 == 0 && sp) {
            /* no holes: exactly the model is readable */
            static uint64_t seqs[N];
            size_t n = read_all(sp, 0, MAXLEN, 0, seqs, N);
            CHECK_INT(n, qt - qh);
            for (size_t i = 0; i < n && qh + i < qt; i++) {
                CHECK_U64(seqs[i], q[qh + i]);
            }
        }
        if (check_failures > f0) {
            fprintf(stderr, "bound: failed at seq %" PRIu64 "\n", s);
            break;
        }
    }
    if (!sp) {
        return;
    }
    struct np_spool_stats st;
    np_spool_stats(sp, &st);
    CHECK(dropped > 100);
    CHECK_U64(st.dropped_batches, dropped);
    CHECK_U64(st.dropped_bytes, dropped_bytes);
    /* a pending loss survives a restart */
    np_spool_close(sp);
    sp = open_ok(dir, &o);
    if (!sp) {
        return;
    }
    bool have = np_spool_take_loss(sp, &got);
    CHECK_INT(have, want.batches > 0);
    if (have) {
        check_loss(&got, &want);
    }
    CHECK(!np_spool_take_loss(sp, &got));
    np_spool_close(sp);
    sp = open_ok(dir, &o);
    CHECK(!np_spool_take_loss(sp, &got)); /* and taking it is persisted */
    np_spool_close(sp);
    printf("bound: %d appends into %" PRIu64 " bytes, %" PRIu64 " dropped, %u losses taken, "
           "%u reopens\n",
           N, o.max_bytes, dropped, takes, reopens);

    /* a spool reopened with a smaller bound sheds the excess at open */
    o.max_bytes /= 4;
    o.segment_bytes = 0;
    /* Random acks may already have left less than the new bound: only then
     * is nothing shed. */
    bool over = dir_usage(dir, NULL) > o.max_bytes + NP_SPOOL_STATE_BYTES;
    sp = open_ok(dir, &o);
    if (sp) {
        CHECK(dir_usage(dir, NULL) <= o.max_bytes + NP_SPOOL_STATE_BYTES);
        CHECK_INT(np_spool_take_loss(sp, &got), over);
        np_spool_close(sp);
    }
}

/* ---- crash: a writer SIGKILLed at random moments ---- */

enum { CRASH_MAXLEN = 65536 };
enum { F_KNOWN = 1, F_REPORTED = 2, F_DROPPED = 4, F_PRESENT = 8 };
#define MARK_READY UINT64_C(0)
#define MARK_FAILED UINT64_MAX

struct crash {
    char dir[600];
    struct np_spool_opts opts;
    unsigned ack_one_in;  /* chance of an ack after a run; 0: never */
    unsigned char *flags; /* per seq */
    size_t cap;
    uint64_t acked, next, max_dropped;
    /* figures */
    unsigned kills, runs_from_fork, torn_repaired, tails_cut, zeros_added, loss_events;
    uint64_t reported, checked, dropped;
};

static bool crash_grow(struct crash *c, uint64_t seq)
{
    if (seq < c->cap) {
        return true;
    }
    size_t ncap = c->cap ? c->cap : 1024;
    while (ncap <= seq) {
        ncap *= 2;
    }
    unsigned char *f = realloc(c->flags, ncap);
    if (!f) {
        return false;
    }
    memset(f + c->cap, 0, ncap - c->cap);
    c->flags = f;
    c->cap = ncap;
    return true;
}

static void report(int fd, uint64_t v)
{
    ssize_t n = write(fd, &v, sizeof v);
    (void)n;
}

static void crash_child(const struct crash *c, int wfd)
{
    struct np_spool *sp;
    struct np_err err = {0};
    unsigned char *buf = malloc(CRASH_MAXLEN);
    if (!buf || np_spool_open(c->dir, &c->opts, &sp, &err) != 0) {
        fprintf(stderr, "crash child: open: %s\n", err.msg);
        report(wfd, MARK_FAILED);
        _exit(3);
    }
    report(wfd, MARK_READY);
    uint64_t seq = np_spool_last_seq(sp) + 1;
    for (int i = 0; i < 100000; i++, seq++) {
        size_t len = plen(seq, CRASH_MAXLEN);
        fill_payload(seq, buf, len);
        if (np_spool_append(sp, seq, created_of(seq), buf, len, &err) != 0) {
            fprintf(stderr, "crash child: append seq=%" PRIu64 ": %s\n", seq, err.msg);
            report(wfd, MARK_FAILED);
            _exit(4);
        }
        report(wfd, seq); /* returned, so on disk */
    }
    _exit(0);
}

/* One writer run: fork, let it write for a random while, SIGKILL, collect what it
 * reported as appended. */
static void crash_run(struct crash *c)
{
    int p[2];
    if (pipe(p) != 0) {
        CHECK(!"pipe");
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        CHECK(!"fork");
        close(p[0]);
        close(p[1]);
        return;
    }
    if (pid == 0) {
        close(p[0]);
        crash_child(c, p[1]);
    }
    close(p[1]);
    uint64_t buf[4096];
    size_t have = 0; /* bytes in buf */
    /* When the clock starts: at fork (kills land in open too), once the spool is open,
     * or after the k-th append returned (so runs get somewhere even when fdatasync is
     * slow on a busy disk). */
    unsigned mode = (unsigned)rnd_below(4);
    size_t wait_words = mode == 0 ? 0 : mode == 1 ? 1 : 1 + 1 + (size_t)rnd_below(6);
    while (have < wait_words * sizeof buf[0]) {
        ssize_t n = read(p[0], (char *)buf + have, wait_words * sizeof buf[0] - have);
        if (n <= 0) {
            break;
        }
        have += (size_t)n;
    }
    /* 1 us .. 8 ms, log-uniform */
    unsigned e = (unsigned)rnd_below(13);
    uint64_t us = (UINT64_C(1) << e) + rnd_below(UINT64_C(1) << e);
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(us * 1000)};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    c->kills++;
    if (mode == 0) {
        c->runs_from_fork++;
    }
    CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ||
          (WIFEXITED(status) && WEXITSTATUS(status) == 0));

    bool first = true;
    for (;;) {
        ssize_t n = read(p[0], (char *)buf + have, sizeof buf - have);
        if (n > 0) {
            have += (size_t)n;
        }
        size_t words = have / sizeof buf[0];
        for (size_t i = 0; i < words; i++) {
            uint64_t v = buf[i];
            if (first) {
                first = false;
                CHECK_U64(v, MARK_READY);
                continue;
            }
            CHECK(v != MARK_FAILED);
            CHECK_U64(v, c->next); /* continues exactly at last_seq + 1 */
            if (v == c->next && crash_grow(c, v)) {
                c->flags[v] |= F_KNOWN | F_REPORTED;
                c->next++;
                c->reported++;
            }
        }
        memmove(buf, buf + words, have - words * sizeof buf[0]);
        have -= words * sizeof buf[0];
        if (n <= 0) {
            break;
        }
    }
    close(p[0]);
}

/* Reopens after a kill and checks everything the model knows. */
static void crash_verify(struct crash *c)
{
    struct np_spool *sp = open_ok(c->dir, &c->opts);
    if (!sp) {
        return;
    }
    struct np_spool_stats st;
    np_spool_stats(sp, &st);
    if (st.truncated_bytes) {
        c->torn_repaired++;
    }
    CHECK_U64(st.corrupt_bytes, 0);
    CHECK(dir_usage(c->dir, NULL) <= c->opts.max_bytes + NP_SPOOL_STATE_BYTES);
    crash_grow(c, c->next + 1);
    for (size_t s = 0; s < c->cap; s++) {
        c->flags[s] &= (unsigned char)~F_PRESENT;
    }
    struct np_spool_loss l;
    bool got = np_spool_take_loss(sp, &l);

    /* every record: intact, in order, nothing the writer never started */
    uint64_t prev = c->acked, max_present = 0, second = 0;
    for (;;) {
        uint64_t seq;
        int64_t created;
        void *data;
        size_t len;
        struct np_err err = {0};
        int rc = np_spool_read(sp, prev, &seq, &created, &data, &len, &err);
        if (rc == NP_ENODATA) {
            break;
        }
        CHECK_INT(rc, 0);
        if (rc != 0) {
            fprintf(stderr, "crash verify read: %s\n", err.msg);
            break;
        }
        CHECK(seq > prev);
        CHECK(seq <= c->next); /* at most one record past the last one reported */
        CHECK_INT(created, created_of(seq));
        CHECK(payload_ok(seq, data, len, plen(seq, CRASH_MAXLEN)));
        free(data);
        c->checked++;
        if (seq < c->cap) {
            c->flags[seq] |= F_PRESENT | F_KNOWN;
        }
        second = max_present;
        max_present = seq;
        prev = seq;
    }

    /* what the model knew and is gone must be exactly the reported loss */
    struct np_spool_loss want = {0};
    for (uint64_t s = c->acked + 1; s < c->cap && s <= c->next; s++) {
        unsigned char f = c->flags[s];
        if ((f & F_KNOWN) && !(f & (F_DROPPED | F_PRESENT))) {
            loss_add(&want, s, plen(s, CRASH_MAXLEN));
            c->flags[s] |= F_DROPPED;
            if (s > c->max_dropped) {
                c->max_dropped = s;
            }
        }
    }
    CHECK_INT(got, want.batches > 0);
    if (got && want.batches > 0) {
        check_loss(&l, &want);
        c->loss_events++;
        c->dropped += l.batches;
    }
    uint64_t expect_last = max_present;
    if (c->acked > expect_last) {
        expect_last = c->acked;
    }
    if (c->max_dropped > expect_last) {
        expect_last = c->max_dropped;
    }
    CHECK_U64(np_spool_last_seq(sp), expect_last);
    CHECK_U64(np_spool_acked_seq(sp), c->acked);
    c->next = np_spool_last_seq(sp) + 1;

    if (c->ack_one_in && max_present > c->acked && rnd_below(c->ack_one_in) == 0) {
        /* the uplink delivered a random prefix */
        uint64_t a = c->acked + 1 + rnd_below(max_present - c->acked);
        struct np_err err = {0};
        CHECK_INT(np_spool_ack(sp, a, &err), 0);
        c->acked = a;
    }
    np_spool_close(sp);

    /* SIGKILL keeps the page cache, so a torn record only shows when the kill lands
     * inside write(). Also simulate what a power cut leaves: the unsynced last record
     * cut anywhere (only if its append never returned), or the file size grown with
     * zeros. */
    char path[700];
    if (rnd_below(3) == 0 && seg_path(c->dir, SIZE_MAX, path, sizeof path)) {
        uint64_t size = file_size(path);
        size_t rl = HDR + plen(max_present, CRASH_MAXLEN);
        if (max_present > c->acked && max_present < c->cap &&
            !(c->flags[max_present] & F_REPORTED) && size >= rl) {
            CHECK_INT(truncate(path, (off_t)(size - rl + rnd_below(rl))), 0);
            c->flags[max_present] &= (unsigned char)~F_KNOWN;
            uint64_t nx = second > c->acked ? second : c->acked;
            c->next = (nx > c->max_dropped ? nx : c->max_dropped) + 1;
            c->tails_cut++;
        } else {
            int fd = open(path, O_WRONLY | O_APPEND);
            static const unsigned char zeros[64];
            if (fd >= 0) {
                CHECK(write(fd, zeros, 1 + rnd_below(64)) > 0);
                close(fd);
                c->zeros_added++;
            }
        }
    }
}

static void crash_phase(const char *name, struct np_spool_opts opts, unsigned ack_one_in,
                        unsigned kills, double budget_s, struct crash *total)
{
    struct crash c = {.opts = opts, .ack_one_in = ack_one_in, .next = 1};
    new_dir(c.dir, sizeof c.dir);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double el = 0;
    int f0 = check_failures;
    bool want_drops = opts.max_bytes < (1 << 20);
    /* a busy machine gets fewer kills into the budget: the bounded phase then runs on
     * (up to twice as long) until something was dropped */
    while ((c.kills < kills && el < budget_s) ||
           (want_drops && c.dropped == 0 && el < 2 * budget_s)) {
        crash_run(&c);
        crash_verify(&c);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        el = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (check_failures > f0) {
            fprintf(stderr, "crash %s: failed after kill %u\n", name, c.kills);
            break;
        }
    }
    printf("crash %s: %u kills (%u timed from fork) in %.1f s, %" PRIu64
           " appends reported, %" PRIu64 " records checked, %u torn tails repaired, "
           "%u tails cut, %u zero tails, %" PRIu64 " dropped in %u losses, acked to %" PRIu64 "\n",
           name, c.kills, c.runs_from_fork, el, c.reported, c.checked, c.torn_repaired, c.tails_cut,
           c.zeros_added, c.dropped, c.loss_events, c.acked);
    CHECK(c.kills >= 10);
    CHECK(c.reported > 0);
    if (want_drops) {
        CHECK(c.dropped > 0);
    }
    total->kills += c.kills;
    total->checked += c.checked;
    total->reported += c.reported;
    total->dropped += c.dropped;
    free(c.flags);
}

static void test_crash(void)
{
    struct crash total = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* kills per phase, each phase also bounded in time (slow or sanitized builds) */
    crash_phase("plain", (struct np_spool_opts){.max_bytes = 64 << 20}, 0, 250, 4.0, &total);
    crash_phase("acks", (struct np_spool_opts){.max_bytes = 64 << 20}, 2, 250, 4.0, &total);
    crash_phase("bounded",
                (struct np_spool_opts){.max_bytes = 384 << 10, .segment_bytes = 96 << 10}, 8, 250,
                4.0, &total);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double el = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("crash total: %u kills, %" PRIu64 " appends reported, %" PRIu64
           " records checked, %" PRIu64 " dropped, %.1f s\n",
           total.kills, total.reported, total.checked, total.dropped, el);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
    const char *seed = getenv("NP_TEST_SEED");
    rng_state = seed ? strtoull(seed, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
    printf("test_spool: NP_TEST_SEED=%" PRIu64 "\n", rng_state);
    const char *tmp = getenv("TMPDIR");
    snprintf(base_dir, sizeof base_dir, "%s/np_spool_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(base_dir)) {
        perror("mkdtemp");
        return 1;
    }
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"basics", test_basics},
        {"opts", test_opts},
        {"rolling", test_rolling},
        {"torn_tail", test_torn_tail},
        {"corrupt_middle", test_corrupt_middle},
        {"write_failure", test_write_failure},
        {"state_file", test_state_file},
        {"bound", test_bound},
        {"crash", test_crash},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        double t0 = now_s();
        int f0 = check_failures;
        tests[i].fn();
        printf("%-15s %s %.2f s\n", tests[i].name, check_failures > f0 ? "FAILED" : "ok",
               now_s() - t0);
    }
    if (check_failures) {
        fprintf(stderr, "test_spool: keeping %s for inspection\n", base_dir);
    } else {
        rm_tree(base_dir);
    }
    return check_done("test_spool");
}
