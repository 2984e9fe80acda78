/* Audit log: one JSON line per DENY (and per verdict when configured) on
 * stdout, with tenant, device, user, profile, reason, issuer, serial and the
 * leaf's SHA-256 fingerprint, never the certificate itself.
 *
 * Rate-limited with a one-second window shared by all threads, so a flood of
 * bad input cannot fill a disk; each window that dropped lines is followed by
 * one line saying how many. Thread-safe, lock-free.
 *
 * Conventions: nothing fails to the caller; a line that cannot be written
 * is dropped (and counted with the rate-limited ones). */
#ifndef CERTVAL_AUDIT_H
#define CERTVAL_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "verdict-t.h"

/* audit_configure sets the policy; call before serving (not thread-safe). */
void audit_configure(bool all_verdicts, uint32_t max_lines_per_second);

/* Each value in a line is cut to its first AUDIT_FIELD_MAX bytes, followed
 * by "..." when cut, and escaped so the line is valid UTF-8 JSON whatever
 * the request held (control characters as \u00XX, bytes that are not
 * UTF-8 as \ufffd). */
#define AUDIT_FIELD_MAX 200

/* audit_verdict logs |v| if the policy says so. |tenant|, |device| and
 * |user| are the request's claims with their length on the wire (they may
 * hold any bytes, NUL included; data may be NULL when len is 0). */
void audit_verdict(const struct verdict *v, struct cv_bytes tenant, struct cv_bytes device,
                   struct cv_bytes user);

/* audit_suppressed_total returns how many lines the rate limit dropped. */
uint64_t audit_suppressed_total(void);

#endif
