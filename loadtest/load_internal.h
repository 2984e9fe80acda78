/* certval-load internals: the options, the per-thread gRPC engine
 * (load_client.c and the files load_client_internal.h lists) and the
 * driver (load.c).
 *
 * Threads: each client thread owns one completion queue, the channels
 * assigned to it (channel c goes to thread c % threads) and the call slots
 * on those channels; nothing is shared between client threads but the
 * read-only options, the bundle and the clock marks, so the engine takes no
 * lock. Results are merged by the main thread after every client thread has
 * been joined.
 *
 * Conventions: functions return 0 or -1 with a message on stderr. */
#ifndef CERTVAL_LOAD_INTERNAL_H
#define CERTVAL_LOAD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lt_bundle.h"
#include "lt_hist.h"
#include "lt_report.h"

#define LD_MAX_THREADS 16
#define LD_MAX_CHANNELS 256
#define LD_MAX_CONCURRENCY 65536
#define LD_MAX_BATCH 4096
#define LD_MAX_SECONDS 3600
#define LD_TIMELINE_SUB_BITS 4

struct ld_opts {
    const char *target;      /* HOST:PORT */
    const char *fixtures;    /* folder of chains.bundle */
    const char *mix_text;
    const char *json_path;   /* NULL = stdout */
    const char *plot_prefix; /* NULL = no timeline, no plots */
    struct lt_mix mix;
    unsigned channels, concurrency, batch, threads, users;
    bool stream;
    bool open_loop;
    double rate;             /* open loop: calls/s over all threads */
    double warmup_s, duration_s;
    unsigned deadline_ms;    /* per unary call */
    bool stop_on_all_deny;   /* revocation probe: stop at the first all-DENY batch */
};

/* One second of the run, for the latency-over-time plot. */
struct ld_second {
    uint64_t calls, chains, errors;
    struct lt_hist lat;
};

/* What one client thread measured. */
struct ld_thread_result {
    struct lt_result res;
    struct ld_second *timeline; /* n_seconds entries, or NULL */
    size_t n_seconds;
    uint64_t max_lag_ns;        /* open loop: how late a call was sent at worst */
    uint64_t late_calls;        /* open loop: calls sent after their intended time + 1 ms */
    uint64_t in_deadline;       /* answers (OK) within the deadline of their intended time */
    uint64_t expired_unsent;    /* open loop: calls whose deadline (from their intended time)
                                   passed before a slot was free: never sent */
    double first_victim_deny;   /* CLOCK_REALTIME seconds of the first victim DENY, 0 = none */
    double first_all_deny;      /* of the first response whose victims were all DENY */
};

/* The shared, read-only context of a run. */
struct ld_run {
    const struct ld_opts *o;
    const struct lt_bundle *bundle;
    uint64_t t_start, t_measure, t_end; /* CLOCK_MONOTONIC ns */
    volatile int stop;                  /* set by a probe thread to end early */
};

/* ld_client_run runs client thread |index| of |run| to the end and fills
 * |out| (which the caller clears with ld_thread_result_clear). */
int ld_client_run(struct ld_run *run, unsigned index, struct ld_thread_result *out);

/* ld_thread_result_clear frees what |r| owns. */
void ld_thread_result_clear(struct ld_thread_result *r);

#endif
