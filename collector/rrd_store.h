/* rrd_store: the collector's time series in RRDtool files, written through
 * librrd directly or through rrdcached. The only module that includes rrd.h.
 *
 * Files (created on first sight), under DATA_DIR/rrd/SITE/:
 *   if+DEVICE+IFACE.rrd  DS in_bps, out_bps (GAUGE, bits/s), oper (GAUGE: 1
 *                        when ifOperStatus is up, 0 for any other known
 *                        status, so its average is the fraction of time up) —
 *                        one per interface; IFACE is iface_key.h's key
 *                        (ifName, else ifindex-N)
 *   probe+NAME.rrd       DS rtt_ms, loss (GAUGE 0..1), up (GAUGE 0/1) — one per
 *                        [probe NAME]
 *   flow+SOURCE.rrd      DS web, video, dns, quic, vpn, email, other (GAUGE,
 *                        bits/s of each application class of flow_table.h),
 *                        in, out (GAUGE, bits/s towards / from the local
 *                        prefixes) — one per [pcap SOURCE]; each value is the
 *                        class's bytes of a FlowSummary over its interval
 *                        (end_ms - start_ms), stamped at end_ms
 * Each name component is escaped: bytes outside [A-Za-z0-9._-] and a leading
 * '.' become %XX, so no component is "." or "..", contains '/', or can make
 * two different (device, iface) pairs share a file ('+' itself is escaped).
 *
 * Why GAUGE of rates and not DERIVE of octets: the agent already turns counter
 * readings into rates with the wrap/reset rules of netpulse/counters.h, and
 * sends rate_valid = false for a discontinuity. Stored as GAUGE, such a sample
 * is simply not written (the RRD shows unknown), never a spike; a DERIVE DS
 * would apply RRD's own, weaker reset logic a second time and needs the
 * samples strictly consecutive. The DS maximum is left unknown ('U'): capping
 * at ifSpeed throws away real traffic on interfaces that report a wrong speed
 * and so biases the 95th percentile low.
 *
 * Step and archives. A file's step comes from the interval of its first
 * sample (np_rrd_step_for() below: the interval rounded down to a divisor of 60
 * s below a minute, to 60 s below 5 minutes, else 300 s); heartbeat =
 * 2 x max(interval, step). Archives (rows computed from the step):
 *   AVERAGE at 1 minute for 14 days (at the step if the step is longer),
 *   AVERAGE and MAX at 5 minutes for 400 days (the annual 95th percentile),
 *   AVERAGE and MAX at 1 hour for 5 years,
 *   AVERAGE and MAX at 1 day for 10 years; xff 0.5.
 *
 * Time order. RRD cannot write into the past: an update older than or equal
 * to the file's last update is refused (and, through rrdcached, would make it
 * reject the whole update command). So samples of one file must be written in
 * time order, and a backlog replayed after an outage must be sorted first:
 * np_rrd_store_write() sorts what it is given per file, and whatever is still
 * older than the file's last update (already written, or a replay) is skipped
 * and counted in late_skipped, never an error.
 *
 * Threads: a store may be used by several threads at once (e.g. uv_queue_work
 * jobs). The last-update table is guarded by a lock striped by file name.
 * Through rrdcached (rrdc_conn.h) each write call takes a pooled connection of
 * its own and sends all its updates as one BATCH after preparing them; the
 * daemon keeps each connection's commands in order, so two threads must not
 * write samples of the same file at once (ingest never applies two batches of
 * one agent at once, and files belong to one agent's site). An update the
 * daemon refuses is taken back from `written`, counted in `errors`, and the
 * file's last update is asked again on its next write.
 * Calls block on disk or socket I/O: never call from the event loop thread.
 *
 * Errors: 0 or a negative code: NP_ERRD (librrd or rrdcached failed; err->msg
 * carries rrd_get_error() or the daemon's message), -EINVAL, -ENAMETOOLONG,
 * -ENOENT (fetch of a file that does not exist), -ENOMEM, -errno from creating
 * folders or from the daemon's socket, NP_EPROTO (a malformed daemon reply).
 * err may be NULL.
 * Ownership: every pointer argument is borrowed for the call only. */
#ifndef NP_COLLECTOR_RRD_STORE_H
#define NP_COLLECTOR_RRD_STORE_H

#include "netpulse/err.h"
#include "netpulse/wire.h"

#include <jansson.h>

#include <stddef.h>
#include <stdint.h>

struct np_rrd_store;

enum np_rrd_kind {
    NP_RRD_IFACE, /* name1 = device, name2 = iface key */
    NP_RRD_PROBE, /* name1 = probe name, name2 unused (NULL) */
    NP_RRD_FLOW,  /* name1 = [pcap] source, name2 unused (NULL) */
};

#define NP_RRD_VALUES 3     /* data sources per interface or probe file */
#define NP_RRD_MAX_VALUES 9 /* data sources of the widest kind (flow) */

/* Data sources of a kind's files (NP_RRD_VALUES, or 9 for NP_RRD_FLOW). */
unsigned np_rrd_kind_values(enum np_rrd_kind kind);

/* One row to write: values in DS order (see above); NAN = unknown. Values
 * past the kind's data sources are ignored. */
struct np_rrd_sample {
    enum np_rrd_kind kind;
    const char *site;
    const char *name1;
    const char *name2;
    int64_t time_s;      /* wall-clock seconds */
    int64_t interval_ms; /* the interval the value covers; picks the step of a new file */
    double v[NP_RRD_MAX_VALUES];
};

struct np_rrd_store_options {
    const char *data_dir;  /* files go under DATA_DIR/rrd */
    const char *rrdcached; /* "unix:/path" (a local socket only); NULL or "": librrd directly */
};

/* Counters of one write call (added to, not reset: zero it first). */
struct np_rrd_write_stats {
    uint64_t written;      /* samples written (or handed to rrdcached) */
    uint64_t late_skipped; /* samples not newer than their file's last update */
    uint64_t invalid;      /* samples with nothing to write (no valid rate) */
    uint64_t files_created;
    uint64_t errors; /* samples lost to a failing file (see return value) */
};

/* The step a new file gets for a sample interval (see above); seconds. */
unsigned np_rrd_step_for(int64_t interval_ms);

/* Creates a store; creates DATA_DIR/rrd if missing. With rrdcached set, the
 * daemon must run with its base folder (-b) at or above DATA_DIR/rrd;
 * connecting happens on first use. *out is freed with np_rrd_store_free(). */
int np_rrd_store_new(const struct np_rrd_store_options *opt, struct np_rrd_store **out,
                     struct np_err *err);

/* Flushes nothing (rrdcached keeps its own queue) and frees; accepts NULL. */
void np_rrd_store_free(struct np_rrd_store *store);

/* Path of the file for (kind, site, name1, name2) into buf. */
int np_rrd_store_path(const struct np_rrd_store *store, enum np_rrd_kind kind, const char *site,
                      const char *name1, const char *name2, char *buf, size_t len);

/* Sorts samples[0..n) in place by file, then time: the order RRD needs. */
void np_rrd_store_sort(struct np_rrd_sample *samples, size_t n);

/* Writes samples (sorted in place first), creating files on first sight.
 * Samples with every value unknown (NAN) are counted as invalid and skipped.
 * Goes on past a failing file and returns the first error; stats (may be
 * NULL) says how many samples went where. */
int np_rrd_store_write(struct np_rrd_store *store, struct np_rrd_sample *samples, size_t n,
                       struct np_rrd_write_stats *stats, struct np_err *err);

/* The batch's interface samples and probe results (b borrowed, validated by
 * np_wire_decode) as above, site = b->agent_id: in_bps/out_bps only when
 * rate_valid, oper from oper_status (0 = unknown); rtt_ms = rtt_us / 1000
 * when received > 0, loss = 1 - received / sent when sent > 0, up = ok. */
int np_rrd_store_write_samples(struct np_rrd_store *store, const Netpulse__Batch *b,
                               struct np_rrd_write_stats *stats, struct np_err *err);

/* The batch's flow summaries (b borrowed, validated) as NP_RRD_FLOW rows,
 * site = b->agent_id, name1 = the summary's source, stamped at end_ms / 1000
 * with interval end_ms - start_ms: each application class of by_app and
 * bytes_in / bytes_out as bits/s over the interval (a class the summary does
 * not list is 0). Summaries with an empty interval are counted as invalid.
 * Errors as np_rrd_store_write. */
int np_rrd_store_write_flows(struct np_rrd_store *store, const Netpulse__Batch *b,
                             struct np_rrd_write_stats *stats, struct np_err *err);

/* Flushes rrdcached's queue for the file (no-op without rrdcached), so that
 * tools reading the file directly see everything written. */
int np_rrd_store_flush(struct np_rrd_store *store, enum np_rrd_kind kind, const char *site,
                       const char *name1, const char *name2, struct np_err *err);

/* Reads a file for the API: consolidation cf ("AVERAGE" or "MAX") from
 * from_s to to_s (wall seconds) at resolution step_s (0: the finest archive
 * that covers the range; RRD picks the archive). With rrdcached, the file's
 * queue is flushed first, then the file is read here (the daemon's FETCH has
 * no resolution argument). On success *out is a new
 * JSON array (caller decrefs) of objects {"time": SECONDS, DS: value|null...}
 * (null = unknown) and *step_out (may be NULL) the step RRD answered with. */
int np_rrd_store_fetch(struct np_rrd_store *store, enum np_rrd_kind kind, const char *site,
                       const char *name1, const char *name2, const char *cf, int64_t from_s,
                       int64_t to_s, unsigned step_s, json_t **out, unsigned *step_out,
                       struct np_err *err);

/* Raw rows of a file for the reports (no JSON: a year of 5-minute rows is
 * 105,408 of them per file). Row i covers (start_s + i*step_s, start_s +
 * (i+1)*step_s] as librrd stamps it; v holds n rows of np_rrd_kind_values()
 * values (NP_RRD_VALUES for interfaces and probes)
 * in DS order (NAN = unknown), malloc'ed: np_rrd_series_free(). */
struct np_rrd_series {
    int64_t start_s;
    unsigned step_s;
    size_t n;
    double *v;
};

/* Like np_rrd_store_fetch (same arguments, flushing, errors) into *out. */
int np_rrd_store_fetch_raw(struct np_rrd_store *store, enum np_rrd_kind kind, const char *site,
                           const char *name1, const char *name2, const char *cf, int64_t from_s,
                           int64_t to_s, unsigned step_s, struct np_rrd_series *out,
                           struct np_err *err);

/* Frees out->v and zeroes it; accepts a zeroed series. */
void np_rrd_series_free(struct np_rrd_series *s);

/* Renders a PNG with librrd's rrd_graph_v from rrdtool-graph arguments
 * (argv[0..argc): options and DEF/CDEF/LINE/AREA... elements, without the
 * program and file names; DEF paths from np_rrd_store_path). *png is
 * malloc'ed (caller frees), *len its size. rrd_graph is not re-entrant
 * (getopt state): calls are serialised by a process-wide lock. With
 * rrdcached, flush the files first (np_rrd_store_flush). Errors: NP_ERRD,
 * -ENOMEM. */
int np_rrd_store_graph(struct np_rrd_store *store, int argc, const char *const *argv,
                       unsigned char **png, size_t *len, struct np_err *err);

#endif
