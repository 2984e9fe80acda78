/* A chain's claims with their lengths on the wire (codec.h, struct
 * codec_claims): "acme\0evil" is handed to the validator as the 9 bytes
 * sent, which it denies MALFORMED (validator/claims.c), never as "acme".
 * Thread-safe (no state).
 *
 * Conventions: no failures (a value through |in|). */
#ifndef CERTVAL_CLAIMS_H
#define CERTVAL_CLAIMS_H

#include "certval/v1/certval.pb-c.h"
#include "codec.h"
#include "verdict-t.h"

/* claims_apply sets the tenant, device and user ids of |in| to those of
 * |cr| with the wire lengths in |c| (the chain's entry of the decoded
 * request's claims). */
void claims_apply(struct chain_input *in, const struct codec_claims *c,
                  const Certval__V1__ChainRequest *cr);

#endif
