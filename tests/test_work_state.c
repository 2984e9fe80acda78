/* The work state word (workers.h): when a canceller races the worker that
 * reaches queued work, exactly one side owns (and frees) the payload, the
 * worker never reads a payload the canceller took, and the work itself is
 * not finished (freed, in service.c) while the canceller still writes to
 * it. Run on the real worker pool, a canceller thread racing every
 * hand-off, with the reference protocol service.c uses. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "workers.h"

#define JOBS 20000
#define SLICES 2
#define PAYLOAD_MAGIC 0x5ca1ab1eu

struct payload {
    unsigned magic;
};

struct job {
    struct work_item items[SLICES];
    _Atomic int state;
    _Atomic int remaining; /* one per slice + the QUEUED reference */
    _Atomic int finished;  /* the last reference is gone: the work is "freed" */
    _Atomic int late;      /* the canceller wrote to finished work */
    struct payload *_Atomic payload;
    _Atomic int owners;  /* sides that took the payload: must end at 1 */
    _Atomic int stale;   /* a worker saw a payload the canceller took */
    _Atomic int skipped; /* slices that found the job cancelled */
};

static struct job *jobs;
static _Atomic int published; /* jobs queued so far; the canceller follows it */
static _Atomic long worker_frees, cancel_frees, done;

static void payload_take(struct job *j, _Atomic long *count)
{
    struct payload *pl = atomic_exchange(&j->payload, NULL);

    atomic_fetch_add(&j->owners, 1);
    if (pl != NULL) {
        pl->magic = 0;
        free(pl);
        atomic_fetch_add(count, 1);
    }
}

static void job_unref(struct job *j)
{
    if (atomic_fetch_sub(&j->remaining, 1) == 1) {
        /* The last reference frees the payload if the worker side owns it. */
        if (atomic_load(&j->skipped) == 0)
            payload_take(j, &worker_frees);
        atomic_store(&j->finished, 1);
        atomic_fetch_add(&done, 1);
    }
}

static void job_run(struct work_item *it)
{
    struct job *j = &jobs[it->cost - 1];
    enum work_state was = work_state_begin(&j->state);

    if (was == WORK_QUEUED)
        job_unref(j);
    if (was != WORK_CANCELLED) {
        struct payload *pl = atomic_load(&j->payload);

        if (pl == NULL || pl->magic != PAYLOAD_MAGIC)
            atomic_fetch_add(&j->stale, 1);
    } else {
        atomic_fetch_add(&j->skipped, 1);
    }
    job_unref(j);
}

static void *canceller(void *arg)
{
    (void)arg;
    for (int i = 0; i < JOBS; i++) {
        while (atomic_load(&published) <= i)
            ; /* bounded: the submitter publishes every job */
        /* Every other job is raced; a short spin spreads the race over the
         * worker's begin. */
        if (i % 2 == 0) {
            for (volatile int k = 0; k < (i / 2) % 64; k++)
                ;
            if (work_state_cancel(&jobs[i].state)) {
                payload_take(&jobs[i], &cancel_frees);
                /* Still writing to the work, as service.c does. */
                for (volatile int k = 0; k < 20000; k++)
                    ;
                if (atomic_load(&jobs[i].finished))
                    atomic_fetch_add(&jobs[i].late, 1);
                job_unref(&jobs[i]);
            }
        }
    }
    return NULL;
}

Test(work_state, cancel_and_begin_race_has_one_owner, .timeout = 120)
{
    struct worker_pool *pool = NULL;
    struct pool_submitter *s = NULL;
    pthread_t th;
    char err[256];
    long cancelled = 0;

    jobs = calloc(JOBS, sizeof(*jobs));
    cr_assert_not_null(jobs);
    cr_assert_eq(worker_pool_new(&pool, 2, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(pool_submitter_new(pool, &s), 0);
    cr_assert_eq(pthread_create(&th, NULL, canceller, NULL), 0);
    for (int i = 0; i < JOBS; i++) {
        struct job *j = &jobs[i];
        struct payload *pl = malloc(sizeof(*pl));

        cr_assert_not_null(pl);
        pl->magic = PAYLOAD_MAGIC;
        atomic_store(&j->payload, pl);
        atomic_store(&j->remaining, SLICES + 1);
        work_state_queue(&j->state);
        atomic_store(&published, i + 1);
        for (int k = 0; k < SLICES; k++) {
            j->items[k].run = job_run;
            j->items[k].cost = (uint32_t)i + 1; /* names the job */
            worker_pool_submit(s, worker_pool_pick(pool), &j->items[k]);
        }
    }
    pthread_join(th, NULL);
    for (int spin = 0; atomic_load(&done) < JOBS && spin < 60000; spin++)
        usleep(1000);
    cr_assert_eq(atomic_load(&done), JOBS);
    for (int i = 0; i < JOBS; i++) {
        cr_assert_eq(atomic_load(&jobs[i].owners), 1, "job %d had %d owners", i,
                     atomic_load(&jobs[i].owners));
        cr_assert_eq(atomic_load(&jobs[i].stale), 0, "job %d: a worker used a taken payload", i);
        cr_assert_eq(atomic_load(&jobs[i].late), 0, "job %d: finished under its canceller", i);
        cr_assert(atomic_load(&jobs[i].skipped) == 0 || atomic_load(&jobs[i].skipped) == SLICES,
                  "job %d: only some slices skipped", i);
        cancelled += atomic_load(&jobs[i].skipped) == SLICES;
    }
    cr_assert_eq(atomic_load(&worker_frees) + atomic_load(&cancel_frees), JOBS);
    cr_assert_eq(atomic_load(&cancel_frees), cancelled);
    cr_log_info("%ld of %d jobs cancelled before a worker began", cancelled, JOBS);
    pool_submitter_free(s);
    worker_pool_free(pool);
    free(jobs);
}

Test(work_state, cancel_takes_only_queued_work)
{
    _Atomic int s = WORK_IDLE;

    cr_assert(!work_state_cancel(&s), "nothing queued: nothing to take");
    work_state_queue(&s);
    cr_assert_eq(work_state_begin(&s), WORK_QUEUED, "the first slice wins");
    cr_assert_eq(work_state_begin(&s), WORK_RUNNING, "a second slice of running work runs too");
    cr_assert(!work_state_cancel(&s), "running work stays with the worker");
    work_state_queue(&s);
    cr_assert(work_state_cancel(&s));
    cr_assert_eq(work_state_begin(&s), WORK_CANCELLED, "cancelled work is skipped");
    cr_assert(!work_state_cancel(&s), "taken once");
}
