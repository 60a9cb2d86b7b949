#include "alert_mail.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- a growing buffer with a hard cap ------------------------------------- */

struct sbuf {
    char *p;
    size_t n, cap;
    int err; /* first error: -ENOMEM or NP_ETOOBIG; later adds do nothing */
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->err) {
        return;
    }
    if (b->n + n + 1 > NP_ALERT_MAIL_MAX_BYTES) {
        b->err = NP_ETOOBIG;
        return;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) {
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) {
            b->err = -ENOMEM;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->err = b->err ? b->err : -EINVAL;
        return;
    }
    if ((size_t)n < sizeof small) {
        sb_add(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->err = b->err ? b->err : -ENOMEM;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_add(b, big, (size_t)n);
    free(big);
}

/* Takes the string out of b (NULL on error; then b is freed). */
static char *sb_take(struct sbuf *b)
{
    if (b->err) {
        free(b->p);
        b->p = NULL;
        return NULL;
    }
    if (!b->p) {
        return strdup("");
    }
    char *p = b->p;
    b->p = NULL;
    return p;
}

/* ---- UTF-8 cleaning ------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes left) and its code point;
 * 0 when invalid (overlong, surrogate, above U+10FFFF, truncated). */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len;
    uint32_t c, min;
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2, c = s[0] & 0x1F, min = 0x80;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3, c = s[0] & 0x0F, min = 0x800;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4, c = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
        return 0;
    }
    *cp = c;
    return len;
}

/* Appends s cleaned: control characters (C0, DEL, C1, and U+2028/2029 line
 * separators) become a space, invalid UTF-8 becomes U+FFFD; at most max
 * bytes of output, cut at a character boundary. html: also escapes. */
static void sb_clean(struct sbuf *b, const char *s, size_t max, bool html)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p), out = 0;
    while (n) {
        uint32_t cp = 0;
        size_t len = utf8_seq(p, n, &cp);
        const char *rep = NULL;
        size_t rep_len = 0;
        if (len == 0) {
            rep = "\xEF\xBF\xBD";
            rep_len = 3;
            len = 1;
        } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || cp == 0x2028 ||
                   cp == 0x2029) {
            rep = " ";
            rep_len = 1;
        } else if (html && cp == '<') {
            rep = "&lt;", rep_len = 4;
        } else if (html && cp == '>') {
            rep = "&gt;", rep_len = 4;
        } else if (html && cp == '&') {
            rep = "&amp;", rep_len = 5;
        } else if (html && cp == '"') {
            rep = "&quot;", rep_len = 6;
        } else if (html && cp == '\'') {
            rep = "&#39;", rep_len = 5;
        } else {
            rep = (const char *)p;
            rep_len = len;
        }
        if (out + rep_len > max) {
            break;
        }
        sb_add(b, rep, rep_len);
        out += rep_len;
        p += len;
        n -= len;
    }
}

/* ---- time and durations --------------------------------------------------- */

static void format_utc(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, len, "?");
        return;
    }
    snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d UTC", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

char *np_alert_format_duration(int64_t ms, char *buf, size_t len)
{
    int64_t s = ms > 0 ? (ms + 500) / 1000 : 0;
    int64_t d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60;
    s %= 60;
    if (d) {
        snprintf(buf, len, "%" PRId64 "d %" PRId64 "h %02" PRId64 "m", d, h, m);
    } else if (h) {
        snprintf(buf, len, "%" PRId64 "h %02" PRId64 "m %02" PRId64 "s", h, m, s);
    } else if (m) {
        snprintf(buf, len, "%" PRId64 "m %02" PRId64 "s", m, s);
    } else {
        snprintf(buf, len, "%" PRId64 "s", s);
    }
    return buf;
}

/* ---- rendering ------------------------------------------------------------ */

static const char *site_name(const struct np_alert_render_opts *o, const char *id)
{
    const char *n = o && o->site_name ? o->site_name(o->ctx, id) : NULL;
    return n && n[0] ? n : id;
}

static const char *cause_words(const char *cause)
{
    if (strcmp(cause, "link") == 0) {
        return "link (the school's uplink was down)";
    }
    if (strcmp(cause, "agent") == 0) {
        return "agent (the monitoring agent was not running; link state unknown)";
    }
    if (strcmp(cause, "pending") == 0) {
        return "not known yet (the agent's data has not arrived)";
    }
    if (strcmp(cause, "flapping") == 0) {
        return "flapping (repeated short outages)";
    }
    return "unknown";
}

/* Plain and HTML at once: a line is given as pieces of fixed text and data. */
struct doc {
    struct sbuf text, html;
};

static void d_fixed(struct doc *d, const char *s)
{
    sb_str(&d->text, s);
    sb_clean(&d->html, s, SIZE_MAX, true);
}

static void d_data(struct doc *d, const char *s)
{
    sb_clean(&d->text, s, 1024, false);
    sb_clean(&d->html, s, 1024, true);
}

__attribute__((format(printf, 2, 3))) static void d_printf(struct doc *d, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    d_fixed(d, buf);
}

static void d_par_open(struct doc *d)
{
    sb_str(&d->html, "<p>");
}

static void d_par_close(struct doc *d)
{
    sb_str(&d->text, "\n\n");
    sb_str(&d->html, "</p>\n");
}

static void d_site(struct doc *d, const struct np_alert_render_opts *o, const char *id)
{
    const char *name = site_name(o, id);
    d_data(d, name);
    if (strcmp(name, id) != 0) {
        d_fixed(d, " (");
        d_data(d, id);
        d_fixed(d, ")");
    }
}

static void d_link(struct doc *d, const char *url)
{
    sb_str(&d->text, "Dashboard: ");
    sb_clean(&d->text, url, 1024, false);
    sb_str(&d->text, "\n");
    sb_str(&d->html, "<p><a href=\"");
    sb_clean(&d->html, url, 1024, true);
    sb_str(&d->html, "\">Site dashboard</a></p>\n");
}

static const char *kind_title(enum np_alert_kind k)
{
    switch (k) {
    case NP_ALERT_SITE_DOWN:
        return "unreachable";
    case NP_ALERT_SITE_UP:
        return "reachable again";
    case NP_ALERT_SITE_REMINDER:
        return "still unreachable";
    case NP_ALERT_SITE_FLAPPING:
        return "flapping";
    case NP_ALERT_UPLINK_DOWN:
        return "uplink down";
    case NP_ALERT_UPLINK_UP:
        return "uplink up";
    case NP_ALERT_IFACE_DOWN:
        return "interface down";
    case NP_ALERT_IFACE_UP:
        return "interface up";
    case NP_ALERT_UTIL_HIGH:
        return "high utilisation";
    case NP_ALERT_UTIL_OK:
        return "utilisation back to normal";
    case NP_ALERT_SLA_RISK:
        return "monthly uptime target at risk";
    case NP_ALERT_SLA_OK:
        return "monthly uptime target back on track";
    case NP_ALERT_SPOOL_FILLING:
        return "agent spool filling up";
    case NP_ALERT_SPOOL_OK:
        return "agent spool back to normal";
    case NP_ALERT_SPOOL_DROPPED:
        return "agent dropped data";
    case NP_ALERT_DISK_LOW:
        return "collector disk nearly full";
    case NP_ALERT_DISK_OK:
        return "collector disk space back to normal";
    case NP_ALERT_TEST:
        return "test message";
    default:
        return "alert";
    }
}

static void render_digest(struct doc *d, const struct np_alert *a,
                          const struct np_alert_render_opts *o, struct sbuf *subj)
{
    char t1[40], dur[40];
    sb_printf(subj, "[netpulse] %zu sites %s", a->n_sites, kind_title(a->kind));
    d_par_open(d);
    d_printf(d, "%zu sites are %s", a->n_sites, kind_title(a->kind));
    d_fixed(d, a->kind == NP_ALERT_SITE_UP ? ":" : " (an upstream outage of the district?):");
    d_par_close(d);
    sb_str(&d->html, "<ul>\n");
    for (size_t i = 0; i < a->n_sites; i++) {
        const struct np_alert_site *s = &a->sites[i];
        sb_str(&d->text, "- ");
        sb_str(&d->html, "<li>");
        d_site(d, o, s->id);
        format_utc(s->start_ms, t1, sizeof t1);
        if (a->kind == NP_ALERT_SITE_UP && s->end_ms) {
            np_alert_format_duration(s->end_ms - s->start_ms, dur, sizeof dur);
            d_printf(d, ": down %s from %s, cause: %s", dur, t1,
                     s->cause[0] ? s->cause : "unknown");
        } else {
            d_printf(d, ": no heartbeat since %s", t1);
        }
        if (o && o->dashboard_url && o->dashboard_url[0]) {
            sb_str(&d->text, "\n  ");
            sb_clean(&d->text, o->dashboard_url, 1024, false);
            sb_printf(&d->text, "/sites/%s", s->id);
            sb_str(&d->html, " <a href=\"");
            sb_clean(&d->html, o->dashboard_url, 1024, true);
            sb_str(&d->html, "/sites/");
            sb_clean(&d->html, s->id, NP_ALERT_ID_MAX, true);
            sb_str(&d->html, "\">dashboard</a>");
        }
        sb_str(&d->text, "\n");
        sb_str(&d->html, "</li>\n");
    }
    sb_str(&d->text, "\n");
    sb_str(&d->html, "</ul>\n");
}

static void render_one(struct doc *d, const struct np_alert *a,
                       const struct np_alert_render_opts *o, struct sbuf *subj, int64_t now_ms)
{
    char t1[40], t2[40], dur[40];
    const char *who = a->site[0] ? site_name(o, a->site) : "collector";
    format_utc(a->start_ms, t1, sizeof t1);
    format_utc(a->end_ms, t2, sizeof t2);
    sb_str(subj, "[netpulse] ");
    sb_clean(subj, who, 120, false);
    if (a->subject[0]) {
        sb_str(subj, " ");
        sb_clean(subj, a->subject, 60, false);
    }
    sb_printf(subj, ": %s", kind_title(a->kind));
    if (a->kind == NP_ALERT_SITE_UP && a->end_ms > a->start_ms) {
        np_alert_format_duration(a->end_ms - a->start_ms, dur, sizeof dur);
        sb_printf(subj, " after %s", dur);
    }
    d_par_open(d);
    if (a->site[0]) {
        d_fixed(d, "Site ");
        d_site(d, o, a->site);
    } else {
        d_fixed(d, "The netpulse collector");
    }
    if (a->subject[0]) {
        d_fixed(d, ", interface ");
        d_data(d, a->subject);
    }
    d_printf(d, ": %s.", kind_title(a->kind));
    d_par_close(d);
    d_par_open(d);
    switch (a->kind) {
    case NP_ALERT_SITE_DOWN:
    case NP_ALERT_SITE_REMINDER:
        np_alert_format_duration(now_ms - a->start_ms, dur, sizeof dur);
        d_printf(d, "No heartbeat from its agent since %s (%s ago).", t1, dur);
        break;
    case NP_ALERT_SITE_UP:
        np_alert_format_duration(a->end_ms - a->start_ms, dur, sizeof dur);
        d_printf(d, "Outage from %s to %s, duration %s. Cause: %s.", t1, t2, dur,
                 cause_words(a->cause[0] ? a->cause : "unknown"));
        if (a->count) {
            d_printf(d, " %u outages while it was flapping.", a->count);
        }
        break;
    case NP_ALERT_SITE_FLAPPING:
        d_printf(d,
                 "%u outages within the flap window; notices for this site are held until it "
                 "is stable.",
                 a->count);
        break;
    case NP_ALERT_UTIL_HIGH:
    case NP_ALERT_UTIL_OK:
        d_printf(d, "Utilisation %.1f %% (threshold %.1f %%) since %s.", a->value * 100,
                 a->threshold * 100, t1);
        break;
    case NP_ALERT_SLA_RISK:
    case NP_ALERT_SLA_OK:
        d_printf(d, "Projected uptime this month %.3f %% against the target %.3f %%.",
                 a->value * 100, a->threshold * 100);
        break;
    case NP_ALERT_SPOOL_FILLING:
    case NP_ALERT_SPOOL_OK:
        d_printf(d, "Spool %.0f %% full (threshold %.0f %%).", a->value * 100, a->threshold * 100);
        break;
    case NP_ALERT_SPOOL_DROPPED:
        d_printf(d, "The agent's spool overflowed and dropped data from %s to %s.", t1, t2);
        break;
    case NP_ALERT_DISK_LOW:
    case NP_ALERT_DISK_OK:
        d_printf(d, "Free space %.1f %% (minimum %.1f %%).", a->value * 100, a->threshold * 100);
        break;
    case NP_ALERT_TEST:
        d_fixed(d, "This is a test message of netpulse alerting. If you read it, e-mail works.");
        break;
    default:
        if (a->start_ms) {
            d_printf(d, "Since %s.", t1);
        }
        break;
    }
    d_par_close(d);
}

int np_alert_render(const struct np_alert *a, const struct np_alert_render_opts *o,
                    struct np_alert_text *out)
{
    struct doc d = {{0}, {0}};
    struct sbuf subj = {0}, link = {0};
    char when[40];
    memset(out, 0, sizeof *out);
    sb_str(&d.html, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>netpulse alert"
                    "</title></head><body>\n");
    if (a->n_sites) {
        render_digest(&d, a, o, &subj);
    } else {
        render_one(&d, a, o, &subj, a->time_ms);
    }
    if (a->site[0] && o && o->dashboard_url && o->dashboard_url[0]) {
        sb_clean(&link, o->dashboard_url, 1024, false);
        sb_str(&link, "/sites/");
        sb_clean(&link, a->site, NP_ALERT_ID_MAX, false);
        d_link(&d, link.p);
    }
    format_utc(a->time_ms, when, sizeof when);
    d_par_open(&d);
    d_printf(&d, "Severity: %s. Raised %s by netpulse.", np_alert_severity_name(a->severity), when);
    d_par_close(&d);
    sb_str(&d.html, "</body></html>\n");
    out->text = sb_take(&d.text);
    out->html = sb_take(&d.html);
    out->link = sb_take(&link);
    /* the subject was built from cleaned pieces; clean once more as a whole */
    struct sbuf s2 = {0};
    sb_clean(&s2, subj.p ? subj.p : "", NP_ALERT_MAIL_SUBJECT_MAX, false);
    free(subj.p);
    out->subject = sb_take(&s2);
    if (!out->text || !out->html || !out->link || !out->subject) {
        np_alert_text_free(out);
        return -ENOMEM;
    }
    return 0;
}

void np_alert_text_free(struct np_alert_text *t)
{
    free(t->subject);
    free(t->text);
    free(t->html);
    free(t->link);
    memset(t, 0, sizeof *t);
}

/* ---- addresses ------------------------------------------------------------ */

static bool atext(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+/=?^_`{|}~-", c));
}

bool np_alert_mail_valid_address(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    const char *at = n ? strrchr(s, '@') : NULL;
    if (!at || n > NP_ALERT_MAIL_ADDR_MAX || at == s || at - s > 64 || !at[1]) {
        return false;
    }
    for (const char *p = s; p < at; p++) {
        if (*p == '.') {
            if (p == s || p + 1 == at || p[1] == '.') {
                return false;
            }
        } else if (!atext(*p)) {
            return false;
        }
    }
    const char *dom = at + 1;
    for (const char *p = dom; *p; p++) {
        char c = *p;
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (c == '.') {
            if (p == dom || !p[1] || p[1] == '.' || p[-1] == '-') {
                return false;
            }
        } else if (c == '-') {
            if (p == dom || p[-1] == '.') {
                return false;
            }
        } else if (!alnum) {
            return false;
        }
    }
    return true;
}

int np_alert_mail_split(const char *list, np_alert_addr_cb cb, void *ctx, size_t *n_invalid)
{
    char piece[NP_ALERT_MAIL_ADDR_MAX + 2];
    size_t bad = 0;
    const char *p = list ? list : "";
    while (*p) {
        size_t len = strcspn(p, ",; \t\r\n");
        if (len) {
            if (len < sizeof piece) {
                memcpy(piece, p, len);
                piece[len] = '\0';
                if (np_alert_mail_valid_address(piece)) {
                    int rc = cb(piece, ctx);
                    if (rc) {
                        return rc;
                    }
                } else {
                    bad++;
                }
            } else {
                bad++;
            }
            p += len;
        } else {
            p++;
        }
    }
    if (n_invalid) {
        *n_invalid = bad;
    }
    return 0;
}

/* ---- MIME ----------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64_chunk(struct sbuf *b, const unsigned char *p, size_t n)
{
    char q[4];
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) {
            v |= (uint32_t)p[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= p[i + 2];
        }
        q[0] = b64[v >> 18 & 63];
        q[1] = b64[v >> 12 & 63];
        q[2] = i + 1 < n ? b64[v >> 6 & 63] : '=';
        q[3] = i + 2 < n ? b64[v & 63] : '=';
        sb_add(b, q, 4);
    }
}

/* A body in base64, lines of 76 characters, CRLF. */
static void b64_body(struct sbuf *b, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i += 57) {
        b64_chunk(b, (const unsigned char *)s + i, n - i < 57 ? n - i : 57);
        sb_str(b, "\r\n");
    }
}

/* Subject: printable ASCII as is; else encoded words of at most 45 bytes of
 * whole characters each (60 base64 chars), folded. */
static void subject_header(struct sbuf *b, const char *subj)
{
    struct sbuf clean = {0};
    sb_clean(&clean, subj, NP_ALERT_MAIL_SUBJECT_MAX, false);
    const char *s = clean.p ? clean.p : "";
    bool ascii = true;
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7E) {
            ascii = false;
        }
    }
    sb_str(b, "Subject: ");
    if (ascii) {
        sb_str(b, s);
    } else {
        size_t n = strlen(s), i = 0;
        bool first = true;
        while (i < n) {
            size_t take = 0;
            while (i + take < n) {
                uint32_t cp;
                size_t len = utf8_seq((const unsigned char *)s + i + take, n - i - take, &cp);
                if (len == 0) {
                    len = 1; /* cannot happen after sb_clean */
                }
                if (take + len > 45) {
                    break;
                }
                take += len;
            }
            sb_str(b, first ? "=?UTF-8?B?" : "\r\n =?UTF-8?B?");
            b64_chunk(b, (const unsigned char *)s + i, take);
            sb_str(b, "?=");
            i += take;
            first = false;
        }
    }
    sb_str(b, "\r\n");
    if (clean.err) {
        b->err = b->err ? b->err : clean.err;
    }
    free(clean.p);
}

static uint64_t fnv1a(const char *s, uint64_t h)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211u;
    }
    return h;
}

static void date_header(struct sbuf *b, int64_t ms)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        memset(&tm, 0, sizeof tm);
        tm.tm_mday = 1;
        tm.tm_year = 70;
        tm.tm_wday = 4;
    }
    sb_printf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday % 7],
              tm.tm_mday, mons[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
              tm.tm_sec);
}

int np_alert_mail_build(const struct np_alert_text *t, const struct np_alert_mail_headers *h,
                        char **out, size_t *len, struct np_err *err)
{
    struct sbuf b = {0};
    *out = NULL;
    *len = 0;
    if (!np_alert_mail_valid_address(h->from)) {
        return np_err_set(err, -EINVAL, "alert mail: invalid from address");
    }
    if (h->n_to == 0) {
        return np_err_set(err, -EINVAL, "alert mail: no recipient");
    }
    for (size_t i = 0; i < h->n_to; i++) {
        if (!np_alert_mail_valid_address(h->to[i])) {
            return np_err_set(err, -EINVAL, "alert mail: invalid recipient address");
        }
    }
    uint64_t hash = fnv1a(h->message_key ? h->message_key : "", 14695981039346656037u);
    uint64_t hash2 = fnv1a(h->from, hash ^ 0x9E3779B97F4A7C15u);
    char boundary[64];
    snprintf(boundary, sizeof boundary, "=_np%016" PRIx64 "_%08" PRIx32, hash, (uint32_t)hash2);

    sb_str(&b, "From: netpulse <");
    sb_str(&b, h->from);
    sb_str(&b, ">\r\nTo: ");
    for (size_t i = 0; i < h->n_to; i++) {
        sb_str(&b, i ? ",\r\n " : "");
        sb_str(&b, h->to[i]);
    }
    sb_str(&b, "\r\n");
    subject_header(&b, t->subject);
    date_header(&b, h->date_ms);
    sb_printf(&b, "Message-ID: <%016" PRIx64 ".%016" PRIx64 "@%s>\r\n", hash, hash2,
              strrchr(h->from, '@') + 1);
    sb_str(&b, "MIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n");
    sb_printf(&b, "X-Netpulse-Alert: %s\r\nX-Netpulse-Severity: %s\r\n",
              np_alert_kind_name(h->kind), np_alert_severity_name(h->severity));
    if (h->site && h->site[0] && strlen(h->site) <= NP_ALERT_ID_MAX &&
        strspn(h->site, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
            strlen(h->site)) {
        sb_printf(&b, "X-Netpulse-Site: %s\r\n", h->site);
    }
    sb_printf(&b, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n", boundary);
    sb_str(&b, "This is a MIME message with a plain-text and an HTML part.\r\n");
    sb_printf(&b,
              "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
              "Content-Transfer-Encoding: base64\r\n\r\n",
              boundary);
    b64_body(&b, t->text ? t->text : "");
    sb_printf(&b,
              "--%s\r\nContent-Type: text/html; charset=utf-8\r\n"
              "Content-Transfer-Encoding: base64\r\n\r\n",
              boundary);
    b64_body(&b, t->html ? t->html : "");
    sb_printf(&b, "--%s--\r\n", boundary);
    if (b.err) {
        int e = b.err;
        free(b.p);
        return np_err_set(err, e, "alert mail: %s",
                          e == NP_ETOOBIG ? "message too large" : "out of memory");
    }
    *len = b.n;
    *out = sb_take(&b);
    return 0;
}
