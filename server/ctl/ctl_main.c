/* certvalctl: the operator's and the tests' command line, sharing the
 * validation core with certvald. See docs/operations.md. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"verify", ctl_verify_main, "validate a certificate like `openssl verify`, with certval's core"},
    {"check-trust", ctl_check_trust_main, "does a chain validate against a trust bundle?"},
    {"inspect", ctl_inspect_main, "which profile and verdict a certificate gets under a config"},
    {"demo-pki", ctl_demo_pki_main, "generate the demo PKI and its configuration"},
    {"validate", ctl_validate_main, "ask a running certvald for verdicts (gRPC)"},
    {"health", ctl_health_main, "query a running certvald's gRPC health service"},
    {"admin", ctl_admin_main, "operator calls: reload, push-crl, status, deny entries"},
    {"crl-sign", ctl_crl_sign_main, "issue a CRL from a test or demo CA"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: certvalctl COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`certvalctl COMMAND --help` describes each. Exit status: 0 valid/success, "
               "1 invalid, 2 usage or I/O error.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "certvalctl: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
