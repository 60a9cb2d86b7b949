/* privdrop: real drops in forked children of a root test process (skipped,
 * exit 77, when not root). Each child reports its failure count as its exit
 * status. A thread started before the drop stands for the capture threads. */
#include "privdrop.h"

#include "check.h"

#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define NET_RAW_MASK (UINT64_C(1) << CAP_NET_RAW)

static uid_t nobody_uid;
static gid_t nobody_gid;

static int stop_pipe[2];

static void *idle_thread(void *arg)
{
    (void)arg;
    char c;
    while (read(stop_pipe[0], &c, 1) < 0 && errno == EINTR) {
    }
    return NULL;
}

/* A field of /proc/self/status (or of the thread tid when tid > 0), hex. */
static uint64_t status_hex(pid_t tid, const char *field)
{
    char path[64], line[256];
    if (tid > 0) {
        snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
    } else {
        snprintf(path, sizeof path, "/proc/self/status");
    }
    FILE *f = fopen(path, "r");
    uint64_t v = UINT64_MAX;
    size_t len = strlen(field);
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, field, len) == 0 && line[len] == ':') {
            v = strtoull(line + len + 1, NULL, 16);
        }
    }
    if (f) {
        fclose(f);
    }
    return v;
}

static pid_t thread_tid;

static void *idle_thread_tid(void *arg)
{
    thread_tid = (pid_t)gettid();
    return idle_thread(arg);
}

/* Raises CAP_NET_RAW into the ambient set (as systemd's AmbientCapabilities
 * would), so the drop has to clear it. */
static int raise_ambient(void)
{
    cap_t c = cap_get_proc();
    cap_value_t raw[] = {CAP_NET_RAW};
    int rc = cap_set_flag(c, CAP_INHERITABLE, 1, raw, CAP_SET);
    rc = rc == 0 ? cap_set_proc(c) : rc;
    cap_free(c);
    return rc == 0 ? prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0) : rc;
}

/* The drop to nobody with or without CAP_NET_RAW, checked from every angle. */
static int child_drop(bool keep)
{
    pthread_t th;
    CHECK_INT(pipe(stop_pipe), 0);
    CHECK_INT(pthread_create(&th, NULL, idle_thread_tid, NULL), 0);
    while (__atomic_load_n(&thread_tid, __ATOMIC_SEQ_CST) == 0) {
        usleep(1000);
    }
    CHECK_INT(raise_ambient(), 0);
    CHECK(status_hex(0, "CapAmb") == NET_RAW_MASK);

    struct np_err err = {0};
    int rc = np_privdrop("nobody", keep, &err);
    CHECK_INT(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "np_privdrop: %s\n", err.msg);
    }
    uid_t r, e, s;
    gid_t gr, ge, gs;
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    CHECK_INT(r, nobody_uid);
    CHECK_INT(e, nobody_uid);
    CHECK_INT(s, nobody_uid);
    CHECK_INT(gr, nobody_gid);
    CHECK_INT(ge, nobody_gid);
    CHECK_INT(gs, nobody_gid);
    gid_t groups[64];
    int ng = getgroups(64, groups);
    for (int i = 0; i < ng; i++) {
        CHECK(groups[i] != 0);
    }
    uint64_t want = keep ? NET_RAW_MASK : 0;
    CHECK_U64(status_hex(0, "CapPrm"), want);
    CHECK_U64(status_hex(0, "CapEff"), want);
    CHECK_U64(status_hex(0, "CapInh"), 0);
    CHECK_U64(status_hex(0, "CapAmb"), 0);
    CHECK_U64(status_hex(0, "CapBnd"), want);
    CHECK_U64(status_hex(0, "NoNewPrivs"), 1);
    /* The thread started before the drop has nothing (the kernel cleared it
     * at the uid change; KEEPCAPS is per thread). */
    CHECK_U64(status_hex(thread_tid, "CapPrm"), 0);
    CHECK_U64(status_hex(thread_tid, "CapEff"), 0);
    CHECK_INT(np_privdrop_verify((long)nobody_uid, keep, &err), 0);
    if (keep) {
        /* Main still holds CAP_NET_RAW: a check that allows nothing fails. */
        CHECK_INT(np_privdrop_verify((long)nobody_uid, false, &err), -EPERM);
        CHECK(strstr(err.msg, "CapPrm") != NULL);
    }
    CHECK_INT(np_privdrop_verify(0, keep, &err), -EPERM);

    CHECK(setuid(0) != 0);
    CHECK(seteuid(0) != 0);
    CHECK(setgid(0) != 0);
    int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    CHECK(keep ? fd >= 0 : fd < 0);
    if (fd >= 0) {
        close(fd);
    }
    /* A thread started now inherits the main thread's sets. */
    thread_tid = 0;
    pthread_t th2;
    CHECK_INT(pthread_create(&th2, NULL, idle_thread_tid, NULL), 0);
    while (__atomic_load_n(&thread_tid, __ATOMIC_SEQ_CST) == 0) {
        usleep(1000);
    }
    CHECK_U64(status_hex(thread_tid, "CapPrm"), want);

    /* Already that user: fine; another user: refused. */
    CHECK_INT(np_privdrop("nobody", keep, &err), 0);
    CHECK_INT(np_privdrop("daemon", keep, &err), -EPERM);
    CHECK(strstr(err.msg, "not root") != NULL);

    close(stop_pipe[1]);
    pthread_join(th, NULL);
    pthread_join(th2, NULL);
    return check_failures;
}

static int child_root_without_user(void)
{
    struct np_err err = {0};
    CHECK_INT(np_privdrop("", true, &err), 0);
    CHECK_INT(geteuid(), 0);
    CHECK_INT(np_privdrop(NULL, false, &err), 0);
    CHECK_INT(geteuid(), 0);
    return check_failures;
}

static int in_child(int (*fn)(bool), bool arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        _exit(fn(arg) & 0x7f);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) {
        return 1;
    }
    return WEXITSTATUS(st);
}

static int root_without_user_wrap(bool unused)
{
    (void)unused;
    return child_root_without_user();
}

static void test_chown_dir(void)
{
    char dir[] = "/tmp/np-privdrop-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char file[sizeof dir + 16], link[sizeof dir + 16];
    snprintf(file, sizeof file, "%s/seg-1", dir);
    snprintf(link, sizeof link, "%s/lnk", dir);
    int fd = open(file, O_CREAT | O_WRONLY, 0600);
    CHECK(fd >= 0);
    close(fd);
    CHECK_INT(symlink("/etc/passwd", link), 0);
    struct np_err err = {0};
    CHECK_INT(np_privdrop_chown_dir(dir, "nobody", &err), 0);
    struct stat st;
    CHECK_INT(stat(dir, &st), 0);
    CHECK_INT(st.st_uid, nobody_uid);
    CHECK_INT(stat(file, &st), 0);
    CHECK_INT(st.st_uid, nobody_uid);
    CHECK_INT(st.st_gid, nobody_gid);
    CHECK_INT(stat("/etc/passwd", &st), 0); /* the link's target stays root's */
    CHECK_INT(st.st_uid, 0);
    CHECK_INT(np_privdrop_chown_dir("/nonexistent/np", "nobody", &err), -ENOENT);
    CHECK_INT(np_privdrop_chown_dir(dir, "np-no-such-user", &err), -ENOENT);
    CHECK_INT(np_privdrop_chown_dir(dir, "", &err), 0);
    unlink(link);
    unlink(file);
    rmdir(dir);
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "test_privdrop: needs root, skipped\n");
        return 77;
    }
    struct passwd *pw = getpwnam("nobody");
    if (!pw) {
        fprintf(stderr, "test_privdrop: no user nobody, skipped\n");
        return 77;
    }
    nobody_uid = pw->pw_uid;
    nobody_gid = pw->pw_gid;

    struct np_err err = {0};
    CHECK_INT(np_privdrop("np-no-such-user", false, &err), -ENOENT);
    CHECK(strstr(err.msg, "np-no-such-user") != NULL);
    CHECK_INT(geteuid(), 0);

    CHECK_INT(in_child(child_drop, false), 0);
    CHECK_INT(in_child(child_drop, true), 0);
    CHECK_INT(in_child(root_without_user_wrap, false), 0);
    test_chown_dir();
    return check_failures;
}
