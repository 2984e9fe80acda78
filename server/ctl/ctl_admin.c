/* certvalctl admin (the certval.v1.Admin client) and certvalctl crl-sign
 * (issue a CRL from a test or demo CA). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/grpc.h>
#include <openssl/bio.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "certval/v1/admin.pb-c.h"
#include "ctl.h"
#include "ctl_fleet.h" /* fleet (issue 11) */
#include "ctl_rpc.h"
#include "hex.h"
#include "pki_gen.h"
#include "validator.h"

#define MAX_FILE_BYTES (256u << 20)

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;

    *len = 0;
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && (unsigned long)n <= MAX_FILE_BYTES &&
        fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc(n > 0 ? (size_t)n : 1);
        if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

static int read_token(const char *path, char *out, size_t cap)
{
    size_t len;
    uint8_t *t = read_file(path, &len);
    size_t n = 0;

    if (t == NULL)
        return -1;
    while (n < len && n + 1 < cap && t[n] != '\n' && t[n] != '\r') {
        out[n] = (char)t[n];
        n++;
    }
    out[n] = '\0';
    OPENSSL_cleanse(t, len);
    free(t);
    return n > 0 ? 0 : -1;
}

/* ---- admin ---- */

struct admin_opts {
    const char *server, *token_file, *issuer_cert, *serial, *leaf, *leaf_sha256, *reason;
    long long expires;
    bool force;
};

static void admin_usage(FILE *f)
{
    fprintf(
        f, "usage: certvalctl admin --server HOST:PORT --token-file FILE COMMAND\n"
           "commands:\n"
           "  reload                      reload the configuration now\n"
           "  push-crl FILE [--force]     make a CRL current on every worker; --force\n"
           "                              takes one past its nextUpdate or older than\n"
           "                              the CRL in force\n"
           "  withdraw-crl ISSUER         take the CRL pushed for ISSUER (as status\n"
           "                              prints it) out of force: files, folder or\n"
           "                              fetches take over again\n"
           "  status                      revocation state per issuer\n"
           "  deny-add SELECTOR [--reason TEXT] [--expires UNIX_TIME]\n"
           "  deny-remove SELECTOR\n"
           "  deny-list\n"
           "  fleet-status                each pod's fleet revision (--server takes a\n"
           "                              list A:P,B:P or a headless Service NAME:PORT)\n"
           "SELECTOR: --issuer-cert CA_FILE --serial HEX | --leaf CERT_FILE | --leaf-sha256 HEX\n");
}

static int call_admin(const struct admin_opts *o, const char *method, const uint8_t *req,
                      size_t len, struct ctl_rpc_result *res)
{
    char token[4096];
    int rc;

    /* Set on entry: every caller frees res->body, whichever way this ends. */
    memset(res, 0, sizeof(*res));
    if (read_token(o->token_file, token, sizeof(token)) < 0) {
        fprintf(stderr, "certvalctl: cannot read a token from %s\n", o->token_file);
        return 2;
    }
    grpc_init();
    rc = ctl_unary_call(o->server, method, token, req, len, 60, res);
    OPENSSL_cleanse(token, sizeof(token));
    if (rc < 0) {
        fprintf(stderr, "certvalctl: call to %s failed\n", o->server);
        return 2;
    }
    if (res->status != GRPC_STATUS_OK) {
        fprintf(stderr, "certvalctl: %s: gRPC status %d: %s\n", method, res->status, res->details);
        return res->status == GRPC_STATUS_INVALID_ARGUMENT ||
                       res->status == GRPC_STATUS_FAILED_PRECONDITION
                   ? 1
                   : 2;
    }
    return 0;
}

/* Reads the first certificate of |path| as DER into |buf| (|cap| bytes). */
static int first_cert_der(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
    STACK_OF(X509) *certs = NULL;
    uint8_t *der = NULL;
    char err[512];
    int n;

    if (cv_load_certs(&certs, path, err, sizeof(err)) < 0) {
        fprintf(stderr, "certvalctl: %s\n", err);
        return -1;
    }
    n = i2d_X509(sk_X509_value(certs, 0), &der);
    sk_X509_pop_free(certs, X509_free);
    if (n <= 0 || (size_t)n > cap) {
        OPENSSL_free(der);
        fprintf(stderr, "certvalctl: %s: cannot encode its first certificate\n", path);
        return -1;
    }
    memcpy(buf, der, (size_t)n);
    OPENSSL_free(der);
    *len = (size_t)n;
    return 0;
}

/* Fills the entry's selector from the options; |der_buf| (64 KiB) and
 * |leaf_hash| hold what the entry points to. */
static int fill_selector(const struct admin_opts *o, Certval__V1__DenyEntry *e, uint8_t *der_buf,
                         uint8_t leaf_hash[32])
{
    size_t len;

    if (o->issuer_cert != NULL && o->serial != NULL) {
        if (first_cert_der(o->issuer_cert, der_buf, 65536, &len) < 0)
            return -1;
        e->issuer_certificate.data = der_buf;
        e->issuer_certificate.len = len;
        e->serial_hex = (char *)o->serial;
        return 0;
    }
    if (o->leaf != NULL) {
        if (first_cert_der(o->leaf, der_buf, 65536, &len) < 0)
            return -1;
        SHA256(der_buf, len, leaf_hash);
    } else if (o->leaf_sha256 != NULL) {
        size_t n;

        if (hex_decode(leaf_hash, 32, &n, o->leaf_sha256, strlen(o->leaf_sha256)) < 0 || n != 32) {
            fprintf(stderr, "certvalctl: --leaf-sha256 takes 64 hex digits\n");
            return -1;
        }
    } else {
        fprintf(stderr, "certvalctl: give --issuer-cert and --serial, --leaf or --leaf-sha256\n");
        return -1;
    }
    e->leaf_sha256.data = leaf_hash;
    e->leaf_sha256.len = 32;
    return 0;
}

static void print_entry(const Certval__V1__DenyEntry *e)
{
    if (e->leaf_sha256.len == 32) {
        printf("leaf-sha256 ");
        for (size_t i = 0; i < 32; i++)
            printf("%02x", e->leaf_sha256.data[i]);
    } else {
        printf("issuer-sha256 ");
        for (size_t i = 0; i < e->issuer_name_sha256.len; i++)
            printf("%02x", e->issuer_name_sha256.data[i]);
        printf(" serial %s", e->serial_hex);
    }
    printf(" created %lld expires %lld reason \"%s\"\n", (long long)e->created_unix,
           (long long)e->expires_unix, e->reason);
}

static int admin_deny(const struct admin_opts *o, const char *cmd)
{
    Certval__V1__DenyEntry e = CERTVAL__V1__DENY_ENTRY__INIT;
    struct ctl_rpc_result res;
    static uint8_t der_buf[65536];
    uint8_t leaf_hash[32], *buf;
    size_t len;
    int rc;

    memset(&res, 0, sizeof(res));
    if (fill_selector(o, &e, der_buf, leaf_hash) < 0)
        return 2;
    e.reason = (char *)(o->reason != NULL ? o->reason : "");
    e.expires_unix = o->expires;
    len = certval__v1__deny_entry__get_packed_size(&e);
    buf = malloc(len > 0 ? len : 1);
    if (buf == NULL)
        return 2;
    certval__v1__deny_entry__pack(&e, buf);
    rc = call_admin(o,
                    strcmp(cmd, "deny-add") == 0 ? "/certval.v1.Admin/AddDenyEntry"
                                                 : "/certval.v1.Admin/RemoveDenyEntry",
                    buf, len, &res);
    free(buf);
    if (rc == 0) {
        Certval__V1__DenyEntryResponse *r =
            certval__v1__deny_entry_response__unpack(NULL, res.body_len, res.body);

        printf("OK: %llu deny entries\n", r != NULL ? (unsigned long long)r->entries : 0ULL);
        if (r != NULL)
            certval__v1__deny_entry_response__free_unpacked(r, NULL);
    }
    free(res.body);
    return rc;
}

static int admin_simple(const struct admin_opts *o, const char *cmd, const char *arg)
{
    struct ctl_rpc_result res;
    uint8_t empty[1] = {0};
    uint8_t *req = empty;
    size_t len = 0;
    int rc;

    memset(&res, 0, sizeof(res));
    if (strcmp(cmd, "push-crl") == 0) {
        Certval__V1__PushCrlRequest pr = CERTVAL__V1__PUSH_CRL_REQUEST__INIT;
        size_t n;
        uint8_t *crl = arg != NULL ? read_file(arg, &n) : NULL;

        if (crl == NULL) {
            fprintf(stderr, "certvalctl: cannot read CRL file %s\n", arg ? arg : "(none)");
            return 2;
        }
        pr.crl.data = crl;
        pr.crl.len = n;
        pr.force = o->force;
        len = certval__v1__push_crl_request__get_packed_size(&pr);
        req = malloc(len);
        if (req == NULL) {
            free(crl);
            return 2;
        }
        certval__v1__push_crl_request__pack(&pr, req);
        free(crl);
        rc = call_admin(o, "/certval.v1.Admin/PushCrl", req, len, &res);
        free(req);
        if (rc == 0) {
            Certval__V1__PushCrlResponse *r =
                certval__v1__push_crl_response__unpack(NULL, res.body_len, res.body);
            if (r != NULL) {
                printf("OK: issuer %s, CRL number %llu, %llu entries\n", r->issuer,
                       (unsigned long long)r->crl_number, (unsigned long long)r->entries);
                certval__v1__push_crl_response__free_unpacked(r, NULL);
            }
        }
    } else if (strcmp(cmd, "withdraw-crl") == 0) {
        Certval__V1__WithdrawCrlRequest wr = CERTVAL__V1__WITHDRAW_CRL_REQUEST__INIT;

        wr.issuer = (char *)arg;
        len = certval__v1__withdraw_crl_request__get_packed_size(&wr);
        req = malloc(len > 0 ? len : 1);
        if (req == NULL)
            return 2;
        certval__v1__withdraw_crl_request__pack(&wr, req);
        rc = call_admin(o, "/certval.v1.Admin/WithdrawCrl", req, len, &res);
        free(req);
        req = empty;
        if (rc == 0) {
            Certval__V1__WithdrawCrlResponse *r =
                certval__v1__withdraw_crl_response__unpack(NULL, res.body_len, res.body);
            printf("OK: pushed CRL of %s withdrawn; %llu CRL(s) from files or fetches in force\n",
                   arg, r != NULL ? (unsigned long long)r->restored : 0ULL);
            if (r != NULL)
                certval__v1__withdraw_crl_response__free_unpacked(r, NULL);
        }
    } else if (strcmp(cmd, "reload") == 0) {
        rc = call_admin(o, "/certval.v1.Admin/Reload", req, len, &res);
        if (rc == 0) {
            Certval__V1__ReloadResponse *r =
                certval__v1__reload_response__unpack(NULL, res.body_len, res.body);
            printf("OK: configuration version %llu\n",
                   r != NULL ? (unsigned long long)r->config_version : 0ULL);
            if (r != NULL)
                certval__v1__reload_response__free_unpacked(r, NULL);
        }
    } else if (strcmp(cmd, "status") == 0) {
        rc = call_admin(o, "/certval.v1.Admin/GetRevocationStatus", req, len, &res);
        if (rc == 0) {
            Certval__V1__GetRevocationStatusResponse *r =
                certval__v1__get_revocation_status_response__unpack(NULL, res.body_len, res.body);
            for (size_t i = 0; r != NULL && i < r->n_issuers; i++) {
                const Certval__V1__IssuerRevocationStatus *s = r->issuers[i];

                printf("%s: crl_number=%llu entries=%llu age=%llds next_update=%lld%s source=%s\n",
                       s->issuer, (unsigned long long)s->crl_number,
                       (unsigned long long)s->entries, (long long)s->age_seconds,
                       (long long)s->next_update_unix, s->unusable ? " UNUSABLE" : "",
                       s->source);
            }
            if (r != NULL) {
                printf("deny entries: %llu\n", (unsigned long long)r->deny_entries);
                if (r->deny_list_durable)
                    printf("deny list: durable\n");
                else
                    printf("deny list: NOT durable: %s\n", r->deny_list_store_error);
                if (r->last_error[0] != '\0')
                    printf("last error: %s\n", r->last_error);
                certval__v1__get_revocation_status_response__free_unpacked(r, NULL);
            }
        }
    } else if (strcmp(cmd, "deny-list") == 0) {
        rc = call_admin(o, "/certval.v1.Admin/ListDenyEntries", req, len, &res);
        if (rc == 0) {
            Certval__V1__ListDenyEntriesResponse *r =
                certval__v1__list_deny_entries_response__unpack(NULL, res.body_len, res.body);
            for (size_t i = 0; r != NULL && i < r->n_entries; i++)
                print_entry(r->entries[i]);
            if (r != NULL)
                certval__v1__list_deny_entries_response__free_unpacked(r, NULL);
        }
    } else {
        admin_usage(stderr);
        return 2;
    }
    free(res.body);
    return rc;
}

int ctl_admin_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"server", required_argument, NULL, 's'},
        {"token-file", required_argument, NULL, 't'},
        {"issuer-cert", required_argument, NULL, 'i'},
        {"serial", required_argument, NULL, 'S'},
        {"leaf", required_argument, NULL, 'l'},
        {"leaf-sha256", required_argument, NULL, 'L'},
        {"reason", required_argument, NULL, 'r'},
        {"expires", required_argument, NULL, 'e'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct admin_opts o;
    const char *cmd;
    char *end;
    int c;

    memset(&o, 0, sizeof(o));
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:t:i:S:l:L:r:e:fh", longopts, NULL)) != -1) {
        switch (c) {
        case 's': o.server = optarg; break;
        case 't': o.token_file = optarg; break;
        case 'i': o.issuer_cert = optarg; break;
        case 'S': o.serial = optarg; break;
        case 'l': o.leaf = optarg; break;
        case 'L': o.leaf_sha256 = optarg; break;
        case 'r': o.reason = optarg; break;
        case 'f':
            o.force = true;
            break;
        case 'e':
            o.expires = strtoll(optarg, &end, 10);
            if (*end != '\0' || o.expires < 0) {
                fprintf(stderr, "certvalctl: --expires takes Unix seconds\n");
                return 2;
            }
            break;
        case 'h': admin_usage(stdout); return 0;
        default: admin_usage(stderr); return 2;
        }
    }
    if (o.server == NULL || o.token_file == NULL || optind >= argc) {
        admin_usage(stderr);
        return 2;
    }
    cmd = argv[optind];
    if (strcmp(cmd, "fleet-status") == 0) /* fleet (issue 11) */
        return ctl_fleet_status(o.server, o.token_file);
    if (strcmp(cmd, "deny-add") == 0 || strcmp(cmd, "deny-remove") == 0)
        return optind + 1 == argc ? admin_deny(&o, cmd) : (admin_usage(stderr), 2);
    if ((strcmp(cmd, "push-crl") == 0 || strcmp(cmd, "withdraw-crl") == 0) && optind + 2 != argc) {
        admin_usage(stderr);
        return 2;
    }
    return admin_simple(&o, cmd, optind + 1 < argc ? argv[optind + 1] : NULL);
}

/* ---- crl-sign ---- */

static void crl_sign_usage(FILE *f)
{
    fprintf(f, "usage: certvalctl crl-sign --ca CERT --key KEY --number N --out FILE\n"
               "                           [--revoke SERIAL_HEX]... [--at UNIX_TIME]\n"
               "                           [--next-update-seconds S]\n"
               "Issues a DER CRL from a test or demo CA (serials of up to 16 hex digits).\n");
}

int ctl_crl_sign_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"ca", required_argument, NULL, 'c'},     {"key", required_argument, NULL, 'k'},
        {"number", required_argument, NULL, 'n'}, {"out", required_argument, NULL, 'o'},
        {"revoke", required_argument, NULL, 'r'}, {"at", required_argument, NULL, 'a'},
        {"next-update-seconds", required_argument, NULL, 'N'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *ca = NULL, *keyf = NULL, *out = NULL;
    uint64_t serials[1024], number = 0;
    size_t n_serials = 0;
    long long at = (long long)time(NULL), next = 7 * 86400;
    STACK_OF(X509) *certs = NULL;
    EVP_PKEY *key = NULL;
    X509_CRL *crl = NULL;
    BIO *bio = NULL;
    char err[512], *end;
    int c, rc = 2;

    optind = 1;
    while ((c = getopt_long(argc, argv, "c:k:n:o:r:a:N:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': ca = optarg; break;
        case 'k': keyf = optarg; break;
        case 'o': out = optarg; break;
        case 'n':
            number = strtoull(optarg, &end, 10);
            if (*end != '\0') goto usage;
            break;
        case 'r':
            if (n_serials == sizeof(serials) / sizeof(serials[0]) || strlen(optarg) > 16)
                goto usage;
            serials[n_serials++] = strtoull(optarg, &end, 16);
            if (*end != '\0') goto usage;
            break;
        case 'a':
            at = strtoll(optarg, &end, 10);
            if (*end != '\0') goto usage;
            break;
        case 'N':
            next = strtoll(optarg, &end, 10);
            if (*end != '\0' || next < 0) goto usage;
            break;
        case 'h': crl_sign_usage(stdout); return 0;
        default: goto usage;
        }
    }
    if (ca == NULL || keyf == NULL || out == NULL || number == 0 || optind != argc)
        goto usage;
    if (cv_load_certs(&certs, ca, err, sizeof(err)) < 0) {
        fprintf(stderr, "certvalctl: %s\n", err);
        goto out;
    }
    bio = BIO_new_file(keyf, "r");
    key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    if (key == NULL) {
        fprintf(stderr, "certvalctl: cannot read a PEM private key from %s\n", keyf);
        goto out;
    }
    crl = pki_crl_new(sk_X509_value(certs, 0), key, serials, n_serials, at,
                      next > 0 ? at + next : 0, number);
    if (crl == NULL || pki_write_crl_der(out, crl, err, sizeof(err)) < 0) {
        fprintf(stderr, "certvalctl: cannot issue the CRL: %s\n", crl == NULL ? "signing failed" : err);
        goto out;
    }
    printf("OK: %s (number %llu, %zu revoked)\n", out, (unsigned long long)number, n_serials);
    rc = 0;
out:
    X509_CRL_free(crl);
    EVP_PKEY_free(key);
    BIO_free(bio);
    sk_X509_pop_free(certs, X509_free);
    return rc;
usage:
    crl_sign_usage(stderr);
    return 2;
}
