/* Certificate revocation, RFC 5280 section 6.3, over the CRL cache.
 *
 * revocation_check_chain runs the 6.3.3 algorithm for each certificate of
 * a validated path that the scope covers: for every distribution point of
 * the certificate (or one implicit point when it has none) it takes the
 * complete CRLs the cache holds for the point's CRL issuer, keeps those
 * whose scope fits (b), whose reasons add to what is already covered (d,
 * e) and whose signer validates (f), applies a matching delta CRL (g-j),
 * and stops at the first listing. The status is "not revoked" only when
 * the union of the reasons covered is all-reasons; otherwise it is
 * undetermined (REVOCATION_UNKNOWN, or REVOCATION_STALE when a stale CRL
 * is what is missing).
 *
 * The cache gives, per CRL issuer name, every CRL it holds with whether the
 * serial is listed (crl_cache_lookup_name); the RFC logic is here. Nothing
 * is shared between calls: the state is on the caller's stack, so the
 * function is thread-safe; the thread must be a registered RCU reader. */
#include "validator_internal.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/obj.h>
#include <openssl/x509v3.h>

#include "crl_cache.h"
#include "verdict.h"

#define REV_MAX_DPS 4     /* distribution points read per certificate */
#define REV_MAX_CRLS 16   /* CRLs considered per CRL issuer name */
#define REV_MAX_SIGNERS 8 /* CRL signer keys remembered per call */
/* CRL issuer paths validated inside one another: a CRL signer whose own
 * revocation needs a CRL signed by yet another separate key, and so on.
 * PKITS 4.14.30 (a CRL issuer covered by its own CRL) ends here. */
#define REV_MAX_DEPTH 3
#define VERDICT_REASON_REMOVE_FROM_CRL 8 /* CRLReason removeFromCRL (RFC 5280 5.3.1) */

enum cert_state { CS_GOOD, CS_REVOKED, CS_UNKNOWN, CS_STALE };

struct signer_memo {
    uint8_t id[CRL_CACHE_ISSUER_ID_LEN];
    bool trusted;
};

/* Per-call state; signers are shared with nested calls through |top|. */
struct rev_ctx {
    const struct crl_cache *crls;
    const STACK_OF(X509) * chain; /* the path being checked, leaf first */
    const STACK_OF(X509) * candidates;
    X509 *anchor;
    uint32_t grace;
    enum stale_policy on_stale;
    bool require_crl_number; /* strict: RFC 5280 5.2.3 "MUST include" */
    const struct conformance_policy *pol; /* algorithm policy for CRL signatures */
    int64_t now;
    int depth;
    /* ids[d]: the issuer identity of chain[d] for d < n_ids, given by the
     * caller (revocation_check_chain_ids); none for a nested path. */
    const uint8_t (*ids)[CRL_CACHE_ISSUER_ID_LEN];
    size_t n_ids;
    struct signer_memo *signers; /* REV_MAX_SIGNERS, owned by the outermost call */
    size_t *n_signers;
};

/* What 6.3.3 needs to know about one certificate. */
struct cert_facts {
    size_t depth;
    X509 *cert;
    uint8_t issuer_id[CRL_CACHE_ISSUER_ID_LEN]; /* issuer name hash || issuer key hash */
    uint8_t serial[256];
    size_t serial_len;
    bool is_ca;
    bool issuer_no_crl_sign; /* the issuer's keyUsage leaves out cRLSign (RFC 5280 4.2.1.3) */
    struct crl_cert_dp dps[REV_MAX_DPS];
    size_t n_dps;
};

struct cert_result {
    enum cert_state st;
    int reason;
    int64_t date;
    bool stale_seen; /* a CRL that would have counted was stale */
    bool stale_used; /* ... and was used anyway (STALE_ALLOW_WARN) */
    const char *why; /* for undetermined: what was missing */
    bool no_crl_at_all; /* undetermined because no CRL in scope verified at all */
};

static int check_path(struct rev_ctx *ctx, struct verdict *out, struct revocation_report *rep,
                      const STACK_OF(X509) * chain, enum revocation_scope scope);

const char *revocation_role(size_t depth)
{
    return depth == 0 ? "leaf" : "intermediate";
}

void revocation_stale_warning(char *buf, size_t len, size_t depth)
{
    snprintf(buf, len, "warning: stale CRL for %s at depth %zu", revocation_role(depth), depth);
}

static int number_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (alen != blen)
        return alen < blen ? -1 : 1;
    return memcmp(a, b, alen);
}

static bool any_name_matches(const uint8_t (*a)[32], size_t na, const uint8_t (*b)[32], size_t nb)
{
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++)
            if (memcmp(a[i], b[j], 32) == 0)
                return true;
    return false;
}

/* facts_init reads the certificate at |depth| of |chain|: issuer identity
 * (from |ids| when it has one for |depth|), serial, cA flag and
 * cRLDistributionPoints. -1 when it cannot. */
static int facts_init(struct cert_facts *f, const STACK_OF(X509) * chain, size_t depth,
                      const uint8_t (*ids)[CRL_CACHE_ISSUER_ID_LEN], size_t n_ids)
{
    X509 *issuer = sk_X509_value(chain, depth + 1);
    const uint8_t *name = NULL;
    size_t name_len = 0;
    bool more = false;
    int idx;

    memset(f, 0, sizeof(*f));
    f->depth = depth;
    f->cert = sk_X509_value(chain, depth);
    f->issuer_no_crl_sign = X509_get_key_usage(issuer) != UINT32_MAX &&
                            !(X509_get_key_usage(issuer) & KU_CRL_SIGN);
    if (ids != NULL && depth < n_ids)
        memcpy(f->issuer_id, ids[depth], sizeof(f->issuer_id));
    else if (crl_cache_issuer_id(f->issuer_id, issuer) != 0)
        return -1;
    if (crl_cache_serial_content(f->serial, sizeof(f->serial), &f->serial_len,
                                 X509_get0_serialNumber(f->cert)) != 0)
        return -1;
    /* RFC 5280 6.3.3 (b)(2)(ii)-(iii) look at the certificate's own
     * basicConstraints, not at its place in the path. */
    f->is_ca = (X509_get_extension_flags(f->cert) & EXFLAG_CA) != 0;
    idx = X509_get_ext_by_NID(f->cert, NID_crl_distribution_points, -1);
    if (idx < 0)
        return 0;
    const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(X509_get_ext(f->cert, idx));
    if (v == NULL || !X509_NAME_get0_der(X509_get_issuer_name(f->cert), &name, &name_len) ||
        crl_cache_parse_cdp(f->dps, REV_MAX_DPS, &f->n_dps, &more, ASN1_STRING_get0_data(v),
                            (size_t)ASN1_STRING_length(v), name, name_len) != 0)
        return -1;
    return 0;
}

/* find_cert returns the certificate of the path or the candidates whose
 * issuer identity (subject name hash || key hash) is |id|. */
static X509 *find_cert(const struct rev_ctx *ctx, const uint8_t id[CRL_CACHE_ISSUER_ID_LEN],
                       bool *on_path)
{
    uint8_t x_id[CRL_CACHE_ISSUER_ID_LEN];

    for (size_t i = 1; i < sk_X509_num(ctx->chain); i++) {
        X509 *x = sk_X509_value(ctx->chain, i);
        if (crl_cache_issuer_id(x_id, x) == 0 && memcmp(x_id, id, sizeof(x_id)) == 0) {
            *on_path = true;
            return x;
        }
    }
    *on_path = false;
    for (size_t i = 0; i < sk_X509_num(ctx->candidates); i++) {
        X509 *x = sk_X509_value(ctx->candidates, i);
        if (crl_cache_issuer_id(x_id, x) == 0 && memcmp(x_id, id, sizeof(x_id)) == 0)
            return x;
    }
    return NULL;
}

/* validate_signer: RFC 5280 6.3.3 (f), the CRL issuer's certificate must
 * itself validate to the trust anchor of the path being checked, be
 * allowed to sign CRLs (the cache checked cRLSign when it verified the
 * CRL's signature), and not be revoked. */
static bool validate_signer(struct rev_ctx *ctx, X509 *signer)
{
    STACK_OF(X509) *anchors = sk_X509_new_null(), *untrusted = sk_X509_new_null();
    struct path_result res;
    struct path_options o;
    struct verdict scratch;
    bool ok = false;

    memset(&res, 0, sizeof(res));
    if (anchors == NULL || untrusted == NULL || !sk_X509_push(anchors, ctx->anchor))
        goto done;
    for (size_t i = 1; i + 1 < sk_X509_num(ctx->chain); i++)
        if (!sk_X509_push(untrusted, sk_X509_value(ctx->chain, i)))
            goto done;
    for (size_t i = 0; i < sk_X509_num(ctx->candidates); i++)
        if (!sk_X509_push(untrusted, sk_X509_value(ctx->candidates, i)))
            goto done;
    memset(&o, 0, sizeof(o));
    o.at = ctx->now;
    o.crl_check = CRL_CHECK_NONE;
    o.purpose = PATH_PURPOSE_ANY;
    if (path_validate(&res, &o, signer, anchors, untrusted, NULL) != 0 || !res.valid)
        goto done;
    if (ctx->depth + 1 >= REV_MAX_DEPTH)
        goto done; /* undetermined: the CRL issuer's status needs deeper nesting */
    struct rev_ctx inner = *ctx;
    inner.chain = res.chain;
    inner.depth = ctx->depth + 1;
    inner.ids = NULL;
    inner.n_ids = 0;
    verdict_init(&scratch, 0);
    ok = check_path(&inner, &scratch, NULL, res.chain, REVOCATION_ALL) == 0;
done:
    path_result_clear(&res);
    sk_X509_free(anchors);
    sk_X509_free(untrusted);
    ERR_clear_error();
    return ok;
}

/* signer_trusted decides 6.3.3 (f) for a CRL signed by |crl_issuer_name|
 * with key |key|, memoised per call. */
static bool signer_trusted(struct rev_ctx *ctx, const struct cert_facts *f,
                           const uint8_t crl_issuer_name[32], const uint8_t key[32])
{
    uint8_t id[CRL_CACHE_ISSUER_ID_LEN];
    bool on_path = false, trusted;
    X509 *signer;

    memcpy(id, crl_issuer_name, 32);
    memcpy(id + 32, key, 32);
    /* The certificate's own issuer (same name, same key): the common case. */
    if (memcmp(id, f->issuer_id, sizeof(id)) == 0)
        return true;
    for (size_t i = 0; i < *ctx->n_signers; i++)
        if (memcmp(ctx->signers[i].id, id, sizeof(id)) == 0)
            return ctx->signers[i].trusted;
    signer = find_cert(ctx, id, &on_path);
    if (signer == NULL)
        return false;
    /* A CA of the validated path is validated already; its revocation is
     * checked with the rest of the path when the scope covers it. */
    if (on_path)
        return true;
    if (*ctx->n_signers == REV_MAX_SIGNERS)
        return validate_signer(ctx, signer);
    /* While the signer's own path is checked it counts as trusted, so that
     * a CRL it signs may speak for the signer itself (an indirect CRL that
     * covers its own issuer: PKITS 4.14.30). That CRL listing the signer
     * still revokes it, and a failed validation records the signer as
     * untrusted for the rest of the call. */
    size_t slot = (*ctx->n_signers)++;
    memcpy(ctx->signers[slot].id, id, sizeof(id));
    ctx->signers[slot].trusted = true;
    trusted = validate_signer(ctx, signer);
    ctx->signers[slot].trusted = trusted;
    return trusted;
}

/* find_delta: RFC 5280 6.3.3 (g), 5.2.4: a usable delta of the same signer
 * and scope, newer than |full|, whose BaseCRLNumber |full| reaches. */
static const struct crl_cache_crl *find_delta(const struct crl_cache_crl *crls, size_t n,
                                              const struct crl_cache_crl *full, int64_t now)
{
    const struct crl_cache_crl *best = NULL;

    for (size_t i = 0; i < n; i++) {
        const struct crl_cache_crl *d = &crls[i];
        if (!d->delta || !d->usable || now < d->this_update || !full->has_crl_number ||
            memcmp(d->signer_key, full->signer_key, 32) != 0 ||
            memcmp(d->scope_id, full->scope_id, 32) != 0 ||
            number_cmp(d->base_number, d->base_number_len, full->crl_number, full->crl_number_len) >
                0 ||
            number_cmp(d->crl_number, d->crl_number_len, full->crl_number, full->crl_number_len) <=
                0)
            continue;
        if (best == NULL || number_cmp(d->crl_number, d->crl_number_len, best->crl_number,
                                       best->crl_number_len) > 0)
            best = d;
    }
    return best;
}

/* crl_in_scope: RFC 5280 6.3.3 (b) for complete CRL |h| and point |dp|. */
static bool crl_in_scope(const struct crl_cache_crl *h, const struct crl_cert_dp *dp,
                         const struct cert_facts *f)
{
    /* (b)(1): a CRL named by cRLIssuer must be an indirect CRL; otherwise
     * its issuer is the certificate's (the lookup was by that name). */
    if (dp->has_crl_issuer && !h->indirect)
        return false;
    /* (b)(2)(i): an IDP name must match a name of the point, or of its
     * cRLIssuer when the point has no name; a certificate without
     * cRLDistributionPoints matches no IDP name (PKITS 4.14.9). */
    if (h->has_dp_name) {
        if (dp->has_name ? !any_name_matches(h->dp_names, h->n_dp_names, dp->names, dp->n_names)
                         : !any_name_matches(h->dp_names, h->n_dp_names, dp->crl_issuer_names,
                                             dp->n_crl_issuer_names))
            return false;
    }
    /* (b)(2)(ii)-(iii) */
    if ((h->scope & CRL_SCOPE_ONLY_USER_CERTS) && f->is_ca)
        return false;
    if ((h->scope & CRL_SCOPE_ONLY_CA_CERTS) && !f->is_ca)
        return false;
    return true;
}

static bool is_stale(const struct rev_ctx *ctx, int64_t next_update)
{
    return next_update != 0 && ctx->now > next_update + (int64_t)ctx->grace;
}

/* listed_revoked: 6.3.3 (i)-(j), the delta's entry wins over the complete
 * CRL's; a removeFromCRL entry means "no longer revoked". */
static bool listed_revoked(const struct crl_cache_crl *h, const struct crl_cache_crl *d,
                           struct cert_result *r)
{
    const struct crl_cache_crl *src = d != NULL && d->listed ? d : h->listed ? h : NULL;

    if (src == NULL || src->revocation_reason == VERDICT_REASON_REMOVE_FROM_CRL)
        return false;
    r->st = CS_REVOKED;
    r->reason = src->revocation_reason;
    r->date = src->revocation_date;
    return true;
}

/* check_point runs 6.3.3 (b)-(j) over the complete CRLs of one
 * distribution point, widening |*mask| (the reasons_mask). */
/* crl_weakly_signed: the algorithm policy refuses |h|'s signature (MD5,
 * or SHA-1 unless legacy: validator/algorithm_policy.c). */
static bool crl_weakly_signed(const struct rev_ctx *ctx, const struct crl_cache_crl *h)
{
    char buf[96];

    return algorithm_check_signature(ctx->pol, h->sig_nid, buf, sizeof(buf)) != NULL;
}

static void check_point(struct rev_ctx *ctx, const struct cert_facts *f,
                        const struct crl_cert_dp *dp, uint16_t *mask, struct cert_result *r)
{
    struct crl_cache_crl crls[REV_MAX_CRLS];
    const uint8_t *crl_name = f->issuer_id;
    size_t n;

    if (dp->has_crl_issuer) {
        if (!dp->crl_issuer_has_dn)
            return; /* no directoryName: no CRL of ours can be that issuer's */
        crl_name = dp->crl_issuer_name;
    }
    n = crl_cache_lookup_name(ctx->crls, crls, REV_MAX_CRLS, crl_name, f->issuer_id, f->serial,
                              f->serial_len);
    if (n > REV_MAX_CRLS)
        n = REV_MAX_CRLS;
    for (size_t i = 0; i < n && r->st == CS_GOOD; i++) {
        const struct crl_cache_crl *h = &crls[i], *d;
        uint16_t interim;

        /* RFC 5280 5.2 / 5.3: unknown critical extensions make a CRL
         * unusable; a CRL is not used before its thisUpdate. */
        if (h->delta || !h->usable || ctx->now < h->this_update || !crl_in_scope(h, dp, f))
            continue;
        if (ctx->require_crl_number && !h->has_crl_number) {
            r->why = "its issuer's CRL has no cRLNumber (RFC 5280 5.2.3)";
            continue;
        }
        if (crl_weakly_signed(ctx, h)) {
            r->why = "its issuer's CRL is signed with an algorithm the policy refuses";
            continue;
        }
        interim = h->reasons & dp->reasons;     /* (d) */
        if ((interim & (uint16_t) ~*mask) == 0) /* (e) nothing new */
            continue;
        if (!signer_trusted(ctx, f, crl_name, h->signer_key)) /* (f) */
            continue;
        d = find_delta(crls, n, h, ctx->now); /* (g) */
        if (d != NULL && crl_weakly_signed(ctx, d)) {
            r->why = "its issuer's delta CRL is signed with an algorithm the policy refuses";
            continue; /* a delta that cannot be trusted leaves the status open */
        }
        if (listed_revoked(h, d, r))          /* (h)-(j): revoked even when stale */
            return;
        /* (a): a CRL past nextUpdate (or its delta) cannot say "not revoked"
         * unless the profile tolerates stale CRLs. */
        if (is_stale(ctx, h->next_update) || (d != NULL && is_stale(ctx, d->next_update))) {
            r->stale_seen = true;
            if (ctx->on_stale == STALE_FAIL_CLOSED)
                continue;
            r->stale_used = true;
        }
        *mask |= interim; /* (i) of the reasons_mask update */
    }
}

/* cert_status: RFC 5280 6.3.3 for one certificate. */
static void cert_status(struct rev_ctx *ctx, const struct cert_facts *f, struct cert_result *r)
{
    static const struct crl_cert_dp implicit = {.reasons = CRL_REASONS_ALL};
    uint16_t mask = 0;
    size_t n = f->n_dps > 0 ? f->n_dps : 1;

    memset(r, 0, sizeof(*r));
    r->st = CS_GOOD;
    for (size_t i = 0; i < n && mask != CRL_REASONS_ALL && r->st == CS_GOOD; i++)
        check_point(ctx, f, f->n_dps > 0 ? &f->dps[i] : &implicit, &mask, r);
    if (r->st == CS_REVOKED || mask == CRL_REASONS_ALL)
        return;
    r->st = r->stale_seen ? CS_STALE : CS_UNKNOWN;
    r->why = mask != 0 ? "the applicable CRLs do not cover every reason code"
                       : "no usable CRL in scope from a valid CRL issuer";
    r->no_crl_at_all = mask == 0 && !r->stale_seen;
}

/* crl_fits_policy: the CRL that decided carries a cRLNumber (unless
 * compat) and a signature the algorithm policy accepts, as the full check
 * requires of every CRL it counts (check_point). */
static bool crl_fits_policy(const struct conformance_policy *pol, const struct crl_check_info *i)
{
    char buf[96];

    return (i->has_crl_number || (pol != NULL && pol->compat)) &&
           algorithm_check_signature(pol, i->sig_nid, buf, sizeof(buf)) == NULL;
}

enum revocation_ref_status revocation_check_ref(struct verdict *out, const struct crl_cache *crls,
                                                const uint8_t issuer_id[64],
                                                const uint8_t *serial, size_t serial_len,
                                                size_t depth, const struct revocation_policy *p,
                                                int64_t now)
{
    struct crl_check_info info;
    enum crl_status st =
        crl_cache_check_id(crls, issuer_id, serial, serial_len, now, p->grace, &info);
    bool not_listed = st == CRL_STATUS_GOOD || st == CRL_STATUS_STALE;
    const char *who = revocation_role(depth);

    if (info.needs_cert ||
        ((not_listed || st == CRL_STATUS_REVOKED) && !crl_fits_policy(p->conformance, &info)))
        return REVOCATION_REF_UNDECIDED;
    /* RFC 5280 5.2.5: a CRL limited to end-entity certificates says nothing
     * about a CA certificate, and the reverse. Depth 0 is the leaf, an end
     * entity; every other depth is a CA. */
    if (not_listed && (info.scope & (depth == 0 ? CRL_SCOPE_ONLY_CA_CERTS
                                                : CRL_SCOPE_ONLY_USER_CERTS))) {
        verdict_deny(out, VERDICT_REASON_REVOCATION_UNKNOWN,
                     "%s at depth %zu: its issuer's CRL only covers %s certificates", who, depth,
                     depth == 0 ? "CA" : "end-entity");
        return REVOCATION_REF_DENIED;
    }
    switch (st) {
    case CRL_STATUS_GOOD:
        return REVOCATION_REF_GOOD;
    case CRL_STATUS_REVOKED:
        verdict_deny(out, VERDICT_REASON_REVOKED, "%s at depth %zu revoked at %lld (reason %d)", who,
                     depth, (long long)info.revocation_date, info.revocation_reason);
        return REVOCATION_REF_DENIED;
    case CRL_STATUS_STALE:
        if (p->on_stale != STALE_FAIL_CLOSED)
            return REVOCATION_REF_STALE_OK;
        verdict_deny(out, VERDICT_REASON_REVOCATION_STALE,
                     "%s at depth %zu: CRL past nextUpdate %lld + grace %us", who, depth,
                     (long long)info.next_update, p->grace);
        return REVOCATION_REF_DENIED;
    case CRL_STATUS_NO_CRL:
        verdict_deny(out, VERDICT_REASON_REVOCATION_UNKNOWN, "%s at depth %zu: no CRL from its issuer",
                     who, depth);
        return REVOCATION_REF_DENIED;
    default:
        verdict_deny(out, VERDICT_REASON_REVOCATION_UNKNOWN, "%s at depth %zu: issuer's CRL unusable",
                     who, depth);
        return REVOCATION_REF_DENIED;
    }
}

/* reproducible: does the check by reference (revocation_check_ref), as the
 * verdict cache re-checks a hit, say what the full check said of |f|?
 * Only then may the verdict be cached. */
static bool reproducible(const struct rev_ctx *ctx, const struct cert_facts *f,
                         const struct cert_result *r)
{
    const struct revocation_policy p = {.grace = ctx->grace, .on_stale = ctx->on_stale,
                                        .conformance = ctx->pol};
    struct verdict scratch;
    enum revocation_ref_status st;

    if (r->st != CS_GOOD)
        return false;
    verdict_init(&scratch, 0);
    st = revocation_check_ref(&scratch, ctx->crls, f->issuer_id, f->serial, f->serial_len,
                              f->depth, &p, ctx->now);
    return st == (r->stale_used ? REVOCATION_REF_STALE_OK : REVOCATION_REF_GOOD);
}

/* True when a distribution point of the certificate names a cRLIssuer:
 * its CRLs are expected from that issuer, not from its own. */
static bool names_crl_issuer(const struct cert_facts *f)
{
    for (size_t i = 0; i < f->n_dps; i++)
        if (f->dps[i].has_crl_issuer)
            return true;
    return false;
}

static int deny_for(struct verdict *out, const struct rev_ctx *ctx, const struct cert_facts *f,
                    const struct cert_result *r)
{
    const char *who = ctx->depth == 0 ? revocation_role(f->depth) : "CRL issuer path certificate";

    switch (r->st) {
    case CS_REVOKED:
        verdict_deny(out, VERDICT_REASON_REVOKED, "%s at depth %zu revoked at %lld (reason %d)",
                     who, f->depth, (long long)r->date, r->reason);
        break;
    case CS_STALE:
        verdict_deny(out, VERDICT_REASON_REVOCATION_STALE,
                     "%s at depth %zu: CRL past nextUpdate + grace %us", who, f->depth, ctx->grace);
        break;
    default:
        if (r->no_crl_at_all && f->issuer_no_crl_sign && !names_crl_issuer(f) &&
            crl_cache_lookup_name(ctx->crls, NULL, 0, f->issuer_id, f->issuer_id, f->serial,
                                  f->serial_len) == 0) {
            /* No CRL at all under the issuer's name, and the issuer may not
             * sign CRLs (its own CRL was refused for that): the missing
             * key usage is the cause to name. */
            verdict_deny(out, VERDICT_REASON_KEY_USAGE,
                         "%s at depth %zu: its issuer lacks the cRLSign key usage, so no CRL "
                         "from it can decide its status",
                         who, f->depth);
            break;
        }
        verdict_deny(out, VERDICT_REASON_REVOCATION_UNKNOWN, "%s at depth %zu: %s", who, f->depth,
                     r->why != NULL ? r->why : "status undetermined");
        break;
    }
    return -1;
}

static int check_path(struct rev_ctx *ctx, struct verdict *out, struct revocation_report *rep,
                      const STACK_OF(X509) * chain, enum revocation_scope scope)
{
    size_t n = sk_X509_num(chain);
    size_t upto = scope == REVOCATION_ALL ? (n > 0 ? n - 1 : 0) : (n > 1 ? 1 : 0);
    struct cert_facts f;
    struct cert_result r;

    for (size_t d = 0; d < upto; d++) {
        if (facts_init(&f, chain, d, ctx->ids, ctx->n_ids) != 0) {
            verdict_deny(out, VERDICT_REASON_REVOCATION_UNKNOWN,
                         "%s at depth %zu: cannot read its issuer, serial or distribution points",
                         revocation_role(d), d);
            return -1;
        }
        cert_status(ctx, &f, &r);
        if (r.st != CS_GOOD)
            return deny_for(out, ctx, &f, &r);
        if (rep != NULL) {
            if (r.stale_used && !rep->stale) {
                rep->stale = true;
                revocation_stale_warning(rep->warning, sizeof(rep->warning), d);
            }
            rep->cacheable = rep->cacheable && reproducible(ctx, &f, &r);
        }
    }
    return 0;
}

int revocation_check_chain(struct verdict *out, struct revocation_report *report,
                           const struct revocation_sources *src, const STACK_OF(X509) * chain,
                           enum revocation_scope scope, uint32_t grace, enum stale_policy on_stale,
                           int64_t now, const STACK_OF(X509) * crl_issuer_candidates,
                           const struct conformance_policy *pol)
{
    const struct revocation_policy p = {
        .scope = scope, .grace = grace, .on_stale = on_stale, .conformance = pol};

    return revocation_check_chain_ids(out, report, src, chain, &p, now, crl_issuer_candidates,
                                      NULL, 0);
}

int revocation_check_chain_ids(struct verdict *out, struct revocation_report *report,
                               const struct revocation_sources *src, const STACK_OF(X509) * chain,
                               const struct revocation_policy *p, int64_t now,
                               const STACK_OF(X509) * crl_issuer_candidates,
                               const uint8_t (*issuer_ids)[CRL_CACHE_ISSUER_ID_LEN], size_t n_ids)
{
    enum revocation_scope scope = p->scope;
    struct signer_memo signers[REV_MAX_SIGNERS];
    size_t n_signers = 0;
    struct revocation_report scratch;
    struct rev_ctx ctx;

    if (report == NULL)
        report = &scratch;
    memset(report, 0, sizeof(*report));
    report->cacheable = true;
    if (scope == REVOCATION_NONE)
        return 0;
    if (src == NULL || src->crls == NULL) {
        report->cacheable = false;
        verdict_deny(out, VERDICT_REASON_REVOCATION_UNKNOWN, "no revocation data available");
        return -1;
    }
    if (chain == NULL || sk_X509_num(chain) == 0) {
        report->cacheable = false;
        verdict_deny(out, VERDICT_REASON_INTERNAL_ERROR, "revocation check without a path");
        return -1;
    }
    memset(&ctx, 0, sizeof(ctx));
    ctx.crls = src->crls;
    ctx.chain = chain;
    ctx.candidates = crl_issuer_candidates;
    ctx.anchor = sk_X509_value(chain, sk_X509_num(chain) - 1);
    ctx.grace = p->grace;
    ctx.on_stale = p->on_stale;
    ctx.require_crl_number = p->conformance == NULL || !p->conformance->compat;
    ctx.pol = p->conformance;
    ctx.now = now;
    ctx.ids = issuer_ids;
    ctx.n_ids = n_ids;
    ctx.signers = signers;
    ctx.n_signers = &n_signers;
    if (check_path(&ctx, out, report, chain, scope) != 0) {
        report->cacheable = false;
        return -1;
    }
    return 0;
}
