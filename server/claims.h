/* The real length of each chain's tenant, device and user id.
 *
 * protobuf-c hands a `string` field over as a NUL-terminated char *, with
 * every byte of the field copied but its length dropped: "acme\0evil" would
 * read as "acme". claims_scan walks the request's wire bytes once more to
 * recover the lengths, so the validator sees the claim that was sent (and
 * denies it MALFORMED, see validator/claims.c) and the audit log records
 * it. Thread-safe; a struct claims is immutable once made.
 *
 * Conventions: 0 or -1 (out of memory); a value through |out|. */
#ifndef CERTVAL_CLAIMS_H
#define CERTVAL_CLAIMS_H

#include <stddef.h>
#include <stdint.h>

#include "certval/v1/certval.pb-c.h"
#include "verdict-t.h"

struct claims;

/* claims_scan sets |*out| to the claims' wire lengths for |req|, unpacked
 * from the |len| bytes at |wire|; to NULL when every claim's length is its
 * strlen (no NUL inside: the usual case, nothing allocated). -1 on
 * allocation failure (|*out| NULL: the caller must not serve the request,
 * a claim could be read short). Free with claims_free. */
int claims_scan(struct claims **out, const Certval__V1__ValidateRequest *req, const uint8_t *wire,
                size_t len);

/* claims_free frees |c|; NULL is accepted. */
void claims_free(struct claims *c);

/* claims_apply sets the tenant, device and user ids of |in| to chain |i|'s
 * claims of |cr| with their wire lengths (strlen when |c| is NULL). */
void claims_apply(struct chain_input *in, const struct claims *c, size_t i,
                  const Certval__V1__ChainRequest *cr);

#endif
