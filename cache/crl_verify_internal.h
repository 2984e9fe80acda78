/* CRL signature verification, private to cache/ (crl_cache.c calls it
 * before a CRL is published).
 *
 * Conventions: 0, or -1 with a message in |err|. */
#ifndef CERTVAL_CRL_VERIFY_INTERNAL_H
#define CERTVAL_CRL_VERIFY_INTERNAL_H

#include <stddef.h>

#include <openssl/x509.h>

#include "crl_parse_internal.h"

/* crl_verify checks that the parsed CRL |p|, whose issuer name is
 * |crl_name|, is signed by |issuer|: the names match, |issuer| may sign
 * CRLs (keyUsage cRLSign when present), both signature algorithm fields
 * are equal (RFC 5280 5.1.1.2) and the signature verifies, through the DSA
 * fallback (parameters inherited from a certificate of |candidates| above
 * |issuer|) when BoringSSL cannot. Returns 0, or -1 with a message in
 * |err|. Thread-safe. */
int crl_verify(const struct crl_parsed *p, const X509_NAME *crl_name, X509 *issuer,
               const STACK_OF(X509) *candidates, char *err, size_t errlen);

#endif
