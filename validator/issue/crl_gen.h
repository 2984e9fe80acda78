/* CRL fixture generator for tests and benchmarks (certval_issue, the
 * issuance library: see pki_gen.h for certificates and X509_CRL-based CRLs).
 *
 * Writes a CertificateList with CBB directly instead of X509_CRL /
 * X509_REVOKED objects: a million entries take a second and no per-entry
 * heap objects, and it can emit what RFC 5280 forbids or the cache refuses
 * (unknown critical extensions, delta indicators, non-minimal serials,
 * broken signatures) so that tests can check each refusal.
 *
 * Not linked into the service's libraries (certval_core, certval_cache).
 * Conventions: 0 or -1; thread-safe on distinct specs. */
#ifndef CERTVAL_CRL_GEN_H
#define CERTVAL_CRL_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

struct crl_gen_entry {
    uint8_t serial[32]; /* INTEGER content octets, written exactly as given */
    size_t serial_len;
    int64_t revoked_at;
    int reason;            /* CRLReason, -1 = no reasonCode extension */
    bool unknown_critical; /* add a critical entry extension nobody knows */
    bool cert_issuer;      /* add a certificateIssuer entry extension (indirect) */
    const X509_NAME *cert_issuer_name; /* its directoryName; NULL: a dNSName instead */
};

/* crl_gen_entry_fn fills entry |i| of the CRL (|out| is zeroed first). */
typedef void (*crl_gen_entry_fn)(void *arg, size_t i, struct crl_gen_entry *out);

struct crl_gen_spec {
    X509 *issuer;  /* its subject becomes the CRL issuer */
    EVP_PKEY *key; /* signs: P-256 (ecdsa-with-SHA256) or RSA (sha256WithRSA) */
    int64_t this_update;
    int64_t next_update; /* 0 = absent */
    bool has_crl_number;
    uint64_t crl_number;
    bool delta;               /* deltaCRLIndicator */
    uint64_t delta_base;      /* its BaseCRLNumber; 0 = crl_number */
    bool indirect;            /* issuingDistributionPoint indirectCRL TRUE */
    bool only_user_certs;     /* issuingDistributionPoint onlyContainsUserCerts TRUE */
    bool unknown_critical;    /* a critical CRL extension nobody knows */
    bool unknown_noncritical; /* a non-critical one */
    bool corrupt_signature;   /* flip a bit of the signature */
    /* issuingDistributionPoint extnValue DER written as given (critical),
     * e.g. a distributionPoint directoryName in another encoding;
     * replaces the one indirect / only_user_certs make. NULL = none. */
    const uint8_t *idp_raw;
    size_t idp_raw_len;
    size_t n_entries;
    crl_gen_entry_fn entry_at;
    void *arg;
};

/* crl_gen_der writes the CRL described by |spec| to a new buffer (free with
 * OPENSSL_free). 0 or -1. */
int crl_gen_der(const struct crl_gen_spec *spec, uint8_t **out, size_t *out_len);

/* crl_gen_serial_u64 writes |v| as minimal INTEGER content octets. */
void crl_gen_serial_u64(struct crl_gen_entry *e, uint64_t v);

#endif
