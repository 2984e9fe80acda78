/* certval-load's pacing: a client thread's loop. In the closed loop every
 * slot sends its next message as soon as its last one is answered; in the
 * open loop calls are due every period_ns from the run's start, sent as
 * slots free up, and a call that waited keeps its intended time so that
 * its queueing shows in its latency. At the end streams are closed and
 * calls in flight get LD_DRAIN_NS before they are cancelled. */
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include <grpc/grpc.h>
#include <grpc/support/time.h>

#include "load_client_internal.h"

#define LD_LATE_NS 1000000ull /* an open-loop send later than this is "late" */
/* grpc_completion_queue_next rounds its deadline up to gRPC's millisecond
 * clock and then sleeps in epoll: asked for 20-125 us it returns after
 * about 1.1 ms on this kind of machine (docs/benchmarks.md). An open loop
 * that waited for its next send that way sent calls up to a millisecond
 * late, in bursts, and counted the lag in their latency. A wait shorter
 * than LD_FINE_WAIT_NS is done instead as non-blocking polls of the queue
 * and naps of at most LD_NAP_NS (clock_nanosleep, 1 us timer slack); a
 * response that arrives during a nap is recorded at most that much late.
 * CERTVAL_LOAD_COARSE_PACING=1 restores the old wait, to compare. */
#define LD_FINE_WAIT_NS 2000000ull
#define LD_NAP_NS 50000ull

/* ld_issue_due sends every open-loop call whose intended time has come, as
 * long as a slot is free; a call that waits for a slot keeps its intended
 * time, so its queueing shows in its latency. */
static void ld_issue_due(struct ld_thread *t, uint64_t now)
{
    uint64_t dl = (uint64_t)t->o->deadline_ms * 1000000u;

    /* Calls whose whole deadline passed while they waited for a slot: the
     * client gives up on them without sending (a login past its deadline
     * is lost), counted as DEADLINE_EXCEEDED and as expired_unsent. */
    if (!t->o->stream && t->period_ns > 0 && now >= t->next_due && now - t->next_due >= dl) {
        uint64_t n = (now - t->next_due - dl) / t->period_ns + 1;

        if (ld_in_window(t, now)) {
            t->out->expired_unsent += n;
            t->out->res.errors[GRPC_STATUS_DEADLINE_EXCEEDED] += n;
        }
        t->next_due += n * t->period_ns;
    }
    for (size_t guard = 0; guard < t->n_slots && now >= t->next_due && t->n_free > 0; guard++) {
        struct ld_slot *s = t->free_slots[--t->n_free];
        uint64_t lag = now - t->next_due;

        if (lag > t->out->max_lag_ns && now >= t->run->t_measure)
            t->out->max_lag_ns = lag;
        if (lag > LD_LATE_NS && ld_in_window(t, now))
            t->out->late_calls++;
        ld_send(s, t->next_due);
        t->next_due += t->period_ns;
    }
}

static void ld_begin_stop(struct ld_thread *t)
{
    t->stopping = true;
    for (size_t i = 0; i < t->n_slots; i++) {
        struct ld_slot *s = &t->slots[i];

        if (t->o->stream)
            ld_stream_close(s);
    }
}

static void ld_nap(uint64_t ns)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ns};

    clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
}

void ld_thread_loop(struct ld_thread *t)
{
    const char *coarse = getenv("CERTVAL_LOAD_COARSE_PACING");
    bool cancelled = false, fine = coarse == NULL || strcmp(coarse, "1") != 0;

    if (fine)
        prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); /* naps of ~50 us, not 50 us + 50 us */

    for (size_t i = 0; i < t->n_slots; i++)
        ld_slot_idle(&t->slots[i]);
    t->next_due = t->run->t_start;
    for (;;) {
        uint64_t now = lt_now_ns(), wait = 100000000u;
        grpc_event ev;

        if (!t->stopping && (now >= t->run->t_end || t->run->stop))
            ld_begin_stop(t);
        if (t->stopping && t->outstanding == 0)
            break;
        if (t->stopping && !cancelled && now > t->run->t_end + LD_DRAIN_NS) {
            for (size_t i = 0; i < t->n_slots; i++) {
                if (t->slots[i].call != NULL)
                    grpc_call_cancel(t->slots[i].call, NULL);
            }
            cancelled = true;
        }
        if (!t->stopping && t->o->open_loop) {
            ld_issue_due(t, now);
            wait = t->next_due > now ? t->next_due - now : 0;
            if (t->n_free == 0)
                wait = 100000000u; /* nothing to send with until a slot frees */
        }
        if (!t->stopping && t->run->t_end > now && t->run->t_end - now < wait)
            wait = t->run->t_end - now;
        if (fine && !t->stopping && t->o->open_loop && wait < LD_FINE_WAIT_NS) {
            ev = grpc_completion_queue_next(t->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
            if (ev.type == GRPC_OP_COMPLETE)
                ld_handle(t, ev.tag, ev.success != 0);
            else if (wait > 0)
                ld_nap(wait < LD_NAP_NS ? wait : LD_NAP_NS);
            continue;
        }
        ev = grpc_completion_queue_next(t->cq, ld_deadline_in(wait), NULL);
        if (ev.type == GRPC_OP_COMPLETE)
            ld_handle(t, ev.tag, ev.success != 0);
    }
}
