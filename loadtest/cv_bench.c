/* cv_bench: one chain through validator_check_chain in a loop, in process,
 * for callgrind (valgrind cannot run certvald). The configuration and the
 * CRLs are a fixture folder's (certval-fixtures); the chain is the bundle's
 * first chain of the class asked for.
 *
 *   cv_bench DIR tenant|device [--cold] [--iterations N]
 *
 * --cold runs without a verdict cache (every iteration parses, validates
 * the path and checks signatures); otherwise the first iteration fills the
 * cache and the rest are hits. Prints the verdict of the last iteration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include "config.h"
#include "crl_cache.h"
#include "rcu_reader.h"
#include "deny_list.h"
#include "lt_bundle.h"
#include "validator.h"
#include "verdict_cache.h"

static int load_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    long n;

    if (f == NULL)
        return -1;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
        (*out = malloc((size_t)n + 1)) == NULL || fread(*out, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        return -1;
    }
    fclose(f);
    *len = (size_t)n;
    return 0;
}

int main(int argc, char **argv)
{
    const char *pems[] = {"tenant-ca.pem", "device-root.pem", "device-issuing-ca.pem"};
    char err[256], path[4096];
    struct certval_config *cfg = NULL;
    struct validator *v = NULL;
    struct lt_bundle *bundle = NULL;
    struct revocation_sources src = {0};
    struct crl_cache *crls = crl_cache_new();
    struct deny_list *deny = deny_list_new();
    STACK_OF(X509) *issuers = sk_X509_new_null();
    struct cv_bytes certs[LT_BUNDLE_MAX_CERTS];
    struct chain_input in;
    struct lt_chain ch;
    struct verdict out;
    long iterations = 1000;
    bool cold = false;
    enum lt_class cls;

    if (argc < 3) {
        fprintf(stderr, "usage: cv_bench DIR tenant|device [--cold] [--iterations N]\n");
        return 2;
    }
    cls = strcmp(argv[2], "tenant") == 0 ? LT_CLASS_TENANT : LT_CLASS_DEVICE;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--cold") == 0)
            cold = true;
        else if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc)
            iterations = atol(argv[++i]);
    }
    snprintf(path, sizeof(path), "%s/certval.yaml", argv[1]);
    if (config_load(&cfg, path, err, sizeof(err)) < 0 ||
        validator_new(&v, &cfg->validator, 1, err, sizeof(err)) < 0) {
        fprintf(stderr, "cv_bench: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < sizeof(pems) / sizeof(pems[0]); i++) {
        const char *one[1] = {path};

        snprintf(path, sizeof(path), "%s/%s", argv[1], pems[i]);
        if (issuers == NULL || cv_append_certs(issuers, one, 1, err, sizeof(err)) < 0) {
            fprintf(stderr, "cv_bench: %s\n", err);
            return 1;
        }
    }
    src.crls = crls;
    src.deny = deny;
    if (!cold)
        src.cache = verdict_cache_new(1000, 1 << 20);
    certval_rcu_reader_register();
    for (size_t i = 0; i < cfg->n_crl_files; i++) {
        uint8_t *der;
        size_t len;

        if (cfg->crl_files[i][0] == '/')
            snprintf(path, sizeof(path), "%s", cfg->crl_files[i]);
        else
            snprintf(path, sizeof(path), "%s/%s", argv[1], cfg->crl_files[i]);
        if (load_file(path, &der, &len) < 0 ||
            crl_cache_add_der(crls, der, len, issuers, path, err, sizeof(err)) < 0) {
            fprintf(stderr, "cv_bench: %s: %s\n", path, err);
            return 1;
        }
        free(der);
    }
    snprintf(path, sizeof(path), "%s/chains.bundle", argv[1]);
    if (lt_bundle_open(&bundle, path, err, sizeof(err)) < 0 ||
        lt_bundle_get(bundle, cls, 0, &ch) < 0) {
        fprintf(stderr, "cv_bench: %s\n", err);
        return 1;
    }
    memset(&in, 0, sizeof(in));
    for (size_t j = 0; j < ch.n_certs; j++)
        certs[j] = (struct cv_bytes){ch.cert[j], ch.cert_len[j]};
    in.certs = certs;
    in.n_certs = ch.n_certs;
    in.tenant_id = (struct cv_bytes){(const uint8_t *)ch.tenant, ch.tenant_len};
    in.device_id = (struct cv_bytes){(const uint8_t *)ch.device, ch.device_len};
    for (long i = 0; i < iterations; i++)
        validator_check_chain(v, &src, &out, &in, (int64_t)time(NULL));
    printf("cv_bench: %ld x %s chain of %zu certificate(s), %s: decision %d reason %d %s\n",
           iterations, argv[2], ch.n_certs, cold ? "cold" : "cache", (int)out.decision,
           (int)out.reason, out.detail);
    certval_rcu_reader_unregister();
    lt_bundle_free(bundle);
    verdict_cache_free(src.cache);
    deny_list_free(deny);
    crl_cache_free(crls);
    sk_X509_pop_free(issuers, X509_free);
    validator_free(v);
    config_free(cfg);
    return 0;
}
