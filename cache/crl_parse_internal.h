/* CRL parsing on BoringSSL's CBS, private to cache/.
 *
 * Parses a DER CertificateList (RFC 5280 5.1) without building X509_CRL /
 * X509_REVOKED objects: every field is a CBS pointing into the caller's
 * buffer, which must outlive the parsed result. The revoked list is left as
 * one CBS and walked entry by entry with crl_parse_next_entry(), so a
 * million-entry CRL costs no per-entry allocation.
 *
 * Conventions: 0 on success, -1 with a message in |err| on failure. */
#ifndef CERTVAL_CRL_PARSE_INTERNAL_H
#define CERTVAL_CRL_PARSE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/bytestring.h>

#include "crl_cache.h"
#include "serial.h"

/* RFC 5280 5.2.3: cRLNumber is at most 20 octets. */
#define CRL_NUMBER_MAX 20
/* Longest serial (DER content octets) the cache stores: the one limit of
 * serial.h (RFC 5280 4.1.2.2 allows 20 octets; longer ones from
 * non-conforming CAs are accepted up to it). The snapshot arena's one
 * length byte holds it with an indirect CRL's ordinal octet. */
#define CRL_SERIAL_MAX SERIAL_MAX_OCTETS

/* Reasons a parsed CRL must not be used to decide a status (check returns
 * CRL_STATUS_UNUSABLE). */
enum crl_parse_flag {
    CRL_PF_UNKNOWN_CRITICAL = 1u << 0,       /* RFC 5280 5.2: unknown critical CRL extension */
    CRL_PF_UNKNOWN_CRITICAL_ENTRY = 1u << 1, /* RFC 5280 5.3: unknown critical entry extension */
    CRL_PF_INDIRECT = 1u << 2,        /* certificateIssuer entry in a CRL not marked indirect (5.3.3) */
    CRL_PF_PARTIAL_REASONS = 1u << 3, /* unused since onlySomeReasons is honoured (kept for ABI) */
    CRL_PF_ATTRIBUTE_CERTS = 1u << 4, /* IDP onlyContainsAttributeCerts: not for public-key certs */
    CRL_PF_TOO_MANY_NAMES = 1u << 5,  /* more IDP names or certificate issuers than we keep */
};

/* Distinct certificate issuers an indirect CRL may name (certificateIssuer
 * entry extensions, RFC 5280 5.3.3): the snapshot prefixes each serial with
 * a one-octet ordinal, 0 being the CRL issuer itself and 255 a name that is
 * not a directoryName (never matched). */
#define CRL_CERT_ISSUERS_MAX 254

struct crl_parsed {
    const uint8_t *der; /* whole CertificateList */
    size_t der_len;
    CBS tbs;         /* TBSCertList element, tag and length included: the signed bytes */
    CBS tbs_sig_alg; /* TBSCertList.signature element */
    CBS sig_alg;     /* outer signatureAlgorithm element */
    int sig_nid;     /* its algorithm as a NID; NID_undef when unknown */
    CBS sig;         /* signatureValue bits, without the unused-bits octet */
    CBS issuer;      /* issuer Name element */
    int64_t this_update;
    int64_t next_update;                /* 0 when absent */
    CBS revoked;                        /* contents of revokedCertificates; empty when absent */
    uint8_t crl_number[CRL_NUMBER_MAX]; /* minimal big-endian, non-negative */
    size_t crl_number_len;
    bool has_crl_number;
    bool delta;     /* deltaCRLIndicator present (RFC 5280 5.2.4) */
    uint8_t base_number[CRL_NUMBER_MAX]; /* its BaseCRLNumber, minimal big-endian */
    size_t base_number_len;
    uint32_t flags; /* enum crl_parse_flag */
    uint32_t scope; /* CRL_SCOPE_* of crl_cache.h (IDP restrictions) */
    /* issuingDistributionPoint (RFC 5280 5.2.5), for 6.3.3 (b) and (d). */
    bool indirect;     /* indirectCRL TRUE */
    uint16_t reasons;  /* onlySomeReasons as CRL_REASON_BIT mask; CRL_REASONS_ALL when absent */
    bool has_dp_name;  /* distributionPoint present */
    size_t n_dp_names; /* its names, hashed (crl_dp_internal.h) */
    uint8_t dp_names[CRL_DP_NAMES_MAX][32];
    uint8_t scope_id[32]; /* SHA-256 of the IDP extension value; zero when absent */
};

struct crl_parsed_entry {
    CBS serial;         /* minimal DER content octets of userCertificate */
    int64_t revoked_at; /* revocationDate, Unix seconds */
    int reason;         /* CRLReason, -1 when absent */
    bool has_cert_issuer; /* certificateIssuer entry extension present (RFC 5280 5.3.3) */
    CBS cert_issuer;      /* its first directoryName (Name element); empty when it has none */
};

/* crl_parse_der parses the CertificateList in |der|. Entries are not
 * checked here; crl_parse_next_entry does that. */
int crl_parse_der(struct crl_parsed *out, const uint8_t *der, size_t len, char *err, size_t errlen);

/* crl_parse_next_entry takes the next revokedCertificates entry off
 * |revoked|: 1 with |*out| filled, 0 when |revoked| is empty, -1 on a
 * malformed entry. Entry-extension findings are ORed into |*flags|. */
int crl_parse_next_entry(CBS *revoked, struct crl_parsed_entry *out, uint32_t *flags, char *err,
                         size_t errlen);

/* crl_parse_count_entries counts the entries of |revoked| by skipping their
 * TLVs (cheap; contents are validated later). -1 if malformed. */
int crl_parse_count_entries(const CBS *revoked, size_t *out_count);

/* crl_parse_time parses a UTCTime or GeneralizedTime element (strict DER,
 * "Z" only, RFC 5280 4.1.2.5) into Unix seconds. 1 on success, 0 if not. */
int crl_parse_time(CBS *in, int64_t *out);

/* crl_parse_integer_minimal strips redundant leading octets from INTEGER
 * content octets so equal integers compare equal byte for byte. 0 if
 * |content| is empty. */
int crl_parse_integer_minimal(CBS *content);

#endif
