/* NIST PKITS conformance of path_validate (RFC 5280 section 6).
 *
 * Every row of CERTVAL_PKITS_DIR/manifest.tsv (format: the README next to
 * it) is validated at 2011-04-15 (1302825600) with CRL checking of the whole
 * path and the row's initial policy settings: path[0] is the trust anchor,
 * path[1..n-2] and other_certs are untrusted candidates, path[n-1] is the
 * target, every CRL is supplied. The outcome must match `expected` and, for
 * invalid rows, the reason must fall in the manifest's reason class.
 *
 * Each row is a test of its own, pkits::row_<id with _ for .> (run one
 * with --filter 'pkits/row_4_4_1'). Rows this implementation is known to
 * get wrong are listed in pkits_pending with their cause and the outcome
 * they currently produce; a pending row that stops producing that outcome
 * fails its test, so the table cannot silently rot. pkits::results_table
 * writes the per-section Markdown table to
 * CERTVAL_BINARY_DIR/pkits-results.md (copied into docs/conformance.md). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validator.h"
#include "support/pkits_manifest.h"
#include "verdict.h"

/* A row this implementation does not yet get right: what it produces today
 * ("valid" or a reason name) and why. */
static const struct pkits_pending pkits_pending[] = {
    {NULL, NULL, NULL},
};

static void push_crl(STACK_OF(X509_CRL) *sk, const char *name)
{
    char path[512], err[256];
    STACK_OF(X509_CRL) *one = NULL;
    snprintf(path, sizeof(path), "%s/crls/%s", CERTVAL_PKITS_DIR, name);
    cr_assert_eq(cv_load_crls(&one, path, err, sizeof(err)), 0, "%s", err);
    while (sk_X509_CRL_num(one) > 0)
        cr_assert(sk_X509_CRL_push(sk, sk_X509_CRL_shift(one)));
    sk_X509_CRL_free(one);
}

/* run_row validates one row; returns the reason (VERDICT_REASON_OK when valid). */
static enum verdict_reason run_row(const struct pkits_row *r, char *detail, size_t detlen)
{
    STACK_OF(X509) *anchors = sk_X509_new_null();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    STACK_OF(X509) *leafs = sk_X509_new_null();
    STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
    struct path_result res;
    struct path_options o;
    bool any_policy = r->n_policies == 1 && strcmp(r->policies[0], "2.5.29.32.0") == 0;

    pkits_row_certs(r, anchors, untrusted, leafs);
    for (size_t i = 0; i < r->n_crls; i++)
        push_crl(crls, r->crls[i]);

    pkits_path_options(&o);
    o.crl_check = CRL_CHECK_ALL;
    o.policy_oids = any_policy ? NULL : (const char *const *)r->policies;
    o.n_policy_oids = any_policy ? 0 : r->n_policies;
    o.explicit_policy = r->explicit_policy;
    o.inhibit_policy_mapping = r->inhibit_map;
    o.inhibit_any_policy = r->inhibit_any;
    cr_assert_eq(path_validate(&res, &o, sk_X509_value(leafs, 0), anchors, untrusted, crls), 0,
                 "%s: internal error: %s", r->id, res.detail);
    enum verdict_reason got = res.valid ? VERDICT_REASON_OK : res.reason;
    if (res.valid)
        cr_assert_not_null(res.chain, "%s: valid without a chain", r->id);
    snprintf(detail, detlen, "%s", res.detail);
    path_result_clear(&res);
    sk_X509_pop_free(anchors, X509_free);
    sk_X509_pop_free(untrusted, X509_free);
    sk_X509_pop_free(leafs, X509_free);
    sk_X509_CRL_pop_free(crls, X509_CRL_free);
    return got;
}

/* One test per manifest row: pkits::row_4_1_1 and so on, generated from
 * the manifest by tests/CMakeLists.txt (certval_pkits_rows). */
#define PKITS_ROW(sym, row_id)                                                                     \
    Test(pkits, row_##sym)                                                                         \
    {                                                                                              \
        const struct pkits_row *r = pkits_row_get(row_id);                                         \
        char detail[VERDICT_DETAIL_MAX];                                                           \
        enum verdict_reason got = run_row(r, detail, sizeof(detail));                              \
        pkits_expect_row(r, got, detail, pkits_pending);                                           \
    }
#include "support/pkits_row_tests.inc"

/* The whole manifest once more, for the per-section table; the rows are
 * judged by their own tests above. Also checks that the generated tests
 * cover every manifest row and that every pending id exists. */
Test(pkits, results_table)
{
    static struct pkits_table t;
    size_t n = pkits_table_load(&t);
    FILE *md;

    cr_assert_eq(n, 249, "manifest has %zu rows, expected 249", n);
    cr_assert_eq(n_generated_rows, n, "%zu generated row tests for %zu manifest rows: re-run cmake",
                 n_generated_rows, n);
    for (size_t i = 0; i < n; i++) {
        enum verdict_reason got = run_row(&t.rows[i], t.details[i], sizeof(t.details[i]));

        cr_expect_str_eq(generated_rows[i], t.rows[i].id,
                         "generated row %zu is not manifest row %zu", i, i);
        pkits_outcome_add(&t.out, i, got, pkits_pending);
    }
    pkits_expect_pending_known(pkits_pending, t.rows, n);

    md = fopen(CERTVAL_BINARY_DIR "/pkits-results.md", "w");
    cr_assert_not_null(md);
    pkits_write_results(md, &t.out);
    fclose(md);
    pkits_table_clear(&t);
}
