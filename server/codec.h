/* The protobuf-c side of certval.v1.Validator/Validate, without gRPC:
 * unpacking a ValidateRequest into one arena (codec_arena.h) and packing a
 * ValidateResponse into one buffer, written from struct verdict directly.
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

/* codec_request_unpack unpacks the |len| bytes at |wire| into a new arena
 * sized from |len|: |*out_req| lives in |*out_arena| and goes with it
 * (codec_arena_free; never free_unpacked). It copies what it keeps: |wire|
 * may go once it returns. -EINVAL when the bytes are not a ValidateRequest,
 * -ENOMEM when memory ran out; both outputs NULL then. */
int codec_request_unpack(Certval__V1__ValidateRequest **out_req, struct codec_arena **out_arena,
                         const uint8_t *wire, size_t len);

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
