/* certval-baseline-openssl: what a front end does without certval.
 * In-process validation with OpenSSL 3, as nginx (`ssl_crl`) or HAProxy
 * (`crl-file`) would: an X509_STORE holding the trust anchors and the CRLs,
 * X509_verify_cert with X509_V_FLAG_CRL_CHECK on every presented chain.
 *
 *   certval-baseline-openssl --fixtures DIR [--mix CLASS=W,...] [--threads T]
 *       [--batch B] [--duration S] [--warmup S] [--crl-check-all] [--no-crl]
 *       [--json FILE]
 *
 * It reads the same DIR/chains.bundle as certval-load and prints the same
 * JSON shape (a "call" is one batch of B chains validated in a row, so
 * chains/s compare directly). Only path validation and revocation are
 * checked: a valid chain ending at the tenant CA counts as REQUIRE_PASSWORD,
 * any other valid chain as ALLOW (certval's tenant/device policy is not
 * re-implemented). "extra" reports the CRL load time and its heap cost.
 *
 * Linked ONLY with OpenSSL 3's libcrypto, never with certval's libraries or
 * BoringSSL (docs/architecture.md, PLATFORM.md); the start-up check below
 * refuses to run on anything else. Exit 0, 1 when it cannot run, 2 on usage. */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "lt_args.h"
#include "lt_bundle.h"
#include "lt_report.h"

#if OPENSSL_VERSION_MAJOR < 3 || defined(OPENSSL_IS_BORINGSSL)
#error "certval-baseline-openssl must be compiled against OpenSSL 3's headers"
#endif

#define BL_MAX_THREADS 16
#define BL_MAX_BATCH 4096
#define BL_PATH_MAX 4096

static const char *const bl_anchor_files[] = {"tenant-ca.pem", "device-root.pem"};
static const char *const bl_crl_files[] = {"tenant-ca.crl", "device-issuing-ca.crl",
                                           "device-root.crl"};

struct bl_opts {
    const char *fixtures, *mix_text, *json_path;
    struct lt_mix mix;
    unsigned threads, batch;
    double duration_s, warmup_s;
    bool crl_check_all, no_crl;
};

struct bl_shared {
    const struct bl_opts *o;
    const struct lt_bundle *bundle;
    X509_STORE *store;
    X509 *tenant_ca; /* to tell tenant chains from device chains */
    uint64_t t_measure, t_end;
};

struct bl_worker {
    pthread_t tid;
    struct bl_shared *sh;
    unsigned index;
    struct lt_result res;
    uint64_t last_end; /* end of the last call counted (ns), 0 = none */
    int rc;
};

/* A worker that has counted no call by t_end keeps going up to this long,
 * so that a loaded machine (a batch slower than the window) still gives
 * one measured call instead of an empty report; the report's seconds then
 * cover the window actually measured (bl_run). */
#define BL_OVERRUN_NS (30 * UINT64_C(1000000000))

/* bl_reason maps an X509_verify_cert error to a certval.v1 reason. */
static unsigned bl_reason(int err)
{
    switch (err) {
    case X509_V_ERR_CERT_REVOKED: return LT_REASON_REVOKED;
    case X509_V_ERR_CERT_HAS_EXPIRED: return LT_REASON_EXPIRED;
    case X509_V_ERR_CERT_NOT_YET_VALID: return 6;  /* NOT_YET_VALID */
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT: return LT_REASON_UNTRUSTED_ISSUER;
    case X509_V_ERR_CERT_SIGNATURE_FAILURE: return 4; /* BAD_SIGNATURE */
    case X509_V_ERR_UNABLE_TO_GET_CRL: return 8;      /* REVOCATION_UNKNOWN */
    case X509_V_ERR_CRL_HAS_EXPIRED: return 9;        /* REVOCATION_STALE */
    case X509_V_ERR_INVALID_PURPOSE: return 11;       /* EXTENDED_KEY_USAGE */
    default: return 24;                               /* INTERNAL_ERROR */
    }
}

/* bl_check validates one chain as a TLS stack would after the handshake
 * delivered it: parse every certificate, then X509_verify_cert. */
static void bl_check(struct bl_shared *sh, X509_STORE_CTX *ctx, const struct lt_chain *c,
                     unsigned *decision, unsigned *reason)
{
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509 *leaf = NULL;
    bool parsed = untrusted != NULL;

    *decision = LT_DECISION_DENY;
    *reason = LT_REASON_MALFORMED;
    for (size_t i = 0; parsed && i < c->n_certs; i++) {
        const unsigned char *p = c->cert[i];
        X509 *x = d2i_X509(NULL, &p, (long)c->cert_len[i]);

        if (x == NULL || p != c->cert[i] + c->cert_len[i]) {
            X509_free(x);
            parsed = false;
        } else if (i == 0) {
            leaf = x;
        } else if (!sk_X509_push(untrusted, x)) {
            X509_free(x);
            parsed = false;
        }
    }
    if (parsed && leaf != NULL && X509_STORE_CTX_init(ctx, sh->store, leaf, untrusted) == 1) {
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
        if (X509_verify_cert(ctx) == 1) {
            STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
            X509 *top = sk_X509_value(chain, sk_X509_num(chain) - 1);

            *decision = X509_cmp(top, sh->tenant_ca) == 0 ? LT_DECISION_REQUIRE_PASSWORD
                                                          : LT_DECISION_ALLOW;
            *reason = LT_REASON_OK;
        } else {
            *reason = bl_reason(X509_STORE_CTX_get_error(ctx));
        }
        X509_STORE_CTX_cleanup(ctx);
    }
    X509_free(leaf);
    sk_X509_pop_free(untrusted, X509_free);
}

/* One verdict of the batch in progress, committed with its batch. */
struct bl_verdict {
    unsigned char cls, decision, reason;
};

static void *bl_worker_main(void *arg)
{
    struct bl_worker *w = arg;
    struct bl_shared *sh = w->sh;
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    struct bl_verdict *batch = calloc(sh->o->batch, sizeof(*batch));
    uint64_t rng = UINT64_C(0xba5e) + w->index * UINT64_C(0x9e3779b97f4a7c15);

    w->rc = ctx != NULL && batch != NULL && lt_result_init(&w->res) == 0 ? 0 : -1;
    for (uint64_t start = lt_now_ns();
         w->rc == 0 && (start < sh->t_end || (w->res.calls == 0 && start < sh->t_end + BL_OVERRUN_NS));
         start = lt_now_ns()) {
        uint64_t now;

        for (unsigned b = 0; b < sh->o->batch; b++) {
            enum lt_class cls = lt_mix_pick(&sh->o->mix, lt_rand64(&rng));
            size_t n = lt_bundle_count(sh->bundle, cls);
            struct lt_chain c;
            unsigned d, k;

            lt_bundle_get(sh->bundle, cls, n > 1 ? (size_t)(lt_rand64(&rng) % n) : 0, &c);
            bl_check(sh, ctx, &c, &d, &k);
            batch[b] = (struct bl_verdict){(unsigned char)cls, (unsigned char)d,
                                           (unsigned char)k};
        }
        /* Like a call of certval-load: counted when it started and ended
         * inside the measured window (or, with none counted yet, the first
         * call that ends after it: BL_OVERRUN_NS). */
        now = lt_now_ns();
        if (start < sh->t_measure || (now > sh->t_end && w->res.calls > 0))
            continue;
        w->res.calls++;
        w->last_end = now;
        lt_hist_record(&w->res.lat, now - start);
        for (unsigned b = 0; b < sh->o->batch; b++)
            lt_result_verdict(&w->res, batch[b].cls, batch[b].decision, batch[b].reason);
    }
    free(batch);
    X509_STORE_CTX_free(ctx);
    return NULL;
}

static size_t bl_heap(void)
{
    struct mallinfo2 mi = mallinfo2();

    return mi.uordblks + mi.hblkhd;
}

static X509_CRL *bl_read_crl(const char *path)
{
    FILE *fp = fopen(path, "rb");
    X509_CRL *crl;

    if (fp == NULL)
        return NULL;
    crl = d2i_X509_CRL_fp(fp, NULL);
    fclose(fp);
    return crl;
}

/* bl_store_new builds the X509_STORE; |crl_s| and |crl_bytes| get the time
 * and heap the CRLs took. */
static X509_STORE *bl_store_new(struct bl_shared *sh, double *crl_s, size_t *crl_bytes)
{
    const struct bl_opts *o = sh->o;
    X509_STORE *st = X509_STORE_new();
    char path[BL_PATH_MAX];
    uint64_t t0;
    size_t h0;

    if (st == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(bl_anchor_files) / sizeof(bl_anchor_files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", o->fixtures, bl_anchor_files[i]);
        if (X509_STORE_load_file(st, path) != 1) {
            fprintf(stderr, "certval-baseline-openssl: cannot load %s\n", path);
            goto err;
        }
    }
    t0 = lt_now_ns();
    h0 = bl_heap();
    for (size_t i = 0; !o->no_crl && i < sizeof(bl_crl_files) / sizeof(bl_crl_files[0]); i++) {
        X509_CRL *crl;

        snprintf(path, sizeof(path), "%s/%s", o->fixtures, bl_crl_files[i]);
        crl = bl_read_crl(path);
        if (crl == NULL || X509_STORE_add_crl(st, crl) != 1) {
            fprintf(stderr, "certval-baseline-openssl: cannot load CRL %s\n", path);
            X509_CRL_free(crl);
            goto err;
        }
        X509_CRL_free(crl); /* the store keeps its own reference */
    }
    *crl_s = (double)(lt_now_ns() - t0) / 1e9;
    *crl_bytes = bl_heap() - h0;
    if (!o->no_crl)
        X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK |
                                     (o->crl_check_all ? X509_V_FLAG_CRL_CHECK_ALL : 0));
    return st;
err:
    X509_STORE_free(st);
    return NULL;
}

static X509 *bl_read_pem(const char *dir, const char *name)
{
    char path[BL_PATH_MAX];
    FILE *fp;
    X509 *x;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "r");
    if (fp == NULL)
        return NULL;
    x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    return x;
}

static bool bl_parse_opt(struct bl_opts *o, const char *name, const char *val)
{
    const struct lt_str_opt strs[] = {
        {"--fixtures", &o->fixtures},
        {"--mix", &o->mix_text},
        {"--json", &o->json_path},
    };
    bool ok;

    if (lt_arg_string(strs, sizeof(strs) / sizeof(strs[0]), name, val, &ok))
        return ok;
    if (val == NULL)
        return false;
    if (strcmp(name, "--threads") == 0)
        return lt_parse_uint(val, 1, BL_MAX_THREADS, &o->threads);
    if (strcmp(name, "--batch") == 0)
        return lt_parse_uint(val, 1, BL_MAX_BATCH, &o->batch);
    if (strcmp(name, "--duration") == 0)
        return lt_parse_double(val, 0.1, 3600, &o->duration_s);
    if (strcmp(name, "--warmup") == 0)
        return lt_parse_double(val, 0, 3600, &o->warmup_s);
    return false;
}

/* bl_arg is the baseline's lt_arg_fn: two flags, or an option with a value. */
static enum lt_arg bl_arg(void *ctx, const char *name, const char *val)
{
    struct bl_opts *o = ctx;

    if (strcmp(name, "--crl-check-all") == 0) {
        o->crl_check_all = true;
        return LT_ARG_FLAG;
    }
    if (strcmp(name, "--no-crl") == 0) {
        o->no_crl = true;
        return LT_ARG_FLAG;
    }
    return bl_parse_opt(o, name, val) ? LT_ARG_WITH_VALUE : LT_ARG_BAD;
}

static int bl_parse_args(struct bl_opts *o, int argc, char **argv)
{
    char err[256];

    if (lt_args_parse("certval-baseline-openssl", argc, argv, bl_arg, o) != 0)
        return -1;
    if (o->fixtures == NULL) {
        fprintf(stderr, "usage: certval-baseline-openssl --fixtures DIR [--mix CLASS=W,...]\n"
                        "         [--threads T] [--batch B] [--duration S] [--warmup S]\n"
                        "         [--crl-check-all] [--no-crl] [--json FILE]\n");
        return -1;
    }
    if (lt_mix_parse(&o->mix, o->mix_text, err, sizeof(err)) != 0) {
        fprintf(stderr, "certval-baseline-openssl: %s\n", err);
        return -1;
    }
    return 0;
}

static int bl_run(struct bl_shared *sh, const struct lt_run_info *info_in)
{
    static struct bl_worker w[BL_MAX_THREADS];
    const struct bl_opts *o = sh->o;
    struct lt_run_info info = *info_in;
    struct lt_result all;
    unsigned started = 0;
    int rc = 0;

    sh->t_measure = lt_now_ns() + (uint64_t)(o->warmup_s * 1e9);
    sh->t_end = sh->t_measure + (uint64_t)(o->duration_s * 1e9);
    for (unsigned k = 0; k < o->threads; k++) {
        w[k] = (struct bl_worker){.sh = sh, .index = k};
        if (pthread_create(&w[k].tid, NULL, bl_worker_main, &w[k]) != 0)
            break;
        started++;
    }
    if (lt_result_init(&all) != 0)
        rc = -1;
    for (unsigned k = 0; k < started; k++) {
        pthread_join(w[k].tid, NULL);
        rc |= w[k].rc;
        if (rc == 0)
            lt_result_merge(&all, &w[k].res);
        lt_result_clear(&w[k].res);
    }
    if (started != o->threads || rc != 0) {
        lt_result_clear(&all);
        return -1;
    }
    for (unsigned k = 0; k < started; k++) {
        /* A worker that ran over (BL_OVERRUN_NS) widens the window the
         * rates are computed over. */
        double s = w[k].last_end > sh->t_measure ? (double)(w[k].last_end - sh->t_measure) / 1e9 : 0;
        if (s > info.seconds)
            info.seconds = s;
    }
    if (lt_report_write("certval-baseline-openssl", o->json_path, &info, &all) != 0)
        rc = -1;
    lt_result_clear(&all);
    return rc;
}

int main(int argc, char **argv)
{
    struct bl_opts o = {.threads = 1, .batch = 64, .duration_s = 5, .warmup_s = 1,
                        .mix_text = "tenant=90,device=10"};
    struct bl_shared sh = {.o = &o};
    struct lt_bundle *bundle = NULL;
    char err[512], extra[256];
    double crl_s = 0;
    size_t crl_bytes = 0;
    int rc = 1;

    /* The library actually loaded must be OpenSSL 3, whatever the headers. */
    if (OpenSSL_version_num() < 0x30000000L ||
        strstr(OpenSSL_version(OPENSSL_VERSION), "BoringSSL") != NULL) {
        fprintf(stderr, "certval-baseline-openssl: not running on OpenSSL 3 (%s)\n",
                OpenSSL_version(OPENSSL_VERSION));
        return 1;
    }
    if (bl_parse_args(&o, argc, argv) != 0)
        return 2;
    if (lt_fixtures_open(&bundle, &o.mix, o.fixtures, err, sizeof(err)) != 0) {
        fprintf(stderr, "certval-baseline-openssl: %s\n", err);
        goto err;
    }
    sh.bundle = bundle;
    sh.tenant_ca = bl_read_pem(o.fixtures, "tenant-ca.pem");
    sh.store = sh.tenant_ca != NULL ? bl_store_new(&sh, &crl_s, &crl_bytes) : NULL;
    if (sh.store == NULL) {
        fprintf(stderr, "certval-baseline-openssl: cannot set up the X509_STORE from %s\n",
                o.fixtures);
        goto err;
    }
    snprintf(extra, sizeof(extra),
             "{\"openssl\": \"%s\", \"crl_load_s\": %.3f, \"crl_heap_mb\": %.1f, "
             "\"crl_check_all\": %s}",
             OpenSSL_version(OPENSSL_VERSION), crl_s, (double)crl_bytes / 1048576.0,
             o.crl_check_all ? "true" : "false");
    {
        struct lt_run_info info = {
            .tool = "certval-baseline-openssl", .mode = "in-process",
            .api = "X509_verify_cert", .target = "in-process", .fixtures = o.fixtures,
            .mix = o.mix_text, .channels = 0, .concurrency = o.threads, .batch = o.batch,
            .threads = o.threads, .warmup_s = o.warmup_s, .seconds = o.duration_s,
            .extra_json = extra,
        };

        rc = bl_run(&sh, &info) == 0 ? 0 : 1;
    }
err:
    X509_STORE_free(sh.store);
    X509_free(sh.tenant_ca);
    lt_bundle_free(bundle);
    return rc;
}
