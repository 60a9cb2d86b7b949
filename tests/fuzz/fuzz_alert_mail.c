/* Fuzzes the alert e-mail path with hostile data: the input is split at NUL
 * bytes into a site name, a contacts field and an interface alias. The name
 * and alias go through np_alert_render(), the contacts through
 * np_alert_mail_split(), and the message is built. Aborts when the message
 * breaks the rules of alert_mail.h: a header line that is not ours, a bare CR
 * or LF, a line over 998 bytes in the header, a recipient not validated. */
#include "alert_mail.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct to_list {
    char *v[16];
    size_t n;
};

static int add(const char *addr, void *ctx)
{
    struct to_list *l = ctx;
    if (!np_alert_mail_valid_address(addr)) {
        abort();
    }
    if (l->n < 16) {
        l->v[l->n] = strdup(addr);
        if (l->v[l->n]) {
            l->n++;
        }
    }
    return 0;
}

static const char *fuzz_name;

static const char *name_cb(void *ctx, const char *id)
{
    (void)ctx;
    (void)id;
    return fuzz_name;
}

static void check_message(const char *m, size_t len)
{
    static const char *const known[] = {"From:",
                                        "To:",
                                        "Subject:",
                                        "Date:",
                                        "Message-ID:",
                                        "MIME-Version:",
                                        "Auto-Submitted:",
                                        "X-Netpulse-Alert:",
                                        "X-Netpulse-Severity:",
                                        "X-Netpulse-Site:",
                                        "Content-Type:"};
    const char *end = strstr(m, "\r\n\r\n");
    if (!end || strlen(m) != len) {
        abort();
    }
    for (const char *p = m; p < end + 2;) {
        const char *eol = strstr(p, "\r\n");
        if (!eol || eol - p > 998) {
            abort();
        }
        bool ok = *p == ' ';
        for (size_t i = 0; !ok && i < sizeof known / sizeof known[0]; i++) {
            ok = strncmp(p, known[i], strlen(known[i])) == 0;
        }
        for (const char *q = p; q < eol; q++) {
            if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e) {
                abort();
            }
        }
        if (!ok) {
            abort();
        }
        p = eol + 2;
    }
    for (const char *q = m; *q; q++) {
        if ((*q == '\n' && (q == m || q[-1] != '\r')) || (*q == '\r' && q[1] != '\n')) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 3);
    if (!buf) {
        return 0;
    }
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = buf[size + 2] = '\0';
    const char *name = buf;
    const char *contacts = name + strlen(name) + 1;
    const char *alias = contacts <= buf + size ? contacts + strlen(contacts) + 1 : buf + size;
    if (alias > buf + size + 2) {
        alias = buf + size + 2;
    }
    struct to_list to = {{0}, 0};
    np_alert_mail_split(contacts, add, &to, NULL);
    add("noc@example.org", &to);

    struct np_alert *a = np_alert_new(alias[0] ? NP_ALERT_IFACE_DOWN : NP_ALERT_SITE_DOWN);
    struct np_alert_text t;
    struct np_alert_render_opts o = {"https://np.example.org", name_cb, NULL};
    fuzz_name = name;
    if (a) {
        memcpy(a->site, "school-1", 9);
        snprintf(a->subject, sizeof a->subject, "%s", alias);
        a->start_ms = 1790000000000;
        a->time_ms = 1790000100000;
        if (np_alert_render(a, &o, &t) == 0) {
            struct np_alert_mail_headers h = {"netpulse@example.org",
                                              (const char *const *)to.v,
                                              to.n,
                                              a->time_ms,
                                              name,
                                              a->kind,
                                              a->severity,
                                              a->site};
            char *m = NULL;
            size_t len = 0;
            if (np_alert_mail_build(&t, &h, &m, &len, NULL) == 0) {
                check_message(m, len);
            }
            free(m);
            np_alert_text_free(&t);
        }
        np_alert_free(a);
    }
    for (size_t i = 0; i < to.n; i++) {
        free(to.v[i]);
    }
    free(buf);
    return 0;
}
