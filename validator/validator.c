/* The service's verdict for one chain: limits, parsing, RFC 5280 path
 * validation against the snapshot's anchors, profile matching, revocation
 * through the CRL cache, then the tenant/device policy.
 *
 * A struct validator is built once per configuration (validator_new) and
 * never written afterwards: the X509_STORE, the parsed intermediates and
 * profile issuers, the resolved OIDs and the sorted tenant table are shared
 * read-only by every worker thread. Each call makes its own X509_STORE_CTX
 * (inside pathval_verify). */
#include "validator_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/obj.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "verdict.h"

#define DEFAULT_MAX_DEPTH 8
#define DEFAULT_MAX_ATTEMPTS 16
#define DEFAULT_MAX_CHAIN_CERTS 8
#define DEFAULT_MAX_CERT_BYTES 16384
#define DEFAULT_TENANT_VALIDITY_DAYS 396  /* 13 months */
#define DEFAULT_DEVICE_VALIDITY_DAYS 1827 /* 5 years */
#define OID_CLIENT_AUTH "1.3.6.1.5.5.7.3.2"

struct vprofile {
    char name[VERDICT_PROFILE_MAX];
    enum cert_kind kind;
    STACK_OF(X509) *issuers;
    struct profile_id tenant_id;
    struct profile_id device_id;
    int64_t max_validity_s;
    ASN1_OBJECT *eku;
    struct revocation_policy revocation; /* .conformance points at |conformance| */
    struct conformance_policy conformance;
    uint32_t max_depth; /* anchor included */
};

/* A configured CA certificate's DER, to recognise a presented copy without
 * parsing it again. */
struct known_der {
    uint8_t *der;
    size_t len;
    X509 *cert; /* borrowed from v->intermediates or v->env.anchors */
};

struct vtenant {
    char *id;
    size_t id_len;
    bool skips_password;
    bool device_binding;
};

struct validator {
    uint64_t version;
    struct pathval_env env;
    STACK_OF(X509) *intermediates; /* configured + profile issuers, untrusted */
    STACK_OF(ASN1_OBJECT) *policies; /* NULL when policy checking is off */
    unsigned long flags;
    uint32_t clock_skew;
    uint32_t max_depth, max_attempts, max_chain_certs, max_cert_bytes;
    struct vprofile *profiles;
    size_t n_profiles;
    struct vtenant *tenants; /* sorted by (id_len, id) for bsearch */
    size_t n_tenants;
    struct known_der *known; /* configured intermediates and anchors */
    size_t n_known;
};

/* ---------------------------------------------------------------- build -- */

/* load_files appends every certificate of |files| to |to|. */
static int load_files(STACK_OF(X509) *to, char *const *files, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        STACK_OF(X509) *sk = NULL;
        if (cv_load_certs(&sk, files[i], err, errlen) != 0)
            return -1;
        int rc = cv_stack_append_certs(to, sk);
        sk_X509_pop_free(sk, X509_free);
        if (rc != 0) {
            snprintf(err, errlen, "%s: out of memory", files[i]);
            return -1;
        }
    }
    return 0;
}

/* add_unique adds |x| to |to| unless an identical certificate is there. */
static int add_unique(STACK_OF(X509) *to, X509 *x)
{
    for (size_t i = 0; i < sk_X509_num(to); i++)
        if (X509_cmp(sk_X509_value(to, i), x) == 0)
            return 0;
    if (!sk_X509_push(to, x))
        return -1;
    X509_up_ref(x);
    return 0;
}

static int build_profile(struct validator *v, struct vprofile *p, const struct profile_config *pc,
                         char *err, size_t errlen)
{
    char sub[192] = "";
    uint32_t days;

    snprintf(p->name, sizeof(p->name), "%s", pc->name != NULL ? pc->name : "");
    p->kind = pc->kind;
    if (pc->kind != CERT_KIND_TENANT && pc->kind != CERT_KIND_DEVICE) {
        snprintf(err, errlen, "profile %s: kind must be tenant or device", p->name);
        return -1;
    }
    p->issuers = sk_X509_new_null();
    if (p->issuers == NULL || load_files(p->issuers, pc->issuer_files, pc->n_issuer_files, sub,
                                         sizeof(sub)) != 0)
        goto err;
    if (sk_X509_num(p->issuers) == 0) {
        snprintf(sub, sizeof(sub), "no issuer certificate configured");
        goto err;
    }
    for (size_t i = 0; i < sk_X509_num(p->issuers); i++) {
        X509 *x = sk_X509_value(p->issuers, i);
        X509_check_purpose(x, -1, 0); /* warm the extension cache */
        if (add_unique(v->intermediates, x) != 0)
            goto err;
    }
    if (profile_id_init(&p->tenant_id, &pc->tenant_id, sub, sizeof(sub)) != 0 ||
        profile_id_init(&p->device_id, &pc->device_id, sub, sizeof(sub)) != 0)
        goto err;
    if (p->tenant_id.type == ID_SOURCE_NONE ||
        (p->kind == CERT_KIND_DEVICE && p->device_id.type == ID_SOURCE_NONE)) {
        snprintf(sub, sizeof(sub), "tenant id (and device id for device profiles) source required");
        goto err;
    }
    days = pc->max_validity_days ? pc->max_validity_days
           : p->kind == CERT_KIND_TENANT ? DEFAULT_TENANT_VALIDITY_DAYS
                                         : DEFAULT_DEVICE_VALIDITY_DAYS;
    p->max_validity_s = (int64_t)days * 86400;
    p->eku = OBJ_txt2obj(pc->required_eku != NULL ? pc->required_eku : OID_CLIENT_AUTH, 1);
    if (p->eku == NULL) {
        snprintf(sub, sizeof(sub), "bad required_eku \"%s\"", pc->required_eku);
        goto err;
    }
    p->conformance = pc->conformance;
    p->revocation = (struct revocation_policy){.scope = pc->revocation,
                                               .grace = pc->crl_grace_seconds,
                                               .on_stale = pc->on_stale,
                                               .conformance = &p->conformance};
    p->max_depth = pc->max_depth ? pc->max_depth : v->max_depth;
    return 0;
err:
    ERR_clear_error();
    snprintf(err, errlen, "profile %s: %s", p->name, sub[0] ? sub : "out of memory");
    return -1;
}

static int tenant_cmp(const void *a, const void *b)
{
    const struct vtenant *x = a, *y = b;
    if (x->id_len != y->id_len)
        return x->id_len < y->id_len ? -1 : 1;
    return memcmp(x->id, y->id, x->id_len);
}

static int build_tenants(struct validator *v, const struct validator_config *cfg, char *err,
                         size_t errlen)
{
    v->tenants = calloc(cfg->n_tenants ? cfg->n_tenants : 1, sizeof(*v->tenants));
    if (v->tenants == NULL)
        goto oom;
    for (size_t i = 0; i < cfg->n_tenants; i++) {
        const struct tenant_config *tc = &cfg->tenants[i];
        struct vtenant *t = &v->tenants[i];
        if (tc->id == NULL || tc->id[0] == '\0') {
            snprintf(err, errlen, "tenant %zu: empty id", i + 1);
            return -1;
        }
        t->id = strdup(tc->id);
        if (t->id == NULL)
            goto oom;
        v->n_tenants = i + 1;
        t->id_len = strlen(t->id);
        t->skips_password = tc->device_certificate_skips_password;
        t->device_binding = tc->require_device_binding;
    }
    qsort(v->tenants, v->n_tenants, sizeof(*v->tenants), tenant_cmp);
    for (size_t i = 1; i < v->n_tenants; i++) {
        if (tenant_cmp(&v->tenants[i - 1], &v->tenants[i]) == 0) {
            snprintf(err, errlen, "tenant \"%s\" configured twice", v->tenants[i].id);
            return -1;
        }
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int build_policy(struct validator *v, const struct validator_config *cfg, char *err,
                        size_t errlen)
{
    /* RFC 5280 6.1: policy processing always runs (CA certificates may
     * require an explicit policy or inhibit anyPolicy); the initial set
     * defaults to anyPolicy (6.1.1 (c)). Policy trees are built only after
     * every signature on the path verified, so untrusted input cannot make
     * it expensive. */
    v->flags = PATHVAL_BASE_FLAGS;
    if (cfg->explicit_policy)
        v->flags |= X509_V_FLAG_EXPLICIT_POLICY;
    v->policies = cfg->n_policy_oids > 0
                      ? pathval_policies_from_oids((const char *const *)cfg->policy_oids,
                                                   cfg->n_policy_oids, err, errlen)
                      : pathval_policies_from_oids(pathval_any_policy, 1, err, errlen);
    return v->policies != NULL ? 0 : -1;
}

static int add_known(struct validator *v, const STACK_OF(X509) *sk)
{
    for (size_t i = 0; i < sk_X509_num(sk); i++) {
        struct known_der *k = &v->known[v->n_known];
        int len = i2d_X509(sk_X509_value(sk, i), &k->der);
        if (len <= 0)
            return -1;
        k->len = (size_t)len;
        k->cert = sk_X509_value(sk, i);
        v->n_known++;
    }
    return 0;
}

/* build_known records the DER of every configured CA certificate: clients
 * usually send the same intermediates the configuration holds, and reusing
 * the parsed, extension-cached object saves a parse per certificate per
 * call. */
static int build_known(struct validator *v, char *err, size_t errlen)
{
    size_t n = sk_X509_num(v->intermediates) + sk_X509_num(v->env.anchors);

    v->known = calloc(n ? n : 1, sizeof(*v->known));
    if (v->known == NULL || add_known(v, v->intermediates) != 0 ||
        add_known(v, v->env.anchors) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return pathval_env_memo(&v->env, v->intermediates, err, errlen);
}

int validator_new(struct validator **out, const struct validator_config *cfg, uint64_t version,
                  char *err, size_t errlen)
{
    struct validator *v = calloc(1, sizeof(*v));
    STACK_OF(X509) *anchors = sk_X509_new_null();

    *out = NULL;
    if (v == NULL || anchors == NULL || (v->intermediates = sk_X509_new_null()) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    v->version = version;
    v->clock_skew = cfg->clock_skew_seconds;
    v->max_depth = cfg->max_depth ? cfg->max_depth : DEFAULT_MAX_DEPTH;
    v->max_attempts = cfg->max_path_attempts ? cfg->max_path_attempts : DEFAULT_MAX_ATTEMPTS;
    v->max_chain_certs = cfg->max_chain_certs ? cfg->max_chain_certs : DEFAULT_MAX_CHAIN_CERTS;
    v->max_cert_bytes = cfg->max_cert_bytes ? cfg->max_cert_bytes : DEFAULT_MAX_CERT_BYTES;
    if (load_files(anchors, cfg->anchor_files, cfg->n_anchor_files, err, errlen) != 0)
        goto err;
    if (sk_X509_num(anchors) == 0) {
        snprintf(err, errlen, "no trust anchor configured");
        goto err;
    }
    if (pathval_env_init(&v->env, anchors, err, errlen) != 0)
        goto err;
    if (load_files(v->intermediates, cfg->intermediate_files, cfg->n_intermediate_files, err,
                   errlen) != 0)
        goto err;
    for (size_t i = 0; i < sk_X509_num(v->intermediates); i++)
        X509_check_purpose(sk_X509_value(v->intermediates, i), -1, 0);
    v->profiles = calloc(cfg->n_profiles ? cfg->n_profiles : 1, sizeof(*v->profiles));
    if (v->profiles == NULL) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    for (size_t i = 0; i < cfg->n_profiles; i++) {
        v->n_profiles = i + 1;
        if (build_profile(v, &v->profiles[i], &cfg->profiles[i], err, errlen) != 0)
            goto err;
    }
    if (build_tenants(v, cfg, err, errlen) != 0 || build_policy(v, cfg, err, errlen) != 0 ||
        build_known(v, err, errlen) != 0)
        goto err;
    sk_X509_pop_free(anchors, X509_free);
    *out = v;
    return 0;
err:
    sk_X509_pop_free(anchors, X509_free);
    validator_free(v);
    return -1;
}

void validator_free(struct validator *v)
{
    if (v == NULL)
        return;
    pathval_env_clear(&v->env);
    sk_X509_pop_free(v->intermediates, X509_free);
    sk_ASN1_OBJECT_pop_free(v->policies, ASN1_OBJECT_free);
    for (size_t i = 0; i < v->n_profiles; i++) {
        struct vprofile *p = &v->profiles[i];
        sk_X509_pop_free(p->issuers, X509_free);
        profile_id_clear(&p->tenant_id);
        profile_id_clear(&p->device_id);
        ASN1_OBJECT_free(p->eku);
    }
    free(v->profiles);
    for (size_t i = 0; i < v->n_tenants; i++)
        free(v->tenants[i].id);
    free(v->tenants);
    for (size_t i = 0; i < v->n_known; i++)
        OPENSSL_free(v->known[i].der);
    free(v->known);
    free(v);
}

uint64_t validator_version(const struct validator *v)
{
    return v->version;
}

size_t validator_anchor_count(const struct validator *v)
{
    return sk_X509_num(v->env.anchors);
}

const struct revocation_policy *validator_profile_revocation(const struct validator *v,
                                                            uint32_t profile)
{
    return profile < v->n_profiles ? &v->profiles[profile].revocation : NULL;
}

/* ---------------------------------------------------------------- check -- */

/* Per-call state of validator_check_chain, on the caller's stack. */
struct check {
    const struct validator *v;
    const struct chain_input *in;
    struct verdict *out;
    X509 *certs[64];     /* parsed input; bounded by max_chain_certs (<= 64) */
    bool borrowed[64];   /* certs[i] is a configured object, not ours to free */
    size_t n;
    struct cert_exts leaf_exts; /* certs[0]'s, decoded once for every check that reads them */
    STACK_OF(X509) *chain; /* validated path, leaf first */
    const struct vprofile *profile;
    const struct vprofile *built_for; /* the profile whose rules built the path; NULL = defaults */
    bool stale_warning;
    char warn[96];
};

/* find_known returns the configured certificate whose DER is exactly |b|,
 * or NULL. Never used for the leaf, whose facts come from its own bytes. */
static X509 *find_known(const struct validator *v, const struct cv_bytes *b)
{
    for (size_t i = 0; i < v->n_known; i++)
        if (v->known[i].len == b->len && memcmp(v->known[i].der, b->data, b->len) == 0)
            return v->known[i].cert;
    return NULL;
}

static int parse_input(struct check *c)
{
    const struct chain_input *in = c->in;
    uint32_t max_n = c->v->max_chain_certs;

    if (max_n > sizeof(c->certs) / sizeof(c->certs[0]))
        max_n = sizeof(c->certs) / sizeof(c->certs[0]);
    if (in->n_certs == 0) {
        verdict_deny(c->out, VERDICT_REASON_MALFORMED, "empty chain");
        return -1;
    }
    if (in->n_certs > max_n) {
        verdict_deny(c->out, VERDICT_REASON_MALFORMED,
                     "chain has %zu certificates, limit max_certs_per_chain=%u", in->n_certs,
                     max_n);
        return -1;
    }
    for (size_t i = 0; i < in->n_certs; i++) {
        if (in->certs[i].len > c->v->max_cert_bytes) {
            verdict_deny(c->out, VERDICT_REASON_MALFORMED,
                         "certificate %zu is %zu bytes, limit max_cert_bytes=%u", i,
                         in->certs[i].len, c->v->max_cert_bytes);
            return -1;
        }
    }
    for (size_t i = 0; i < in->n_certs; i++) {
        const uint8_t *p = in->certs[i].data;
        X509 *x = i > 0 ? find_known(c->v, &in->certs[i]) : NULL;
        if (x != NULL) {
            c->borrowed[c->n] = true;
            c->certs[c->n++] = x;
            continue;
        }
        x = p != NULL ? d2i_X509(NULL, &p, (long)in->certs[i].len) : NULL;
        if (x != NULL) {
            cert_intern_ext_oids(x);
            c->certs[c->n++] = x;
        }
        /* RFC 5280 4.1: one DER Certificate, nothing after it. */
        if (x == NULL || p != in->certs[i].data + in->certs[i].len) {
            ERR_clear_error();
            verdict_deny(c->out, VERDICT_REASON_MALFORMED, "certificate %zu is not DER", i);
            return -1;
        }
    }
    return 0;
}

static void hex_serial(char *out, size_t outlen, const ASN1_INTEGER *serial)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = ASN1_STRING_get0_data(serial);
    size_t len = (size_t)ASN1_STRING_length(serial), o = 0;

    if (ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER && o + 1 < outlen)
        out[o++] = '-';
    for (size_t i = 0; i < len && o + 2 < outlen; i++) {
        out[o++] = hex[p[i] >> 4];
        out[o++] = hex[p[i] & 15];
    }
    out[o] = '\0';
}

static void leaf_facts(struct check *c)
{
    X509 *leaf = c->certs[0];
    const struct cv_bytes *der = &c->in->certs[0];
    int64_t na;

    SHA256(der->data, der->len, c->out->leaf_sha256);
    c->out->has_leaf_sha256 = true;
    cert_name_rfc2253(c->out->subject, sizeof(c->out->subject), X509_get_subject_name(leaf));
    cert_name_rfc2253(c->out->issuer, sizeof(c->out->issuer), X509_get_issuer_name(leaf));
    hex_serial(c->out->serial_hex, sizeof(c->out->serial_hex), X509_get0_serialNumber(leaf));
    if (cv_asn1_time_to_unix(&na, X509_get0_notAfter(leaf)) == 0)
        c->out->not_after_unix = na;
    cert_exts_init(&c->leaf_exts, leaf);
}

/* preselect_profile: the profile the path is built for, before the path
 * exists: the first one with an issuer named as the leaf's issuer. Its
 * algorithm policy, compat switch and depth limit drive path building;
 * match_profile later decides by issuer key, and check_profile_rules
 * re-applies the matched profile's rules if that is another profile. NULL
 * when no profile names the issuer (strict defaults, global depth). */
static const struct vprofile *preselect_profile(const struct validator *v, X509 *leaf)
{
    const X509_NAME *issuer = X509_get_issuer_name(leaf);

    for (size_t i = 0; i < v->n_profiles; i++) {
        const struct vprofile *p = &v->profiles[i];
        for (size_t j = 0; j < sk_X509_num(p->issuers); j++)
            if (X509_NAME_cmp(X509_get_subject_name(sk_X509_value(p->issuers, j)), issuer) == 0)
                return p;
    }
    return NULL;
}

static int validate_path(struct check *c, int64_t now)
{
    const struct validator *v = c->v;
    const struct vprofile *pre = preselect_profile(v, c->certs[0]);
    uint32_t max_depth = pre != NULL ? pre->max_depth : v->max_depth;
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    struct pathval_run run;
    struct path_result res;
    int rc = -1;

    /* Configured intermediates first: the chain builder takes the first
     * candidate that names the issuer, and the configured copies already
     * have their public key and extensions decoded and cached, while a
     * presented copy would be decoded again on every call. Then the
     * presented ones (any order; duplicates and extras are harmless). If a
     * configured copy fails, pathval's retry moves on to the presented one.
     * The stack borrows: c->certs and v->intermediates own the references. */
    if (untrusted == NULL)
        goto oom;
    for (size_t i = 0; i < sk_X509_num(v->intermediates); i++)
        if (!sk_X509_push(untrusted, sk_X509_value(v->intermediates, i)))
            goto oom;
    for (size_t i = 1; i < c->n; i++)
        if (!sk_X509_push(untrusted, c->certs[i]))
            goto oom;
    memset(&run, 0, sizeof(run));
    run.at = now;
    run.clock_skew = v->clock_skew;
    run.flags = v->flags;
    run.policies = v->policies;
    run.max_depth = (int)max_depth;
    run.max_attempts = v->max_attempts;
    run.conformance = pre != NULL ? &pre->conformance : NULL;
    run.leaf_exts = &c->leaf_exts;
    if (pathval_verify(&res, &v->env, &run, c->certs[0], untrusted) != 0) {
        verdict_deny(c->out, VERDICT_REASON_INTERNAL_ERROR, "%s", res.detail);
        goto done;
    }
    if (!res.valid) {
        verdict_deny(c->out, res.reason, "%s", res.detail);
        goto done;
    }
    c->chain = res.chain;
    res.chain = NULL;
    c->built_for = pre;
    if (sk_X509_num(c->chain) > max_depth) {
        verdict_deny(c->out, VERDICT_REASON_PATH_TOO_LONG,
                     "path has %zu certificates, limit max_depth=%u", sk_X509_num(c->chain),
                     max_depth);
        goto done;
    }
    rc = 0;
    goto done;
oom:
    verdict_deny(c->out, VERDICT_REASON_INTERNAL_ERROR, "out of memory");
done:
    sk_X509_free(untrusted);
    return rc;
}

/* match_profile: the first profile whose issuer set holds the leaf's
 * direct issuer in the validated path. */
static int match_profile(struct check *c)
{
    X509 *issuer = sk_X509_num(c->chain) >= 2 ? sk_X509_value(c->chain, 1) : NULL;

    for (size_t i = 0; issuer != NULL && i < c->v->n_profiles; i++) {
        const struct vprofile *p = &c->v->profiles[i];
        for (size_t j = 0; j < sk_X509_num(p->issuers); j++) {
            if (profile_same_ca(sk_X509_value(p->issuers, j), issuer)) {
                c->profile = p;
                c->out->kind = p->kind;
                snprintf(c->out->profile, sizeof(c->out->profile), "%s", p->name);
                return 0;
            }
        }
    }
    verdict_deny(c->out, VERDICT_REASON_NO_MATCHING_PROFILE, "no profile lists the leaf's issuer");
    return -1;
}

/* check_profile_rules: the path was built under another profile's rules
 * (or the defaults) than the profile that matched: apply the matched
 * profile's algorithm policy, compat switch and depth limit. */
static int check_profile_rules(struct check *c)
{
    const struct vprofile *p = c->profile;
    const struct pathval_exts px = {
        .leaf = c->certs[0], .leaf_exts = &c->leaf_exts, .memo = &c->v->env.memo};
    struct pathval_failure f;

    if (p == c->built_for)
        return 0;
    if (sk_X509_num(c->chain) > p->max_depth) {
        verdict_deny(c->out, VERDICT_REASON_PATH_TOO_LONG,
                     "path has %zu certificates, limit max_depth=%u", sk_X509_num(c->chain),
                     p->max_depth);
        return -1;
    }
    if (pathval_post_check(&f, &px, &p->conformance, c->chain) != VERDICT_REASON_OK) {
        verdict_deny(c->out, f.reason, "%s", f.detail);
        return -1;
    }
    return 0;
}

/* label_profile: after a path failure (EXPIRED, ...), names in the verdict
 * the profile whose issuer set holds the CA that signed the leaf, so the
 * verdict and the audit line still say which kind of certificate failed.
 * A label only: no decision depends on it, and a leaf whose signature does
 * not verify under that CA gets none. */
static void label_profile(struct check *c)
{
    X509 *leaf = c->certs[0];

    for (size_t i = 0; i < c->v->n_profiles; i++) {
        const struct vprofile *p = &c->v->profiles[i];

        for (size_t j = 0; j < sk_X509_num(p->issuers); j++) {
            X509 *ca = sk_X509_value(p->issuers, j);
            EVP_PKEY *key;
            int ok;

            if (X509_NAME_cmp(X509_get_subject_name(ca), X509_get_issuer_name(leaf)) != 0)
                continue;
            key = X509_get_pubkey(ca);
            ok = key != NULL && X509_verify(leaf, key) == 1;
            EVP_PKEY_free(key);
            if (ok) {
                c->out->kind = p->kind;
                snprintf(c->out->profile, sizeof(c->out->profile), "%s", p->name);
                ERR_clear_error();
                return;
            }
        }
    }
    ERR_clear_error();
}

/* check_revocation is the full check's revocation step: the emergency
 * deny list by reference, then RFC 5280 6.3 over the validated path
 * (revocation_check_chain), with the configured intermediates as the
 * certificates a separately keyed or indirect CRL issuer may be found
 * among. Sets *by_ref when the verdict cache's re-check by reference
 * reproduces the answer. Returns 0, or -1 with |c->out| denied. */
static int check_revocation(struct check *c, const struct verdict_step *st, int64_t now,
                            bool *by_ref)
{
    const struct revocation_policy *p = &c->profile->revocation;
    uint8_t ids[VERDICT_STEP_MAX_REFS][64];
    struct revocation_report rep;

    *by_ref = false;
    if (verdict_step_check_deny(st, c->out, now) != 0)
        return -1;
    /* The references hold every issuer identity of the path already. */
    for (size_t d = 0; d < st->refs.n; d++) {
        memcpy(ids[d], st->refs.ref[d].issuer_name_norm, 32);
        memcpy(ids[d] + 32, st->refs.ref[d].issuer_key_sha256, 32);
    }
    if (revocation_check_chain_ids(c->out, &rep, st->src, c->chain, p, now, c->v->intermediates,
                                   (const uint8_t(*)[64])ids, st->refs.n) != 0)
        return -1;
    c->stale_warning = rep.stale;
    if (rep.stale)
        snprintf(c->warn, sizeof(c->warn), "%s", rep.warning);
    *by_ref = p->scope == REVOCATION_NONE || rep.cacheable;
    return 0;
}

static const struct vtenant *find_tenant(const struct validator *v, const struct cv_bytes *id)
{
    struct vtenant key = {.id = (char *)id->data, .id_len = id->len};

    if (id->len == 0 || id->data == NULL)
        return NULL;
    return bsearch(&key, v->tenants, v->n_tenants, sizeof(*v->tenants), tenant_cmp);
}

static bool bytes_eq(const char *s, const struct cv_bytes *b)
{
    size_t n = strlen(s);
    return n == b->len && (n == 0 || memcmp(s, b->data, n) == 0);
}

/* apply_policy: the profile rules after the path and revocation passed. */
static void apply_policy(struct check *c)
{
    const struct vprofile *p = c->profile;
    X509 *leaf = c->certs[0];
    char tenant[PROFILE_ID_MAX], device[PROFILE_ID_MAX];
    int64_t life = 0;
    const struct vtenant *t;

    if (profile_validity_seconds(&life, leaf) != 0 || life < 0 || life > p->max_validity_s) {
        verdict_deny(c->out, VERDICT_REASON_VALIDITY_TOO_LONG,
                     "leaf validity %lld days exceeds %lld", (long long)(life / 86400),
                     (long long)(p->max_validity_s / 86400));
        return;
    }
    if (!profile_has_eku(leaf, &c->leaf_exts, p->eku)) {
        char oid[64];
        OBJ_obj2txt(oid, sizeof(oid), p->eku, 1);
        verdict_deny(c->out, VERDICT_REASON_EXTENDED_KEY_USAGE, "leaf lacks extendedKeyUsage %s",
                     oid);
        return;
    }
    if (profile_read_id(tenant, sizeof(tenant), leaf, &c->leaf_exts, &p->tenant_id) < 0) {
        verdict_deny(c->out, VERDICT_REASON_MISSING_IDENTITY, "leaf has no (single) tenant id");
        return;
    }
    t = find_tenant(c->v, &c->in->tenant_id);
    if (t == NULL) {
        verdict_deny(c->out, VERDICT_REASON_UNKNOWN_TENANT, "requested tenant is not configured");
        return;
    }
    if (!bytes_eq(tenant, &c->in->tenant_id)) {
        verdict_deny(c->out, VERDICT_REASON_WRONG_TENANT, "certificate is for tenant \"%.64s\"",
                     tenant);
        return;
    }
    c->out->decision = DECISION_REQUIRE_PASSWORD;
    if (p->kind == CERT_KIND_DEVICE) {
        if (profile_read_id(device, sizeof(device), leaf, &c->leaf_exts, &p->device_id) < 0) {
            verdict_deny(c->out, VERDICT_REASON_MISSING_IDENTITY, "leaf has no (single) device id");
            return;
        }
        if (t->device_binding && !bytes_eq(device, &c->in->device_id)) {
            verdict_deny(c->out, VERDICT_REASON_DEVICE_MISMATCH,
                         "certificate is for device \"%.64s\"", device);
            return;
        }
        c->out->decision = t->skips_password ? DECISION_ALLOW : DECISION_REQUIRE_PASSWORD;
    }
    c->out->reason = VERDICT_REASON_OK;
    snprintf(c->out->detail, sizeof(c->out->detail), "%s", c->stale_warning ? c->warn : "");
}

void validator_check_chain(const struct validator *v, const struct revocation_sources *src,
                           struct verdict *out, const struct chain_input *in, int64_t now)
{
    validator_check_chain_keyed(v, src, out, in, now, NULL);
}

void validator_check_chain_keyed(const struct validator *v, const struct revocation_sources *src,
                                 struct verdict *out, const struct chain_input *in, int64_t now,
                                 const struct validator_key *key)
{
    struct verdict_step st;
    bool by_ref = false;
    struct check c;

    /* |src| may be NULL: the step and revocation_check_chain treat it as
     * no sources at all. */
    if (key != NULL && key->set)
        verdict_step_carry(&st, src, key);
    else if (verdict_step_try(&st, v, src, out, in, now))
        return;
    verdict_init(out, in->id);
    memset(&c, 0, sizeof(c));
    c.v = v;
    c.in = in;
    c.out = out;
    if (parse_input(&c) != 0)
        goto done;
    leaf_facts(&c);
    if (validate_path(&c, now) != 0) {
        if (out->reason != VERDICT_REASON_INTERNAL_ERROR)
            label_profile(&c);
        goto done;
    }
    if (match_profile(&c) != 0 || check_profile_rules(&c) != 0 ||
        verdict_step_build_refs(&st, out, c.chain, (uint32_t)(c.profile - v->profiles),
                                &v->env.memo) != 0 ||
        check_revocation(&c, &st, now, &by_ref) != 0)
        goto done;
    apply_policy(&c);
    verdict_step_store(&st, out, c.chain, v->clock_skew, by_ref);
done:
    cert_exts_clear(&c.leaf_exts);
    sk_X509_pop_free(c.chain, X509_free);
    for (size_t i = 0; i < c.n; i++)
        if (!c.borrowed[i])
            X509_free(c.certs[i]);
}
