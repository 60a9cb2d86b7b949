/* log: leveled messages to stderr (foreground) or syslog (daemon), with
 * repetition control.
 *
 * Messages start with their subsystem and carry key=value context:
 *   np_log(NP_LOG_WARN, "snmp: poll failed target=%s err=%s", name, why);
 * An identical message repeated within the repeat window is counted instead of
 * printed; the count is reported ("last message repeated N times") when another
 * message arrives or the window ends. For a condition that keeps failing, use
 * struct np_complain: it logs the first failure, then "still failing" at doubling
 * intervals, and "recovered" once. All functions may be called from any thread. */
#ifndef NP_COMMON_LOG_H
#define NP_COMMON_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum np_log_level { /* values are syslog priorities */
                    NP_LOG_ERR = 3,
                    NP_LOG_WARN = 4,
                    NP_LOG_NOTICE = 5,
                    NP_LOG_INFO = 6,
                    NP_LOG_DEBUG = 7
};

enum np_log_sink { NP_LOG_STDERR, NP_LOG_SYSLOG };

/* Sets the program name, the sink and the most verbose level printed. ident is
 * borrowed and must outlive logging (a string literal or argv[0]). */
void np_log_init(const char *ident, enum np_log_sink sink, enum np_log_level max_level);

/* Redirects the stderr sink to stream (borrowed; NULL restores stderr). For tests. */
void np_log_set_stream(FILE *stream);

/* Changes the most verbose level printed (e.g. on SIGHUP). */
void np_log_set_level(enum np_log_level max_level);

/* Window within which identical messages are folded (default 10 s; 0 disables). */
void np_log_set_repeat_window_ms(uint64_t window_ms);

/* Parses "error", "warning", "notice", "info" or "debug". Returns 0 or NP_ECONFIG. */
int np_log_level_parse(const char *name, enum np_log_level *out);

/* Logs one message at level. */
void np_log(enum np_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Emits a pending "last message repeated N times" now (e.g. before exit). */
void np_log_flush(void);

/* State of one recurring failure; zero-initialise it. Not shared between threads
 * unless the caller serialises access. */
struct np_complain {
    uint64_t next_report_ms; /* monotonic ms at which "still failing" is due */
    uint64_t interval_ms;    /* current reporting interval, doubles up to 1 day */
    uint64_t failures;       /* failures since the condition began */
    bool failing;
};

/* Records a failure: logged at level the first time, then as "still failing
 * (N times)" after 1 min, 2 min, 4 min... up to once a day. */
void np_complain(struct np_complain *c, enum np_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records success: if the condition was failing, logs "recovered" once at
 * NP_LOG_NOTICE with the message. */
void np_complain_release(struct np_complain *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
