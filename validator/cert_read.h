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

#include <stdbool.h>
#include <stdint.h>

#include <openssl/base.h>
#include <openssl/x509v3.h>

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

/* The extensions of one certificate that certval's own checks read (name
 * constraints, profile ids, EKU, host names), decoded once and shared by
 * those checks instead of each decoding its own copy. Each value is
 * cert_ext_d2i's: NULL when absent, present twice or undecodable. */
struct cert_exts {
    GENERAL_NAMES *san;
    bool has_san; /* a subjectAltName extension is there, decodable or not */
    NAME_CONSTRAINTS *nc;
    EXTENDED_KEY_USAGE *eku;
    bool undecoded; /* one of them is there once but did not decode (malformed, or out of memory) */
};

/* cert_exts_init decodes the extensions of |x| into |e| (one pass over
 * them); |e| owns what it holds. Out of memory leaves a value NULL, as
 * X509_get_ext_d2i would. */
void cert_exts_init(struct cert_exts *e, const X509 *x);

/* cert_exts_clear frees what |e| holds and zeroes it; a zeroed |e| is
 * fine. */
void cert_exts_clear(struct cert_exts *e);

/* cert_intern_ext_oids replaces the OID object of each extension of |x|
 * that BoringSSL's path processing looks up by NID (basic constraints, key
 * usage, policies, ...) with BoringSSL's built-in object of the same OID
 * (static, its NID set). A freshly parsed OID has no NID yet, so every
 * OBJ_obj2nid on it takes a process-wide read lock before its table
 * search, and X509_verify_cert makes about 80 such calls per chain: on
 * several worker threads at once that lock's cache line moves between
 * cores on every call. After this, those calls return the NID at once.
 * The OID's bytes, and so the certificate's encoding and signature, do not
 * change; unknown OIDs are left as they are. Allocates nothing. */
void cert_intern_ext_oids(X509 *x);

/* What the algorithm policy (validator/algorithm_policy.c) reads from a
 * certificate: its signature algorithm and its public key's algorithm,
 * size or curve. */
struct cert_algs {
    int sig_nid;    /* X509_get_signature_nid */
    bool key_read;  /* the key's algorithm could be read; the rest is set only then */
    int key_nid;    /* the key's algorithm, OBJ_obj2nid */
    bool rsa_decoded;  /* NID_rsaEncryption: the key decodes (X509_get_pubkey) ... */
    unsigned rsa_bits; /* ... with this modulus size */
    bool ec_params; /* NID_X9_62_id_ecPublicKey: the algorithm has parameters ... */
    bool ec_named;  /* ... a namedCurve ... */
    int ec_curve;   /* ... this one (NID_undef when unknown) */
    /* Everything read that can be (no step failed that could succeed on
     * another try): only then may a snapshot keep it. */
    bool complete;
};

/* cert_algs_read fills |a| from |x|. */
void cert_algs_read(struct cert_algs *a, X509 *x);

/* cert_name_rfc2253 writes |name| into |out| (|outlen| >= 1 bytes, always
 * NUL-terminated, cut at outlen - 1) exactly as
 * X509_NAME_print_ex(XN_FLAG_RFC2253) prints it into a memory BIO, or as
 * X509_NAME_oneline when that fails; "" for an empty name. Names of the
 * usual attributes (CN, O, OU, C, L, ST, serialNumber, UID, DC,
 * emailAddress) with single-valued RDNs and text that needs no escaping
 * are written directly, without a BIO, OID searches or the per-character
 * escaping machinery; any other name goes through X509_NAME_print_ex. */
void cert_name_rfc2253(char *out, size_t outlen, const X509_NAME *name);

#endif
