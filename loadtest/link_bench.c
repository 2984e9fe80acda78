/* link_bench: the instructions of one cold validation (a leaf never seen
 * before, through an intermediate the snapshot has seen) in pathval, with
 * and without the verified-link cache (validator/link_cache.c). Run under
 * callgrind, which counts only the cold chains (docs/benchmarks.md,
 * "Link reuse"):
 *
 *   valgrind --tool=callgrind --collect-atstart=no \
 *       build/loadtest/link_bench --key rsa|p256 [--no-link-cache]
 *
 * Prints the signatures computed per chain. Exits non-zero when a chain
 * does not validate. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_TOGGLE_COLLECT
#endif

#include "pki_gen.h"
#include "pathval.h"

#define NOW 1795305600
#define DAY 86400
#define CHAINS 8

static X509 *issue(const char *cn, uint64_t serial, bool ca, EVP_PKEY *k, X509 *issuer,
                   EVP_PKEY *ik)
{
    struct pki_cert_spec s = {.cn = cn,
                              .o = "link_bench",
                              .serial = serial,
                              .not_before = NOW - DAY,
                              .not_after = NOW + 30 * DAY,
                              .is_ca = ca,
                              .path_len = -1,
                              .key_usage = ca ? PKI_KU_KEY_CERT_SIGN | PKI_KU_CRL_SIGN
                                              : PKI_KU_DIGITAL_SIGNATURE,
                              .eku = ca ? NULL : "1.3.6.1.5.5.7.3.2"};
    return pki_issue(&s, k, issuer, ik);
}

/* measure validates |n| leaves, each once: what callgrind counts. */
__attribute__((noinline)) static int measure(const struct pathval_env *env,
                                             const struct pathval_run *run, X509 **leaves, size_t n,
                                             STACK_OF(X509) * untrusted)
{
    int bad = 0;

    for (size_t i = 0; i < n; i++) {
        struct path_result res;
        if (pathval_verify(&res, env, run, leaves[i], untrusted) != 0 || !res.valid) {
            fprintf(stderr, "link_bench: chain %zu: %s\n", i, res.detail);
            bad++;
        }
        path_result_clear(&res);
    }
    return bad;
}

int main(int argc, char **argv)
{
    enum pki_key_type kt = PKI_KEY_P256;
    bool no_cache = false;
    EVP_PKEY *kr, *ki, *kl;
    X509 *root, *inter, *warm, *leaves[CHAINS];
    STACK_OF(X509) *anchors = sk_X509_new_null(), *u = sk_X509_new_null();
    STACK_OF(ASN1_OBJECT) * pol;
    struct pathval_env env;
    struct pathval_run run;
    char err[128];
    uint64_t before;
    int bad;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
            i++;
            if (strcmp(argv[i], "rsa") == 0)
                kt = PKI_KEY_RSA2048;
            else if (strcmp(argv[i], "p256") == 0)
                kt = PKI_KEY_P256;
            else
                goto usage;
        } else if (strcmp(argv[i], "--no-link-cache") == 0) {
            no_cache = true;
        } else {
            goto usage;
        }
    }
    kr = pki_key_new(kt);
    ki = pki_key_new(kt);
    kl = pki_key_new(kt);
    if (kr == NULL || ki == NULL || kl == NULL)
        return 2;
    root = issue("link_bench root", 1, true, kr, NULL, kr);
    inter = issue("link_bench intermediate", 2, true, ki, root, kr);
    warm = issue("warm-up leaf", 3, false, kl, inter, ki);
    for (size_t i = 0; i < CHAINS; i++)
        leaves[i] = issue("cold leaf", 100 + i, false, kl, inter, ki);
    if (root == NULL || inter == NULL || warm == NULL || !sk_X509_push(anchors, root) ||
        !sk_X509_push(u, inter))
        return 2;
    if (pathval_env_init(&env, anchors, err, sizeof(err)) != 0) {
        fprintf(stderr, "link_bench: %s\n", err);
        return 2;
    }
    if (no_cache) {
        link_cache_free(env.links);
        env.links = NULL;
    }
    pol = pathval_policies_from_oids(pathval_any_policy, 1, err, sizeof(err));
    memset(&run, 0, sizeof(run));
    run.at = NOW;
    run.flags = PATHVAL_BASE_FLAGS;
    run.policies = pol;
    run.purpose = X509_PURPOSE_SSL_CLIENT;
    run.max_depth = 8;
    /* The snapshot's first chain: fills the link cache and any lazy state. */
    {
        struct path_result res;
        bad = pathval_verify(&res, &env, &run, warm, u) != 0 || !res.valid;
        path_result_clear(&res);
    }
    before = atomic_load(&pathval_signature_verifies);
    CALLGRIND_TOGGLE_COLLECT;
    bad += measure(&env, &run, leaves, CHAINS, u);
    CALLGRIND_TOGGLE_COLLECT;
    printf("%s, link cache %s: %d cold chains, %.2f signatures per chain\n",
           kt == PKI_KEY_RSA2048 ? "RSA-2048" : "P-256", no_cache ? "off" : "on", CHAINS,
           (double)(atomic_load(&pathval_signature_verifies) - before) / CHAINS);
    pathval_env_clear(&env);
    sk_ASN1_OBJECT_pop_free(pol, ASN1_OBJECT_free);
    return bad != 0;
usage:
    fprintf(stderr, "usage: link_bench [--key rsa|p256] [--no-link-cache]\n");
    return 2;
}
