/* certvalctl subcommands. Each takes the arguments after the subcommand
 * name (argv[0] is the subcommand) and returns the process exit code:
 * 0 valid / success, 1 invalid, 2 usage or I/O error.
 *
 * Conventions: the process exit codes above; nothing else returns. */
#ifndef CERTVAL_CTL_H
#define CERTVAL_CTL_H

int ctl_verify_main(int argc, char **argv);      /* server/ctl_verify.c */
int ctl_check_trust_main(int argc, char **argv); /* server/ctl_verify.c */
int ctl_inspect_main(int argc, char **argv);     /* server/ctl_verify.c */
int ctl_demo_pki_main(int argc, char **argv);    /* server/ctl_demo.c */
int ctl_validate_main(int argc, char **argv);    /* server/ctl_validate.c: gRPC client */
int ctl_health_main(int argc, char **argv);      /* server/ctl_validate.c: gRPC health check */
int ctl_admin_main(int argc, char **argv);       /* server/ctl_admin.c: certval.v1.Admin client */
int ctl_crl_sign_main(int argc, char **argv);    /* server/ctl_admin.c: issue a test CRL */

#endif
