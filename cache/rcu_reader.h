/* RCU reader registration for every RCU-published certval structure: the
 * CRL cache (crl_cache.h), the deny list (deny_list.h) and the
 * configuration snapshots (server/reload.h). liburcu's "memb" flavour.
 *
 * A thread that reads any of them registers once for its whole life and
 * unregisters before it exits. Calls are per thread and idempotent; a
 * thread must not also call urcu_memb_register_thread itself, because the
 * registration is tracked in a thread-local flag here.
 *
 * Conventions: no function fails (liburcu's registration cannot). */
#ifndef CERTVAL_RCU_READER_H
#define CERTVAL_RCU_READER_H

#include <stdbool.h>

/* certval_rcu_reader_register registers the calling thread as an RCU
 * reader, unless it already is. */
void certval_rcu_reader_register(void);

/* certval_rcu_reader_unregister undoes certval_rcu_reader_register; a no-op
 * on a thread that is not registered. */
void certval_rcu_reader_unregister(void);

/* certval_rcu_reader_registered tells whether the calling thread is a
 * registered reader (for code that registers only for the length of one
 * call, such as a writer's call_rcu). */
bool certval_rcu_reader_registered(void);

/* certval_rcu_writer_begin makes the calling thread a registered reader
 * for the length of a writer's call_rcu or rcu_barrier, which take the
 * read lock internally: registers it unless it already is, and returns
 * whether it did. certval_rcu_writer_end(that answer) undoes it. */
bool certval_rcu_writer_begin(void);
void certval_rcu_writer_end(bool registered_here);

#endif
