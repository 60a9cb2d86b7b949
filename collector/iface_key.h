/* iface_key: the name under which the collector files an interface, shared by
 * the state database and the RRD store so both agree.
 *
 * ifName when the device has one (stable across reboots, unlike ifIndex, which
 * many devices renumber when a line card or a VLAN interface comes and goes);
 * "ifindex-N" on old devices without ifName. Pure; any thread. */
#ifndef NP_COLLECTOR_IFACE_KEY_H
#define NP_COLLECTOR_IFACE_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define NP_IFACE_KEY_MAX 1100 /* wire strings are at most 1024 bytes */

/* Writes the key into buf (len bytes); returns buf. if_name may be NULL. */
static inline const char *np_iface_key(const char *if_name, uint32_t if_index, char *buf,
                                       size_t len)
{
    if (if_name && if_name[0]) {
        snprintf(buf, len, "%s", if_name);
    } else {
        snprintf(buf, len, "ifindex-%u", (unsigned)if_index);
    }
    return buf;
}

/* Whether an interface is named as a site's uplink: its ifName or ifAlias
 * (either may be NULL) contains "uplink" or "wan", any case. The one rule of
 * the reports (report_data.h, which falls back to the fastest interface),
 * the dashboard and the utilisation alert. */
static inline bool np_iface_named_uplink(const char *name, const char *alias)
{
    static const char *const words[] = {"uplink", "wan"};
    const char *v[] = {name, alias};
    for (size_t i = 0; i < 2; i++) {
        for (size_t k = 0; v[i] && k < sizeof words / sizeof words[0]; k++) {
            size_t n = strlen(words[k]);
            for (const char *p = v[i]; *p; p++) {
                if (strncasecmp(p, words[k], n) == 0) {
                    return true;
                }
            }
        }
    }
    return false;
}

#endif
