/* Fuzzes np_http_bearer_token(): the input is an Authorization header value.
 * Checks what it promises: on success a NUL-terminated token of visible
 * ASCII that fits the buffer and appears at the end of the input; on error
 * an empty string. */
#include "http_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact-size heap copies, so ASan sees any read past the view. */
    char *v = malloc(size ? size : 1);
    char out[129];
    if (!v) {
        return 0;
    }
    if (size) {
        memcpy(v, data, size);
    }
    for (size_t cap = 1; cap <= sizeof out; cap += 64) {
        int rc = np_http_bearer_token(size ? v : NULL, size, out, cap);
        size_t n = strnlen(out, cap);
        if (n >= cap) {
            abort();
        }
        if (rc == 0) {
            if (n == 0 || n > size || memcmp(v + size - n, out, n) != 0) {
                abort();
            }
            for (size_t i = 0; i < n; i++) {
                if (out[i] <= 0x20 || out[i] >= 0x7f) {
                    abort();
                }
            }
        } else if (n != 0) {
            abort();
        }
    }
    free(v);
    return 0;
}
