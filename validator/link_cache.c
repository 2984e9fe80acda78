/* Verified-link cache (issue 15 item 1): "certificate X's signature
 * verifies under public key K" for the CA certificates of a path, so that
 * a cold chain through a known intermediate pays the leaf's signature only.
 *
 * Key: SHA-256 over SHA-256(X's DER) || DER of the issuer's
 * SubjectPublicKeyInfo. The same intermediate under a different issuer key
 * is another key, never a hit. Only a signature that X509_verify accepted
 * is stored (never a DSA link that dsa_verify.c excused, never a failure).
 *
 * A fixed table of LINK_CACHE_SLOTS direct-mapped slots (bounded memory;
 * a newer link overwrites an older one in its slot, which only costs a
 * re-verification). Reads are lock-free: each slot is a seqlock over four
 * atomic words, so a reader sees a whole key or a miss. Writers (a link
 * verified for the first time) take one mutex. The cache belongs to one
 * pathval_env, i.e. one validator snapshot, and dies with it. */
#include "validator_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/mem.h>
#include <openssl/sha.h>

#define LINK_CACHE_SLOTS 4096 /* power of two; 40 bytes each */

struct link_slot {
    _Atomic uint64_t seq; /* even: stable; odd: being written; 0: empty */
    _Atomic uint64_t k[4];
};

struct link_cache {
    pthread_mutex_t wlock;
    struct link_slot slot[LINK_CACHE_SLOTS];
};

_Atomic uint64_t pathval_signature_verifies;

struct link_cache *link_cache_new(void)
{
    struct link_cache *c = calloc(1, sizeof(*c));

    if (c != NULL)
        pthread_mutex_init(&c->wlock, NULL);
    return c;
}

void link_cache_free(struct link_cache *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->wlock);
    free(c);
}

bool link_cache_key_digest(uint8_t key[32], const uint8_t cert_sha256[32], X509 *issuer)
{
    uint8_t *spki = NULL;
    int slen = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(issuer), &spki);
    SHA256_CTX s;

    if (slen <= 0) {
        OPENSSL_free(spki);
        return false;
    }
    SHA256_Init(&s);
    SHA256_Update(&s, cert_sha256, SHA256_DIGEST_LENGTH);
    SHA256_Update(&s, spki, (size_t)slen);
    SHA256_Final(key, &s);
    OPENSSL_free(spki);
    return true;
}

bool link_cache_key(uint8_t key[32], X509 *cert, X509 *issuer)
{
    uint8_t *der = NULL, h[SHA256_DIGEST_LENGTH];
    int dlen = i2d_X509(cert, &der);
    bool ok = dlen > 0;

    if (ok) {
        SHA256(der, (size_t)dlen, h);
        ok = link_cache_key_digest(key, h, issuer);
    }
    OPENSSL_free(der);
    return ok;
}

static void key_words(uint64_t w[4], const uint8_t key[32])
{
    memcpy(w, key, 32);
}

bool link_cache_has(struct link_cache *c, const uint8_t key[32])
{
    uint64_t w[4];
    struct link_slot *s;
    uint64_t s1, s2;
    bool same = true;

    if (c == NULL)
        return false;
    key_words(w, key);
    s = &c->slot[w[0] & (LINK_CACHE_SLOTS - 1)];
    s1 = atomic_load_explicit(&s->seq, memory_order_acquire);
    if (s1 == 0 || (s1 & 1) != 0)
        return false;
    for (size_t i = 0; i < 4; i++)
        same = (atomic_load_explicit(&s->k[i], memory_order_relaxed) == w[i]) && same;
    atomic_thread_fence(memory_order_acquire);
    s2 = atomic_load_explicit(&s->seq, memory_order_relaxed);
    return same && s1 == s2;
}

void link_cache_put(struct link_cache *c, const uint8_t key[32])
{
    uint64_t w[4], q;
    struct link_slot *s;

    if (c == NULL)
        return;
    key_words(w, key);
    s = &c->slot[w[0] & (LINK_CACHE_SLOTS - 1)];
    pthread_mutex_lock(&c->wlock);
    q = atomic_load_explicit(&s->seq, memory_order_relaxed);
    atomic_store_explicit(&s->seq, q + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    for (size_t i = 0; i < 4; i++)
        atomic_store_explicit(&s->k[i], w[i], memory_order_relaxed);
    atomic_store_explicit(&s->seq, q + 2, memory_order_release);
    pthread_mutex_unlock(&c->wlock);
}
