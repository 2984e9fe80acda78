/* The Validate request decoder (server/codec.h) against protobuf-c's own
 * unpacker, on the same bytes: both accept or both refuse, and when they
 * accept they give the same chains, ids, certificates and strings, and
 * each claim length is the length of the string protobuf-c copied.
 * Shared by test_codec (hand-made and mutated requests) and the
 * fuzz_request target (whatever libFuzzer makes). */
#ifndef CERTVAL_CODEC_DIFF_H
#define CERTVAL_CODEC_DIFF_H

#include <stddef.h>
#include <stdint.h>

/* codec_diff decodes the |len| bytes at |wire| both ways. 1 when both
 * accept and agree, 0 when both refuse, -1 when they disagree (what
 * differs in |why|). */
int codec_diff(const uint8_t *wire, size_t len, char *why, size_t cap);

#endif
