/* One synchronous unary gRPC call on the gRPC C core, shared by certvalctl
 * (server/ctl/ctl_rpc.c) and the etcd client (server/fleet/etcd_client.c).
 *
 * Conventions: 0 or -1 (the call's own status is in the reply); the reply
 * is zeroed on entry. Thread-safe: each call has its own completion queue
 * (grpc_init must have been called). */
#ifndef CERTVAL_RPC_UNARY_H
#define CERTVAL_RPC_UNARY_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <grpc/support/time.h>

struct rpc_unary_reply {
    grpc_status_code status;
    char details[512]; /* the status message, truncated */
    uint8_t *body;     /* malloc'd response message, or NULL */
    size_t body_len;
};

/* rpc_unary_call sends |req| to |method| on |ch| and waits for the answer
 * until |deadline|. When |md_value| is neither NULL nor empty it goes out
 * as the one metadata entry |md_key| (e.g. "authorization", "token").
 * Returns 0 when the call completed, whatever its status (out->status,
 * out->details, and out->body when a message came back), -1 when it could
 * not be started or the message not copied. The caller frees out->body. */
int rpc_unary_call(struct rpc_unary_reply *out, grpc_channel *ch, const char *method,
                   const char *md_key, const char *md_value, const uint8_t *req, size_t req_len,
                   gpr_timespec deadline);

#endif
