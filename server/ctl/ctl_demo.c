/* certvalctl demo-pki: writes the demo PKI and its certval.yaml
 * (validator/issue/demo_pki.c, docs/demo.md). */
#include "ctl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pki_gen.h"

struct ctl_demo_args {
    const char *dir;
    const char *listen;
    int64_t at;
};

static void ctl_demo_usage(FILE *fp)
{
    fprintf(fp, "usage: certvalctl demo-pki --dir DIR [--listen HOST:PORT] [--at UNIX_TIME]\n"
                "  writes the demo PKI, CRLs, certval.yaml and README.txt into DIR\n"
                "  --listen  address for certval.yaml (default 127.0.0.1:50051)\n"
                "  --at      validation time the certificates are made for (default: now)\n");
}

/* ctl_demo_parse_time reads a non-negative decimal Unix time; -1 on junk. */
static int ctl_demo_parse_time(int64_t *out, const char *s)
{
    char *end = NULL;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0)
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* ctl_demo_parse fills |a|; returns 0, 1 for --help, or -1 with a message. */
static int ctl_demo_parse(struct ctl_demo_args *a, int argc, char **argv)
{
    a->dir = NULL;
    a->listen = "127.0.0.1:50051";
    a->at = (int64_t)time(NULL);
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];

        if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0)
            return 1;
        if (i + 1 >= argc) {
            fprintf(stderr, "demo-pki: %s needs a value\n", opt);
            return -1;
        }
        if (strcmp(opt, "--dir") == 0) {
            a->dir = argv[++i];
        } else if (strcmp(opt, "--listen") == 0) {
            a->listen = argv[++i];
        } else if (strcmp(opt, "--at") == 0) {
            if (ctl_demo_parse_time(&a->at, argv[++i]) != 0) {
                fprintf(stderr, "demo-pki: --at: not a Unix time: %s\n", argv[i]);
                return -1;
            }
        } else {
            fprintf(stderr, "demo-pki: unknown option %s\n", opt);
            return -1;
        }
    }
    if (a->dir == NULL) {
        fprintf(stderr, "demo-pki: --dir is required\n");
        return -1;
    }
    return 0;
}

/* ctl_demo_print_readme copies DIR/README.txt (the list of files and their
 * expected verdicts) to stdout, so the output says exactly what was written. */
static void ctl_demo_print_readme(const char *dir)
{
    char path[4096], buf[4096];
    size_t n;
    FILE *fp;

    if (snprintf(path, sizeof(path), "%s/README.txt", dir) >= (int)sizeof(path))
        return;
    fp = fopen(path, "r");
    if (fp == NULL)
        return;
    while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
        fwrite(buf, 1, n, stdout);
    fclose(fp);
}

int ctl_demo_pki_main(int argc, char **argv)
{
    struct ctl_demo_args a;
    char err[512];
    int rc = ctl_demo_parse(&a, argc, argv);

    if (rc != 0) {
        ctl_demo_usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    if (demo_pki_generate(a.dir, a.at, a.listen, err, sizeof(err)) != 0) {
        fprintf(stderr, "demo-pki: %s\n", err);
        return 2;
    }
    printf("demo PKI written to %s (validation time %" PRId64 ")\n"
           "configuration: %s/certval.yaml\n\n",
           a.dir, a.at, a.dir);
    ctl_demo_print_readme(a.dir);
    return 0;
}
