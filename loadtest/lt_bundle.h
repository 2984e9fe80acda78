/* The packed chain bundle shared by certval-fixtures (writer), certval-load
 * and certval-baseline-openssl (readers): every test chain of a synthetic
 * PKI in one file that the readers mmap, instead of a million PEM files.
 *
 * File layout (little-endian):
 *   header  "CVBUNDL1" | u32 version (1) | u32 record count | u64 reserved
 *   record  u32 length of what follows | u8 class | u8 own certificates |
 *           u8 shared reference (0xff = none) | u8 tenant length |
 *           u8 device length | 3 zero bytes | tenant | device |
 *           own certificates, each u32 length + DER
 * Records of class LT_CLASS_SHARED hold one certificate (an intermediate)
 * that other records reference by its index among the shared records; the
 * reader appends it after the record's own certificates.
 *
 * Conventions: 0 or -1 with a message in |err|. Plain C, no crypto, so the
 * OpenSSL baseline can use it. A reader is immutable after lt_bundle_open
 * and may be shared by threads; a writer is single-threaded. */
#ifndef CERTVAL_LT_BUNDLE_H
#define CERTVAL_LT_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Traffic classes: what a chain is, hence the verdict it must get. */
enum lt_class {
    LT_CLASS_TENANT = 0,    /* the tenant certificate: REQUIRE_PASSWORD */
    LT_CLASS_DEVICE = 1,    /* a distinct device certificate: ALLOW */
    LT_CLASS_REVOKED = 2,   /* a device certificate listed in the CRL: DENY REVOKED */
    LT_CLASS_EXPIRED = 3,   /* DENY EXPIRED */
    LT_CLASS_UNTRUSTED = 4, /* issued by a CA that is not trusted: DENY UNTRUSTED_ISSUER */
    LT_CLASS_MALFORMED = 5, /* not DER: DENY MALFORMED */
    LT_CLASS_VICTIM = 6,    /* valid device certificates that the revocation scenario revokes */
    LT_N_CLASSES = 7,
    LT_CLASS_SHARED = 0xfe, /* an intermediate referenced by other records */
};

#define LT_BUNDLE_MAX_CERTS 8
#define LT_BUNDLE_NO_REF 0xff

/* One chain, borrowed from the mapping. */
struct lt_chain {
    enum lt_class cls;
    size_t n_certs;
    const uint8_t *cert[LT_BUNDLE_MAX_CERTS];
    size_t cert_len[LT_BUNDLE_MAX_CERTS];
    const char *tenant;
    size_t tenant_len;
    const char *device;
    size_t device_len;
};

/* lt_class_name returns "tenant", "device", ... ("?" out of range). */
const char *lt_class_name(enum lt_class c);

/* lt_class_parse maps a name back into |*out|: 0, or -1 (|*out| untouched)
 * when the name is unknown. */
int lt_class_parse(enum lt_class *out, const char *name, size_t len);

/* ---- reader ---- */
struct lt_bundle;

/* lt_bundle_open maps |path| and indexes its records. Caller frees with
 * lt_bundle_free. */
int lt_bundle_open(struct lt_bundle **out, const char *path, char *err, size_t errlen);

/* lt_bundle_free unmaps |b|; NULL is accepted. */
void lt_bundle_free(struct lt_bundle *b);

/* lt_bundle_count returns the number of chains of class |c|. */
size_t lt_bundle_count(const struct lt_bundle *b, enum lt_class c);

/* lt_bundle_get fills |out| with chain |i| of class |c| (borrowed from the
 * mapping). Returns 0, or -1 when out of range. Thread-safe. */
int lt_bundle_get(const struct lt_bundle *b, enum lt_class c, size_t i, struct lt_chain *out);

/* ---- writer ---- */
struct lt_bundle_writer;

/* lt_bundle_writer_open creates |path| (truncating it). */
int lt_bundle_writer_open(struct lt_bundle_writer **out, const char *path, char *err,
                          size_t errlen);

/* lt_bundle_writer_add appends a record. |shared_ref| is LT_BUNDLE_NO_REF or
 * the index of an earlier LT_CLASS_SHARED record; tenant and device are at
 * most 255 bytes, n_certs at most LT_BUNDLE_MAX_CERTS - 1. */
int lt_bundle_writer_add(struct lt_bundle_writer *w, enum lt_class c, const char *tenant,
                         const char *device, const uint8_t *const *certs, const size_t *lens,
                         size_t n_certs, unsigned shared_ref, char *err, size_t errlen);

/* lt_bundle_writer_close writes the record count, closes the file and frees
 * |w| (also on failure). */
int lt_bundle_writer_close(struct lt_bundle_writer *w, char *err, size_t errlen);

#endif
