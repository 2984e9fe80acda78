/* certval-load's client thread, shared by the files that make it up:
 *
 *   load_client.c   a thread's channels, call slots, start and end
 *                   (ld_client_run, declared in load_internal.h)
 *   load_pacing.c   the thread's loop: closed loop, or the open loop's
 *                   schedule, fine waits and the drain at the end
 *   load_calls.c    issuing calls: unary calls and streams on a slot, and
 *                   what their completions do
 *   load_record.c   what a finished call counts: verdicts, errors,
 *                   latency, the per-second timeline, the DENY probe
 *   load_wire.c     certval.v1 messages encoded and parsed by hand
 *
 * Everything here belongs to one client thread and is touched only by it
 * (load_internal.h has the threading rules). Functions that can fail
 * return 0 or -1.
 *
 * Conventions: 0 or -1, values through |out| parameters; predicates
 * return bool. */
#ifndef CERTVAL_LOAD_CLIENT_INTERNAL_H
#define CERTVAL_LOAD_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <grpc/support/time.h>

#include "load_internal.h"

#define LD_DRAIN_NS 5000000000ull /* after the end, time left to calls in flight */
#define LD_USER_MAX 24

enum ld_tag_kind { LD_TAG_MSG, LD_TAG_STATUS, LD_TAG_CLOSE };

struct ld_slot;

struct ld_tag {
    struct ld_slot *slot;
    enum ld_tag_kind kind;
};

/* One call slot: a unary call at a time, or one stream carrying one message
 * at a time. Owned by its thread. */
struct ld_slot {
    struct ld_thread *t;
    grpc_channel *ch;
    grpc_call *call;      /* NULL when no call/stream is open */
    bool busy;            /* a message is in flight */
    bool msg_failed;      /* stream: a message batch failed; status decides */
    bool closing;         /* stream: SEND_CLOSE_FROM_CLIENT started */
    bool got_status;      /* stream: RECV_STATUS_ON_CLIENT completed */
    unsigned pending;     /* batches started and not completed */
    uint64_t intended_ns; /* when this message was meant to be sent */
    grpc_byte_buffer *send_bb;
    grpc_byte_buffer *recv_bb;
    grpc_metadata_array init_md, trail_md;
    grpc_status_code status;
    grpc_slice details;
    struct ld_tag tag_msg, tag_status, tag_close;
};

/* One chain picked for a request. */
struct ld_pick {
    struct lt_chain chain;
    uint64_t id;
    char user[LD_USER_MAX];
    size_t user_len;
    size_t size; /* encoded ChainRequest size, set by ld_wire_request_new */
};

struct ld_thread {
    struct ld_run *run;
    const struct ld_opts *o;
    unsigned index;
    grpc_completion_queue *cq;
    grpc_channel *channels[LD_MAX_CHANNELS];
    unsigned n_channels;
    struct ld_slot *slots;
    size_t n_slots;
    struct ld_slot **free_slots; /* open loop: slots that can take the next call */
    size_t n_free;
    struct ld_pick *picks; /* batch scratch */
    uint64_t rng;
    uint64_t next_due, period_ns;
    size_t outstanding; /* batches in the completion queue */
    bool stopping;
    struct ld_thread_result *out;
};

/* ---- load_wire.c ---- */

/* ld_wire_request_new encodes a ValidateRequest of the |n| chains |picks|
 * into a new byte buffer (the caller's to send and destroy), setting each
 * pick's size. */
grpc_byte_buffer *ld_wire_request_new(struct ld_pick *picks, unsigned n);

/* ld_wire_count_response counts the verdicts of the ValidateResponse in
 * |bb| into |r| and their number into |*out_verdicts|, and adds to
 * |*victims| and |*victim_denies| the victim-class verdicts and those of
 * them that are DENY. Returns 0, or -1 (|*out_verdicts| 0) when the message
 * does not parse. */
int ld_wire_count_response(struct lt_result *r, size_t *out_verdicts, grpc_byte_buffer *bb,
                           unsigned *victims, unsigned *victim_denies);

/* ---- load_record.c ---- */

/* ld_result_init prepares |r| for a run with |o| (a timeline when plots
 * are asked for); ld_thread_result_clear frees it, even after a failure. */
int ld_result_init(const struct ld_opts *o, struct ld_thread_result *r);

/* ld_in_window is true when |now| is inside the measured window. */
bool ld_in_window(const struct ld_thread *t, uint64_t now);

/* ld_record counts a finished message of |s|: verdicts when |bb| holds a
 * response, an error by |status| otherwise. Only inside the measured
 * window; outside it a DENY probe still reads the verdicts. */
void ld_record(struct ld_thread *t, struct ld_slot *s, grpc_byte_buffer *bb, unsigned status);

/* ---- load_calls.c ---- */

/* ld_deadline_in is the gRPC deadline |ns| from now. */
gpr_timespec ld_deadline_in(uint64_t ns);

/* ld_slot_reset_buffers destroys the slot's message buffers. */
void ld_slot_reset_buffers(struct ld_slot *s);

/* ld_slot_release_call drops the slot's call and its status and metadata,
 * leaving the slot ready for a new call. */
void ld_slot_release_call(struct ld_slot *s);

/* ld_send starts the slot's next message, meant to leave at |intended|; a
 * failure to start counts as a client error. */
void ld_send(struct ld_slot *s, uint64_t intended);

/* ld_slot_idle is called when a slot can take its next message: the closed
 * loop sends at once, the open loop queues the slot as free, and a thread
 * that is stopping closes its stream. */
void ld_slot_idle(struct ld_slot *s);

/* ld_stream_close half-closes the slot's stream when no message is in
 * flight (cancels it if that cannot start). */
void ld_stream_close(struct ld_slot *s);

/* ld_handle handles one completion of |t|'s queue. */
void ld_handle(struct ld_thread *t, struct ld_tag *tag, bool ok);

/* ---- load_pacing.c ---- */

/* ld_thread_loop runs |t|'s slots from the run's start to its end and the
 * drain after it. */
void ld_thread_loop(struct ld_thread *t);

#endif
