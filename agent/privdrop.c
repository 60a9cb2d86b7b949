/* privdrop: see privdrop.h. */
#include "privdrop.h"

#include "agent_config.h"
#include "probe/probe_config.h"

#include "netpulse/log.h"

#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PW_BUF_MAX (64 * 1024)

struct user_ids {
    uid_t uid;
    gid_t gid;
};

static int lookup_user(const char *user, struct user_ids *out, struct np_err *err)
{
    struct passwd pw, *res = NULL;
    size_t len = 1024;
    int rc;
    for (;;) {
        char *buf = malloc(len);
        if (!buf) {
            return np_err_set(err, -ENOMEM, "privdrop: out of memory");
        }
        rc = getpwnam_r(user, &pw, buf, len, &res);
        if (rc == 0 && res) {
            out->uid = pw.pw_uid;
            out->gid = pw.pw_gid;
        }
        free(buf);
        if (rc != ERANGE || len >= PW_BUF_MAX) {
            break;
        }
        len *= 4;
    }
    if (rc != 0) {
        return np_err_set(err, -rc, "privdrop: user=%s: %s", user, strerror(rc));
    }
    if (!res) {
        return np_err_set(err, -ENOENT, "privdrop: no such user user=%s", user);
    }
    return 0;
}

/* Whether the calling thread has cap in set (permitted, effective). */
static bool has_cap(cap_value_t cap, cap_flag_t set)
{
    cap_t c = cap_get_proc();
    cap_flag_value_t v = CAP_CLEAR;
    if (c) {
        if (cap_get_flag(c, cap, set, &v) != 0) {
            v = CAP_CLEAR;
        }
        cap_free(c);
    }
    return v == CAP_SET;
}

/* Shrinks the bounding set to CAP_NET_RAW (keep) or nothing, so no later
 * execve can gain more. Needs CAP_SETPCAP; without it the set stays as it
 * is (a non-root process has nothing to gain from it anyway). */
static int drop_bounding(bool keep, struct np_err *err)
{
    if (!has_cap(CAP_SETPCAP, CAP_EFFECTIVE)) {
        return 0;
    }
    for (cap_value_t cap = 0; cap <= CAP_LAST_CAP; cap++) {
        if (keep && cap == CAP_NET_RAW) {
            continue;
        }
        if (cap_drop_bound(cap) != 0 && errno != EINVAL) {
            return np_err_set(err, -errno,
                              "privdrop: cannot drop capability %d from the "
                              "bounding set: %s",
                              (int)cap, strerror(errno));
        }
    }
    return 0;
}

/* Sets permitted and effective to {CAP_NET_RAW} or {}, inheritable and
 * ambient to {}. */
static int set_caps(bool keep, struct np_err *err)
{
    cap_t c = cap_init(); /* all clear */
    if (!c) {
        return np_err_set(err, -errno, "privdrop: cap_init: %s", strerror(errno));
    }
    int rc = 0;
    if (keep) {
        cap_value_t raw[] = {CAP_NET_RAW};
        if (cap_set_flag(c, CAP_PERMITTED, 1, raw, CAP_SET) != 0 ||
            cap_set_flag(c, CAP_EFFECTIVE, 1, raw, CAP_SET) != 0) {
            rc = np_err_set(err, -errno, "privdrop: cap_set_flag: %s", strerror(errno));
            goto out_free;
        }
    }
    if (cap_set_proc(c) != 0) {
        rc = np_err_set(err, -errno, "privdrop: cap_set_proc: %s", strerror(errno));
        goto out_free;
    }
    /* Ambient capabilities (Linux 4.3+) would pass CAP_NET_RAW on to any
     * program executed; clearing them also drops systemd's
     * AmbientCapabilities from this process's children. EINVAL: a kernel
     * without ambient capabilities has none to clear. */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
        rc =
            np_err_set(err, -errno, "privdrop: clearing ambient capabilities: %s", strerror(errno));
    }
out_free:
    cap_free(c);
    return rc;
}

static int switch_user(const char *user, const struct user_ids *ids, bool keep, struct np_err *err)
{
    /* Keep the permitted set across setresuid only when CAP_NET_RAW is to
     * stay; set_caps() trims it right after. */
    if (keep && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
        return np_err_set(err, -errno, "privdrop: PR_SET_KEEPCAPS: %s", strerror(errno));
    }
    if (initgroups(user, ids->gid) != 0) {
        return np_err_set(err, -errno, "privdrop: initgroups user=%s: %s", user, strerror(errno));
    }
    if (setresgid(ids->gid, ids->gid, ids->gid) != 0) {
        return np_err_set(err, -errno, "privdrop: setresgid gid=%u: %s", (unsigned)ids->gid,
                          strerror(errno));
    }
    if (setresuid(ids->uid, ids->uid, ids->uid) != 0) {
        return np_err_set(err, -errno, "privdrop: setresuid uid=%u: %s", (unsigned)ids->uid,
                          strerror(errno));
    }
    if (keep && prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) {
        return np_err_set(err, -errno, "privdrop: PR_SET_KEEPCAPS: %s", strerror(errno));
    }
    return 0;
}

/* After the switch: neither root's uid nor its gid can be taken back. */
static int check_no_way_back(const struct user_ids *ids, struct np_err *err)
{
    uid_t r, e, s;
    gid_t gr, ge, gs;
    if (getresuid(&r, &e, &s) != 0 || getresgid(&gr, &ge, &gs) != 0) {
        return np_err_set(err, -errno, "privdrop: getresuid: %s", strerror(errno));
    }
    if (r != ids->uid || e != ids->uid || s != ids->uid || gr != ids->gid || ge != ids->gid ||
        gs != ids->gid) {
        return np_err_set(err, -EPERM, "privdrop: ids did not change uid=%u/%u/%u gid=%u/%u/%u",
                          (unsigned)r, (unsigned)e, (unsigned)s, (unsigned)gr, (unsigned)ge,
                          (unsigned)gs);
    }
    if (setuid(0) == 0 || seteuid(0) == 0) {
        return np_err_set(err, -EPERM, "privdrop: could become root again after dropping");
    }
    if (ids->gid != 0 && (setgid(0) == 0 || setegid(0) == 0)) {
        return np_err_set(err, -EPERM, "privdrop: could take gid 0 again after dropping");
    }
    return 0;
}

int np_privdrop(const char *user, bool keep_net_raw, struct np_err *err)
{
    bool have_user = user && user[0];
    struct user_ids ids = {0};
    int rc;
    if (have_user && (rc = lookup_user(user, &ids, err)) != 0) {
        return rc;
    }
    uid_t r, e, s;
    if (getresuid(&r, &e, &s) != 0) {
        return np_err_set(err, -errno, "privdrop: getresuid: %s", strerror(errno));
    }
    bool root = r == 0 || e == 0 || s == 0;
    if (root && (!have_user || ids.uid == 0)) {
        np_log(NP_LOG_WARN, "privdrop: running as root with every capability; set [agent] "
                            "user (e.g. user = netpulse) to drop them");
        return 0;
    }
    bool change = have_user && (r != ids.uid || e != ids.uid || s != ids.uid);
    if (change && e != 0) {
        return np_err_set(err, -EPERM,
                          "privdrop: cannot become user=%s: running as uid=%u, not root", user,
                          (unsigned)e);
    }
    bool keep = keep_net_raw && has_cap(CAP_NET_RAW, CAP_PERMITTED);
    if ((rc = drop_bounding(keep, err)) != 0) {
        return rc;
    }
    if (change && (rc = switch_user(user, &ids, keep, err)) != 0) {
        return rc;
    }
    if ((rc = set_caps(keep, err)) != 0) {
        return rc;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        return np_err_set(err, -errno, "privdrop: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    }
    if (change && (rc = check_no_way_back(&ids, err)) != 0) {
        return rc;
    }
    np_log(NP_LOG_INFO, "privdrop: running as uid=%u gid=%u capabilities=%s", (unsigned)geteuid(),
           (unsigned)getegid(), keep ? "cap_net_raw" : "none");
    return 0;
}

int np_privdrop_chown_dir(const char *dir, const char *user, struct np_err *err)
{
    if (!user || !user[0] || geteuid() != 0) {
        return 0;
    }
    struct user_ids ids;
    int rc = lookup_user(user, &ids, err);
    if (rc != 0) {
        return rc;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return np_err_set(err, -errno, "privdrop: open dir=%s: %s", dir, strerror(errno));
    }
    if (fchown(fd, ids.uid, ids.gid) != 0) {
        rc = np_err_set(err, -errno, "privdrop: chown dir=%s: %s", dir, strerror(errno));
        close(fd);
        return rc;
    }
    DIR *d = fdopendir(fd); /* owns fd from here */
    if (!d) {
        rc = np_err_set(err, -errno, "privdrop: read dir=%s: %s", dir, strerror(errno));
        close(fd);
        return rc;
    }
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        if (fchownat(fd, de->d_name, ids.uid, ids.gid, AT_SYMLINK_NOFOLLOW) != 0 &&
            errno != ENOENT) {
            rc = np_err_set(err, -errno, "privdrop: chown %s/%s: %s", dir, de->d_name,
                            strerror(errno));
            break;
        }
        errno = 0;
    }
    if (rc == 0 && errno != 0) {
        rc = np_err_set(err, -errno, "privdrop: read dir=%s: %s", dir, strerror(errno));
    }
    closedir(d);
    return rc;
}

/* Parses the hex value of a "CapXxx:\t%016llx" line. */
static uint64_t cap_mask(const char *value)
{
    return (uint64_t)strtoull(value, NULL, 16);
}

static int verify_task(const char *tid, long uid, uint64_t allowed, struct np_err *err)
{
    char path[64];
    int n = snprintf(path, sizeof path, "/proc/self/task/%s/status", tid);
    if (n < 0 || (size_t)n >= sizeof path) {
        return np_err_set(err, -ENAMETOOLONG, "privdrop: task id too long");
    }
    FILE *f = fopen(path, "re");
    if (!f) {
        return errno == ENOENT ? 0
                               : np_err_set(err, -errno, "privdrop: %s: %s", path, strerror(errno));
    }
    char line[256];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        static const char *const caps[] = {"CapPrm:", "CapEff:", "CapAmb:"};
        if (uid >= 0 && strncmp(line, "Uid:", 4) == 0) {
            char *p = line + 4;
            for (int i = 0; i < 3; i++) { /* real, effective, saved */
                char *end;
                long v = strtol(p, &end, 10);
                if (end == p || v != uid) {
                    rc = np_err_set(err, -EPERM, "privdrop: thread=%s runs as %s", tid, line + 5);
                    break;
                }
                p = end;
            }
        }
        for (size_t i = 0; rc == 0 && i < sizeof caps / sizeof caps[0]; i++) {
            size_t len = strlen(caps[i]);
            if (strncmp(line, caps[i], len) == 0 && (cap_mask(line + len) & ~allowed) != 0) {
                line[strcspn(line, "\n")] = '\0';
                rc = np_err_set(err, -EPERM, "privdrop: thread=%s holds more than allowed: %s", tid,
                                line);
            }
        }
    }
    fclose(f);
    return rc;
}

int np_privdrop_verify(long uid, bool keep_net_raw, struct np_err *err)
{
    uint64_t allowed = keep_net_raw ? UINT64_C(1) << CAP_NET_RAW : 0;
    DIR *d = opendir("/proc/self/task");
    if (!d) {
        return np_err_set(err, -errno, "privdrop: /proc/self/task: %s", strerror(errno));
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] != '.') {
            rc = verify_task(de->d_name, uid, allowed, err);
        }
    }
    closedir(d);
    return rc;
}

int np_privdrop_agent(const struct np_config *cfg, struct np_err *err)
{
    const struct np_agent_settings *s = np_agent_settings(cfg);
    bool keep = np_config_count(cfg, "pcap") > 0;
    for (size_t i = 0; !keep && i < np_config_count(cfg, "probe"); i++) {
        const struct np_probe_settings *p = np_config_instance(cfg, "probe", i);
        keep = p->type == NP_PROBE_CHOICE_ICMP;
    }
    int rc = np_privdrop_chown_dir(s->spool_dir, s->user, err);
    if (rc != 0 || (rc = np_privdrop(s->user, keep, err)) != 0) {
        return rc;
    }
    if (geteuid() == 0) {
        return 0; /* root without a user: np_privdrop() warned */
    }
    return np_privdrop_verify((long)geteuid(), keep, err);
}
