/* Verdict cache: answers for chains already validated.
 *
 * A chain seen before (same certificates in the same order, same tenant and
 * device, same configuration version) is answered without parsing or
 * signature work. What must stay fresh is re-checked by the caller on every
 * hit: the cache returns, with the verdict, the revocation references of the
 * validated path (issuer identity + serial of each certificate that needs
 * revocation checking), and refuses hits outside the time window in which
 * the verdict holds (so an expiry takes effect at once).
 *
 * Concurrency: every function is thread-safe. The table is split into up to
 * 64 shards by key bits, each with its own mutex, CLOCK eviction and share
 * of the bounds; a get or put holds one shard's mutex for a lookup and a
 * copy of a few hundred bytes. No RCU: callers need not be registered.
 * Hit, miss and eviction counters are per shard (relaxed atomics).
 *
 * What callers should cache (docs/revocation.md, "Deny list and verdict
 * cache"): only verdicts that depend on nothing but the key, the clock and
 * the revocation data re-checked at each hit. Do not cache DENY for
 * MALFORMED, INTERNAL_ERROR or a limit (path attempts, sizes): they may be
 * transient or cheap to reproduce. REVOKED / REVOCATION_UNKNOWN /
 * REVOCATION_STALE denials are better not cached either (the re-check
 * decides them). Time-dependent answers are fine as long as the window in
 * which they hold is given to verdict_cache_put (see there).
 *
 * The key does not include the request's user_id: the validator does not
 * read it today. If a verdict ever depends on it, add it to the key. */
#ifndef CERTVAL_VERDICT_CACHE_H
#define CERTVAL_VERDICT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../validator/verdict-t.h"
#include "serial.h"

#define VC_MAX_REFS 16   /* certificates of one path with revocation references */
#define VC_SERIAL_MAX SERIAL_MAX_OCTETS /* serial content octets per reference (serial.h) */

/* One certificate of the validated path whose revocation status must be
 * re-checked at every hit. */
struct vc_revocation_ref {
    uint8_t issuer_name_sha256[32]; /* SHA-256 of the issuer name DER (deny_list_issuer_key) */
    uint8_t issuer_key_sha256[32];  /* SHA-256 of the issuer's public key bits: with the name
                                     * hash, the CRL cache's issuer id; zero when unused */
    uint8_t serial[VC_SERIAL_MAX];  /* minimal INTEGER content octets */
    uint8_t serial_len;
    uint64_t handle; /* opaque to the cache, copied back as given (for example an index
                      * into the configuration snapshot: the key carries the
                      * configuration version, so a hit never outlives it) */
};

struct vc_revocation_refs {
    size_t n; /* 0..VC_MAX_REFS */
    uint64_t crl_generation;  /* crl_cache_generation at validation time (informational) */
    uint64_t deny_generation; /* deny_list_generation at validation time (informational) */
    struct vc_revocation_ref ref[VC_MAX_REFS];
};

struct verdict_cache_stats {
    uint64_t hits;
    uint64_t misses; /* absent, or outside its time window */
    uint64_t evictions; /* removed by CLOCK to respect the bounds */
    size_t entries;
    size_t bytes; /* accounted bytes of the entries (allocation + 16 bytes of malloc overhead) */
};

struct verdict_cache;

/* verdict_cache_new returns an empty cache holding at most |max_entries|
 * entries and |max_bytes| accounted bytes (both split evenly across the
 * shards; each shard evicts on its own, so the whole cache may start
 * evicting a little before either bound is reached). Besides the entries it
 * allocates about 16 bytes per possible entry up front. NULL when
 * |max_entries| is 0 or over 2^26, |max_bytes| under 4096, or on allocation
 * failure. */
struct verdict_cache *verdict_cache_new(size_t max_entries, size_t max_bytes);

/* verdict_cache_free frees |c| and its entries; NULL is accepted. No thread
 * may be using it. */
void verdict_cache_free(struct verdict_cache *c);

/* verdict_cache_key computes the cache key of |in| under configuration
 * |config_version|: SHA-256 over a domain label, the number of
 * certificates, the SHA-256 of each certificate's DER (in the order
 * given), the tenant and device ids (length-prefixed) and the version.
 * user_id and id are not part of it. Thread-safe: the digests of certificates
 * seen repeatedly are remembered per thread (exact bytes compared). */
void verdict_cache_key(uint8_t out[32], const struct chain_input *in, uint64_t config_version);

/* verdict_cache_get looks |key| up at time |now|. On a hit (present and
 * valid_from <= now <= valid_until) it copies the verdict into |out| (id set
 * to 0: the caller sets the request's id) and, when |out_refs| is not NULL,
 * the revocation references, and returns true. Otherwise returns false and
 * zeroes |out| and |out_refs|; an entry found past its valid_until is
 * removed. The caller must then re-check every reference (CRL cache, deny
 * list, leaf deny entry) before using the verdict. */
bool verdict_cache_get(struct verdict_cache *c, struct verdict *out,
                       struct vc_revocation_refs *out_refs, const uint8_t key[32], int64_t now);

/* verdict_cache_put stores |v| (and |refs|, NULL for none) under |key|,
 * replacing an entry with the same key. The verdict is served for
 * valid_from <= now <= valid_until only:
 *  - a verdict over a time-valid path: valid_from = the latest notBefore of
 *    the path, valid_until = the earliest notAfter (both widened by the
 *    validator's clock skew when it applies one);
 *  - DENY EXPIRED: valid_from = the expiry instant that caused it,
 *    valid_until = INT64_MAX; DENY NOT_YET_VALID: valid_from = INT64_MIN,
 *    valid_until = the notBefore that caused it, minus one.
 * Strings of |v| are stored up to their NUL (at most the sizes in
 * verdict-t.h). Returns false, storing nothing, when valid_until <
 * valid_from, refs->n > VC_MAX_REFS, a serial is longer than
 * VC_SERIAL_MAX, the entry is larger than a shard's byte share, or on
 * allocation failure. May evict other entries of the shard (CLOCK). */
bool verdict_cache_put(struct verdict_cache *c, const uint8_t key[32], const struct verdict *v,
                       const struct vc_revocation_refs *refs, int64_t valid_from,
                       int64_t valid_until);

/* verdict_cache_stats sums the shards' counters into |out|. Entries and
 * bytes are read shard by shard, so under load they are approximate. */
void verdict_cache_stats(struct verdict_cache *c, struct verdict_cache_stats *out);

/* verdict_cache_clear removes every entry (for example after a
 * configuration change that the key does not capture). Counters are kept. */
void verdict_cache_clear(struct verdict_cache *c);

#endif
