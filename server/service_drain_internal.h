/* Admission and drain for certval.v1.Validator, shared by service.c (the
 * calls) and service_drain.c (the bounds and the drain's timing). Private
 * to server/.
 *
 * Conventions: service_admit returns a gRPC status (OK: taken) with the
 * refusal's text in |msg|; the predicates return bool; nothing else
 * fails. */
#ifndef CERTVAL_SERVICE_DRAIN_INTERNAL_H
#define CERTVAL_SERVICE_DRAIN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/status.h>

struct server;

#define DRAIN_REFUSED_MSG "draining: this replica is shutting down; retry on another"

/* service_admit decides, before a message of |bytes| is unpacked, whether
 * it is taken: OK, or the status to refuse it with (DEADLINE_EXCEEDED,
 * RESOURCE_EXHAUSTED naming the bound, UNAVAILABLE at the end of a drain)
 * and its text in |msg|. |deadline_ns| is the call's (UINT64_MAX: none).
 * Transport thread. */
grpc_status_code service_admit(struct server *srv, uint64_t deadline_ns, size_t bytes, char *msg,
                               size_t msglen);

/* service_admit_batch decides, once a message is unpacked into |n_chains|
 * chains in |n_slices| slices, whether their work ends in good time before
 * the call's |deadline_ns| at the recent cost of a chain: OK, or
 * RESOURCE_EXHAUSTED with its text in |msg| (work that would end late is
 * refused while the client can still try another replica, instead of
 * being done for an answer nobody reads). Transport thread. */
grpc_status_code service_admit_batch(const struct server *srv, uint64_t deadline_ns,
                                     size_t n_chains, unsigned n_slices, char *msg, size_t msglen);

/* drain_leaves_time: a batch of |n_chains| in |n_slices| can end in good
 * time before the drain's grace does (true when not draining). */
bool drain_leaves_time(const struct server *srv, size_t n_chains, unsigned n_slices);

#endif
