/* certval-load's client thread: its completion queue, the channels assigned
 * to it (channel c goes to thread c % threads), the call slots on them, and
 * the start and end of the thread (ld_client_run). The thread's loop is in
 * load_pacing.c, its calls in load_calls.c, what they count in
 * load_record.c; load_client_internal.h lists the parts and
 * load_internal.h the threading rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "load_client_internal.h"

static grpc_channel *ld_channel_new(const char *target)
{
    grpc_arg args[2];
    grpc_channel_args ca = {.num_args = 2, .args = args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch;

    /* Each channel its own subchannel, hence its own TCP connection. */
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    args[0].value.integer = 1;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[1].value.integer = -1;
    ch = grpc_channel_create(target, creds, &ca);
    grpc_channel_credentials_release(creds);
    return ch;
}

static int ld_thread_setup(struct ld_thread *t)
{
    const struct ld_opts *o = t->o;

    t->cq = grpc_completion_queue_create_for_next(NULL);
    for (unsigned c = t->index; c < o->channels; c += o->threads)
        t->channels[t->n_channels++] = ld_channel_new(o->target);
    /* Slot k of the run lives on channel k % channels. */
    for (unsigned k = 0; k < o->concurrency; k++)
        t->n_slots += (k % o->channels) % o->threads == t->index;
    t->slots = calloc(t->n_slots ? t->n_slots : 1, sizeof(*t->slots));
    t->free_slots = calloc(t->n_slots ? t->n_slots : 1, sizeof(*t->free_slots));
    t->picks = calloc(o->batch, sizeof(*t->picks));
    if (t->slots == NULL || t->free_slots == NULL || t->picks == NULL)
        return -1;
    for (size_t i = 0, k = 0; k < o->concurrency; k++) {
        struct ld_slot *s;

        if ((k % o->channels) % o->threads != t->index)
            continue;
        s = &t->slots[i++];
        s->t = t;
        s->ch = t->channels[(k % o->channels) / o->threads];
        s->details = grpc_empty_slice();
        grpc_metadata_array_init(&s->init_md);
        grpc_metadata_array_init(&s->trail_md);
        s->tag_msg = (struct ld_tag){s, LD_TAG_MSG};
        s->tag_status = (struct ld_tag){s, LD_TAG_STATUS};
        s->tag_close = (struct ld_tag){s, LD_TAG_CLOSE};
    }
    if (o->open_loop && o->rate > 0)
        t->period_ns = (uint64_t)(1e9 * o->threads / o->rate);
    return 0;
}

static void ld_thread_teardown(struct ld_thread *t)
{
    grpc_event ev;

    if (t->cq != NULL) {
        grpc_completion_queue_shutdown(t->cq);
        do {
            ev = grpc_completion_queue_next(t->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        } while (ev.type != GRPC_QUEUE_SHUTDOWN);
    }
    for (size_t i = 0; t->slots != NULL && i < t->n_slots; i++) {
        ld_slot_reset_buffers(&t->slots[i]);
        ld_slot_release_call(&t->slots[i]);
        grpc_metadata_array_destroy(&t->slots[i].init_md);
        grpc_metadata_array_destroy(&t->slots[i].trail_md);
    }
    for (unsigned c = 0; c < t->n_channels; c++)
        grpc_channel_destroy(t->channels[c]);
    if (t->cq != NULL)
        grpc_completion_queue_destroy(t->cq);
    free(t->slots);
    free(t->free_slots);
    free(t->picks);
}

int ld_client_run(struct ld_run *run, unsigned index, struct ld_thread_result *out)
{
    struct ld_thread t = {
        .run = run,
        .o = run->o,
        .index = index,
        .rng = UINT64_C(0x5eed) + index * UINT64_C(0x9e3779b97f4a7c15) + (uint64_t)time(NULL),
        .out = out,
    };
    int rc = -1;

    if (ld_result_init(run->o, out) != 0 || ld_thread_setup(&t) != 0) {
        fprintf(stderr, "certval-load: out of memory\n");
        goto err;
    }
    ld_thread_loop(&t);
    rc = 0;
err:
    ld_thread_teardown(&t);
    return rc;
}
