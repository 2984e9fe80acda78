/* The verified-link cache (validator/link_cache.c, issue 15 item 1): a
 * second cold chain through the same intermediate does not verify the
 * intermediate's signature again, the leaf's is verified every time, and a
 * link is never served for another issuer key. Signatures are counted by
 * pathval_signature_verifies. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "crl_cache.h"
#include "deny_list.h"
#include "pki_gen.h"
#include "pathval.h"
#include "support/clock.h"
#include "support/pki_builders.h"


struct pki {
    EVP_PKEY *kr, *kr2, *ki, *kl[2];
    X509 *root, *root2, *inter, *leaf[2];
};

static struct pki g;

static X509 *issue(const char *cn, bool ca, unsigned omit, EVP_PKEY *k, X509 *issuer, EVP_PKEY *ik)
{
    struct pki_cert_spec s = ca ? ts_ca_spec(cn, TS_NOW - TS_DAY, TS_NOW + 30 * TS_DAY)
                                : ts_leaf_spec(cn, TS_NOW - TS_DAY, TS_NOW + 30 * TS_DAY);
    struct ts_cert above = {ik, issuer};

    s.o = "Link Cache Test";
    s.eku = NULL;
    s.omit_ext = omit;
    return ts_issue(&s, k, issuer != NULL ? &above : NULL);
}

/* |omit_inter_aki|: the intermediate without authorityKeyIdentifier, so
 * that an anchor with its issuer's name but another key is a candidate. */
static void make_pki(bool omit_inter_aki)
{
    memset(&g, 0, sizeof(g));
    g.kr = pki_key_new(PKI_KEY_P256);
    g.kr2 = pki_key_new(PKI_KEY_P256);
    g.ki = pki_key_new(PKI_KEY_P256);
    g.kl[0] = pki_key_new(PKI_KEY_P256);
    g.kl[1] = pki_key_new(PKI_KEY_P256);
    g.root = issue("Link Root", true, 0, g.kr, NULL, g.kr);
    g.root2 = issue("Link Root", true, 0, g.kr2, NULL, g.kr2); /* same name, other key */
    g.inter =
        issue("Link Intermediate", true, omit_inter_aki ? PKI_EXT_AKI : 0, g.ki, g.root, g.kr);
    g.leaf[0] = issue("leaf 0", false, 0, g.kl[0], g.inter, g.ki);
    g.leaf[1] = issue("leaf 1", false, 0, g.kl[1], g.inter, g.ki);
}

static void free_pki(void)
{
    X509 *x[] = {g.root, g.root2, g.inter, g.leaf[0], g.leaf[1]};
    EVP_PKEY *k[] = {g.kr, g.kr2, g.ki, g.kl[0], g.kl[1]};
    for (size_t i = 0; i < 5; i++) {
        X509_free(x[i]);
        EVP_PKEY_free(k[i]);
    }
}

static void env_for(struct pathval_env *env, X509 *anchor)
{
    STACK_OF(X509) *a = sk_X509_new_null();
    char err[128];
    cr_assert(sk_X509_push(a, anchor));
    cr_assert_eq(pathval_env_init(env, a, err, sizeof(err)), 0, "%s", err);
    cr_assert_not_null(env->links);
    sk_X509_free(a);
}

/* verify_leaf validates leaf |i| under |env| and returns the reason; sets
 * |*sigs| to the number of signatures computed. */
static enum verdict_reason verify_leaf(const struct pathval_env *env, int i, uint64_t *sigs)
{
    char err[128];
    STACK_OF(ASN1_OBJECT) *pol =
        pathval_policies_from_oids(pathval_any_policy, 1, err, sizeof(err));
    STACK_OF(X509) *u = sk_X509_new_null();
    struct pathval_run run = {.at = TS_NOW,
                              .flags = PATHVAL_BASE_FLAGS,
                              .policies = pol,
                              .max_depth = 8,
                              .max_attempts = 4};
    struct path_result res;
    uint64_t before;
    enum verdict_reason r;

    cr_assert_not_null(pol, "%s", err);
    cr_assert(sk_X509_push(u, g.inter));
    before = atomic_load(&pathval_signature_verifies);
    cr_assert_eq(pathval_verify(&res, env, &run, g.leaf[i], u), 0, "%s", res.detail);
    *sigs = atomic_load(&pathval_signature_verifies) - before;
    r = res.reason;
    if (r != VERDICT_REASON_OK)
        cr_log_info("leaf %d: %s", i, res.detail);
    path_result_clear(&res);
    sk_X509_free(u);
    sk_ASN1_OBJECT_pop_free(pol, ASN1_OBJECT_free);
    return r;
}

Test(link_cache, second_cold_chain_pays_the_leaf_only)
{
    struct pathval_env env;
    uint64_t sigs;

    make_pki(false);
    env_for(&env, g.root);
    cr_expect_eq(verify_leaf(&env, 0, &sigs), VERDICT_REASON_OK);
    cr_expect_eq(sigs, 2, "first chain: leaf + intermediate, got %llu", (unsigned long long)sigs);
    cr_expect_eq(verify_leaf(&env, 1, &sigs), VERDICT_REASON_OK);
    cr_expect_eq(sigs, 1, "second chain through the intermediate: leaf only, got %llu",
                 (unsigned long long)sigs);
    cr_expect_eq(verify_leaf(&env, 0, &sigs), VERDICT_REASON_OK);
    cr_expect_eq(sigs, 1, "a leaf's own signature is verified every time");
    pathval_env_clear(&env);

    /* A new snapshot starts with an empty cache. */
    env_for(&env, g.root);
    cr_expect_eq(verify_leaf(&env, 1, &sigs), VERDICT_REASON_OK);
    cr_expect_eq(sigs, 2);
    pathval_env_clear(&env);
    free_pki();
}

Test(link_cache, never_served_for_another_issuer_key)
{
    struct pathval_env env1, env2;
    uint64_t sigs;
    uint8_t k1[32], k2[32];

    make_pki(true);
    cr_assert(link_cache_key(k1, g.inter, g.root));
    cr_assert(link_cache_key(k2, g.inter, g.root2));
    cr_expect_neq(memcmp(k1, k2, 32), 0, "the issuer's key is part of the key");

    env_for(&env1, g.root);
    env_for(&env2, g.root2);
    /* One cache for both trust stores: the intermediate's DER is the same,
     * only its issuer's key differs. */
    link_cache_free(env2.links);
    env2.links = env1.links;

    verify_leaf(&env1, 0, &sigs);
    cr_expect_eq(sigs, 2);
    verify_leaf(&env1, 1, &sigs);
    cr_expect_eq(sigs, 1, "the link under the real root is cached");
    cr_expect(link_cache_has(env1.links, k1));
    cr_expect_not(link_cache_has(env1.links, k2));

    /* Under the impostor root (same name, other key, the intermediate has
     * no AKI to tell them apart) the intermediate's signature is computed
     * and fails (the walk goes from the anchor down: the leaf's is not
     * reached). */
    cr_expect_eq(verify_leaf(&env2, 0, &sigs), VERDICT_REASON_BAD_SIGNATURE);
    cr_expect_eq(sigs, 1, "the intermediate under the other key, got %llu",
                 (unsigned long long)sigs);
    cr_expect_not(link_cache_has(env1.links, k2), "a failed link is never cached");

    env2.links = NULL;
    pathval_env_clear(&env2);
    pathval_env_clear(&env1);
    free_pki();
}

/* The configured certificates' memos (cert_memo.c): a link key read from
 * a memo is the key link_cache_key computes, for each configured issuer
 * of the intermediate's name (two roots of one name, two keys), computed
 * for a certificate that is not configured; the memo answers by the very
 * object only; its CRL-cache and deny-list identities and its algorithms
 * are the computed ones. */
Test(link_cache, memo_keys_are_the_computed_keys)
{
    struct pathval_env env;
    STACK_OF(X509) *a = sk_X509_new_null(), *more = sk_X509_new_null();
    const struct cert_memo *mi;
    uint8_t want[32], got[32];
    X509 *copy;
    char err[128];

    make_pki(true);
    cr_assert(sk_X509_push(a, g.root) && sk_X509_push(a, g.root2) && sk_X509_push(more, g.inter));
    cr_assert_eq(pathval_env_init(&env, a, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(pathval_env_memo(&env, more, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(env.memo.n, 3);
    mi = cert_memo_find(&env.memo, g.inter);
    cr_assert_not_null(mi);
    cr_expect_eq(mi->n_links, 2, "both roots carry the intermediate's issuer name");
    cr_expect_null(cert_memo_find(&env.memo, g.leaf[0]));
    copy = X509_dup(g.inter);
    cr_assert_not_null(copy);
    cr_expect_null(cert_memo_find(&env.memo, copy), "another object with the same bytes");

    X509 *pairs[][2] = {{g.inter, g.root}, {g.inter, g.root2}, {g.leaf[0], g.inter},
                        {g.inter, g.inter}, {copy, g.root}, {g.root, g.root}};
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        cr_assert(link_cache_key(want, pairs[i][0], pairs[i][1]));
        cr_assert(cert_memo_link_key(got, &env.memo, pairs[i][0], pairs[i][1]));
        cr_expect_eq(memcmp(want, got, 32), 0, "pair %zu", i);
        cr_assert(cert_memo_link_key(got, NULL, pairs[i][0], pairs[i][1]));
        cr_expect_eq(memcmp(want, got, 32), 0, "pair %zu without memos", i);
    }
    /* Each memo's identities as an issuer are the ones computed on use. */
    for (size_t i = 0; i < env.memo.n; i++) {
        const struct cert_memo *m = &env.memo.m[i];
        uint8_t id[CRL_CACHE_ISSUER_ID_LEN], name[32];

        cr_assert(m->has_ids, "memo %zu", i);
        cr_assert_eq(crl_cache_issuer_id(id, m->cert), 0);
        deny_list_issuer_key(name, X509_get_subject_name(m->cert));
        cr_expect_eq(memcmp(id, m->crl_issuer_id, sizeof(id)), 0, "memo %zu", i);
        cr_expect_eq(memcmp(name, m->name_sha256, sizeof(name)), 0, "memo %zu", i);
        /* ... and so are its algorithms (P-256 keys: the curve is read). */
        struct cert_algs algs;
        cert_algs_read(&algs, m->cert);
        cr_expect(m->algs.complete && algs.complete, "memo %zu", i);
        cr_expect_eq(m->algs.sig_nid, algs.sig_nid, "memo %zu", i);
        cr_expect_eq(m->algs.key_nid, NID_X9_62_id_ecPublicKey, "memo %zu", i);
        cr_expect_eq(m->algs.ec_curve, NID_X9_62_prime256v1, "memo %zu", i);
        cr_expect(m->algs.ec_named && algs.ec_named && m->algs.ec_curve == algs.ec_curve);
    }
    X509_free(copy);
    sk_X509_free(a);
    sk_X509_free(more);
    pathval_env_clear(&env);
    cr_expect_eq(env.memo.n, 0);
    free_pki();
}

/* pathval_exts_of: the leaf's decoded extensions for the leaf, a
 * configured certificate's memo for it, nothing for anything else. */
Test(link_cache, decoded_extensions_are_found_by_object)
{
    struct pathval_env env;
    STACK_OF(X509) *more = sk_X509_new_null();
    struct cert_exts leaf_exts;
    char err[128];

    make_pki(false);
    env_for(&env, g.root);
    cr_assert(sk_X509_push(more, g.inter));
    cr_assert_eq(pathval_env_memo(&env, more, err, sizeof(err)), 0, "%s", err);
    cert_exts_init(&leaf_exts, g.leaf[0]);
    const struct pathval_exts px = {.leaf = g.leaf[0], .leaf_exts = &leaf_exts, .memo = &env.memo};
    cr_expect_eq(pathval_exts_of(&px, g.leaf[0]), &leaf_exts);
    cr_expect_eq(pathval_exts_of(&px, g.inter), &cert_memo_find(&env.memo, g.inter)->exts);
    cr_expect_eq(pathval_exts_of(&px, g.root), &cert_memo_find(&env.memo, g.root)->exts);
    cr_expect_null(pathval_exts_of(&px, g.leaf[1]));
    cr_expect_null(pathval_exts_of(NULL, g.inter));
    cert_exts_clear(&leaf_exts);
    sk_X509_free(more);
    pathval_env_clear(&env);
    free_pki();
}

/* With memos the link cache works as before: the intermediate's signature
 * once, the leaf's every time, never a link under the other root's key. */
Test(link_cache, memos_change_no_signature_count)
{
    struct pathval_env env1, env2;
    STACK_OF(X509) *more = sk_X509_new_null();
    uint64_t sigs;
    char err[128];

    make_pki(true);
    cr_assert(sk_X509_push(more, g.inter));
    env_for(&env1, g.root);
    env_for(&env2, g.root2);
    cr_assert_eq(pathval_env_memo(&env1, more, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(pathval_env_memo(&env2, more, err, sizeof(err)), 0, "%s", err);
    link_cache_free(env2.links);
    env2.links = env1.links;
    /* The intermediate has no AKI (so that both roots are candidates),
     * which the strict rules refuse after the signatures: MALFORMED. */
    cr_expect_eq(verify_leaf(&env1, 0, &sigs), VERDICT_REASON_MALFORMED);
    cr_expect_eq(sigs, 2);
    cr_expect_eq(verify_leaf(&env1, 1, &sigs), VERDICT_REASON_MALFORMED);
    cr_expect_eq(sigs, 1);
    cr_expect_eq(verify_leaf(&env2, 0, &sigs), VERDICT_REASON_BAD_SIGNATURE);
    cr_expect_eq(sigs, 1, "the other root's key: computed, and refused");
    env2.links = NULL;
    sk_X509_free(more);
    pathval_env_clear(&env2);
    pathval_env_clear(&env1);
    free_pki();
}

/* The table is bounded: many distinct links fill it without growing it,
 * and every put is readable until a later one takes its slot. */
Test(link_cache, bounded_table)
{
    struct link_cache *c = link_cache_new();
    uint8_t key[32];
    size_t hits = 0;

    cr_assert_not_null(c);
    for (uint32_t i = 0; i < 100000; i++) {
        memset(key, 0, sizeof(key));
        memcpy(key, &i, sizeof(i));
        key[31] = 1;
        link_cache_put(c, key);
        cr_assert(link_cache_has(c, key));
    }
    for (uint32_t i = 0; i < 100000; i++) {
        memset(key, 0, sizeof(key));
        memcpy(key, &i, sizeof(i));
        key[31] = 1;
        hits += link_cache_has(c, key);
    }
    cr_expect_lt(hits, 100000, "a bounded table cannot hold all of them");
    cr_expect_gt(hits, 0);
    key[31] = 2;
    cr_expect_not(link_cache_has(c, key), "a key never put is a miss");
    link_cache_free(c);
}

/* Many threads writing and reading one table: a key never put is never a
 * hit, whatever slot writes it races with; a key just put by this thread
 * is a hit unless another thread took its slot. */
#define RACE_THREADS 4
#define RACE_OPS 50000

struct race_arg {
    struct link_cache *c;
    uint32_t id;
    unsigned false_hits;
};

static void *race(void *p)
{
    struct race_arg *a = p;
    uint8_t key[32], probe[32];

    for (uint32_t i = 0; i < RACE_OPS; i++) {
        uint32_t v = (i * 2654435761u) ^ a->id;
        memset(key, (int)(a->id + 1), sizeof(key));
        memcpy(key, &v, sizeof(v));
        link_cache_put(a->c, key);
        /* Same slot (same first word), one byte different at the end. */
        memcpy(probe, key, sizeof(probe));
        probe[31] ^= 0x80;
        a->false_hits += link_cache_has(a->c, probe);
    }
    return NULL;
}

Test(link_cache, concurrent_readers_and_writers)
{
    struct link_cache *c = link_cache_new();
    pthread_t t[RACE_THREADS];
    struct race_arg a[RACE_THREADS];

    cr_assert_not_null(c);
    for (uint32_t i = 0; i < RACE_THREADS; i++) {
        a[i] = (struct race_arg){.c = c, .id = i};
        cr_assert_eq(pthread_create(&t[i], NULL, race, &a[i]), 0);
    }
    for (uint32_t i = 0; i < RACE_THREADS; i++) {
        pthread_join(t[i], NULL);
        cr_expect_eq(a[i].false_hits, 0, "thread %u: a key never put was found", i);
    }
    link_cache_free(c);
}
