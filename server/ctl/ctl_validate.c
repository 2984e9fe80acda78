/* certvalctl validate / health: a small synchronous gRPC client of
 * certvald, used in the demo's printed commands and by operators. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <openssl/mem.h>
#include <openssl/x509.h>

#include "certval/v1/certval.pb-c.h"
#include "ctl.h"
#include "ctl_rpc.h"
#include "grpc/health/v1/health.pb-c.h"
#include "validator.h"
#include "verdict.h"

#define MAX_FILES 1024

/* Reads a chain file (PEM with several certificates, or one DER) into a
 * ChainRequest's certificate list. */
static int load_chain(Certval__V1__ChainRequest *cr, const char *path)
{
    STACK_OF(X509) *certs = NULL;
    char err[512];
    size_t n;

    if (cv_load_certs(&certs, path, err, sizeof(err)) < 0) {
        fprintf(stderr, "certvalctl: %s\n", err);
        return -1;
    }
    n = sk_X509_num(certs);
    cr->certificates = calloc(n, sizeof(*cr->certificates));
    if (cr->certificates == NULL)
        goto err;
    for (size_t i = 0; i < n; i++) {
        uint8_t *der = NULL;
        int len = i2d_X509(sk_X509_value(certs, i), &der);

        if (len <= 0)
            goto err;
        cr->certificates[i].data = der;
        cr->certificates[i].len = (size_t)len;
        cr->n_certificates++;
    }
    sk_X509_pop_free(certs, X509_free);
    return 0;
err:
    sk_X509_pop_free(certs, X509_free);
    return -1;
}

/* The largest file --raw sends: over the server's default per-certificate
 * limit, so the server's refusal can be seen too. */
#define RAW_MAX_BYTES (1u << 20)

/* Reads |path| as it is into a one-certificate chain: for bytes that are
 * not a certificate (the demo's malformed.der), which the server must
 * refuse itself. */
static int load_raw(Certval__V1__ChainRequest *cr, const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t n = 0;

    if (f == NULL) {
        fprintf(stderr, "certvalctl: cannot open %s\n", path);
        return -1;
    }
    buf = malloc(RAW_MAX_BYTES + 1);
    cr->certificates = calloc(1, sizeof(*cr->certificates));
    if (buf != NULL)
        n = fread(buf, 1, RAW_MAX_BYTES + 1, f);
    if (buf == NULL || cr->certificates == NULL || ferror(f) || n > RAW_MAX_BYTES) {
        fprintf(stderr, "certvalctl: %s: unreadable or larger than %u bytes\n", path,
                RAW_MAX_BYTES);
        fclose(f);
        free(buf);
        return -1;
    }
    fclose(f);
    /* OPENSSL_malloc: freed like the DER of load_chain. */
    cr->certificates[0].data = OPENSSL_malloc(n > 0 ? n : 1);
    if (cr->certificates[0].data == NULL) {
        free(buf);
        return -1;
    }
    memcpy(cr->certificates[0].data, buf, n);
    cr->certificates[0].len = n;
    cr->n_certificates = 1;
    free(buf);
    return 0;
}

static void validate_usage(FILE *f)
{
    fprintf(f, "usage: certvalctl validate --server HOST:PORT --tenant T [--device D] [--user U]\n"
               "                           [--timeout SECONDS] [--raw] CHAIN_FILE...\n"
               "Each CHAIN_FILE (PEM leaf first then intermediates, or one DER certificate)\n"
               "is one chain of a single batch. With --raw each file is sent as it is, as the\n"
               "only certificate of its chain, without parsing it first (to see how the\n"
               "server answers bytes that are not a certificate, such as the demo's\n"
               "malformed.der). Prints one verdict per chain; exit 0 when no chain is denied,\n"
               "1 when any is, 2 on usage, I/O or RPC errors.\n");
}

static int print_verdicts(const struct ctl_rpc_result *res, char **files, size_t n_files)
{
    Certval__V1__ValidateResponse *resp =
        certval__v1__validate_response__unpack(NULL, res->body_len, res->body);
    int rc = 0;

    if (resp == NULL) {
        fprintf(stderr, "certvalctl: response does not parse\n");
        return 2;
    }
    for (size_t i = 0; i < resp->n_verdicts; i++) {
        const Certval__V1__Verdict *v = resp->verdicts[i];

        printf("%s: %s %s kind=%s profile=%s serial=%s detail=%s\n",
               v->id < n_files ? files[v->id] : "?",
               verdict_decision_name((enum verdict_decision)v->decision),
               verdict_reason_name((enum verdict_reason)v->reason),
               cert_kind_name((enum cert_kind)v->kind), v->profile[0] ? v->profile : "-",
               v->serial_hex[0] ? v->serial_hex : "-", v->detail[0] ? v->detail : "-");
        if (v->decision == CERTVAL__V1__DECISION__DECISION_DENY)
            rc = 1;
    }
    certval__v1__validate_response__free_unpacked(resp, NULL);
    return rc;
}

int ctl_validate_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"server", required_argument, NULL, 's'},  {"tenant", required_argument, NULL, 't'},
        {"device", required_argument, NULL, 'd'},  {"user", required_argument, NULL, 'u'},
        {"timeout", required_argument, NULL, 'T'}, {"help", no_argument, NULL, 'h'},
        {"raw", no_argument, NULL, 'r'},           {NULL, 0, NULL, 0},
    };
    const char *server = NULL, *tenant = "", *device = "", *user = "";
    Certval__V1__ValidateRequest req = CERTVAL__V1__VALIDATE_REQUEST__INIT;
    Certval__V1__ChainRequest *chains = NULL, **ptrs = NULL;
    struct ctl_rpc_result res;
    uint8_t *buf = NULL;
    long timeout = 10;
    size_t n, len;
    int c, rc = 2, raw = 0;

    optind = 1;
    while ((c = getopt_long(argc, argv, "s:t:d:u:T:rh", longopts, NULL)) != -1) {
        char *end;

        switch (c) {
        case 's': server = optarg; break;
        case 't': tenant = optarg; break;
        case 'd': device = optarg; break;
        case 'u': user = optarg; break;
        case 'T':
            timeout = strtol(optarg, &end, 10);
            if (*end != '\0' || timeout < 1 || timeout > 3600) {
                fprintf(stderr, "certvalctl: --timeout takes 1..3600 seconds\n");
                return 2;
            }
            break;
        case 'r':
            raw = 1;
            break;
        case 'h': validate_usage(stdout); return 0;
        default: validate_usage(stderr); return 2;
        }
    }
    n = (size_t)(argc - optind);
    if (server == NULL || n == 0 || n > MAX_FILES) {
        validate_usage(stderr);
        return 2;
    }
    chains = calloc(n, sizeof(*chains));
    ptrs = calloc(n, sizeof(*ptrs));
    if (chains == NULL || ptrs == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        Certval__V1__ChainRequest init = CERTVAL__V1__CHAIN_REQUEST__INIT;

        chains[i] = init;
        chains[i].id = i;
        chains[i].tenant_id = (char *)tenant;
        chains[i].device_id = (char *)device;
        chains[i].user_id = (char *)user;
        ptrs[i] = &chains[i];
        if ((raw ? load_raw : load_chain)(&chains[i], argv[optind + (int)i]) < 0)
            goto out;
    }
    req.n_chains = n;
    req.chains = ptrs;
    len = certval__v1__validate_request__get_packed_size(&req);
    buf = malloc(len > 0 ? len : 1);
    if (buf == NULL)
        goto out;
    certval__v1__validate_request__pack(&req, buf);
    grpc_init();
    if (ctl_unary_call(server, "/certval.v1.Validator/Validate", NULL, buf, len, (int)timeout, &res) < 0) {
        fprintf(stderr, "certvalctl: call to %s failed\n", server);
    } else if (res.status != GRPC_STATUS_OK) {
        fprintf(stderr, "certvalctl: %s: gRPC status %d: %s\n", server, res.status, res.details);
    } else {
        rc = print_verdicts(&res, argv + optind, n);
    }
    free(res.body);
    grpc_shutdown_blocking();
out:
    for (size_t i = 0; chains != NULL && i < n; i++) {
        for (size_t j = 0; j < chains[i].n_certificates; j++)
            OPENSSL_free(chains[i].certificates[j].data);
        free(chains[i].certificates);
    }
    free(chains);
    free(ptrs);
    free(buf);
    return rc;
}

int ctl_health_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"server", required_argument, NULL, 's'},
        {"service", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char usage[] =
        "usage: certvalctl health --server HOST:PORT [--service NAME]\n"
        "Asks grpc.health.v1.Health/Check; prints SERVING, NOT_SERVING, ...; exit 0 when\n"
        "SERVING, 1 otherwise, 2 on usage or RPC errors.\n";
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    Grpc__Health__V1__HealthCheckResponse *resp;
    const char *server = NULL;
    struct ctl_rpc_result res;
    uint8_t buf[512];
    size_t len;
    int c, rc = 2;

    optind = 1;
    req.service = (char *)"";
    while ((c = getopt_long(argc, argv, "s:S:h", longopts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        }
        if (c == 's')
            server = optarg;
        else if (c == 'S' && strlen(optarg) < 256)
            req.service = optarg;
        else
            server = NULL;
    }
    if (server == NULL || optind != argc) {
        fputs(usage, stderr);
        return 2;
    }
    len = grpc__health__v1__health_check_request__pack(&req, buf);
    grpc_init();
    if (ctl_unary_call(server, "/grpc.health.v1.Health/Check", NULL, buf, len, 5, &res) < 0 ||
        res.status != GRPC_STATUS_OK) {
        fprintf(stderr, "certvalctl: health check failed: status %d %s\n", res.status,
                res.details);
    } else if ((resp = grpc__health__v1__health_check_response__unpack(NULL, res.body_len,
                                                                        res.body)) != NULL) {
        static const char *const names[] = {"UNKNOWN", "SERVING", "NOT_SERVING",
                                            "SERVICE_UNKNOWN"};

        printf("%s\n", (unsigned)resp->status < 4 ? names[resp->status] : "UNKNOWN");
        rc = resp->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                 ? 0
                 : 1;
        grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
    }
    free(res.body);
    grpc_shutdown_blocking();
    return rc;
}
