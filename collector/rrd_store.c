#include "rrd_store.h"

#include "iface_key.h"
#include "rrdc_conn.h"

#include <rrd.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define N_STRIPES 64
#define UPDATE_CHUNK 128 /* values per update call or command */
/* rrdcached reads one "update FILE v1 v2 ..." line into a 4096-byte buffer
 * (RRD_CMD_MAX); stay well under it. */
#define CMD_BUDGET 3500
#define POOL_MAX 8      /* idle rrdcached connections kept */
#define LAST_UNKNOWN INT64_MIN /* ask the file (or daemon) again */
#define VALUE_MAX 256 /* "TIME:v:v:v:v:v:v:v:v:v" */

/* Last update time per file, so a write does not ask the file (or the
 * daemon) every time. Filled from the file on first sight. */
struct last_entry {
    struct last_entry *next;
    int64_t last_s;
    char path[];
};

struct stripe {
    pthread_mutex_t lock; /* writes to files of this stripe, and its table */
    struct last_entry **buckets;
    size_t n_buckets, n_entries;
};

struct np_rrd_store {
    char *rrd_dir;
    char *daemon; /* NULL: librrd directly */
    /* Idle connections to the daemon: a writer takes one for its whole call
     * (rrdc_conn.h), so writers never queue on one connection. */
    pthread_mutex_t pool_lock;
    struct np_rrdc_conn *idle[POOL_MAX];
    unsigned n_idle;
    struct stripe stripes[N_STRIPES];
};

static const char *const ds_names[3][NP_RRD_MAX_VALUES] = {
    [NP_RRD_IFACE] = {"in_bps", "out_bps", "oper"},
    [NP_RRD_PROBE] = {"rtt_ms", "loss", "up"},
    [NP_RRD_FLOW] = {"web", "video", "dns", "quic", "vpn", "email", "other", "in", "out"},
};

unsigned np_rrd_kind_values(enum np_rrd_kind kind)
{
    return kind == NP_RRD_FLOW ? 9 : NP_RRD_VALUES;
}

/* ---- names ---------------------------------------------------------------- */

/* Escapes one path component: bytes outside [A-Za-z0-9._-], and a leading '.',
 * become %XX. Returns the length, or -ENAMETOOLONG when it does not fit len. */
static int escape_component(const char *in, char *out, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; in[i]; i++) {
        unsigned char c = (unsigned char)in[i];
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '_' || c == '-' || (c == '.' && i > 0);
        if (o + (plain ? 1 : 3) >= len) {
            return -ENAMETOOLONG;
        }
        if (plain) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return (int)o;
}

static int file_name(enum np_rrd_kind kind, const char *name1, const char *name2, char *buf,
                     size_t len)
{
    char a[NAME_MAX + 1], b[NAME_MAX + 1];
    int n;
    if (!name1 || !name1[0] || (kind == NP_RRD_IFACE && (!name2 || !name2[0]))) {
        return -EINVAL;
    }
    if (escape_component(name1, a, sizeof a) < 0) {
        return -ENAMETOOLONG;
    }
    if (kind == NP_RRD_IFACE) {
        if (escape_component(name2, b, sizeof b) < 0) {
            return -ENAMETOOLONG;
        }
        n = snprintf(buf, len, "if+%s+%s.rrd", a, b);
    } else if (kind == NP_RRD_PROBE) {
        n = snprintf(buf, len, "probe+%s.rrd", a);
    } else if (kind == NP_RRD_FLOW) {
        n = snprintf(buf, len, "flow+%s.rrd", a);
    } else {
        return -EINVAL;
    }
    return n < 0 || (size_t)n >= len || n > NAME_MAX ? -ENAMETOOLONG : 0;
}

int np_rrd_store_path(const struct np_rrd_store *store, enum np_rrd_kind kind, const char *site,
                      const char *name1, const char *name2, char *buf, size_t len)
{
    char s[NAME_MAX + 1], f[NAME_MAX + 1];
    int ret, n;
    if (!site || !site[0]) {
        return -EINVAL;
    }
    if (escape_component(site, s, sizeof s) < 0) {
        return -ENAMETOOLONG;
    }
    ret = file_name(kind, name1, name2, f, sizeof f);
    if (ret < 0) {
        return ret;
    }
    n = snprintf(buf, len, "%s/%s/%s", store->rrd_dir, s, f);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ---- step and layout ------------------------------------------------------ */

unsigned np_rrd_step_for(int64_t interval_ms)
{
    static const unsigned below_minute[] = {30, 20, 15, 12, 10, 6, 5, 4, 3, 2, 1};
    int64_t s = interval_ms / 1000;
    if (s >= 300) {
        return 300;
    }
    if (s >= 60) {
        return 60;
    }
    for (size_t i = 0; i < sizeof below_minute / sizeof below_minute[0]; i++) {
        if (s >= below_minute[i]) {
            return below_minute[i];
        }
    }
    return 1;
}

struct rra_spec {
    const char *cf;
    unsigned resolution_s;
    unsigned keep_days;
};

static const struct rra_spec rras[] = {
    {"AVERAGE", 60, 14}, {"AVERAGE", 300, 400},    {"MAX", 300, 400},    {"AVERAGE", 3600, 1826},
    {"MAX", 3600, 1826}, {"AVERAGE", 86400, 3653}, {"MAX", 86400, 3653},
};
#define N_RRAS (sizeof rras / sizeof rras[0])

/* ---- last-update table ------------------------------------------------------ */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    }
    return h;
}

static struct stripe *stripe_for(struct np_rrd_store *store, const char *path)
{
    return &store->stripes[hash_str(path) % N_STRIPES];
}

static struct last_entry *last_find(struct stripe *st, const char *path)
{
    struct last_entry *e;
    if (!st->n_buckets) {
        return NULL;
    }
    for (e = st->buckets[(hash_str(path) / N_STRIPES) % st->n_buckets]; e; e = e->next) {
        if (strcmp(e->path, path) == 0) {
            return e;
        }
    }
    return NULL;
}

static struct last_entry *last_add(struct stripe *st, const char *path, int64_t last_s)
{
    size_t n = strlen(path);
    struct last_entry *e;
    if (st->n_entries >= st->n_buckets) {
        size_t nb = st->n_buckets ? st->n_buckets * 2 : 64;
        struct last_entry **b = calloc(nb, sizeof *b);
        if (!b) {
            return NULL;
        }
        for (size_t i = 0; i < st->n_buckets; i++) {
            while (st->buckets[i]) {
                struct last_entry *x = st->buckets[i];
                size_t k = (hash_str(x->path) / N_STRIPES) % nb;
                st->buckets[i] = x->next;
                x->next = b[k];
                b[k] = x;
            }
        }
        free(st->buckets);
        st->buckets = b;
        st->n_buckets = nb;
    }
    e = malloc(sizeof *e + n + 1);
    if (!e) {
        return NULL;
    }
    memcpy(e->path, path, n + 1);
    e->last_s = last_s;
    e->next = st->buckets[(hash_str(path) / N_STRIPES) % st->n_buckets];
    st->buckets[(hash_str(path) / N_STRIPES) % st->n_buckets] = e;
    st->n_entries++;
    return e;
}

/* ---- store ------------------------------------------------------------------ */

static int mkdir_one(const char *path, struct np_err *err)
{
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        int ret = -errno;
        return np_err_set(err, ret, "rrd: mkdir %s: %s", path, np_strerror(ret));
    }
    return 0;
}

int np_rrd_store_new(const struct np_rrd_store_options *opt, struct np_rrd_store **out,
                     struct np_err *err)
{
    struct np_rrd_store *store;
    size_t n;
    int ret;

    *out = NULL;
    if (!opt || !opt->data_dir || !opt->data_dir[0]) {
        return np_err_set(err, -EINVAL, "rrd: no data_dir");
    }
    store = calloc(1, sizeof *store);
    if (!store) {
        return np_err_set(err, -ENOMEM, "rrd: out of memory");
    }
    n = strlen(opt->data_dir) + sizeof "/rrd";
    store->rrd_dir = malloc(n);
    if (!store->rrd_dir) {
        ret = np_err_set(err, -ENOMEM, "rrd: out of memory");
        goto out_free;
    }
    snprintf(store->rrd_dir, n, "%s/rrd", opt->data_dir);
    if (opt->rrdcached && opt->rrdcached[0]) {
        /* Files go to the daemon by absolute path, which rrdcached (like
         * librrd's client) accepts only over a local socket. */
        if (!np_rrdc_address_is_local(opt->rrdcached)) {
            ret = np_err_set(err, -EINVAL,
                             "rrd: rrdcached = %s is not a local socket (unix:/path): files are "
                             "named by absolute path, which rrdcached takes only locally",
                             opt->rrdcached);
            goto out_free;
        }
        store->daemon = strdup(opt->rrdcached);
        if (!store->daemon) {
            ret = np_err_set(err, -ENOMEM, "rrd: out of memory");
            goto out_free;
        }
    }
    ret = mkdir_one(store->rrd_dir, err);
    if (ret < 0) {
        goto out_free;
    }
    pthread_mutex_init(&store->pool_lock, NULL);
    for (int i = 0; i < N_STRIPES; i++) {
        pthread_mutex_init(&store->stripes[i].lock, NULL);
    }
    *out = store;
    return 0;

out_free:
    free(store->daemon);
    free(store->rrd_dir);
    free(store);
    return ret;
}

void np_rrd_store_free(struct np_rrd_store *store)
{
    if (!store) {
        return;
    }
    for (int i = 0; i < N_STRIPES; i++) {
        struct stripe *st = &store->stripes[i];
        for (size_t b = 0; b < st->n_buckets; b++) {
            while (st->buckets[b]) {
                struct last_entry *e = st->buckets[b];
                st->buckets[b] = e->next;
                free(e);
            }
        }
        free(st->buckets);
        pthread_mutex_destroy(&st->lock);
    }
    for (unsigned i = 0; i < store->n_idle; i++) {
        np_rrdc_close(store->idle[i]);
    }
    pthread_mutex_destroy(&store->pool_lock);
    free(store->daemon);
    free(store->rrd_dir);
    free(store);
}

/* librrd keeps its error text per thread. */
static int rrd_fail(struct np_err *err, const char *what, const char *path)
{
    const char *msg = rrd_test_error() ? rrd_get_error() : "unknown error";
    np_err_set(err, NP_ERRD, "rrd: %s failed file=%s err=%s", what, path, msg);
    rrd_clear_error();
    return NP_ERRD;
}

/* A connection to the daemon: an idle one, or a new one. */
static int conn_get(struct np_rrd_store *store, struct np_rrdc_conn **out, struct np_err *err)
{
    pthread_mutex_lock(&store->pool_lock);
    *out = store->n_idle ? store->idle[--store->n_idle] : NULL;
    pthread_mutex_unlock(&store->pool_lock);
    return *out ? 0 : np_rrdc_open(store->daemon, out, err);
}

/* Gives conn back; a broken one (ret a negative errno or NP_EPROTO: its
 * reply stream is in an unknown state) is closed. */
static void conn_put(struct np_rrd_store *store, struct np_rrdc_conn *conn, int ret)
{
    if (conn && (ret == 0 || ret == NP_ERRD)) {
        pthread_mutex_lock(&store->pool_lock);
        if (store->n_idle < POOL_MAX) {
            store->idle[store->n_idle++] = conn;
            conn = NULL;
        }
        pthread_mutex_unlock(&store->pool_lock);
    }
    np_rrdc_close(conn);
}

/* One request to the daemon: VERB path args, on *connp (connected first if
 * NULL; closed and set to NULL when it breaks), or on a pooled connection
 * when connp is NULL. Returns the status >= 0 with its message in msg. */
static int daemon_request(struct np_rrd_store *store, struct np_rrdc_conn **connp,
                          const char *verb, const char *path, const char *const *args,
                          size_t nargs, char *msg, size_t msg_len, struct np_err *err)
{
    struct np_rrdc_cmds cmd = {0};
    struct np_rrdc_conn *own = NULL, **c = connp ? connp : &own;
    int ret = np_rrdc_cmds_add(&cmd, verb, path, args, nargs);
    if (ret < 0) {
        np_err_set(err, ret, "rrd: %s command for file=%s: %s", verb, path, np_strerror(ret));
        goto out;
    }
    if (!*c && (ret = conn_get(store, c, err)) < 0) {
        goto out;
    }
    ret = np_rrdc_request(*c, &cmd, msg, msg_len, err);
    if (ret < 0 && err) {
        char what[sizeof err->msg];
        snprintf(what, sizeof what, "%s", err->msg);
        np_err_set(err, ret, "rrd: %s failed file=%s err=%s", verb, path, what);
    }
    if (!connp) {
        conn_put(store, own, ret < 0 ? ret : 0);
    } else if (ret < 0 && ret != NP_ERRD) {
        np_rrdc_close(*c);
        *c = NULL;
    }
out:
    np_rrdc_cmds_free(&cmd);
    return ret;
}

/* Last update of an existing file, or -ENOENT. Caller holds the stripe lock;
 * conn: the caller's daemon connection (see daemon_request), or NULL. */
static int read_last(struct np_rrd_store *store, struct np_rrdc_conn **conn, const char *path,
                     int64_t *last_s, struct np_err *err)
{
    struct stat sb;
    time_t t;
    if (stat(path, &sb) < 0) {
        return -ENOENT;
    }
    if (store->daemon) {
        /* The daemon answers with its queued updates included: "0 TIME". */
        char msg[64], *end;
        long long v;
        int ret = daemon_request(store, conn, "last", path, NULL, 0, msg, sizeof msg, err);
        if (ret < 0) {
            return ret;
        }
        errno = 0;
        v = strtoll(msg, &end, 10);
        if (end == msg || (*end && *end != ' ') || errno || v < 0) {
            return np_err_set(err, NP_EPROTO, "rrd: rrdcached's last for file=%s: \"%.40s\"",
                              path, msg);
        }
        *last_s = (int64_t)v;
        return 0;
    }
    rrd_clear_error();
    t = rrd_last_r(path);
    if (t < 0) {
        return rrd_fail(err, "last", path);
    }
    *last_s = (int64_t)t;
    return 0;
}

static int create_file(struct np_rrd_store *store, struct np_rrdc_conn **conn,
                       const struct np_rrd_sample *s, const char *path, struct np_err *err)
{
    char dsbuf[NP_RRD_MAX_VALUES][64], rrabuf[N_RRAS][64], startbuf[24], stepbuf[16];
    const char *argv[5 + NP_RRD_MAX_VALUES + N_RRAS];
    char dir[PATH_MAX];
    unsigned step = np_rrd_step_for(s->interval_ms);
    /* A day at most: a longer "interval" is a broken agent, not a poll. */
    int64_t interval_s = s->interval_ms > 86400000 ? 86400 : (s->interval_ms + 999) / 1000;
    unsigned heartbeat = 2 * (unsigned)(interval_s > step ? interval_s : step);
    /* The first value is the rate over the interval before it: start the
     * file there so that interval is not unknown. */
    int64_t start = s->time_s - (interval_s > 0 ? interval_s : 1);
    const char *slash;
    int argc = 0, ret, rc;

    if (store->daemon) {
        /* rrdcached's CREATE: "-b START -s STEP -O" (no overwrite), then the
         * definitions. */
        snprintf(startbuf, sizeof startbuf, "%lld", (long long)start);
        snprintf(stepbuf, sizeof stepbuf, "%u", step);
        argv[argc++] = "-b";
        argv[argc++] = startbuf;
        argv[argc++] = "-s";
        argv[argc++] = stepbuf;
        argv[argc++] = "-O";
    }
    /* Ranges: rates 0..unknown (never capped by ifSpeed); the status and
     * up/down 0..1; loss 0..1. */
    for (unsigned i = 0; i < np_rrd_kind_values(s->kind); i++) {
        const char *max =
            (s->kind == NP_RRD_IFACE && i == 2) || (s->kind == NP_RRD_PROBE && i > 0) ? "1" : "U";
        snprintf(dsbuf[i], sizeof dsbuf[i], "DS:%s:GAUGE:%u:0:%s", ds_names[s->kind][i], heartbeat,
                 max);
        argv[argc++] = dsbuf[i];
    }
    for (size_t i = 0; i < N_RRAS; i++) {
        /* Archives finer than the step fall back to the step. */
        unsigned pdp = rras[i].resolution_s / step ? rras[i].resolution_s / step : 1;
        unsigned res = pdp * step;
        unsigned long rows;
        rows = ((unsigned long)rras[i].keep_days * 86400 + res - 1) / res;
        snprintf(rrabuf[i], sizeof rrabuf[i], "RRA:%s:0.5:%u:%lu", rras[i].cf, pdp, rows);
        argv[argc++] = rrabuf[i];
    }

    slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    ret = mkdir_one(dir, err);
    if (ret < 0) {
        return ret;
    }
    if (store->daemon) {
        ret = daemon_request(store, conn, "create", path, argv, (size_t)argc, NULL, 0, err);
        return ret < 0 ? ret : 0;
    }
    rrd_clear_error();
    rc = rrd_create_r2(path, step, (time_t)start, 1, NULL, NULL, argc, argv);
    return rc != 0 ? rrd_fail(err, "create", path) : 0;
}

/* ---- writing ---------------------------------------------------------------- */

static int cmp_sample(const void *a, const void *b)
{
    const struct np_rrd_sample *x = a, *y = b;
    int c;
    if (x->kind != y->kind) {
        return x->kind < y->kind ? -1 : 1;
    }
    if ((c = strcmp(x->site, y->site)) != 0 || (c = strcmp(x->name1, y->name1)) != 0) {
        return c;
    }
    if (x->kind == NP_RRD_IFACE && (c = strcmp(x->name2, y->name2)) != 0) {
        return c;
    }
    return (x->time_s > y->time_s) - (x->time_s < y->time_s);
}

void np_rrd_store_sort(struct np_rrd_sample *samples, size_t n)
{
    qsort(samples, n, sizeof *samples, cmp_sample);
}

static bool same_file(const struct np_rrd_sample *a, const struct np_rrd_sample *b)
{
    return a->kind == b->kind && strcmp(a->site, b->site) == 0 && strcmp(a->name1, b->name1) == 0 &&
           (a->kind != NP_RRD_IFACE || strcmp(a->name2, b->name2) == 0);
}

/* Writes the decimal digits of u at out (room for 20); returns their count. */
static size_t put_u64(char *out, uint64_t u)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    for (size_t i = 0; i < n; i++) {
        out[i] = tmp[n - 1 - i];
    }
    return n;
}

/* Writes v as librrd parses it (strtod) with about 15 significant digits, like
 * "%.15g", into out (room for VALUE_PART_MAX); returns the length. The common
 * range is formatted with integer arithmetic: glibc's printf of a double goes
 * through multi-precision code and was the collector's largest formatting
 * cost at ingest (one value per data source per sample). The fraction
 * a - floor(a) is exact below 2^53; scaling it rounds once, so the last digit
 * may differ from printf's in a tie, far below a sample's own precision. */
#define VALUE_PART_MAX 32
static const uint64_t pow10_u64[16] = {1ull,
                                       10ull,
                                       100ull,
                                       1000ull,
                                       10000ull,
                                       100000ull,
                                       1000000ull,
                                       10000000ull,
                                       100000000ull,
                                       1000000000ull,
                                       10000000000ull,
                                       100000000000ull,
                                       1000000000000ull,
                                       10000000000000ull,
                                       100000000000000ull,
                                       1000000000000000ull};

static size_t put_double(char *out, double v)
{
    double a = fabs(v);
    if (isnan(v) || isinf(v)) {
        out[0] = 'U';
        return 1;
    }
    if (a != 0 && !(a >= 1e-3 && a < 1e15)) {
        return (size_t)snprintf(out, VALUE_PART_MAX, "%.15g", v);
    }
    size_t n = 0;
    if (v < 0) {
        out[n++] = '-';
    }
    uint64_t ip = (uint64_t)a;
    unsigned digits = 0;
    while (digits < 15 && ip >= pow10_u64[digits]) {
        digits++;
    }
    unsigned k = 15 - digits; /* fraction digits */
    uint64_t scale = pow10_u64[k];
    uint64_t f = (uint64_t)((a - (double)ip) * (double)scale + 0.5);
    if (f >= scale) {
        ip++;
        f -= scale;
    }
    n += put_u64(out + n, ip);
    if (f) {
        while (f % 10 == 0) {
            f /= 10;
            k--;
        }
        out[n++] = '.';
        for (unsigned i = k; i-- > 0;) {
            out[n + i] = (char)('0' + f % 10);
            f /= 10;
        }
        n += k;
    }
    return n;
}

/* "TIME:v:v..." for an update: hand-rolled (see put_double), VALUE_MAX is
 * enough for NP_RRD_MAX_VALUES parts. */
static void format_value(const struct np_rrd_sample *s, char *buf, size_t len)
{
    char tmp[24 + NP_RRD_MAX_VALUES * (VALUE_PART_MAX + 1)];
    size_t n = 0;
    if (s->time_s < 0) {
        tmp[n++] = '-';
        n += put_u64(tmp + n, (uint64_t)0 - (uint64_t)s->time_s);
    } else {
        n += put_u64(tmp + n, (uint64_t)s->time_s);
    }
    for (unsigned i = 0; i < np_rrd_kind_values(s->kind); i++) {
        tmp[n++] = ':';
        n += put_double(tmp + n, s->v[i]);
    }
    if (n >= len) {
        n = len - 1;
    }
    memcpy(buf, tmp, n);
    buf[n] = '\0';
}

/* One write call's traffic with rrdcached: its connection, and the update
 * commands gathered for one BATCH with the file entry each belongs to. */
struct daemon_batch {
    struct np_rrdc_conn *conn;
    struct np_rrdc_cmds cmds;
    struct sent {
        struct last_entry *e;
        unsigned n_values;
        bool failed; /* already taken back */
    } *sent;
    size_t sent_cap;
    unsigned n_failed;
    struct np_rrd_store *store;
    struct np_rrd_write_stats *stats;
    struct np_err *err; /* the first failure's detail, or NULL */
};

/* Queues an update command; returns 0 or a negative code (not sent). */
static int batch_add(struct daemon_batch *db, struct last_entry *e, const char **values, int n)
{
    int num;
    if (db->cmds.n >= db->sent_cap) {
        size_t cap = db->sent_cap ? db->sent_cap * 2 : 256;
        struct sent *x = realloc(db->sent, cap * sizeof *x);
        if (!x) {
            return -ENOMEM;
        }
        db->sent = x;
        db->sent_cap = cap;
    }
    num = np_rrdc_cmds_add(&db->cmds, "update", e->path, values, (size_t)n);
    if (num < 0) {
        return num;
    }
    db->sent[num - 1] = (struct sent){e, (unsigned)n, false};
    return 0;
}

/* A command the daemon refused, or one whose fate is unknown: its values
 * are not counted as written, and the file's last update is asked again on
 * its next write (rrdcached keeps the values before a refused one). */
static void batch_failed(struct daemon_batch *db, unsigned number, const char *msg)
{
    struct sent *x = &db->sent[number - 1];
    struct stripe *st = stripe_for(db->store, x->e->path);
    if (x->failed) {
        return; /* reported by the daemon, then the stream broke */
    }
    x->failed = true;
    db->stats->written -= x->n_values;
    db->stats->errors += x->n_values;
    pthread_mutex_lock(&st->lock);
    x->e->last_s = LAST_UNKNOWN;
    pthread_mutex_unlock(&st->lock);
    if (db->n_failed++ == 0 && msg) {
        np_err_set(db->err, NP_ERRD, "rrd: update (rrdcached) failed file=%s err=%.160s",
                   x->e->path, msg);
    }
}

static void on_batch_error(void *ctx, unsigned number, const char *msg)
{
    batch_failed(ctx, number, msg);
}

/* Sends the gathered commands as one BATCH. Returns 0, NP_ERRD when some
 * were refused, or the connection's error (every command failed then). */
static int batch_send(struct daemon_batch *db)
{
    struct np_err cerr = {0};
    int ret = 0;
    if (db->cmds.n == 0) {
        return 0;
    }
    if (!db->conn) {
        ret = conn_get(db->store, &db->conn, &cerr);
    }
    if (ret == 0) {
        ret = np_rrdc_batch(db->conn, &db->cmds, on_batch_error, db, &cerr);
    }
    if (ret < 0) {
        /* Where the stream broke is not known: all of it counts as failed. */
        for (unsigned i = 1; i <= db->cmds.n; i++) {
            batch_failed(db, i, NULL);
        }
        np_err_set(db->err, ret, "rrd: batch to rrdcached failed: %s", cerr.msg);
        np_rrdc_close(db->conn);
        db->conn = NULL;
        return ret;
    }
    np_rrdc_cmds_reset(&db->cmds);
    return db->n_failed ? NP_ERRD : 0;
}

/* Hands values[0..n) of a file to librrd, or queues them for rrdcached. */
static int send_values(struct daemon_batch *db, struct last_entry *e, const char **values, int n,
                       struct np_err *err)
{
    if (db) {
        int ret = batch_add(db, e, values, n);
        return ret < 0 ? np_err_set(err, ret, "rrd: update for file=%s: %s", e->path,
                                    np_strerror(ret))
                       : 0;
    }
    rrd_clear_error();
    if (rrd_updatex_r(e->path, NULL, 0, n, values) != 0) {
        return rrd_fail(err, "update", e->path);
    }
    return 0;
}

/* The entry of a file with its last update known: read from the file (or
 * daemon), or the file created from samples[first] (*first moves past
 * samples without a time). *e is NULL when no sample has a time. */
static int file_entry(struct np_rrd_store *store, struct np_rrdc_conn **conn, struct stripe *st,
                      const struct np_rrd_sample *samples, size_t n, size_t *first,
                      const char *path, struct np_rrd_write_stats *stats, struct last_entry **e,
                      struct np_err *err)
{
    int64_t last_s = 0;
    int ret;
    *e = last_find(st, path);
    if (*e && (*e)->last_s != LAST_UNKNOWN) {
        return 0;
    }
    ret = read_last(store, conn, path, &last_s, err);
    if (ret == -ENOENT) {
        /* New file: its first sample decides the step. */
        while (*first < n && samples[*first].time_s <= 0) {
            (*first)++;
        }
        if (*first == n) {
            *e = NULL;
            return 0;
        }
        ret = create_file(store, conn, &samples[*first], path, err);
        if (ret < 0) {
            return ret;
        }
        stats->files_created++;
        last_s = 0; /* before the first sample: the file's start */
    } else if (ret < 0) {
        return ret;
    }
    if (*e) {
        (*e)->last_s = last_s;
        return 0;
    }
    *e = last_add(st, path, last_s);
    return *e ? 0 : np_err_set(err, -ENOMEM, "rrd: out of memory");
}

/* Writes samples[0..n) of one file, in time order; with db, queues them for
 * one BATCH (counted as written, taken back if the daemon refuses them).
 * Caller holds its stripe. */
static int write_file(struct np_rrd_store *store, struct daemon_batch *db, struct stripe *st,
                      const struct np_rrd_sample *samples, size_t n, const char *path,
                      struct np_rrd_write_stats *stats, struct np_err *err)
{
    char(*vals)[VALUE_MAX] = NULL;
    const char **argv = NULL;
    struct last_entry *e;
    size_t first = 0, chunk_start, cmd_len;
    int ret, argc;

    ret = file_entry(store, db ? &db->conn : NULL, st, samples, n, &first, path, stats, &e, err);
    if (ret < 0 || !e) {
        return ret;
    }
    vals = malloc(UPDATE_CHUNK * sizeof *vals);
    argv = malloc(UPDATE_CHUNK * sizeof *argv);
    if (!vals || !argv) {
        ret = np_err_set(err, -ENOMEM, "rrd: out of memory");
        goto out_free;
    }
    chunk_start = first;
    while (chunk_start < n) {
        int64_t chunk_last = e->last_s;
        size_t i;
        argc = 0;
        cmd_len = strlen(path) + 16;
        for (i = chunk_start; i < n && argc < UPDATE_CHUNK; i++) {
            size_t l;
            /* RRD refuses any time not after the last update (it cannot
             * insert into the past), and rrdcached would refuse the rest of
             * the command for one such value: skip and count them here. */
            if (samples[i].time_s <= chunk_last) {
                stats->late_skipped++;
                continue;
            }
            format_value(&samples[i], vals[argc], VALUE_MAX);
            l = strlen(vals[argc]) + 1;
            if (db && cmd_len + l > CMD_BUDGET) {
                break;
            }
            cmd_len += l;
            argv[argc] = vals[argc];
            argc++;
            chunk_last = samples[i].time_s;
        }
        if (argc > 0) {
            ret = send_values(db, e, argv, argc, err);
            if (ret < 0) {
                stats->errors += (uint64_t)argc;
                e->last_s = LAST_UNKNOWN; /* what reached the file: ask it */
                goto out_free;
            }
            stats->written += (uint64_t)argc;
            e->last_s = chunk_last;
        }
        chunk_start = i;
    }

out_free:
    free(vals);
    free(argv);
    return ret;
}

int np_rrd_store_write(struct np_rrd_store *store, struct np_rrd_sample *samples, size_t n,
                       struct np_rrd_write_stats *stats, struct np_err *err)
{
    struct np_rrd_write_stats local = {0};
    struct daemon_batch batch = {0}, *db = NULL;
    char path[PATH_MAX];
    size_t i = 0, kept = 0;
    int first_ret = 0;

    if (!stats) {
        stats = &local;
    }
    /* Samples with nothing to say are dropped before sorting. */
    for (size_t k = 0; k < n; k++) {
        const struct np_rrd_sample *s = &samples[k];
        bool any = false;
        for (unsigned v = 0; v < np_rrd_kind_values(s->kind); v++) {
            any = any || isfinite(s->v[v]);
        }
        if (!any || !s->site || !s->name1 || (s->kind == NP_RRD_IFACE && !s->name2)) {
            stats->invalid++;
            continue;
        }
        samples[kept++] = *s;
    }
    np_rrd_store_sort(samples, kept);
    if (store->daemon) {
        batch.store = store;
        batch.stats = stats;
        db = &batch; /* connects on first need */
    }
    while (i < kept) {
        size_t j = i + 1;
        struct stripe *st;
        int ret;
        while (j < kept && same_file(&samples[i], &samples[j])) {
            j++;
        }
        ret = np_rrd_store_path(store, samples[i].kind, samples[i].site, samples[i].name1,
                                samples[i].name2, path, sizeof path);
        if (ret < 0) {
            np_err_set(err, ret, "rrd: no file name for site=%.64s name=%.64s: %s", samples[i].site,
                       samples[i].name1, np_strerror(ret));
        } else {
            st = stripe_for(store, path);
            pthread_mutex_lock(&st->lock);
            ret = write_file(store, db, st, &samples[i], j - i, path, stats,
                             first_ret < 0 ? NULL : err);
            pthread_mutex_unlock(&st->lock);
        }
        if (ret < 0 && first_ret == 0) {
            first_ret = ret;
        }
        i = j;
    }
    if (db) {
        int ret;
        db->err = first_ret < 0 ? NULL : err;
        ret = batch_send(db);
        if (ret < 0 && first_ret == 0) {
            first_ret = ret;
        }
        if (db->conn) {
            conn_put(store, db->conn, 0);
        }
        np_rrdc_cmds_free(&db->cmds);
        free(db->sent);
    }
    return first_ret;
}

int np_rrd_store_write_samples(struct np_rrd_store *store, const Netpulse__Batch *b,
                               struct np_rrd_write_stats *stats, struct np_err *err)
{
    size_t n = b->n_samples + b->n_probes, k = 0;
    struct np_rrd_sample *rows;
    char(*keys)[NP_IFACE_KEY_MAX] = NULL;
    int ret;

    if (n == 0) {
        return 0;
    }
    rows = calloc(n, sizeof *rows);
    if (b->n_samples) {
        keys = malloc(b->n_samples * sizeof *keys);
    }
    if (!rows || (b->n_samples && !keys)) {
        free(rows);
        free(keys);
        return np_err_set(err, -ENOMEM, "rrd: out of memory");
    }
    for (size_t i = 0; i < b->n_samples; i++) {
        const Netpulse__InterfaceSample *s = b->samples[i];
        if (s->interval_ms <= 0) {
            /* An agent's first poll of an interface: no rate, and no interval
             * to pick a new file's step from (a 1 s step would make every
             * later, slower poll miss its heartbeat and read as unknown). */
            if (stats) {
                stats->invalid++;
            }
            continue;
        }
        struct np_rrd_sample *r = &rows[k++];
        r->kind = NP_RRD_IFACE;
        r->site = b->agent_id;
        r->name1 = s->device;
        r->name2 = np_iface_key(s->if_name, s->if_index, keys[i], sizeof keys[i]);
        r->time_s = s->time_ms / 1000;
        r->interval_ms = s->interval_ms;
        r->v[0] = s->rate_valid ? s->in_bps : NAN;
        r->v[1] = s->rate_valid ? s->out_bps : NAN;
        r->v[2] = s->oper_status == NETPULSE__IF_STATUS__IF_STATUS_UNKNOWN ? NAN
                  : s->oper_status == NETPULSE__IF_STATUS__IF_STATUS_UP    ? 1.0
                                                                           : 0.0;
    }
    for (size_t i = 0; i < b->n_probes; i++) {
        const Netpulse__ProbeResult *p = b->probes[i];
        struct np_rrd_sample *r = &rows[k++];
        r->kind = NP_RRD_PROBE;
        r->site = b->agent_id;
        r->name1 = p->name;
        r->name2 = NULL;
        r->time_s = p->time_ms / 1000;
        r->interval_ms = p->interval_ms;
        r->v[0] = p->received > 0 ? (double)p->rtt_us / 1000.0 : NAN;
        r->v[1] = p->sent > 0 ? 1.0 - (double)p->received / (double)p->sent : NAN;
        r->v[2] = p->ok ? 1.0 : 0.0;
    }
    ret = np_rrd_store_write(store, rows, k, stats, err);
    free(rows);
    free(keys);
    return ret;
}

/* bits/s of bytes over interval_ms. */
static double flow_bps(uint64_t bytes, int64_t interval_ms)
{
    return (double)bytes * 8.0 * 1000.0 / (double)interval_ms;
}

int np_rrd_store_write_flows(struct np_rrd_store *store, const Netpulse__Batch *b,
                             struct np_rrd_write_stats *stats, struct np_err *err)
{
    /* DS order of NP_RRD_FLOW; names as flow_table.h's np_flow_app_name(). */
    static const char *const classes[7] = {"web", "video", "dns", "quic", "vpn", "email", "other"};
    struct np_rrd_write_stats local = {0};
    struct np_rrd_sample *rows;
    size_t k = 0;
    int ret;

    if (!stats) {
        stats = &local;
    }
    if (b->n_flows == 0) {
        return 0;
    }
    rows = calloc(b->n_flows, sizeof *rows);
    if (!rows) {
        return np_err_set(err, -ENOMEM, "rrd: out of memory");
    }
    for (size_t i = 0; i < b->n_flows; i++) {
        const Netpulse__FlowSummary *f = b->flows[i];
        int64_t interval_ms = f->end_ms - f->start_ms;
        if (interval_ms <= 0 || !f->source || !f->source[0]) {
            stats->invalid++; /* one instant: no rate */
            continue;
        }
        struct np_rrd_sample *r = &rows[k++];
        r->kind = NP_RRD_FLOW;
        r->site = b->agent_id;
        r->name1 = f->source;
        r->name2 = NULL;
        r->time_s = f->end_ms / 1000;
        r->interval_ms = interval_ms;
        for (size_t c = 0; c < 7; c++) {
            r->v[c] = 0.0;
        }
        for (size_t a = 0; a < f->n_by_app; a++) {
            const Netpulse__NamedCount *nc = f->by_app[a];
            size_t c = 0;
            while (c < 7 && (!nc->name || strcmp(nc->name, classes[c]) != 0)) {
                c++;
            }
            /* An unknown class name (a newer agent) counts as other. */
            r->v[c < 7 ? c : 6] += flow_bps(nc->bytes, interval_ms);
        }
        r->v[7] = flow_bps(f->bytes_in, interval_ms);
        r->v[8] = flow_bps(f->bytes_out, interval_ms);
    }
    ret = np_rrd_store_write(store, rows, k, stats, err);
    free(rows);
    return ret;
}

static int flush_path(struct np_rrd_store *store, const char *path, struct np_err *err)
{
    int ret = daemon_request(store, NULL, "flush", path, NULL, 0, NULL, 0, err);
    return ret < 0 ? ret : 0;
}

int np_rrd_store_flush(struct np_rrd_store *store, enum np_rrd_kind kind, const char *site,
                       const char *name1, const char *name2, struct np_err *err)
{
    char path[PATH_MAX];
    int ret = np_rrd_store_path(store, kind, site, name1, name2, path, sizeof path);
    if (ret < 0) {
        return np_err_set(err, ret, "rrd: bad name: %s", np_strerror(ret));
    }
    if (!store->daemon) {
        return 0;
    }
    return flush_path(store, path, err);
}

int np_rrd_store_fetch(struct np_rrd_store *store, enum np_rrd_kind kind, const char *site,
                       const char *name1, const char *name2, const char *cf, int64_t from_s,
                       int64_t to_s, unsigned step_s, json_t **out, unsigned *step_out,
                       struct np_err *err)
{
    char path[PATH_MAX];
    time_t start = (time_t)from_s, end = (time_t)to_s;
    unsigned long step = step_s, ds_cnt = 0;
    char **ds_names_out = NULL;
    rrd_value_t *data = NULL;
    json_t *arr = NULL;
    struct stat sb;
    int ret, rc;

    *out = NULL;
    if (!cf || (strcmp(cf, "AVERAGE") != 0 && strcmp(cf, "MAX") != 0)) {
        return np_err_set(err, -EINVAL, "rrd: consolidation must be AVERAGE or MAX");
    }
    if (from_s <= 0 || to_s <= from_s) {
        return np_err_set(err, -EINVAL, "rrd: empty or negative time range");
    }
    ret = np_rrd_store_path(store, kind, site, name1, name2, path, sizeof path);
    if (ret < 0) {
        return np_err_set(err, ret, "rrd: bad name: %s", np_strerror(ret));
    }
    if (stat(path, &sb) < 0) {
        return np_err_set(err, -ENOENT, "rrd: no series for site=%s name=%s", site, name1);
    }
    if (step == 0) {
        step = 1;
    }
    /* Through rrdcached: flush the file's queue, then read the file here.
     * The daemon's own FETCH command takes no resolution (it always answers
     * from the finest archive), so it cannot serve step_s. */
    if (store->daemon) {
        ret = flush_path(store, path, err);
        if (ret < 0) {
            return ret;
        }
    }
    rrd_clear_error();
    rc = rrd_fetch_r(path, cf, &start, &end, &step, &ds_cnt, &ds_names_out, &data);
    ret = rc != 0 ? rrd_fail(err, "fetch", path) : 0;
    if (ret < 0) {
        goto out_free;
    }
    arr = json_array();
    if (!arr) {
        ret = np_err_set(err, -ENOMEM, "rrd: out of memory");
        goto out_free;
    }
    /* librrd's rows are (start, end]: the first row is stamped start + step. */
    for (time_t t = start + (time_t)step; t <= end; t += (time_t)step) {
        size_t row = (size_t)((t - start) / (time_t)step) - 1;
        json_t *o = json_pack("{s:I}", "time", (json_int_t)t);
        if (!o || json_array_append_new(arr, o) < 0) {
            ret = np_err_set(err, -ENOMEM, "rrd: out of memory");
            goto out_free;
        }
        for (unsigned long d = 0; d < ds_cnt; d++) {
            double v = data[row * ds_cnt + d];
            if (json_object_set_new(o, ds_names_out[d], isnan(v) ? json_null() : json_real(v)) <
                0) {
                ret = np_err_set(err, -ENOMEM, "rrd: out of memory");
                goto out_free;
            }
        }
    }
    *out = arr;
    arr = NULL;
    if (step_out) {
        *step_out = (unsigned)step;
    }
out_free:
    json_decref(arr);
    if (ds_names_out) {
        for (unsigned long d = 0; d < ds_cnt; d++) {
            rrd_freemem(ds_names_out[d]);
        }
        rrd_freemem(ds_names_out);
    }
    rrd_freemem(data);
    return ret;
}

/* ---- raw rows and graphs for the reports ------------------------------------ */

void np_rrd_series_free(struct np_rrd_series *s)
{
    if (s) {
        free(s->v);
        memset(s, 0, sizeof *s);
    }
}

int np_rrd_store_fetch_raw(struct np_rrd_store *store, enum np_rrd_kind kind, const char *site,
                           const char *name1, const char *name2, const char *cf, int64_t from_s,
                           int64_t to_s, unsigned step_s, struct np_rrd_series *out,
                           struct np_err *err)
{
    char path[PATH_MAX];
    time_t start = (time_t)from_s, end = (time_t)to_s;
    unsigned long step = step_s ? step_s : 1, ds_cnt = 0, rows;
    char **names = NULL;
    rrd_value_t *data = NULL;
    struct stat sb;
    int ret;

    memset(out, 0, sizeof *out);
    if (!cf || (strcmp(cf, "AVERAGE") != 0 && strcmp(cf, "MAX") != 0)) {
        return np_err_set(err, -EINVAL, "rrd: consolidation must be AVERAGE or MAX");
    }
    if (from_s <= 0 || to_s <= from_s) {
        return np_err_set(err, -EINVAL, "rrd: empty or negative time range");
    }
    ret = np_rrd_store_path(store, kind, site, name1, name2, path, sizeof path);
    if (ret < 0) {
        return np_err_set(err, ret, "rrd: bad name: %s", np_strerror(ret));
    }
    if (stat(path, &sb) < 0) {
        return np_err_set(err, -ENOENT, "rrd: no series for site=%s name=%s", site, name1);
    }
    if (store->daemon && (ret = flush_path(store, path, err)) < 0) {
        return ret;
    }
    rrd_clear_error();
    if (rrd_fetch_r(path, cf, &start, &end, &step, &ds_cnt, &names, &data) != 0) {
        return rrd_fail(err, "fetch", path);
    }
    rows = end > start ? (unsigned long)(end - start) / step : 0;
    unsigned long width = np_rrd_kind_values(kind);
    out->v = malloc((rows ? rows : 1) * width * sizeof *out->v);
    if (!out->v) {
        ret = np_err_set(err, -ENOMEM, "rrd: out of memory");
    } else {
        for (unsigned long r = 0; r < rows; r++) {
            for (unsigned long d = 0; d < width; d++) {
                out->v[r * width + d] = d < ds_cnt ? data[r * ds_cnt + d] : NAN;
            }
        }
        out->start_s = (int64_t)start;
        out->step_s = (unsigned)step;
        out->n = rows;
    }
    for (unsigned long d = 0; d < ds_cnt; d++) {
        rrd_freemem(names[d]);
    }
    rrd_freemem(names);
    rrd_freemem(data);
    return ret;
}

static pthread_mutex_t graph_lock = PTHREAD_MUTEX_INITIALIZER;

int np_rrd_store_graph(struct np_rrd_store *store, int argc, const char *const *argv,
                       unsigned char **png, size_t *len, struct np_err *err)
{
    char **args = calloc((size_t)argc + 3, sizeof *args);
    rrd_info_t *info, *i;
    int ret = NP_ERRD;

    (void)store;
    *png = NULL;
    *len = 0;
    if (!args) {
        return np_err_set(err, -ENOMEM, "rrd: out of memory");
    }
    /* rrd_graph_v takes a command line: argv[0] the command, argv[1] the
     * file; "-" keeps the image in memory (the "image" blob of the answer). */
    args[0] = (char *)"graphv";
    args[1] = (char *)"-";
    for (int k = 0; k < argc; k++) {
        args[k + 2] = (char *)argv[k];
    }
    pthread_mutex_lock(&graph_lock);
    rrd_clear_error();
    info = rrd_graph_v(argc + 2, args);
    if (!info) {
        rrd_fail(err, "graph", "-");
    }
    for (i = info; i; i = i->next) {
        if (i->type == RD_I_BLO && strcmp(i->key, "image") == 0) {
            *png = malloc(i->value.u_blo.size ? i->value.u_blo.size : 1);
            if (!*png) {
                ret = np_err_set(err, -ENOMEM, "rrd: out of memory");
                break;
            }
            memcpy(*png, i->value.u_blo.ptr, i->value.u_blo.size);
            *len = i->value.u_blo.size;
            ret = 0;
            break;
        }
    }
    if (info && ret == NP_ERRD) {
        np_err_set(err, NP_ERRD, "rrd: graph returned no image");
    }
    rrd_info_free(info);
    pthread_mutex_unlock(&graph_lock);
    free(args);
    return ret;
}
