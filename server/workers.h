/* io_uring-driven worker pool.
 *
 * Each worker thread owns an io_uring and sleeps in io_uring_wait_cqe. Other
 * threads hand it work with IORING_OP_MSG_RING from a ring of their own (a
 * |struct pool_submitter|): the message's 64-bit payload is the address of a
 * |struct work_item|, which arrives as a completion on the worker's ring. The
 * same rings carry the workers' file and network I/O and timers.
 *
 * Conventions: 0 or -errno; constructors return 0 and set |*out|.
 * Threads: worker_pool_submit is called only by the thread that owns the
 * submitter; everything else by the thread that created the pool. */
#ifndef CERTVAL_WORKERS_H
#define CERTVAL_WORKERS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct work_item {
    /* Called once on a worker thread (or, if a hand-off fails, on the
     * submitting thread). The item must stay valid until |run| starts. */
    void (*run)(struct work_item *item);
    /* Set by the caller: how much work the item is, in the caller's unit
     * (certval: chains); 0 counts as 1. The worker's queued total counts
     * it from hand-off until |run| returns. */
    uint32_t cost;
    /* Set by worker_pool_submit: the worker the item was handed to, so a
     * hand-off that fails later is taken off that worker's count. */
    uint32_t worker;
};

/* A work state word: who owns queued work's payload when the work can be
 * withdrawn before a worker reaches it (a cancelled call). The submitter
 * stores WORK_QUEUED (work_state_queue) before handing the items over; a
 * worker that reaches one calls work_state_begin; the canceller calls
 * work_state_cancel. Exactly one side wins the QUEUED state: the worker
 * (begin returns WORK_QUEUED) keeps using the payload, the canceller
 * (cancel true) frees it at once and the workers, reaching the items
 * later, skip them. The canceller still writes to the work after its
 * win, so the work itself must outlive both sides: the caller holds one
 * reference for "the QUEUED state" besides one per item, and whichever
 * side wins it drops it when done. All three are thread-safe (one
 * compare-and-swap). */
enum work_state {
    WORK_IDLE = 0, /* nothing queued: cancel has nothing to take */
    WORK_QUEUED,
    WORK_RUNNING,
    WORK_CANCELLED,
};

/* work_state_queue marks |s| queued; release, so that a canceller that
 * wins sees the payload written before it. */
static inline void work_state_queue(_Atomic int *s)
{
    atomic_store_explicit(s, WORK_QUEUED, memory_order_release);
}

/* work_state_begin moves |s| from QUEUED to RUNNING and returns the state
 * it found: WORK_QUEUED (this caller won: it owns the payload and drops
 * the QUEUED reference), WORK_RUNNING (another item of the same work won:
 * run too) or WORK_CANCELLED (the payload is gone: skip). */
static inline enum work_state work_state_begin(_Atomic int *s)
{
    int seen = WORK_QUEUED;

    if (atomic_compare_exchange_strong_explicit(s, &seen, WORK_RUNNING, memory_order_acq_rel,
                                                memory_order_acquire))
        return WORK_QUEUED;
    return (enum work_state)seen;
}

/* work_state_cancel moves |s| from QUEUED to CANCELLED. True if the caller
 * now owns the payload (no worker has begun, none will use it) and the
 * QUEUED reference; false if a worker has begun or nothing is queued. */
static inline bool work_state_cancel(_Atomic int *s)
{
    int want = WORK_QUEUED;

    return atomic_compare_exchange_strong_explicit(s, &want, WORK_CANCELLED, memory_order_acq_rel,
                                                   memory_order_acquire);
}

struct worker_pool;
struct pool_submitter;

/* worker_pool_new starts |n_workers| threads, each with its own ring. Fails
 * with -EPERM/-ENOSYS when io_uring is not permitted (seccomp) and -EINVAL
 * when the kernel lacks IORING_OP_MSG_RING; |err| then says what to do. */
int worker_pool_new(struct worker_pool **out, unsigned n_workers, char *err, size_t errlen);

/* worker_pool_size returns the number of workers. */
unsigned worker_pool_size(const struct worker_pool *p);

/* worker_pool_pick returns the index of the worker with the least queued
 * work (ties broken round-robin). Thread-safe. */
unsigned worker_pool_pick(struct worker_pool *p);

/* worker_pool_queued returns the cost of the items queued or running on all
 * workers. Thread-safe (a relaxed snapshot). */
uint64_t worker_pool_queued(const struct worker_pool *p);

/* worker_pool_queued_on returns the cost queued or running on worker
 * |worker|. Thread-safe (a relaxed snapshot). */
uint64_t worker_pool_queued_on(const struct worker_pool *p, unsigned worker);

/* pool_submitter_new creates a submitting ring for the calling thread. */
int pool_submitter_new(struct worker_pool *p, struct pool_submitter **out);

/* pool_submitter_free releases |s|; NULL is accepted. */
void pool_submitter_free(struct pool_submitter *s);

/* worker_pool_submit queues |item| on worker |worker|. If the ring hand-off
 * fails the item runs inline on the calling thread, so work is never lost. */
void worker_pool_submit(struct pool_submitter *s, unsigned worker, struct work_item *item);

/* worker_pool_test_break_worker makes every later hand-off to |worker| fail
 * the way the kernel reports a failed MSG_RING: with a completion on the
 * submitter's ring that arrives after the submit call returned (the
 * message is sent from io_uring's own worker threads to a file that is not
 * a ring). For tests only. */
void worker_pool_test_break_worker(struct worker_pool *p, unsigned worker);

/* worker_pool_free stops every worker once the work queued before it has
 * run, joins them and frees the pool; NULL is accepted. */
void worker_pool_free(struct worker_pool *p);

/* workers_check_io_uring probes io_uring and IORING_OP_MSG_RING support.
 * Returns 0, or -errno with an operator-facing message in |err|. */
int workers_check_io_uring(char *err, size_t errlen);

#endif
