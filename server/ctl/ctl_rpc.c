#include "ctl_rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>


int ctl_unary_call(const char *target, const char *method, const char *bearer,
                   const uint8_t *req, size_t req_len, int timeout_s, struct ctl_rpc_result *res)
{
    grpc_metadata md;
    char auth[4200];
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(target, creds, NULL);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_slice method_slice = grpc_slice_from_static_string(method);
    grpc_slice req_slice = grpc_slice_from_copied_buffer((const char *)req, req_len);
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&req_slice, 1);
    grpc_byte_buffer *recv = NULL;
    grpc_metadata_array init_md, trail_md;
    grpc_slice details = grpc_empty_slice();
    grpc_op ops[6];
    grpc_call *call;
    int rc = -1, tag;

    memset(res, 0, sizeof(*res));
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trail_md);
    call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method_slice, NULL,
                                    gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                                                 gpr_time_from_seconds(timeout_s, GPR_TIMESPAN)),
                                    NULL);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (bearer != NULL) {
        snprintf(auth, sizeof(auth), "Bearer %s", bearer);
        md.key = grpc_slice_from_static_string("authorization");
        md.value = grpc_slice_from_copied_string(auth);
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
    ops[5].data.recv_status_on_client.status = &res->status;
    ops[5].data.recv_status_on_client.status_details = &details;
    if (grpc_call_start_batch(call, ops, 6, &tag, NULL) == GRPC_CALL_OK) {
        grpc_event ev = grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME),
                                                    NULL);
        rc = ev.type == GRPC_OP_COMPLETE ? 0 : -1;
    }
    if (rc == 0) {
        char *d = grpc_slice_to_c_string(details);

        snprintf(res->details, sizeof(res->details), "%s", d);
        gpr_free(d);
    }
    if (rc == 0 && recv != NULL) {
        grpc_byte_buffer_reader reader;

        if (grpc_byte_buffer_reader_init(&reader, recv)) {
            grpc_slice s = grpc_byte_buffer_reader_readall(&reader);

            res->body_len = GRPC_SLICE_LENGTH(s);
            res->body = malloc(res->body_len > 0 ? res->body_len : 1);
            if (res->body != NULL)
                memcpy(res->body, GRPC_SLICE_START_PTR(s), res->body_len);
            grpc_slice_unref(s);
            grpc_byte_buffer_reader_destroy(&reader);
        }
    }
    if (recv != NULL)
        grpc_byte_buffer_destroy(recv);
    grpc_byte_buffer_destroy(send);
    grpc_slice_unref(req_slice);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trail_md);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    grpc_channel_destroy(ch);
    grpc_channel_credentials_release(creds);
    if (bearer != NULL)
        grpc_slice_unref(md.value);
    return rc;
}

