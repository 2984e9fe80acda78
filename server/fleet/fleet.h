/* Fleet-wide revocation through etcd v3 (issue 11, docs/fleet.md).
 *
 * With a `fleet` section, every pod follows one key prefix in etcd:
 *  - PREFIX s/deny/leaf/<leaf SHA-256 hex>                 deny entries (a
 *    PREFIX s/deny/serial/<issuer name SHA-256 hex>/<serial hex>  packed
 *    certval.v1.DenyEntry; an expiring one is bound to an etcd lease);
 *  - PREFIX s/crl/<issuer name SHA-256 hex>   a pushed CRL's manifest
 *    (generation, size, SHA-256, CRL number, force, issuer name);
 *  - PREFIX c/<issuer hex>/<generation>/<index>  the CRL's chunks (1 MiB).
 * A follower thread reads PREFIX s/ whole at one revision, applies it, and
 * watches it from the next revision; a CRL is applied only when its chunks,
 * read at the manifest's revision, match the manifest's size and hash.
 * What it applied goes through the deny list's store file and the pushed
 * CRL state files (STATE/deny-list.txt, STATE/crls/), plus STATE/fleet.txt
 * (revision and CRL generations), so a restart while etcd is down serves
 * the same state.
 *
 * The admin API's writes call fleet_admin_* instead of changing the local
 * state: they answer once etcd has committed (and, for a bounded time, once
 * this pod has applied the change), UNAVAILABLE when etcd cannot be reached
 * (nothing is applied anywhere then).
 *
 * One fleet per process (the hooks in admin.c, certvald.c and the
 * validator's revocation sources name no instance). fleet_start and
 * fleet_stop: main thread. fleet_admin_*: the admin thread, a registered
 * RCU reader. fleet_enabled, fleet_ready, fleet_revocation_unknown,
 * fleet_get_status, fleet_collect: any thread.
 *
 * Conventions: 0, or -1 with a message in |err|; admin writes answer a
 * grpc_status_code with a message; predicates return bool. */
#ifndef CERTVAL_FLEET_H
#define CERTVAL_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/status.h>

#include "certval/v1/admin.pb-c.h"
#include "fleet_config.h"

struct crl_cache;
struct deny_list;
struct mbuf;

/* fleet_start starts following |cfg| (copied) for |crls| and |deny|, with
 * the local mirror in |state_dir| (NULL: none; a restart then forgets
 * until etcd answers). |ready_hook| is called (from the follower thread,
 * a registered RCU reader) when fleet_ready turns true. Returns 0 (also
 * when |cfg| is off: nothing is started), or -1 with |err|. */
int fleet_start(const struct fleet_config *cfg, struct crl_cache *crls, struct deny_list *deny,
                const char *state_dir, void (*ready_hook)(void *arg), void *arg, char *err,
                size_t errlen);

/* fleet_stop stops the follower (bounded by the etcd timeout) and frees
 * the fleet. Safe when never started. */
void fleet_stop(void);

/* fleet_enabled: a fleet is running, so admin writes go to etcd. */
bool fleet_enabled(void);

/* fleet_ready is true when |cfg| (the configuration in use) has no fleet,
 * after the fleet's first full read, or, when etcd did not answer within
 * start_timeout_ms, from the local copy (flagged in status and metrics).
 * Otherwise (also before fleet_start) false with |why|. */
bool fleet_ready(const struct fleet_config *cfg, char *why, size_t cap);

/* fleet_revocation_unknown is true (with |why|) when max_disconnected_seconds
 * is set and the pod has been cut off from etcd longer: every chain is then
 * DENY REVOCATION_UNKNOWN (the operator chose fail-closed). Lock-free. */
bool fleet_revocation_unknown(char *why, size_t cap);

/* ---- admin API writes (admin thread) ---- */

/* fleet_admin_deny adds or removes |e| in etcd. GRPC_STATUS_OK with the
 * pod's entry count in |*out_entries|, or INVALID_ARGUMENT (bad entry),
 * NOT_FOUND (remove of an entry the fleet does not hold), UNAVAILABLE
 * (etcd unreachable: nothing changed), with |msg|. */
grpc_status_code fleet_admin_deny(bool add, const Certval__V1__DenyEntry *e, uint64_t *out_entries,
                                  char *msg, size_t cap);

/* fleet_admin_push_crl verifies |crl| (DER or PEM) as the admin API's
 * PushCrl does and stores it in etcd (chunks, then the manifest in one
 * transaction). OK with issuer, number and entry count; INVALID_ARGUMENT
 * or FAILED_PRECONDITION (refused, as PushCrl refuses), ABORTED (another
 * push for the same issuer won the race), UNAVAILABLE. */
grpc_status_code fleet_admin_push_crl(const uint8_t *crl, size_t len, bool force, char *issuer,
                                      size_t issuer_cap, uint64_t *number, uint64_t *entries,
                                      char *msg, size_t cap);

/* fleet_admin_withdraw_crl deletes the fleet's pushed CRL of |issuer| (one
 * line, as status reports it). NOT_FOUND when the fleet has none. */
grpc_status_code fleet_admin_withdraw_crl(const char *issuer, uint64_t *out_restored, char *msg,
                                          size_t cap);

/* ---- visibility ---- */

struct fleet_status {
    bool enabled, connected, first_read_done, local_copy;
    int64_t applied_revision, store_revision;
    int64_t disconnected_seconds; /* 0 while connected */
    uint64_t deny_entries, crls;  /* held from the fleet */
    uint64_t rereads, reconnects, crls_refused;
    char detail[256];
};

/* fleet_get_status fills |out| (all zero when the fleet is off). */
void fleet_get_status(struct fleet_status *out);

/* fleet_collect is a metrics collector (metrics_add_collector). */
void fleet_collect(struct mbuf *b, void *arg);

#endif
