/* envoy.service.auth.v3.Authorization/Check on the gRPC listeners (envoy.c,
 * docs/frontends.md). */
#ifndef CERTVAL_FRONTENDS_ENVOY_H
#define CERTVAL_FRONTENDS_ENVOY_H

#include <grpc/grpc.h>

struct transport;

#define ENVOY_CHECK_METHOD "/envoy.service.auth.v3.Authorization/Check"

/* envoy_check_start takes over a freshly accepted Check call on |tr|'s
 * transport thread. Answers UNIMPLEMENTED when frontends.envoy.enabled is
 * false; every other outcome is a CheckResponse with gRPC status OK. */
void envoy_check_start(struct transport *tr, grpc_call *call);

#endif
