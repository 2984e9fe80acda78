/* Reading what the certificate profiles need from a validated leaf: the
 * tenant and device ids, the extendedKeyUsage, the validity period. */
#include "validator_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/obj.h>
#include <openssl/x509v3.h>

int profile_id_init(struct profile_id *id, const struct id_source *src, char *err, size_t errlen)
{
    memset(id, 0, sizeof(*id));
    id->type = src->type;
    switch (src->type) {
    case ID_SOURCE_NONE:
        return 0;
    case ID_SOURCE_SUBJECT_ATTR:
        /* OBJ_txt2obj with no_name = 0 accepts "CN", "serialNumber", "UID"
         * (userId) and dotted OIDs alike. */
        id->attr = src->value != NULL ? OBJ_txt2obj(src->value, 0) : NULL;
        if (id->attr == NULL) {
            ERR_clear_error();
            snprintf(err, errlen, "unknown subject attribute \"%s\"",
                     src->value != NULL ? src->value : "(none)");
            return -1;
        }
        return 0;
    case ID_SOURCE_SAN_URI:
        if (src->value == NULL || src->value[0] == '\0') {
            snprintf(err, errlen, "SAN URI id source needs a prefix");
            return -1;
        }
        id->prefix = strdup(src->value);
        if (id->prefix == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        id->prefix_len = strlen(id->prefix);
        return 0;
    default:
        snprintf(err, errlen, "unknown id source type %d", (int)src->type);
        return -1;
    }
}

void profile_id_clear(struct profile_id *id)
{
    if (id == NULL)
        return;
    ASN1_OBJECT_free(id->attr);
    free(id->prefix);
    memset(id, 0, sizeof(*id));
}

/* copy_id copies |len| bytes into |out| refusing embedded NULs (an id with
 * a NUL could compare equal to a shorter configured id in C strings). */
static int copy_id(char *out, size_t outlen, const uint8_t *p, size_t len)
{
    if (len == 0 || len >= outlen || memchr(p, '\0', len) != NULL)
        return -1;
    memcpy(out, p, len);
    out[len] = '\0';
    return 0;
}

static int read_subject_attr(char *out, size_t outlen, X509 *leaf, const ASN1_OBJECT *attr)
{
    X509_NAME *name = X509_get_subject_name(leaf);
    int idx = X509_NAME_get_index_by_OBJ(name, attr, -1);
    uint8_t *utf8 = NULL;
    int n, rc;

    /* Two values of the attribute make the id ambiguous: refuse rather
     * than pick one (a CA could be tricked into issuing a second CN). */
    if (idx < 0 || X509_NAME_get_index_by_OBJ(name, attr, idx) >= 0)
        return -1;
    ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    switch (ASN1_STRING_type(v)) {
    case V_ASN1_UTF8STRING:
    case V_ASN1_PRINTABLESTRING:
    case V_ASN1_IA5STRING:
        /* Already UTF-8 (or a subset): no conversion, no allocation. */
        return copy_id(out, outlen, ASN1_STRING_get0_data(v), (size_t)ASN1_STRING_length(v));
    default:
        n = ASN1_STRING_to_UTF8(&utf8, v);
        if (n < 0) {
            ERR_clear_error();
            return -1;
        }
        rc = copy_id(out, outlen, utf8, (size_t)n);
        OPENSSL_free(utf8);
        return rc;
    }
}

static int read_san_uri(char *out, size_t outlen, X509 *leaf, const struct cert_exts *exts,
                        const struct profile_id *id)
{
    GENERAL_NAMES *own = exts == NULL ? cert_ext_d2i(leaf, NID_subject_alt_name) : NULL;
    const GENERAL_NAMES *gens = exts != NULL ? exts->san : own;
    int rc = -1;

    for (size_t i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_URI)
            continue;
        const uint8_t *p = ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
        size_t len = (size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier);
        if (len > id->prefix_len && memcmp(p, id->prefix, id->prefix_len) == 0) {
            rc = copy_id(out, outlen, p + id->prefix_len, len - id->prefix_len);
            break; /* the first matching URI decides (validator.h) */
        }
    }
    GENERAL_NAMES_free(own);
    ERR_clear_error();
    return rc;
}

int profile_read_id(char *out, size_t outlen, X509 *leaf, const struct cert_exts *exts,
                    const struct profile_id *id)
{
    out[0] = '\0';
    switch (id->type) {
    case ID_SOURCE_SUBJECT_ATTR:
        return read_subject_attr(out, outlen, leaf, id->attr);
    case ID_SOURCE_SAN_URI:
        return read_san_uri(out, outlen, leaf, exts, id);
    default:
        return -1;
    }
}

bool profile_has_eku(X509 *leaf, const struct cert_exts *exts, const ASN1_OBJECT *eku)
{
    EXTENDED_KEY_USAGE *own = exts == NULL ? cert_ext_d2i(leaf, NID_ext_key_usage) : NULL;
    const EXTENDED_KEY_USAGE *ekus = exts != NULL ? exts->eku : own;
    bool found = false;

    for (size_t i = 0; ekus != NULL && i < sk_ASN1_OBJECT_num(ekus) && !found; i++)
        found = OBJ_cmp(sk_ASN1_OBJECT_value(ekus, i), eku) == 0;
    EXTENDED_KEY_USAGE_free(own);
    ERR_clear_error();
    return found;
}

int profile_validity_seconds(int64_t *out_seconds, const X509 *x)
{
    int64_t nb, na;

    *out_seconds = 0;
    if (cv_asn1_time_to_unix(&nb, X509_get0_notBefore(x)) != 0 ||
        cv_asn1_time_to_unix(&na, X509_get0_notAfter(x)) != 0)
        return -1;
    *out_seconds = na - nb;
    return 0;
}

bool profile_same_ca(const X509 *a, const X509 *b)
{
    if (a == b)
        return true;
    return X509_NAME_cmp(X509_get_subject_name(a), X509_get_subject_name(b)) == 0 &&
           ASN1_STRING_cmp(X509_get0_pubkey_bitstr(a), X509_get0_pubkey_bitstr(b)) == 0;
}
