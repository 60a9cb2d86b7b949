#include "probe_logic.h"

#include <string.h>
#include <sys/socket.h>

bool np_probe_streak_feed(struct np_probe_streak *s, bool ok, int64_t time_ms, unsigned up_after,
                          unsigned down_after, int64_t *since_ms)
{
    enum np_uplink_state want = ok ? NP_UPLINK_UP : NP_UPLINK_DOWN;
    if (s->state == want) {
        s->run = 0;
        return false;
    }
    if (s->run == 0 || s->run_ok != ok) {
        s->run = 0;
        s->run_ok = ok;
        s->run_start_ms = time_ms;
    }
    s->run++;
    unsigned need = ok ? up_after : down_after;
    if (need == 0) {
        need = 1;
    }
    if (s->run < need) {
        return false;
    }
    s->state = want;
    s->run = 0;
    if (since_ms) {
        *since_ms = s->run_start_ms;
    }
    return true;
}

enum np_uplink_state np_probe_uplink_eval(enum np_uplink_state current, unsigned n_up,
                                          unsigned n_down, unsigned n_total, unsigned quorum)
{
    if (quorum == 0) {
        return current;
    }
    if (n_up >= quorum) {
        return NP_UPLINK_UP;
    }
    if (n_down > n_total || n_total - n_down < quorum) {
        return NP_UPLINK_DOWN;
    }
    return current;
}

bool np_probe_status_ok(int status, const struct np_status_range *ranges, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (status >= ranges[i].lo && status <= ranges[i].hi) {
            return true;
        }
    }
    return false;
}

/* RFC 1071 Internet checksum. */
static uint16_t inet_checksum(const uint8_t *p, size_t len)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2) {
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    }
    if (len & 1) {
        sum += (uint32_t)(p[len - 1] << 8);
    }
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return (uint16_t)~sum;
}

size_t np_probe_icmp_build(uint8_t *buf, int family, uint16_t id, uint16_t seq, uint64_t cookie)
{
    memset(buf, 0, NP_PROBE_ICMP_LEN);
    buf[0] = family == AF_INET6 ? 128 : 8; /* ICMP6_ECHO_REQUEST : ICMP_ECHO */
    buf[1] = 0;
    buf[4] = (uint8_t)(id >> 8);
    buf[5] = (uint8_t)id;
    buf[6] = (uint8_t)(seq >> 8);
    buf[7] = (uint8_t)seq;
    for (int i = 0; i < 8; i++) {
        buf[8 + i] = (uint8_t)(cookie >> (56 - 8 * i));
    }
    for (size_t i = 16; i < NP_PROBE_ICMP_LEN; i++) {
        buf[i] = (uint8_t)i;
    }
    if (family != AF_INET6) {
        uint16_t c = inet_checksum(buf, NP_PROBE_ICMP_LEN);
        buf[2] = (uint8_t)(c >> 8);
        buf[3] = (uint8_t)c;
    }
    return NP_PROBE_ICMP_LEN;
}

int np_probe_icmp_parse(const uint8_t *buf, size_t len, int family, bool ip_header, uint64_t cookie,
                        uint16_t *id, uint16_t *seq)
{
    if (ip_header) {
        if (len < 20 || (buf[0] >> 4) != 4) {
            return -1;
        }
        size_t ihl = (size_t)(buf[0] & 0x0f) * 4;
        if (ihl < 20 || ihl > len) {
            return -1;
        }
        buf += ihl;
        len -= ihl;
    }
    if (len < 16) {
        return -1;
    }
    uint8_t reply = family == AF_INET6 ? 129 : 0; /* ICMP6_ECHO_REPLY : ICMP_ECHOREPLY */
    if (buf[0] != reply || buf[1] != 0) {
        return -1;
    }
    uint64_t c = 0;
    for (int i = 0; i < 8; i++) {
        c = c << 8 | buf[8 + i];
    }
    if (c != cookie) {
        return -1;
    }
    *id = (uint16_t)(buf[4] << 8 | buf[5]);
    *seq = (uint16_t)(buf[6] << 8 | buf[7]);
    return 0;
}
