/* A small synchronous gRPC client for certvalctl (validate, health,
 * admin).
 *
 * Conventions: 0 when the call completed (its gRPC status is in the
 * result), -1 when it could not be made. */
#ifndef CERTVAL_CTL_RPC_H
#define CERTVAL_CTL_RPC_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

struct ctl_rpc_result {
    grpc_status_code status;
    char details[512];
    uint8_t *body; /* malloc'd response message, or NULL */
    size_t body_len;
};

/* ctl_unary_call makes one unary call to |target| (grpc_init must have been
 * called). |bearer| (or NULL) goes out as "authorization: Bearer ...".
 * Returns 0 when the call completed, whatever its status (in res->status),
 * -1 when it could not be made. The caller frees res->body. */
int ctl_unary_call(const char *target, const char *method, const char *bearer,
                   const uint8_t *req, size_t req_len, int timeout_s, struct ctl_rpc_result *res);

#endif
