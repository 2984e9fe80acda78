/* certval.v1.Admin (admin.c): operator calls on the admin listener, each
 * checked against the bearer token file.
 *
 * Conventions: no function returns an error; a call's outcome is its gRPC
 * status (UNAUTHENTICATED, INVALID_ARGUMENT, UNAVAILABLE, ...) with a
 * message. */
#ifndef CERTVAL_ADMIN_H
#define CERTVAL_ADMIN_H

#include "call.h"

struct crl_cache;
struct deny_list;

/* Every method of the service (a server_register_method prefix). */
#define ADMIN_SERVICE_PREFIX "/certval.v1.Admin/"

/* admin_configure copies the token file path, the state folder (NULL = none)
 * and the configuration path Reload uses, and keeps |crls| and |deny| (owned
 * by the caller, alive while serving) for the calls to change. Not
 * thread-safe: call before serving. */
void admin_configure(const char *token_file, const char *state_dir, const char *config_path,
                     struct crl_cache *crls, struct deny_list *deny);

/* admin_call_start takes over a call of any admin method (call_handler_fn;
 * |arg| unused); the request's metadata is checked for the token here.
 * Transport thread. */
void admin_call_start(void *arg, const struct call_request *req);

#endif
