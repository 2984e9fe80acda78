/* Tests of validator/revocation.c through its public entry point,
 * revocation_check_chain (validator.h), on a generated root -> CA -> leaf
 * path: the scope (none, leaf, all), a missing, clean, listing or stale
 * CRL, the grace period and the stale policy. One table; each row builds a
 * fresh CRL cache. Written against the API of validator.h as it is on main
 * when this file was added (revocation.c is being restructured, issue 10). */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/mem.h>

#include "crl_cache.h"
#include "rcu_reader.h"
#include "support/clock.h"
#include "support/pki_builders.h"
#include "validator.h"
#include "verdict.h"

enum { ROOT = 0, CA = 1, LEAF = 2 };
#define CA_SERIAL 2
#define LEAF_SERIAL 1001

/* What one issuer's CRL is in a row. */
enum crl_kind {
    CRL_NONE,   /* no CRL from this issuer */
    CRL_CLEAN,  /* lists another serial only */
    CRL_LISTS,  /* lists the certificate below the issuer */
    CRL_STALE,  /* clean, but nextUpdate was a minute ago */
};

static struct ts_chain g_path;

static void setup(void)
{
    struct pki_cert_spec s[3] = {
        ts_ca_spec("Revocation Root", TS_NOW - 30 * TS_DAY, TS_NOW + 3650 * TS_DAY),
        ts_ca_spec("Revocation CA", TS_NOW - 30 * TS_DAY, TS_NOW + 3650 * TS_DAY),
        ts_leaf_spec("alice", TS_NOW - TS_DAY, TS_NOW + 300 * TS_DAY),
    };

    s[CA].serial = CA_SERIAL;
    s[LEAF].serial = LEAF_SERIAL;
    ts_chain_build(&g_path, 3, s, NULL);
    certval_rcu_reader_register();
}

static void teardown(void)
{
    certval_rcu_reader_unregister();
    ts_chain_free(&g_path);
}

TestSuite(revocation, .init = setup, .fini = teardown);

/* add_crl publishes |kind| of a CRL by level |issuer| (listing |listed|
 * when CRL_LISTS) into |c|. */
static void add_crl(struct crl_cache *c, enum crl_kind kind, int issuer, uint64_t listed)
{
    uint64_t other = 77, serial = kind == CRL_LISTS ? listed : other;
    int64_t next = kind == CRL_STALE ? TS_NOW - 60 : TS_NOW + 7 * TS_DAY;
    X509_CRL *crl;
    STACK_OF(X509) *issuers;
    uint8_t *der = NULL;
    char err[256] = "";
    int len;

    if (kind == CRL_NONE)
        return;
    crl = pki_crl_new(g_path.cert[issuer], g_path.key[issuer], &serial, 1, TS_NOW - TS_DAY, next,
                      5);
    cr_assert_not_null(crl);
    len = i2d_X509_CRL(crl, &der);
    cr_assert_gt(len, 0);
    issuers = ts_stack_of(&g_path.cert[issuer], 1);
    cr_assert_eq(crl_cache_add_der(c, der, (size_t)len, issuers, "test", err, sizeof(err)), 0,
                 "%s", err);
    sk_X509_free(issuers);
    OPENSSL_free(der);
    X509_CRL_free(crl);
}

Test(revocation, scope_crls_grace_and_stale_policy)
{
    static const struct {
        const char *name;
        enum revocation_scope scope;
        enum crl_kind ca_crl, root_crl; /* CRLs by the CA (of the leaf), by the root (of the CA) */
        uint32_t grace;
        enum stale_policy on_stale;
        enum verdict_reason want; /* VERDICT_REASON_OK: returns 0 */
        bool want_stale;
    } rows[] = {
        {"scope none needs no CRL", REVOCATION_NONE, CRL_NONE, CRL_NONE, 0, STALE_FAIL_CLOSED,
         VERDICT_REASON_OK, false},
        {"scope none ignores a listing CRL", REVOCATION_NONE, CRL_LISTS, CRL_NONE, 0,
         STALE_FAIL_CLOSED, VERDICT_REASON_OK, false},
        {"leaf without a CRL of its issuer", REVOCATION_LEAF, CRL_NONE, CRL_NONE, 0,
         STALE_FAIL_CLOSED, VERDICT_REASON_REVOCATION_UNKNOWN, false},
        {"leaf under a clean CRL", REVOCATION_LEAF, CRL_CLEAN, CRL_NONE, 0, STALE_FAIL_CLOSED,
         VERDICT_REASON_OK, false},
        {"leaf listed", REVOCATION_LEAF, CRL_LISTS, CRL_NONE, 0, STALE_FAIL_CLOSED,
         VERDICT_REASON_REVOKED, false},
        {"leaf under a stale CRL, fail closed", REVOCATION_LEAF, CRL_STALE, CRL_NONE, 0,
         STALE_FAIL_CLOSED, VERDICT_REASON_REVOCATION_STALE, false},
        {"leaf under a stale CRL within the grace", REVOCATION_LEAF, CRL_STALE, CRL_NONE, 3600,
         STALE_FAIL_CLOSED, VERDICT_REASON_OK, false},
        {"leaf under a stale CRL, allow with a warning", REVOCATION_LEAF, CRL_STALE, CRL_NONE, 0,
         STALE_ALLOW_WARN, VERDICT_REASON_OK, true},
        {"leaf scope does not look at the CA", REVOCATION_LEAF, CRL_CLEAN, CRL_LISTS, 0,
         STALE_FAIL_CLOSED, VERDICT_REASON_OK, false},
        {"all: the CA listed by the root", REVOCATION_ALL, CRL_CLEAN, CRL_LISTS, 0,
         STALE_FAIL_CLOSED, VERDICT_REASON_REVOKED, false},
        {"all: no CRL from the root", REVOCATION_ALL, CRL_CLEAN, CRL_NONE, 0, STALE_FAIL_CLOSED,
         VERDICT_REASON_REVOCATION_UNKNOWN, false},
        {"all: both clean", REVOCATION_ALL, CRL_CLEAN, CRL_CLEAN, 0, STALE_FAIL_CLOSED, VERDICT_REASON_OK,
         false},
    };
    X509 *path[3] = {g_path.cert[LEAF], g_path.cert[CA], g_path.cert[ROOT]};
    STACK_OF(X509) *chain = ts_stack_of(path, 3);

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct crl_cache *c = crl_cache_new();
        struct revocation_sources src = {.crls = c};
        struct revocation_report rep;
        struct verdict v;
        int rc;

        cr_assert_not_null(c);
        add_crl(c, rows[i].ca_crl, CA, LEAF_SERIAL);
        add_crl(c, rows[i].root_crl, ROOT, CA_SERIAL);
        verdict_init(&v, 1);
        memset(&rep, 0xff, sizeof(rep));
        rc = revocation_check_chain(&v, &rep, &src, chain, rows[i].scope, rows[i].grace,
                                    rows[i].on_stale, TS_NOW, NULL, NULL);
        if (rows[i].want == VERDICT_REASON_OK) {
            cr_expect_eq(rc, 0, "%s: refused with %s (%s)", rows[i].name,
                         verdict_reason_name(v.reason), v.detail);
            cr_expect_eq(rep.stale, rows[i].want_stale, "%s: stale %d", rows[i].name, rep.stale);
            if (rows[i].want_stale)
                cr_expect_neq(rep.warning[0], '\0', "%s: no warning", rows[i].name);
        } else {
            cr_expect_eq(rc, -1, "%s: accepted", rows[i].name);
            cr_expect_eq(v.decision, DECISION_DENY, "%s", rows[i].name);
            cr_expect_eq(v.reason, rows[i].want, "%s: %s (%s), wanted %s", rows[i].name,
                         verdict_reason_name(v.reason), v.detail,
                         verdict_reason_name(rows[i].want));
        }
        crl_cache_free(c);
    }
    sk_X509_free(chain);
}

Test(revocation, no_crl_data_at_all_is_unknown_not_good)
{
    X509 *path[3] = {g_path.cert[LEAF], g_path.cert[CA], g_path.cert[ROOT]};
    STACK_OF(X509) *chain = ts_stack_of(path, 3);
    struct revocation_sources none = {0};
    struct verdict v;

    verdict_init(&v, 1);
    cr_expect_eq(revocation_check_chain(&v, NULL, &none, chain, REVOCATION_LEAF, 0,
                                        STALE_FAIL_CLOSED, TS_NOW, NULL, NULL),
                 -1);
    cr_expect_eq(v.reason, VERDICT_REASON_REVOCATION_UNKNOWN, "%s (%s)", verdict_reason_name(v.reason),
                 v.detail);
    sk_X509_free(chain);
}
