/* wire: the batch an agent sends to the collector, its encoding and its limits.
 *
 * Schema: common/proto/netpulse.proto (package netpulse). The protobuf-c
 * generated structs (Netpulse__Batch, Netpulse__InterfaceSample, ...) are the
 * in-memory form; this module adds what protobuf-c does not do: hard size
 * limits, semantic validation with messages that say what and where, and a
 * builder that owns everything an agent puts into a batch.
 *
 * Zero means "not set": the schema is proto3, so a field left at 0, "" or
 * false is not sent and reads back as zero. String pointers of generated
 * structs may be NULL on the way in (treated as "") and are never NULL in a
 * decoded batch.
 *
 * Versions. A batch carries schema_version (the writer's NP_WIRE_VERSION) and
 * min_reader_version (the oldest reader that may read it; 0 counts as 1).
 * Fields are only ever added, so a reader ignores what it does not know and an
 * older batch reads with zeros in newer fields: both directions work without
 * any check. Only a writer that changes what an existing field means raises
 * min_reader_version, and a reader refuses such a batch with NP_EVERSION
 * instead of storing wrong numbers. A reader never refuses a batch merely for
 * a higher schema_version. Enum values a reader does not know are kept as
 * numbers (proto3 enums are open); consumers treat them as "unknown".
 *
 * Threads: everything here is reentrant; a builder is used by one thread at a
 * time. Nothing here logs, exits or aborts on input. */
#ifndef NP_COMMON_WIRE_H
#define NP_COMMON_WIRE_H

#include "netpulse/err.h"
#include "netpulse.pb-c.h" /* generated types Netpulse__Batch etc. */

#include <stddef.h>
#include <stdint.h>

#define NP_WIRE_VERSION 1                  /* schema_version this code writes and reads */
#define NP_WIRE_MAX_BATCH_BYTES (8u << 20) /* hard limit on an encoded batch */
#define NP_WIRE_MAX_AGENT_ID 64            /* bytes of Batch.agent_id */
#define NP_WIRE_BUILDER_SLACK 64           /* see np_wire_builder_size() */

/* Plausible wall-clock times (ms since the epoch): 2000-01-01 .. 2100-01-01
 * UTC. Anything else is a clock that was never set (1970 on a box without an
 * RTC) or garbage, and would land in the wrong place of every graph. */
#define NP_WIRE_MIN_TIME_MS INT64_C(946684800000)
#define NP_WIRE_MAX_TIME_MS INT64_C(4102444800000)

/* Limits on a batch. Start from a copy of np_wire_default_limits and change
 * what you need: every field is a limit, 0 allows none. */
struct np_wire_limits {
    size_t max_bytes;         /* encoded batch; never more than NP_WIRE_MAX_BATCH_BYTES */
    size_t max_samples;       /* Batch.samples */
    size_t max_devices;       /* Batch.devices */
    size_t max_flows;         /* Batch.flows (flow summaries) */
    size_t max_flow_entries;  /* each list inside one FlowSummary (top_flows, by_app, ...) */
    size_t max_probes;        /* Batch.probes */
    size_t max_events;        /* Batch.events */
    size_t max_string;        /* bytes of any one string field except agent_id */
    size_t max_decoded_bytes; /* memory the decoded form may take while decoding */
};

/* 8 MiB, 65536 samples, 4096 devices, 1024 flow summaries of at most 4096
 * entries per list, 16384 probes, 16384 events, 1024-byte strings, 64 MiB
 * decoded. */
extern const struct np_wire_limits np_wire_default_limits;

/* Encodes b after checking it with np_wire_validate() against the default
 * limits, so an agent never spools a batch the collector would refuse.
 * b is borrowed. On success *out is a new buffer of *out_len bytes that the
 * caller frees with free(). Errors: the validation codes (NP_EPROTO,
 * NP_EVERSION, NP_ETOOBIG), NP_ETOOBIG when the encoding exceeds
 * NP_WIRE_MAX_BATCH_BYTES, -ENOMEM. On error *out is NULL and *out_len 0. */
int np_wire_encode(const Netpulse__Batch *b, uint8_t **out, size_t *out_len, struct np_err *err);

/* Decodes and validates one batch. buf (len bytes) is borrowed; lim may be
 * NULL for np_wire_default_limits. Order: len over lim->max_bytes (or over
 * NP_WIRE_MAX_BATCH_BYTES) is refused before parsing; protobuf-c unpacks with
 * an allocator that stops at lim->max_decoded_bytes; then np_wire_validate().
 * On success *out is a new batch the caller frees with np_wire_free(); on
 * error *out is NULL. Errors: NP_ETOOBIG (input or decoded form over its
 * limit, too many items), NP_EPROTO (malformed protobuf or invalid content),
 * NP_EVERSION (min_reader_version above NP_WIRE_VERSION).
 * Note: protobuf-c keeps strings NUL-terminated, so a string with an embedded
 * NUL reads as its part before the NUL. */
int np_wire_decode(const uint8_t *buf, size_t len, const struct np_wire_limits *lim,
                   Netpulse__Batch **out, struct np_err *err);

/* Frees a batch returned by np_wire_decode(); accepts NULL. Only for batches
 * from np_wire_decode(): they come from its own allocator. */
void np_wire_free(Netpulse__Batch *b);

/* Semantic checks of a batch (borrowed; lim NULL for the defaults), in this
 * order, stopping at the first failure:
 * - versions: schema_version >= 1; min_reader_version <= NP_WIRE_VERSION
 *   (else NP_EVERSION);
 * - header: agent_id 1..NP_WIRE_MAX_AGENT_ID bytes of [A-Za-z0-9._-] not
 *   starting with '.' or '-'; seq >= 1; created_ms and agent_start_ms
 *   plausible (NP_WIRE_MIN_TIME_MS..NP_WIRE_MAX_TIME_MS); heartbeat present;
 * - no unknown field numbered 0 (protobuf-c 1.4.1 lets an overlong tag
 *   through as one, then cannot read its own re-encoding of it);
 * - counts within lim (NP_ETOOBIG);
 * - every string: at most lim->max_string bytes, valid UTF-8, no control
 *   characters (C0, DEL, C1);
 * - per item: names that identify it are non-empty, times plausible, rates
 *   finite and >= 0 and zero unless rate_valid, counter_bits 32 or 64,
 *   received <= sent, ports/protocol/vlan in range, ranges ordered, enums >= 0
 *   and event type known to be set (not EVENT_UNKNOWN).
 * Errors: NP_EPROTO, NP_ETOOBIG, NP_EVERSION, with err->msg naming the field,
 * e.g. "batch: samples[12].if_name: 1300 bytes, over the 1024-byte limit". */
int np_wire_validate(const Netpulse__Batch *b, const struct np_wire_limits *lim,
                     struct np_err *err);

/* Builder: collects the items of one batch for an agent. It owns copies of
 * everything added (the caller's structs and strings stay the caller's), keeps
 * a running size of the encoding, and refuses items that would break the
 * limits, so the agent knows when to close the batch. Strings are cleaned on
 * the way in: cut to lim->max_string bytes at a character boundary, invalid
 * UTF-8 and control characters replaced (tab, CR, LF by a space, others by
 * '?'): routers put Latin-1 and CRLF in ifAlias and sysDescr, and one such
 * string must not make a whole batch unsendable. */
struct np_wire_builder;

/* Creates a builder for the agent agent_id (checked as in np_wire_validate;
 * not cleaned). agent_id and agent_version are copied; lim is copied, NULL
 * for the defaults. *out is freed with np_wire_builder_free().
 * Errors: NP_EPROTO (bad agent_id, agent_version or agent_start_ms), -ENOMEM. */
int np_wire_builder_new(const char *agent_id, const char *agent_version, int64_t agent_start_ms,
                        const struct np_wire_limits *lim, struct np_wire_builder **out,
                        struct np_err *err);

/* Frees the builder and everything it owns; accepts NULL. */
void np_wire_builder_free(struct np_wire_builder *b);

/* Drops all items and the heartbeat; identity and limits stay. */
void np_wire_builder_reset(struct np_wire_builder *b);

/* Each add copies the borrowed item (strings cleaned), checks it as
 * np_wire_validate would and appends it. On error nothing is added.
 * Errors: NP_EPROTO (invalid item; err->msg says which field), NP_ETOOBIG
 * (batch full: the count limit, or the encoded size would pass
 * lim->max_bytes; close the batch and add the item to the next), -ENOMEM. */
int np_wire_builder_add_sample(struct np_wire_builder *b, const Netpulse__InterfaceSample *s,
                               struct np_err *err);
int np_wire_builder_add_device(struct np_wire_builder *b, const Netpulse__DeviceInfo *d,
                               struct np_err *err);
int np_wire_builder_add_flow_summary(struct np_wire_builder *b, const Netpulse__FlowSummary *f,
                                     struct np_err *err);
int np_wire_builder_add_probe(struct np_wire_builder *b, const Netpulse__ProbeResult *p,
                              struct np_err *err);
int np_wire_builder_add_event(struct np_wire_builder *b, const Netpulse__Event *e,
                              struct np_err *err);

/* Sets the heartbeat of the batch (copied). Without a call, the batch says
 * UPLINK_UNKNOWN and an empty spool. */
void np_wire_builder_set_heartbeat(struct np_wire_builder *b, const Netpulse__Heartbeat *hb);

/* Encoded size of the batch if it were finished now: an upper bound, at most
 * NP_WIRE_BUILDER_SLACK bytes above what np_wire_builder_finish() produces
 * (seq, created_ms and the heartbeat are counted at their largest, so a
 * heartbeat set after the last add cannot push the batch over its limit). */
size_t np_wire_builder_size(const struct np_wire_builder *b);

/* Number of items (samples, devices, flow summaries, probes, events) added. */
size_t np_wire_builder_count(const struct np_wire_builder *b);

/* The batch as built so far, borrowed until the next call on b. seq and
 * created_ms are those of the last finish (0 before). */
const Netpulse__Batch *np_wire_builder_batch(const struct np_wire_builder *b);

/* Stamps seq and created_ms, validates the batch against the builder's
 * limits and encodes it; *out and the errors as for np_wire_encode(). The
 * builder keeps its items: call np_wire_builder_reset() once the batch is
 * safely in the spool. */
int np_wire_builder_finish(struct np_wire_builder *b, uint64_t seq, int64_t created_ms,
                           uint8_t **out, size_t *out_len, struct np_err *err);

#endif
