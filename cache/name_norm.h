/* Distinguished names compared by value (RFC 5280 7.1), reduced to a hash.
 *
 * The CRL cache matches names as 32-byte hashes: a CRL's issuer, the
 * certificateIssuer of an indirect CRL's entries, the directoryNames of
 * distribution points and of cRLIssuer. name_norm_hash makes two encodings
 * of one name hash alike: every attribute value of a directory string type
 * (PrintableString, UTF8String, IA5String, VisibleString, T61String as
 * Latin-1, BMPString, UniversalString) becomes UTF-8 with ASCII letters
 * lower-cased, leading and trailing white space removed and inner runs of
 * white space folded to one space (RFC 4518 2.6.1 insignificant space, the
 * case folding BoringSSL's X509_NAME_cmp does: ASCII only); the attributes
 * of a multi-valued RDN are sorted; other attribute values are kept as DER.
 * The canonical form is hashed with SHA-256. A name that cannot be
 * normalised (malformed DER, invalid UTF-8, more than NAME_NORM_MAX_DER
 * bytes) is hashed as its DER bytes, under another prefix, so it still
 * equals only itself.
 *
 * Conventions: name_norm_canonical returns 0 or -1; name_norm_hash returns
 * whether the name was normalised. Reads only its input; thread-safe. */
#ifndef CERTVAL_NAME_NORM_H
#define CERTVAL_NAME_NORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/bytestring.h>

#define NAME_NORM_HASH_LEN 32
/* Bound on the input (a Name DER). Real names are a few hundred bytes;
 * the canonical form is at most twice the input (Latin-1 to UTF-8). */
#define NAME_NORM_MAX_DER 8192

/* name_norm_canonical appends the canonical encoding of the Name element
 * |der| (SEQUENCE OF RDN, tag included) to |out|. -1 when |der| is not a
 * Name that can be normalised; |out| may then hold partial output. */
int name_norm_canonical(CBB *out, const uint8_t *der, size_t len);

/* name_norm_hash writes into |out| SHA-256 of the canonical form of the
 * Name |der|, or, when it cannot be normalised, SHA-256 of a different
 * prefix and the DER itself; returns true in the first case. */
bool name_norm_hash(uint8_t out[NAME_NORM_HASH_LEN], const uint8_t *der, size_t len);

#endif
