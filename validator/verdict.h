/* Names and helpers for verdicts. All functions are thread-safe.
 *
 * Conventions: nothing here fails; names are never NULL (an out-of-range
 * value has a name of its own), and a verdict's outcome is its decision
 * and enum verdict_reason, never a return code. */
#ifndef CERTVAL_VERDICT_H
#define CERTVAL_VERDICT_H

#include "verdict-t.h"

/* verdict_decision_name returns "ALLOW", "REQUIRE_PASSWORD", "DENY" or
 * "UNSPECIFIED"; never NULL. */
const char *verdict_decision_name(enum verdict_decision d);

/* verdict_reason_name returns the reason's short name without the VERDICT_REASON_
 * prefix ("OK", "EXPIRED", ...), "UNKNOWN" for an out-of-range value. */
const char *verdict_reason_name(enum verdict_reason r);

/* cert_kind_name returns "tenant", "device" or "unspecified". */
const char *cert_kind_name(enum cert_kind k);

/* verdict_init zeroes |v| and sets its id, decision DENY and reason
 * INTERNAL_ERROR, so a verdict that is never filled in fails closed. */
void verdict_init(struct verdict *v, uint64_t id);

/* verdict_deny sets DENY with |reason| and a printf-style detail. */
void verdict_deny(struct verdict *v, enum verdict_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
