/* Fuzzes np_http_site_path(): the input is a path (h2o hands us the
 * normalised one; the fuzzer also tries what normalisation would never
 * produce). The prefix is prepended half of the time so most inputs reach
 * the id and tail parsing. Checks that an accepted id is non-empty, has no
 * '/', fits its buffer and is what the path holds. */
#include "http_parse.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const size_t pl = strlen(NP_HTTP_SITES_PREFIX);
    bool prefixed = size > 0 && (data[0] & 1);
    size_t len = prefixed ? pl + size - 1 : size;
    char *path = malloc(len ? len : 1);
    char site[NP_HTTP_SITE_ID_MAX];
    if (!path) {
        return 0;
    }
    if (prefixed) {
        memcpy(path, NP_HTTP_SITES_PREFIX, pl);
        memcpy(path + pl, data + 1, size - 1);
    } else if (size) {
        memcpy(path, data, size);
    }
    for (size_t cap = 1; cap <= sizeof site; cap += 16) {
        enum np_http_site_sub sub = NP_HTTP_SITE;
        int rc = np_http_site_path(path, len, site, cap, &sub);
        size_t n = strnlen(site, cap);
        if (n >= cap) {
            abort();
        }
        if (rc == 0) {
            if (n == 0 || memchr(site, '/', n) || len < pl + n || memcmp(path + pl, site, n) != 0 ||
                sub > NP_HTTP_SITE_CAPACITY) {
                abort();
            }
        } else if (n != 0) {
            abort();
        }
    }
    free(path);
    return 0;
}
