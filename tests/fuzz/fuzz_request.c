/* libFuzzer target: arbitrary bytes as a certval.v1.ValidateRequest, the
 * message every front end sends. Unpacked with protobuf-c into one arena
 * as the server does (server/codec.h), then every chain goes through
 * validator_check_chain against the demo PKI (tenant and device profiles,
 * CRLs, the deny list and the verdict cache), as a worker would. Every
 * chain must get a verdict with a known decision; any crash or sanitizer
 * report is a bug. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certval/v1/certval.pb-c.h"
#include "codec.h"
#include "codec_diff.h"
#include "config.h"
#include "crl_cache.h"
#include "rcu_reader.h"
#include "deny_list.h"
#include "pki_gen.h"
#include "validator.h"
#include "verdict_cache.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fixed validation time: the demo PKI is made for it, so runs repeat. */
#define FUZZ_NOW INT64_C(1800000000)

static struct validator *v;
static struct revocation_sources src;
static struct crl_cache *crls;

static void die(const char *what, const char *err)
{
    fprintf(stderr, "fuzz_request: %s: %s\n", what, err);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char dir[160] = "/tmp/certval-fuzz-XXXXXX", path[320], err[1024];
    struct certval_config *cfg = NULL;
    STACK_OF(X509) *issuers = sk_X509_new_null();
    const char *crl_files[] = {"tenant-ca.crl", "device-issuing-ca.crl", "device-root.crl"};

    const char *pki = getenv("CERTVAL_FUZZ_PKI");

    (void)argc;
    (void)argv;
    /* CERTVAL_FUZZ_PKI: the demo PKI the seed corpus was made from
     * (tests/fuzz/seeds.py), so seeded chains validate and the fuzzer works
     * past signature checks. Otherwise a fresh one. */
    if (pki != NULL && strlen(pki) < 128) {
        snprintf(dir, sizeof(dir), "%s", pki);
    } else {
        if (mkdtemp(dir) == NULL)
            die("mkdtemp", "failed");
        if (demo_pki_generate(dir, FUZZ_NOW, "127.0.0.1:0", err, sizeof(err)) < 0)
            die("demo_pki_generate", err);
    }
    snprintf(path, sizeof(path), "%s/certval.yaml", dir);
    if (config_load(&cfg, path, err, sizeof(err)) < 0)
        die("config_load", err);
    if (validator_new(&v, &cfg->validator, 1, err, sizeof(err)) < 0)
        die("validator_new", err);
    certval_rcu_reader_register();
    crls = crl_cache_new();
    src.crls = crls;
    src.deny = deny_list_new();
    src.cache = verdict_cache_new(10000, 16u << 20);
    cv_append_certs(issuers, (const char *const *)cfg->validator.anchor_files,
                    cfg->validator.n_anchor_files, err, sizeof(err));
    cv_append_certs(issuers, (const char *const *)cfg->validator.intermediate_files,
                    cfg->validator.n_intermediate_files, err, sizeof(err));
    for (size_t i = 0; i < sizeof(crl_files) / sizeof(crl_files[0]); i++) {
        FILE *f;
        uint8_t buf[65536];
        size_t n;

        snprintf(path, sizeof(path), "%s/%s", dir, crl_files[i]);
        f = fopen(path, "rb");
        if (f == NULL)
            die("open", path);
        n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        if (crl_cache_add_der(crls, buf, n, issuers, path, err, sizeof(err)) < 0)
            die("crl", err);
    }
    sk_X509_pop_free(issuers, X509_free);
    config_free(cfg);
    return 0;
}

static void check_one(const Certval__V1__ChainRequest *cr, const struct codec_claims *cl)
{
    struct cv_bytes certs[64];
    struct chain_input in;
    struct verdict out;
    size_t n = cr->n_certificates < 64 ? cr->n_certificates : 64;

    memset(&in, 0, sizeof(in));
    for (size_t j = 0; j < n; j++) {
        certs[j].data = cr->certificates[j].data;
        certs[j].len = cr->certificates[j].len;
    }
    in.id = cr->id;
    in.certs = certs;
    in.n_certs = n;
    /* As certvald hands them over: with their wire lengths. */
    in.tenant_id = (struct cv_bytes){(const uint8_t *)cr->tenant_id, cl->tenant};
    in.device_id = (struct cv_bytes){(const uint8_t *)cr->device_id, cl->device};
    in.user_id = (struct cv_bytes){(const uint8_t *)cr->user_id, cl->user};
    validator_check_chain(v, &src, &out, &in, FUZZ_NOW);
    if (out.id != cr->id || out.decision < DECISION_ALLOW || out.decision > DECISION_DENY ||
        out.reason > VERDICT_REASON_MAX ||
        (out.decision == DECISION_DENY) == (out.reason == VERDICT_REASON_OK))
        abort(); /* every chain gets a well-formed verdict */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct codec_request rq;
    char why[200];

    /* certvald's decoder must read these bytes as protobuf-c does. */
    if (codec_diff(data, size, why, sizeof(why)) < 0) {
        fprintf(stderr, "fuzz_request: decoder and protobuf-c disagree: %s\n", why);
        abort();
    }
    /* As certvald decodes it: into one arena, at most 1024 chains (the
     * default max_chains_per_batch). */
    if (codec_request_unpack(&rq, data, size, 1024) < 0)
        return 0; /* the server answers INVALID_ARGUMENT (or RESOURCE_EXHAUSTED) */
    for (size_t i = 0; i < rq.req->n_chains && i < 64; i++)
        check_one(rq.req->chains[i], &rq.claims[i]);
    codec_request_free(&rq);
    return 0;
}
