/* config: INI files parsed into typed structs described by option tables.
 *
 * A program declares each section once as a struct np_section_spec with an
 * array of struct np_opt (name, type, offset of the field, default, range,
 * help). np_config_load() parses the file, applies defaults, checks types,
 * ranges, required keys and secrets, and returns an immutable struct
 * np_config that owns one filled struct per section instance. The same tables
 * drive np_config_describe() for --help and the man pages.
 *
 * File format (libinih underneath):
 *   - "[type]" starts a singleton section, "[type NAME]" a named one; NAME is
 *     1..63 characters of letters, digits and - _ . : @.
 *   - "key = value" (or "key: value") inside a section. Whitespace around keys
 *     and values is dropped; indentation is allowed and is not a continuation
 *     (multi-line values are not supported). Values are taken literally: no
 *     quoting, no escapes.
 *   - Comments: a line whose first non-blank character is ';' or '#', and the
 *     rest of a line from a ';' that follows whitespace ("version = 2c ; v2").
 *     '#' after a value is NOT a comment; it stays part of the value. A value
 *     that must contain " ;" has to come from a file (secrets: KEY_file).
 *   - A line may be at most 199 bytes (libinih's buffer, fixed in the Debian
 *     build) after trimming; the file at most NP_CONFIG_MAX_FILE bytes. A UTF-8
 *     BOM is skipped; CRLF line ends are accepted; NUL bytes are an error.
 *   - Unknown sections and keys, duplicate keys, duplicate sections, keys
 *     before any section, a name on a singleton and no name on a named section
 *     are errors.
 *
 * Errors: loading stops at the first error. err->msg then reads
 * "FILE:LINE: message" (LINE is the line in the file; a missing required key is
 * reported at its section header). Errors about the whole file (cannot read,
 * too large, a required section absent) read "FILE: message". Values of SECRET
 * options never appear in messages; other values are quoted, cut to 40
 * characters, with non-printable bytes shown as '?'.
 *
 * Threads: np_config_load*() and np_config_describe() may run in any thread,
 * concurrently (no global state is written; libinih's tunables are only
 * read). Loading does blocking file I/O (the config file, KEY_file secrets):
 * call it before the loop runs, or off the loop (uv_queue_work) for a SIGHUP
 * reload. A loaded config is immutable, so any number of threads may read it
 * until np_config_free(). */
#ifndef NP_COMMON_CONFIG_H
#define NP_COMMON_CONFIG_H

#include "netpulse/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Hard limits. */
#define NP_CONFIG_MAX_FILE 1048576   /* bytes in a config file (1 MiB) */
#define NP_CONFIG_MAX_SECRET 4096    /* bytes in a KEY_file secret file */
#define NP_CONFIG_MAX_INSTANCES 4096 /* instances of one named section */
#define NP_CONFIG_MAX_NAME 63        /* bytes in a section instance NAME */

/* Field types; the C type of the field at np_opt.offset is given for each. */
enum np_opt_type {
    NP_OPT_STRING,   /* char *, never NULL ("" when unset); owned by the config */
    NP_OPT_SECRET,   /* char *, like STRING; also settable as KEY_file = PATH (see below) */
    NP_OPT_BOOL,     /* bool: yes/no, true/false, on/off, 1/0 (any case) */
    NP_OPT_INT,      /* int64_t, decimal, optional sign */
    NP_OPT_DURATION, /* int64_t milliseconds: 500ms 10s 5m 1h 7d, bare = seconds */
    NP_OPT_SIZE,     /* uint64_t bytes: 64KiB 256MiB 1GiB, KB/MB/GB decimal, bare = bytes */
    NP_OPT_RATE,     /* uint64_t bits/s: 9600bps 512kbps 100Mbps 1.5Gbps, bare = bps */
    NP_OPT_RATIO,    /* double: 99.5% = 0.995, 400% = 4.0, bare 0.995 */
    NP_OPT_ENUM,     /* int: index into choices, matched ignoring ASCII case */
    NP_OPT_LIST,     /* struct np_strlist: comma-separated, items trimmed, none empty */
};

/* Option flags. */
#define NP_OPT_REQUIRED 0x1u /* must be set in the file; a default is then only documentation */

/* One option of a section; declare a const array of these once per section.
 * SECRET options: "KEY = value" inline, or "KEY_file = PATH" to read the first
 * line of PATH (trailing CR/LF dropped; at most NP_CONFIG_MAX_SECRET bytes; a
 * regular file; relative PATH is relative to the config file's folder). Giving
 * both is an error. The KEY_file form needs no entry of its own. */
struct np_opt {
    const char *name; /* key, e.g. "interval" */
    enum np_opt_type type;
    size_t offset;              /* offsetof(struct my_section, field) */
    const char *def;            /* default as text ("60s"); NULL: "" / 0 / false / empty list */
    double min, max;            /* INT, DURATION (ms), SIZE, RATE, RATIO: inclusive range;
                                 * min == max == 0: unchecked; +-INFINITY for an open end */
    const char *const *choices; /* ENUM: NULL-terminated; the field gets the index */
    unsigned flags;             /* NP_OPT_REQUIRED */
    const char *help;           /* one line, for np_config_describe() */
};

/* A LIST field. items[0..count) are owned by the config; items is NULL when
 * count is 0. */
struct np_strlist {
    char **items;
    size_t count;
};

struct np_section_spec {
    const char *name;   /* "agent", "snmp", ... */
    bool named;         /* true: repeated "[snmp edge-router]"; false: singleton "[agent]" */
    bool required;      /* singleton: must appear; named: at least one must appear */
    size_t size;        /* sizeof the struct an instance fills */
    size_t name_offset; /* named: offsetof a char * receiving NAME (owned by the config) */
    const struct np_opt *opts;
    size_t n_opts;
    const char *help; /* one line, for np_config_describe() */
};

/* Opaque: owns every instance struct and every string in them. */
struct np_config;

/* Loads the INI file at path against specs[0..n_specs). specs and their tables
 * are borrowed and must outlive the config (it keeps pointers to them). On
 * success *out is a new config the caller frees with np_config_free(). On error
 * *out is NULL and err (may be NULL) says why as described above.
 * Returns 0; NP_ECONFIG for any problem in the file's content (including an
 * unreadable KEY_file or an invalid spec table); -errno when the file itself
 * cannot be read; NP_ETOOBIG when it exceeds NP_CONFIG_MAX_FILE; -ENOMEM. */
int np_config_load(const char *path, const struct np_section_spec *specs, size_t n_specs,
                   struct np_config **out, struct np_err *err);

/* Same as np_config_load() on the NUL-terminated text (borrowed). name_for_errors
 * (may be NULL: "<string>") prefixes messages and is the base of relative
 * KEY_file paths. */
int np_config_load_string(const char *text, const char *name_for_errors,
                          const struct np_section_spec *specs, size_t n_specs,
                          struct np_config **out, struct np_err *err);

/* Frees cfg and everything it owns; secret values are wiped first. Accepts NULL. */
void np_config_free(struct np_config *cfg);

/* The instance struct of singleton section `section`: always present, defaults
 * applied when the file lacks the section. NULL for an unknown or a named
 * section. Borrowed from cfg. */
const void *np_config_section(const struct np_config *cfg, const char *section);

/* Instances of `section` in the file: named sections their count, singletons 1,
 * unknown names 0. */
size_t np_config_count(const struct np_config *cfg, const char *section);

/* The i-th instance of `section` in file order (a singleton's only one at i 0);
 * NULL when out of range or unknown. Borrowed from cfg. */
const void *np_config_instance(const struct np_config *cfg, const char *section, size_t i);

/* Line where key was set in instance (for a SECRET also "KEY_file"), or where
 * its section header is when key is NULL. 0 when from the default (or the
 * singleton is absent from the file), or when instance or key is unknown. */
int np_config_line(const struct np_config *cfg, const void *instance, const char *key);

/* The path (or name_for_errors) the config was loaded from. Borrowed from cfg. */
const char *np_config_path(const struct np_config *cfg);

/* Writes a description of every section and option to out: type, default,
 * range, choices, required flag and help, in INI form usable as --help text or
 * as a man page section. Writes nothing else; errors of out are the caller's
 * to check with ferror(). */
void np_config_describe(const struct np_section_spec *specs, size_t n_specs, FILE *out);

#endif
