/* certvalctl admin fleet-status (docs/fleet.md, docs/operations.md).
 *
 * Conventions: the process exit code (0, 1 or 2, below). */
#ifndef CERTVAL_CTL_FLEET_H
#define CERTVAL_CTL_FLEET_H

/* ctl_fleet_status asks every pod named by |servers| for its fleet state
 * and prints one line per pod, then whether they agree. |servers| is a
 * comma-separated list of HOST:PORT; a HOST with several addresses (a
 * headless Service's DNS name) counts as one pod per address. |token_file|
 * holds the admin bearer token. Exit code: 0 every pod answered, is
 * connected and has applied the same revision; 1 they disagree or one is
 * cut off; 2 a pod could not be asked. grpc_init is done here. */
int ctl_fleet_status(const char *servers, const char *token_file);

#endif
