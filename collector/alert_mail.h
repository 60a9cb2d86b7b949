/* alert_mail: the words of an alert (subject, plain text, HTML) and the MIME
 * message that carries them by e-mail. Pure: no I/O (the caller gives the
 * time), no logging.
 *
 * Header injection is impossible by construction: every header line is fixed
 * text plus either a value from a closed set (kind, severity, site ids of the
 * state_db charset), a validated address (np_alert_mail_valid_address), the
 * date, or the subject, which is stripped of control characters (CR, LF, all
 * of C0, DEL, C1), cut to NP_ALERT_MAIL_SUBJECT_MAX bytes at a character
 * boundary and, unless it is printable ASCII, written as RFC 2047 encoded
 * words (UTF-8, base64) folded at 76 columns. The bodies are base64 (76
 * columns), so no data can end a part: the boundary "=_np..." contains '_',
 * which base64 never produces. Invalid UTF-8 in data becomes U+FFFD.
 *
 * Threads: any thread; nothing is shared. */
#ifndef NP_COLLECTOR_ALERT_MAIL_H
#define NP_COLLECTOR_ALERT_MAIL_H

#include "alert_rules.h"
#include "netpulse/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NP_ALERT_MAIL_SUBJECT_MAX 200      /* bytes of a subject, after sanitising */
#define NP_ALERT_MAIL_ADDR_MAX 254         /* bytes of an address (RFC 5321) */
#define NP_ALERT_MAIL_MAX_BYTES (4u << 20) /* hard cap of a built message */

/* Name of a site for people (borrowed until the next call), or NULL. */
typedef const char *(*np_alert_site_name_cb)(void *ctx, const char *site_id);

struct np_alert_render_opts {
    const char *dashboard_url;       /* e.g. https://collector.example.org:8443; "" : no link */
    np_alert_site_name_cb site_name; /* may be NULL */
    void *ctx;
};

/* The words of one alert, UTF-8, control characters removed from data.
 * subject has no CR/LF; text lines end in "\n"; html is a full document with
 * every piece of data escaped. Owned: free with np_alert_text_free(). */
struct np_alert_text {
    char *subject;
    char *text;
    char *html;
    char *link; /* the dashboard page of the site, "" for digests / district alerts */
};

/* Renders a (borrowed). Errors: -ENOMEM. On error out is emptied. */
int np_alert_render(const struct np_alert *a, const struct np_alert_render_opts *o,
                    struct np_alert_text *out);

/* Frees the strings; accepts an emptied struct. */
void np_alert_text_free(struct np_alert_text *t);

/* Whether s is an address we put into a header and SMTP envelope:
 * local@domain, local of RFC 5322 atext and dots (no leading, trailing or
 * double dot), domain of letters, digits, '-' and dots, at most
 * NP_ALERT_MAIL_ADDR_MAX bytes. No display names, no quoting, no comments. */
bool np_alert_mail_valid_address(const char *s);

/* Splits a contacts field (addresses separated by ',', ';' or blanks) and
 * calls cb for each valid address (invalid pieces are counted in *n_invalid,
 * may be NULL). cb returns non-zero to stop (then returned). */
typedef int (*np_alert_addr_cb)(const char *addr, void *ctx);
int np_alert_mail_split(const char *list, np_alert_addr_cb cb, void *ctx, size_t *n_invalid);

struct np_alert_mail_headers {
    const char *from;      /* validated address */
    const char *const *to; /* validated addresses */
    size_t n_to;
    int64_t date_ms;         /* Date header (UTC) */
    const char *message_key; /* makes the Message-ID (the same on every retry) */
    enum np_alert_kind kind;
    enum np_alert_severity severity;
    const char *site; /* X-Netpulse-Site when a valid id; else omitted */
};

/* Builds the RFC 5322 message (CRLF line ends, multipart/alternative with the
 * text and HTML parts). *out is malloc'ed, NUL-terminated, *len its length;
 * caller frees. Errors: -EINVAL (invalid from or to address, no recipient),
 * NP_ETOOBIG, -ENOMEM; err (may be NULL) says which. */
int np_alert_mail_build(const struct np_alert_text *t, const struct np_alert_mail_headers *h,
                        char **out, size_t *len, struct np_err *err);

/* Formats ms as "1h 02m 03s" / "2d 4h 05m" into buf. Returns buf. */
char *np_alert_format_duration(int64_t ms, char *buf, size_t len);

#endif
