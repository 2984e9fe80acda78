#define _GNU_SOURCE /* pthread_setname_np */
#include "workers.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <liburing.h>

#include "rcu_reader.h"
#include "log.h"

/* A worker's completion queue must hold every message that can be queued on
 * it at once; the kernel keeps overflowed CQEs on a list (IORING_FEAT_NODROP)
 * but that path is slow, so size it well above any realistic backlog. */
#define WORKER_CQ_ENTRIES 16384
#define WORKER_SQ_ENTRIES 64
#define SUBMITTER_ENTRIES 256

/* MSG_RING 'len' values: what a message means to the worker. */
#define MSG_WORK 1
#define MSG_STOP 2

struct worker {
    struct io_uring ring;
    pthread_t thread;
    struct worker_pool *pool;
    unsigned index;
    bool ring_ok;
    bool started;
    /* worker_pool_test_break_worker: hand-offs go to |broken_fd| (not a
     * ring) from io_uring's async workers, so they fail late. */
    int broken_fd;
    /* Items handed to this worker and not yet finished; read by other
     * threads for load balancing, so relaxed atomics suffice. */
    _Atomic uint64_t queued;
};

struct worker_pool {
    unsigned n;
    _Atomic unsigned next;
    struct worker *workers;
    /* Made with the pool, so stopping it never needs a new ring: if that
     * failed at shutdown, the joins below would wait forever. */
    struct pool_submitter *stopper;
};

struct pool_submitter {
    struct worker_pool *pool;
    struct io_uring ring;
};

static uint64_t item_cost(const struct work_item *item)
{
    return item->cost > 0 ? item->cost : 1;
}

/* Runs |item| and takes it off the count of the worker it was handed to.
 * The item may be freed by |run|: read what is needed first. */
static void pool_run_item(struct worker_pool *p, struct work_item *item)
{
    struct worker *w = &p->workers[item->worker % p->n];
    uint64_t cost = item_cost(item);

    item->run(item);
    atomic_fetch_sub_explicit(&w->queued, cost, memory_order_relaxed);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    bool stop = false;
    char name[16];

    snprintf(name, sizeof(name), "cv-worker-%u", w->index);
    pthread_setname_np(pthread_self(), name);
    certval_rcu_reader_register();
    while (!stop) {
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        int rc = io_uring_wait_cqe(&w->ring, &cqe);

        if (rc == -EINTR)
            continue;
        if (rc < 0) {
            log_error("worker %u: io_uring_wait_cqe: %s", w->index, strerror(-rc));
            break;
        }
        io_uring_for_each_cqe(&w->ring, head, cqe)
        {
            seen++;
            if (cqe->res == MSG_STOP)
                stop = true;
            else if (cqe->res == MSG_WORK && cqe->user_data != 0)
                pool_run_item(w->pool, (struct work_item *)(uintptr_t)cqe->user_data);
        }
        io_uring_cq_advance(&w->ring, seen);
    }
    certval_rcu_reader_unregister();
    return NULL;
}

int workers_check_io_uring(char *err, size_t errlen)
{
    struct io_uring ring;
    struct io_uring_probe *probe;
    int rc = io_uring_queue_init(4, &ring, 0);

    if (rc < 0) {
        snprintf(err, errlen,
                 "io_uring is not available (io_uring_setup: %s). certvald needs io_uring; "
                 "a container runtime's default seccomp profile may block it: install the "
                 "profile in deploy/seccomp/ (see docs/deployment.md)",
                 strerror(-rc));
        return rc;
    }
    probe = io_uring_get_probe_ring(&ring);
    if (probe == NULL || !io_uring_opcode_supported(probe, IORING_OP_MSG_RING)) {
        snprintf(err, errlen,
                 "this kernel's io_uring lacks IORING_OP_MSG_RING (Linux 5.18 or later is "
                 "needed, see docs/deployment.md)");
        rc = -EINVAL;
    }
    if (probe != NULL)
        io_uring_free_probe(probe);
    io_uring_queue_exit(&ring);
    return rc < 0 ? rc : 0;
}

static int worker_ring_init(struct worker *w)
{
    struct io_uring_params params;

    memset(&params, 0, sizeof(params));
    params.flags = IORING_SETUP_CQSIZE;
    params.cq_entries = WORKER_CQ_ENTRIES;
    return io_uring_queue_init_params(WORKER_SQ_ENTRIES, &w->ring, &params);
}

int worker_pool_new(struct worker_pool **out, unsigned n_workers, char *err, size_t errlen)
{
    struct worker_pool *p = NULL;
    int rc;

    *out = NULL;
    rc = workers_check_io_uring(err, errlen);
    if (rc < 0)
        return rc;
    if (n_workers == 0 || n_workers > 1024) {
        snprintf(err, errlen, "worker count %u out of range 1..1024", n_workers);
        return -EINVAL;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        goto nomem;
    p->workers = calloc(n_workers, sizeof(*p->workers));
    if (p->workers == NULL)
        goto nomem;
    p->n = n_workers;
    for (unsigned i = 0; i < n_workers; i++)
        p->workers[i].broken_fd = -1;
    rc = pool_submitter_new(p, &p->stopper);
    if (rc < 0) {
        snprintf(err, errlen, "io_uring_queue_init: %s", strerror(-rc));
        goto err;
    }
    for (unsigned i = 0; i < n_workers; i++) {
        struct worker *w = &p->workers[i];

        w->pool = p;
        w->index = i;
        rc = worker_ring_init(w);
        if (rc < 0) {
            snprintf(err, errlen, "worker %u: io_uring_queue_init: %s", i, strerror(-rc));
            goto err;
        }
        w->ring_ok = true;
        rc = -pthread_create(&w->thread, NULL, worker_main, w);
        if (rc < 0) {
            snprintf(err, errlen, "worker %u: pthread_create: %s", i, strerror(-rc));
            goto err;
        }
        w->started = true;
    }
    *out = p;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
    rc = -ENOMEM;
err:
    worker_pool_free(p);
    return rc;
}

unsigned worker_pool_size(const struct worker_pool *p)
{
    return p->n;
}

unsigned worker_pool_pick(struct worker_pool *p)
{
    unsigned start = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed) % p->n;
    unsigned best = start;
    uint64_t best_q = UINT64_MAX;

    for (unsigned k = 0; k < p->n; k++) {
        unsigned i = (start + k) % p->n;
        uint64_t q = atomic_load_explicit(&p->workers[i].queued, memory_order_relaxed);

        if (q < best_q) {
            best_q = q;
            best = i;
            if (q == 0)
                break;
        }
    }
    return best;
}

uint64_t worker_pool_queued(const struct worker_pool *p)
{
    uint64_t total = 0;

    for (unsigned i = 0; i < p->n; i++)
        total += atomic_load_explicit(&p->workers[i].queued, memory_order_relaxed);
    return total;
}

uint64_t worker_pool_queued_on(const struct worker_pool *p, unsigned worker)
{
    return atomic_load_explicit(&p->workers[worker % p->n].queued, memory_order_relaxed);
}

void worker_pool_test_break_worker(struct worker_pool *p, unsigned worker)
{
    struct worker *w = &p->workers[worker % p->n];

    if (w->broken_fd < 0)
        w->broken_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

int pool_submitter_new(struct worker_pool *p, struct pool_submitter **out)
{
    struct pool_submitter *s = calloc(1, sizeof(*s));
    int rc;

    *out = NULL;
    if (s == NULL)
        return -ENOMEM;
    rc = io_uring_queue_init(SUBMITTER_ENTRIES, &s->ring, 0);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s->pool = p;
    *out = s;
    return 0;
}

void pool_submitter_free(struct pool_submitter *s)
{
    if (s == NULL)
        return;
    io_uring_queue_exit(&s->ring);
    free(s);
}

/* Queue one MSG_RING to |w|. Successful sends post nothing on our own ring
 * (IOSQE_CQE_SKIP_SUCCESS), so the submitter never has to reap on the fast
 * path; failures come back as CQEs carrying the item, handled below. */
static bool submitter_queue_msg(struct pool_submitter *s, struct worker *w, unsigned msg,
                                struct work_item *item)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
    bool broken = w->broken_fd >= 0 && msg == MSG_WORK;

    if (sqe == NULL) {
        io_uring_submit(&s->ring);
        sqe = io_uring_get_sqe(&s->ring);
        if (sqe == NULL)
            return false;
    }
    io_uring_prep_msg_ring(sqe, broken ? w->broken_fd : w->ring.ring_fd, msg,
                           (uint64_t)(uintptr_t)item, 0);
    io_uring_sqe_set_data(sqe, item);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    if (broken)
        sqe->flags |= IOSQE_ASYNC;
    return true;
}

/* Reap failed hand-offs: the kernel reports them with a negative res. The
 * item then runs here, on the submitting thread, so no call is ever lost.
 * A failure may be reported after the submit that queued it returned (the
 * kernel punts a MSG_RING to its async workers when the target's lock is
 * contended), so it is reaped by a later submit, perhaps to another
 * worker: the item names its own worker. */
static void submitter_reap_failures(struct pool_submitter *s)
{
    struct io_uring_cqe *cqe;

    while (io_uring_peek_cqe(&s->ring, &cqe) == 0) {
        struct work_item *item = io_uring_cqe_get_data(cqe);
        int res = cqe->res;

        io_uring_cqe_seen(&s->ring, cqe);
        if (res < 0 && item != NULL) {
            log_warn("MSG_RING hand-off failed (%s); running the work inline", strerror(-res));
            pool_run_item(s->pool, item);
        }
    }
}

void worker_pool_submit(struct pool_submitter *s, unsigned worker, struct work_item *item)
{
    struct worker *w = &s->pool->workers[worker % s->pool->n];
    int rc;

    item->worker = (uint32_t)(worker % s->pool->n);
    atomic_fetch_add_explicit(&w->queued, item_cost(item), memory_order_relaxed);
    if (!submitter_queue_msg(s, w, MSG_WORK, item)) {
        pool_run_item(s->pool, item);
        return;
    }
    rc = io_uring_submit(&s->ring);
    if (rc < 0)
        log_warn("io_uring_submit: %s", strerror(-rc));
    submitter_reap_failures(s);
}

void worker_pool_free(struct worker_pool *p)
{
    struct pool_submitter *s;

    if (p == NULL)
        return;
    s = p->stopper;
    if (s != NULL) {
        for (unsigned i = 0; i < p->n; i++) {
            if (p->workers[i].started && !submitter_queue_msg(s, &p->workers[i], MSG_STOP, NULL))
                log_error("worker %u: cannot queue its stop message", i);
        }
        io_uring_submit(&s->ring);
    }
    for (unsigned i = 0; i < p->n; i++) {
        struct worker *w = &p->workers[i];

        if (w->started)
            pthread_join(w->thread, NULL);
        if (w->ring_ok)
            io_uring_queue_exit(&w->ring);
        if (w->broken_fd >= 0)
            close(w->broken_fd);
    }
    pool_submitter_free(s);
    free(p->workers);
    free(p);
}
