#include "site_import.h"

#include "netpulse/units.h"

#include <csv.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MAX_CELLS 32 /* per row; the format has 7 columns */

enum column { C_ID, C_NAME, C_TYPE, C_CIRCUIT, C_BASELINE, C_YEAR, C_CONTACTS, C_COUNT };

static const struct {
    const char *name;
    bool required;
} columns[C_COUNT] = {
    [C_ID] = {"id", true},
    [C_NAME] = {"name", true},
    [C_TYPE] = {"school_type", true},
    [C_CIRCUIT] = {"circuit_rate", false},
    [C_BASELINE] = {"baseline_rate", false},
    [C_YEAR] = {"baseline_year", false},
    [C_CONTACTS] = {"contacts", false},
};

struct cell {
    char *text; /* NUL-terminated copy */
    size_t len;
    int line, col; /* where the cell starts */
};

struct seen_id {
    char *id;
    int line, col;
};

struct importer {
    struct np_state_db *db;
    const char *name; /* for messages */
    struct np_err *err;
    int ret; /* first error; parsing stops there */

    /* Position of the byte being fed (1-based; col counts characters). */
    int line, col;
    int chars_on_line;
    /* Where the next cell starts: set from the first byte fed after a cell or
     * row ended (line breaks between rows do not start a cell). */
    bool pending_start, after_row;
    int start_line, start_col;

    struct cell cells[MAX_CELLS];
    size_t n_cells;
    bool header_done;
    size_t n_cols;
    int col_of[MAX_CELLS]; /* file column -> enum column, or -1 */
    int header_line;

    struct seen_id *ids;
    size_t n_ids, cap_ids;
    struct np_site_import_result res;
};

__attribute__((format(printf, 4, 5))) static void fail_at(struct importer *imp, int line, int col,
                                                          const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    if (imp->ret < 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    imp->ret = np_err_set(imp->err, NP_ECONFIG, "%s:%d:%d: %s", imp->name, line, col, msg);
}

static void clear_cells(struct importer *imp)
{
    for (size_t i = 0; i < imp->n_cells; i++) {
        free(imp->cells[i].text);
        imp->cells[i].text = NULL;
    }
    imp->n_cells = 0;
}

/* Bytes valid as UTF-8 (no overlongs, no surrogates); control characters
 * refused unless allow_breaks and they are tab, CR or LF. Returns the 0-based
 * character offset of the first bad one, or -1 when all are fine. */
static long bad_char(const unsigned char *s, size_t n, bool allow_breaks, const char **why)
{
    long chars = 0;
    for (size_t i = 0; i < n; chars++) {
        unsigned char c = s[i];
        size_t need;
        uint32_t cp;
        if (c < 0x80) {
            if ((c < 0x20 || c == 0x7f) &&
                !(allow_breaks && (c == '\t' || c == '\r' || c == '\n'))) {
                *why = "control character";
                return chars;
            }
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3, cp = c & 0x07;
        } else {
            *why = "not UTF-8 (save the file as \"CSV UTF-8\")";
            return chars;
        }
        if (i + need >= n) {
            *why = "not UTF-8 (save the file as \"CSV UTF-8\")";
            return chars;
        }
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                *why = "not UTF-8 (save the file as \"CSV UTF-8\")";
                return chars;
            }
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0x80 && cp <= 0x9f)) {
            *why = cp >= 0x80 && cp <= 0x9f ? "control character"
                                            : "not UTF-8 (save the file as \"CSV UTF-8\")";
            return chars;
        }
        i += need + 1;
    }
    return -1;
}

/* Copy of s without leading and trailing blanks (caller frees), NULL on OOM. */
static char *trimmed(const char *s)
{
    size_t n;
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    return strndup(s, n);
}

/* A rate cell: empty = 0 (not known); else a positive rate with a unit. */
static int parse_rate(struct importer *imp, const struct cell *c, const char *what, uint64_t *out)
{
    char *t = trimmed(c->text);
    size_t n;
    int ret = 0;
    *out = 0;
    if (!t) {
        return imp->ret = np_err_set(imp->err, -ENOMEM, "site import: out of memory");
    }
    n = strlen(t);
    if (n == 0) {
        goto out;
    }
    if (!((t[n - 1] >= 'a' && t[n - 1] <= 'z') || (t[n - 1] >= 'A' && t[n - 1] <= 'Z'))) {
        fail_at(imp, c->line, c->col, "%s \"%.40s\": give a unit, e.g. 1Gbps or 500Mbps", what, t);
        ret = -1;
    } else if (np_units_rate_bps(t, out) < 0) {
        fail_at(imp, c->line, c->col, "%s \"%.40s\": not a rate (e.g. 1Gbps, 500Mbps, 1.5Gbps)",
                what, t);
        ret = -1;
    } else if (*out == 0) {
        fail_at(imp, c->line, c->col, "%s: 0 is not a rate; leave the cell empty if not known",
                what);
        ret = -1;
    }
out:
    free(t);
    return ret;
}

static int parse_year(struct importer *imp, const struct cell *c, int *out)
{
    char *t = trimmed(c->text);
    int ret = 0;
    *out = 0;
    if (!t) {
        return imp->ret = np_err_set(imp->err, -ENOMEM, "site import: out of memory");
    }
    if (t[0]) {
        char *end = NULL;
        long v;
        errno = 0;
        v = strtol(t, &end, 10);
        if (t[0] < '0' || t[0] > '9' || errno || *end || v < 1990 || v > 2100) {
            fail_at(imp, c->line, c->col, "baseline_year \"%.40s\": a year from 1990 to 2100", t);
            ret = -1;
        } else {
            *out = (int)v;
        }
    }
    free(t);
    return ret;
}

static int add_seen_id(struct importer *imp, const struct cell *c)
{
    if (imp->n_ids == imp->cap_ids) {
        size_t cap = imp->cap_ids ? imp->cap_ids * 2 : 64;
        struct seen_id *n = realloc(imp->ids, cap * sizeof *n);
        if (!n) {
            return -ENOMEM;
        }
        imp->ids = n;
        imp->cap_ids = cap;
    }
    imp->ids[imp->n_ids].id = strdup(c->text);
    if (!imp->ids[imp->n_ids].id) {
        return -ENOMEM;
    }
    imp->ids[imp->n_ids].line = c->line;
    imp->ids[imp->n_ids].col = c->col;
    imp->n_ids++;
    return 0;
}

static void do_header(struct importer *imp)
{
    bool have[C_COUNT] = {false};
    for (size_t i = 0; i < imp->n_cells; i++) {
        const struct cell *c = &imp->cells[i];
        char *t = trimmed(c->text);
        int found = -1;
        if (!t) {
            imp->ret = np_err_set(imp->err, -ENOMEM, "site import: out of memory");
            return;
        }
        for (int k = 0; k < C_COUNT; k++) {
            if (strcasecmp(t, columns[k].name) == 0) {
                found = k;
            }
        }
        if (found < 0) {
            fail_at(imp, c->line, c->col,
                    "unknown column \"%.40s\" (columns: id, name, school_type, circuit_rate, "
                    "baseline_rate, baseline_year, contacts)",
                    t);
        } else if (have[found]) {
            fail_at(imp, c->line, c->col, "column \"%s\" given twice", columns[found].name);
        }
        free(t);
        if (imp->ret < 0) {
            return;
        }
        have[found] = true;
        imp->col_of[i] = found;
    }
    for (int k = 0; k < C_COUNT; k++) {
        if (columns[k].required && !have[k]) {
            fail_at(imp, imp->header_line, 1, "header: missing column \"%s\"", columns[k].name);
            return;
        }
    }
    imp->n_cols = imp->n_cells;
    imp->header_done = true;
}

static void do_row(struct importer *imp)
{
    const struct cell *by[C_COUNT] = {NULL};
    static const struct cell empty = {.text = (char *)"", .len = 0};
    struct np_site site = {0};
    bool created = false;
    const char *why = NULL;
    struct np_err dberr;
    int ret;

    if (imp->n_cells != imp->n_cols) {
        const struct cell *c =
            &imp->cells[imp->n_cells > imp->n_cols ? imp->n_cols : imp->n_cells - 1];
        fail_at(imp, c->line, c->col, "row has %zu cells, the header has %zu", imp->n_cells,
                imp->n_cols);
        return;
    }
    if (imp->res.rows >= NP_SITE_IMPORT_MAX_ROWS) {
        imp->ret = np_err_set(imp->err, NP_ETOOBIG, "%s:%d:1: more than %d rows", imp->name,
                              imp->cells[0].line, NP_SITE_IMPORT_MAX_ROWS);
        return;
    }
    for (size_t i = 0; i < imp->n_cells; i++) {
        const struct cell *c = &imp->cells[i];
        int k = imp->col_of[i];
        long bad = bad_char((const unsigned char *)c->text, c->len, k == C_CONTACTS, &why);
        if (bad >= 0) {
            /* Cells with line breaks are only allowed in contacts, so the
             * character offset is on the cell's first line. */
            fail_at(imp, c->line, c->col + (int)bad, "%s: %s", columns[k].name, why);
            return;
        }
        by[k] = c;
    }
    for (int k = 0; k < C_COUNT; k++) {
        if (!by[k]) {
            by[k] = &empty;
        }
    }

    site.id = by[C_ID]->text;
    if (np_state_db_check_id(site.id) < 0) {
        fail_at(imp, by[C_ID]->line, by[C_ID]->col,
                "id \"%.40s\": 1..%d characters of A-Z a-z 0-9 . _ -, not starting with . or -",
                site.id, NP_STATE_DB_MAX_ID);
        return;
    }
    site.name = by[C_NAME]->text;
    if (!site.name[0] || strspn(site.name, " \t") == by[C_NAME]->len) {
        fail_at(imp, by[C_NAME]->line, by[C_NAME]->col, "name is empty");
        return;
    }
    {
        char *t = trimmed(by[C_TYPE]->text);
        size_t n;
        if (!t) {
            imp->ret = np_err_set(imp->err, -ENOMEM, "site import: out of memory");
            return;
        }
        for (n = 0; t[n]; n++) {
            t[n] = (char)(t[n] >= 'A' && t[n] <= 'Z' ? t[n] - 'A' + 'a' : t[n]);
        }
        ret = np_school_type_parse(t, &site.school_type);
        if (ret < 0) {
            fail_at(imp, by[C_TYPE]->line, by[C_TYPE]->col,
                    "school_type \"%.40s\": elementary, middle, high or other", t);
        }
        free(t);
        if (ret < 0) {
            return;
        }
    }
    if (parse_rate(imp, by[C_CIRCUIT], "circuit_rate", &site.circuit_bps) < 0 ||
        parse_rate(imp, by[C_BASELINE], "baseline_rate", &site.baseline_bps) < 0 ||
        parse_year(imp, by[C_YEAR], &site.baseline_year) < 0) {
        return;
    }
    site.contacts = by[C_CONTACTS]->text;
    if (add_seen_id(imp, by[C_ID]) < 0) {
        imp->ret = np_err_set(imp->err, -ENOMEM, "site import: out of memory");
        return;
    }
    ret = np_state_db_site_upsert(imp->db, &site, &created, &dberr);
    if (ret < 0) {
        imp->ret = np_err_set(imp->err, ret, "%s:%d:%d: %s", imp->name, by[C_ID]->line,
                              by[C_ID]->col, dberr.msg);
        return;
    }
    imp->res.rows++;
    if (created) {
        imp->res.created++;
    } else {
        imp->res.updated++;
    }
}

static void on_cell(void *s, size_t len, void *data)
{
    struct importer *imp = data;
    struct cell *c;
    imp->pending_start = true;
    imp->after_row = false;
    if (imp->ret < 0) {
        return;
    }
    if (imp->n_cells == MAX_CELLS) {
        fail_at(imp, imp->start_line, imp->start_col, "more than %d cells in a row", MAX_CELLS);
        return;
    }
    if (len > NP_SITE_IMPORT_MAX_CELL) {
        imp->ret = np_err_set(imp->err, NP_ETOOBIG, "%s:%d:%d: cell longer than %d bytes",
                              imp->name, imp->start_line, imp->start_col, NP_SITE_IMPORT_MAX_CELL);
        return;
    }
    c = &imp->cells[imp->n_cells];
    c->text = malloc(len + 1);
    if (!c->text) {
        imp->ret = np_err_set(imp->err, -ENOMEM, "site import: out of memory");
        return;
    }
    if (len) {
        memcpy(c->text, s, len);
    }
    c->text[len] = '\0';
    c->len = len;
    c->line = imp->start_line;
    c->col = imp->start_col;
    imp->n_cells++;
}

static void on_row(int term, void *data)
{
    struct importer *imp = data;
    (void)term;
    imp->pending_start = true;
    imp->after_row = true;
    if (imp->ret == 0 && imp->n_cells > 0) {
        if (!imp->header_done) {
            imp->header_line = imp->cells[0].line;
            do_header(imp);
        } else {
            do_row(imp);
        }
    }
    clear_cells(imp);
}

static int cmp_seen(const void *a, const void *b)
{
    const struct seen_id *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c) {
        return c;
    }
    return x->line != y->line ? (x->line < y->line ? -1 : 1)
                              : (x->col > y->col) - (x->col < y->col);
}

/* The first (in file order) row whose id appeared on an earlier row. */
static void check_duplicates(struct importer *imp)
{
    const struct seen_id *worst = NULL;
    if (imp->n_ids < 2) {
        return;
    }
    qsort(imp->ids, imp->n_ids, sizeof *imp->ids, cmp_seen);
    for (size_t i = 1; i < imp->n_ids; i++) {
        if (strcmp(imp->ids[i].id, imp->ids[i - 1].id) == 0 &&
            (!worst || imp->ids[i].line < worst->line)) {
            worst = &imp->ids[i];
        }
    }
    if (worst) {
        const struct seen_id *first = worst - 1;
        while (first > imp->ids && strcmp((first - 1)->id, worst->id) == 0) {
            first--;
        }
        fail_at(imp, worst->line, worst->col, "id \"%s\" already on line %d", worst->id,
                first->line);
    }
}

int np_site_import_buffer(struct np_state_db *db, const char *data, size_t len, const char *name,
                          struct np_site_import_result *res, struct np_err *err)
{
    struct importer imp = {.db = db, .name = name ? name : "<csv>", .err = err};
    struct csv_parser parser;
    size_t i = 0;
    int ret;

    if (res) {
        *res = (struct np_site_import_result){0};
    }
    if (len > NP_SITE_IMPORT_MAX_FILE) {
        return np_err_set(err, NP_ETOOBIG, "%s: larger than %u bytes", imp.name,
                          NP_SITE_IMPORT_MAX_FILE);
    }
    if (csv_init(&parser, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
        return np_err_set(err, -ENOMEM, "site import: out of memory");
    }
    ret = np_state_db_begin(db, true, err);
    if (ret < 0) {
        goto out_free;
    }
    if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) {
        i = 3; /* UTF-8 byte order mark */
    }
    imp.line = 1;
    imp.pending_start = true;
    imp.after_row = true;
    /* One byte at a time so that the callbacks know where each cell began:
     * libcsv reports cells, not positions. An inventory is small. */
    for (; i < len && imp.ret == 0; i++) {
        unsigned char ch = (unsigned char)data[i];
        if ((ch & 0xc0) != 0x80) {
            imp.chars_on_line++;
        }
        imp.col = imp.chars_on_line;
        if (imp.pending_start && !(imp.after_row && (ch == '\r' || ch == '\n'))) {
            imp.pending_start = false;
            imp.start_line = imp.line;
            imp.start_col = imp.col;
        }
        if (ch == '\0') {
            fail_at(&imp, imp.line, imp.col, "NUL byte: not a text file");
            break;
        }
        if (csv_parse(&parser, &data[i], 1, on_cell, on_row, &imp) != 1) {
            if (csv_error(&parser) == CSV_EPARSE) {
                fail_at(&imp, imp.line, imp.col,
                        "malformed quoting: a cell with a quote must be enclosed in quotes and "
                        "its quotes doubled (RFC 4180)");
            } else {
                imp.ret =
                    np_err_set(err, -ENOMEM, "site import: %s", csv_strerror(csv_error(&parser)));
            }
            break;
        }
        if (ch == '\n') {
            imp.line++;
            imp.chars_on_line = 0;
        }
    }
    if (imp.ret == 0 && csv_fini(&parser, on_cell, on_row, &imp) != 0) {
        fail_at(&imp, imp.start_line, imp.start_col, "quoted cell not closed before the end");
    }
    if (imp.ret == 0 && !imp.header_done) {
        fail_at(&imp, 1, 1, "no header row (id,name,school_type,...)");
    }
    if (imp.ret == 0) {
        check_duplicates(&imp);
    }
    clear_cells(&imp);
    if (imp.ret == 0) {
        imp.ret = np_state_db_commit(db, err);
    } else {
        np_state_db_rollback(db);
    }
    ret = imp.ret;
    if (ret == 0 && res) {
        *res = imp.res;
    }
    for (size_t k = 0; k < imp.n_ids; k++) {
        free(imp.ids[k].id);
    }
    free(imp.ids);
out_free:
    csv_free(&parser);
    return ret;
}

int np_site_import_file(struct np_state_db *db, const char *path, struct np_site_import_result *res,
                        struct np_err *err)
{
    FILE *f;
    struct stat st;
    char *buf = NULL;
    size_t n;
    int ret;

    f = fopen(path, "rb");
    if (!f) {
        ret = -errno;
        return np_err_set(err, ret, "%s: %s", path, np_strerror(ret));
    }
    if (fstat(fileno(f), &st) < 0) {
        ret = -errno;
        np_err_set(err, ret, "%s: %s", path, np_strerror(ret));
        goto out_close;
    }
    if (!S_ISREG(st.st_mode)) {
        ret = np_err_set(err, -EINVAL, "%s: not a regular file", path);
        goto out_close;
    }
    if ((uint64_t)st.st_size > NP_SITE_IMPORT_MAX_FILE) {
        ret =
            np_err_set(err, NP_ETOOBIG, "%s: larger than %u bytes", path, NP_SITE_IMPORT_MAX_FILE);
        goto out_close;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        ret = np_err_set(err, -ENOMEM, "site import: out of memory");
        goto out_close;
    }
    n = fread(buf, 1, (size_t)st.st_size, f);
    if (n != (size_t)st.st_size || ferror(f)) {
        ret = np_err_set(err, -EIO, "%s: short read", path);
        goto out_free;
    }
    ret = np_site_import_buffer(db, buf, n, path, res, err);
out_free:
    free(buf);
out_close:
    fclose(f);
    return ret;
}
