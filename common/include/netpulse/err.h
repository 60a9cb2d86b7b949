/* err: the project's error codes and the caller-supplied error detail.
 *
 * Fallible functions return 0 or a negative code: either -errno or one of the
 * NP_E* codes below. Detail for people goes into a struct np_err that the
 * caller owns; np_strerror() names any code. */
#ifndef NP_COMMON_ERR_H
#define NP_COMMON_ERR_H

enum np_errcode {
    NP_EBASE = -10000,
    NP_ECONFIG = NP_EBASE, /* configuration invalid */
    NP_EPROTO,             /* malformed wire data */
    NP_ETOOBIG,            /* input over its hard limit */
    NP_ECORRUPT,           /* on-disk data failed its checksum */
    NP_EVERSION,           /* unsupported schema or format version */
    NP_ENODATA,            /* no value (e.g. a counter discontinuity) */
    NP_ESNMP,              /* SNMP failure */
    NP_ERRD,               /* RRDtool failure */
    NP_EDB,                /* SQLite failure */
    NP_EHTTP,              /* HTTP failure */
    NP_EAUTH,              /* authentication failed */
    NP_ELAST
};

struct np_err {
    int code;
    char msg[256];
};

/* Names code (negative errno or NP_E*). Returns a static string; any thread. */
const char *np_strerror(int code);

/* Sets err (may be NULL) to code and the printf-style message; returns code
 * so callers can write `return np_err_set(err, NP_ECONFIG, "...")`. */
int np_err_set(struct np_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears err (may be NULL). */
void np_err_clear(struct np_err *err);

#endif
