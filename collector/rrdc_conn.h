/* rrdc_conn: a connection of our own to rrdcached, speaking its line protocol
 * (rrdcached(1), PROTOCOL).
 *
 * Debian's librrd 1.7.2 exports only one process-wide rrdcached connection
 * behind its own lock, so the store's writers queued on it and paid a round
 * trip per file. Here each writer takes a connection of its own, and a batch
 * of updates goes out as one BATCH command: one write and one reply.
 *
 * Commands are built into a struct np_rrdc_cmds; arguments are escaped as
 * librrd's client does (a space or backslash gets a backslash). A connection
 * is used by one thread at a time; every call blocks on the socket. After a
 * negative errno return the connection's state is unknown: close it. */
#ifndef NP_COLLECTOR_RRDC_CONN_H
#define NP_COLLECTOR_RRDC_CONN_H

#include <netpulse/err.h>

#include <stddef.h>

/* rrdcached reads commands into a buffer of this size (RRD_CMD_MAX); a longer
 * command line is refused by np_rrdc_cmds_add, as are reply lines. */
#define NP_RRDC_LINE_MAX 4096

struct np_rrdc_conn;

/* Command lines waiting to be sent. Zero-initialise; reuse after
 * np_rrdc_cmds_reset; release with np_rrdc_cmds_free. */
struct np_rrdc_cmds {
    char *buf;
    size_t len, cap;
    unsigned n; /* commands in buf */
};

/* Called once per failed command of a batch: its number (1 = the first
 * command added) and the daemon's message (a NUL-terminated line). */
typedef void (*np_rrdc_error_cb)(void *ctx, unsigned number, const char *msg);

/* Connects to a local socket, "unix:/path" or "/path" (rrd_store names files
 * by absolute path, which rrdcached takes only locally). Returns 0, or a
 * negative errno (-EINVAL for any other address) with err naming it.
 * Blocking; any thread. */
int np_rrdc_open(const char *address, struct np_rrdc_conn **out, struct np_err *err);

/* Wraps a connected stream fd (tests, fuzzing); the connection owns fd.
 * Returns NULL when out of memory (fd is closed then). */
struct np_rrdc_conn *np_rrdc_from_fd(int fd);

/* True when address names a local socket (paths go out absolute). */
int np_rrdc_address_is_local(const char *address);

/* Closes and frees; accepts NULL. */
void np_rrdc_close(struct np_rrdc_conn *conn);

/* Appends the line "VERB path arg...". Returns its command number (from 1),
 * -E2BIG when the line would pass NP_RRDC_LINE_MAX, -EINVAL for a newline in
 * an argument, -ENOMEM. On error cmds is unchanged. */
int np_rrdc_cmds_add(struct np_rrdc_cmds *cmds, const char *verb, const char *path,
                     const char *const *args, size_t nargs);

/* Forgets the commands, keeps the buffer. */
void np_rrdc_cmds_reset(struct np_rrdc_cmds *cmds);

/* Frees the buffer and zeroes cmds. */
void np_rrdc_cmds_free(struct np_rrdc_cmds *cmds);

/* Sends the single command in cmds and reads its reply. Returns the status
 * (>= 0; lines that follow it are read and dropped) with its message in msg
 * (msg_len bytes, may be 0); NP_ERRD when the daemon answered with an error
 * (err holds its message; the connection stays usable); a negative errno or
 * NP_EPROTO when the connection failed or the reply was malformed. */
int np_rrdc_request(struct np_rrdc_conn *conn, const struct np_rrdc_cmds *cmds, char *msg,
                    size_t msg_len, struct np_err *err);

/* Sends every command of cmds as one BATCH and reads the outcome: returns
 * how many commands failed (on_error, may be NULL, hears each), or a negative
 * errno / NP_EPROTO / NP_ERRD (BATCH refused) with err set. */
int np_rrdc_batch(struct np_rrdc_conn *conn, const struct np_rrdc_cmds *cmds,
                  np_rrdc_error_cb on_error, void *ctx, struct np_err *err);

/* The reply readers the two calls above use, for tests and fuzzing: one
 * status reply (as np_rrdc_request), and a BATCH reply ("0 Go ahead..." then
 * "N errors" and N lines "NUMBER message", numbers 1..n_commands). */
int np_rrdc_read_reply(struct np_rrdc_conn *conn, char *msg, size_t msg_len, struct np_err *err);
int np_rrdc_read_batch_reply(struct np_rrdc_conn *conn, unsigned n_commands,
                             np_rrdc_error_cb on_error, void *ctx, struct np_err *err);

#endif
