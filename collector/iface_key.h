/* iface_key: the name under which the collector files an interface, shared by
 * the state database and the RRD store so both agree.
 *
 * ifName when the device has one (stable across reboots, unlike ifIndex, which
 * many devices renumber when a line card or a VLAN interface comes and goes);
 * "ifindex-N" on old devices without ifName. Pure; any thread. */
#ifndef NP_COLLECTOR_IFACE_KEY_H
#define NP_COLLECTOR_IFACE_KEY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

#endif
