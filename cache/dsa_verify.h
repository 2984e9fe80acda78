/* DSA signature verification for certificates and CRLs.
 *
 * BoringSSL parses DSA keys but its X509 layer does not verify DSA
 * signatures, and cannot decode a DSA key whose domain parameters are
 * inherited from the issuer (RFC 3279 2.3.2); PKITS 4.1.4-4.1.6 use both.
 * The path verifier (validator/pathval.c) and the CRL cache call these only
 * after BoringSSL reported a signature failure, and accept only a DSA
 * signature that verifies, so the fallback accepts nothing BoringSSL would
 * refuse for another reason. SHA-1 and SHA-256 DSA. Thread-safe: no shared
 * state. All functions return true only for a signature that verifies.
 *
 * It lives in cache/, the lower of its users' two layers: the CRL cache
 * verifies every CRL's signature when it takes the CRL in (file, push,
 * fetch), and validator/ depends on cache/, never the reverse (see
 * docs/architecture.md).
 *
 * Conventions: bool, true only for a signature that verifies. */
#ifndef CERTVAL_DSA_VERIFY_H
#define CERTVAL_DSA_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>
#include <openssl/x509.h>

/* dsa_verify_signed checks the DER DSA signature |sig| over |tbs|, made
 * with the signature algorithm |sig_nid| (dsaWithSHA1, dsa_with_SHA256) by
 * |issuer|'s DSA key. Domain parameters the key omits are inherited from
 * the nearest DSA certificate of |above| (the issuer's issuer first). */
bool dsa_verify_signed(const uint8_t *tbs, size_t tbs_len, int sig_nid, const uint8_t *sig,
                       size_t sig_len, const X509 *issuer, const STACK_OF(X509) *above);

/* dsa_verify_cert checks |cert|'s signature, as dsa_verify_signed. */
bool dsa_verify_cert(X509 *cert, const X509 *issuer, const STACK_OF(X509) *above);

/* dsa_verify_crl checks |crl|'s signature, as dsa_verify_signed. */
bool dsa_verify_crl(X509_CRL *crl, const X509 *issuer, const STACK_OF(X509) *above);

#endif
