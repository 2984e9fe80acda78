/* ThreadSanitizer annotation for RCU grace periods, shared by the cache's
 * RCU-published stores (crl_cache, deny_list).
 *
 * TSan cannot see that a grace period orders a reader's last access to a
 * snapshot before the writer (or a call_rcu callback) frees it: the
 * ordering comes from membarrier inside uninstrumented liburcu. Readers
 * "release" a per-store sync object when they leave the read side, and the
 * code that frees "acquires" it. Both are no-ops unless built with TSan.
 * Conventions: no return values; thread-safe (TSan's own locking). */
#ifndef CERTVAL_TSAN_GRACE_H
#define CERTVAL_TSAN_GRACE_H

#if defined(__SANITIZE_THREAD__)
#define CERTVAL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CERTVAL_TSAN 1
#endif
#endif

#ifdef CERTVAL_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#endif

/* tsan_grace_release marks the end of a reader's accesses guarded by |sync|. */
static inline void tsan_grace_release(void *sync)
{
#ifdef CERTVAL_TSAN
    __tsan_release(sync);
#else
    (void)sync;
#endif
}

/* tsan_grace_acquire orders every earlier release of |sync| before what
 * follows (the free after a grace period). */
static inline void tsan_grace_acquire(void *sync)
{
#ifdef CERTVAL_TSAN
    __tsan_acquire(sync);
#else
    (void)sync;
#endif
}

#endif
