/* Fuzzes the query-string parsers: np_http_query_get() for every key the
 * API reads, with small and large buffers, and the two parameter parsers of
 * the read API (series and events/outages ranges). Checks that outputs stay
 * NUL-terminated inside their buffers and that accepted ranges are ordered. */
#include "http_parse.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const keys[] = {"from",  "to",    "step",  "cf",   "device",
                                   "iface", "probe", "month", "year", ""};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *q = malloc(size ? size : 1); /* exact size: ASan sees overreads */
    char small[8], big[NP_HTTP_QUERY_VALUE_MAX];
    if (!q) {
        return 0;
    }
    if (size) {
        memcpy(q, data, size);
    }
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        int a = np_http_query_get(q, size, keys[k], small, sizeof small);
        int b = np_http_query_get(q, size, keys[k], big, sizeof big);
        if ((a != 1 && a != 0 && a != -EINVAL) || (b != 1 && b != 0 && b != -EINVAL)) {
            abort();
        }
        if ((a == 1 && strnlen(small, sizeof small) >= sizeof small) ||
            (b == 1 && strnlen(big, sizeof big) >= sizeof big)) {
            abort();
        }
        /* Found in the small buffer means found, equal, in the big one. */
        if (a == 1 && (b != 1 || strcmp(small, big) != 0)) {
            abort();
        }
        /* Absence does not depend on the buffer. */
        if ((a == 0) != (b == 0)) {
            abort();
        }
    }
    struct np_http_series_query *sq = malloc(sizeof *sq);
    if (sq) {
        const char *why = np_http_series_query_parse(q, size, 1700000000, sq);
        if (!why && (sq->from_s >= sq->to_s || sq->step_s > 86400 * 366 ||
                     (strcmp(sq->cf, "AVERAGE") != 0 && strcmp(sq->cf, "MAX") != 0) ||
                     strnlen(sq->device, sizeof sq->device) >= sizeof sq->device ||
                     strnlen(sq->iface, sizeof sq->iface) >= sizeof sq->iface ||
                     strnlen(sq->probe, sizeof sq->probe) >= sizeof sq->probe)) {
            abort();
        }
        free(sq);
    }
    int64_t from = 0, to = 0;
    if (!np_http_range_query_parse(q, size, 1700000000, &from, &to) &&
        (from >= to || from < -NP_HTTP_TIME_LIMIT_S || to > NP_HTTP_TIME_LIMIT_S)) {
        abort();
    }
    free(q);
    return 0;
}
