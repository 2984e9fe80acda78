/* Private to server/reload.c and server/reload_crl.c, the two halves of
 * reload.h (configuration snapshots; CRL ingest).
 *
 * Conventions: as reload.h; loads return how many files they loaded and
 * never fail (a file that fails is logged and skipped). */
#ifndef CERTVAL_RELOAD_INTERNAL_H
#define CERTVAL_RELOAD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>

#include "reload.h"

/* reload_add_certs_from appends to |dst| the certificates of the |n| files
 * of |files|; a file that does not load is left out (the validator, built
 * from the same files, reports it). */
void reload_add_certs_from(STACK_OF(X509) * dst, char **files, size_t n);

/* reload_crls_load_config loads the CRL files and directory named by |cfg| into
 * |crls|, verifying each against the configured anchors and intermediates.
 * Files that fail are logged and skipped (never an error). Returns the
 * number loaded. The caller holds reload_lock (reload.c): the loads note
 * what they read in reload_crl.c's seen[] table. */
size_t reload_crls_load_config(struct crl_cache *crls, const struct certval_config *cfg);

/* reload_lock_hold and reload_lock_drop take and release reload_lock, the
 * lock configuration installs hold, for reload_crl.c's withdraw, which
 * reads the CRL files (and the seen[] table) like an install does. Not
 * reentrant; never held while calling the CRL change hook. */
void reload_lock_hold(void);
void reload_lock_drop(void);

/* reload_notify_crl_change calls the hook set by reload_set_crl_change_hook, if
 * any, on the calling thread, with no lock of this module held. */
void reload_notify_crl_change(bool config_changed);

#endif
