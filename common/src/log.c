#include "netpulse/log.h"

#include "netpulse/clock.h"
#include "netpulse/err.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#define NP_LOG_MSG_MAX 1024
#define NP_COMPLAIN_FIRST_MS (60u * 1000u)
#define NP_COMPLAIN_MAX_MS (24u * 3600u * 1000u)

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    const char *ident;
    enum np_log_sink sink;
    enum np_log_level max_level;
    FILE *stream;
    uint64_t repeat_window_ms;
    /* repetition folding */
    char last_msg[NP_LOG_MSG_MAX];
    enum np_log_level last_level;
    uint64_t last_ms;
    uint64_t repeats;
} st = {
    .ident = "netpulse",
    .sink = NP_LOG_STDERR,
    .max_level = NP_LOG_INFO,
    .repeat_window_ms = 10000,
};

static const char *const level_names[] = {
    [NP_LOG_ERR] = "error", [NP_LOG_WARN] = "warning", [NP_LOG_NOTICE] = "notice",
    [NP_LOG_INFO] = "info", [NP_LOG_DEBUG] = "debug",
};

void np_log_init(const char *ident, enum np_log_sink sink, enum np_log_level max_level)
{
    pthread_mutex_lock(&log_lock);
    st.ident = ident ? ident : "netpulse";
    st.sink = sink;
    st.max_level = max_level;
    if (sink == NP_LOG_SYSLOG) {
        openlog(st.ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    }
    pthread_mutex_unlock(&log_lock);
}

void np_log_set_stream(FILE *stream)
{
    pthread_mutex_lock(&log_lock);
    st.stream = stream;
    pthread_mutex_unlock(&log_lock);
}

void np_log_set_level(enum np_log_level max_level)
{
    pthread_mutex_lock(&log_lock);
    st.max_level = max_level;
    pthread_mutex_unlock(&log_lock);
}

void np_log_set_repeat_window_ms(uint64_t window_ms)
{
    pthread_mutex_lock(&log_lock);
    st.repeat_window_ms = window_ms;
    pthread_mutex_unlock(&log_lock);
}

int np_log_level_parse(const char *name, enum np_log_level *out)
{
    static const struct {
        const char *name;
        enum np_log_level level;
    } names[] = {
        {"error", NP_LOG_ERR}, {"err", NP_LOG_ERR},       {"warning", NP_LOG_WARN},
        {"warn", NP_LOG_WARN}, {"notice", NP_LOG_NOTICE}, {"info", NP_LOG_INFO},
        {"debug", NP_LOG_DEBUG},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(name, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return NP_ECONFIG;
}

/* Writes one line to the sink. Caller holds log_lock. */
static void emit_locked(enum np_log_level level, const char *msg)
{
    if (st.sink == NP_LOG_SYSLOG) {
        syslog((int)level, "%s", msg);
        return;
    }
    FILE *out = st.stream ? st.stream : stderr;
    char when[32];
    np_clock_format_utc(np_clock_wall_ms(), when, sizeof when);
    fprintf(out, "%s %s[%ld] %s: %s\n", when, st.ident, (long)getpid(), level_names[level], msg);
    fflush(out);
}

static void flush_repeats_locked(void)
{
    if (st.repeats > 0) {
        char msg[64];
        snprintf(msg, sizeof msg, "last message repeated %llu times",
                 (unsigned long long)st.repeats);
        emit_locked(st.last_level, msg);
        st.repeats = 0;
    }
}

static void log_msg(enum np_log_level level, const char *msg)
{
    pthread_mutex_lock(&log_lock);
    if (level > st.max_level) {
        pthread_mutex_unlock(&log_lock);
        return;
    }
    uint64_t now = np_clock_mono_ms();
    bool same = st.repeat_window_ms > 0 && level == st.last_level &&
                strcmp(msg, st.last_msg) == 0 && now - st.last_ms < st.repeat_window_ms;
    if (same) {
        st.repeats++;
        pthread_mutex_unlock(&log_lock);
        return;
    }
    flush_repeats_locked();
    emit_locked(level, msg);
    snprintf(st.last_msg, sizeof st.last_msg, "%s", msg);
    st.last_level = level;
    st.last_ms = now;
    pthread_mutex_unlock(&log_lock);
}

void np_log(enum np_log_level level, const char *fmt, ...)
{
    char msg[NP_LOG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_msg(level, msg);
}

void np_log_flush(void)
{
    pthread_mutex_lock(&log_lock);
    flush_repeats_locked();
    pthread_mutex_unlock(&log_lock);
}

void np_complain(struct np_complain *c, enum np_log_level level, const char *fmt, ...)
{
    uint64_t now = np_clock_mono_ms();
    c->failures++;
    if (c->failing && now < c->next_report_ms) {
        return;
    }
    char msg[NP_LOG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!c->failing) {
        c->failing = true;
        c->interval_ms = NP_COMPLAIN_FIRST_MS;
        log_msg(level, msg);
    } else {
        c->interval_ms = c->interval_ms * 2 > NP_COMPLAIN_MAX_MS ? NP_COMPLAIN_MAX_MS
                                                                 : c->interval_ms * 2;
        np_log(level, "%s (still failing, %llu times)", msg, (unsigned long long)c->failures);
    }
    c->next_report_ms = now + c->interval_ms;
}

void np_complain_release(struct np_complain *c, const char *fmt, ...)
{
    if (!c->failing) {
        return;
    }
    char msg[NP_LOG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    np_log(NP_LOG_NOTICE, "%s (recovered after %llu failures)", msg,
           (unsigned long long)c->failures);
    c->failing = false;
    c->failures = 0;
    c->interval_ms = 0;
    c->next_report_ms = 0;
}
