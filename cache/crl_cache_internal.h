/* Private to cache/: the CRL cache's index and handle, shared by
 * crl_cache.c (lifecycle, index, publication) and crl_cache_check.c
 * (issuer identity, serials, lookups). Who writes and who reads what:
 * crl_cache.c's head comment. */
#ifndef CERTVAL_CRL_CACHE_INTERNAL_H
#define CERTVAL_CRL_CACHE_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <urcu/urcu-memb.h>

#include "crl_cache.h"
#include "crl_snapshot_internal.h"

/* ThreadSanitizer cannot see that an RCU grace period orders a reader's
 * last access to a snapshot before call_rcu frees it (the ordering comes
 * from membarrier in uninstrumented liburcu). Readers "release" and the
 * free callbacks "acquire" one sync object to tell it. No-ops otherwise. */
#if defined(__SANITIZE_THREAD__)
#define CRL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CRL_TSAN 1
#endif
#endif
#ifdef CRL_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
extern char crl_tsan_grace; /* defined in crl_cache.c */
#define TSAN_RELEASE() __tsan_release(&crl_tsan_grace)
#define TSAN_ACQUIRE() __tsan_acquire(&crl_tsan_grace)
#else
#define TSAN_RELEASE() ((void)0)
#define TSAN_ACQUIRE() ((void)0)
#endif

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
