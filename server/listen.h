/* Listening sockets that certvald owns (listen.c), instead of gRPC's own
 * listeners: certvald binds, listens and accepts, and hands each accepted
 * connection to gRPC (grpc_server_add_channel_from_fd, plaintext HTTP/2,
 * the server's channel arguments). Owning them lets a drain stop accepting
 * new connections without starting gRPC's shutdown, which in gRPC 1.51
 * ends with CANCELLED every call that reaches it on a live connection
 * (docs/operations.md, "Drain").
 *
 * Exclusive: SO_REUSEADDR (a restart binds over TIME_WAIT) but never
 * SO_REUSEPORT, so a second certvald on a taken port fails at start.
 *
 * Conventions: 0 or -1 with a message in |err|; listen_set_free accepts
 * NULL. Main thread, except the acceptor thread listen_set_start runs. */
#ifndef CERTVAL_LISTEN_H
#define CERTVAL_LISTEN_H

#include <stddef.h>

#include <grpc/grpc.h>

struct listen_set;

/* listen_set_open binds and listens on every |tcp| address (HOST:PORT or
 * [IPV6]:PORT; a name binds every address it resolves to; port 0 asks the
 * kernel, and the other addresses of the same entry take the port it
 * chose) and on |unix_path| (NULL = none; an old socket file there is
 * removed first). |out_ports|[i] gets entry i's port. Nothing is accepted
 * yet. On failure nothing stays open and *out is NULL. */
int listen_set_open(struct listen_set **out, char *const *tcp, size_t n_tcp, const char *unix_path,
                    int *out_ports, char *err, size_t errlen);

/* listen_set_start starts the acceptor thread: each connection accepted
 * goes to |g|, which must be started. */
int listen_set_start(struct listen_set *ls, grpc_server *g, char *err, size_t errlen);

/* listen_set_close stops accepting: the acceptor thread is joined and the
 * sockets closed (connections waiting in the backlog are refused; the
 * Unix socket file is removed). Connections already handed to gRPC stay.
 * Idempotent. */
void listen_set_close(struct listen_set *ls);

/* listen_set_cut is listen_set_close, then closes every connection
 * accepted and still open at the socket (shutdown of both directions,
 * under gRPC): nothing more is written on them, so their clients see the
 * connection end (UNAVAILABLE) and never a status gRPC would have sent
 * later, such as the CANCELLED of its shutdown. gRPC then ends those
 * transports itself. Returns how many connections were closed. */
size_t listen_set_cut(struct listen_set *ls);

/* listen_set_free closes |ls| if needed and frees it; NULL is fine. */
void listen_set_free(struct listen_set *ls);

#endif
