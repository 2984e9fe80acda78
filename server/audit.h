/* Audit log: one JSON line per DENY (and per verdict when configured) on
 * stdout, with tenant, device, user, profile, reason, issuer, serial and the
 * leaf's SHA-256 fingerprint, never the certificate itself.
 *
 * Rate-limited with a one-second window shared by all threads, so a flood of
 * bad input cannot fill a disk; each window that dropped lines is followed by
 * one line saying how many. Thread-safe, lock-free. */
#ifndef CERTVAL_AUDIT_H
#define CERTVAL_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "verdict-t.h"

/* audit_configure sets the policy; call before serving (not thread-safe). */
void audit_configure(bool all_verdicts, uint32_t max_lines_per_second);

/* audit_verdict logs |v| if the policy says so. The strings are the
 * request's claims (NUL-terminated, may be empty). */
void audit_verdict(const struct verdict *v, const char *tenant, const char *device,
                   const char *user);

/* audit_suppressed_total returns how many lines the rate limit dropped. */
uint64_t audit_suppressed_total(void);

#endif
