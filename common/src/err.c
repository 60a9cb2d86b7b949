#include "netpulse/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const np_err_names[] = {
    [NP_ECONFIG - NP_EBASE] = "invalid configuration",
    [NP_EPROTO - NP_EBASE] = "malformed data",
    [NP_ETOOBIG - NP_EBASE] = "input too large",
    [NP_ECORRUPT - NP_EBASE] = "corrupt data",
    [NP_EVERSION - NP_EBASE] = "unsupported version",
    [NP_ENODATA - NP_EBASE] = "no value",
    [NP_ESNMP - NP_EBASE] = "SNMP error",
    [NP_ERRD - NP_EBASE] = "RRD error",
    [NP_EDB - NP_EBASE] = "database error",
    [NP_EHTTP - NP_EBASE] = "HTTP error",
    [NP_EAUTH - NP_EBASE] = "authentication failed",
};

const char *np_strerror(int code)
{
    if (code == 0) {
        return "success";
    }
    if (code >= NP_EBASE && code < NP_ELAST) {
        return np_err_names[code - NP_EBASE];
    }
    if (code < 0 && code > -4096) {
        /* strerror() is not thread-safe, but the table it reads is static on glibc;
         * strerrordesc_np is the thread-safe form that returns it directly. */
        const char *s = strerrordesc_np(-code);
        return s ? s : "unknown error";
    }
    return "unknown error";
}

int np_err_set(struct np_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void np_err_clear(struct np_err *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}
