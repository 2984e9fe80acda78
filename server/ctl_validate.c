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
#include "grpc/health/v1/health.pb-c.h"
#include "validator.h"
#include "verdict.h"

#define MAX_FILES 1024

struct rpc_result {
    grpc_status_code status;
    char details[512];
    uint8_t *body; /* malloc'd response message, or NULL */
    size_t body_len;
};

/* One unary call; returns 0 when the call completed (whatever its status),
 * -1 when it could not be made. */
static int unary_call(const char *target, const char *method, const uint8_t *req, size_t req_len,
                      int timeout_s, struct rpc_result *res)
{
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(target, creds, NULL);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_slice method_slice = grpc_slice_from_static_string(method);
    grpc_slice req_slice = grpc_slice_from_copied_buffer((const char *)req, req_len);
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&req_slice, 1);
    grpc_byte_buffer *recv = NULL;
    grpc_metadata_array init_md, trail_md;
    grpc_slice details = grpc_empty_slice();
    grpc_op ops[6];
    grpc_call *call;
    int rc = -1, tag;

    memset(res, 0, sizeof(*res));
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trail_md);
    call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method_slice, NULL,
                                    gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                                                 gpr_time_from_seconds(timeout_s, GPR_TIMESPAN)),
                                    NULL);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
    ops[5].data.recv_status_on_client.status = &res->status;
    ops[5].data.recv_status_on_client.status_details = &details;
    if (grpc_call_start_batch(call, ops, 6, &tag, NULL) == GRPC_CALL_OK) {
        grpc_event ev = grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME),
                                                    NULL);
        rc = ev.type == GRPC_OP_COMPLETE ? 0 : -1;
    }
    if (rc == 0) {
        char *d = grpc_slice_to_c_string(details);

        snprintf(res->details, sizeof(res->details), "%s", d);
        gpr_free(d);
    }
    if (rc == 0 && recv != NULL) {
        grpc_byte_buffer_reader reader;

        if (grpc_byte_buffer_reader_init(&reader, recv)) {
            grpc_slice s = grpc_byte_buffer_reader_readall(&reader);

            res->body_len = GRPC_SLICE_LENGTH(s);
            res->body = malloc(res->body_len > 0 ? res->body_len : 1);
            if (res->body != NULL)
                memcpy(res->body, GRPC_SLICE_START_PTR(s), res->body_len);
            grpc_slice_unref(s);
            grpc_byte_buffer_reader_destroy(&reader);
        }
    }
    if (recv != NULL)
        grpc_byte_buffer_destroy(recv);
    grpc_byte_buffer_destroy(send);
    grpc_slice_unref(req_slice);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trail_md);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    grpc_channel_destroy(ch);
    grpc_channel_credentials_release(creds);
    return rc;
}

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

static void validate_usage(FILE *f)
{
    fprintf(f, "usage: certvalctl validate --server HOST:PORT --tenant T [--device D] [--user U]\n"
               "                           [--timeout SECONDS] CHAIN_FILE...\n"
               "Each CHAIN_FILE (PEM leaf first then intermediates, or one DER certificate)\n"
               "is one chain of a single batch. Prints one verdict per chain; exit 0 when no\n"
               "chain is denied, 1 when any is, 2 on usage, I/O or RPC errors.\n");
}

static int print_verdicts(const struct rpc_result *res, char **files, size_t n_files)
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
        {"server", required_argument, NULL, 's'}, {"tenant", required_argument, NULL, 't'},
        {"device", required_argument, NULL, 'd'}, {"user", required_argument, NULL, 'u'},
        {"timeout", required_argument, NULL, 'T'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *server = NULL, *tenant = "", *device = "", *user = "";
    Certval__V1__ValidateRequest req = CERTVAL__V1__VALIDATE_REQUEST__INIT;
    Certval__V1__ChainRequest *chains = NULL, **ptrs = NULL;
    struct rpc_result res;
    uint8_t *buf = NULL;
    long timeout = 10;
    size_t n, len;
    int c, rc = 2;

    optind = 1;
    while ((c = getopt_long(argc, argv, "s:t:d:u:T:h", longopts, NULL)) != -1) {
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
        if (load_chain(&chains[i], argv[optind + (int)i]) < 0)
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
    if (unary_call(server, "/certval.v1.Validator/Validate", buf, len, (int)timeout, &res) < 0) {
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
        {NULL, 0, NULL, 0},
    };
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    Grpc__Health__V1__HealthCheckResponse *resp;
    const char *server = NULL;
    struct rpc_result res;
    uint8_t buf[512];
    size_t len;
    int c, rc = 2;

    optind = 1;
    req.service = (char *)"";
    while ((c = getopt_long(argc, argv, "s:S:", longopts, NULL)) != -1) {
        if (c == 's')
            server = optarg;
        else if (c == 'S' && strlen(optarg) < 256)
            req.service = optarg;
        else
            server = NULL;
    }
    if (server == NULL || optind != argc) {
        fprintf(stderr, "usage: certvalctl health --server HOST:PORT [--service NAME]\n");
        return 2;
    }
    len = grpc__health__v1__health_check_request__pack(&req, buf);
    grpc_init();
    if (unary_call(server, "/grpc.health.v1.Health/Check", buf, len, 5, &res) < 0 ||
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
