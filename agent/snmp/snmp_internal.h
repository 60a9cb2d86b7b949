/* snmp_internal: what the SNMP module's files share, and the pure helpers the
 * unit tests reach without net-snmp or a loop. Not for other modules. */
#ifndef NP_AGENT_SNMP_INTERNAL_H
#define NP_AGENT_SNMP_INTERNAL_H

#include "snmp_config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NP_SNMP_MAX_STRING 255 /* bytes kept of ifName/ifAlias/ifDescr/sys* (DisplayString) */

enum np_snmp_version { NP_SNMP_V1, NP_SNMP_V2C, NP_SNMP_V3 };
enum np_snmp_auth {
    NP_SNMP_AUTH_NONE,
    NP_SNMP_AUTH_MD5,
    NP_SNMP_AUTH_SHA1,
    NP_SNMP_AUTH_SHA224,
    NP_SNMP_AUTH_SHA256,
    NP_SNMP_AUTH_SHA384,
    NP_SNMP_AUTH_SHA512
};
enum np_snmp_priv {
    NP_SNMP_PRIV_NONE,
    NP_SNMP_PRIV_DES,
    NP_SNMP_PRIV_AES128,
    NP_SNMP_PRIV_AES192,
    NP_SNMP_PRIV_AES256
};

struct np_snmp_rate_override {
    char *pattern; /* glob on ifName/ifAlias/ifDescr */
    uint64_t rate_bps;
};

/* One validated target; strings borrowed from the config except overrides. */
struct np_snmp_target_conf {
    const struct np_snmp_settings *s;
    enum np_snmp_version version;
    enum np_snmp_auth auth;
    enum np_snmp_priv priv;
    struct np_snmp_rate_override *overrides; /* owned; n_overrides entries */
    size_t n_overrides;
};

/* Validates every [snmp NAME] section of cfg and fills *out (caller frees
 * with np_snmp_targets_free) with *n entries. Warnings (MD5, DES) are logged
 * once per call. Errors read "FILE:LINE: message"; returns 0 or NP_ECONFIG or
 * -ENOMEM. */
int np_snmp_targets_load(const struct np_config *cfg, struct np_snmp_target_conf **out, size_t *n,
                         bool warn, struct np_err *err);
void np_snmp_targets_free(struct np_snmp_target_conf *t, size_t n);

/* Interface selection: true when an interface with these names is polled.
 * patterns: globs (fnmatch) on any of name/alias/descr; a pattern starting
 * with '!' excludes. No positive pattern means all. Loopbacks (ifType 24,
 * names lo, lo0...) and null interfaces (Null0...) only with include_loopback. */
bool np_snmp_if_selected(const char *const *patterns, size_t n_patterns, bool include_loopback,
                         const char *name, const char *alias, const char *descr, int if_type);

/* Rate override for an interface: the first matching pattern's rate, or 0. */
uint64_t np_snmp_rate_override_for(const struct np_snmp_rate_override *o, size_t n,
                                   const char *name, const char *alias, const char *descr);

/* Copies len bytes of an SNMP OCTET STRING into dst (cap bytes) as valid
 * UTF-8 text: invalid sequences and control characters become '?'; a trailing
 * NUL padding is dropped. Always NUL-terminates (cap >= 1). */
void np_snmp_text(char *dst, size_t cap, const unsigned char *src, size_t len);

/* IF-MIB status names ("up", "down", "testing", "unknown", "dormant",
 * "notPresent", "lowerLayerDown"); NULL for others. */
const char *np_snmp_status_name(int status);

#endif
