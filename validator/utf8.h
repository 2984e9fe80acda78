/* UTF-8 well-formedness (RFC 3629 3), for the claims the validator checks
 * and the log lines the server writes. Pure functions, thread-safe.
 *
 * Conventions: a length or an offset, where 0 (for a length) and |n| (for
 * an offset) mean "not well-formed" and "none": never an error code. */
#ifndef CERTVAL_UTF8_H
#define CERTVAL_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* utf8_seq_len returns the length (1 to 4) of the well-formed UTF-8
 * sequence at |s| (|n| > 0 bytes left), or 0 when it is not one: no
 * overlong forms, no surrogates, nothing above U+10FFFF, no truncated
 * sequence. */
size_t utf8_seq_len(const uint8_t *s, size_t n);

/* utf8_first_bad returns the offset of the first byte of |s| (|n| bytes)
 * that does not start a well-formed UTF-8 sequence, or |n| when all of it
 * is well-formed. */
size_t utf8_first_bad(const uint8_t *s, size_t n);

#endif
