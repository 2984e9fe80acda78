/* HDR-style log-bucketed latency histogram for the loadtest tools.
 *
 * Values (nanoseconds) are counted in buckets whose width doubles with each
 * power of two and that are cut into 2^sub_bits equal sub-buckets, so every
 * recorded value is known to within 1/2^sub_bits of itself (sub_bits 7:
 * better than 0.8%) over the whole uint64_t range, in a fixed array.
 *
 * Conventions: lt_hist_init returns 0 or -1 (out of memory); queries never
 * fail. A histogram is not thread-safe: each thread records into its own and
 * the results are merged with lt_hist_merge. Plain C, no crypto. */
#ifndef CERTVAL_LT_HIST_H
#define CERTVAL_LT_HIST_H

#include <stddef.h>
#include <stdint.h>

struct lt_hist {
    unsigned sub_bits;  /* precision: 2^sub_bits sub-buckets per power of two */
    size_t n_buckets;
    uint64_t *counts;   /* n_buckets counters */
    uint64_t total;
    uint64_t min, max;  /* exact; min is UINT64_MAX while empty */
    long double sum;    /* for the mean */
};

/* lt_hist_init allocates the buckets of |h| for |sub_bits| (1..10). */
int lt_hist_init(struct lt_hist *h, unsigned sub_bits);

/* lt_hist_clear frees what |h| owns and zeroes it; a zeroed |h| is accepted. */
void lt_hist_clear(struct lt_hist *h);

/* lt_hist_record counts one value. */
void lt_hist_record(struct lt_hist *h, uint64_t value);

/* lt_hist_merge adds |src| into |dst|; both must have the same sub_bits
 * (returns -1 otherwise, 0 on success). */
int lt_hist_merge(struct lt_hist *dst, const struct lt_hist *src);

/* lt_hist_percentile returns the highest value equivalent to the recorded
 * value at percentile |p| (0..100), capped at the exact maximum; 0 when
 * empty. */
uint64_t lt_hist_percentile(const struct lt_hist *h, double p);

/* lt_hist_mean returns the exact mean, 0 when empty. */
double lt_hist_mean(const struct lt_hist *h);

#endif
