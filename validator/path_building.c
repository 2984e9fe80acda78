/* Path building over X509_verify_cert (pathval.c): which certificate of a
 * failed candidate path to leave out on the next attempt, so that another
 * candidate (a cross-certificate, a bridge CA's path, a re-keyed anchor)
 * gets its turn. */
#include "validator_internal.h"

#include <openssl/x509.h>

/* has_alternative: another candidate (not excluded) has |x|'s subject. */
static bool has_alternative(X509 *x, const STACK_OF(X509) * set, X509 *const *excl, size_t n_excl)
{
    for (size_t i = 0; set != NULL && i < sk_X509_num(set); i++) {
        X509 *c = sk_X509_value(set, i);
        bool excluded = false;
        if (c == x || X509_cmp(c, x) == 0)
            continue;
        for (size_t j = 0; j < n_excl; j++)
            excluded = excluded || excl[j] == c;
        if (!excluded && X509_NAME_cmp(X509_get_subject_name(c), X509_get_subject_name(x)) == 0)
            return true;
    }
    return false;
}

/* first_replaceable: the certificate of |chain| nearest above depth |from|
 * (then below it) that another candidate with its subject could replace,
 * or NULL. A failure on one edge (a name constraint, policy or path length set by a
 * CA further up, a weak algorithm) may come from any CA on the way to the
 * anchor: another path, through a bridge or cross-certificate, may avoid
 * it. The leaf (depth 0) is never replaced. */
static X509 *first_replaceable(const STACK_OF(X509) * chain, int from,
                               const STACK_OF(X509) * anchors, const STACK_OF(X509) * untrusted,
                               X509 *const *excl, size_t n_excl)
{
    int n = chain != NULL ? (int)sk_X509_num(chain) : 0;

    if (from < 1)
        from = 1;
    /* Upwards from the failing certificate, then downwards from it: a path
     * length or policy set by a CA fails at that CA, and the replaceable
     * certificate may be the one below it. */
    for (int k = 0; k < n - 1; k++) {
        int p = from + k < n ? from + k : from - (from + k - n + 1);
        if (p < 1)
            break;
        X509 *c = sk_X509_value(chain, (size_t)p);
        if (has_alternative(c, untrusted, excl, n_excl) ||
            has_alternative(c, anchors, excl, n_excl))
            return c;
    }
    return NULL;
}

/* pathbuild_pick_culprit chooses the certificate of the failed chain to exclude on
 * the next attempt: for a signature failure the issuer first (a same-name
 * issuer with another key), then the failing certificate, then the nearest
 * replaceable CA above it (first_replaceable). Returns NULL when retrying
 * cannot help. The leaf is never excluded. */
X509 *pathbuild_pick_culprit(const STACK_OF(X509) * chain, int e, int d,
                             const STACK_OF(X509) * anchors, const STACK_OF(X509) * untrusted,
                             X509 *const *excl, size_t n_excl)
{
    int n = chain != NULL ? (int)sk_X509_num(chain) : 0;
    int order[2] = {d, -1};

    if (e == X509_V_ERR_CERT_SIGNATURE_FAILURE ||
        e == X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY) {
        order[0] = d + 1;
        order[1] = d;
    }
    if (e == X509_V_ERR_OUT_OF_MEM || e == X509_V_ERR_CERT_REVOKED)
        return NULL;
    for (size_t k = 0; k < 2; k++) {
        int p = order[k];
        if (p <= 0 || p >= n)
            continue;
        X509 *c = sk_X509_value(chain, (size_t)p);
        if (has_alternative(c, untrusted, excl, n_excl) ||
            has_alternative(c, anchors, excl, n_excl))
            return c;
    }
    return first_replaceable(chain, d < 0 ? 1 : d, anchors, untrusted, excl, n_excl);
}

/* pathbuild_post_culprit: the certificate a post_check failure is about, or the
 * nearest CA above it, that another candidate could replace. */
X509 *pathbuild_post_culprit(const struct pathval_failure *f, const STACK_OF(X509) * chain,
                             const STACK_OF(X509) * anchors, const STACK_OF(X509) * untrusted,
                             X509 *const *excl, size_t n_excl)
{
    return first_replaceable(chain, f->depth, anchors, untrusted, excl, n_excl);
}

/* pathbuild_filtered: a shallow copy of |set| without the excluded certificates, or
 * NULL (caller then uses |set|) when nothing is excluded from it. */
STACK_OF(X509) *
    pathbuild_filtered(const STACK_OF(X509) * set, X509 *const *excl, size_t n_excl, bool *oom)
{
    STACK_OF(X509) *out = NULL;
    bool hit = false;

    for (size_t i = 0; set != NULL && i < sk_X509_num(set) && !hit; i++)
        for (size_t j = 0; j < n_excl && !hit; j++)
            hit = sk_X509_value(set, i) == excl[j];
    if (!hit)
        return NULL;
    out = sk_X509_new_null();
    if (out == NULL) {
        *oom = true;
        return NULL;
    }
    for (size_t i = 0; i < sk_X509_num(set); i++) {
        X509 *c = sk_X509_value(set, i);
        bool drop = false;
        for (size_t j = 0; j < n_excl; j++)
            drop = drop || c == excl[j];
        if (!drop && !sk_X509_push(out, c)) {
            *oom = true;
            sk_X509_free(out);
            return NULL;
        }
    }
    return out;
}
