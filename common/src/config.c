#include "netpulse/config.h"

#include "netpulse/units.h"

#include <ini.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One instance of a section: the caller's struct and where each value came from. */
struct np_inst {
    void *data;      /* spec->size bytes, the caller's struct */
    int header_line; /* 0: singleton absent from the file */
    int *lines;      /* per option: line it was set on, 0 = default */
    bool *via_file;  /* per option: SECRET set through KEY_file */
};

struct np_sect {
    const struct np_section_spec *spec;
    struct np_inst *insts; /* file order; singletons have exactly one */
    size_t count, cap;
};

struct np_config {
    char *path;
    char *dir; /* folder of path: base of relative KEY_file paths */
    struct np_sect *sects;
    size_t n_sects;
};

/* State of one load; lives on the loader's stack. */
struct np_parse {
    struct np_config *cfg;
    const char *next; /* first unread byte of the text */
    const char *end;
    int lineno;           /* line last handed to libinih */
    struct np_sect *sect; /* current section, NULL before the first header */
    size_t inst;          /* index of the current instance in sect */
    int rc;               /* first error's code, 0 while none */
    int err_line;         /* its line, 0 for file-level errors */
    struct np_err err;
};

#define NP_NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Longest excerpt of a value, key or section in a message. */
#define NP_SHOW_MAX 40
/* Longest excerpt of a path in a message. */
#define NP_SHOW_PATH_MAX 120

static const char *const np_type_names[] = {
    [NP_OPT_STRING] = "string", [NP_OPT_SECRET] = "secret",     [NP_OPT_BOOL] = "boolean",
    [NP_OPT_INT] = "integer",   [NP_OPT_DURATION] = "duration", [NP_OPT_SIZE] = "size",
    [NP_OPT_RATE] = "rate",     [NP_OPT_RATIO] = "ratio",       [NP_OPT_ENUM] = "enum",
    [NP_OPT_LIST] = "list",
};

/* ---- small text helpers (ASCII only: the locale must not change parsing) ---- */

static bool np_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static char np_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool np_ascii_caseeq(const char *a, const char *b)
{
    while (*a && np_lower(*a) == np_lower(*b)) {
        a++;
        b++;
    }
    return *a == '\0' && *b == '\0';
}

static bool np_ends_with(const char *s, const char *suffix, size_t *prefix_len)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    if (ls <= lx || strcmp(s + ls - lx, suffix) != 0) {
        return false;
    }
    *prefix_len = ls - lx;
    return true;
}

/* Copies len bytes of s into buf for a message: at most max characters, bytes
 * outside printable ASCII as '?', "..." when cut. Returns buf. */
static const char *np_show_n(const char *s, size_t len, size_t max, char *buf, size_t buf_len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 4 < buf_len; i++) {
        if (i == max) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        unsigned char c = (unsigned char)s[i];
        buf[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    buf[o] = '\0';
    return buf;
}

static const char *np_show(const char *s, char *buf, size_t buf_len)
{
    return np_show_n(s, strlen(s), NP_SHOW_MAX, buf, buf_len);
}

static char *np_strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* ---- errors ---- */

/* Records the first error. Exception: an error on an earlier line replaces a
 * later one, because libinih reports its syntax errors only once the parse is
 * over. Returns the kept error's code. */
static int np_fail(struct np_parse *p, int line, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int np_fail(struct np_parse *p, int line, int code, const char *fmt, ...)
{
    if (p->rc != 0 && !(line > 0 && p->err_line > 0 && line < p->err_line)) {
        return p->rc;
    }
    char msg[sizeof p->err.msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0) {
        np_err_set(&p->err, code, "%s:%d: %s", p->cfg->path, line, msg);
    } else {
        np_err_set(&p->err, code, "%s: %s", p->cfg->path, msg);
    }
    p->rc = code;
    p->err_line = line;
    return code;
}

/* "[snmp edge-router]" or "[agent]" for messages. */
static const char *np_inst_label(const struct np_sect *s, const struct np_inst *inst, char *buf,
                                 size_t len)
{
    char shown[NP_SHOW_MAX + 8];
    if (s->spec->named) {
        char *const *name = (char *const *)((const char *)inst->data + s->spec->name_offset);
        snprintf(buf, len, "[%s %s]", s->spec->name,
                 *name ? np_show(*name, shown, sizeof shown) : "");
    } else {
        snprintf(buf, len, "[%s]", s->spec->name);
    }
    return buf;
}

/* ---- fields ---- */

static void *np_field(void *data, const struct np_opt *o)
{
    return (char *)data + o->offset;
}

static size_t np_field_size(enum np_opt_type t)
{
    switch (t) {
    case NP_OPT_STRING:
    case NP_OPT_SECRET:
        return sizeof(char *);
    case NP_OPT_BOOL:
        return sizeof(bool);
    case NP_OPT_INT:
    case NP_OPT_DURATION:
        return sizeof(int64_t);
    case NP_OPT_SIZE:
    case NP_OPT_RATE:
        return sizeof(uint64_t);
    case NP_OPT_RATIO:
        return sizeof(double);
    case NP_OPT_ENUM:
        return sizeof(int);
    case NP_OPT_LIST:
        return sizeof(struct np_strlist);
    }
    return 0;
}

static void np_string_free(char *s, bool wipe)
{
    if (s && wipe) {
        explicit_bzero(s, strlen(s));
    }
    free(s);
}

static void np_strlist_clear(struct np_strlist *l)
{
    for (size_t i = 0; i < l->count; i++) {
        free(l->items[i]);
    }
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

/* Splits text at commas into trimmed items; an empty text is an empty list. */
static int np_strlist_parse(const char *text, struct np_strlist *out)
{
    struct np_strlist l = {0};
    size_t n = 1;
    int rc = 0;

    if (*text == '\0') {
        *out = l;
        return 0;
    }
    for (const char *c = text; *c; c++) {
        n += *c == ',';
    }
    l.items = calloc(n, sizeof *l.items);
    if (!l.items) {
        return -ENOMEM;
    }
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *e = comma ? comma : p + strlen(p);
        const char *b = p;
        while (b < e && np_is_space(*b)) {
            b++;
        }
        while (e > b && np_is_space(e[-1])) {
            e--;
        }
        if (e == b) {
            rc = NP_ECONFIG;
            goto out_clear;
        }
        l.items[l.count] = np_strndup(b, (size_t)(e - b));
        if (!l.items[l.count]) {
            rc = -ENOMEM;
            goto out_clear;
        }
        l.count++;
        if (!comma) {
            break;
        }
        p = comma + 1;
    }
    *out = l;
    return 0;

out_clear:
    np_strlist_clear(&l);
    return rc;
}

static int np_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < NP_NELEMS(yes); i++) {
        if (np_ascii_caseeq(text, yes[i])) {
            *out = true;
            return 0;
        }
        if (np_ascii_caseeq(text, no[i])) {
            *out = false;
            return 0;
        }
    }
    return NP_ECONFIG;
}

/* Decimal int64 with an optional sign and nothing else. Returns 0, NP_ECONFIG
 * (not an integer) or NP_ETOOBIG (out of int64 range). */
static int np_parse_int(const char *text, int64_t *out)
{
    const char *d = text + (*text == '+' || *text == '-');
    if (*d == '\0') {
        return NP_ECONFIG;
    }
    for (const char *c = d; *c; c++) {
        if (*c < '0' || *c > '9') {
            return NP_ECONFIG;
        }
    }
    errno = 0;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (errno == ERANGE) {
        return NP_ETOOBIG;
    }
    if (*end != '\0') {
        return NP_ECONFIG;
    }
    *out = (int64_t)v;
    return 0;
}

/* Formats a number of the option's type for a range message. */
static const char *np_format_typed(const struct np_opt *o, double v, char *buf, size_t len)
{
    if (!isfinite(v)) {
        snprintf(buf, len, "%g", v);
        return buf;
    }
    switch (o->type) {
    case NP_OPT_DURATION:
        if (v >= -9.2e18 && v <= 9.2e18) {
            return np_units_format_duration((int64_t)v, buf, len);
        }
        break;
    case NP_OPT_SIZE:
        if (v >= 0 && v <= 1.8e19) {
            return np_units_format_size((uint64_t)v, buf, len);
        }
        break;
    case NP_OPT_RATE:
        if (v >= 0 && v <= 1.8e19) {
            return np_units_format_rate((uint64_t)v, buf, len);
        }
        break;
    case NP_OPT_RATIO:
        return np_units_format_ratio(v, buf, len);
    default:
        break;
    }
    snprintf(buf, len, "%.0f", v);
    return buf;
}

/* Checks v against the option's range; writes why on failure. */
static int np_check_range(const struct np_opt *o, double v, const char *shown_value, char *why,
                          size_t why_len)
{
    char bound[NP_UNITS_BUF];
    if (o->min == 0 && o->max == 0) {
        return 0;
    }
    if (v < o->min) {
        snprintf(why, why_len, "%s: %s is below the minimum %s", o->name, shown_value,
                 np_format_typed(o, o->min, bound, sizeof bound));
        return NP_ECONFIG;
    }
    if (v > o->max) {
        snprintf(why, why_len, "%s: %s is above the maximum %s", o->name, shown_value,
                 np_format_typed(o, o->max, bound, sizeof bound));
        return NP_ECONFIG;
    }
    return 0;
}

/* Parses text into the option's field of data, replacing (and freeing) what was
 * there. key is the key as written (for KEY_file, the secret's contents are
 * text and key names the file key). On failure the field is unchanged and why
 * holds "KEY: problem". Returns 0, NP_ECONFIG or -ENOMEM. */
static int np_value_set(const struct np_opt *o, void *data, const char *text, char *why,
                        size_t why_len)
{
    void *field = np_field(data, o);
    char shown[NP_SHOW_MAX + 8];
    char canon[NP_UNITS_BUF];
    int rc;

    np_show(text, shown, sizeof shown);
    switch (o->type) {
    case NP_OPT_STRING:
    case NP_OPT_SECRET: {
        char *s = strdup(text);
        if (!s) {
            goto out_nomem;
        }
        np_string_free(*(char **)field, o->type == NP_OPT_SECRET);
        *(char **)field = s;
        return 0;
    }
    case NP_OPT_BOOL:
        if (np_parse_bool(text, (bool *)field) != 0) {
            snprintf(why, why_len,
                     "%s: \"%s\" is not a boolean (use yes/no, true/false, on/off, 1/0)", o->name,
                     shown);
            return NP_ECONFIG;
        }
        return 0;
    case NP_OPT_INT: {
        int64_t v;
        rc = np_parse_int(text, &v);
        if (rc != 0) {
            snprintf(why, why_len, "%s: \"%s\" %s", o->name, shown,
                     rc == NP_ETOOBIG ? "is out of range" : "is not an integer");
            return NP_ECONFIG;
        }
        if (np_check_range(o, (double)v, shown, why, why_len) != 0) {
            return NP_ECONFIG;
        }
        *(int64_t *)field = v;
        return 0;
    }
    case NP_OPT_DURATION: {
        int64_t v;
        if (np_units_duration_ms(text, &v) != 0) {
            snprintf(why, why_len, "%s: \"%s\" is not a duration (use 500ms, 10s, 5m, 1h, 7d)",
                     o->name, shown);
            return NP_ECONFIG;
        }
        np_units_format_duration(v, canon, sizeof canon);
        if (np_check_range(o, (double)v, canon, why, why_len) != 0) {
            return NP_ECONFIG;
        }
        *(int64_t *)field = v;
        return 0;
    }
    case NP_OPT_SIZE: {
        uint64_t v;
        if (np_units_size_bytes(text, &v) != 0) {
            snprintf(why, why_len, "%s: \"%s\" is not a size (use 512B, 64KiB, 256MiB, 1GiB)",
                     o->name, shown);
            return NP_ECONFIG;
        }
        np_units_format_size(v, canon, sizeof canon);
        if (np_check_range(o, (double)v, canon, why, why_len) != 0) {
            return NP_ECONFIG;
        }
        *(uint64_t *)field = v;
        return 0;
    }
    case NP_OPT_RATE: {
        uint64_t v;
        if (np_units_rate_bps(text, &v) != 0) {
            snprintf(why, why_len,
                     "%s: \"%s\" is not a rate (use 9600bps, 512kbps, 100Mbps, 1Gbps)", o->name,
                     shown);
            return NP_ECONFIG;
        }
        np_units_format_rate(v, canon, sizeof canon);
        if (np_check_range(o, (double)v, canon, why, why_len) != 0) {
            return NP_ECONFIG;
        }
        *(uint64_t *)field = v;
        return 0;
    }
    case NP_OPT_RATIO: {
        double v;
        if (np_units_ratio(text, &v) != 0) {
            snprintf(why, why_len, "%s: \"%s\" is not a ratio (use 99.5%% or 0.995)", o->name,
                     shown);
            return NP_ECONFIG;
        }
        np_units_format_ratio(v, canon, sizeof canon);
        if (np_check_range(o, v, canon, why, why_len) != 0) {
            return NP_ECONFIG;
        }
        *(double *)field = v;
        return 0;
    }
    case NP_OPT_ENUM: {
        for (int i = 0; o->choices && o->choices[i]; i++) {
            if (np_ascii_caseeq(text, o->choices[i])) {
                *(int *)field = i;
                return 0;
            }
        }
        int n = snprintf(why, why_len, "%s: \"%s\" is not one of ", o->name, shown);
        for (int i = 0; o->choices && o->choices[i] && n >= 0 && (size_t)n < why_len; i++) {
            n += snprintf(why + n, why_len - (size_t)n, "%s%s", i ? ", " : "", o->choices[i]);
        }
        return NP_ECONFIG;
    }
    case NP_OPT_LIST: {
        struct np_strlist l;
        rc = np_strlist_parse(text, &l);
        if (rc == -ENOMEM) {
            goto out_nomem;
        }
        if (rc != 0) {
            snprintf(why, why_len, "%s: empty item in list \"%s\"", o->name, shown);
            return NP_ECONFIG;
        }
        np_strlist_clear((struct np_strlist *)field);
        *(struct np_strlist *)field = l;
        return 0;
    }
    }
    snprintf(why, why_len, "%s: unknown option type %d", o->name, (int)o->type);
    return NP_ECONFIG;

out_nomem:
    snprintf(why, why_len, "%s: out of memory", o->name);
    return -ENOMEM;
}

/* ---- instances ---- */

static void np_inst_free(const struct np_section_spec *spec, struct np_inst *inst)
{
    if (inst->data) {
        for (size_t i = 0; i < spec->n_opts; i++) {
            const struct np_opt *o = &spec->opts[i];
            void *field = np_field(inst->data, o);
            if (o->type == NP_OPT_STRING || o->type == NP_OPT_SECRET) {
                np_string_free(*(char **)field, o->type == NP_OPT_SECRET);
            } else if (o->type == NP_OPT_LIST) {
                np_strlist_clear((struct np_strlist *)field);
            }
        }
        if (spec->named) {
            free(*(char **)((char *)inst->data + spec->name_offset));
        }
    }
    free(inst->data);
    free(inst->lines);
    free(inst->via_file);
    memset(inst, 0, sizeof *inst);
}

/* Appends an instance of s filled with defaults; name (named sections) is
 * copied. Returns 0 or an error recorded in p. */
static int np_inst_add(struct np_parse *p, struct np_sect *s, const char *name, int header_line)
{
    const struct np_section_spec *spec = s->spec;
    char why[sizeof p->err.msg];

    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        struct np_inst *bigger = realloc(s->insts, cap * sizeof *bigger);
        if (!bigger) {
            return np_fail(p, header_line, -ENOMEM, "out of memory");
        }
        s->insts = bigger;
        s->cap = cap;
    }
    struct np_inst *inst = &s->insts[s->count];
    memset(inst, 0, sizeof *inst);
    inst->header_line = header_line;
    inst->data = calloc(1, spec->size);
    inst->lines = calloc(spec->n_opts ? spec->n_opts : 1, sizeof *inst->lines);
    inst->via_file = calloc(spec->n_opts ? spec->n_opts : 1, sizeof *inst->via_file);
    /* Counted now so that np_config_free() releases it whatever happens next. */
    s->count++;
    if (!inst->data || !inst->lines || !inst->via_file) {
        return np_fail(p, header_line, -ENOMEM, "out of memory");
    }
    if (spec->named && name) {
        char *copy = strdup(name);
        if (!copy) {
            return np_fail(p, header_line, -ENOMEM, "out of memory");
        }
        *(char **)((char *)inst->data + spec->name_offset) = copy;
    }
    for (size_t i = 0; i < spec->n_opts; i++) {
        const struct np_opt *o = &spec->opts[i];
        const char *def = o->def;
        if (!def) {
            /* calloc already gave 0, false, 0.0, index 0 and the empty list. */
            if (o->type != NP_OPT_STRING && o->type != NP_OPT_SECRET) {
                continue;
            }
            def = "";
        }
        int rc = np_value_set(o, inst->data, def, why, sizeof why);
        if (rc != 0) {
            return np_fail(p, 0, rc, "invalid spec: [%s] default of %s", spec->name, why);
        }
    }
    return 0;
}

/* Checks the current instance once its section has ended. */
static int np_inst_finish(struct np_parse *p)
{
    char label[NP_SHOW_MAX + 64];
    if (!p->sect) {
        return 0;
    }
    const struct np_section_spec *spec = p->sect->spec;
    struct np_inst *inst = &p->sect->insts[p->inst];
    for (size_t i = 0; i < spec->n_opts; i++) {
        const struct np_opt *o = &spec->opts[i];
        if ((o->flags & NP_OPT_REQUIRED) && inst->lines[i] == 0) {
            np_inst_label(p->sect, inst, label, sizeof label);
            if (o->type == NP_OPT_SECRET) {
                return np_fail(p, inst->header_line, NP_ECONFIG,
                               "missing required key \"%s\" (or %s_file) in %s", o->name, o->name,
                               label);
            }
            return np_fail(p, inst->header_line, NP_ECONFIG, "missing required key \"%s\" in %s",
                           o->name, label);
        }
    }
    return 0;
}

static struct np_sect *np_sect_find(const struct np_config *cfg, const char *name, size_t len)
{
    for (size_t i = 0; i < cfg->n_sects; i++) {
        const char *n = cfg->sects[i].spec->name;
        if (strlen(n) == len && memcmp(n, name, len) == 0) {
            return &cfg->sects[i];
        }
    }
    return NULL;
}

static bool np_name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == ':' || c == '@';
}

/* Handles a "[type NAME]" line (already trimmed, line[0] == '['). */
static int np_section_header(struct np_parse *p, const char *line, size_t len)
{
    const char *end = line + len;
    const char *close = memchr(line, ']', len);
    char shown[NP_SHOW_MAX + 8];

    if (!close) {
        return np_fail(p, p->lineno, NP_ECONFIG, "syntax error: section header without \"]\"");
    }
    for (const char *r = close + 1; r < end && *r != ';' && *r != '#'; r++) {
        if (!np_is_space(*r)) {
            return np_fail(p, p->lineno, NP_ECONFIG, "syntax error: text after the section header");
        }
    }
    const char *b = line + 1, *e = close;
    while (b < e && np_is_space(*b)) {
        b++;
    }
    while (e > b && np_is_space(e[-1])) {
        e--;
    }
    const char *type_end = b;
    while (type_end < e && !np_is_space(*type_end)) {
        type_end++;
    }
    const char *name = type_end;
    while (name < e && np_is_space(*name)) {
        name++;
    }
    size_t name_len = (size_t)(e - name);

    /* The previous section is complete: report its missing keys first. */
    if (np_inst_finish(p) != 0) {
        return p->rc;
    }
    p->sect = NULL;

    if (b == e) {
        return np_fail(p, p->lineno, NP_ECONFIG, "syntax error: empty section header []");
    }
    struct np_sect *s = np_sect_find(p->cfg, b, (size_t)(type_end - b));
    if (!s) {
        return np_fail(p, p->lineno, NP_ECONFIG, "unknown section [%s]",
                       np_show_n(b, (size_t)(e - b), NP_SHOW_MAX, shown, sizeof shown));
    }
    if (!s->spec->named) {
        if (name_len > 0) {
            return np_fail(p, p->lineno, NP_ECONFIG, "section [%s] takes no name (found [%s])",
                           s->spec->name,
                           np_show_n(b, (size_t)(e - b), NP_SHOW_MAX, shown, sizeof shown));
        }
        if (s->insts[0].header_line != 0) {
            return np_fail(p, p->lineno, NP_ECONFIG, "duplicate section [%s]", s->spec->name);
        }
        s->insts[0].header_line = p->lineno;
        p->sect = s;
        p->inst = 0;
        return 0;
    }

    if (name_len == 0) {
        return np_fail(p, p->lineno, NP_ECONFIG, "section [%s] needs a name: [%s NAME]",
                       s->spec->name, s->spec->name);
    }
    for (size_t i = 0; i < name_len; i++) {
        if (!np_name_char_ok(name[i]) || i >= NP_CONFIG_MAX_NAME) {
            return np_fail(p, p->lineno, NP_ECONFIG,
                           "invalid name \"%s\" in [%s ...] (up to %d letters, digits, - _ . : @)",
                           np_show_n(name, name_len, NP_SHOW_MAX, shown, sizeof shown),
                           s->spec->name, NP_CONFIG_MAX_NAME);
        }
    }
    char name_buf[NP_CONFIG_MAX_NAME + 1];
    memcpy(name_buf, name, name_len);
    name_buf[name_len] = '\0';
    for (size_t i = 0; i < s->count; i++) {
        const char *other = *(char **)((char *)s->insts[i].data + s->spec->name_offset);
        if (strcmp(other, name_buf) == 0) {
            return np_fail(p, p->lineno, NP_ECONFIG, "duplicate section [%s %s]", s->spec->name,
                           name_buf);
        }
    }
    if (s->count >= NP_CONFIG_MAX_INSTANCES) {
        return np_fail(p, p->lineno, NP_ECONFIG, "more than %d [%s] sections",
                       NP_CONFIG_MAX_INSTANCES, s->spec->name);
    }
    if (np_inst_add(p, s, name_buf, p->lineno) != 0) {
        return p->rc;
    }
    p->sect = s;
    p->inst = s->count - 1;
    return 0;
}

/* ---- secrets ---- */

/* Reads the first line of the secret file named by value (relative to the
 * config's folder) into a new string. Messages name the path, never contents. */
static int np_secret_read(const struct np_parse *p, const char *key, const char *value, char **out,
                          char *why, size_t why_len)
{
    char path[PATH_MAX];
    char buf[NP_CONFIG_MAX_SECRET + 1];
    char shown[NP_SHOW_PATH_MAX + 8];
    size_t len = 0;
    int rc = NP_ECONFIG;

    if (*value == '\0') {
        snprintf(why, why_len, "%s: empty path", key);
        return NP_ECONFIG;
    }
    const char *dir = p->cfg->dir;
    int n;
    if (value[0] == '/' || strcmp(dir, ".") == 0) {
        n = snprintf(path, sizeof path, "%s", value);
    } else {
        n = snprintf(path, sizeof path, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/",
                     value);
    }
    np_show_n(path, strlen(path), NP_SHOW_PATH_MAX, shown, sizeof shown);
    if (n < 0 || (size_t)n >= sizeof path) {
        snprintf(why, why_len, "%s: path too long: %s", key, shown);
        return NP_ECONFIG;
    }
    /* O_NONBLOCK: a FIFO must not hang the load; only regular files pass below. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(why, why_len, "%s: cannot read %s: %s", key, shown, np_strerror(-errno));
        return NP_ECONFIG;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(why, why_len, "%s: cannot read %s: %s", key, shown, np_strerror(-errno));
        goto out_close;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, why_len, "%s: cannot read %s: not a regular file", key, shown);
        goto out_close;
    }
    while (len < sizeof buf) {
        ssize_t got = read(fd, buf + len, sizeof buf - len);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            snprintf(why, why_len, "%s: cannot read %s: %s", key, shown, np_strerror(-errno));
            goto out_wipe;
        }
        if (got == 0) {
            break;
        }
        len += (size_t)got;
    }
    if (len > NP_CONFIG_MAX_SECRET) {
        snprintf(why, why_len, "%s: %s is larger than %d bytes", key, shown, NP_CONFIG_MAX_SECRET);
        goto out_wipe;
    }
    if (memchr(buf, '\0', len)) {
        snprintf(why, why_len, "%s: %s contains a NUL byte", key, shown);
        goto out_wipe;
    }
    const char *nl = memchr(buf, '\n', len);
    size_t line_len = nl ? (size_t)(nl - buf) : len;
    if (line_len > 0 && buf[line_len - 1] == '\r') {
        line_len--;
    }
    *out = np_strndup(buf, line_len);
    if (!*out) {
        snprintf(why, why_len, "%s: out of memory", key);
        rc = -ENOMEM;
        goto out_wipe;
    }
    rc = 0;

out_wipe:
    explicit_bzero(buf, sizeof buf);
out_close:
    close(fd);
    return rc;
}

/* ---- libinih callbacks ---- */

/* Feeds libinih one line at a time so that its line count is ours. Lines are
 * trimmed first: no leading blank means libinih never sees a continuation line
 * (a multi-line value would silently swallow an indented key). Section headers,
 * comments and blank lines are handled here and reach libinih as empty lines;
 * libinih splits "key = value", drops " ; comments" and calls np_ini_pair. */
static char *np_ini_read(char *str, int num, void *stream)
{
    struct np_parse *p = stream;

    if (p->rc != 0 || p->next >= p->end || num < 2) {
        return NULL;
    }
    const char *line = p->next;
    const char *nl = memchr(line, '\n', (size_t)(p->end - line));
    const char *e = nl ? nl : p->end;
    p->next = nl ? nl + 1 : p->end;
    p->lineno++;

    if (p->lineno == 1 && e - line >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3;
    }
    if (memchr(line, '\0', (size_t)(e - line))) {
        np_fail(p, p->lineno, NP_ECONFIG, "NUL byte in line");
        return NULL;
    }
    while (line < e && np_is_space(*line)) {
        line++;
    }
    while (e > line && np_is_space(e[-1])) {
        e--;
    }
    size_t len = (size_t)(e - line);
    if (len > (size_t)num - 1) {
        np_fail(p, p->lineno, NP_ECONFIG, "line longer than %d bytes", num - 1);
        return NULL;
    }
    str[0] = '\0';
    if (len == 0 || *line == ';' || *line == '#') {
        return str;
    }
    if (*line == '[') {
        return np_section_header(p, line, len) == 0 ? str : NULL;
    }
    memcpy(str, line, len);
    str[len] = '\0';
    return str;
}

/* Finds the option for key: exact name, or KEY_file of a SECRET option. */
static const struct np_opt *np_opt_find(const struct np_section_spec *spec, const char *key,
                                        size_t *index, bool *via_file)
{
    size_t prefix;
    for (size_t i = 0; i < spec->n_opts; i++) {
        if (strcmp(spec->opts[i].name, key) == 0) {
            *index = i;
            *via_file = false;
            return &spec->opts[i];
        }
    }
    if (!np_ends_with(key, "_file", &prefix)) {
        return NULL;
    }
    for (size_t i = 0; i < spec->n_opts; i++) {
        const struct np_opt *o = &spec->opts[i];
        if (o->type == NP_OPT_SECRET && strlen(o->name) == prefix &&
            memcmp(o->name, key, prefix) == 0) {
            *index = i;
            *via_file = true;
            return o;
        }
    }
    return NULL;
}

static int np_ini_pair(void *user, const char *section, const char *key, const char *value)
{
    struct np_parse *p = user;
    char shown[NP_SHOW_MAX + 8];
    char label[NP_SHOW_MAX + 64];
    char why[sizeof p->err.msg];
    size_t idx;
    bool via_file;
    int rc;

    (void)section; /* always "": headers never reach libinih */
    if (p->rc != 0) {
        return 0;
    }
    if (!p->sect) {
        np_fail(p, p->lineno, NP_ECONFIG, "key \"%s\" outside any section",
                np_show(key, shown, sizeof shown));
        return 0;
    }
    const struct np_section_spec *spec = p->sect->spec;
    struct np_inst *inst = &p->sect->insts[p->inst];
    np_inst_label(p->sect, inst, label, sizeof label);
    const struct np_opt *o = np_opt_find(spec, key, &idx, &via_file);
    if (!o) {
        np_fail(p, p->lineno, NP_ECONFIG, "unknown key \"%s\" in %s",
                np_show(key, shown, sizeof shown), label);
        return 0;
    }
    if (inst->lines[idx] != 0) {
        if (inst->via_file[idx] != via_file) {
            np_fail(p, p->lineno, NP_ECONFIG, "%s and %s_file both given in %s (line %d)", o->name,
                    o->name, label, inst->lines[idx]);
        } else {
            np_fail(p, p->lineno, NP_ECONFIG, "duplicate key \"%s\" in %s", key, label);
        }
        return 0;
    }
    if (via_file) {
        char *secret = NULL;
        rc = np_secret_read(p, key, value, &secret, why, sizeof why);
        if (rc == 0) {
            rc = np_value_set(o, inst->data, secret, why, sizeof why);
            np_string_free(secret, true);
        }
    } else {
        rc = np_value_set(o, inst->data, value, why, sizeof why);
    }
    if (rc != 0) {
        np_fail(p, p->lineno, rc, "%s", why);
        return 0;
    }
    inst->lines[idx] = p->lineno;
    inst->via_file[idx] = via_file;
    return 1;
}

/* ---- load ---- */

/* Catches table mistakes that would otherwise corrupt memory. */
static int np_specs_check(struct np_parse *p, const struct np_section_spec *specs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct np_section_spec *s = &specs[i];
        if (!s->name || !*s->name || s->size == 0 || (s->n_opts > 0 && !s->opts)) {
            return np_fail(p, 0, NP_ECONFIG, "invalid spec: section %zu", i);
        }
    }
    for (size_t i = 0; i < n; i++) {
        const struct np_section_spec *s = &specs[i];
        if (np_sect_find(p->cfg, s->name, strlen(s->name)) != &p->cfg->sects[i]) {
            return np_fail(p, 0, NP_ECONFIG, "invalid spec: section [%s] twice", s->name);
        }
        if (s->named && (s->name_offset > s->size || s->size - s->name_offset < sizeof(char *))) {
            return np_fail(p, 0, NP_ECONFIG, "invalid spec: [%s] name_offset", s->name);
        }
        for (size_t j = 0; j < s->n_opts; j++) {
            const struct np_opt *o = &s->opts[j];
            size_t fs = np_field_size(o->type);
            /* A field over the NAME pointer would be freed twice. */
            bool over_name = s->named && o->offset < s->name_offset + sizeof(char *) &&
                             s->name_offset < o->offset + fs;
            if (!o->name || !*o->name || fs == 0 || over_name || o->offset > s->size ||
                s->size - o->offset < fs ||
                (o->type == NP_OPT_ENUM && (!o->choices || !o->choices[0]))) {
                return np_fail(p, 0, NP_ECONFIG, "invalid spec: [%s] option %zu (%s)", s->name, j,
                               o->name ? o->name : "?");
            }
            for (size_t k = 0; k < j; k++) {
                if (strcmp(s->opts[k].name, o->name) == 0) {
                    return np_fail(p, 0, NP_ECONFIG, "invalid spec: [%s] %s twice", s->name,
                                   o->name);
                }
            }
        }
    }
    return 0;
}

static int np_config_new(const char *path, const struct np_section_spec *specs, size_t n_specs,
                         struct np_config **out)
{
    struct np_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        return -ENOMEM;
    }
    cfg->path = strdup(path);
    const char *slash = strrchr(path, '/');
    if (!slash) {
        cfg->dir = strdup(".");
    } else if (slash == path) {
        cfg->dir = strdup("/");
    } else {
        cfg->dir = np_strndup(path, (size_t)(slash - path));
    }
    cfg->sects = calloc(n_specs ? n_specs : 1, sizeof *cfg->sects);
    if (!cfg->path || !cfg->dir || !cfg->sects) {
        np_config_free(cfg);
        return -ENOMEM;
    }
    cfg->n_sects = n_specs;
    for (size_t i = 0; i < n_specs; i++) {
        cfg->sects[i].spec = &specs[i];
    }
    *out = cfg;
    return 0;
}

/* Checks that follow the last line: the last section's keys, absent sections. */
static int np_finish(struct np_parse *p)
{
    if (np_inst_finish(p) != 0) {
        return p->rc;
    }
    for (size_t i = 0; i < p->cfg->n_sects; i++) {
        const struct np_sect *s = &p->cfg->sects[i];
        const struct np_section_spec *spec = s->spec;
        if (spec->named) {
            if (spec->required && s->count == 0) {
                return np_fail(p, 0, NP_ECONFIG, "missing section [%s NAME]", spec->name);
            }
            continue;
        }
        if (s->insts[0].header_line != 0) {
            continue;
        }
        if (spec->required) {
            return np_fail(p, 0, NP_ECONFIG, "missing section [%s]", spec->name);
        }
        for (size_t j = 0; j < spec->n_opts; j++) {
            if (spec->opts[j].flags & NP_OPT_REQUIRED) {
                return np_fail(p, 0, NP_ECONFIG, "missing section [%s] (key \"%s\" is required)",
                               spec->name, spec->opts[j].name);
            }
        }
    }
    return 0;
}

static int np_load_text(const char *text, size_t len, const char *name,
                        const struct np_section_spec *specs, size_t n_specs, struct np_config **out,
                        struct np_err *err)
{
    struct np_parse p = {0};
    int rc;

    *out = NULL;
    rc = np_config_new(name, specs, n_specs, &p.cfg);
    if (rc != 0) {
        return np_err_set(err, rc, "%s: out of memory", name);
    }
    p.next = text;
    p.end = text + len;
    if (np_specs_check(&p, specs, n_specs) != 0) {
        goto out_free;
    }
    for (size_t i = 0; i < n_specs; i++) {
        if (!specs[i].named && np_inst_add(&p, &p.cfg->sects[i], NULL, 0) != 0) {
            goto out_free;
        }
    }
    rc = ini_parse_stream(np_ini_read, &p, np_ini_pair, &p);
    if (rc == -2) {
        np_fail(&p, 0, -ENOMEM, "out of memory");
    } else if (rc > 0) {
        /* Only lines with neither '=' nor ':' fail inside libinih; np_fail keeps
         * whichever error comes first in the file. */
        np_fail(&p, rc, NP_ECONFIG, "syntax error: expected \"key = value\"");
    }
    if (p.rc == 0) {
        np_finish(&p);
    }
    if (p.rc != 0) {
        goto out_free;
    }
    *out = p.cfg;
    np_err_clear(err);
    return 0;

out_free:
    np_config_free(p.cfg);
    if (err) {
        *err = p.err;
    }
    return p.rc;
}

int np_config_load_string(const char *text, const char *name_for_errors,
                          const struct np_section_spec *specs, size_t n_specs,
                          struct np_config **out, struct np_err *err)
{
    const char *name = name_for_errors ? name_for_errors : "<string>";
    size_t len = strnlen(text, (size_t)NP_CONFIG_MAX_FILE + 1);

    *out = NULL;
    if (len > NP_CONFIG_MAX_FILE) {
        return np_err_set(err, NP_ETOOBIG, "%s: larger than %d bytes", name, NP_CONFIG_MAX_FILE);
    }
    return np_load_text(text, len, name, specs, n_specs, out, err);
}

int np_config_load(const char *path, const struct np_section_spec *specs, size_t n_specs,
                   struct np_config **out, struct np_err *err)
{
    size_t cap = 16384, len = 0;
    char *buf = NULL;
    int rc;

    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        rc = -errno;
        return np_err_set(err, rc, "%s: cannot read: %s", path, np_strerror(rc));
    }
    buf = malloc(cap);
    if (!buf) {
        rc = np_err_set(err, -ENOMEM, "%s: out of memory", path);
        goto out_close;
    }
    for (;;) {
        if (len == cap) {
            if (cap > NP_CONFIG_MAX_FILE) {
                rc = np_err_set(err, NP_ETOOBIG, "%s: larger than %d bytes", path,
                                NP_CONFIG_MAX_FILE);
                goto out_free;
            }
            /* Grows to at most NP_CONFIG_MAX_FILE + 1: one byte past the cap proves excess. */
            size_t bigger_cap = cap * 2 > NP_CONFIG_MAX_FILE ? NP_CONFIG_MAX_FILE + 1 : cap * 2;
            char *bigger = realloc(buf, bigger_cap);
            if (!bigger) {
                rc = np_err_set(err, -ENOMEM, "%s: out of memory", path);
                goto out_free;
            }
            buf = bigger;
            cap = bigger_cap;
        }
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            rc = -errno;
            np_err_set(err, rc, "%s: cannot read: %s", path, np_strerror(rc));
            goto out_free;
        }
        if (got == 0) {
            break;
        }
        len += (size_t)got;
    }
    rc = np_load_text(buf, len, path, specs, n_specs, out, err);

out_free:
    /* The text may hold inline secrets. */
    explicit_bzero(buf, cap);
    free(buf);
out_close:
    close(fd);
    return rc;
}

void np_config_free(struct np_config *cfg)
{
    if (!cfg) {
        return;
    }
    for (size_t i = 0; i < cfg->n_sects; i++) {
        struct np_sect *s = &cfg->sects[i];
        for (size_t j = 0; j < s->count; j++) {
            np_inst_free(s->spec, &s->insts[j]);
        }
        free(s->insts);
    }
    free(cfg->sects);
    free(cfg->path);
    free(cfg->dir);
    free(cfg);
}

/* ---- queries ---- */

static const struct np_sect *np_sect_by_name(const struct np_config *cfg, const char *section)
{
    if (!cfg || !section) {
        return NULL;
    }
    return np_sect_find(cfg, section, strlen(section));
}

const void *np_config_section(const struct np_config *cfg, const char *section)
{
    const struct np_sect *s = np_sect_by_name(cfg, section);
    if (!s || s->spec->named) {
        return NULL;
    }
    return s->insts[0].data;
}

size_t np_config_count(const struct np_config *cfg, const char *section)
{
    const struct np_sect *s = np_sect_by_name(cfg, section);
    return s ? s->count : 0;
}

const void *np_config_instance(const struct np_config *cfg, const char *section, size_t i)
{
    const struct np_sect *s = np_sect_by_name(cfg, section);
    if (!s || i >= s->count) {
        return NULL;
    }
    return s->insts[i].data;
}

int np_config_line(const struct np_config *cfg, const void *instance, const char *key)
{
    if (!cfg || !instance) {
        return 0;
    }
    for (size_t i = 0; i < cfg->n_sects; i++) {
        const struct np_sect *s = &cfg->sects[i];
        for (size_t j = 0; j < s->count; j++) {
            const struct np_inst *inst = &s->insts[j];
            if (inst->data != instance) {
                continue;
            }
            if (!key) {
                return inst->header_line;
            }
            size_t idx;
            bool via_file;
            if (!np_opt_find(s->spec, key, &idx, &via_file)) {
                return 0;
            }
            return inst->lines[idx];
        }
    }
    return 0;
}

const char *np_config_path(const struct np_config *cfg)
{
    return cfg ? cfg->path : NULL;
}

/* ---- describe ---- */

static void np_describe_range(const struct np_opt *o, FILE *out)
{
    char lo[NP_UNITS_BUF], hi[NP_UNITS_BUF];
    if ((o->min == 0 && o->max == 0) ||
        !(o->type == NP_OPT_INT || o->type == NP_OPT_DURATION || o->type == NP_OPT_SIZE ||
          o->type == NP_OPT_RATE || o->type == NP_OPT_RATIO)) {
        return;
    }
    np_format_typed(o, o->min, lo, sizeof lo);
    np_format_typed(o, o->max, hi, sizeof hi);
    if (isinf(o->min) && o->min < 0) {
        fprintf(out, " up to %s", hi);
    } else if (isinf(o->max) && o->max > 0) {
        fprintf(out, " from %s", lo);
    } else {
        fprintf(out, " %s..%s", lo, hi);
    }
}

void np_config_describe(const struct np_section_spec *specs, size_t n_specs, FILE *out)
{
    for (size_t i = 0; i < n_specs; i++) {
        const struct np_section_spec *s = &specs[i];
        int w = fprintf(out, "[%s%s]", s->name, s->named ? " NAME" : "");
        fprintf(out, "%*s; %s%s%s\n", w < 32 ? 32 - w : 1, "",
                s->named ? (s->required ? "one or more" : "any number")
                         : (s->required ? "required" : "optional"),
                s->help ? ": " : "", s->help ? s->help : "");
        for (size_t j = 0; j < s->n_opts; j++) {
            const struct np_opt *o = &s->opts[j];
            const char *def = o->def ? o->def : "";
            w = fprintf(out, "%s = %s", o->name, (o->flags & NP_OPT_REQUIRED) ? "" : def);
            fprintf(out, "%*s; %s%s", w < 32 ? 32 - w : 1, "",
                    (o->flags & NP_OPT_REQUIRED) ? "required " : "",
                    (size_t)o->type < NP_NELEMS(np_type_names) ? np_type_names[o->type] : "?");
            np_describe_range(o, out);
            if (o->type == NP_OPT_ENUM && o->choices) {
                for (size_t k = 0; o->choices[k]; k++) {
                    fprintf(out, "%s%s", k ? ", " : ": ", o->choices[k]);
                }
            }
            if (o->type == NP_OPT_SECRET) {
                fprintf(out, ", or %s_file = PATH", o->name);
            }
            if (o->help) {
                fprintf(out, ". %s", o->help);
            }
            fputc('\n', out);
        }
        if (i + 1 < n_specs) {
            fputc('\n', out);
        }
    }
}
