#include "verdict.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const reason_names[] = {
    [VERDICT_REASON_UNSPECIFIED] = "UNSPECIFIED",
    [VERDICT_REASON_OK] = "OK",
    [VERDICT_REASON_MALFORMED] = "MALFORMED",
    [VERDICT_REASON_UNTRUSTED_ISSUER] = "UNTRUSTED_ISSUER",
    [VERDICT_REASON_BAD_SIGNATURE] = "BAD_SIGNATURE",
    [VERDICT_REASON_EXPIRED] = "EXPIRED",
    [VERDICT_REASON_NOT_YET_VALID] = "NOT_YET_VALID",
    [VERDICT_REASON_REVOKED] = "REVOKED",
    [VERDICT_REASON_REVOCATION_UNKNOWN] = "REVOCATION_UNKNOWN",
    [VERDICT_REASON_REVOCATION_STALE] = "REVOCATION_STALE",
    [VERDICT_REASON_KEY_USAGE] = "KEY_USAGE",
    [VERDICT_REASON_EXTENDED_KEY_USAGE] = "EXTENDED_KEY_USAGE",
    [VERDICT_REASON_BASIC_CONSTRAINTS] = "BASIC_CONSTRAINTS",
    [VERDICT_REASON_NAME_CONSTRAINTS] = "NAME_CONSTRAINTS",
    [VERDICT_REASON_POLICY] = "POLICY",
    [VERDICT_REASON_UNKNOWN_CRITICAL_EXTENSION] = "UNKNOWN_CRITICAL_EXTENSION",
    [VERDICT_REASON_PATH_TOO_LONG] = "PATH_TOO_LONG",
    [VERDICT_REASON_WRONG_TENANT] = "WRONG_TENANT",
    [VERDICT_REASON_DEVICE_MISMATCH] = "DEVICE_MISMATCH",
    [VERDICT_REASON_VALIDITY_TOO_LONG] = "VALIDITY_TOO_LONG",
    [VERDICT_REASON_NO_MATCHING_PROFILE] = "NO_MATCHING_PROFILE",
    [VERDICT_REASON_UNKNOWN_TENANT] = "UNKNOWN_TENANT",
    [VERDICT_REASON_MISSING_IDENTITY] = "MISSING_IDENTITY",
    [VERDICT_REASON_NAME_CHAINING] = "NAME_CHAINING",
    [VERDICT_REASON_INTERNAL_ERROR] = "INTERNAL_ERROR",
    [VERDICT_REASON_NAME_MISMATCH] = "NAME_MISMATCH",
    [VERDICT_REASON_WEAK_ALGORITHM] = "WEAK_ALGORITHM",
};

const char *verdict_reason_name(enum verdict_reason r)
{
    if ((unsigned)r > VERDICT_REASON_MAX || reason_names[r] == NULL)
        return "UNKNOWN";
    return reason_names[r];
}

const char *verdict_decision_name(enum verdict_decision d)
{
    switch (d) {
    case DECISION_ALLOW:
        return "ALLOW";
    case DECISION_REQUIRE_PASSWORD:
        return "REQUIRE_PASSWORD";
    case DECISION_DENY:
        return "DENY";
    default:
        return "UNSPECIFIED";
    }
}

const char *cert_kind_name(enum cert_kind k)
{
    switch (k) {
    case CERT_KIND_TENANT:
        return "tenant";
    case CERT_KIND_DEVICE:
        return "device";
    default:
        return "unspecified";
    }
}

void verdict_init(struct verdict *v, uint64_t id)
{
    memset(v, 0, sizeof(*v));
    v->id = id;
    v->decision = DECISION_DENY;
    v->reason = VERDICT_REASON_INTERNAL_ERROR;
}

void verdict_deny(struct verdict *v, enum verdict_reason reason, const char *fmt, ...)
{
    va_list ap;

    v->decision = DECISION_DENY;
    v->reason = reason;
    va_start(ap, fmt);
    vsnprintf(v->detail, sizeof(v->detail), fmt, ap);
    va_end(ap);
}
