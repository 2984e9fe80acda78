/* Verdict types shared by the validator, the server and the CLI.
 *
 * The numeric values of verdict_decision, verdict_reason and cert_kind are
 * identical to the certval.v1 protobuf enums (proto/certval/v1/certval.proto)
 * so the server copies them across without a table. A test checks that.
 *
 * Conventions: types only. */
#ifndef CERTVAL_VERDICT_T_H
#define CERTVAL_VERDICT_T_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

enum verdict_decision {
    DECISION_UNSPECIFIED = 0,
    DECISION_ALLOW = 1,
    DECISION_REQUIRE_PASSWORD = 2,
    DECISION_DENY = 3,
};

enum cert_kind {
    CERT_KIND_UNSPECIFIED = 0,
    CERT_KIND_TENANT = 1,
    CERT_KIND_DEVICE = 2,
};

enum verdict_reason {
    VERDICT_REASON_UNSPECIFIED = 0,
    VERDICT_REASON_OK = 1,
    VERDICT_REASON_MALFORMED = 2,
    VERDICT_REASON_UNTRUSTED_ISSUER = 3,
    VERDICT_REASON_BAD_SIGNATURE = 4,
    VERDICT_REASON_EXPIRED = 5,
    VERDICT_REASON_NOT_YET_VALID = 6,
    VERDICT_REASON_REVOKED = 7,
    VERDICT_REASON_REVOCATION_UNKNOWN = 8,
    VERDICT_REASON_REVOCATION_STALE = 9,
    VERDICT_REASON_KEY_USAGE = 10,
    VERDICT_REASON_EXTENDED_KEY_USAGE = 11,
    VERDICT_REASON_BASIC_CONSTRAINTS = 12,
    VERDICT_REASON_NAME_CONSTRAINTS = 13,
    VERDICT_REASON_POLICY = 14,
    VERDICT_REASON_UNKNOWN_CRITICAL_EXTENSION = 15,
    VERDICT_REASON_PATH_TOO_LONG = 16,
    VERDICT_REASON_WRONG_TENANT = 17,
    VERDICT_REASON_DEVICE_MISMATCH = 18,
    VERDICT_REASON_VALIDITY_TOO_LONG = 19,
    VERDICT_REASON_NO_MATCHING_PROFILE = 20,
    VERDICT_REASON_UNKNOWN_TENANT = 21,
    VERDICT_REASON_MISSING_IDENTITY = 22,
    VERDICT_REASON_NAME_CHAINING = 23,
    VERDICT_REASON_INTERNAL_ERROR = 24,
    VERDICT_REASON_NAME_MISMATCH = 25,
    VERDICT_REASON_WEAK_ALGORITHM = 26,
};
#define VERDICT_REASON_MAX VERDICT_REASON_WEAK_ALGORITHM

#define VERDICT_DETAIL_MAX 256
#define VERDICT_SUBJECT_MAX 256
#define VERDICT_SERIAL_HEX_MAX 84 /* 41 bytes of serial, RFC 5280 4.1.2.2 allows 20 */
#define VERDICT_PROFILE_MAX 64

/* One verdict. Fixed-size so a batch of them is one allocation. Strings are
 * NUL-terminated and truncated to fit. */
struct verdict {
    uint64_t id;
    enum verdict_decision decision;
    enum verdict_reason reason;
    enum cert_kind kind;
    bool has_leaf_sha256;
    uint8_t leaf_sha256[32];
    int64_t not_after_unix; /* 0 when unknown */
    char detail[VERDICT_DETAIL_MAX];
    char subject[VERDICT_SUBJECT_MAX];   /* RFC 2253-style, of the leaf */
    char issuer[VERDICT_SUBJECT_MAX];    /* the leaf's issuer name, same style */
    char serial_hex[VERDICT_SERIAL_HEX_MAX];
    char profile[VERDICT_PROFILE_MAX];
};

/* A borrowed byte string. */
struct cv_bytes {
    const uint8_t *data;
    size_t len;
};

/* One chain to validate, as received. All pointers are borrowed for the
 * duration of the call; strings need not be NUL-terminated. */
struct chain_input {
    uint64_t id;
    const struct cv_bytes *certs; /* DER, leaf first, then intermediates in any order */
    size_t n_certs;
    struct cv_bytes tenant_id;
    struct cv_bytes device_id;
    struct cv_bytes user_id;
};

#endif
