/* Tests of server/reload.c (compiled into this test: it is part of
 * certvald, not of a library): snapshots published and kept by held
 * references across a reload, broken files refused with the old snapshot
 * still serving, start-up readiness against the CRL cache, CRL pushes
 * accepted, refused and refused as expired, and the change hook. The
 * configuration is the demo PKI (demo_pki_generate) in a temporary folder.
 * Written against server/reload.h as it is on main when this file was added
 * (reload.c is being split in parallel, issue 10). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/mem.h>
#include <openssl/pem.h>

#include "crl_cache.h"
#include "rcu_reader.h"
#include "pki_gen.h"
#include "reload.h"
#include "support/clock.h"
#include "support/tmpdir.h"
#include "validator.h"

static char g_dir[TS_TMPDIR_MAX];
static char g_yaml[128];
static struct crl_cache *g_crls;
static int g_hook_config, g_hook_crl;

static void on_change(bool config_changed, void *arg)
{
    (void)arg;
    if (config_changed)
        g_hook_config++;
    else
        g_hook_crl++;
}

static void setup(void)
{
    char err[256];

    ts_tmpdir_make(g_dir, "reload");
    /* The real clock: reload.c judges CRL freshness at time(NULL). */
    cr_assert_eq(demo_pki_generate(g_dir, (int64_t)time(NULL), "127.0.0.1:50051", err,
                                   sizeof(err)),
                 0, "%s", err);
    ts_path(g_yaml, sizeof(g_yaml), g_dir, "certval.yaml");
    certval_rcu_reader_register();
    g_crls = crl_cache_new();
    cr_assert_not_null(g_crls);
    reload_set_crl_change_hook(on_change, NULL);
}

static void teardown(void)
{
    reload_shutdown();
    crl_cache_free(g_crls);
    certval_rcu_reader_unregister();
    ts_tmpdir_remove(g_dir);
}

TestSuite(reload, .init = setup, .fini = teardown);

static void install(void)
{
    char err[256] = "";

    cr_assert_eq(reload_file(g_yaml, g_crls, err, sizeof(err)), 0, "%s", err);
}

static void append_comment(void)
{
    FILE *f = fopen(g_yaml, "a");

    cr_assert_not_null(f);
    cr_assert_gt(fputs("# changed\n", f), -1);
    cr_assert_eq(fclose(f), 0);
}

Test(reload, a_held_snapshot_survives_the_next_reload)
{
    struct reload_snapshot *s1, *same, *s2;

    cr_assert_null(reload_acquire(), "a snapshot before any install");
    install();
    cr_expect_eq(g_hook_config, 1);
    s1 = reload_acquire();
    cr_assert_not_null(s1);
    cr_assert_not_null(s1->validator);
    cr_expect_eq(s1->n_anchors, 2);

    /* The same inputs byte for byte: the snapshot (and its version) is kept. */
    install();
    cr_expect_eq(g_hook_config, 2, "the hook runs for an unchanged reload too");
    same = reload_acquire();
    cr_expect_eq(same, s1, "an unchanged file published a new snapshot");
    reload_release(same);

    /* A changed file: a new snapshot, while s1 is still held and whole. */
    append_comment();
    install();
    s2 = reload_acquire();
    cr_assert_not_null(s2);
    cr_expect_neq(s1, s2);
    cr_expect_gt(s2->version, s1->version);
    cr_expect_eq(validator_anchor_count(s1->validator), 2);
    reload_release(s1);
    reload_release(s2);
    reload_release(NULL);
}

static void write_text(const char *name, const char *text, char *path, size_t cap)
{
    ts_path(path, cap, g_dir, name);
    ts_write_file(path, text, strlen(text));
}

Test(reload, broken_files_are_refused_and_the_old_snapshot_keeps_serving)
{
    static const struct {
        const char *name, *file, *yaml; /* yaml NULL: |file| does not exist */
    } rows[] = {
        {"missing file", "absent.yaml", NULL},
        {"not YAML", "broken.yaml", "trust: [\n"},
        {"anchor that is not a certificate", "garbage-anchor.yaml",
         "listen:\n  tcp: [\"127.0.0.1:50051\"]\ntrust:\n  anchors: [garbage.pem]\n"
         "profiles:\n  - name: tenant\n    kind: tenant\n    issuers: [garbage.pem]\n"
         "    tenant_id: {from: san_uri, prefix: \"urn:certval:tenant:\"}\n"
         "tenants:\n  - id: acme\n"},
    };
    char garbage[128], path[128], err[256];
    struct reload_snapshot *before, *now;

    install();
    before = reload_acquire();
    cr_assert_not_null(before);
    write_text("garbage.pem", "not a certificate\n", garbage, sizeof(garbage));
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        err[0] = '\0';
        if (rows[i].yaml != NULL)
            write_text(rows[i].file, rows[i].yaml, path, sizeof(path));
        else
            ts_path(path, sizeof(path), g_dir, rows[i].file);
        cr_expect_eq(reload_file(path, g_crls, err, sizeof(err)), -1, "%s: accepted",
                     rows[i].name);
        cr_expect_neq(err[0], '\0', "%s: no reason given", rows[i].name);
        now = reload_acquire();
        cr_expect_eq(now, before, "%s: the current snapshot changed", rows[i].name);
        reload_release(now);
    }
    cr_expect_eq(g_hook_config, 1, "the hook ran for a refused file");
    reload_release(before);
}

Test(reload, ready_only_when_every_checking_profile_has_its_crls)
{
    struct crl_cache *empty = crl_cache_new();
    struct reload_snapshot *s;
    char why[256] = "";

    install();
    s = reload_acquire();
    cr_assert_not_null(s);
    cr_expect(reload_revocation_ready(s, g_crls, why, sizeof(why)), "not ready: %s", why);
    why[0] = '\0';
    cr_expect(!reload_revocation_ready(s, empty, why, sizeof(why)), "ready without CRLs");
    cr_expect_neq(why[0], '\0', "no missing issuer named");
    reload_release(s);
    crl_cache_free(empty);
}

/* ca_crl_der returns a DER CRL of the demo CA |name| (NAME.pem and NAME.key
 * in the demo folder), numbered |number|, next update |next| (caller
 * frees with OPENSSL_free). */
static uint8_t *ca_crl_der(const char *name, uint64_t number, int64_t next, size_t *len)
{
    char file[160], pem[128];
    STACK_OF(X509) *certs = NULL;
    EVP_PKEY *key;
    X509_CRL *crl;
    FILE *f;
    uint8_t *der = NULL;
    uint64_t serial = 4242;
    int n;

    snprintf(file, sizeof(file), "%s.pem", name);
    ts_path(pem, sizeof(pem), g_dir, file);
    cr_assert_eq(cv_load_certs(&certs, pem, file, sizeof(file)), 0, "%s", file);
    snprintf(file, sizeof(file), "%s/%s.key", g_dir, name);
    f = fopen(file, "r");
    cr_assert_not_null(f, "%s", file);
    key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    cr_assert_not_null(key, "%s", file);
    crl = pki_crl_new(sk_X509_value(certs, 0), key, &serial, 1, (int64_t)time(NULL) - 3600, next,
                      number);
    cr_assert_not_null(crl);
    n = i2d_X509_CRL(crl, &der);
    cr_assert_gt(n, 0);
    *len = (size_t)n;
    X509_CRL_free(crl);
    EVP_PKEY_free(key);
    sk_X509_pop_free(certs, X509_free);
    return der;
}

Test(reload, crl_push_accepts_the_configured_cas_only)
{
    int64_t week = (int64_t)time(NULL) + 7 * TS_DAY;
    /* Above the demo CRLs' numbers (demo_pki numbers them by the clock). */
    uint64_t newer = (uint64_t)time(NULL) + 1000;
    char issuer[256], err[256], last[256], state[160];
    uint64_t number = 0, entries = 0, refused;
    size_t len;
    uint8_t *der;
    struct stat st;

    install();
    /* The configured tenant CA, a newer number: accepted, kept in state/crls. */
    der = ca_crl_der("tenant-ca", newer, week, &len);
    cr_expect_eq(reload_crl_push(g_crls, der, len, "admin", issuer, sizeof(issuer), &number, &entries,
                          err, sizeof(err)),
                 0, "%s", err);
    cr_expect_eq(number, newer);
    cr_expect_eq(entries, 1);
    cr_expect_neq(strstr(issuer, "CN="), NULL, "issuer %s", issuer);
    cr_expect_eq(g_hook_crl, 1, "the hook did not run for an accepted push");
    ts_path(state, sizeof(state), g_dir, "state/crls");
    cr_expect_eq(stat(state, &st), 0, "no %s", state);
    OPENSSL_free(der);

    /* The rogue CA is not configured: refused, counted, reported. */
    refused = reload_crl_refused_total();
    der = ca_crl_der("rogue-ca", 1, week, &len);
    err[0] = '\0';
    cr_expect_eq(reload_crl_push(g_crls, der, len, "admin", issuer, sizeof(issuer), &number, &entries,
                          err, sizeof(err)),
                 -1, "a CRL of an unconfigured CA accepted");
    cr_expect_neq(err[0], '\0');
    cr_expect_eq(reload_crl_refused_total(), refused + 1);
    reload_crl_last_error(last, sizeof(last));
    cr_expect_neq(last[0], '\0', "no last error");
    cr_expect_eq(g_hook_crl, 1, "the hook ran for a refused push");
    OPENSSL_free(der);

    /* Past its nextUpdate: refused by the admin path unless forced. */
    der = ca_crl_der("tenant-ca", newer + 1, (int64_t)time(NULL) - 60, &len);
    cr_expect_eq(reload_crl_push_admin(g_crls, der, len, false, issuer, sizeof(issuer), &number, &entries,
                                err, sizeof(err)),
                 RELOAD_CRL_PUSH_EXPIRED, "%s", err);
    cr_expect_eq(reload_crl_push_admin(g_crls, der, len, true, issuer, sizeof(issuer), &number, &entries,
                                err, sizeof(err)),
                 0, "forced: %s", err);
    OPENSSL_free(der);
}

/* Withdrawing a pushed CRL reads the configured CRL files again although
 * they have not changed since the install noted them (reload_crl.c's seen[]
 * table): withdraw runs without reload_lock, so it must neither skip on nor
 * write that table. Were it to consult it, nothing would be restored. */
Test(reload, withdraw_restores_the_unchanged_files_and_leaves_the_seen_table)
{
    int64_t week = (int64_t)time(NULL) + 7 * TS_DAY;
    uint64_t newer = (uint64_t)time(NULL) + 1000;
    char issuer[256], err[256] = "";
    uint64_t number = 0, entries = 0;
    size_t len, restored = 99;
    struct reload_snapshot *s;
    uint8_t *der;

    install();
    der = ca_crl_der("tenant-ca", newer, week, &len);
    cr_assert_eq(reload_crl_push(g_crls, der, len, "admin", issuer, sizeof(issuer), &number,
                                 &entries, err, sizeof(err)),
                 0, "%s", err);
    OPENSSL_free(der);

    cr_assert_eq(reload_crl_withdraw(g_crls, issuer, &restored, err, sizeof(err)), 0, "%s", err);
    cr_expect_geq(restored, 1, "the configured CRL of %s was not restored", issuer);
    cr_expect_eq(reload_crl_withdraw(g_crls, issuer, &restored, err, sizeof(err)),
                 RELOAD_CRL_PUSH_NOT_FOUND);

    /* A reload after the withdraw still finds every profile's CRL. */
    append_comment();
    install();
    s = reload_acquire();
    cr_assert_not_null(s);
    cr_expect(reload_revocation_ready(s, g_crls, err, sizeof(err)), "not ready: %s", err);
    reload_release(s);
}
