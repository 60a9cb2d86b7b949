/* bench_flow_floor: the bare libpcap read loop over a file, the floor for
 * tests/bench/bench_flow.sh: every record read, nothing decoded.
 *
 *   bench_flow_floor FILE   -> prints "packets bytes" */
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>

struct floor_count {
    uint64_t packets;
    uint64_t bytes;
};

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
    struct floor_count *c = (struct floor_count *)user;
    (void)bytes;
    c->packets++;
    c->bytes += h->len;
}

int main(int argc, char **argv)
{
    char errbuf[PCAP_ERRBUF_SIZE];
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    pcap_t *p = pcap_open_offline(argv[1], errbuf);
    if (!p) {
        fprintf(stderr, "bench_flow_floor: %s\n", errbuf);
        return 1;
    }
    struct floor_count c = {0, 0};
    while (pcap_dispatch(p, -1, on_packet, (u_char *)&c) > 0) {
    }
    pcap_close(p);
    printf("%" PRIu64 " %" PRIu64 "\n", c.packets, c.bytes);
    return 0;
}
