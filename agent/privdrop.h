/* privdrop: least privilege for netpulse-agent without systemd.
 *
 * The agent starts as root (or with capabilities from systemd), opens what
 * needs privileges first (pcap capture handles, raw ICMP sockets), and then
 * calls np_privdrop(): it becomes the configured unprivileged user and keeps
 * at most CAP_NET_RAW (needed again only when a SIGHUP reload reopens
 * captures or raw sockets), or no capability at all.
 *
 * Linux keeps credentials per thread. glibc applies setuid/setgid/setgroups
 * to every thread of the process, and the kernel clears the capabilities of
 * a thread whose uids all leave 0 unless that thread set PR_SET_KEEPCAPS,
 * so threads started before the drop (the capture threads, libuv's pool)
 * end with no capability. Capability sets, the bounding set and
 * no_new_privs are only changed in the calling thread: threads started
 * afterwards inherit them. np_privdrop_verify() checks every thread.
 *
 * This is the only module that includes libcap. */
#ifndef NP_AGENT_PRIVDROP_H
#define NP_AGENT_PRIVDROP_H

#include "netpulse/config.h"
#include "netpulse/err.h"

#include <stdbool.h>

/* Drops privileges of the process, from the main thread:
 * - user (borrowed; NULL or "" for none): when the process runs as root it
 *   takes the user's supplementary groups (initgroups), gid and uid, and
 *   checks it cannot become root again; when it already runs as that user
 *   nothing changes; as any other user it fails (-EPERM).
 * - capabilities: every one is cleared (permitted, effective, inheritable,
 *   ambient; the bounding set too when CAP_SETPCAP allows) except
 *   CAP_NET_RAW when keep_net_raw is true and the process had it.
 * - no_new_privs is set: nothing the agent might execute gains privileges.
 * Running as root with no user given changes nothing but is logged as a
 * warning (the capture threads would keep root's capabilities otherwise).
 * Errors: -ENOENT (no such user), -EPERM (cannot switch, or could regain
 * root), -errno of the failing call; detail in err. Call it once, before the
 * loop runs. */
int np_privdrop(const char *user, bool keep_net_raw, struct np_err *err);

/* Hands dir (borrowed path) and the files directly in it over to user, so
 * the process can still write there after np_privdrop(): used for the spool
 * the agent opened as root. Symbolic links are not followed. Does nothing
 * when the process is not root or user is NULL/"". Errors: -ENOENT (no such
 * user), -errno of open/fchown. Before np_privdrop(). */
int np_privdrop_chown_dir(const char *dir, const char *user, struct np_err *err);

/* Checks every thread of the process (/proc/self/task/N/status): real,
 * effective and saved uid equal uid (when uid >= 0), and no thread holds a
 * capability outside CAP_NET_RAW (when keep_net_raw) in its permitted,
 * effective or ambient set. Returns 0, or -EPERM with the offending thread
 * in err; -errno when /proc cannot be read. Any thread. */
int np_privdrop_verify(long uid, bool keep_net_raw, struct np_err *err);

/* The agent's drop, once its modules are started: hands [agent] spool_dir
 * to [agent] user, then np_privdrop(user, keep) where keep is true when the
 * config (borrowed) has a [pcap] section or an icmp probe (a SIGHUP reload
 * reopens those), then np_privdrop_verify(). Errors as those; the agent
 * must not go on running after an error. Main thread, before the loop runs. */
int np_privdrop_agent(const struct np_config *cfg, struct np_err *err);

#endif
