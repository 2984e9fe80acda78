/* Private helpers shared by the files of validator/ (load.c, pathval.c,
 * profile.c, validator.c). Not part of the public API. */
#ifndef CERTVAL_VALIDATOR_INTERNAL_H
#define CERTVAL_VALIDATOR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>
#include <openssl/x509.h>

#include "validator.h"

/* Largest certificate file cv_load_certs accepts: a CA bundle of a few
 * hundred certificates fits, a runaway file does not. */
#define CV_MAX_FILE_BYTES (16u * 1024u * 1024u)
/* Largest CRL file cv_load_crls accepts: the server's default admin push
 * limit (admin.max_message_bytes), so certvalctl reads every CRL the
 * server can be given (a 1,000,000-entry CRL is about 49 MB). */
#define CV_MAX_CRL_FILE_BYTES (256u * 1024u * 1024u)

/* ---- load.c ---- */

/* cv_certs_from_mem parses PEM (one or several) or one DER certificate held
 * in |buf| into a new stack. |what| names the source in messages. */
int cv_certs_from_mem(STACK_OF(X509) **out, const uint8_t *buf, size_t len, const char *what,
                      char *err, size_t errlen);

/* cv_stack_append_certs appends new references to every certificate of
 * |from| to |to|. */
int cv_stack_append_certs(STACK_OF(X509) *to, const STACK_OF(X509) *from);

/* cv_asn1_time_to_unix converts an ASN1_TIME (UTCTime or GeneralizedTime in
 * the DER form RFC 5280 4.1.2.5 requires) to Unix seconds. Returns 0 or -1. */
int cv_asn1_time_to_unix(int64_t *out, const ASN1_TIME *t);

/* cv_claims_check denies |out| MALFORMED, with which claim and byte in the
 * detail, when the tenant, device or user id of |in| holds a NUL byte or is
 * not valid UTF-8 (validator/claims.c); -1 then, else 0. Thread-safe. */
int cv_claims_check(struct verdict *out, const struct chain_input *in);

/* ---- pathval.c ---- */

/* A prepared verification environment: the X509_STORE holding the anchors,
 * flags and callbacks. Immutable once built; shared by every thread. */
struct pathval_env {
    X509_STORE *store;
    STACK_OF(X509) *anchors; /* same certificates as the store, for retries */
};

/* What one validation run needs beyond the environment. */
struct pathval_run {
    int64_t at;
    uint32_t clock_skew;            /* seconds tolerated on notBefore/notAfter */
    unsigned long flags;            /* X509_V_FLAG_* beyond the defaults */
    STACK_OF(ASN1_OBJECT) *policies; /* borrowed; NULL = anyPolicy */
    int purpose;                    /* X509_PURPOSE_*, 0 = none */
    const char *hostname;
    int max_depth;                  /* certificates below the anchor */
    uint32_t max_attempts;
    STACK_OF(X509_CRL) *crls;       /* borrowed; NULL = none */
};

/* pathval_env_init builds the store for |anchors| (references taken).
 * Returns 0 or -1 with |err|. */
int pathval_env_init(struct pathval_env *env, const STACK_OF(X509) *anchors, char *err,
                     size_t errlen);

/* pathval_env_clear frees what |env| holds; safe on a zeroed env. */
void pathval_env_clear(struct pathval_env *env);

/* pathval_verify validates |leaf| with |untrusted| in |env| as |run| says and
 * fills |res| (res->chain on success). Returns 0, or -1 on an internal
 * error (message in res->detail). Thread-safe. */
int pathval_verify(struct path_result *res, const struct pathval_env *env,
                   const struct pathval_run *run, X509 *leaf, STACK_OF(X509) *untrusted);

/* {"2.5.29.32.0"}: anyPolicy, the default initial policy set. */
extern const char *const pathval_any_policy[1];

/* pathval_policies_from_oids parses dotted OIDs into a new stack; NULL on a
 * bad OID (named in |err|). n == 0 gives an empty stack. */
STACK_OF(ASN1_OBJECT) *pathval_policies_from_oids(const char *const *oids, size_t n, char *err,
                                                  size_t errlen);

/* ---- profile.c ---- */

/* An id_source resolved once at validator_new time, so the hot path does no
 * OID parsing. */
struct profile_id {
    enum id_source_type type;
    ASN1_OBJECT *attr;   /* ID_SOURCE_SUBJECT_ATTR */
    char *prefix;        /* ID_SOURCE_SAN_URI */
    size_t prefix_len;
};

/* profile_id_init resolves |src| ("CN", "serialNumber", "UID", a dotted
 * OID, or a URI prefix). Returns 0 or -1 with |err|. */
int profile_id_init(struct profile_id *id, const struct id_source *src, char *err, size_t errlen);

/* profile_id_clear frees what |id| holds; safe on a zeroed one. */
void profile_id_clear(struct profile_id *id);

/* Largest tenant or device id read from a certificate. */
#define PROFILE_ID_MAX 256

/* profile_read_id copies the id |id| selects in |leaf| into |out| (NUL
 * terminated, |outlen| >= 1). Returns its length, or -1 when the leaf has no
 * such id, has it twice (ambiguous), it holds a NUL, or it does not fit. */
int profile_read_id(char *out, size_t outlen, X509 *leaf, const struct profile_id *id);

/* profile_has_eku reports whether |leaf| has an extendedKeyUsage extension
 * that lists |eku|. anyExtendedKeyUsage does not stand in for it, and a
 * leaf without the extension does not have it: the profile names the
 * purpose it needs. */
bool profile_has_eku(X509 *leaf, const ASN1_OBJECT *eku);

/* profile_validity_seconds returns notAfter - notBefore of |x| in seconds,
 * or -1 when a time cannot be read. */
int64_t profile_validity_seconds(const X509 *x);

/* profile_same_ca reports whether |a| and |b| are the same CA: same subject
 * and same public key. A cross-signed copy of an intermediate (same name and
 * key, another issuer) counts as the same CA. */
bool profile_same_ca(const X509 *a, const X509 *b);

#endif
