/* Distribution point names and reasons, private to cache/ (RFC 5280
 * 4.2.1.13, 5.2.5).
 *
 * RFC 5280 6.3.3 (b)(2)(i) matches an IDP's distributionPoint against a
 * certificate's cRLDistributionPoints by name. Both sides are reduced to
 * 32-byte hashes, so a snapshot keeps 32 bytes per name and a match is a
 * memcmp: a directoryName is hashed by value (name_norm_hash, RFC 5280 7.1:
 * case, white space and PrintableString / UTF8String do not matter), every
 * other GeneralName as SHA-256 of its DER. A nameRelativeToCRLIssuer is
 * first expanded to the Name it stands for (the RDN appended to the base
 * Name), so a relative name on one side matches the same full name on the
 * other.
 *
 * Conventions: 0 on success, -1 on malformed input, -2 when there are more
 * than |cap| names. */
#ifndef CERTVAL_CRL_DP_INTERNAL_H
#define CERTVAL_CRL_DP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/bytestring.h>

/* crl_dp_hash_names hashes a DistributionPointName: |dpn| holds the
 * contents of the [0] that wraps it (one [0] fullName or [1]
 * nameRelativeToCRLIssuer element). |base| is the Name element a relative
 * name is appended to. */
int crl_dp_hash_names(CBS dpn, CBS base, uint8_t (*out)[32], size_t cap, size_t *out_n);

/* crl_dp_hash_general_names hashes each GeneralName of |names| (the
 * contents of a GeneralNames SEQUENCE), a directoryName by value. When
 * |dn| is not NULL it receives the first directoryName's Name element
 * (*has_dn tells whether one was found). */
int crl_dp_hash_general_names(CBS names, uint8_t (*out)[32], size_t cap, size_t *out_n, CBS *dn,
                              bool *has_dn);

/* crl_dp_reasons converts ReasonFlags BIT STRING contents (unused-bits
 * octet first) into a CRL_REASON mask. 0 or -1. */
int crl_dp_reasons(CBS bits, uint16_t *out);

#endif
