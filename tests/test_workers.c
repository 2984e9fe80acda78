/* The io_uring worker pool: every item handed over runs exactly once, on a
 * worker thread, from several submitting threads at once. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "workers.h"

#define ITEMS_PER_THREAD 20000
#define SUBMITTERS 3

struct counted {
    struct work_item item;
    _Atomic int runs;
    pthread_t ran_on;
};

static _Atomic long total_runs;

static void counted_run(struct work_item *it)
{
    struct counted *c = (struct counted *)it;

    c->ran_on = pthread_self();
    atomic_fetch_add(&c->runs, 1);
    atomic_fetch_add(&total_runs, 1);
}

struct submit_arg {
    struct worker_pool *pool;
    struct counted *items;
};

static void *submit_thread(void *p)
{
    struct submit_arg *a = p;
    struct pool_submitter *s = NULL;

    cr_assert_eq(pool_submitter_new(a->pool, &s), 0);
    for (int i = 0; i < ITEMS_PER_THREAD; i++) {
        a->items[i].item.run = counted_run;
        worker_pool_submit(s, worker_pool_pick(a->pool), &a->items[i].item);
    }
    pool_submitter_free(s);
    return NULL;
}

Test(workers, every_item_runs_once_on_a_worker)
{
    struct worker_pool *pool = NULL;
    struct submit_arg args[SUBMITTERS];
    pthread_t th[SUBMITTERS];
    char err[256];

    cr_assert_eq(worker_pool_new(&pool, 2, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(worker_pool_size(pool), 2);
    for (int t = 0; t < SUBMITTERS; t++) {
        args[t].pool = pool;
        args[t].items = calloc(ITEMS_PER_THREAD, sizeof(struct counted));
        cr_assert_not_null(args[t].items);
        pthread_create(&th[t], NULL, submit_thread, &args[t]);
    }
    for (int t = 0; t < SUBMITTERS; t++)
        pthread_join(th[t], NULL);
    /* worker_pool_free runs what was queued before it, then joins. */
    worker_pool_free(pool);
    cr_assert_eq(atomic_load(&total_runs), (long)SUBMITTERS * ITEMS_PER_THREAD);
    for (int t = 0; t < SUBMITTERS; t++) {
        for (int i = 0; i < ITEMS_PER_THREAD; i++) {
            cr_assert_eq(atomic_load(&args[t].items[i].runs), 1, "item %d of %d", i, t);
            /* Ran on a worker, not inline on the submitting thread. */
            cr_assert(!pthread_equal(args[t].items[i].ran_on, th[t]));
        }
        free(args[t].items);
    }
}

/* An item that holds its worker until released, so the worker's queued
 * count stays at the item's cost. */
struct held {
    struct work_item item;
    _Atomic int started;
    _Atomic int *release;
};

static void held_run(struct work_item *it)
{
    struct held *h = (struct held *)it;

    atomic_store(&h->started, 1);
    while (atomic_load(h->release) == 0)
        usleep(1000);
}

/* Busy workers 0, 1 and 3 with costs 5, 2 and 7, leave worker 2 idle: every
 * pick must name worker 2 (a round-robin or random picker names another
 * worker in 12 of 16 picks); with worker 2 given cost 9, worker 1 (cost 2)
 * is the least loaded and must be picked. */
Test(workers, pick_prefers_idle_workers)
{
    static const uint32_t cost[4] = {5, 2, 0, 7};
    struct worker_pool *pool = NULL;
    struct pool_submitter *s = NULL;
    struct held h[5];
    static _Atomic int release; /* static: outlives a failed assertion */
    char err[256];

    cr_assert_eq(worker_pool_new(&pool, 4, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(pool_submitter_new(pool, &s), 0);
    memset(h, 0, sizeof(h));
    for (unsigned w = 0; w < 4; w++) {
        if (cost[w] == 0)
            continue;
        h[w].item.run = held_run;
        h[w].item.cost = cost[w];
        h[w].release = &release;
        worker_pool_submit(s, w, &h[w].item);
    }
    for (unsigned w = 0; w < 4; w++)
        for (int i = 0; i < 5000 && cost[w] != 0 && atomic_load(&h[w].started) == 0; i++)
            usleep(1000);
    cr_assert_eq(worker_pool_queued(pool), 14);
    for (int i = 0; i < 16; i++)
        cr_assert_eq(worker_pool_pick(pool), 2u, "pick %d named a busy worker", i);

    h[4].item.run = held_run;
    h[4].item.cost = 9;
    h[4].release = &release;
    worker_pool_submit(s, 2, &h[4].item);
    for (int i = 0; i < 5000 && atomic_load(&h[4].started) == 0; i++)
        usleep(1000);
    cr_assert_eq(worker_pool_queued_on(pool, 2), 9);
    for (int i = 0; i < 16; i++)
        cr_assert_eq(worker_pool_pick(pool), 1u, "pick %d missed the least-loaded worker", i);

    atomic_store(&release, 1);
    pool_submitter_free(s);
    worker_pool_free(pool);
}

Test(workers, refuses_bad_sizes)
{
    struct worker_pool *pool = (struct worker_pool *)1;
    char err[256];

    cr_assert_lt(worker_pool_new(&pool, 0, err, sizeof(err)), 0);
    cr_assert_null(pool);
    cr_assert_lt(worker_pool_new(&pool, 5000, err, sizeof(err)), 0);
    cr_assert_null(pool);
    worker_pool_free(NULL);
}

Test(workers, io_uring_probe_passes_here)
{
    char err[256];

    /* This machine's kernel has io_uring with MSG_RING; in a pod whose
     * seccomp profile blocks it, the same probe fails with the message. */
    cr_assert_eq(workers_check_io_uring(err, sizeof(err)), 0, "%s", err);
}

/* A failed hand-off is reported by a completion that may be reaped by a
 * later submit to another worker; the failed item must come off the count
 * of the worker it was handed to, not the later one's. */
Test(workers, late_failed_hand_off_is_taken_off_its_own_worker)
{
    struct worker_pool *pool = NULL;
    struct pool_submitter *s = NULL;
    struct counted failed, later;
    int late = 0;
    char err[256];

    cr_assert_eq(worker_pool_new(&pool, 2, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(pool_submitter_new(pool, &s), 0);
    worker_pool_test_break_worker(pool, 1);
    /* Whether the failure is reaped by its own submit depends on timing;
     * an early one costs nothing, so try many times (on a loaded machine
     * under ASan, 20 attempts were all early once). */
    for (int attempt = 0; attempt < 2000 && late == 0; attempt++) {
        memset(&failed, 0, sizeof(failed));
        memset(&later, 0, sizeof(later));
        failed.item.run = counted_run;
        failed.item.cost = 3;
        later.item.run = counted_run;
        later.item.cost = 5;
        worker_pool_submit(s, 1, &failed.item);
        if (atomic_load(&failed.runs) != 0)
            continue; /* failed early: reaped by its own submit */
        late = 1;
        usleep(100 * 1000); /* the failure's completion is posted meanwhile */
        worker_pool_submit(s, 0, &later.item);
        for (int i = 0; i < 2000 && atomic_load(&later.runs) == 0; i++)
            usleep(1000);
        cr_assert_eq(atomic_load(&later.runs), 1);
        /* The failed item ran inline, on this thread, exactly once. */
        for (int i = 0; i < 2000 && atomic_load(&failed.runs) == 0; i++)
            usleep(1000);
        cr_assert_eq(atomic_load(&failed.runs), 1);
        cr_assert(pthread_equal(failed.ran_on, pthread_self()));
        for (int i = 0; i < 2000 && worker_pool_queued_on(pool, 0) != 0; i++)
            usleep(1000);
        cr_assert_eq(worker_pool_queued_on(pool, 0), 0);
        cr_assert_eq(worker_pool_queued_on(pool, 1), 0);
    }
    cr_assert_eq(late, 1, "no hand-off failed late in 2000 attempts");
    pool_submitter_free(s);
    worker_pool_free(pool);
}

/* An item counts its cost (0 counts as 1) from hand-off until its run
 * returns: held items keep the count visible. */
Test(workers, queued_counts_cost)
{
    struct worker_pool *pool = NULL;
    struct pool_submitter *s = NULL;
    struct held a, b;
    static _Atomic int release; /* static: outlives a failed assertion */
    char err[256];

    cr_assert_eq(worker_pool_new(&pool, 1, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(pool_submitter_new(pool, &s), 0);
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.item.run = b.item.run = held_run;
    a.release = b.release = &release;
    a.item.cost = 7;
    b.item.cost = 0;
    worker_pool_submit(s, 0, &a.item);
    for (int i = 0; i < 5000 && atomic_load(&a.started) == 0; i++)
        usleep(1000);
    cr_assert_eq(atomic_load(&a.started), 1);
    cr_expect_eq(worker_pool_queued(pool), 7, "a running item of cost 7");
    cr_expect_eq(worker_pool_queued_on(pool, 0), 7);
    worker_pool_submit(s, 0, &b.item); /* queued behind |a| */
    cr_expect_eq(worker_pool_queued(pool), 8, "cost 0 counts as 1");
    atomic_store(&release, 1);
    for (int i = 0; i < 5000 && worker_pool_queued(pool) != 0; i++)
        usleep(1000);
    cr_assert_eq(atomic_load(&b.started), 1);
    cr_assert_eq(worker_pool_queued(pool), 0);
    pool_submitter_free(s);
    worker_pool_free(pool);
}
