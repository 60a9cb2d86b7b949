/* fuzz_wire: np_wire_decode on arbitrary bytes, as the collector's ingest
 * sees them. Beyond "no crash, no leak, no sanitizer report" it checks:
 * - a refused input gets a negative code and a "batch: " message;
 * - an accepted batch re-encodes (np_wire_encode validates it again), the
 *   re-encoding decodes, and encoding that gives the same bytes;
 * - its items go through a builder (copy, clean, check) without refusal;
 * - the same input under tight limits is refused or valid, never more. */
#include "netpulse/wire.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const struct np_err *err)
{
    fprintf(stderr, "fuzz_wire: %s: %s\n", what, err ? err->msg : "");
    abort();
}

static void check_refusal(int rc, const struct np_err *err)
{
    if (rc >= 0 || err->code != rc || strncmp(err->msg, "batch: ", 7) != 0) {
        fail("refusal without a negative code and a batch: message", err);
    }
}

static void rebuild(const Netpulse__Batch *b)
{
    struct np_wire_builder *wb = NULL;
    struct np_err err = {0};
    uint8_t *out = NULL;
    size_t out_len = 0;
    if (np_wire_builder_new(b->agent_id, b->agent_version, b->agent_start_ms, NULL, &wb, &err)) {
        fail("builder refused a decoded identity", &err);
    }
    for (size_t i = 0; i < b->n_samples; i++) {
        if (np_wire_builder_add_sample(wb, b->samples[i], &err)) {
            fail("builder refused a decoded sample", &err);
        }
    }
    for (size_t i = 0; i < b->n_devices; i++) {
        if (np_wire_builder_add_device(wb, b->devices[i], &err)) {
            fail("builder refused a decoded device", &err);
        }
    }
    for (size_t i = 0; i < b->n_flows; i++) {
        if (np_wire_builder_add_flow_summary(wb, b->flows[i], &err)) {
            fail("builder refused a decoded flow summary", &err);
        }
    }
    for (size_t i = 0; i < b->n_probes; i++) {
        if (np_wire_builder_add_probe(wb, b->probes[i], &err)) {
            fail("builder refused a decoded probe", &err);
        }
    }
    for (size_t i = 0; i < b->n_events; i++) {
        if (np_wire_builder_add_event(wb, b->events[i], &err)) {
            fail("builder refused a decoded event", &err);
        }
    }
    np_wire_builder_set_heartbeat(wb, b->heartbeat);
    size_t est = np_wire_builder_size(wb);
    if (np_wire_builder_finish(wb, b->seq, b->created_ms, &out, &out_len, &err)) {
        fail("builder could not finish a decoded batch", &err);
    }
    if (out_len > est || est - out_len > NP_WIRE_BUILDER_SLACK) {
        fail("builder size estimate off", NULL);
    }
    free(out);
    np_wire_builder_free(wb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct np_err err = {0};
    Netpulse__Batch *b = NULL;

    int rc = np_wire_decode(data, size, NULL, &b, &err);
    if (rc) {
        check_refusal(rc, &err);
        if (b) {
            fail("refusal left a batch", &err);
        }
    } else {
        uint8_t *e1 = NULL, *e2 = NULL;
        size_t n1 = 0, n2 = 0;
        Netpulse__Batch *b2 = NULL;
        if (np_wire_encode(b, &e1, &n1, &err)) {
            fail("a decoded batch does not encode", &err);
        }
        if (np_wire_decode(e1, n1, NULL, &b2, &err)) {
            fail("a re-encoded batch does not decode", &err);
        }
        if (np_wire_encode(b2, &e2, &n2, &err)) {
            fail("a twice-decoded batch does not encode", &err);
        }
        if (n1 != n2 || memcmp(e1, e2, n1) != 0) {
            fail("encoding is not stable across a round trip", NULL);
        }
        rebuild(b);
        free(e1);
        free(e2);
        np_wire_free(b2);
        np_wire_free(b);
    }

    /* Tight limits reach the budget allocator's refusals inside protobuf-c
     * and every count limit. */
    struct np_wire_limits lim = np_wire_default_limits;
    lim.max_decoded_bytes = 2048;
    lim.max_samples = lim.max_devices = lim.max_flows = 2;
    lim.max_probes = lim.max_events = lim.max_flow_entries = 2;
    lim.max_string = 16;
    b = NULL;
    rc = np_wire_decode(data, size, &lim, &b, &err);
    if (rc) {
        check_refusal(rc, &err);
    } else if (np_wire_validate(b, &lim, &err)) {
        fail("accepted under tight limits but invalid", &err);
    }
    np_wire_free(b);
    return 0;
}
