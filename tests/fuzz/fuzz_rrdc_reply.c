/* Fuzzes rrdc_conn.h's reply readers with bytes as rrdcached would send them:
 * the first input byte is the number of commands of a BATCH (1..256), the
 * rest is the daemon's side of the socket (written into a socketpair, then
 * the writer hangs up). Checked: a batch reply reports at most that many
 * failures, each with a number in 1..n and a message without control bytes;
 * a single reply's message has none either; nothing reads past the input. */
#include "rrdc_conn.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX 60000 /* below a socket buffer: the write never blocks */

struct seen {
    unsigned n, max;
};

static void no_controls(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            abort();
        }
    }
}

static void on_error(void *ctx, unsigned number, const char *msg)
{
    struct seen *s = ctx;
    if (number < 1 || number > s->max) {
        abort();
    }
    no_controls(msg);
    s->n++;
}

static struct np_rrdc_conn *feed(const uint8_t *data, size_t size)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        abort();
    }
    if (size && write(sv[1], data, size) != (ssize_t)size) {
        abort();
    }
    close(sv[1]);
    return np_rrdc_from_fd(sv[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct np_rrdc_conn *c;
    struct np_err err = {0};
    struct seen s;
    char msg[128];
    int ret;

    if (size < 1 || size > INPUT_MAX) {
        return 0;
    }
    s.n = 0;
    s.max = (unsigned)data[0] + 1;
    c = feed(data + 1, size - 1);
    ret = np_rrdc_read_batch_reply(c, s.max, on_error, &s, &err);
    if (ret >= 0 && ((unsigned)ret != s.n || s.n > s.max)) {
        abort();
    }
    np_rrdc_close(c);

    c = feed(data + 1, size - 1);
    ret = np_rrdc_read_reply(c, msg, sizeof msg, &err);
    if (ret >= 0) {
        no_controls(msg);
    }
    np_rrdc_close(c);
    return 0;
}
