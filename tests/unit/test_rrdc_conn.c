/* rrdc_conn: command building, reply parsing over a socketpair (canned
 * replies, good and bad), then a real rrdcached started here: CREATE, LAST,
 * BATCH with a refused command, FLUSH; and rrd_store over that daemon taking
 * back a refused update and asking the file's last update again. */
#include "check.h"
#include "rrd_store.h"
#include "rrdc_conn.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_cmds(void)
{
    struct np_rrdc_cmds c = {0};
    const char *args[] = {"1:2", "a b\\c"};
    char big[NP_RRDC_LINE_MAX];
    const char *bigp = big;
    CHECK_INT(np_rrdc_cmds_add(&c, "update", "/d/x y.rrd", args, 2), 1);
    CHECK_INT(np_rrdc_cmds_add(&c, "last", "/d/z.rrd", NULL, 0), 2);
    CHECK_INT(c.n, 2);
    CHECK(c.len == strlen("update /d/x\\ y.rrd 1:2 a\\ b\\\\c\nlast /d/z.rrd\n"));
    CHECK(memcmp(c.buf, "update /d/x\\ y.rrd 1:2 a\\ b\\\\c\nlast /d/z.rrd\n", c.len) == 0);
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_INT(np_rrdc_cmds_add(&c, "update", "/d/a.rrd", &bigp, 1), -E2BIG);
    CHECK_INT(np_rrdc_cmds_add(&c, "last", "/d/a\n.rrd", NULL, 0), -EINVAL);
    CHECK_INT(c.n, 2); /* refused commands left nothing */
    np_rrdc_cmds_reset(&c);
    CHECK_INT(c.n + c.len, 0);
    np_rrdc_cmds_free(&c);
}

/* A connection whose daemon side has already written reply and hung up. */
static struct np_rrdc_conn *canned(const char *reply, size_t len)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        perror("socketpair");
        exit(2);
    }
    if (write(sv[1], reply, len) != (ssize_t)len) {
        exit(2);
    }
    close(sv[1]);
    return np_rrdc_from_fd(sv[0]);
}

struct seen {
    unsigned n, numbers[4];
    char first[64];
};

static void on_error(void *ctx, unsigned number, const char *msg)
{
    struct seen *s = ctx;
    if (s->n == 0) {
        snprintf(s->first, sizeof s->first, "%s", msg);
    }
    if (s->n < 4) {
        s->numbers[s->n] = number;
    }
    s->n++;
}

static int reply_of(const char *text, char *msg, size_t msg_len, struct np_err *err)
{
    struct np_rrdc_conn *c = canned(text, strlen(text));
    int ret = np_rrdc_read_reply(c, msg, msg_len, err);
    np_rrdc_close(c);
    return ret;
}

static int batch_of(const char *text, unsigned n, struct seen *s, struct np_err *err)
{
    struct np_rrdc_conn *c = canned(text, strlen(text));
    int ret = np_rrdc_read_batch_reply(c, n, on_error, s, err);
    np_rrdc_close(c);
    return ret;
}

static void test_replies(void)
{
    struct np_err err = {0};
    struct seen s = {0};
    char msg[64], longline[NP_RRDC_LINE_MAX + 10];

    CHECK_INT(reply_of("0 1234567890\n", msg, sizeof msg, &err), 0);
    CHECK(strcmp(msg, "1234567890") == 0);
    CHECK_INT(reply_of("2 Two lines\r\nfirst\nsecond\n", msg, sizeof msg, &err), 2);
    CHECK(strcmp(msg, "Two lines") == 0);
    CHECK_INT(reply_of("-1 No such file: /x.rrd\n", msg, sizeof msg, &err), NP_ERRD);
    CHECK(strstr(err.msg, "No such file: /x.rrd") != NULL);
    CHECK_INT(reply_of("OK fine\n", msg, sizeof msg, &err), NP_EPROTO);
    CHECK(strstr(err.msg, "malformed reply \"OK fine\"") != NULL);
    CHECK_INT(reply_of("12x\n", msg, sizeof msg, &err), NP_EPROTO);
    CHECK_INT(reply_of("0 no newline", msg, sizeof msg, &err), -ECONNRESET);
    CHECK_INT(reply_of("3 lines\nonly one\n", msg, sizeof msg, &err), -ECONNRESET);
    CHECK_INT(reply_of("0 a\x01\x1b[2Jb\n", msg, sizeof msg, &err), 0);
    CHECK(strcmp(msg, "a??[2Jb") == 0); /* control bytes never reach a log */
    memset(longline, 'x', sizeof longline);
    memcpy(longline, "0 ", 2);
    longline[sizeof longline - 1] = '\0';
    CHECK_INT(reply_of(longline, msg, sizeof msg, &err), NP_EPROTO);
    CHECK(strstr(err.msg, "over 4096 bytes") != NULL);

    CHECK_INT(batch_of("0 Go ahead.\n0 errors\n", 5, &s, &err), 0);
    CHECK_INT(s.n, 0);
    CHECK_INT(batch_of("0 Go ahead.\n2 errors\n1 No such file\n5 illegal attempt\n", 5, &s,
                       &err),
              2);
    CHECK_INT(s.n, 2);
    CHECK_INT(s.numbers[0], 1);
    CHECK_INT(s.numbers[1], 5);
    CHECK(strcmp(s.first, "No such file") == 0);
    memset(&s, 0, sizeof s);
    CHECK_INT(batch_of("0 Go ahead.\n1 errors\n6 past the end\n", 5, &s, &err), NP_EPROTO);
    CHECK_INT(batch_of("0 Go ahead.\n1 errors\n0 zero\n", 5, &s, &err), NP_EPROTO);
    CHECK_INT(batch_of("0 Go ahead.\n6 errors\n", 5, &s, &err), NP_EPROTO);
    CHECK_INT(batch_of("0 Go ahead.\n-3 errors\n", 5, &s, &err), NP_EPROTO);
    CHECK_INT(batch_of("-1 Unknown command: BATCH\n", 5, &s, &err), NP_ERRD);
    CHECK_INT(batch_of("0 Go ahead.\n2 errors\n1 one\n", 5, &s, &err), -ECONNRESET);
    CHECK_INT(s.n, 1); /* the one that came is reported */
}

/* ---- a real rrdcached -------------------------------------------------------- */

static pid_t start_rrdcached(const char *dir, char *addr, size_t len)
{
    char sock[256], listen_arg[300], base[256], jdir[256], pidf[256];
    pid_t pid;
    snprintf(sock, sizeof sock, "%s/d.sock", dir);
    snprintf(listen_arg, sizeof listen_arg, "unix:%s", sock);
    snprintf(base, sizeof base, "%s/data/rrd", dir);
    snprintf(jdir, sizeof jdir, "%s/j", dir);
    snprintf(pidf, sizeof pidf, "%s/d.pid", dir);
    snprintf(addr, len, "unix:%s", sock);
    mkdir(jdir, 0700);
    snprintf(sock, sizeof sock, "%s/data", dir);
    mkdir(sock, 0700);
    mkdir(base, 0700);
    pid = fork();
    if (pid == 0) {
        execlp("rrdcached", "rrdcached", "-g", "-l", listen_arg, "-p", pidf, "-b", base, "-j",
               jdir, "-w", "3600", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        struct np_rrdc_conn *c;
        if (np_rrdc_open(addr, &c, NULL) == 0) {
            np_rrdc_close(c);
            return pid;
        }
        usleep(50000);
    }
    fprintf(stderr, "rrdcached did not start\n");
    kill(pid, SIGTERM);
    exit(2);
}

static int64_t daemon_last(struct np_rrdc_conn *c, const char *path)
{
    struct np_rrdc_cmds cmd = {0};
    char msg[64];
    int ret;
    np_rrdc_cmds_add(&cmd, "last", path, NULL, 0);
    ret = np_rrdc_request(c, &cmd, msg, sizeof msg, NULL);
    np_rrdc_cmds_free(&cmd);
    return ret == 0 ? strtoll(msg, NULL, 10) : -1;
}

static void test_daemon_protocol(const char *addr, const char *rrd_dir)
{
    struct np_rrdc_conn *c = NULL;
    struct np_rrdc_cmds cmds = {0};
    struct np_err err = {0};
    struct seen s = {0};
    char path[512], other[512];
    const char *create[] = {"-b", "1700000000", "-s", "60", "-O", "DS:x:GAUGE:120:0:U",
                            "RRA:AVERAGE:0.5:1:100"};
    const char *v1[] = {"1700000060:1", "1700000120:2"}, *v2[] = {"1700000100:3"},
               *v3[] = {"1700000180:4"};

    snprintf(path, sizeof path, "%s/proto.rrd", rrd_dir);
    snprintf(other, sizeof other, "%s/missing.rrd", rrd_dir);
    CHECK_INT(np_rrdc_open(addr, &c, &err), 0);
    if (!c) {
        return;
    }
    np_rrdc_cmds_add(&cmds, "create", path, create, 7);
    CHECK_INT(np_rrdc_request(c, &cmds, NULL, 0, &err), 0);
    /* A second CREATE with -O is refused; the connection stays usable. */
    CHECK_INT(np_rrdc_request(c, &cmds, NULL, 0, &err), NP_ERRD);
    CHECK(strstr(err.msg, "File exists") != NULL);
    /* rrdcached's LAST is the last update rounded down to the step. */
    CHECK_INT(daemon_last(c, path), 1700000000 - 1700000000 % 60);

    np_rrdc_cmds_reset(&cmds);
    CHECK_INT(np_rrdc_cmds_add(&cmds, "update", path, v1, 2), 1);
    CHECK_INT(np_rrdc_cmds_add(&cmds, "update", path, v2, 1), 2); /* into the past */
    CHECK_INT(np_rrdc_cmds_add(&cmds, "update", other, v3, 1), 3); /* no such file */
    CHECK_INT(np_rrdc_cmds_add(&cmds, "update", path, v3, 1), 4);
    CHECK_INT(np_rrdc_batch(c, &cmds, on_error, &s, &err), 2);
    CHECK_INT(s.n, 2);
    CHECK_INT(s.numbers[0], 2);
    CHECK_INT(s.numbers[1], 3);
    CHECK(strstr(s.first, "illegal attempt to update") != NULL);
    CHECK_INT(daemon_last(c, path), 1700000180 - 1700000180 % 60);

    np_rrdc_cmds_reset(&cmds);
    np_rrdc_cmds_add(&cmds, "flush", path, NULL, 0);
    CHECK_INT(np_rrdc_request(c, &cmds, NULL, 0, &err), 0);
    np_rrdc_cmds_free(&cmds);
    np_rrdc_close(c);
}

/* The store over the daemon: an update the daemon refuses (someone else
 * wrote a later time to the file) is counted as an error, not written, and
 * the next write asks the daemon for the last update again. */
static void test_store_refused(const char *addr, const char *data_dir)
{
    struct np_rrd_store_options opt = {.data_dir = data_dir, .rrdcached = addr};
    struct np_rrd_store *store = NULL;
    struct np_rrd_write_stats st = {0};
    struct np_rrdc_conn *c = NULL;
    struct np_rrdc_cmds cmds = {0};
    struct np_err err = {0};
    char path[512];
    const char *later[] = {"1700003000:9:9:1"};
    struct np_rrd_sample s = {.kind = NP_RRD_IFACE, .site = "s1", .name1 = "dev",
                              .name2 = "if1", .interval_ms = 60000};

    CHECK_INT(np_rrd_store_new(&opt, &store, &err), 0);
    if (!store) {
        return;
    }
    for (int i = 1; i <= 3; i++) {
        s.time_s = 1700000000 + 60 * i;
        s.v[0] = s.v[1] = 1000.0 * i;
        s.v[2] = 1;
        CHECK_INT(np_rrd_store_write(store, &s, 1, &st, &err), 0);
    }
    CHECK_U64(st.written, 3);
    CHECK_U64(st.files_created, 1);
    CHECK_INT(np_rrd_store_path(store, NP_RRD_IFACE, "s1", "dev", "if1", path, sizeof path), 0);
    CHECK_INT(np_rrdc_open(addr, &c, &err), 0);
    np_rrdc_cmds_add(&cmds, "update", path, later, 1);
    CHECK_INT(np_rrdc_request(c, &cmds, NULL, 0, &err), 0);

    memset(&st, 0, sizeof st);
    s.time_s = 1700000240;
    CHECK_INT(np_rrd_store_write(store, &s, 1, &st, &err), NP_ERRD);
    CHECK(strstr(err.msg, "illegal attempt to update") != NULL);
    CHECK_U64(st.written, 0);
    CHECK_U64(st.errors, 1);
    memset(&st, 0, sizeof st);
    s.time_s = 1700000300; /* still before 1700003000: skipped as late, not sent */
    CHECK_INT(np_rrd_store_write(store, &s, 1, &st, &err), 0);
    CHECK_U64(st.late_skipped, 1);
    CHECK_U64(st.errors, 0);
    s.time_s = 1700003060;
    CHECK_INT(np_rrd_store_write(store, &s, 1, &st, &err), 0);
    CHECK_U64(st.written, 1);
    CHECK_INT(daemon_last(c, path), 1700003060 - 1700003060 % 60);
    np_rrdc_cmds_free(&cmds);
    np_rrdc_close(c);
    np_rrd_store_free(store);
}

int main(void)
{
    char dir[] = "/tmp/np-rrdc.XXXXXX", addr[300], rrd_dir[300], cmd[400];
    pid_t pid;
    struct np_rrd_store *store = NULL;
    struct np_rrd_store_options remote = {.data_dir = "/tmp", .rrdcached = "127.0.0.1:42217"};
    struct np_err err = {0};

    test_cmds();
    test_replies();
    /* Absolute file paths go only to a local daemon: refused up front. */
    CHECK_INT(np_rrd_store_new(&remote, &store, &err), -EINVAL);
    CHECK(strstr(err.msg, "not a local socket") != NULL);

    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    pid = start_rrdcached(dir, addr, sizeof addr);
    snprintf(rrd_dir, sizeof rrd_dir, "%s/data/rrd", dir);
    test_daemon_protocol(addr, rrd_dir);
    snprintf(cmd, sizeof cmd, "%s/data", dir);
    test_store_refused(addr, cmd);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
    return check_failures ? 1 : 0;
}
