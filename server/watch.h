/* The main thread's event loop on its own io_uring: signals (through a
 * signalfd) and changes to the configured files (through inotify), both read
 * with io_uring reads; a burst of file events is debounced with an io_uring
 * timeout and then triggers one reload.
 *
 * Watched: the folders holding the configuration file, the anchor,
 * intermediate, profile-issuer and CRL files, and the CRL folder. Folders,
 * not files, because Kubernetes updates ConfigMap and Secret volumes by
 * swapping a symlink, which a watch on the file itself never sees.
 *
 * Conventions: main_loop returns 0 (asked to stop) or -1 (cannot go on). */
#ifndef CERTVAL_WATCH_H
#define CERTVAL_WATCH_H

#include <signal.h>

struct crl_cache;

/* main_loop runs until SIGTERM or SIGINT (returns 0) or an unrecoverable
 * error (returns -1). SIGHUP and file changes reload |cfg_path| into the
 * current snapshot; a broken file is refused and logged. |set| holds the
 * signals, already blocked in every thread. */
int main_loop(const char *cfg_path, struct crl_cache *crls, const sigset_t *set);

#endif
