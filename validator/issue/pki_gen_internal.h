/* Helpers shared by the certificate and CRL halves of pki_gen
 * (pki_cert.c, pki_crl.c); private to validator/issue/.
 *
 * Conventions: as pki_gen.h: 1 on success, 0 on failure, NULL for a failed
 * constructor. */
#ifndef CERTVAL_PKI_GEN_INTERNAL_H
#define CERTVAL_PKI_GEN_INTERNAL_H

#include <stdint.h>

#include <openssl/base.h>

/* pki_time_new returns |t| as UTCTime (up to 2049) or GeneralizedTime, the
 * choice RFC 5280 4.1.2.5 requires (caller frees with ASN1_TIME_free). */
ASN1_TIME *pki_time_new(int64_t t);

/* pki_add_aki adds authorityKeyIdentifier (keyIdentifier only) to a cert
 * (|x|) or a CRL (|crl|); exactly one of them is set. |issuer| == |x| means
 * self-signed. */
int pki_add_aki(X509 *x, X509_CRL *crl, X509 *issuer);

#endif
