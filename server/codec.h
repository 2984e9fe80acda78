/* The wire side of certval.v1.Validator/Validate, without gRPC: decoding
 * a ValidateRequest into one arena (codec_arena.h) into protobuf-c's
 * structs, and packing a ValidateResponse into one buffer, written from
 * struct verdict directly; both by hand, byte for byte what protobuf-c
 * would read and write.
 * loadtest/codec_bench measures both under callgrind. Thread-safe (no
 * shared state).
 *
 * Conventions: 0 or -errno; pointer or NULL (out of memory). */
#ifndef CERTVAL_CODEC_H
#define CERTVAL_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "certval/v1/certval.pb-c.h"
#include "codec_arena.h"
#include "verdict-t.h"

/* One chain's claims as sent: the length on the wire of its tenant,
 * device and user id. The strings of the ChainRequest hold every byte
 * sent and a NUL after them, so "acme\0evil" reads "acme" as a C string;
 * these lengths give the claim that was sent (the validator denies it
 * MALFORMED, validator/claims.c, and the audit log records it). */
struct codec_claims {
    uint32_t tenant, device, user;
};

/* An unpacked ValidateRequest: |req| and |claims| (claims[i] for
 * req->chains[i]) live in |arena| and go with it (codec_request_free;
 * never protobuf-c's free_unpacked). */
struct codec_request {
    Certval__V1__ValidateRequest *req;
    const struct codec_claims *claims;
    struct codec_arena *arena;
    size_t n_chains; /* the chains on the wire, also set when over the bound */
};

/* codec_request_unpack decodes the |len| bytes at |wire| (codec_unpack.c)
 * into |*out|, in a new arena sized from |len|. It copies what it keeps:
 * |wire| may go once it returns. The chains are counted before any is
 * decoded or anything allocated: more than |max_chains| (SIZE_MAX: no
 * bound) is -E2BIG with out->n_chains set. -EINVAL when the bytes are not
 * a ValidateRequest (exactly when protobuf-c's unpacker refuses them),
 * -ENOMEM when memory ran out. On failure req, claims and arena are NULL. */
int codec_request_unpack(struct codec_request *out, const uint8_t *wire, size_t len,
                         size_t max_chains);

/* codec_request_free frees |r|'s arena (with its request and claims) and
 * zeroes |r|; NULL and a zeroed |r| are accepted. */
void codec_request_free(struct codec_request *r);

/* codec_request_arena_size is the block codec_request_unpack gives the
 * arena of a |len|-byte request: enough for the usual request (chains of
 * certificates), which then takes one malloc. */
size_t codec_request_arena_size(size_t len);

/* codec_response_pack packs the ValidateResponse of the |n| verdicts at |v|
 * (in order) into one malloc'd buffer of |*out_len| bytes, the bytes
 * protobuf-c's own certval__v1__validate_response__pack writes. NULL (and
 * |*out_len| 0) when out of memory. The caller frees the buffer. */
uint8_t *codec_response_pack(size_t *out_len, const struct verdict *v, size_t n);

#endif
