/* NIST PKITS sections 4.4, 4.5, 4.14 and 4.15 through the service's
 * revocation path (RFC 5280 6.3 over the CRL cache).
 *
 * For every manifest row of those sections (CERTVAL_PKITS_DIR/manifest.tsv,
 * format in the README next to it): the path is validated by path_validate
 * WITHOUT CRL checking at 2011-04-15 (1302825600), path[0] being the anchor
 * and path[1..n-2] plus other_certs untrusted candidates; then every CRL of
 * the row is loaded into a fresh struct crl_cache (crl_cache_add_der with
 * every certificate of the row as possible signers: CRLs the cache refuses,
 * a bad signature or issuer name, simply stay out), and
 * revocation_check_chain runs over the validated path with scope ALL, no
 * grace, fail-closed on stale CRLs, and other_certs plus the path as CRL
 * issuer candidates. The outcome must match `expected`, and for invalid
 * rows the reason must fall in the manifest's class.
 *
 * Each row is a test of its own, pkits_service::row_<id with _ for .>.
 * Rows known to deviate are in service_pending with the outcome they
 * produce today; a pending row that changes outcome fails its test. The
 * per-section table goes to CERTVAL_BINARY_DIR/pkits-service-results.md
 * (copied into docs/conformance.md, "Service path (CRL cache)"). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crl_cache.h"
#include "rcu_reader.h"
#include "validator.h"
#include "support/pkits_manifest.h"
#include "verdict.h"

/* A row the service path does not get right yet: what it produces today
 * ("valid" or a reason name) and why. */
static const struct pkits_pending service_pending[] = {
    {NULL, NULL, NULL},
};

static bool in_sections(const char *id)
{
    static const char *const secs[] = {"4.4.", "4.5.", "4.14.", "4.15."};
    for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]); i++)
        if (strncmp(id, secs[i], strlen(secs[i])) == 0)
            return true;
    return false;
}


static void read_file(const char *name, uint8_t **out, size_t *out_len)
{
    char path[512];
    FILE *f;
    long len;

    snprintf(path, sizeof(path), "%s/crls/%s", CERTVAL_PKITS_DIR, name);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    cr_assert(len > 0);
    rewind(f);
    *out = malloc((size_t)len);
    cr_assert_not_null(*out);
    cr_assert_eq(fread(*out, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *out_len = (size_t)len;
}

/* load_crls adds every CRL of |r| to |c|; CRLs the cache refuses are
 * counted (PKITS has CRLs with bad signatures and wrong issuers on
 * purpose). */
static unsigned load_crls(struct crl_cache *c, const struct pkits_row *r,
                          const STACK_OF(X509) * issuers)
{
    unsigned refused = 0;

    for (size_t i = 0; i < r->n_crls; i++) {
        uint8_t *der = NULL;
        size_t len = 0;
        char err[256] = "";

        read_file(r->crls[i], &der, &len);
        if (crl_cache_add_der(c, der, len, issuers, r->crls[i], err, sizeof(err)) != 0)
            refused++;
        free(der);
    }
    return refused;
}

/* run_row: the path without CRLs, then the service's revocation check.
 * Returns the reason (VERDICT_REASON_OK when valid). */
static enum verdict_reason run_row(const struct pkits_row *r, char *detail, size_t detlen)
{
    STACK_OF(X509) *anchors = sk_X509_new_null();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    STACK_OF(X509) *all = sk_X509_new_null();
    STACK_OF(X509) *leafs = sk_X509_new_null();
    struct crl_cache *c = crl_cache_new();
    struct revocation_sources src = {.crls = c};
    struct revocation_report rep;
    struct path_result res;
    struct path_options o;
    struct verdict v;
    enum verdict_reason got;

    cr_assert_not_null(c);
    pkits_row_certs(r, anchors, untrusted, leafs);
    for (size_t i = 0; i < r->n_path; i++)
        pkits_push_cert(all, r->path[i]);
    for (size_t i = 0; i < r->n_other; i++)
        pkits_push_cert(all, r->other[i]);

    pkits_path_options(&o);
    cr_assert_eq(path_validate(&res, &o, sk_X509_value(leafs, 0), anchors, untrusted, NULL), 0,
                 "%s: internal error: %s", r->id, res.detail);
    if (!res.valid) {
        got = res.reason;
        snprintf(detail, detlen, "path: %.200s", res.detail);
        goto done;
    }
    load_crls(c, r, all);
    verdict_init(&v, 0);
    if (revocation_check_chain(&v, &rep, &src, res.chain, REVOCATION_ALL, 0, STALE_FAIL_CLOSED,
                               PKITS_AT, untrusted, &o.conformance) == 0) {
        got = VERDICT_REASON_OK;
        snprintf(detail, detlen, "%s", rep.cacheable ? "" : "(not cacheable by reference)");
    } else {
        got = v.reason;
        snprintf(detail, detlen, "%s", v.detail);
    }
done:
    path_result_clear(&res);
    crl_cache_free(c);
    sk_X509_pop_free(anchors, X509_free);
    sk_X509_pop_free(untrusted, X509_free);
    sk_X509_pop_free(all, X509_free);
    sk_X509_pop_free(leafs, X509_free);
    return got;
}

/* One test per row of the four sections: pkits_service::row_4_4_1 and so
 * on, generated by tests/CMakeLists.txt (certval_pkits_rows ... 4.4 4.5
 * 4.14 4.15). */
#define PKITS_ROW(sym, row_id)                                                                     \
    Test(pkits_service, row_##sym, .init = certval_rcu_reader_register,                              \
         .fini = certval_rcu_reader_unregister)                                                      \
    {                                                                                              \
        const struct pkits_row *r = pkits_row_get(row_id);                                         \
        char detail[VERDICT_DETAIL_MAX];                                                           \
        enum verdict_reason got;                                                                   \
                                                                                                   \
        cr_assert(in_sections(r->id), "%s is outside the service sections", r->id);                \
        got = run_row(r, detail, sizeof(detail));                                                  \
        if (getenv("PKITS_SERVICE_TRACE") != NULL)                                                 \
            fprintf(stderr, "%s\t%s\t%s\t%s\n", r->id, r->expect_valid ? "valid" : r->reason,      \
                    got == VERDICT_REASON_OK ? "valid" : verdict_reason_name(got), detail);                \
        pkits_expect_row(r, got, detail, service_pending);                                         \
    }
#include "support/pkits_row_tests.inc"

/* The four sections once more, for the per-section table; the rows are
 * judged by their own tests above. Also checks that the generated tests
 * are exactly the manifest's rows of those sections. */
Test(pkits_service, results_table)
{
    static struct pkits_table t;
    size_t n = pkits_table_load(&t);
    FILE *md;

    certval_rcu_reader_register();
    t.out.counted = t.counted;
    cr_assert_eq(n, 249, "manifest has %zu rows, expected 249", n);
    for (size_t i = 0; i < n; i++) {
        const struct pkits_row *r = &t.rows[i];
        if (!in_sections(r->id))
            continue;
        cr_expect(t.out.total < n_generated_rows && strcmp(generated_rows[t.out.total], r->id) == 0,
                  "manifest row %s has no generated test: re-run cmake", r->id);
        t.counted[i] = true;
        pkits_outcome_add(&t.out, i, run_row(r, t.details[i], sizeof(t.details[i])),
                          service_pending);
    }
    /* 21 + 8 + 35 + 10 rows in sections 4.4, 4.5, 4.14, 4.15. */
    cr_expect_eq(t.out.total, 74, "%u rows in sections 4.4, 4.5, 4.14, 4.15", t.out.total);
    cr_expect_eq(n_generated_rows, t.out.total, "%zu generated row tests for %u rows",
                 n_generated_rows, t.out.total);
    pkits_expect_pending_known(service_pending, t.rows, n);

    md = fopen(CERTVAL_BINARY_DIR "/pkits-service-results.md", "w");
    cr_assert_not_null(md);
    pkits_write_results(md, &t.out);
    fprintf(md, "\nValid rows whose verdict the verdict cache may keep (re-check by "
                "reference reproduces it) are those without a detail below:\n\n"
                "| id | cacheable |\n| --- | --- |\n");
    for (size_t i = 0; i < n; i++)
        if (t.counted[i] && t.ok[i] && t.rows[i].expect_valid)
            fprintf(md, "| %s | %s |\n", t.rows[i].id, t.details[i][0] ? "no" : "yes");
    fclose(md);
    pkits_table_clear(&t);
    certval_rcu_reader_unregister();
}
