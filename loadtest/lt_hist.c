/* HDR-style histogram: see lt_hist.h. */
#include "lt_hist.h"

#include <stdlib.h>
#include <string.h>

#define LT_HIST_MAX_SUB_BITS 10

/* Bucket layout: values below 2^S are their own bucket; above, a value with
 * its top bit at position m (m >= S) falls in block m - S + 1, whose 2^S
 * sub-buckets are each 2^(m - S) wide. 64 - S + 1 blocks cover uint64_t. */
static size_t lt_hist_index(unsigned s, uint64_t v)
{
    uint64_t sub_count = UINT64_C(1) << s;
    unsigned msb, shift;

    if (v < sub_count)
        return (size_t)v;
    msb = 63u - (unsigned)__builtin_clzll(v);
    shift = msb - s;
    return (size_t)((shift + 1) * sub_count + ((v >> shift) - sub_count));
}

/* lt_hist_upper returns the largest value that falls in bucket |idx|. */
static uint64_t lt_hist_upper(unsigned s, size_t idx)
{
    uint64_t sub_count = UINT64_C(1) << s;
    uint64_t shift, sub, lower;

    if (idx < sub_count)
        return idx;
    shift = idx / sub_count - 1;
    sub = idx % sub_count;
    lower = (sub_count + sub) << shift;
    return lower + ((UINT64_C(1) << shift) - 1);
}

int lt_hist_init(struct lt_hist *h, unsigned sub_bits)
{
    memset(h, 0, sizeof(*h));
    if (sub_bits < 1 || sub_bits > LT_HIST_MAX_SUB_BITS)
        return -1;
    h->sub_bits = sub_bits;
    h->n_buckets = (size_t)(64 - sub_bits + 1) << sub_bits;
    h->counts = calloc(h->n_buckets, sizeof(*h->counts));
    h->min = UINT64_MAX;
    return h->counts != NULL ? 0 : -1;
}

void lt_hist_clear(struct lt_hist *h)
{
    free(h->counts);
    memset(h, 0, sizeof(*h));
}

void lt_hist_record(struct lt_hist *h, uint64_t value)
{
    h->counts[lt_hist_index(h->sub_bits, value)]++;
    h->total++;
    h->sum += (long double)value;
    if (value < h->min)
        h->min = value;
    if (value > h->max)
        h->max = value;
}

int lt_hist_merge(struct lt_hist *dst, const struct lt_hist *src)
{
    if (dst->sub_bits != src->sub_bits || dst->counts == NULL)
        return -1;
    for (size_t i = 0; i < dst->n_buckets; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    return 0;
}

uint64_t lt_hist_percentile(const struct lt_hist *h, double p)
{
    uint64_t want, seen = 0;

    if (h->total == 0)
        return 0;
    if (p >= 100.0)
        return h->max;
    want = (uint64_t)((p / 100.0) * (double)h->total + 0.999999);
    if (want == 0)
        want = 1;
    for (size_t i = 0; i < h->n_buckets; i++) {
        seen += h->counts[i];
        if (seen >= want) {
            uint64_t v = lt_hist_upper(h->sub_bits, i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}

double lt_hist_mean(const struct lt_hist *h)
{
    return h->total > 0 ? (double)(h->sum / (long double)h->total) : 0.0;
}
