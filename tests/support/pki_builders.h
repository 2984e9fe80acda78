/* Test support: CAs and chains on validator/pki_gen.h for the unit tests.
 * Every builder asserts (Criterion) that generation worked, so a test never
 * goes on with a NULL certificate. Objects are owned by the caller and
 * freed with the matching *_free; the *_free functions accept zeroed
 * structures. */
#ifndef CERTVAL_TEST_PKI_BUILDERS_H
#define CERTVAL_TEST_PKI_BUILDERS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>
#include <openssl/x509.h>

#include "pki_gen.h"

#define TS_CLIENT_AUTH "1.3.6.1.5.5.7.3.2"
#define TS_SERVER_AUTH "1.3.6.1.5.5.7.3.1"

/* A certificate and its private key. */
struct ts_cert {
    EVP_PKEY *key;
    X509 *cert;
};

/* ts_ca_spec returns the usual CA: subject CN |cn| and O "certval test",
 * valid from |not_before| to |not_after|, basicConstraints CA without a
 * path length, keyUsage keyCertSign + cRLSign. */
struct pki_cert_spec ts_ca_spec(const char *cn, int64_t not_before, int64_t not_after);

/* ts_leaf_spec returns the usual end entity: subject CN |cn|, valid from
 * |not_before| to |not_after|, keyUsage digitalSignature, EKU clientAuth,
 * no subjectAltName. */
struct pki_cert_spec ts_leaf_spec(const char *cn, int64_t not_before, int64_t not_after);

/* ts_issue issues |spec| for |key| under |issuer| (NULL = self-signed). */
X509 *ts_issue(const struct pki_cert_spec *spec, EVP_PKEY *key, const struct ts_cert *issuer);

/* ts_ca_new makes a P-256 CA from ts_ca_spec(|cn|, ...) under |issuer|
 * (NULL = a self-signed root). */
struct ts_cert ts_ca_new(const char *cn, const struct ts_cert *issuer, int64_t not_before,
                         int64_t not_after);

/* ts_cert_new makes a fresh |type| key and a certificate from |spec| for it
 * under |issuer| (NULL = self-signed). */
struct ts_cert ts_cert_new(const struct pki_cert_spec *spec, enum pki_key_type type,
                           const struct ts_cert *issuer);

/* ts_cert_free frees both and zeroes |c|. */
void ts_cert_free(struct ts_cert *c);

#define TS_CHAIN_MAX 8

/* A chain from a self-signed root (index 0) down to the last certificate
 * (index n - 1), each issued by the one before it. */
struct ts_chain {
    size_t n;
    EVP_PKEY *key[TS_CHAIN_MAX];
    X509 *cert[TS_CHAIN_MAX];
};

/* ts_chain_build issues |n| certificates from |specs| (root first), level i
 * with a fresh key of type |keys|[i] (|keys| NULL = all P-256). */
void ts_chain_build(struct ts_chain *c, size_t n, const struct pki_cert_spec *specs,
                    const enum pki_key_type *keys);

/* ts_chain_free frees every level and zeroes |c|. */
void ts_chain_free(struct ts_chain *c);

/* ts_stack_of returns a new stack holding |certs| without taking
 * references (free it with sk_X509_free, not sk_X509_pop_free). */
STACK_OF(X509) *ts_stack_of(X509 *const *certs, size_t n);

/* ts_write_cert_pem writes |x| as PEM to |dir|/|name| and the path to
 * |path| (|cap| bytes). */
void ts_write_cert_pem(char *path, size_t cap, const char *dir, const char *name, X509 *x);

#endif
