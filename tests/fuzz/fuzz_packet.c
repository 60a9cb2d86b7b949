/* libFuzzer target for the packet decoder and the aggregation behind it
 * (fragment memory, flow table). Input: one byte choosing the link type, two
 * bytes of extra wire length (snaplen cut), then the captured bytes. */
#include "flow/flow_agg.h"
#include "flow/packet_decode.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int dlts[] = {NP_DLT_EN10MB, NP_DLT_LINUX_SLL, NP_DLT_LINUX_SLL2, NP_DLT_RAW,
                           NP_DLT_NULL,   NP_DLT_LOOP,      NP_DLT_IPV4,       NP_DLT_IPV6};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct np_flow_agg *agg;
    static struct np_prefix local;
    static uint64_t ts;
    if (!agg) {
        struct np_flow_agg_config cfg = {
            .max_flows = 16, .sample = 1, .local = &local, .n_local = 1};
        if (np_prefix_parse("10.0.0.0/8", &local) != 0 || np_flow_agg_new(&cfg, &agg) != 0) {
            abort();
        }
    }
    if (size < 3 || size > 65535) {
        return 0;
    }
    int dlt = dlts[data[0] % (sizeof dlts / sizeof dlts[0])];
    uint32_t extra = (uint32_t)data[1] << 8 | data[2];
    const uint8_t *pkt = data + 3;
    uint32_t caplen = (uint32_t)(size - 3);
    struct np_pkt out;
    enum np_pkt_status st = np_pkt_decode(dlt, pkt, caplen, caplen + extra, &out);
    if ((unsigned)st >= NP_PKT_STATUS_COUNT || out.wire_len != caplen + extra) {
        abort();
    }
    /* The aggregator sees the same frame: table churn, evictions, fragments. */
    np_flow_agg_packet(agg, dlt, ts += 1000, pkt, caplen, caplen + extra);
    return 0;
}
