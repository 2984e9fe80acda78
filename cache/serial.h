/* Certificate serial numbers as certval keeps and compares them: the
 * minimal DER content octets of the INTEGER (two's complement, X.690 8.3.2,
 * so the sign octet of a positive number with the top bit set stays). One
 * form and one length limit for everything that holds a serial: CRL
 * entries (crl_cache), the deny list and the verdict cache's references.
 *
 * The limit, SERIAL_MAX_OCTETS: RFC 5280 4.1.2.2 lets conforming CAs use at
 * most 20 octets, but non-conforming CAs issue longer ones (a missing sign
 * octet makes 21, some use 32), so 64 is accepted, as the deny list and the
 * verdict cache always did. A CRL entry longer than that is refused with
 * its CRL (as one over 255 octets was before the limit was shared); a
 * certificate serial longer than that is never listed by any CRL and never
 * matches a deny-list serial entry.
 *
 * Conventions: 0 on success, -1 on failure. Thread-safe. */
#ifndef CERTVAL_SERIAL_H
#define CERTVAL_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>

#define SERIAL_MAX_OCTETS 64

/* serial_minimal drops the leading octets X.690 8.3.2 forbids (the first
 * nine bits all 0 or all 1) from the |*n| content octets at |*p|, moving
 * |*p| forward, so "00 01" and "01" name the same serial. An empty or
 * one-octet input is left as it is. Used for CRL numbers too. */
void serial_minimal(const uint8_t **p, size_t *n);

/* serial_content writes the minimal content octets of |serial| into |out|
 * and their count into |*out_len| (0 on failure). Fails on NULL, on an
 * encoding error, or when they do not fit |cap| (callers that store the
 * result pass SERIAL_MAX_OCTETS). */
int serial_content(uint8_t *out, size_t cap, size_t *out_len, const ASN1_INTEGER *serial);

#endif
