/* Fuzzes np_http_gunzip(): the input is a request body sent with
 * Content-Encoding: gzip. The cap is small (64 KiB) so the fuzzer reaches
 * the over-the-cap path. An input that does not start with gzip's magic byte
 * gives its first byte as a tiny cap and the rest as the body.
 * Checks: success gives at most cap bytes, failure gives nothing, and the
 * codes are the documented ones. */
#include "http_parse.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cap = 65536;
    if (size > 0 && data[0] != 0x1f) {
        cap = data[0];
        data++;
        size--;
    }
    uint8_t *in = malloc(size ? size : 1), *out = (uint8_t *)1;
    size_t out_len = 12345;
    struct np_err err = {0};
    if (!in) {
        return 0;
    }
    if (size) {
        memcpy(in, data, size);
    }
    int rc = np_http_gunzip(in, size, cap, &out, &out_len, &err);
    if (rc == 0) {
        if (!out || out_len > cap) {
            abort();
        }
        if (out_len) {
            volatile uint8_t sink = out[out_len - 1]; /* every byte is ours */
            (void)sink;
        }
        free(out);
    } else if (out != NULL || out_len != 0 || !err.msg[0] ||
               (rc != NP_ETOOBIG && rc != NP_EPROTO && rc != -ENOMEM)) {
        abort();
    }
    free(in);
    return 0;
}
