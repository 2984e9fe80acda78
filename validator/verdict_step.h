/* The verdict cache's entries: what the validator stores in the opaque
 * cache of cache/verdict_cache.h, and under which key.
 *
 * An entry is a verdict plus the revocation references of its validated
 * path (issuer identity + serial of each certificate below the anchor, and
 * the profile that matched), so a hit re-runs the deny-list and CRL checks
 * without parsing a certificate. The step itself (lookup, re-check, store)
 * is private to validator/ (validator_internal.h, validator/verdict_step.c);
 * validator_try_cached and validator_check_chain (validator.h) run it.
 *
 * What is cached (docs/revocation.md, "Deny list and verdict cache"): only
 * verdicts that depend on nothing but the key, the clock and the revocation
 * data re-checked at each hit: OK and the policy DENYs computed after
 * revocation passed by a check the references reproduce.
 *
 * The key does not include the request's user_id: the validator does not
 * read it today. If a verdict ever depends on it, add it to the key.
 *
 * Conventions: get and put return true on success (a hit, a stored entry).
 * Every function is thread-safe. */
#ifndef CERTVAL_VERDICT_STEP_H
#define CERTVAL_VERDICT_STEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serial.h"
#include "verdict-t.h"

struct verdict_cache;
struct verdict_step;
struct validator;
struct validator_key;
struct revocation_sources;

#define VERDICT_STEP_MAX_REFS 16   /* certificates of one path with revocation references */
#define VERDICT_STEP_SERIAL_MAX SERIAL_MAX_OCTETS /* serial content octets per reference (serial.h) */

/* One certificate of the validated path whose revocation status is
 * re-checked at every hit. */
struct verdict_step_ref {
    uint8_t issuer_name_sha256[32]; /* SHA-256 of the issuer name DER (deny_list_issuer_key) */
    uint8_t issuer_key_sha256[32];  /* SHA-256 of the issuer's public key bits */
    uint8_t issuer_name_norm[32];   /* name_norm_hash of the issuer name (by value): with the
                                     * key hash, the CRL cache's issuer id */
    uint8_t serial[VERDICT_STEP_SERIAL_MAX]; /* minimal INTEGER content octets */
    uint8_t serial_len;
};

struct verdict_step_refs {
    size_t n;         /* 0..VERDICT_STEP_MAX_REFS; ref[0] is the leaf */
    uint32_t profile; /* index of the matched profile in the configuration snapshot (the key
                       * carries the configuration version, so a hit never outlives it) */
    struct verdict_step_ref ref[VERDICT_STEP_MAX_REFS];
};

/* verdict_step_key computes the cache key of |in| under configuration
 * |config_version|: SHA-256 over a domain label, the number of
 * certificates, the SHA-256 of each certificate's DER (in the order
 * given), the tenant and device ids (length-prefixed) and the version
 * (integers LEB128, a prefix-free encoding).
 * user_id and id are not part of it. The digests of certificates seen
 * repeatedly are remembered per thread (exact bytes compared). */
void verdict_step_key(uint8_t out[32], const struct chain_input *in, uint64_t config_version);

/* verdict_step_put stores |v| and |refs| (NULL for none) under |key| in
 * |c|, served for valid_from <= now <= valid_until. Strings of |v| are
 * stored up to their NUL (at most the sizes in verdict-t.h); its id is not
 * stored. False, storing nothing, when refs->n > VERDICT_STEP_MAX_REFS, a
 * serial is longer than VERDICT_STEP_SERIAL_MAX, or verdict_cache_put
 * refuses the entry. */
bool verdict_step_put(struct verdict_cache *c, const uint8_t key[32], const struct verdict *v,
                      const struct verdict_step_refs *refs, int64_t valid_from,
                      int64_t valid_until);

/* verdict_step_get looks |key| up in |c| at |now|. On a hit it fills |out|
 * (id 0) and, when not NULL, |out_refs|, and returns true; the caller must
 * re-check every reference before using the verdict. Otherwise false with
 * |out| zeroed and out_refs->n 0. */
bool verdict_step_get(struct verdict_cache *c, struct verdict *out,
                      struct verdict_step_refs *out_refs, const uint8_t key[32], int64_t now);

/* verdict_step_try (private to validator/): the claims check, then the
 * lookup of verdict_step_lookup. True when |out| is answered (a hit, or
 * DENY MALFORMED claims); false with |out| zeroed and |st| ready for
 * verdict_step_store after the full check. */
bool verdict_step_try(struct verdict_step *st, const struct validator *v,
                      const struct revocation_sources *src, struct verdict *out,
                      const struct chain_input *in, int64_t now);

/* verdict_step_carry (private to validator/) sets |st| up for a chain
 * whose lookup under |key| (validator_try_cached_key) just missed: the
 * claims were checked by that lookup, and the store uses |key| as it is. */
void verdict_step_carry(struct verdict_step *st, const struct revocation_sources *src,
                        const struct validator_key *key);

#endif
