/* The configuration snapshot the service answers from, and its hot reload.
 *
 * A snapshot (configuration + validator) is immutable once published. The
 * current one is an RCU-protected pointer; a call takes a reference with
 * reload_acquire when it starts and keeps answering from it until it ends,
 * so a reload never changes a verdict half-way through a batch. A reload
 * builds the next snapshot off to the side, checks it, and publishes it with
 * one pointer exchange; a broken file is refused and the old snapshot keeps
 * serving (Knot DNS-style, STYLE.md).
 *
 * Who: reload_acquire/release from any registered RCU reader thread;
 * reload_file from one thread at a time (serialised internally).
 *
 * Every public name starts with reload_. Implemented in reload.c (the
 * snapshots) and reload_crl.c (CRL ingest and readiness).
 *
 * Conventions: 0 on success, -1 with a message in |err| on failure, or a
 * named negative RELOAD_CRL_PUSH_* code where the caller must tell causes
 * apart; reload_acquire returns NULL when nothing is installed. */
#ifndef CERTVAL_RELOAD_H
#define CERTVAL_RELOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

struct certval_config;
struct validator;
struct crl_cache;

struct reload_anchor_info {
    char subject[256];
    int64_t not_after;
};

struct reload_snapshot {
    _Atomic long refs;
    uint64_t version;
    struct certval_config *cfg;  /* owned */
    struct validator *validator; /* owned */
    struct reload_anchor_info *anchors; /* for the anchor-expiry metric */
    size_t n_anchors;
    uint8_t inputs[32];          /* SHA-256 of the configuration file and the certificates it names */
};

/* reload_install publishes |cfg| (ownership taken, also on failure) as
 * the first or next snapshot, building its validator and loading its CRL
 * files into |crls|. Returns 0, or -1 with the reason in |err|; on failure
 * the previous snapshot, if any, stays current. */
int reload_install(struct certval_config *cfg, struct crl_cache *crls, char *err, size_t errlen);

/* reload_file loads |path| and installs it. */
int reload_file(const char *path, struct crl_cache *crls, char *err, size_t errlen);

/* reload_acquire returns a new reference to the current snapshot (NULL
 * when none is installed). The caller must be a registered RCU reader. */
struct reload_snapshot *reload_acquire(void);

/* reload_release drops a reference; NULL is accepted. */
void reload_release(struct reload_snapshot *s);

/* reload_shutdown unpublishes and releases the current snapshot. */
void reload_shutdown(void);

/* reload_crl_push verifies |der| (DER or PEM) against the CAs of the current
 * configuration and makes it its issuer's current CRL; with a state folder
 * it is also written to STATE/crls/ (atomically) so a restart serves it at
 * once. |label| goes into the source of the CRL ("admin"). Fills
 * |issuer|/|number|/|entries| on success. Returns 0, or -1 with |err|. */
int reload_crl_push(struct crl_cache *crls, const uint8_t *der, size_t len, const char *label,
                    char *issuer, size_t issuer_cap, uint64_t *number, uint64_t *entries, char *err,
                    size_t errlen);

#define RELOAD_CRL_PUSH_EXPIRED (-2)   /* reload_crl_push_admin: past nextUpdate, not forced */
#define RELOAD_CRL_PUSH_NOT_FOUND (-3) /* reload_crl_withdraw: no pushed CRL for that issuer */

/* reload_crl_push_admin is reload_crl_push for the admin API: a CRL past its nextUpdate
 * is refused (RELOAD_CRL_PUSH_EXPIRED) as the fetcher refuses it, unless |force|;
 * with |force| an older CRL (lower cRLNumber) is accepted too, and kept as
 * STATE/crls/forced-*.crl, which loads over newer files at reload and
 * restart until a newer CRL is accepted or it is withdrawn. Admin thread. */
int reload_crl_push_admin(struct crl_cache *crls, const uint8_t *crl, size_t len, bool force,
                          char *issuer, size_t issuer_cap, uint64_t *number, uint64_t *entries,
                          char *err, size_t errlen);

/* reload_crl_check verifies |der| (DER or PEM) against the CAs of the current
 * configuration as reload_crl_push does, in a cache aside: nothing is made
 * current or stored. Fills |issuer|/|number|/|entries|. 0, or -1 with
 * |err|. The fleet writer's check before a CRL goes to etcd. Any
 * registered RCU reader thread. */
int reload_crl_check(struct crl_cache *crls, const uint8_t *der, size_t len, char *issuer,
                     size_t issuer_cap, uint64_t *number, uint64_t *entries, char *err,
                     size_t errlen);

/* reload_crl_withdraw takes the CRL pushed for |issuer| (one-line name, as status
 * reports it) out of force: its state files are removed and the CRLs of
 * that issuer from the configured files, folder and fetches are read aside
 * and made current in one publication (|out_restored| of them, 0 = the
 * issuer then has no CRL). RELOAD_CRL_PUSH_NOT_FOUND when no pushed CRL is in
 * force for it; -1 with |err| on failure. Admin thread. */
int reload_crl_withdraw(struct crl_cache *crls, const char *issuer, size_t *out_restored, char *err,
                        size_t errlen);

/* reload_crl_last_error copies the last refusal of a CRL (load or push) into |buf|
 * ("" when none). Thread-safe. */
void reload_crl_last_error(char *buf, size_t cap);

/* reload_crl_refused_total counts CRLs refused since start (load or push). */
uint64_t reload_crl_refused_total(void);

/* ---- CRL arrival hook and start-up readiness (crl_fetch, issue 4) ---- */

/* Called after every reload_install (|config_changed| true; the CRL
 * files were loaded again) and after every accepted reload_crl_push (false: admin
 * push or HTTP fetch), on the thread that did it, with no lock of this
 * module held. That thread is a registered RCU reader. */
typedef void (*reload_crl_change_fn)(bool config_changed, void *arg);

/* reload_set_crl_change_hook sets the hook (NULL: none). Not thread-safe: call
 * before the first reload_install. */
void reload_set_crl_change_hook(reload_crl_change_fn fn, void *arg);

/* reload_revocation_ready returns true when every profile of |s| whose revocation
 * is not "none" has, for each of its issuer certificates, a CRL in |crls|
 * (any state but CRL_STATUS_NO_CRL: a stale CRL counts, the profile's
 * on_stale policy decides about it). Otherwise false, naming the first
 * missing issuer in |why|. Only the profiles' issuers are checked (for
 * revocation "all", the CRLs of the CAs above them are not). The caller
 * must be a registered RCU reader. */
bool reload_revocation_ready(const struct reload_snapshot *s, const struct crl_cache *crls,
                             char *why, size_t why_cap);

#endif
