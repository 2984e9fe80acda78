/* certval.v1.Validator (service.c): Validate and ValidateStream. The
 * handlers read the server's admission state and worker pool through
 * call_base.tr (server.h).
 *
 * Conventions: nothing returns an error; every outcome of a call is its
 * gRPC status (RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ...) or a verdict. */
#ifndef CERTVAL_SERVICE_H
#define CERTVAL_SERVICE_H

#include "call.h"

#define SERVICE_VALIDATE_METHOD "/certval.v1.Validator/Validate"
#define SERVICE_VALIDATE_STREAM_METHOD "/certval.v1.Validator/ValidateStream"

/* service_validate_start / service_validate_stream_start take over a
 * Validate (unary) or ValidateStream (bidi) call (call_handler_fn; |arg|
 * unused). Transport thread. */
void service_validate_start(void *arg, const struct call_request *req);
void service_validate_stream_start(void *arg, const struct call_request *req);

#endif
