/* Fuzzes the graph parameter validator (rrd_graph.h) and the static path
 * mapping (web.h): input "PATH\nQUERY". Whatever is accepted must build an
 * argument vector without newlines, and a mapped path never holds "..". */
#include "rrd_graph.h"
#include "web.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    size_t pl = nl ? (size_t)(nl - s) : size;
    const char *q = nl ? nl + 1 : "";
    size_t ql = nl ? size - pl - 1 : 0;
    struct np_graph_req r;
    struct np_err err = {0};
    if (np_rrd_graph_parse(s, pl, q, ql, 1790000000, &r, &err) == 0) {
        struct np_graph_args a;
        if (r.width < NP_GRAPH_MIN_WIDTH || r.width > NP_GRAPH_MAX_WIDTH || r.from_s >= r.to_s ||
            strchr(r.site, ':') || strchr(r.site, '/')) {
            abort();
        }
        if (np_rrd_graph_build(&r, "/var/lib/netpulse/rrd/x/if+edge+eth0.rrd", 1000, &a, &err) ==
            0) {
            for (int i = 0; i < a.argc; i++) {
                if (strchr(a.argv[i], '\n')) {
                    abort();
                }
            }
        }
    }
    char out[256];
    if (np_web_map_path(s, pl, out, sizeof out) == 0 && strstr(out, "..")) {
        abort();
    }
    return 0;
}
