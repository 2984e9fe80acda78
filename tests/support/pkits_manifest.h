/* Test support: the NIST PKITS manifest (../shared/testdata/pkits, format
 * in its README) for tests/test_pkits.c and tests/test_pkits_service.c.
 * Criterion assertions stop the calling test on a bad manifest or file. */
#ifndef CERTVAL_TEST_PKITS_MANIFEST_H
#define CERTVAL_TEST_PKITS_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <openssl/base.h>
#include <openssl/x509.h>

#include "verdict-t.h"

#define PKITS_AT 1302825600 /* 2011-04-15, as BoringSSL's harness */
#define PKITS_MAX_ROWS 300
#define PKITS_MAX_LIST 16
#define PKITS_MAX_SECTIONS 32

struct pkits_row {
    char id[16];
    char name[96];
    char *path[PKITS_MAX_LIST]; /* trust anchor first, target last */
    size_t n_path;
    char *other[PKITS_MAX_LIST]; /* other_certs: extra untrusted candidates */
    size_t n_other;
    char *crls[PKITS_MAX_LIST];
    size_t n_crls;
    char *policies[PKITS_MAX_LIST]; /* initial policy set */
    size_t n_policies;
    bool explicit_policy, inhibit_map, inhibit_any;
    bool expect_valid;
    char reason[32]; /* manifest reason class for invalid rows */
};

/* pkits_load_manifest reads every row into |rows| (at most
 * PKITS_MAX_ROWS); the row strings live in |store| (one strdup per row,
 * never freed: the test process ends). Returns the row count. */
size_t pkits_load_manifest(struct pkits_row *rows, char **store);

/* pkits_class_matches: is |r| one of the reasons manifest class |cls|
 * allows? */
bool pkits_class_matches(const char *cls, enum verdict_reason r);

/* pkits_push_cert appends the certificate certs/NAME to |sk|. */
void pkits_push_cert(STACK_OF(X509) *sk, const char *name);

/* pkits_row_certs splits row |r|'s certificates: its trust anchor onto
 * |anchors|, the path between and the other_certs onto |untrusted|, its
 * target onto |leafs|. */
void pkits_row_certs(const struct pkits_row *r, STACK_OF(X509) *anchors,
                     STACK_OF(X509) *untrusted, STACK_OF(X509) *leafs);

struct path_options;

/* pkits_path_options sets |o| for a PKITS run at PKITS_AT, any purpose,
 * under the legacy algorithm policy with compat, no CRL check and no
 * policy input (the caller adds those it uses). */
void pkits_path_options(struct path_options *o);

/* A row a test does not get right yet: what it produces today ("valid" or
 * a reason name) and why. Tables end with an all-NULL entry. */
struct pkits_pending {
    const char *id;
    const char *observed;
    const char *cause;
};

/* pkits_pending_find returns |id|'s entry in |table|, or NULL. */
const struct pkits_pending *pkits_pending_find(const struct pkits_pending *table, const char *id);

/* pkits_row_get returns manifest row |id|, the manifest read once per
 * process; the test fails when there is no such row. */
const struct pkits_row *pkits_row_get(const char *id);

/* pkits_row_ok: does outcome |got| conform to row |r|'s expectation? */
bool pkits_row_ok(const struct pkits_row *r, enum verdict_reason got);

/* pkits_expect_row states the test's expectation for row |r| with outcome
 * |got| (|detail| says why): it conforms, or, when |r| is in |pending|, it
 * still produces the pending outcome. Messages start with the row id. */
void pkits_expect_row(const struct pkits_row *r, enum verdict_reason got, const char *detail,
                      const struct pkits_pending *pending);

/* Per-section tally of a run. */
struct pkits_section {
    char sec[8]; /* "4.14" */
    unsigned total, pass, pending;
};

/* pkits_section_of returns the tally of row |id|'s section, adding it to
 * |s| (capacity at least the number of sections) when new. */
struct pkits_section *pkits_section_of(struct pkits_section *s, size_t *n, const char *id);

/* The outcome of one run, filled by pkits_outcome_add and written by
 * pkits_write_results. |counted| may be NULL (every row counted);
 * ok/observed/details are per row, |secs| has room for every section. */
struct pkits_outcome {
    const struct pkits_row *rows;
    size_t n_rows;
    const bool *counted;
    bool *ok;
    char (*observed)[32];
    char (*details)[VERDICT_DETAIL_MAX];
    struct pkits_section *secs;
    size_t n_secs;
    unsigned pass, total, pending;
};

/* A results table's storage: the manifest and every row's outcome (large:
 * make it static). out.counted is NULL (every row) unless set to counted. */
struct pkits_table {
    struct pkits_row rows[PKITS_MAX_ROWS];
    char *store[PKITS_MAX_ROWS];
    char observed[PKITS_MAX_ROWS][32];
    char details[PKITS_MAX_ROWS][VERDICT_DETAIL_MAX];
    bool ok[PKITS_MAX_ROWS], counted[PKITS_MAX_ROWS];
    struct pkits_section secs[PKITS_MAX_SECTIONS];
    struct pkits_outcome out;
};

/* pkits_table_load reads the manifest into |t| and readies t->out for
 * pkits_outcome_add; returns the row count. pkits_table_clear frees the
 * row strings. */
size_t pkits_table_load(struct pkits_table *t);
void pkits_table_clear(struct pkits_table *t);

/* pkits_outcome_add records that row |i| of |o| produced |got|: its
 * observed name, whether it conforms, its section's tally, and whether
 * |pending| lists it. */
void pkits_outcome_add(struct pkits_outcome *o, size_t i, enum verdict_reason got,
                       const struct pkits_pending *pending);

/* pkits_expect_pending_known expects every id of |pending| to be one of
 * the |n| |rows|. */
void pkits_expect_pending_known(const struct pkits_pending *pending, const struct pkits_row *rows,
                                size_t n);

/* pkits_write_results writes the per-section table and the deviations
 * (Markdown) to |md|. */
void pkits_write_results(FILE *md, const struct pkits_outcome *o);

#endif
