/* Certificate and CRL generation on BoringSSL (certval_issue, the issuance
 * library in validator/issue/): the demo PKI of `certvald --demo` /
 * `certvalctl demo-pki`, `certvalctl crl-sign`, test fixtures, and the loadtest
 * fixture generator use it; the validation libraries (certval_core,
 * certval_cache) do not contain it.
 *
 * Conventions: constructors return a new object (caller frees with the
 * matching BoringSSL *_free) or NULL; writers return 0 or -1 with a message
 * in |err|. All functions are thread-safe on distinct objects. */
#ifndef CERTVAL_PKI_GEN_H
#define CERTVAL_PKI_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

enum pki_key_type {
    PKI_KEY_P256 = 0,
    PKI_KEY_RSA2048 = 1,
    PKI_KEY_P384 = 2,
    PKI_KEY_RSA1024 = 3,  /* weak: for algorithm-policy vectors */
    PKI_KEY_P224 = 4,     /* a named curve outside P-256/384/521 */
    PKI_KEY_DSA1024 = 5,  /* DSA (public use only: pki_issue cannot sign with it) */
    PKI_KEY_RSA2047_PUBLIC = 6, /* public key only, 2047-bit modulus: never signs */
};

/* Extensions the conformance knobs of pki_cert_spec can leave out or flip. */
#define PKI_EXT_AKI 0x01u
#define PKI_EXT_SKI 0x02u
#define PKI_EXT_BASIC_CONSTRAINTS 0x04u
#define PKI_EXT_SAN 0x08u
#define PKI_EXT_KEY_USAGE 0x10u

/* keyUsage bits, as in X.509 (KU_* of BoringSSL's x509v3.h). 0 = no keyUsage
 * extension. */
#define PKI_KU_DIGITAL_SIGNATURE 0x0080
#define PKI_KU_KEY_ENCIPHERMENT 0x0020
#define PKI_KU_KEY_CERT_SIGN 0x0004
#define PKI_KU_CRL_SIGN 0x0002

struct pki_cert_spec {
    /* Subject attributes; NULL = absent. At least one must be set. */
    const char *cn;
    const char *o;
    const char *ou;
    const char *uid;           /* userId attribute (0.9.2342.19200300.100.1.1) */
    const char *serial_number; /* subject serialNumber attribute */
    uint64_t serial;           /* certificate serial; 0 = random 16 bytes */
    int64_t not_before;        /* Unix seconds */
    int64_t not_after;
    bool is_ca;
    int path_len;              /* CA only; -1 = no pathLenConstraint */
    unsigned key_usage;        /* PKI_KU_* bits; 0 = no extension */
    const char *eku;           /* comma-separated dotted OIDs; NULL = no extension */
    const char *const *san_uris; /* subjectAltName URIs */
    size_t n_san_uris;
    const char *const *san_dns;
    size_t n_san_dns;
    const char *crl_dp_uri;    /* cRLDistributionPoints fullName URI; NULL = none */

    /* Conformance-test knobs (docs/conformance.md); zero = a certificate
     * that follows RFC 5280 and the Baseline Requirements. */
    int sig_digest_nid;          /* digest of the signature (NID_sha1, NID_md5, ...); 0 = SHA-256 */
    bool explicit_ec_params;     /* EC subject key with specifiedCurve parameters */
    unsigned omit_ext;           /* PKI_EXT_* left out */
    unsigned flip_critical;      /* PKI_EXT_* whose usual criticality is inverted */
    const char *critical_oid;    /* an extra critical extension (empty value) with this OID */
    int version;                 /* 1 or 2: a v1 / v2 certificate, extensions kept; 0 = v3 */
    const uint8_t *serial_raw;   /* serial INTEGER content octets (two's complement); overrides serial */
    size_t serial_raw_len;
    bool empty_subject;          /* an empty subject name (the SAN then names the subject) */
    bool printable_subject;      /* subject attributes as PrintableString, not UTF8String */

    /* More subjectAltName forms, and nameConstraints (critical, CA only).
     * A constraint is "dns:example.com", "email:example.com" (or a
     * mailbox, or ".example.com"), "ip:10.0.0.0/8", "ip:2001:db8::/32" or
     * "dn:O=Example" (a one-attribute directoryName). */
    const char *const *san_ips;   /* text addresses, IPv4 or IPv6; encoded after the URIs */
    size_t n_san_ips;
    const char *const *san_emails;
    size_t n_san_emails;
    const char *const *nc_permitted;
    size_t n_nc_permitted;
    const char *const *nc_excluded;
    size_t n_nc_excluded;

    /* cRLDistributionPoints extnValue DER, written as given (fullName or
     * nameRelativeToCRLIssuer, cRLIssuer, any string encoding); overrides
     * crl_dp_uri. NULL = none. */
    const uint8_t *crl_dp_raw;
    size_t crl_dp_raw_len;
};

/* pki_key_new generates a fresh key (DSA parameters take about a second). */
EVP_PKEY *pki_key_new(enum pki_key_type type);

/* pki_issue issues a certificate for |subject_key| according to |spec|,
 * signed by |issuer_key| under |issuer| (NULL |issuer| = self-signed with
 * |issuer_key|, which must then be |subject_key|). Adds subjectKeyIdentifier
 * and authorityKeyIdentifier. SHA-256 signatures. */
X509 *pki_issue(const struct pki_cert_spec *spec, EVP_PKEY *subject_key, X509 *issuer,
                EVP_PKEY *issuer_key);

/* pki_crl_new builds a v2 CRL signed by |issuer_key| under |issuer| listing
 * |serials| (revoked at |this_update|, reason keyCompromise), with cRLNumber
 * |crl_number| and nextUpdate |next_update| (0 = none). */
X509_CRL *pki_crl_new(X509 *issuer, EVP_PKEY *issuer_key, const uint64_t *serials,
                      size_t n_serials, int64_t this_update, int64_t next_update,
                      uint64_t crl_number);

/* PEM/DER writers. pki_write_cert_pem appends when |append| is true. */
int pki_write_cert_pem(const char *path, X509 *cert, bool append, char *err, size_t errlen);
int pki_write_cert_der(const char *path, X509 *cert, char *err, size_t errlen);
int pki_write_key_pem(const char *path, EVP_PKEY *key, char *err, size_t errlen);
int pki_write_crl_der(const char *path, X509_CRL *crl, char *err, size_t errlen);

/* demo_pki_generate creates the demo PKI in |dir| (created if missing) for
 * validation time |now| and writes certval.yaml there, set to listen on
 * |listen| (e.g. "127.0.0.1:50051"). See docs/demo.md for what it contains.
 * Returns 0 or -1 with a message in |err|. */
int demo_pki_generate(const char *dir, int64_t now, const char *listen, char *err, size_t errlen);

#endif
