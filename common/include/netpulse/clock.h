/* clock: the two clocks netpulse uses. Intervals and deadlines use the
 * monotonic clock; wall time is only for timestamps that leave the process. */
#ifndef NP_COMMON_CLOCK_H
#define NP_COMMON_CLOCK_H

#include <stdint.h>

/* Monotonic time in nanoseconds (CLOCK_MONOTONIC). Any thread. */
uint64_t np_clock_mono_ns(void);

/* Monotonic time in milliseconds. Any thread. */
uint64_t np_clock_mono_ms(void);

/* Wall-clock time in milliseconds since the Unix epoch (CLOCK_REALTIME). Any thread. */
int64_t np_clock_wall_ms(void);

/* Formats wall_ms as UTC ISO 8601 with milliseconds ("2026-11-23T09:17:09.123Z")
 * into buf (at least 25 bytes). Returns buf. Any thread. */
char *np_clock_format_utc(int64_t wall_ms, char *buf, unsigned long len);

#endif
