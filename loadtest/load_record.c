/* What certval-load counts of a finished call: its verdicts, or the error
 * it ended with, its latency from its intended send time, the second of the
 * run it falls in (for the timeline plot), and, for the revocation probe,
 * when victims were first denied. Only calls that finish inside the
 * measured window count. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>

#include "load_client_internal.h"

static double ld_realtime(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ld_count_response counts the verdicts of one ValidateResponse (their
 * number in |*out_verdicts|) and notes the first victim DENY and the first
 * all-DENY response (which ends the run with --stop-on-all-deny). Returns
 * 0, or -1 when the message does not parse. */
static int ld_count_response(struct ld_thread *t, struct lt_result *r, size_t *out_verdicts,
                             grpc_byte_buffer *bb)
{
    unsigned victims = 0, denies = 0;
    int rc = ld_wire_count_response(r, out_verdicts, bb, &victims, &denies);

    if (denies > 0 && t->out->first_victim_deny == 0)
        t->out->first_victim_deny = ld_realtime();
    if (victims > 0 && denies == victims && t->out->first_all_deny == 0) {
        t->out->first_all_deny = ld_realtime();
        if (t->o->stop_on_all_deny)
            t->run->stop = 1;
    }
    return rc;
}

static struct ld_second *ld_second_at(struct ld_thread *t, uint64_t now)
{
    size_t i;

    if (t->out->timeline == NULL || now < t->run->t_measure)
        return NULL;
    i = (size_t)((now - t->run->t_measure) / 1000000000u);
    return i < t->out->n_seconds ? &t->out->timeline[i] : NULL;
}

bool ld_in_window(const struct ld_thread *t, uint64_t now)
{
    return now >= t->run->t_measure && now <= t->run->t_end;
}

/* ld_record counts a finished message: verdicts when |bb| holds a response,
 * an error by |status| otherwise. Only inside the measured window. */
void ld_record(struct ld_thread *t, struct ld_slot *s, grpc_byte_buffer *bb, unsigned status)
{
    uint64_t now = lt_now_ns();
    struct ld_second *sec = ld_second_at(t, now);
    struct lt_result *r = &t->out->res;
    struct lt_result scratch;
    size_t n;

    if (!ld_in_window(t, now)) {
        /* Outside the window the verdicts are not counted, but a probe
         * still watches for DENY. */
        if (bb != NULL && t->o->stop_on_all_deny && lt_result_init(&scratch) == 0) {
            (void)ld_count_response(t, &scratch, &n, bb);
            lt_result_clear(&scratch);
        }
        return;
    }
    if (bb != NULL && status == GRPC_STATUS_OK) {
        if (ld_count_response(t, r, &n, bb) != 0) {
            r->errors[LT_STATUS_CLIENT_FAILED]++;
            return;
        }
        r->calls++;
        lt_hist_record(&r->lat, now - s->intended_ns);
        /* Goodput: in time for a client that meant to send at the intended
         * time (the open loop's queueing for a slot counts). */
        if (now - s->intended_ns <= (uint64_t)t->o->deadline_ms * 1000000u)
            t->out->in_deadline++;
        if (sec != NULL) {
            sec->calls++;
            sec->chains += (uint64_t)n;
            lt_hist_record(&sec->lat, now - s->intended_ns);
        }
        return;
    }
    r->errors[status < LT_N_STATUS ? status : LT_STATUS_CLIENT_FAILED]++;
    if (sec != NULL)
        sec->errors++;
}

void ld_thread_result_clear(struct ld_thread_result *r)
{
    lt_result_clear(&r->res);
    for (size_t i = 0; r->timeline != NULL && i < r->n_seconds; i++)
        lt_hist_clear(&r->timeline[i].lat);
    free(r->timeline);
    memset(r, 0, sizeof(*r));
}

int ld_result_init(const struct ld_opts *o, struct ld_thread_result *r)
{
    memset(r, 0, sizeof(*r));
    if (lt_result_init(&r->res) != 0)
        return -1;
    if (o->plot_prefix == NULL)
        return 0;
    r->n_seconds = (size_t)o->duration_s + 1;
    r->timeline = calloc(r->n_seconds, sizeof(*r->timeline));
    if (r->timeline == NULL)
        return -1;
    for (size_t i = 0; i < r->n_seconds; i++) {
        if (lt_hist_init(&r->timeline[i].lat, LD_TIMELINE_SUB_BITS) != 0)
            return -1;
    }
    return 0;
}
