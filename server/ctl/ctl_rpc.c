#include "ctl_rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>

#include "rpc_unary.h"

int ctl_unary_call(const char *target, const char *method, const char *bearer, const uint8_t *req,
                   size_t req_len, int timeout_s, struct ctl_rpc_result *res)
{
    char auth[4200];
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(target, creds, NULL);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(timeout_s, GPR_TIMESPAN));
    struct rpc_unary_reply r;
    int rc;

    memset(res, 0, sizeof(*res));
    if (bearer != NULL)
        snprintf(auth, sizeof(auth), "Bearer %s", bearer);
    rc = rpc_unary_call(&r, ch, method, "authorization", bearer != NULL ? auth : NULL, req, req_len,
                        deadline);
    if (rc == 0) {
        res->status = r.status;
        snprintf(res->details, sizeof(res->details), "%s", r.details);
        res->body = r.body;
        res->body_len = r.body_len;
    } else {
        free(r.body);
    }
    grpc_channel_destroy(ch);
    grpc_channel_credentials_release(creds);
    return rc;
}
