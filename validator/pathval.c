/* RFC 5280 section 6 path validation on BoringSSL's X509_verify_cert.
 *
 * BoringSSL does the per-certificate work (6.1.3 signature, validity, name
 * chaining, name constraints, policy tree; 6.1.4 basic constraints, path
 * length, key usage; 6.1.5 explicit policy). This file adds what the
 * service needs around it:
 *  - a precise mapping of X509_V_ERR_* to enum verdict_reason, with a detail
 *    that names the failing certificate and its depth (pathval_report.c);
 *  - clock-skew tolerance on notBefore/notAfter (verify callback);
 *  - a bounded retry over alternative candidate certificates: this
 *    X509_verify_cert builds one chain (trusted-first issuer lookup, plus the
 *    OpenSSL 1.0.2 "alternative chain" step only when the chain does not end
 *    at a trust anchor). When a built chain fails on a certificate that has
 *    another candidate with the same subject (a cross-signed intermediate,
 *    a bridge CA's path, a re-keyed or rotated anchor), the culprit
 *    (path_building.c) is excluded and the build is re-run, at most
 *    max_path_attempts times;
 *  - certval's own rules on every chain X509_verify_cert accepts
 *    (pathval_post_check: algorithm_policy.c, rfc5280_rules.c,
 *    name_constraints.c; hostname.c for an expected host name), a failure
 *    counting as a failed candidate. */
#include "validator_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/obj.h>
#include <openssl/x509v3.h>

#include "cert_read.h"
#include "crl_cache.h"
#include "rcu_reader.h"
#include "dsa_verify.h"
#include "verdict.h"

#define PATHVAL_DEFAULT_DEPTH 8
#define PATHVAL_DEFAULT_ATTEMPTS 16
#define PATHVAL_MAX_ATTEMPTS 64 /* hard cap: each attempt is a full chain build */

/* RFC 5280 6.1.1 (c): the default user-initial-policy-set is {anyPolicy}.
 * This BoringSSL's policy code treats an empty set as "no acceptable
 * policy" once explicit policy is required, so the default is spelled out. */
const char *const pathval_any_policy[1] = {"2.5.29.32.0"};

/* Per-run state reachable from the verify callback through app data. */
struct pathval_cb_state {
    time_t at;
    uint32_t skew;
    struct link_cache *links;
    const struct cert_memo_set *memo; /* the configured certificates'; NULL = none */
    /* Where chain_verify failed: it cannot set the context's error depth
     * or current certificate (not exported by this BoringSSL). */
    bool failed;
    int fail_depth;
    X509 *fail_cert;
};

static int chain_verify(X509_STORE_CTX *ctx);

int pathval_env_init(struct pathval_env *env, const STACK_OF(X509) *anchors, char *err,
                     size_t errlen)
{
    memset(env, 0, sizeof(*env));
    env->store = X509_STORE_new();
    env->anchors = sk_X509_new_null();
    if (env->store == NULL || env->anchors == NULL)
        goto oom;
    for (size_t i = 0; i < sk_X509_num(anchors); i++) {
        X509 *a = sk_X509_value(anchors, i);
        /* Duplicates (the same anchor in two bundles) are harmless: skip
         * the store's "already in hash table" error. */
        if (!X509_STORE_add_cert(env->store, a))
            ERR_clear_error();
        if (!sk_X509_push(env->anchors, a))
            goto oom;
        X509_up_ref(a);
        /* Fill the extension cache now, so concurrent readers never race
         * to compute it (BoringSSL locks it, but this keeps the hot path
         * free of that lock's first-use write). */
        X509_check_purpose(a, -1, 0);
    }
    env->links = link_cache_new();
    if (env->links == NULL)
        goto oom;
    X509_STORE_set_verify(env->store, chain_verify);
    return 0;
oom:
    snprintf(err, errlen, "out of memory building the trust store");
    pathval_env_clear(env);
    return -1;
}

int pathval_env_memo(struct pathval_env *env, const STACK_OF(X509) *more, char *err,
                     size_t errlen)
{
    const STACK_OF(X509) *certs[2] = {env->anchors, more};

    cert_memo_clear(&env->memo);
    return cert_memo_build(&env->memo, certs, 2, err, errlen);
}

void pathval_env_clear(struct pathval_env *env)
{
    if (env == NULL)
        return;
    cert_memo_clear(&env->memo);
    X509_STORE_free(env->store);
    link_cache_free(env->links);
    sk_X509_pop_free(env->anchors, X509_free);
    memset(env, 0, sizeof(*env));
}

STACK_OF(ASN1_OBJECT) *pathval_policies_from_oids(const char *const *oids, size_t n, char *err,
                                                  size_t errlen)
{
    STACK_OF(ASN1_OBJECT) *sk = sk_ASN1_OBJECT_new_null();

    if (sk == NULL)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        ASN1_OBJECT *o = OBJ_txt2obj(oids[i], 1); /* 1: dotted form only */
        if (o == NULL) {
            snprintf(err, errlen, "bad policy OID \"%s\"", oids[i]);
            goto err;
        }
        if (!sk_ASN1_OBJECT_push(sk, o)) {
            ASN1_OBJECT_free(o);
            goto oom;
        }
    }
    return sk;
oom:
    snprintf(err, errlen, "out of memory");
err:
    ERR_clear_error();
    sk_ASN1_OBJECT_pop_free(sk, ASN1_OBJECT_free);
    return NULL;
}

/* skew_excuses: a validity error the clock skew (or notAfter's own second)
 * excuses: notBefore <= at + skew, or notAfter >= at - skew. notAfter is
 * inclusive (RFC 5280 4.1.2.5: "valid ... through notAfter"), while
 * X509_cmp_time calls a certificate expired at exactly its notAfter. */
static bool skew_excuses(X509 *x, int err, const struct pathval_cb_state *st)
{
    if (x == NULL)
        return false;
    if (err == X509_V_ERR_CERT_NOT_YET_VALID && st->skew != 0)
        return cert_cmp_time(X509_get0_notBefore(x), (int64_t)st->at + st->skew) <= 0;
    /* notAfter > at - skew - 1, i.e. notAfter >= at - skew. */
    if (err == X509_V_ERR_CERT_HAS_EXPIRED)
        return cert_cmp_time(X509_get0_notAfter(x), (int64_t)st->at - st->skew - 1) > 0;
    return false;
}

/* The certificates above |issuer| in the chain being built, nearest first,
 * for DSA parameter inheritance. A new stack borrowing the references. */
static STACK_OF(X509) *chain_above(X509_STORE_CTX *ctx, const X509 *issuer)
{
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
    STACK_OF(X509) *above = sk_X509_new_null();
    bool seen = false;

    for (size_t i = 0; above != NULL && chain != NULL && i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);

        if (seen && !sk_X509_push(above, x))
            break;
        if (x == issuer)
            seen = true;
    }
    return above;
}

/* dsa_excuses: BoringSSL's X509 layer cannot verify DSA signatures (nor
 * decode a DSA key that inherits its parameters). When it reports a
 * signature failure on a DSA-signed certificate or CRL, verify the DSA
 * signature here; only a signature that verifies clears the error. */
static bool dsa_excuses(X509_STORE_CTX *ctx, int err)
{
    X509_CRL *crl = X509_STORE_CTX_get0_current_crl(ctx);
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
    STACK_OF(X509) *above;
    X509 *x, *issuer;
    bool ok = false;
    int d;

    if (err == X509_V_ERR_CRL_SIGNATURE_FAILURE ||
        (err == X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY && crl != NULL)) {
        issuer = X509_STORE_CTX_get0_current_issuer(ctx);
        if (crl == NULL || issuer == NULL)
            return false;
        above = chain_above(ctx, issuer);
        ok = dsa_verify_crl(crl, issuer, above);
        sk_X509_free(above);
        return ok;
    }
    if (err != X509_V_ERR_CERT_SIGNATURE_FAILURE &&
        err != X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY)
        return false;
    x = X509_STORE_CTX_get_current_cert(ctx);
    d = X509_STORE_CTX_get_error_depth(ctx);
    if (x == NULL || chain == NULL || d < 0 || (size_t)d >= sk_X509_num(chain))
        return false;
    issuer = (size_t)d + 1 < sk_X509_num(chain) ? sk_X509_value(chain, (size_t)d + 1) : x;
    above = chain_above(ctx, issuer);
    ok = dsa_verify_cert(x, issuer, above);
    sk_X509_free(above);
    return ok;
}

/* pathval_verify_cb stops at the first error, except validity errors that
 * the configured clock skew excuses (the time check of RFC 5280 6.1.3 (a)(2)
 * widened by the skew on the failing side only). */
static int pathval_verify_cb(int ok, X509_STORE_CTX *ctx)
{
    const struct pathval_cb_state *st = X509_STORE_CTX_get_app_data(ctx);
    int err;

    if (ok)
        return 1;
    err = X509_STORE_CTX_get_error(ctx);
    /* An iPAddress constraint: name_constraints.c checks it (and the SANs
     * BoringSSL skipped after it) on the built path. */
    /* A leaf without SANs under name constraints: name_constraints.c
     * checks its CN as the SAN it stands for (CA/B BR 7.1.4.3). */
    if (err == X509_V_ERR_NAME_CONSTRAINTS_WITHOUT_SANS ||
        (err == X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE &&
         nc_after_first_ip_only_own_forms(X509_STORE_CTX_get_current_cert(ctx)))) {
        X509_STORE_CTX_set_error(ctx, X509_V_OK);
        return 1;
    }
    if ((st != NULL && skew_excuses(X509_STORE_CTX_get_current_cert(ctx), err, st)) || dsa_excuses(ctx, err)) {
        X509_STORE_CTX_set_error(ctx, X509_V_OK);
        return 1;
    }
    return 0;
}

/* chain_fail records a chain_verify failure. Returns 0. */
static int chain_fail(X509_STORE_CTX *ctx, struct pathval_cb_state *st, int err, int depth,
                      X509 *x)
{
    X509_STORE_CTX_set_error(ctx, err);
    st->failed = true;
    st->fail_depth = depth;
    st->fail_cert = x;
    return 0;
}

/* link_ok: |xs| (at |depth|) is signed by |xi|'s key. A CA certificate's
 * link found in the snapshot's link cache is not verified again; one that
 * X509_verify accepts is added. The leaf's signature is always computed.
 * Returns 0, or the X509_V_ERR_* of the failure. */
static int link_ok(X509_STORE_CTX *ctx, struct pathval_cb_state *st, X509 *xs, X509 *xi,
                   int depth)
{
    uint8_t key[32];
    bool keyed = depth >= 1 && st->links != NULL && cert_memo_link_key(key, st->memo, xs, xi);
    EVP_PKEY *pkey;
    int r;

    if (keyed && link_cache_has(st->links, key))
        return 0;
    pkey = X509_get_pubkey(xi);
    if (pkey == NULL)
        r = X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY;
    else {
        atomic_fetch_add_explicit(&pathval_signature_verifies, 1, memory_order_relaxed);
        r = X509_verify(xs, pkey) > 0 ? 0 : X509_V_ERR_CERT_SIGNATURE_FAILURE;
    }
    EVP_PKEY_free(pkey);
    if (r == 0 && keyed)
        link_cache_put(st->links, key);
    if (r != 0) {
        STACK_OF(X509) *above = chain_above(ctx, xi);
        bool dsa_ok = dsa_verify_cert(xs, xi, above);
        sk_X509_free(above);
        ERR_clear_error();
        if (dsa_ok)
            r = 0; /* never cached: certval's own DSA check, each time */
    }
    return r;
}

/* cert_time: RFC 5280 6.1.3 (a)(2) for |x| at st->at, widened by the
 * clock skew (skew_excuses). Returns 0 or the X509_V_ERR_*. The times are
 * compared as X509_cmp_time compares them, without its formatting of
 * |at| (cert_read.h). */
static int cert_time(X509 *x, const struct pathval_cb_state *st)
{
    int i = cert_cmp_time(X509_get0_notBefore(x), st->at);

    if (i == 0)
        return X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD;
    if (i > 0 && !skew_excuses(x, X509_V_ERR_CERT_NOT_YET_VALID, st))
        return X509_V_ERR_CERT_NOT_YET_VALID;
    i = cert_cmp_time(X509_get0_notAfter(x), st->at);
    if (i == 0)
        return X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD;
    if (i < 0 && !skew_excuses(x, X509_V_ERR_CERT_HAS_EXPIRED, st))
        return X509_V_ERR_CERT_HAS_EXPIRED;
    return 0;
}

/* chain_verify replaces BoringSSL's internal_verify (X509_STORE_set_verify):
 * the same walk from the anchor down, a signature per link (the anchor's
 * own only with X509_V_FLAG_CHECK_SS_SIGNATURE; none above a partial-chain
 * anchor) and every certificate's validity window at the verdict's time,
 * with the link cache in between. X509_verify_cert runs it after chain
 * building, extensions, name constraints and before the policy tree, as it
 * ran internal_verify. */
static int chain_verify(X509_STORE_CTX *ctx)
{
    struct pathval_cb_state *st = X509_STORE_CTX_get_app_data(ctx);
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
    unsigned long flags = X509_VERIFY_PARAM_get_flags(X509_STORE_CTX_get0_param(ctx));
    int n = chain != NULL ? (int)sk_X509_num(chain) : 0;
    X509 *xi, *xs;
    bool skip_sig = false;
    int e;

    if (st == NULL || n <= 0) {
        X509_STORE_CTX_set_error(ctx, X509_V_ERR_UNSPECIFIED);
        return 0;
    }
    n--;
    xi = sk_X509_value(chain, (size_t)n);
    if (X509_check_issued(xi, xi) == X509_V_OK) {
        xs = xi;
    } else if (flags & X509_V_FLAG_PARTIAL_CHAIN) {
        xs = xi;
        skip_sig = true;
    } else if (n <= 0) {
        return chain_fail(ctx, st, X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, n, xi);
    } else {
        n--;
        xs = sk_X509_value(chain, (size_t)n);
    }
    while (n >= 0) {
        if (!skip_sig && (xs != xi || (flags & X509_V_FLAG_CHECK_SS_SIGNATURE)) &&
            (e = link_ok(ctx, st, xs, xi, n)) != 0)
            return chain_fail(ctx, st, e, n,
                              e == X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY ? xi : xs);
        skip_sig = false;
        if ((e = cert_time(xs, st)) != 0)
            return chain_fail(ctx, st, e, n, xs);
        n--;
        if (n >= 0) {
            xi = xs;
            xs = sk_X509_value(chain, (size_t)n);
        }
    }
    return 1;
}

const struct cert_exts *pathval_exts_of(const struct pathval_exts *px, const X509 *x)
{
    const struct cert_memo *m;

    if (px == NULL)
        return NULL;
    if (x == px->leaf)
        return px->leaf_exts;
    /* A configured certificate's, unless something did not decode when
     * the snapshot was built: then decoded on use, as before. */
    m = cert_memo_find(px->memo, x);
    return m != NULL && !m->exts.undecoded ? &m->exts : NULL;
}

enum verdict_reason pathval_post_check(struct pathval_failure *f, const struct pathval_exts *px,
                                       const struct conformance_policy *pol,
                                       const STACK_OF(X509) *chain)
{
    enum verdict_reason r = algorithm_check_path(f, pol, chain, px != NULL ? px->memo : NULL);

    if (r == VERDICT_REASON_OK)
        r = rfc5280_check_path(f, pol, chain);
    return r != VERDICT_REASON_OK ? r : nc_check_path(f, chain, px);
}

/* run_post_checks: pathval_post_check, then the host name's wildcard
 * rule (hostname.c) when a host name is expected. */
static enum verdict_reason run_post_checks(struct pathval_failure *f,
                                           const struct pathval_env *env,
                                           const struct pathval_run *run,
                                           const STACK_OF(X509) *chain)
{
    size_t n = sk_X509_num(chain);
    X509 *leaf = sk_X509_value(chain, 0);
    const struct pathval_exts px = {
        .leaf = leaf, .leaf_exts = run->leaf_exts, .memo = &env->memo};
    enum verdict_reason r;
    const char *why;

    /* max_depth counts the anchor (validator.h). */
    if (run->max_depth > 0 && n > (size_t)run->max_depth)
        return pathval_failure_set(f, VERDICT_REASON_PATH_TOO_LONG, chain, n - 1,
                                   "path has %zu certificates, limit max_depth=%d", n,
                                   run->max_depth);
    r = pathval_post_check(f, &px, run->conformance, chain);
    if (r != VERDICT_REASON_OK || run->hostname == NULL)
        return r;
    why = hostname_check_wildcards(leaf, pathval_exts_of(&px, leaf), run->hostname);
    return why == NULL ? VERDICT_REASON_OK
                       : pathval_failure_set(f, VERDICT_REASON_NAME_MISMATCH, chain, 0, "%s", why);
}

/* setup_ctx applies |run| to a freshly initialised |ctx|. */
static int setup_ctx(X509_STORE_CTX *ctx, const struct pathval_run *run,
                     struct pathval_cb_state *st)
{
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);

    X509_VERIFY_PARAM_set_time(param, (time_t)run->at);
    /* One certificate more than allowed, so that an over-long candidate is
     * built and refused as PATH_TOO_LONG by run_post_checks (and another,
     * shorter one tried) rather than failing as "issuer not found". */
    X509_VERIFY_PARAM_set_depth(param, run->max_depth + 1);
    if (!X509_VERIFY_PARAM_set_flags(param, run->flags))
        return -1;
    if (run->policies != NULL && sk_ASN1_OBJECT_num(run->policies) > 0 &&
        !X509_VERIFY_PARAM_set1_policies(param, run->policies))
        return -1;
    if (run->purpose != 0 && !X509_STORE_CTX_set_purpose(ctx, run->purpose))
        return -1;
    /* RFC 6125 6.4.4: the SAN only, never the subject's CN. */
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
    if (run->hostname != NULL &&
        !X509_VERIFY_PARAM_set1_host(param, run->hostname, strlen(run->hostname)))
        return -1;
    if (run->email != NULL &&
        !X509_VERIFY_PARAM_set1_email(param, run->email, strlen(run->email)))
        return -1;
    if (run->ip != NULL && !X509_VERIFY_PARAM_set1_ip_asc(param, run->ip))
        return -1;
    if (run->crls != NULL)
        X509_STORE_CTX_set0_crls(ctx, run->crls);
    st->at = (time_t)run->at;
    st->skew = run->clock_skew;
    st->failed = false;
    X509_STORE_CTX_set_app_data(ctx, st);
    X509_STORE_CTX_set_verify_cb(ctx, pathval_verify_cb);
    return 0;
}

/* attempt runs one chain build. Returns 1 valid, 0 invalid (|ctx| keeps the
 * error), -1 internal error. */
static int attempt(X509_STORE_CTX *ctx, const struct pathval_env *env,
                   const struct pathval_run *run, X509 *leaf, STACK_OF(X509) *untrusted,
                   STACK_OF(X509) *trusted_subset, struct pathval_cb_state *st)
{
    if (!X509_STORE_CTX_init(ctx, env->store, leaf, untrusted))
        return -1;
    if (trusted_subset != NULL)
        X509_STORE_CTX_trusted_stack(ctx, trusted_subset);
    st->links = env->links;
    st->memo = &env->memo;
    if (setup_ctx(ctx, run, st) != 0)
        return -1;
    return X509_verify_cert(ctx) == 1 ? 1 : 0;
}

int pathval_verify(struct path_result *res, const struct pathval_env *env,
                   const struct pathval_run *run, X509 *leaf, STACK_OF(X509) *untrusted)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509 *excl[PATHVAL_MAX_ATTEMPTS];
    size_t n_excl = 0;
    uint32_t max = run->max_attempts ? run->max_attempts : PATHVAL_DEFAULT_ATTEMPTS;
    struct pathval_cb_state st;
    int rc = -1;

    memset(res, 0, sizeof(*res));
    if (max > PATHVAL_MAX_ATTEMPTS)
        max = PATHVAL_MAX_ATTEMPTS;
    if (ctx == NULL)
        goto err;
    for (uint32_t i = 0; i < max; i++) {
        bool oom = false;
        STACK_OF(X509) *u = pathbuild_filtered(untrusted, excl, n_excl, &oom);
        STACK_OF(X509) *t = oom ? NULL : pathbuild_filtered(env->anchors, excl, n_excl, &oom);
        int r = oom ? -1 : attempt(ctx, env, run, leaf, u ? u : untrusted, t, &st);
        X509 *culprit = NULL;
        struct pathval_failure fail;
        bool post_failed = false;

        if (r == 1 &&
            run_post_checks(&fail, env, run, X509_STORE_CTX_get0_chain(ctx)) !=
                VERDICT_REASON_OK) {
            r = 0;
            post_failed = true;
        }
        if (r == 1) {
            res->valid = true;
            res->reason = VERDICT_REASON_OK;
            res->chain = X509_STORE_CTX_get1_chain(ctx);
        } else if (r == 0 && post_failed) {
            if (i == 0) {
                res->reason = fail.reason;
                snprintf(res->detail, sizeof(res->detail), "%s", fail.detail);
            }
            culprit = pathbuild_post_culprit(&fail, X509_STORE_CTX_get0_chain(ctx), env->anchors, untrusted,
                                   excl, n_excl);
        } else if (r == 0) {
            if (i == 0) {
                struct pathval_where w = {.depth = st.fail_depth, .cert = st.fail_cert};
                pathval_record_failure(res, ctx, st.failed ? &w : NULL, env->anchors, untrusted);
            }
            culprit = pathbuild_pick_culprit(
                X509_STORE_CTX_get0_chain(ctx), X509_STORE_CTX_get_error(ctx),
                st.failed ? st.fail_depth : X509_STORE_CTX_get_error_depth(ctx), env->anchors,
                untrusted, excl, n_excl);
        }
        X509_STORE_CTX_cleanup(ctx);
        sk_X509_free(u);
        sk_X509_free(t);
        if (r < 0)
            goto err;
        if (r == 1) {
            /* The first attempt's failure is not the answer any more. */
            res->detail[0] = '\0';
            if (res->chain == NULL)
                goto err;
            break;
        }
        if (culprit == NULL || n_excl == PATHVAL_MAX_ATTEMPTS)
            break;
        excl[n_excl++] = culprit;
    }
    rc = 0;
err:
    if (rc != 0) {
        res->valid = false;
        res->reason = VERDICT_REASON_INTERNAL_ERROR;
        snprintf(res->detail, sizeof(res->detail), "internal error during path validation: %s",
                 ERR_reason_error_string(ERR_peek_last_error()));
    }
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    return rc;
}

static int purpose_id(enum path_purpose p)
{
    switch (p) {
    case PATH_PURPOSE_CLIENT:
        return X509_PURPOSE_SSL_CLIENT;
    case PATH_PURPOSE_SERVER:
        return X509_PURPOSE_SSL_SERVER;
    default:
        return 0; /* no purpose check: this BoringSSL refuses X509_PURPOSE_ANY */
    }
}

static unsigned long options_flags(const struct path_options *o)
{
    unsigned long f = PATHVAL_BASE_FLAGS;

    if (o->explicit_policy)
        f |= X509_V_FLAG_EXPLICIT_POLICY;
    if (o->inhibit_policy_mapping)
        f |= X509_V_FLAG_INHIBIT_MAP;
    if (o->inhibit_any_policy)
        f |= X509_V_FLAG_INHIBIT_ANY;
    /* No X509_V_FLAG_CRL_CHECK: revocation is checked afterwards by the
     * service's own RFC 5280 6.3 engine (check_crls below). */
    return f;
}

/* Appends the certificates of |from| to |to| (borrowed references). */
static bool push_all(STACK_OF(X509) *to, const STACK_OF(X509) *from)
{
    for (size_t i = 0; from != NULL && i < sk_X509_num(from); i++)
        if (!sk_X509_push(to, sk_X509_value(from, i)))
            return false;
    return true;
}

int path_check_revocation(struct path_result *res, const struct path_options *opts,
                          const STACK_OF(X509) *anchors, const STACK_OF(X509) *untrusted,
                          const uint8_t *const *crl_der, const size_t *crl_len, size_t n_crls)
{
    bool registered_here = !certval_rcu_reader_registered();
    STACK_OF(X509) *issuers = sk_X509_new_null();
    struct crl_cache *cache = crl_cache_new();
    struct revocation_sources src = {.crls = cache};
    struct verdict v;
    char err[256];
    int rc = -1;

    if (registered_here)
        certval_rcu_reader_register();
    if (issuers == NULL || cache == NULL || !push_all(issuers, anchors) ||
        !push_all(issuers, untrusted) || !push_all(issuers, res->chain))
        goto out;
    /* CRLs no candidate issuer verifies are left out, as the service would. */
    for (size_t i = 0; i < n_crls; i++)
        crl_cache_add_der(cache, crl_der[i], crl_len[i], issuers, "path_validate", err,
                          sizeof(err));
    verdict_init(&v, 0);
    if (revocation_check_chain(&v, NULL, &src, res->chain,
                               opts->crl_check == CRL_CHECK_ALL ? REVOCATION_ALL : REVOCATION_LEAF,
                               0, STALE_FAIL_CLOSED, opts->at, untrusted, &opts->conformance) != 0) {
        res->valid = false;
        res->reason = v.reason;
        snprintf(res->detail, sizeof(res->detail), "%s", v.detail);
        sk_X509_pop_free(res->chain, X509_free);
        res->chain = NULL;
    }
    rc = 0;
out:
    crl_cache_free(cache);
    sk_X509_free(issuers);
    if (registered_here)
        certval_rcu_reader_unregister();
    return rc;
}

/* check_crls: path_check_revocation over path_validate's parsed |crls|,
 * re-encoded as DER for the CRL cache. */
static int check_crls(struct path_result *res, const struct path_options *opts,
                      const STACK_OF(X509) *anchors, const STACK_OF(X509) *untrusted,
                      const STACK_OF(X509_CRL) *crls)
{
    size_t n = crls != NULL ? sk_X509_CRL_num(crls) : 0;
    uint8_t **der = calloc(n > 0 ? n : 1, sizeof(*der));
    size_t *len = calloc(n > 0 ? n : 1, sizeof(*len));
    size_t used = 0;
    int rc = -1;

    if (der == NULL || len == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        int l = i2d_X509_CRL(sk_X509_CRL_value(crls, i), &der[used]);

        if (l > 0)
            len[used++] = (size_t)l;
    }
    rc = path_check_revocation(res, opts, anchors, untrusted, (const uint8_t *const *)der, len,
                               used);
out:
    for (size_t i = 0; der != NULL && i < used; i++)
        OPENSSL_free(der[i]);
    free(der);
    free(len);
    return rc;
}

int path_validate(struct path_result *res, const struct path_options *opts, X509 *leaf,
                  const STACK_OF(X509) *anchors, const STACK_OF(X509) *untrusted,
                  const STACK_OF(X509_CRL) *crls)
{
    struct pathval_env env;
    struct pathval_run run;
    struct cert_exts leaf_exts;
    STACK_OF(ASN1_OBJECT) *pol = NULL;
    STACK_OF(X509) *u = NULL;
    char err[128] = "";
    int rc = -1;

    memset(res, 0, sizeof(*res));
    memset(&env, 0, sizeof(env));
    memset(&run, 0, sizeof(run));
    cert_exts_init(&leaf_exts, leaf);
    if (pathval_env_init(&env, anchors, err, sizeof(err)) != 0)
        goto err;
    pol = opts->n_policy_oids > 0
              ? pathval_policies_from_oids(opts->policy_oids, opts->n_policy_oids, err, sizeof(err))
              : pathval_policies_from_oids(pathval_any_policy, 1, err, sizeof(err));
    if (pol == NULL)
        goto err;
    /* X509_STORE_CTX wants mutable stacks; shallow copies keep our inputs
     * const without casting. */
    u = untrusted != NULL ? sk_X509_dup(untrusted) : sk_X509_new_null();
    if (u == NULL)
        goto err;
    run.at = opts->at;
    run.flags = options_flags(opts);
    run.policies = pol;
    run.purpose = purpose_id(opts->purpose);
    run.hostname = opts->purpose == PATH_PURPOSE_SERVER ? opts->hostname : NULL;
    run.ip = opts->ip;
    run.email = opts->email;
    run.max_depth = (int)(opts->max_depth ? opts->max_depth : PATHVAL_DEFAULT_DEPTH);
    run.max_attempts = opts->max_path_attempts;
    run.crls = NULL;
    run.conformance = &opts->conformance;
    run.leaf_exts = &leaf_exts;
    rc = pathval_verify(res, &env, &run, leaf, u);
    if (rc == 0 && res->valid && sk_X509_num(res->chain) > (size_t)run.max_depth) {
        /* max_depth counts the anchor (validator.h); X509's depth does not. */
        sk_X509_pop_free(res->chain, X509_free);
        res->chain = NULL;
        res->valid = false;
        res->reason = VERDICT_REASON_PATH_TOO_LONG;
        snprintf(res->detail, sizeof(res->detail), "path has more than %d certificates",
                 run.max_depth);
    }
    if (rc == 0 && res->valid && opts->crl_check != CRL_CHECK_NONE &&
        check_crls(res, opts, anchors, untrusted, crls) != 0) {
        rc = -1;
        snprintf(err, sizeof(err), "out of memory checking revocation");
    }
err:
    if (rc != 0 && err[0] != '\0') {
        res->valid = false;
        res->reason = VERDICT_REASON_INTERNAL_ERROR;
        snprintf(res->detail, sizeof(res->detail), "%s", err);
    }
    sk_X509_free(u);
    sk_ASN1_OBJECT_pop_free(pol, ASN1_OBJECT_free);
    pathval_env_clear(&env);
    cert_exts_clear(&leaf_exts);
    return rc;
}

void path_result_clear(struct path_result *res)
{
    if (res == NULL)
        return;
    sk_X509_pop_free(res->chain, X509_free);
    memset(res, 0, sizeof(*res));
}
