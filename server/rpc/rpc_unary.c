/* One synchronous unary gRPC call (rpc_unary.h). */
#include "rpc_unary.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>

/* copy_message copies the received message into out->body: 0, or -1 out of
 * memory. */
static int copy_message(struct rpc_unary_reply *out, grpc_byte_buffer *recv)
{
    grpc_byte_buffer_reader reader;
    grpc_slice s;
    int rc = 0;

    if (!grpc_byte_buffer_reader_init(&reader, recv))
        return 0;
    s = grpc_byte_buffer_reader_readall(&reader);
    out->body_len = GRPC_SLICE_LENGTH(s);
    out->body = malloc(out->body_len > 0 ? out->body_len : 1);
    if (out->body != NULL)
        memcpy(out->body, GRPC_SLICE_START_PTR(s), out->body_len);
    else
        rc = -1;
    grpc_slice_unref(s);
    grpc_byte_buffer_reader_destroy(&reader);
    return rc;
}

int rpc_unary_call(struct rpc_unary_reply *out, grpc_channel *ch, const char *method,
                   const char *md_key, const char *md_value, const uint8_t *req, size_t req_len,
                   gpr_timespec deadline)
{
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_slice req_slice = grpc_slice_from_copied_buffer((const char *)req, req_len);
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&req_slice, 1);
    grpc_byte_buffer *recv = NULL;
    grpc_metadata_array init_md, trail_md;
    grpc_slice details = grpc_empty_slice();
    bool has_md = md_value != NULL && md_value[0] != '\0';
    grpc_metadata md;
    grpc_op ops[6];
    grpc_call *call;
    int rc = -1, tag;

    memset(out, 0, sizeof(*out));
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trail_md);
    call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                    grpc_slice_from_static_string(method), NULL, deadline, NULL);
    memset(ops, 0, sizeof(ops));
    memset(&md, 0, sizeof(md));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (has_md) {
        md.key = grpc_slice_from_static_string(md_key);
        md.value = grpc_slice_from_copied_string(md_value);
        ops[0].data.send_initial_metadata.count = 1;
        ops[0].data.send_initial_metadata.metadata = &md;
    }
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
    ops[5].data.recv_status_on_client.status = &out->status;
    ops[5].data.recv_status_on_client.status_details = &details;
    if (call != NULL && grpc_call_start_batch(call, ops, 6, &tag, NULL) == GRPC_CALL_OK) {
        grpc_event ev =
            grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);

        rc = ev.type == GRPC_OP_COMPLETE ? 0 : -1;
    }
    if (rc == 0) {
        char *d = grpc_slice_to_c_string(details);

        snprintf(out->details, sizeof(out->details), "%s", d);
        gpr_free(d);
    }
    if (rc == 0 && recv != NULL)
        rc = copy_message(out, recv);
    if (recv != NULL)
        grpc_byte_buffer_destroy(recv);
    grpc_byte_buffer_destroy(send);
    grpc_slice_unref(req_slice);
    grpc_slice_unref(details);
    if (has_md)
        grpc_slice_unref(md.value);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trail_md);
    if (call != NULL)
        grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    return rc;
}
