/* envoy.service.auth.v3.Authorization/Check on the gRPC listeners (envoy.c,
 * docs/frontends.md).
 *
 * Conventions: nothing returns an error; every outcome of a Check call is
 * its CheckResponse (malformed input is a DENY), or UNIMPLEMENTED. */
#ifndef CERTVAL_FRONTENDS_ENVOY_H
#define CERTVAL_FRONTENDS_ENVOY_H

#include "call.h"

#define ENVOY_CHECK_METHOD "/envoy.service.auth.v3.Authorization/Check"

/* envoy_check_start takes over a freshly accepted Check call on its
 * transport thread (call_handler_fn; |arg| unused). Answers UNIMPLEMENTED when
 * frontends.envoy.enabled is false; every other outcome is a CheckResponse with gRPC status OK. */
void envoy_check_start(void *arg, const struct call_request *req);

#endif
