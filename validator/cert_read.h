/* Reading a certificate cheaply (validator/cert_read.c): what certval's
 * own checks read from every certificate of every chain, done without the
 * formatting, re-encoding and locked table lookups of the general
 * BoringSSL calls, each giving exactly the answer of the BoringSSL call it
 * replaces (tests/test_cert_read.c compares them). Part of certval_core;
 * the path verification layer (pathval.h) and validator.c use it.
 *
 * Conventions: each function states its answer as the BoringSSL call it
 * stands for does (-1/0/1 for a comparison, NULL for "none"); nothing is
 * shared between calls: every function is thread-safe. */
#ifndef CERTVAL_CERT_READ_H
#define CERTVAL_CERT_READ_H

#include <stdint.h>

#include <openssl/base.h>

/* cert_cmp_time compares the certificate time |t| with |at| (Unix
 * seconds) as X509_cmp_time(t, &at) does in this BoringSSL: -1 when |t| is
 * at or before |at|, 1 when after, 0 when |t| is not one of the two forms
 * X509_cmp_time accepts (UTCTime YYMMDDHHMMSSZ, GeneralizedTime
 * YYYYMMDDHHMMSSZ, fields in range; a day past the month's end counts on
 * into the next month, as there). Unlike X509_cmp_time it formats nothing
 * and allocates nothing; for an |at| outside years 1970-9999 it asks
 * X509_cmp_time. */
int cert_cmp_time(const ASN1_TIME *t, int64_t at);

/* cert_ext_d2i decodes extension |nid| (a NID BoringSSL knows, e.g.
 * NID_subject_alt_name) of |x| as X509_get_ext_d2i(x, nid, NULL, NULL)
 * does: NULL when |x| does not have it, has it more than once or it does
 * not decode; else a new object of the extension's type, which the caller
 * frees (GENERAL_NAMES_free, ...). X509_get_ext_d2i asks OBJ_obj2nid the
 * NID of every extension, a table search under a process-wide lock each;
 * this compares the OID's bytes. */
void *cert_ext_d2i(const X509 *x, int nid);

#endif
