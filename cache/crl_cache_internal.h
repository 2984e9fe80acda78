/* Private to cache/: the CRL cache's index and handle, shared by
 * crl_cache.c (lifecycle, index, publication) and crl_cache_check.c
 * (issuer identity, serials, lookups). Who writes and who reads what:
 * crl_cache.c's head comment.
 *
 * Conventions: as crl_cache.h (0, or -1 with a message in |err|); index
 * searches return a position, never an error. */
#ifndef CERTVAL_CRL_CACHE_INTERNAL_H
#define CERTVAL_CRL_CACHE_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <urcu/urcu-memb.h>

#include "crl_cache.h"
#include "crl_snapshot_internal.h"
#include "tsan_grace.h"

/* The CRL cache's grace-period sync object for TSan (tsan_grace.h);
 * readers release it, the frees after a grace period acquire it. */
extern char crl_tsan_grace; /* defined in crl_cache.c */
#define TSAN_RELEASE() tsan_grace_release(&crl_tsan_grace)
#define TSAN_ACQUIRE() tsan_grace_acquire(&crl_tsan_grace)

struct crl_index {
    struct rcu_head rcu;
    size_t n;
    struct crl_snapshot *snap[]; /* sorted by id */
};

struct crl_cache {
    struct crl_index *index; /* RCU-protected; NULL = empty */
    pthread_mutex_t write_lock;
    uint64_t generation; /* atomic */
    size_t issuer_count; /* atomic */
    uint64_t sip_key[2]; /* immutable after crl_cache_new */
};

/* crl_index_lower_bound returns the first position whose id starts with
 * the |len| bytes of |key| (len 64: that issuer; 32: that issuer name), or
 * idx->n when there is none (0 for a NULL index). */
size_t crl_index_lower_bound(const struct crl_index *idx, const uint8_t *key, size_t len);

#endif
