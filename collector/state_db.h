/* state_db: the collector's durable state in SQLite — the site inventory,
 * enrolled agents and their token hashes, the highest batch sequence applied
 * per agent, the devices and interfaces seen, and events.
 *
 * File: DATA_DIR/state.db, journal_mode=WAL, foreign keys on, busy timeout
 * 5 s (the `netpulse` CLI and the daemon may use the file at the same time).
 * The schema is created on open and versioned with PRAGMA user_version; a file
 * written by a newer netpulse (higher user_version) is refused with
 * NP_EVERSION. Every statement is prepared once on open with bound
 * parameters; no SQL is ever built from input.
 *
 * Durability: ingest writes (np_state_db_apply_batch) commit with
 * synchronous=NORMAL: in WAL mode the file stays consistent, and a commit lost
 * to a power cut is replayed from the collector's fsynced ingest journal
 * (applying is idempotent because the applied sequence number is advanced in
 * the same transaction). Changes made by people (enrol, revoke, site import)
 * commit with synchronous=FULL: they have no journal behind them.
 *
 * Identifiers. Site ids (= agent ids) are 1..64 bytes of [A-Za-z0-9._-], not
 * starting with '.' or '-' (the wire rule for Batch.agent_id); anything else
 * is refused with -EINVAL.
 *
 * Tokens. np_state_db_agent_enrol() draws 32 bytes from OpenSSL's RAND_bytes
 * and returns them once as "np1_" + base64url without padding (47 chars).
 * Stored: a 16-byte random salt, SHA-256(salt || token) and a lookup tag (the
 * first 8 bytes of SHA-256(token), hex) so that authentication finds the
 * candidate row by index instead of hashing against every agent. A slow KDF is
 * not needed: the token has 256 bits of entropy, nothing to brute-force.
 *
 * Threads: a struct np_state_db is one SQLite connection (opened
 * SQLITE_OPEN_NOMUTEX) and may be used by one thread at a time; the caller
 * serialises calls (e.g. one uv_queue_work job at a time, or a mutex). Several
 * threads may each open their own struct np_state_db on the same file.
 * Every call blocks on disk I/O: never call from the event loop thread.
 *
 * Errors: 0, or a negative code: NP_EDB (SQLite failed; err->msg has
 * sqlite3_errmsg), NP_EVERSION, NP_EAUTH, -EINVAL (bad argument), -ENOENT
 * (unknown site or agent), -EEXIST, -ENOMEM, -ERANGE. err may be NULL. */
#ifndef NP_COLLECTOR_STATE_DB_H
#define NP_COLLECTOR_STATE_DB_H

#include "netpulse/err.h"
#include "netpulse/wire.h"
#include "outage.h"

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NP_STATE_DB_SCHEMA_VERSION 4 /* 2: maintenance, circuit_rates; 3: outages; 4: flows */
#define NP_STATE_DB_MAX_ID 64      /* bytes of a site/agent id */
#define NP_STATE_DB_TOKEN_LEN 47   /* "np1_" + 43 base64url chars */
#define NP_STATE_DB_TOKEN_BUFSZ 48 /* with the NUL */

struct np_state_db;

enum np_school_type {
    NP_SCHOOL_ELEMENTARY,
    NP_SCHOOL_MIDDLE,
    NP_SCHOOL_HIGH,
    NP_SCHOOL_OTHER,
};

/* One row of the inventory. Strings are borrowed by the functions that take
 * a struct np_site; in callbacks they are borrowed for the call only. */
struct np_site {
    const char *id;
    const char *name;
    enum np_school_type school_type;
    uint64_t circuit_bps;  /* provisioned rate; 0: not known */
    uint64_t baseline_bps; /* provisioned rate in the baseline year; 0: not known */
    int baseline_year;     /* 0: not known */
    const char *contacts;  /* free text, e.g. e-mail addresses separated by ';' */
};

/* One enrolled agent, borrowed for the callback only. */
struct np_agent_info {
    const char *id;
    int64_t created_ms;
    int64_t revoked_ms;   /* 0: active */
    int64_t last_seen_ms; /* 0: never */
    uint64_t applied_seq; /* highest batch applied; 0: none */
};

/* Returns 0 for a well-formed site/agent id, else -EINVAL. Any thread. */
int np_state_db_check_id(const char *id);

/* "elementary", "middle", "high", "other" <-> enum. parse returns 0 or -EINVAL. */
const char *np_school_type_name(enum np_school_type t);
int np_school_type_parse(const char *s, enum np_school_type *out);

/* Opens (creating it and its schema when missing) the database at path.
 * path is borrowed. On success *out is freed with np_state_db_close(). */
int np_state_db_open(const char *path, struct np_state_db **out, struct np_err *err);

/* Finalises statements and closes the connection; accepts NULL. */
void np_state_db_close(struct np_state_db *db);

/* Explicit transactions for callers that group several calls (site import).
 * durable: commit with synchronous=FULL. While one is open, the functions
 * below do not open their own. rollback accepts a connection with no open
 * transaction (does nothing). */
int np_state_db_begin(struct np_state_db *db, bool durable, struct np_err *err);
int np_state_db_commit(struct np_state_db *db, struct np_err *err);
void np_state_db_rollback(struct np_state_db *db);

/* Inserts or updates one site (all fields replaced; a stub made by enrolment
 * becomes a real site). *created says which (may be NULL).
 * Errors: -EINVAL (bad id, name empty), NP_EDB. */
int np_state_db_site_upsert(struct np_state_db *db, const struct np_site *site, bool *created,
                            struct np_err *err);

/* Whether the site exists (0 / -ENOENT). */
int np_state_db_site_exists(struct np_state_db *db, const char *id, struct np_err *err);

/* Enrols agent_id and writes its new token (NUL-terminated) into token_out,
 * which must hold NP_STATE_DB_TOKEN_BUFSZ bytes (else -ERANGE). The token is
 * shown nowhere else and not stored: print it once.
 * If the site does not exist yet, a stub site (name = id, school type other,
 * rates unknown) is created so an agent can be installed before the inventory
 * is imported; a later `site import` fills it in. A revoked agent may be
 * enrolled again (new token). Errors: -EEXIST (an active agent with this id:
 * revoke it first), -EINVAL, NP_EDB, -EIO (no randomness). */
int np_state_db_agent_enrol(struct np_state_db *db, const char *agent_id, char *token_out,
                            size_t token_len, struct np_err *err);

/* Revokes the agent's token from now on. Errors: -ENOENT (not enrolled),
 * -EALREADY (already revoked), NP_EDB. */
int np_state_db_agent_revoke(struct np_state_db *db, const char *agent_id, struct np_err *err);

/* Calls cb once per enrolled agent (ordered by id) until cb returns non-zero,
 * which is then returned. ctx is passed through. */
typedef int (*np_state_db_agent_cb)(const struct np_agent_info *agent, void *ctx);
int np_state_db_agent_list(struct np_state_db *db, np_state_db_agent_cb cb, void *ctx);

/* Authenticates a bearer token. On success writes the agent id (NUL-terminated;
 * agent_id_len >= NP_STATE_DB_MAX_ID + 1, else -ERANGE) and returns 0. Unknown,
 * malformed or revoked tokens return NP_EAUTH (the reason is not told apart to
 * the caller on purpose). The hash comparison is constant-time (CRYPTO_memcmp).
 * token is borrowed and never logged. */
int np_state_db_agent_auth(struct np_state_db *db, const char *token, char *agent_id_out,
                           size_t agent_id_len);

/* Records that the agent was heard from at wall_ms (kept monotonic: an older
 * time does not move it back). -ENOENT if not enrolled. */
int np_state_db_agent_seen(struct np_state_db *db, const char *agent_id, int64_t wall_ms,
                           struct np_err *err);

/* Highest batch sequence number applied for agent_id; 0 when none. */
int np_state_db_applied_seq(struct np_state_db *db, const char *agent_id, uint64_t *seq,
                            struct np_err *err);

/* Applies a decoded, validated batch (borrowed) in one transaction: upserts
 * the devices and interfaces seen, records events (a *_DOWN / UNREACHABLE
 * event opens an event row, the matching *_UP / REACHABLE closes it; other
 * types are instantaneous rows), updates the agent's last_seen_ms from
 * created_ms and advances the applied sequence to b->seq.
 * If b->seq <= the applied sequence the batch was applied before: returns 0
 * and changes nothing (*applied = false). applied may be NULL.
 * The caller has authenticated the agent and checked that b->agent_id is it;
 * here b->agent_id must be an enrolled agent (else -ENOENT).
 * Errors: -EINVAL (seq 0 or above INT64_MAX), -ENOENT, NP_EDB. On error
 * nothing is changed. */
int np_state_db_apply_batch(struct np_state_db *db, const Netpulse__Batch *b, bool *applied,
                            struct np_err *err);

/* The inventory for /api/v1/sites: a new JSON array (caller decrefs) of site
 * objects {id, name, school_type, circuit_bps, baseline_bps, baseline_year,
 * contacts, stub, agent: {enrolled, revoked, last_seen_ms, applied_seq} | null,
 * status, since_ms}, ordered by id; unknown numbers are null. status is
 * "no_data" (no agent, or nothing applied yet; since_ms null), "suspected",
 * "link_down" or "agent_down" (an open outage; since_ms its start), else
 * "up" (since_ms: the end of the last outage, else the enrolment). */
int np_state_db_sites_json(struct np_state_db *db, json_t **out, struct np_err *err);

/* One site for /api/v1/sites/{id}: the object above plus "interfaces" (device,
 * if_name, if_index, if_alias, speed_bps, oper_status, first_seen_ms,
 * last_seen_ms), "devices", the newest 100 "events" and "outages" (as
 * np_state_db_outages_json, all times). New reference for the
 * caller. Errors: -ENOENT (no such site), -EINVAL, NP_EDB, -ENOMEM. */
int np_state_db_site_json(struct np_state_db *db, const char *id, json_t **out, struct np_err *err);

/* ---- for the uptime and capacity reports (report_data.h) ----
 * A file of schema version 1 is upgraded to 2 on open (tables added, nothing
 * changed). */

/* One declared maintenance window [start_ms, end_ms); strings borrowed for
 * the callback only. */
struct np_maintenance {
    int64_t id;
    const char *site_id;
    int64_t start_ms, end_ms;
    const char *reason;
    int64_t created_ms;
};
typedef int (*np_state_db_maintenance_cb)(const struct np_maintenance *m, void *ctx);

/* Declares a maintenance window of an existing site (durable commit); *id_out
 * (may be NULL) gets its id. Errors: -EINVAL (bad id, end <= start), -ENOENT
 * (no such site), NP_EDB. reason borrowed. */
int np_state_db_maintenance_add(struct np_state_db *db, const char *site_id, int64_t start_ms,
                                int64_t end_ms, const char *reason, int64_t *id_out,
                                struct np_err *err);

/* Deletes window id. Errors: -ENOENT, NP_EDB. */
int np_state_db_maintenance_delete(struct np_state_db *db, int64_t id, struct np_err *err);

/* Calls cb for each window overlapping [from_ms, to_ms) of site_id (NULL:
 * every site), ordered by site and start, until cb returns non-zero (then
 * returned). */
int np_state_db_maintenance_list(struct np_state_db *db, const char *site_id, int64_t from_ms,
                                 int64_t to_ms, np_state_db_maintenance_cb cb, void *ctx,
                                 struct np_err *err);

/* One outage of a site's uplink as recorded: the outages table (outage.h;
 * suspected ones included, with the cause stored) and the agent's
 * uplink_down event rows (cause "link"); the two may overlap (callers take
 * the union). An open one ends at now_ms (open = true). Borrowed for the
 * callback only. */
struct np_outage_row {
    int64_t start_ms, end_ms;
    bool open;
    const char *cause; /* "link", "agent", "unknown" */
};
typedef int (*np_state_db_outage_cb)(const struct np_outage_row *o, void *ctx);

/* Calls cb for each outage of site_id overlapping [from_ms, to_ms), by start,
 * until cb returns non-zero (then returned). */
int np_state_db_outages_list(struct np_state_db *db, const char *site_id, int64_t from_ms,
                             int64_t to_ms, int64_t now_ms, np_state_db_outage_cb cb, void *ctx,
                             struct np_err *err);

/* Records that site_id's provisioned rate is rate_bps from from_ms on (a
 * circuit upgrade; replaces a change at the same time). Errors: -EINVAL,
 * -ENOENT (no such site), NP_EDB. */
int np_state_db_rate_set(struct np_state_db *db, const char *site_id, int64_t from_ms,
                         uint64_t rate_bps, struct np_err *err);

/* Calls cb(from_ms, rate_bps, ctx) for each recorded rate change of site_id,
 * oldest first, until cb returns non-zero (then returned). */
typedef int (*np_state_db_rate_cb)(int64_t from_ms, uint64_t rate_bps, void *ctx);
int np_state_db_rates_list(struct np_state_db *db, const char *site_id, np_state_db_rate_cb cb,
                           void *ctx, struct np_err *err);

/* ---- outages (outage.h; schema version 3) ---- */

/* Makes the stored outages of site_id agree with recs (n entries, borrowed,
 * oldest first: np_outage_get()), in one transaction unless the caller has
 * one open. Each outage updates the stored row it overlaps (the same cause
 * first), so a row keeps its id from suspected to confirmed; others are
 * inserted. Stored rows ending after window_from_ms that match none are
 * deleted when they start at or after it, and closed at it (confirmed) when
 * they started before and are still open; a matched row that started before
 * window_from_ms keeps its start. Idempotent: the same list again changes
 * nothing. *changes (may be NULL) counts rows written. Errors: -EINVAL,
 * NP_EDB, -ENOMEM. */
int np_state_db_outages_sync(struct np_state_db *db, const char *site_id, int64_t window_from_ms,
                             const struct np_outage_rec *recs, size_t n, unsigned *changes,
                             struct np_err *err);

/* For a restarting collector: calls cb once per active agent that has been
 * heard (agents.last_seen_ms set), with its last_seen_ms and its open
 * suspected outage (NULL when none; borrowed for the call), until cb returns
 * non-zero (then returned). */
typedef int (*np_state_db_restore_cb)(const char *agent_id, int64_t last_seen_ms,
                                      const struct np_outage_rec *suspected, void *ctx);
int np_state_db_outages_restore(struct np_state_db *db, np_state_db_restore_cb cb, void *ctx,
                                struct np_err *err);

/* The outages of site_id overlapping [from_ms, to_ms) as a new JSON array
 * (caller decrefs), oldest first, at most the newest 1000: objects {id,
 * cause, state, start_ms, end_ms (null: open), start, end (UTC ISO 8601; end
 * null when open), duration_s (an open one until now_ms), open, detail}.
 * Errors: -ENOENT (no such site), -EINVAL, NP_EDB, -ENOMEM. */
int np_state_db_outages_json(struct np_state_db *db, const char *site_id, int64_t from_ms,
                             int64_t to_ms, int64_t now_ms, json_t **out, struct np_err *err);

/* The events of site_id overlapping [from_ms, to_ms) (an open one from its
 * start on), like "events" of np_state_db_site_json but oldest first, at most
 * the newest 1000. Errors as above. */
int np_state_db_events_json(struct np_state_db *db, const char *site_id, int64_t from_ms,
                            int64_t to_ms, json_t **out, struct np_err *err);

/* ---- flow summaries (issue 6; schema version 4) ---- */

#define NP_STATE_DB_FLOW_KEEP 60 /* intervals kept per site and [pcap] source */

/* Stores each FlowSummary of the batch (borrowed, validated; b->agent_id an
 * existing site) for the API as JSON {source, start_ms, end_ms, packets,
 * bytes, bytes_in, bytes_out, packets_in, packets_out, sample_rate,
 * dropped_kernel, dropped_iface, evicted_flows, by_app [{name, bytes,
 * packets}], by_protocol [...], top_talkers [{address, bytes, bytes_in,
 * bytes_out, packets}], top_flows [{proto, src, sport, dst, dport, vlan,
 * bytes, packets}], decode_errors [{reason, count}]}, keyed by (site, source,
 * end_ms): a replay replaces its rows. Then only the newest keep intervals of
 * each (site, source) stay. In the caller's transaction if one is open.
 * Errors: -EINVAL, NP_EDB, -ENOMEM. */
int np_state_db_flows_put(struct np_state_db *db, const Netpulse__Batch *b, unsigned keep,
                          struct np_err *err);

/* The stored flow summaries of site_id as a new JSON object (caller decrefs)
 * {"site": ID, "sources": [{"source": NAME, "intervals": [summary, ...]}]},
 * sources by name, each with its newest `intervals` summaries, newest first.
 * Errors: -ENOENT (no such site), -EINVAL, NP_EDB, -ENOMEM. */
int np_state_db_flows_json(struct np_state_db *db, const char *site_id, unsigned intervals,
                           json_t **out, struct np_err *err);

#endif
