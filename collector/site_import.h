/* site_import: the district's site inventory from a CSV file into state_db
 * (`netpulse site import FILE.csv`).
 *
 * Format: RFC 4180 CSV parsed by libcsv in strict mode — fields separated by
 * commas, a field with a comma, a quote or a line break is enclosed in double
 * quotes and its quotes are doubled; CRLF or LF line ends; blank lines are
 * skipped; a UTF-8 byte order mark (Excel's "CSV UTF-8") is skipped. The file
 * must be UTF-8.
 *
 * The first row is the header. Columns, in any order, matched ignoring case:
 *   id             required; the site id (state_db.h rules), unique in the file
 *   name           required; non-empty
 *   school_type    required; elementary, middle, high or other
 *   circuit_rate   optional; provisioned rate with a unit ("1Gbps", "500Mbps")
 *   baseline_rate  optional; the rate in the baseline year, same form
 *   baseline_year  optional; 1990..2100
 *   contacts       optional; free text (e-mail addresses)
 * An empty optional cell or an absent optional column means "not known". Each
 * row creates the site or replaces all its fields (a stub made by enrolment
 * becomes a real site). Unknown or duplicate columns are errors.
 *
 * All or nothing: every row goes into one transaction; the first error stops
 * the import and rolls everything back. err->msg then reads
 * "FILE:LINE:COLUMN: message" (LINE and COLUMN 1-based, COLUMN counting
 * characters, of the offending cell; a cell with line breaks is reported where
 * it starts). Limits: the file at most NP_SITE_IMPORT_MAX_FILE bytes, at most
 * NP_SITE_IMPORT_MAX_ROWS rows, a cell at most NP_SITE_IMPORT_MAX_CELL bytes.
 *
 * Threads: uses db (see state_db.h); blocks on file and database I/O.
 * Errors: NP_ECONFIG (the file's content; message as above), -errno (cannot
 * read the file), NP_ETOOBIG (over a limit), NP_EDB, -ENOMEM. */
#ifndef NP_COLLECTOR_SITE_IMPORT_H
#define NP_COLLECTOR_SITE_IMPORT_H

#include "netpulse/err.h"
#include "state_db.h"

#include <stddef.h>

#define NP_SITE_IMPORT_MAX_FILE (16u << 20)
#define NP_SITE_IMPORT_MAX_ROWS 100000
#define NP_SITE_IMPORT_MAX_CELL 4096

struct np_site_import_result {
    size_t rows;    /* data rows imported */
    size_t created; /* of which new sites */
    size_t updated; /* of which existing sites (or stubs) replaced */
};

/* Imports the CSV file at path (borrowed). res may be NULL. */
int np_site_import_file(struct np_state_db *db, const char *path, struct np_site_import_result *res,
                        struct np_err *err);

/* Same on data[0..len) (borrowed); name prefixes error messages. */
int np_site_import_buffer(struct np_state_db *db, const char *data, size_t len, const char *name,
                          struct np_site_import_result *res, struct np_err *err);

#endif
