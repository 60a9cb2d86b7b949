#include "netpulse/wire.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct np_wire_limits np_wire_default_limits = {
    .max_bytes = NP_WIRE_MAX_BATCH_BYTES,
    .max_samples = 65536,
    .max_devices = 4096,
    .max_flows = 1024,
    .max_flow_entries = 4096,
    .max_probes = 16384,
    .max_events = 16384,
    .max_string = 1024,
    .max_decoded_bytes = (size_t)64 << 20,
};

/* Room for a path such as "flows[1023].top_flows[4095].src_addr". */
#define WIRE_PATH_MAX 128

static size_t wire_max_bytes(const struct np_wire_limits *lim)
{
    return lim->max_bytes < NP_WIRE_MAX_BATCH_BYTES ? lim->max_bytes : NP_WIRE_MAX_BATCH_BYTES;
}

/* Pointers inside generated structs are read and written through memcpy:
 * the generic code below sees them only as offsets from the descriptors. */
static void *load_ptr(const void *base, size_t offset)
{
    void *p;
    memcpy(&p, (const char *)base + offset, sizeof p);
    return p;
}

static size_t load_size(const void *base, size_t offset)
{
    size_t n;
    memcpy(&n, (const char *)base + offset, sizeof n);
    return n;
}

static void join_path(char *out, const char *where, const char *field)
{
    snprintf(out, WIRE_PATH_MAX, "%s%s%s", where, where[0] ? "." : "", field);
}

/* ---- decoding allocator: a budget on what the decoded form may take ----
 *
 * protobuf-c decodes everything before we can count anything, and a 2-byte
 * empty sub-message becomes a struct of ~150 bytes: 8 MiB of them would be
 * ~600 MiB. The allocator refuses to go past lim->max_decoded_bytes, counting
 * live bytes (protobuf-c frees its scan slabs as it goes), so it keeps a size
 * header in front of each block. */

union wire_block {
    size_t size;
    max_align_t align;
};

struct wire_budget {
    size_t used;
    size_t max;
    bool exceeded;
    bool oom;
};

static void *wire_budget_alloc(void *data, size_t size)
{
    struct wire_budget *bu = data;
    size_t need = size + sizeof(union wire_block);
    if (need < size || need > bu->max - bu->used) {
        bu->exceeded = true;
        return NULL;
    }
    union wire_block *blk = malloc(need);
    if (!blk) {
        bu->oom = true;
        return NULL;
    }
    blk->size = need;
    bu->used += need;
    return blk + 1;
}

static void wire_budget_free(void *data, void *ptr)
{
    if (!ptr) {
        return;
    }
    union wire_block *blk = (union wire_block *)ptr - 1;
    if (data) {
        struct wire_budget *bu = data;
        bu->used -= blk->size;
    }
    free(blk);
}

/* Frees what np_wire_decode returned; no budget to update any more. */
static ProtobufCAllocator wire_free_allocator = {
    .alloc = wire_budget_alloc,
    .free = wire_budget_free,
    .allocator_data = NULL,
};

/* ---- strings ---- */

/* Length of the UTF-8 sequence at s (n bytes available) and its code point,
 * or 0 if it is not valid UTF-8 (overlong forms, surrogates and values above
 * U+10FFFF are not: RFC 3629 section 4). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        *cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        *cp = c & 0x0F;
        if (c == 0xE0) {
            lo = 0xA0;
        } else if (c == 0xED) {
            hi = 0x9F;
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        *cp = c & 0x07;
        if (c == 0xF0) {
            lo = 0x90;
        } else if (c == 0xF4) {
            hi = 0x8F;
        }
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        unsigned char cc = s[i];
        if (i == 1 ? (cc < lo || cc > hi) : (cc < 0x80 || cc > 0xBF)) {
            return 0;
        }
        *cp = (*cp << 6) | (cc & 0x3F);
    }
    return len;
}

static bool is_control(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F);
}

static int check_string(const char *s, const char *path, size_t max, struct np_err *err)
{
    if (!s) {
        return 0;
    }
    size_t n = strlen(s);
    if (n > max) {
        return np_err_set(err, NP_EPROTO, "batch: %s: %zu bytes, over the %zu-byte limit", path, n,
                          max);
    }
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_next(u + i, n - i, &cp);
        if (len == 0) {
            return np_err_set(err, NP_EPROTO, "batch: %s: invalid UTF-8 at byte %zu", path, i);
        }
        if (is_control(cp)) {
            return np_err_set(err, NP_EPROTO, "batch: %s: control character U+%04X at byte %zu",
                              path, (unsigned)cp, i);
        }
        i += len;
    }
    return 0;
}

/* Cleans a string in place (see the builder in wire.h): only ever shortens. */
static void clean_string(char *s, size_t max)
{
    if (!s || !s[0]) {
        return; /* also leaves protobuf-c's shared empty string alone */
    }
    unsigned char *u = (unsigned char *)s;
    size_t n = strlen(s), r = 0, w = 0;
    while (r < n) {
        uint32_t cp;
        size_t len = utf8_next(u + r, n - r, &cp);
        if (len == 0 || is_control(cp)) {
            if (w + 1 > max) {
                break;
            }
            u[w++] = len == 1 && (cp == '\t' || cp == '\r' || cp == '\n') ? ' ' : '?';
            r += len ? len : 1;
            continue;
        }
        if (w + len > max) {
            break;
        }
        memmove(u + w, u + r, len);
        w += len;
        r += len;
    }
    u[w] = '\0';
}

/* ---- generic walk over a message's strings and sub-messages ---- */

enum walk_mode {
    WALK_CHECK, /* check_string every string */
    WALK_CLEAN, /* clean_string every string (builder-owned copies only) */
    WALK_NULLS, /* only refuse NULL elements of repeated message fields */
};

static int walk_message(const ProtobufCMessage *m, const char *where, enum walk_mode mode,
                        size_t max_string, struct np_err *err);

static int walk_string(char *s, const char *path, enum walk_mode mode, size_t max_string,
                       struct np_err *err)
{
    switch (mode) {
    case WALK_CHECK:
        return check_string(s, path, max_string, err);
    case WALK_CLEAN:
        clean_string(s, max_string);
        return 0;
    case WALK_NULLS:
        return 0;
    }
    return 0;
}

/* protobuf-c 1.4.1 reads an overlong tag such as 0x82 0x00 as field number 0
 * and keeps it as an unknown field; packed again it becomes 0x02, which it
 * then refuses. Field 0 is invalid in protobuf: refuse it at once. */
static int check_unknown_fields(const ProtobufCMessage *m, const char *where, struct np_err *err)
{
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        if (m->unknown_fields[i].tag == 0) {
            return np_err_set(err, NP_EPROTO, "batch: %s%sfield number 0 is invalid", where,
                              where[0] ? ": " : "");
        }
    }
    return 0;
}

static int walk_message(const ProtobufCMessage *m, const char *where, enum walk_mode mode,
                        size_t max_string, struct np_err *err)
{
    const ProtobufCMessageDescriptor *desc = m->descriptor;
    char path[WIRE_PATH_MAX];
    int rc;
    if (mode == WALK_CHECK && (rc = check_unknown_fields(m, where, err))) {
        return rc;
    }
    for (unsigned f = 0; f < desc->n_fields; f++) {
        const ProtobufCFieldDescriptor *fd = &desc->fields[f];
        if (fd->type != PROTOBUF_C_TYPE_STRING && fd->type != PROTOBUF_C_TYPE_MESSAGE) {
            continue;
        }
        if (fd->label != PROTOBUF_C_LABEL_REPEATED) {
            void *p = load_ptr(m, fd->offset);
            join_path(path, where, fd->name);
            rc = 0;
            if (fd->type == PROTOBUF_C_TYPE_STRING) {
                rc = walk_string(p, path, mode, max_string, err);
            } else if (p) {
                rc = walk_message(p, path, mode, max_string, err);
            }
            if (rc) {
                return rc;
            }
            continue;
        }
        size_t n = load_size(m, fd->quantifier_offset);
        char *arr = load_ptr(m, fd->offset);
        if (n && !arr) {
            join_path(path, where, fd->name);
            return np_err_set(err, NP_EPROTO, "batch: %s: %zu entries but no array", path, n);
        }
        for (size_t i = 0; i < n; i++) {
            void *p = load_ptr(arr, i * sizeof p);
            snprintf(path, sizeof path, "%s%s%s[%zu]", where, where[0] ? "." : "", fd->name, i);
            if (fd->type == PROTOBUF_C_TYPE_STRING) {
                rc = walk_string(p, path, mode, max_string, err);
            } else if (!p) {
                rc = np_err_set(err, NP_EPROTO, "batch: %s: missing (NULL)", path);
            } else {
                rc = walk_message(p, path, mode, max_string, err);
            }
            if (rc) {
                return rc;
            }
        }
    }
    return 0;
}

/* ---- semantic checks ---- */

static bool empty(const char *s)
{
    return !s || !s[0];
}

static int need_name(const char *s, const char *where, const char *field, struct np_err *err)
{
    if (empty(s)) {
        return np_err_set(err, NP_EPROTO, "batch: %s.%s: empty", where, field);
    }
    return 0;
}

static int check_time(int64_t t, bool zero_ok, const char *where, const char *field,
                      struct np_err *err)
{
    if (zero_ok && t == 0) {
        return 0;
    }
    if (t < NP_WIRE_MIN_TIME_MS || t >= NP_WIRE_MAX_TIME_MS) {
        return np_err_set(err, NP_EPROTO,
                          "batch: %s%s%s: %" PRId64
                          " is not a plausible wall-clock time in ms (years 2000..2099)",
                          where, where[0] ? "." : "", field, t);
    }
    return 0;
}

static int check_enum(int v, const char *where, const char *field, struct np_err *err)
{
    if (v < 0) {
        return np_err_set(err, NP_EPROTO, "batch: %s.%s: negative enum value %d", where, field, v);
    }
    return 0;
}

static int check_rate(double v, bool valid, const char *where, const char *field,
                      struct np_err *err)
{
    if (!isfinite(v) || v < 0) {
        return np_err_set(err, NP_EPROTO, "batch: %s.%s: %g is not a finite rate >= 0", where,
                          field, v);
    }
    if (!valid && v != 0) {
        return np_err_set(err, NP_EPROTO, "batch: %s.%s: %g although rate_valid is false", where,
                          field, v);
    }
    return 0;
}

typedef int (*wire_check_cb)(const ProtobufCMessage *m, const char *where,
                             const struct np_wire_limits *lim, struct np_err *err);

static int check_sample(const ProtobufCMessage *m, const char *where,
                        const struct np_wire_limits *lim, struct np_err *err)
{
    const Netpulse__InterfaceSample *s = (const Netpulse__InterfaceSample *)m;
    int rc;
    (void)lim;
    if ((rc = need_name(s->device, where, "device", err)) ||
        (rc = check_time(s->time_ms, false, where, "time_ms", err)) ||
        (rc = check_enum((int)s->oper_status, where, "oper_status", err)) ||
        (rc = check_enum((int)s->admin_status, where, "admin_status", err)) ||
        (rc = check_enum((int)s->rate_status, where, "rate_status", err)) ||
        (rc = check_rate(s->in_bps, s->rate_valid, where, "in_bps", err)) ||
        (rc = check_rate(s->out_bps, s->rate_valid, where, "out_bps", err))) {
        return rc;
    }
    if (s->if_index == 0) {
        return np_err_set(err, NP_EPROTO, "batch: %s.if_index: 0, must be >= 1", where);
    }
    if (s->interval_ms < 0) {
        return np_err_set(err, NP_EPROTO, "batch: %s.interval_ms: %" PRId64 " is negative", where,
                          s->interval_ms);
    }
    if (s->rate_valid && s->interval_ms == 0) {
        return np_err_set(err, NP_EPROTO, "batch: %s.interval_ms: 0 although rate_valid", where);
    }
    if (s->counter_bits != 32 && s->counter_bits != 64) {
        return np_err_set(err, NP_EPROTO, "batch: %s.counter_bits: %u, must be 32 or 64", where,
                          s->counter_bits);
    }
    if (s->counter_bits == 32 && (s->in_octets > UINT32_MAX || s->out_octets > UINT32_MAX)) {
        return np_err_set(err, NP_EPROTO,
                          "batch: %s: octet counter above 2^32-1 for a 32-bit counter", where);
    }
    bool status_valid = s->rate_status == NETPULSE__RATE_STATUS__RATE_OK ||
                        s->rate_status == NETPULSE__RATE_STATUS__RATE_WRAPPED;
    bool status_novalue = s->rate_status >= NETPULSE__RATE_STATUS__RATE_FIRST_POLL &&
                          s->rate_status <= NETPULSE__RATE_STATUS__RATE_WENT_BACK;
    if ((s->rate_valid && status_novalue) || (!s->rate_valid && status_valid)) {
        return np_err_set(err, NP_EPROTO, "batch: %s.rate_status: %d contradicts rate_valid=%s",
                          where, (int)s->rate_status, s->rate_valid ? "true" : "false");
    }
    return 0;
}

static int check_device(const ProtobufCMessage *m, const char *where,
                        const struct np_wire_limits *lim, struct np_err *err)
{
    const Netpulse__DeviceInfo *d = (const Netpulse__DeviceInfo *)m;
    int rc;
    (void)lim;
    if ((rc = need_name(d->device, where, "device", err)) ||
        (rc = check_time(d->time_ms, false, where, "time_ms", err))) {
        return rc;
    }
    return 0;
}

static int check_flow_lists(const Netpulse__FlowSummary *f, const char *where,
                            const struct np_wire_limits *lim, struct np_err *err)
{
    const struct {
        const char *name;
        size_t n;
    } lists[] = {
        {"by_protocol", f->n_by_protocol},     {"by_app", f->n_by_app},
        {"top_talkers", f->n_top_talkers},     {"top_flows", f->n_top_flows},
        {"decode_errors", f->n_decode_errors},
    };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        if (lists[i].n > lim->max_flow_entries) {
            return np_err_set(err, NP_ETOOBIG, "batch: %s.%s: %zu entries, over the limit of %zu",
                              where, lists[i].name, lists[i].n, lim->max_flow_entries);
        }
    }
    return 0;
}

static int check_flow_summary(const ProtobufCMessage *m, const char *where,
                              const struct np_wire_limits *lim, struct np_err *err)
{
    const Netpulse__FlowSummary *f = (const Netpulse__FlowSummary *)m;
    char sub[WIRE_PATH_MAX];
    int rc;
    (void)lim; /* list sizes and NULL entries were checked before the string walk */
    if ((rc = need_name(f->source, where, "source", err)) ||
        (rc = check_time(f->start_ms, false, where, "start_ms", err)) ||
        (rc = check_time(f->end_ms, false, where, "end_ms", err))) {
        return rc;
    }
    if (f->end_ms < f->start_ms) {
        return np_err_set(err, NP_EPROTO, "batch: %s: end_ms %" PRId64 " before start_ms %" PRId64,
                          where, f->end_ms, f->start_ms);
    }
    for (size_t i = 0; i < f->n_by_protocol; i++) {
        snprintf(sub, sizeof sub, "%s.by_protocol[%zu]", where, i);
        if ((rc = need_name(f->by_protocol[i]->name, sub, "name", err))) {
            return rc;
        }
    }
    for (size_t i = 0; i < f->n_by_app; i++) {
        snprintf(sub, sizeof sub, "%s.by_app[%zu]", where, i);
        if ((rc = need_name(f->by_app[i]->name, sub, "name", err))) {
            return rc;
        }
    }
    for (size_t i = 0; i < f->n_top_talkers; i++) {
        snprintf(sub, sizeof sub, "%s.top_talkers[%zu]", where, i);
        if ((rc = need_name(f->top_talkers[i]->address, sub, "address", err))) {
            return rc;
        }
    }
    for (size_t i = 0; i < f->n_top_flows; i++) {
        const Netpulse__Flow *fl = f->top_flows[i];
        snprintf(sub, sizeof sub, "%s.top_flows[%zu]", where, i);
        if ((rc = need_name(fl->src_addr, sub, "src_addr", err)) ||
            (rc = need_name(fl->dst_addr, sub, "dst_addr", err))) {
            return rc;
        }
        if (fl->proto > 255) {
            return np_err_set(err, NP_EPROTO, "batch: %s.proto: %u, over 255", sub, fl->proto);
        }
        if (fl->src_port > 65535 || fl->dst_port > 65535) {
            return np_err_set(err, NP_EPROTO, "batch: %s: port %u over 65535", sub,
                              fl->src_port > 65535 ? fl->src_port : fl->dst_port);
        }
        if (fl->vlan > 4094) {
            return np_err_set(err, NP_EPROTO, "batch: %s.vlan: %u, over 4094", sub, fl->vlan);
        }
    }
    for (size_t i = 0; i < f->n_decode_errors; i++) {
        snprintf(sub, sizeof sub, "%s.decode_errors[%zu]", where, i);
        if ((rc = need_name(f->decode_errors[i]->reason, sub, "reason", err))) {
            return rc;
        }
    }
    return 0;
}

static int check_probe(const ProtobufCMessage *m, const char *where,
                       const struct np_wire_limits *lim, struct np_err *err)
{
    const Netpulse__ProbeResult *p = (const Netpulse__ProbeResult *)m;
    int rc;
    (void)lim;
    if ((rc = need_name(p->name, where, "name", err)) ||
        (rc = check_enum((int)p->type, where, "type", err)) ||
        (rc = check_time(p->time_ms, false, where, "time_ms", err))) {
        return rc;
    }
    if (p->interval_ms < 0) {
        return np_err_set(err, NP_EPROTO, "batch: %s.interval_ms: %" PRId64 " is negative", where,
                          p->interval_ms);
    }
    if (p->received > p->sent) {
        return np_err_set(err, NP_EPROTO, "batch: %s: received %u > sent %u", where, p->received,
                          p->sent);
    }
    return 0;
}

static int check_event(const ProtobufCMessage *m, const char *where,
                       const struct np_wire_limits *lim, struct np_err *err)
{
    const Netpulse__Event *e = (const Netpulse__Event *)m;
    int rc;
    (void)lim;
    if ((rc = check_enum((int)e->type, where, "type", err)) ||
        (rc = check_time(e->time_ms, false, where, "time_ms", err))) {
        return rc;
    }
    switch (e->type) {
    case NETPULSE__EVENT_TYPE__EVENT_UNKNOWN:
        return np_err_set(err, NP_EPROTO, "batch: %s.type: not set", where);
    case NETPULSE__EVENT_TYPE__EVENT_INTERFACE_UP:
    case NETPULSE__EVENT_TYPE__EVENT_INTERFACE_DOWN:
    case NETPULSE__EVENT_TYPE__EVENT_ADMIN_UP:
    case NETPULSE__EVENT_TYPE__EVENT_ADMIN_DOWN:
        if ((rc = need_name(e->device, where, "device", err))) {
            return rc;
        }
        if (empty(e->subject) && e->if_index == 0) {
            return np_err_set(err, NP_EPROTO,
                              "batch: %s: interface event without subject or if_index", where);
        }
        break;
    case NETPULSE__EVENT_TYPE__EVENT_DEVICE_RESTART:
    case NETPULSE__EVENT_TYPE__EVENT_DEVICE_UNREACHABLE:
    case NETPULSE__EVENT_TYPE__EVENT_DEVICE_REACHABLE:
        if ((rc = need_name(e->device, where, "device", err))) {
            return rc;
        }
        break;
    case NETPULSE__EVENT_TYPE__EVENT_PROBE_UP:
    case NETPULSE__EVENT_TYPE__EVENT_PROBE_DOWN:
        if ((rc = need_name(e->subject, where, "subject", err))) {
            return rc;
        }
        break;
    default:
        break; /* AGENT_START, UPLINK_*, SPOOL_OVERFLOW, and types newer than us */
    }
    if (e->first_seq > e->last_seq) {
        return np_err_set(err, NP_EPROTO, "batch: %s: first_seq %" PRIu64 " > last_seq %" PRIu64,
                          where, e->first_seq, e->last_seq);
    }
    if ((rc = check_time(e->from_ms, true, where, "from_ms", err)) ||
        (rc = check_time(e->to_ms, true, where, "to_ms", err))) {
        return rc;
    }
    if (e->from_ms > e->to_ms) {
        return np_err_set(err, NP_EPROTO, "batch: %s: from_ms %" PRId64 " > to_ms %" PRId64, where,
                          e->from_ms, e->to_ms);
    }
    return 0;
}

/* The repeated item fields of a Batch; name is the field name in the schema,
 * which also finds its offsets in the generated descriptor. */
struct wire_kind {
    const char *name;
    const char *singular; /* for "batch full" messages */
    const ProtobufCMessageDescriptor *desc;
    size_t limit_offset; /* in struct np_wire_limits */
    wire_check_cb check;
};

enum { KIND_SAMPLES, KIND_DEVICES, KIND_FLOWS, KIND_PROBES, KIND_EVENTS, KIND_COUNT };

static const struct wire_kind wire_kinds[KIND_COUNT] = {
    [KIND_SAMPLES] = {"samples", "sample", &netpulse__interface_sample__descriptor,
                      offsetof(struct np_wire_limits, max_samples), check_sample},
    [KIND_DEVICES] = {"devices", "device", &netpulse__device_info__descriptor,
                      offsetof(struct np_wire_limits, max_devices), check_device},
    [KIND_FLOWS] = {"flows", "flow summary", &netpulse__flow_summary__descriptor,
                    offsetof(struct np_wire_limits, max_flows), check_flow_summary},
    [KIND_PROBES] = {"probes", "probe result", &netpulse__probe_result__descriptor,
                     offsetof(struct np_wire_limits, max_probes), check_probe},
    [KIND_EVENTS] = {"events", "event", &netpulse__event__descriptor,
                     offsetof(struct np_wire_limits, max_events), check_event},
};

static const ProtobufCFieldDescriptor *kind_field(const struct wire_kind *k)
{
    /* Never NULL: the names above are the schema's (test_wire checks them). */
    return protobuf_c_message_descriptor_get_field_by_name(&netpulse__batch__descriptor, k->name);
}

static size_t kind_limit(const struct wire_kind *k, const struct np_wire_limits *lim)
{
    return load_size(lim, k->limit_offset);
}

/* Everything about one item: list sizes, NULL entries, strings, semantics. */
static int check_item(const struct wire_kind *k, const ProtobufCMessage *m, size_t index,
                      const struct np_wire_limits *lim, struct np_err *err)
{
    char where[WIRE_PATH_MAX];
    int rc;
    snprintf(where, sizeof where, "%s[%zu]", k->name, index);
    if (!m) {
        return np_err_set(err, NP_EPROTO, "batch: %s: missing (NULL)", where);
    }
    if (m->descriptor != k->desc) {
        return np_err_set(err, NP_EPROTO, "batch: %s: not a %s message", where, k->desc->name);
    }
    if (k->desc == &netpulse__flow_summary__descriptor &&
        (rc = check_flow_lists((const Netpulse__FlowSummary *)m, where, lim, err))) {
        return rc;
    }
    if ((rc = walk_message(m, where, WALK_CHECK, lim->max_string, err))) {
        return rc;
    }
    return k->check(m, where, lim, err);
}

static int check_agent_id(const char *id, struct np_err *err)
{
    if (empty(id)) {
        return np_err_set(err, NP_EPROTO, "batch: agent_id: empty");
    }
    size_t n = strlen(id);
    if (n > NP_WIRE_MAX_AGENT_ID) {
        return np_err_set(err, NP_EPROTO, "batch: agent_id: %zu bytes, over the %d-byte limit", n,
                          NP_WIRE_MAX_AGENT_ID);
    }
    if (id[0] == '.' || id[0] == '-') {
        return np_err_set(err, NP_EPROTO, "batch: agent_id: must not start with '%c'", id[0]);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) {
            return np_err_set(err, NP_EPROTO,
                              "batch: agent_id: byte %zu (0x%02x) is not one of A-Z a-z 0-9 . _ -",
                              i, c);
        }
    }
    return 0;
}

static int check_versions(const Netpulse__Batch *b, struct np_err *err)
{
    uint32_t min_reader = b->min_reader_version ? b->min_reader_version : 1;
    if (b->schema_version == 0) {
        return np_err_set(err, NP_EPROTO, "batch: schema_version: not set");
    }
    if (min_reader > NP_WIRE_VERSION) {
        return np_err_set(err, NP_EVERSION,
                          "batch: needs a reader of wire version %" PRIu32
                          " or later (written by version %" PRIu32
                          "); this is version %d: upgrade the collector",
                          min_reader, b->schema_version, NP_WIRE_VERSION);
    }
    return 0;
}

static int check_heartbeat(const Netpulse__Heartbeat *hb, struct np_err *err)
{
    int rc;
    if (!hb) {
        return np_err_set(err, NP_EPROTO, "batch: heartbeat: missing");
    }
    if (hb->base.descriptor != &netpulse__heartbeat__descriptor) {
        return np_err_set(err, NP_EPROTO, "batch: heartbeat: not a netpulse.Heartbeat");
    }
    if ((rc = check_unknown_fields(&hb->base, "heartbeat", err))) {
        return rc;
    }
    if ((rc = check_enum((int)hb->uplink, "heartbeat", "uplink", err)) ||
        (rc = check_time(hb->spool_oldest_ms, true, "heartbeat", "spool_oldest_ms", err)) ||
        (rc = check_time(hb->uplink_since_ms, true, "heartbeat", "uplink_since_ms", err))) {
        return rc;
    }
    return 0;
}

/* The batch without its items. */
static int check_header(const Netpulse__Batch *b, const struct np_wire_limits *lim,
                        struct np_err *err)
{
    int rc;
    if ((rc = check_versions(b, err)) || (rc = check_unknown_fields(&b->base, "", err)) ||
        (rc = check_agent_id(b->agent_id, err))) {
        return rc;
    }
    if (b->seq == 0) {
        return np_err_set(err, NP_EPROTO, "batch: seq: 0, must be >= 1");
    }
    if ((rc = check_time(b->created_ms, false, "", "created_ms", err)) ||
        (rc = check_time(b->agent_start_ms, false, "", "agent_start_ms", err)) ||
        (rc = check_string(b->agent_version, "agent_version", lim->max_string, err)) ||
        (rc = check_heartbeat(b->heartbeat, err))) {
        return rc;
    }
    return 0;
}

int np_wire_validate(const Netpulse__Batch *b, const struct np_wire_limits *lim, struct np_err *err)
{
    int rc;
    if (!lim) {
        lim = &np_wire_default_limits;
    }
    if (!b || b->base.descriptor != &netpulse__batch__descriptor) {
        return np_err_set(err, NP_EPROTO, "batch: %s",
                          b ? "not a netpulse.Batch" : "missing (NULL)");
    }
    if ((rc = check_header(b, lim, err))) {
        return rc;
    }
    for (int k = 0; k < KIND_COUNT; k++) {
        const struct wire_kind *kind = &wire_kinds[k];
        const ProtobufCFieldDescriptor *fd = kind_field(kind);
        size_t n = load_size(b, fd->quantifier_offset);
        if (n > kind_limit(kind, lim)) {
            return np_err_set(err, NP_ETOOBIG, "batch: %s: %zu entries, over the limit of %zu",
                              kind->name, n, kind_limit(kind, lim));
        }
        if (n && !load_ptr(b, fd->offset)) {
            return np_err_set(err, NP_EPROTO, "batch: %s: %zu entries but no array", kind->name, n);
        }
    }
    for (int k = 0; k < KIND_COUNT; k++) {
        const struct wire_kind *kind = &wire_kinds[k];
        const ProtobufCFieldDescriptor *fd = kind_field(kind);
        size_t n = load_size(b, fd->quantifier_offset);
        const char *arr = load_ptr(b, fd->offset);
        for (size_t i = 0; i < n; i++) {
            const ProtobufCMessage *m = load_ptr(arr, i * sizeof(void *));
            if ((rc = check_item(kind, m, i, lim, err))) {
                return rc;
            }
        }
    }
    np_err_clear(err);
    return 0;
}

/* ---- encode / decode ---- */

static int wire_encode(const Netpulse__Batch *b, const struct np_wire_limits *lim, uint8_t **out,
                       size_t *out_len, struct np_err *err)
{
    int rc;
    *out = NULL;
    *out_len = 0;
    if ((rc = np_wire_validate(b, lim, err))) {
        return rc;
    }
    size_t n = netpulse__batch__get_packed_size(b);
    size_t max = wire_max_bytes(lim);
    if (n > max) {
        return np_err_set(err, NP_ETOOBIG, "batch: encodes to %zu bytes, over the %zu-byte limit",
                          n, max);
    }
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        return np_err_set(err, -ENOMEM, "batch: out of memory encoding %zu bytes", n);
    }
    size_t w = netpulse__batch__pack(b, buf);
    if (w != n) {
        free(buf);
        return np_err_set(err, NP_EPROTO, "batch: protobuf-c packed %zu bytes, expected %zu", w, n);
    }
    *out = buf;
    *out_len = n;
    return 0;
}

int np_wire_encode(const Netpulse__Batch *b, uint8_t **out, size_t *out_len, struct np_err *err)
{
    return wire_encode(b, &np_wire_default_limits, out, out_len, err);
}

int np_wire_decode(const uint8_t *buf, size_t len, const struct np_wire_limits *lim,
                   Netpulse__Batch **out, struct np_err *err)
{
    static const uint8_t nothing[1];
    *out = NULL;
    if (!lim) {
        lim = &np_wire_default_limits;
    }
    size_t max = wire_max_bytes(lim);
    if (len > max) {
        return np_err_set(err, NP_ETOOBIG, "batch: %zu bytes, over the %zu-byte limit", len, max);
    }
    if (!buf) {
        if (len) {
            return np_err_set(err, NP_EPROTO, "batch: no buffer for %zu bytes", len);
        }
        buf = nothing;
    }
    struct wire_budget budget = {.max = lim->max_decoded_bytes};
    ProtobufCAllocator alloc = {
        .alloc = wire_budget_alloc,
        .free = wire_budget_free,
        .allocator_data = &budget,
    };
    Netpulse__Batch *b = netpulse__batch__unpack(&alloc, len, buf);
    if (!b) {
        if (budget.oom) {
            return np_err_set(err, -ENOMEM, "batch: out of memory decoding %zu bytes", len);
        }
        if (budget.exceeded) {
            return np_err_set(err, NP_ETOOBIG,
                              "batch: decoding %zu bytes needs over %zu bytes of memory", len,
                              lim->max_decoded_bytes);
        }
        return np_err_set(err, NP_EPROTO, "batch: truncated or malformed protobuf (%zu bytes)",
                          len);
    }
    int rc = np_wire_validate(b, lim, err);
    if (rc) {
        np_wire_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

void np_wire_free(Netpulse__Batch *b)
{
    if (b) {
        netpulse__batch__free_unpacked(b, &wire_free_allocator);
    }
}

/* ---- builder ---- */

struct np_wire_builder {
    struct np_wire_limits lim;
    Netpulse__Batch batch;
    Netpulse__Heartbeat heartbeat;
    char *agent_id;
    char *agent_version;
    size_t cap[KIND_COUNT];
    size_t items_bytes; /* encoded size of all items, with their tags and lengths */
};

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Upper bound of the encoded batch without its items, whatever seq,
 * created_ms and heartbeat it will be finished with (values that would pass
 * np_wire_validate), so that items accepted by builder_add never make finish
 * fail for size. */
static size_t builder_header_size(const struct np_wire_builder *b)
{
    Netpulse__Batch h = b->batch;
    Netpulse__Heartbeat hb = NETPULSE__HEARTBEAT__INIT;
    hb.uplink = (Netpulse__UplinkState)INT32_MAX;
    hb.spool_batches = UINT64_MAX;
    hb.spool_bytes = UINT64_MAX;
    hb.spool_oldest_ms = NP_WIRE_MAX_TIME_MS - 1;
    hb.uplink_since_ms = NP_WIRE_MAX_TIME_MS - 1;
    h.heartbeat = &hb;
    h.seq = UINT64_MAX;
    h.created_ms = NP_WIRE_MAX_TIME_MS - 1;
    h.n_samples = h.n_devices = h.n_flows = h.n_probes = h.n_events = 0;
    return netpulse__batch__get_packed_size(&h);
}

int np_wire_builder_new(const char *agent_id, const char *agent_version, int64_t agent_start_ms,
                        const struct np_wire_limits *lim, struct np_wire_builder **out,
                        struct np_err *err)
{
    int rc;
    *out = NULL;
    if (!lim) {
        lim = &np_wire_default_limits;
    }
    if ((rc = check_agent_id(agent_id, err)) ||
        (rc = check_time(agent_start_ms, false, "", "agent_start_ms", err)) ||
        (rc = check_string(agent_version, "agent_version", lim->max_string, err))) {
        return rc;
    }
    struct np_wire_builder *b = calloc(1, sizeof *b);
    if (!b) {
        goto out_nomem;
    }
    b->agent_id = strdup(agent_id);
    b->agent_version = strdup(agent_version ? agent_version : "");
    if (!b->agent_id || !b->agent_version) {
        goto out_free;
    }
    b->lim = *lim;
    netpulse__batch__init(&b->batch);
    b->batch.schema_version = NP_WIRE_VERSION;
    b->batch.min_reader_version = 1;
    b->batch.agent_id = b->agent_id;
    b->batch.agent_version = b->agent_version;
    b->batch.agent_start_ms = agent_start_ms;
    netpulse__heartbeat__init(&b->heartbeat);
    b->batch.heartbeat = &b->heartbeat;
    *out = b;
    np_err_clear(err);
    return 0;

out_free:
    np_wire_builder_free(b);
out_nomem:
    return np_err_set(err, -ENOMEM, "batch: out of memory creating a builder");
}

static size_t *builder_count(struct np_wire_builder *b, const ProtobufCFieldDescriptor *fd)
{
    return (size_t *)((char *)&b->batch + fd->quantifier_offset);
}

static void builder_drop_items(struct np_wire_builder *b)
{
    for (int k = 0; k < KIND_COUNT; k++) {
        const ProtobufCFieldDescriptor *fd = kind_field(&wire_kinds[k]);
        size_t *n = builder_count(b, fd);
        char *arr = load_ptr(&b->batch, fd->offset);
        for (size_t i = 0; i < *n; i++) {
            protobuf_c_message_free_unpacked(load_ptr(arr, i * sizeof(void *)), NULL);
        }
        *n = 0;
    }
    b->items_bytes = 0;
}

void np_wire_builder_free(struct np_wire_builder *b)
{
    if (!b) {
        return;
    }
    if (b->batch.base.descriptor) {
        builder_drop_items(b);
        for (int k = 0; k < KIND_COUNT; k++) {
            free(load_ptr(&b->batch, kind_field(&wire_kinds[k])->offset));
        }
    }
    free(b->agent_id);
    free(b->agent_version);
    free(b);
}

void np_wire_builder_reset(struct np_wire_builder *b)
{
    builder_drop_items(b);
    netpulse__heartbeat__init(&b->heartbeat);
    b->batch.seq = 0;
    b->batch.created_ms = 0;
}

/* Copies the item through protobuf-c (pack, then unpack with malloc), which
 * gives a deep copy that protobuf_c_message_free_unpacked() can free, then
 * cleans, checks and appends it. */
static int builder_add(struct np_wire_builder *b, int kind, const ProtobufCMessage *in,
                       struct np_err *err)
{
    const struct wire_kind *k = &wire_kinds[kind];
    const ProtobufCFieldDescriptor *fd = kind_field(k);
    size_t *n = builder_count(b, fd);
    size_t limit = kind_limit(k, &b->lim);
    char where[WIRE_PATH_MAX];
    int rc;

    snprintf(where, sizeof where, "%s[%zu]", k->name, *n);
    if (!in) {
        return np_err_set(err, NP_EPROTO, "batch: %s: missing (NULL)", where);
    }
    if (*n >= limit) {
        return np_err_set(err, NP_ETOOBIG, "batch: full: %zu %s entries, the limit", *n, k->name);
    }
    /* NULL entries would crash protobuf-c's packer. */
    if ((rc = walk_message(in, where, WALK_NULLS, 0, err))) {
        return rc;
    }
    size_t in_len = protobuf_c_message_get_packed_size(in);
    uint8_t *tmp = malloc(in_len ? in_len : 1);
    if (!tmp) {
        return np_err_set(err, -ENOMEM, "batch: %s: out of memory", where);
    }
    protobuf_c_message_pack(in, tmp);
    ProtobufCMessage *copy = protobuf_c_message_unpack(k->desc, NULL, in_len, tmp);
    free(tmp);
    if (!copy) {
        return np_err_set(err, -ENOMEM, "batch: %s: out of memory copying", where);
    }
    walk_message(copy, where, WALK_CLEAN, b->lim.max_string, NULL);
    if ((rc = check_item(k, copy, *n, &b->lim, err))) {
        goto out_free_copy;
    }
    size_t item_len = protobuf_c_message_get_packed_size(copy);
    size_t add = varint_size(((uint64_t)fd->id << 3) | 2) + varint_size(item_len) + item_len;
    size_t total = builder_header_size(b) + b->items_bytes + add;
    size_t max = wire_max_bytes(&b->lim);
    if (total > max) {
        rc = np_err_set(err, NP_ETOOBIG,
                        "batch: full: adding %s would make it %zu bytes, over the %zu-byte limit",
                        where, total, max);
        goto out_free_copy;
    }
    size_t cap = b->cap[kind];
    void **arr = load_ptr(&b->batch, fd->offset);
    if (*n == cap) {
        size_t new_cap = cap ? cap * 2 : 16;
        void **bigger = realloc(arr, new_cap * sizeof *arr);
        if (!bigger) {
            rc = np_err_set(err, -ENOMEM, "batch: %s: out of memory", where);
            goto out_free_copy;
        }
        arr = bigger;
        memcpy((char *)&b->batch + fd->offset, &arr, sizeof arr);
        b->cap[kind] = new_cap;
    }
    arr[*n] = copy;
    (*n)++;
    b->items_bytes += add;
    np_err_clear(err);
    return 0;

out_free_copy:
    protobuf_c_message_free_unpacked(copy, NULL);
    return rc;
}

int np_wire_builder_add_sample(struct np_wire_builder *b, const Netpulse__InterfaceSample *s,
                               struct np_err *err)
{
    return builder_add(b, KIND_SAMPLES, s ? &s->base : NULL, err);
}

int np_wire_builder_add_device(struct np_wire_builder *b, const Netpulse__DeviceInfo *d,
                               struct np_err *err)
{
    return builder_add(b, KIND_DEVICES, d ? &d->base : NULL, err);
}

int np_wire_builder_add_flow_summary(struct np_wire_builder *b, const Netpulse__FlowSummary *f,
                                     struct np_err *err)
{
    return builder_add(b, KIND_FLOWS, f ? &f->base : NULL, err);
}

int np_wire_builder_add_probe(struct np_wire_builder *b, const Netpulse__ProbeResult *p,
                              struct np_err *err)
{
    return builder_add(b, KIND_PROBES, p ? &p->base : NULL, err);
}

int np_wire_builder_add_event(struct np_wire_builder *b, const Netpulse__Event *e,
                              struct np_err *err)
{
    return builder_add(b, KIND_EVENTS, e ? &e->base : NULL, err);
}

void np_wire_builder_set_heartbeat(struct np_wire_builder *b, const Netpulse__Heartbeat *hb)
{
    /* Field by field: the heartbeat is ours, not the caller's (no unknown
     * fields, no pointers into the caller's memory). */
    netpulse__heartbeat__init(&b->heartbeat);
    if (hb) {
        b->heartbeat.uplink = hb->uplink;
        b->heartbeat.spool_batches = hb->spool_batches;
        b->heartbeat.spool_bytes = hb->spool_bytes;
        b->heartbeat.spool_oldest_ms = hb->spool_oldest_ms;
        b->heartbeat.uplink_since_ms = hb->uplink_since_ms;
    }
}

size_t np_wire_builder_size(const struct np_wire_builder *b)
{
    return builder_header_size(b) + b->items_bytes;
}

size_t np_wire_builder_count(const struct np_wire_builder *b)
{
    return b->batch.n_samples + b->batch.n_devices + b->batch.n_flows + b->batch.n_probes +
           b->batch.n_events;
}

const Netpulse__Batch *np_wire_builder_batch(const struct np_wire_builder *b)
{
    return &b->batch;
}

int np_wire_builder_finish(struct np_wire_builder *b, uint64_t seq, int64_t created_ms,
                           uint8_t **out, size_t *out_len, struct np_err *err)
{
    b->batch.seq = seq;
    b->batch.created_ms = created_ms;
    return wire_encode(&b->batch, &b->lim, out, out_len, err);
}
