/* Reading what the certificate profiles need from a validated leaf
 * (validator/profile.c): the tenant and device ids, the extendedKeyUsage,
 * the validity period, "same CA". Used by validator.c, and by
 * tests/test_profile.c directly. Conventions: 0 or -1 (values through
 * |out| parameters), bool for predicates; the functions only read the
 * certificates and are thread-safe. */
#ifndef CERTVAL_PROFILE_H
#define CERTVAL_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>

#include "cert_read.h"
#include "validator.h"

/* An id_source resolved once at validator_new time, so the hot path does no
 * OID parsing. */
struct profile_id {
    enum id_source_type type;
    ASN1_OBJECT *attr; /* ID_SOURCE_SUBJECT_ATTR */
    char *prefix;      /* ID_SOURCE_SAN_URI */
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
 * terminated, |outlen| >= 1). Returns 0, or -1 (with |out| empty) when the
 * leaf has no such id, has it twice (ambiguous), it holds a NUL, or it does
 * not fit. A SAN URI id is read from |exts| (the leaf's extensions,
 * decoded once: cert_read.h) when it is not NULL, else decoded here. */
int profile_read_id(char *out, size_t outlen, X509 *leaf, const struct cert_exts *exts,
                    const struct profile_id *id);

/* profile_has_eku reports whether |leaf| has an extendedKeyUsage extension
 * that lists |eku|. anyExtendedKeyUsage does not stand in for it, and a
 * leaf without the extension does not have it: the profile names the
 * purpose it needs. The extension is |exts|'s when it is not NULL. */
bool profile_has_eku(X509 *leaf, const struct cert_exts *exts, const ASN1_OBJECT *eku);

/* profile_validity_seconds sets |*out_seconds| to notAfter - notBefore of
 * |x| in seconds (negative when notAfter comes first) and returns 0, or
 * returns -1 (and sets 0) when a time cannot be read. */
int profile_validity_seconds(int64_t *out_seconds, const X509 *x);

/* profile_same_ca reports whether |a| and |b| are the same CA: same subject
 * and same public key. A cross-signed copy of an intermediate (same name and
 * key, another issuer) counts as the same CA. */
bool profile_same_ca(const X509 *a, const X509 *b);

#endif
