/* The configured certificates' memos (pathval.h, "cert_memo.c"): what a
 * cold chain through a configured intermediate or anchor would otherwise
 * compute from it again on every call (the link-cache key of its
 * signature, its decoded extensions, its identity as an issuer in the CRL
 * cache and the deny list), computed once per snapshot.
 *
 * Built by the thread that builds the snapshot, before publication, and
 * never written again: lookups need no lock. Each memo holds its own
 * reference to its certificate, so an address found in the set is that
 * certificate for as long as the set lives; a reload builds a new set for
 * the new snapshot's certificates and keys. */
#include "validator_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/sha.h>

#include "crl_cache.h"
#include "deny_list.h"

static int memo_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct cert_memo *)a)->cert;
    uintptr_t y = (uintptr_t)((const struct cert_memo *)b)->cert;

    return x < y ? -1 : x > y ? 1 : 0;
}

/* memo_init fills |m| for |x| (a reference taken); -1 when out of memory. */
static int memo_init(struct cert_memo *m, X509 *x)
{
    uint8_t *der = NULL;
    int len = i2d_X509(x, &der);

    memset(m, 0, sizeof(*m));
    if (len <= 0)
        return -1;
    SHA256(der, (size_t)len, m->der_sha256);
    OPENSSL_free(der);
    X509_up_ref(x);
    m->cert = x;
    cert_exts_init(&m->exts, x);
    cert_algs_read(&m->algs, x);
    /* The subject's DER is cached in the parsed name: encoding it cannot
     * fail then, and deny_list_issuer_key's answer is the real key. */
    m->has_ids = crl_cache_issuer_id(m->crl_issuer_id, x) == 0 &&
                 i2d_X509_NAME(X509_get_subject_name(x), NULL) > 0;
    if (m->has_ids)
        deny_list_issuer_key(m->name_sha256, X509_get_subject_name(x));
    return 0;
}

/* A configured certificate by its subject name's hash, to find the ones
 * that carry a given issuer name without comparing every pair. */
struct by_subject {
    unsigned long hash; /* X509_NAME_hash of the subject */
    X509 *cert;
};

static int by_subject_cmp(const void *a, const void *b)
{
    unsigned long x = ((const struct by_subject *)a)->hash;
    unsigned long y = ((const struct by_subject *)b)->hash;

    return x < y ? -1 : x > y ? 1 : 0;
}

/* memo_links keeps the link keys of |m|'s certificate under each
 * configured certificate named as its issuer (its own anchor, the issuing
 * CA of a configured intermediate): chain_verify looks those up on every
 * chain. |subjects| (|n|, sorted by hash) is every configured certificate.
 * A key that cannot be computed is left out (computed, and failed, on use
 * as before). */
static void memo_links(struct cert_memo *m, const struct by_subject *subjects, size_t n)
{
    X509_NAME *issuer_name = X509_get_issuer_name(m->cert);
    size_t lo = 0, hi = n;
    unsigned long h = X509_NAME_hash(issuer_name);

    while (lo < hi) { /* the first entry of hash |h| */
        size_t mid = lo + (hi - lo) / 2;
        if (subjects[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < n && subjects[i].hash == h && m->n_links < CERT_MEMO_LINKS; i++) {
        X509 *y = subjects[i].cert;

        if (X509_NAME_cmp(X509_get_subject_name(y), issuer_name) != 0 ||
            !link_cache_key_digest(m->link[m->n_links].key, m->der_sha256, y))
            continue;
        m->link[m->n_links++].issuer = y;
    }
    ERR_clear_error();
}

/* all_links fills every memo's links; -1 when out of memory. */
static int all_links(struct cert_memo_set *set)
{
    struct by_subject *subjects = calloc(set->n ? set->n : 1, sizeof(*subjects));

    if (subjects == NULL)
        return -1;
    for (size_t i = 0; i < set->n; i++) {
        subjects[i].hash = X509_NAME_hash(X509_get_subject_name(set->m[i].cert));
        subjects[i].cert = set->m[i].cert;
    }
    qsort(subjects, set->n, sizeof(*subjects), by_subject_cmp);
    for (size_t i = 0; i < set->n; i++)
        memo_links(&set->m[i], subjects, set->n);
    free(subjects);
    return 0;
}

int cert_memo_build(struct cert_memo_set *set, const STACK_OF(X509) *const *certs, size_t n,
                    char *err, size_t errlen)
{
    size_t total = 0, kept = 0;

    memset(set, 0, sizeof(*set));
    for (size_t i = 0; i < n; i++)
        total += certs[i] != NULL ? sk_X509_num(certs[i]) : 0;
    set->m = calloc(total ? total : 1, sizeof(*set->m));
    if (set->m == NULL)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; certs[i] != NULL && j < sk_X509_num(certs[i]); j++) {
            if (memo_init(&set->m[set->n], sk_X509_value(certs[i], j)) != 0)
                goto oom;
            set->n++;
        }
    }
    qsort(set->m, set->n, sizeof(*set->m), memo_cmp);
    /* The same object given twice: keep one memo. */
    for (size_t i = 0; i < set->n; i++) {
        if (kept > 0 && set->m[kept - 1].cert == set->m[i].cert) {
            cert_exts_clear(&set->m[i].exts);
            X509_free(set->m[i].cert);
            continue;
        }
        set->m[kept++] = set->m[i];
    }
    set->n = kept;
    if (all_links(set) != 0)
        goto oom;
    return 0;
oom:
    ERR_clear_error();
    cert_memo_clear(set);
    snprintf(err, errlen, "out of memory computing the configured certificates' memos");
    return -1;
}

void cert_memo_clear(struct cert_memo_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++) {
        cert_exts_clear(&set->m[i].exts);
        X509_free(set->m[i].cert);
    }
    free(set->m);
    memset(set, 0, sizeof(*set));
}

const struct cert_memo *cert_memo_find(const struct cert_memo_set *set, const X509 *x)
{
    struct cert_memo key;

    if (set == NULL || set->n == 0 || x == NULL)
        return NULL;
    key.cert = (X509 *)x; /* compared by address only */
    return bsearch(&key, set->m, set->n, sizeof(*set->m), memo_cmp);
}

bool cert_memo_link_key(uint8_t key[32], const struct cert_memo_set *set, X509 *cert,
                        X509 *issuer)
{
    const struct cert_memo *m = cert_memo_find(set, cert);

    if (m == NULL)
        return link_cache_key(key, cert, issuer);
    for (size_t i = 0; i < m->n_links; i++) {
        if (m->link[i].issuer == issuer) {
            memcpy(key, m->link[i].key, 32);
            return true;
        }
    }
    return link_cache_key_digest(key, m->der_sha256, issuer);
}
