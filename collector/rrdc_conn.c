#include "rrdc_conn.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

struct np_rrdc_conn {
    int fd;
    size_t start, end;            /* unread reply bytes: buf[start, end) */
    char buf[NP_RRDC_LINE_MAX + 1]; /* + a NUL after the longest line */
};

/* ---- connecting ------------------------------------------------------------ */

int np_rrdc_address_is_local(const char *address)
{
    return address && (address[0] == '/' || strncmp(address, "unix:", 5) == 0);
}

struct np_rrdc_conn *np_rrdc_from_fd(int fd)
{
    struct np_rrdc_conn *c = malloc(sizeof *c);
    if (!c) {
        close(fd);
        return NULL;
    }
    c->fd = fd;
    c->start = c->end = 0;
    return c;
}

static int open_unix(const char *path, int *fd_out, struct np_err *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    int fd, ret;
    if (n == 0 || n >= sizeof sa.sun_path) {
        return np_err_set(err, -ENAMETOOLONG, "rrdcached: socket path too long or empty: %s",
                          path);
    }
    memcpy(sa.sun_path, path, n + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ret = -errno;
        return np_err_set(err, ret, "rrdcached: socket: %s", np_strerror(ret));
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        ret = -errno;
        close(fd);
        return np_err_set(err, ret, "rrdcached: connect to unix:%s: %s", path, np_strerror(ret));
    }
    *fd_out = fd;
    return 0;
}

int np_rrdc_open(const char *address, struct np_rrdc_conn **out, struct np_err *err)
{
    int fd = -1, ret;
    *out = NULL;
    if (!address || !address[0]) {
        return np_err_set(err, -EINVAL, "rrdcached: no address");
    }
    if (!np_rrdc_address_is_local(address)) {
        return np_err_set(err, -EINVAL, "rrdcached: %s is not a local socket", address);
    }
    ret = open_unix(strncmp(address, "unix:", 5) == 0 ? address + 5 : address, &fd, err);
    if (ret < 0) {
        return ret;
    }
    *out = np_rrdc_from_fd(fd);
    return *out ? 0 : np_err_set(err, -ENOMEM, "rrdcached: out of memory");
}

void np_rrdc_close(struct np_rrdc_conn *conn)
{
    if (conn) {
        close(conn->fd);
        free(conn);
    }
}

/* ---- commands ---------------------------------------------------------------- */

/* Bytes of s escaped (see the header), or SIZE_MAX for a newline. */
static size_t escaped_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        if (*s == '\n' || *s == '\r') {
            return (size_t)-1;
        }
        n += (*s == ' ' || *s == '\\') ? 2 : 1;
    }
    return n;
}

static char *put_escaped(char *out, const char *s)
{
    for (; *s; s++) {
        if (*s == ' ' || *s == '\\') {
            *out++ = '\\';
        }
        *out++ = *s;
    }
    return out;
}

int np_rrdc_cmds_add(struct np_rrdc_cmds *cmds, const char *verb, const char *path,
                     const char *const *args, size_t nargs)
{
    size_t need = strlen(verb) + 1, l = escaped_len(path); /* + '\n' at the end */
    char *p;
    if (l == (size_t)-1) {
        return -EINVAL;
    }
    need += 1 + l;
    for (size_t i = 0; i < nargs; i++) {
        l = escaped_len(args[i]);
        if (l == (size_t)-1) {
            return -EINVAL;
        }
        need += 1 + l;
    }
    if (need > NP_RRDC_LINE_MAX - 1) {
        return -E2BIG;
    }
    if (cmds->len + need > cmds->cap) {
        size_t cap = cmds->cap ? cmds->cap : 512;
        while (cap < cmds->len + need) {
            cap *= 2;
        }
        p = realloc(cmds->buf, cap);
        if (!p) {
            return -ENOMEM;
        }
        cmds->buf = p;
        cmds->cap = cap;
    }
    p = cmds->buf + cmds->len;
    memcpy(p, verb, strlen(verb));
    p += strlen(verb);
    *p++ = ' ';
    p = put_escaped(p, path);
    for (size_t i = 0; i < nargs; i++) {
        *p++ = ' ';
        p = put_escaped(p, args[i]);
    }
    *p++ = '\n';
    cmds->len = (size_t)(p - cmds->buf);
    return (int)++cmds->n;
}

void np_rrdc_cmds_reset(struct np_rrdc_cmds *cmds)
{
    cmds->len = 0;
    cmds->n = 0;
}

void np_rrdc_cmds_free(struct np_rrdc_cmds *cmds)
{
    free(cmds->buf);
    memset(cmds, 0, sizeof *cmds);
}

/* ---- the wire ---------------------------------------------------------------- */

static int send_all(struct np_rrdc_conn *conn, struct iovec *iov, int iovcnt, struct np_err *err)
{
    while (iovcnt > 0) {
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
        ssize_t n = sendmsg(conn->fd, &mh, MSG_NOSIGNAL);
        if (n < 0) {
            int ret = -errno;
            if (ret == -EINTR) {
                continue;
            }
            return np_err_set(err, ret, "rrdcached: send: %s", np_strerror(ret));
        }
        while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* The next reply line, NUL-terminated, without its newline; control bytes in
 * it become '?', so messages are safe to log. */
static int read_line(struct np_rrdc_conn *conn, char **line, struct np_err *err)
{
    for (;;) {
        char *nl = memchr(conn->buf + conn->start, '\n', conn->end - conn->start);
        if (nl) {
            char *l = conn->buf + conn->start;
            *nl = '\0';
            if (nl > l && nl[-1] == '\r') {
                nl[-1] = '\0';
            }
            for (char *c = l; *c; c++) {
                if ((unsigned char)*c < 0x20 || *c == 0x7f) {
                    *c = '?';
                }
            }
            conn->start = (size_t)(nl + 1 - conn->buf);
            *line = l;
            return 0;
        }
        if (conn->start > 0) {
            memmove(conn->buf, conn->buf + conn->start, conn->end - conn->start);
            conn->end -= conn->start;
            conn->start = 0;
        }
        if (conn->end >= NP_RRDC_LINE_MAX) {
            return np_err_set(err, NP_EPROTO, "rrdcached: reply line over %d bytes",
                              NP_RRDC_LINE_MAX);
        }
        ssize_t n = read(conn->fd, conn->buf + conn->end, NP_RRDC_LINE_MAX - conn->end);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int ret = -errno;
            return np_err_set(err, ret, "rrdcached: read: %s", np_strerror(ret));
        }
        if (n == 0) {
            return np_err_set(err, -ECONNRESET, "rrdcached: connection closed mid-reply");
        }
        conn->end += (size_t)n;
    }
}

/* "STATUS message": an optional '-', 1..9 digits, then blanks or the end. */
static int parse_status(const char *line, long *status, const char **msg, struct np_err *err)
{
    const char *p = line;
    long v = 0;
    bool neg = *p == '-';
    int digits = 0;
    p += neg;
    while (*p >= '0' && *p <= '9' && digits < 9) {
        v = v * 10 + (*p++ - '0');
        digits++;
    }
    if (digits == 0 || (*p && *p != ' ' && *p != '\t')) {
        return np_err_set(err, NP_EPROTO, "rrdcached: malformed reply \"%.80s\"", line);
    }
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    *status = neg ? -v : v;
    *msg = p;
    return 0;
}

int np_rrdc_read_reply(struct np_rrdc_conn *conn, char *msg, size_t msg_len, struct np_err *err)
{
    const char *text;
    char *line;
    long status;
    int ret = read_line(conn, &line, err);
    if (ret < 0 || (ret = parse_status(line, &status, &text, err)) < 0) {
        return ret;
    }
    if (msg_len) {
        snprintf(msg, msg_len, "%s", text);
    }
    if (status < 0) {
        return np_err_set(err, NP_ERRD, "rrdcached: %.200s", text);
    }
    for (long i = 0; i < status; i++) {
        ret = read_line(conn, &line, err);
        if (ret < 0) {
            return ret;
        }
    }
    return (int)status;
}

int np_rrdc_read_batch_reply(struct np_rrdc_conn *conn, unsigned n_commands,
                             np_rrdc_error_cb on_error, void *ctx, struct np_err *err)
{
    const char *text;
    char *line;
    long status, failed;
    int ret = np_rrdc_read_reply(conn, NULL, 0, err);
    if (ret < 0) {
        return ret; /* BATCH itself refused */
    }
    if (ret > 0) {
        return np_err_set(err, NP_EPROTO, "rrdcached: BATCH answered with %d lines", ret);
    }
    if ((ret = read_line(conn, &line, err)) < 0 ||
        (ret = parse_status(line, &failed, &text, err)) < 0) {
        return ret;
    }
    if (failed < 0 || (unsigned long)failed > n_commands) {
        return np_err_set(err, NP_EPROTO, "rrdcached: %ld errors reported for %u commands", failed,
                          n_commands);
    }
    for (long i = 0; i < failed; i++) {
        if ((ret = read_line(conn, &line, err)) < 0 ||
            (ret = parse_status(line, &status, &text, err)) < 0) {
            return ret;
        }
        if (status < 1 || (unsigned long)status > n_commands) {
            return np_err_set(err, NP_EPROTO, "rrdcached: error for command %ld of %u", status,
                              n_commands);
        }
        if (on_error) {
            on_error(ctx, (unsigned)status, text);
        }
    }
    return (int)failed;
}

int np_rrdc_request(struct np_rrdc_conn *conn, const struct np_rrdc_cmds *cmds, char *msg,
                    size_t msg_len, struct np_err *err)
{
    struct iovec iov = {.iov_base = cmds->buf, .iov_len = cmds->len};
    int ret;
    if (cmds->n != 1) {
        return np_err_set(err, -EINVAL, "rrdcached: a request is one command, not %u", cmds->n);
    }
    ret = send_all(conn, &iov, 1, err);
    return ret < 0 ? ret : np_rrdc_read_reply(conn, msg, msg_len, err);
}

int np_rrdc_batch(struct np_rrdc_conn *conn, const struct np_rrdc_cmds *cmds,
                  np_rrdc_error_cb on_error, void *ctx, struct np_err *err)
{
    /* All in one write: rrdcached answers BATCH with one line and holds every
     * other reply until the dot, so nothing fills up while we send. */
    static const char head[] = "BATCH\n", tail[] = ".\n";
    struct iovec iov[3] = {{.iov_base = (void *)head, .iov_len = sizeof head - 1},
                           {.iov_base = cmds->buf, .iov_len = cmds->len},
                           {.iov_base = (void *)tail, .iov_len = sizeof tail - 1}};
    int ret;
    if (cmds->n == 0) {
        return 0;
    }
    ret = send_all(conn, iov, 3, err);
    return ret < 0 ? ret : np_rrdc_read_batch_reply(conn, cmds->n, on_error, ctx, err);
}
