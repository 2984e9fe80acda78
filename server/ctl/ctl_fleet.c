/* certvalctl admin fleet-status: one GetRevocationStatus per pod. */
#include "ctl_fleet.h"

#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include "certval/v1/admin.pb-c.h"
#include "ctl_rpc.h"

#define MAX_PODS 256

struct pod {
    char target[300]; /* for gRPC: ipv4:A:P, ipv6:[A]:P */
    bool answered, enabled, connected, local_copy;
    int64_t applied, store;
    uint64_t deny, crls;
    char detail[160];
};

static int read_token(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL)
        return -1;
    if (fgets(out, (int)cap, f) == NULL)
        out[0] = '\0';
    fclose(f);
    n = strcspn(out, "\r\n");
    out[n] = '\0';
    return n >= 16 ? 0 : -1;
}

/* add_host resolves one HOST:PORT into pods (every address of the name). */
static int add_host(struct pod *pods, size_t *n, const char *item)
{
    char host[256], port[16], *colon;
    struct addrinfo hints, *res = NULL;
    const char *h;

    snprintf(host, sizeof(host), "%s", item);
    colon = strrchr(host, ':');
    if (colon == NULL || colon[1] == '\0') {
        fprintf(stderr, "certvalctl: %s: write HOST:PORT\n", item);
        return -1;
    }
    *colon = '\0';
    snprintf(port, sizeof(port), "%s", colon + 1);
    h = host;
    if (host[0] == '[' && colon[-1] == ']') {
        colon[-1] = '\0';
        h = host + 1;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(h, port, &hints, &res) != 0) {
        fprintf(stderr, "certvalctl: cannot resolve %s\n", h);
        return -1;
    }
    for (struct addrinfo *a = res; a != NULL && *n < MAX_PODS; a = a->ai_next) {
        char addr[INET6_ADDRSTRLEN];
        struct pod *p = &pods[*n];
        bool dup = false;

        if (a->ai_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)a->ai_addr)->sin_addr, addr, sizeof(addr));
        else if (a->ai_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)a->ai_addr)->sin6_addr, addr,
                      sizeof(addr));
        else
            continue;
        memset(p, 0, sizeof(*p));
        snprintf(p->target, sizeof(p->target),
                 a->ai_family == AF_INET ? "ipv4:%s:%s" : "ipv6:[%s]:%s", addr, port);
        for (size_t i = 0; i < *n; i++)
            dup = dup || strcmp(pods[i].target, p->target) == 0;
        if (!dup)
            (*n)++;
    }
    freeaddrinfo(res);
    return 0;
}

static void ask(struct pod *p, const char *token)
{
    Certval__V1__GetRevocationStatusRequest req = CERTVAL__V1__GET_REVOCATION_STATUS_REQUEST__INIT;
    Certval__V1__GetRevocationStatusResponse *resp;
    struct ctl_rpc_result res;
    uint8_t buf[16];
    size_t len = certval__v1__get_revocation_status_request__pack(&req, buf);

    p->answered = false;
    if (ctl_unary_call(p->target, "/certval.v1.Admin/GetRevocationStatus", token, buf, len, 5,
                       &res) < 0 ||
        res.status != GRPC_STATUS_OK) {
        snprintf(p->detail, sizeof(p->detail), "no answer: %.120s", res.details);
        free(res.body);
        return;
    }
    resp = certval__v1__get_revocation_status_response__unpack(NULL, res.body_len, res.body);
    free(res.body);
    if (resp == NULL) {
        snprintf(p->detail, sizeof(p->detail), "unreadable answer");
        return;
    }
    p->answered = true;
    if (resp->fleet != NULL) {
        p->enabled = resp->fleet->enabled;
        p->connected = resp->fleet->connected;
        p->local_copy = resp->fleet->local_copy;
        p->applied = resp->fleet->applied_revision;
        p->store = resp->fleet->store_revision;
        p->deny = resp->fleet->deny_entries;
        p->crls = resp->fleet->crls;
        snprintf(p->detail, sizeof(p->detail), "%s",
                 resp->fleet->detail ? resp->fleet->detail : "");
    } else {
        snprintf(p->detail, sizeof(p->detail), "fleet is off on this pod");
    }
    certval__v1__get_revocation_status_response__free_unpacked(resp, NULL);
}

/* agree: every pod answered, follows etcd and applied one revision. */
static int verdict(const struct pod *pods, size_t n, int64_t *out_rev)
{
    int rc = 0;

    *out_rev = n > 0 ? pods[0].applied : 0;
    for (size_t i = 0; i < n; i++) {
        if (!pods[i].answered)
            return 2;
        if (!pods[i].enabled || !pods[i].connected || pods[i].applied != *out_rev)
            rc = 1;
    }
    return rc;
}

int ctl_fleet_status(const char *servers, const char *token_file)
{
    static struct pod pods[MAX_PODS];
    char token[4096], list[4096], *item, *save = NULL;
    size_t n = 0;
    int64_t rev;
    int rc;

    if (read_token(token_file, token, sizeof(token)) < 0) {
        fprintf(stderr, "certvalctl: cannot read a token from %s\n", token_file);
        return 2;
    }
    snprintf(list, sizeof(list), "%s", servers);
    for (item = strtok_r(list, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save))
        if (add_host(pods, &n, item) < 0)
            return 2;
    if (n == 0) {
        fprintf(stderr, "certvalctl: no pod to ask\n");
        return 2;
    }
    grpc_init();
    /* Pods confirm their revision about every second (watch progress): a
     * disagreement is asked again once before it is reported. */
    for (int attempt = 0; attempt < 2; attempt++) {
        for (size_t i = 0; i < n; i++)
            ask(&pods[i], token);
        rc = verdict(pods, n, &rev);
        if (rc == 0)
            break;
        if (attempt == 0)
            sleep(2);
    }
    printf("%-44s %-9s %10s %10s %8s %5s  %s\n", "pod", "state", "applied", "store", "entries",
           "crls", "detail");
    for (size_t i = 0; i < n; i++) {
        const struct pod *p = &pods[i];

        printf("%-44s %-9s %10lld %10lld %8llu %5llu  %s\n", p->target,
               !p->answered   ? "DOWN"
               : !p->enabled  ? "NO-FLEET"
               : p->connected ? (p->local_copy ? "LOCAL" : "FOLLOWING")
                              : (p->local_copy ? "LOCAL" : "CUT-OFF"),
               (long long)p->applied, (long long)p->store, (unsigned long long)p->deny,
               (unsigned long long)p->crls, p->detail);
    }
    if (rc == 0)
        printf("fleet agrees: %zu pod(s) at revision %lld\n", n, (long long)rev);
    else
        printf("fleet does NOT agree (%s)\n",
               rc == 2 ? "a pod did not answer" : "revisions differ or a pod is cut off");
    memset(token, 0, sizeof(token));
    return rc;
}
