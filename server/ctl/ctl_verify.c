/* certvalctl verify / check-trust / inspect: the validation core from the
 * command line, with no server involved. Exit status: 0 valid, 1 invalid,
 * 2 usage or I/O error (ctl.h). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bytestring.h>
#include <openssl/mem.h>
#include <openssl/x509.h>

#include "config.h"
#include "crl_cache.h"
#include "rcu_reader.h"
#include "ctl.h"
#include "validator.h"
#include "verdict.h"

#define CTL_MAX_LIST 64

enum { CTL_VALID = 0, CTL_INVALID = 1, CTL_USAGE = 2 };

/* Options shared by verify and check-trust. */
struct ctl_opts {
    const char *anchors[CTL_MAX_LIST];
    size_t n_anchors;
    const char *untrusted[CTL_MAX_LIST];
    size_t n_untrusted;
    const char *crls[CTL_MAX_LIST];
    size_t n_crls;
    const char *policies[CTL_MAX_LIST];
    size_t n_policies;
    struct path_options path;
};

static int add_item(const char **list, size_t *n, const char *v, const char *what)
{
    if (*n == CTL_MAX_LIST) {
        fprintf(stderr, "too many %s options (limit %d)\n", what, CTL_MAX_LIST);
        return -1;
    }
    list[(*n)++] = v;
    return 0;
}

/* parse_time reads a Unix time (decimal seconds) without atoi's silence on
 * garbage. */
static int parse_time(int64_t *out, const char *s)
{
    char *end = NULL;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0) {
        fprintf(stderr, "bad time \"%s\": want Unix seconds\n", s);
        return -1;
    }
    *out = v;
    return 0;
}

/* parse_uint reads a decimal in [min, max]. */
static int parse_uint(uint32_t *out, const char *s, uint32_t min, uint32_t max, const char *option)
{
    char *end = NULL;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max) {
        fprintf(stderr, "bad %s \"%s\": want %u..%u\n", option, s, min, max);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

struct choice {
    const char *name;
    int value;
};

/* parse_choice maps |s| to the value of the entry of |c| with that name;
 * -1 with a message listing the names when none has it. */
static int parse_choice(int *out, const char *s, const struct choice *c, size_t n,
                        const char *option)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, c[i].name) == 0) {
            *out = c[i].value;
            return 0;
        }
    }
    fprintf(stderr, "bad %s \"%s\": one of", option, s);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %s", c[i].name);
    fprintf(stderr, "\n");
    return -1;
}

static int parse_purpose(enum path_purpose *out, const char *s)
{
    static const struct choice c[] = {{"client", PATH_PURPOSE_CLIENT},
                                      {"server", PATH_PURPOSE_SERVER},
                                      {"any", PATH_PURPOSE_ANY}};
    int v;

    if (parse_choice(&v, s, c, sizeof(c) / sizeof(c[0]), "--purpose") != 0)
        return -1;
    *out = (enum path_purpose)v;
    return 0;
}

static int parse_crl_check(enum crl_check_mode *out, const char *s)
{
    static const struct choice c[] = {
        {"none", CRL_CHECK_NONE}, {"leaf", CRL_CHECK_LEAF}, {"all", CRL_CHECK_ALL}};
    int v;

    if (parse_choice(&v, s, c, sizeof(c) / sizeof(c[0]), "--crl-check") != 0)
        return -1;
    *out = (enum crl_check_mode)v;
    return 0;
}

static int parse_algorithms(enum algorithm_policy *out, const char *s)
{
    static const struct choice c[] = {{"strict", ALGORITHMS_STRICT}, {"legacy", ALGORITHMS_LEGACY}};
    int v;

    if (parse_choice(&v, s, c, sizeof(c) / sizeof(c[0]), "--algorithms") != 0)
        return -1;
    *out = (enum algorithm_policy)v;
    return 0;
}

/* load_cert_files appends every certificate of |files| to |to|. */
static int load_cert_files(STACK_OF(X509) *to, const char *const *files, size_t n)
{
    char err[256];

    if (cv_append_certs(to, files, n, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

/* Read whole, at most this: the server's default admin push limit
 * (admin.max_message_bytes), so every CRL the server takes is read here. */
#define CRL_FILE_MAX (256u << 20)

/* read_crl_file reads |path| whole; NULL with a message on stderr. */
static uint8_t *read_crl_file(const char *path, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n = -1;

    *out_len = 0;
    if (f != NULL && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 &&
        (unsigned long)n <= CRL_FILE_MAX && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n)) != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf == NULL)
        fprintf(stderr, "%s: %s\n", path,
                f == NULL                                ? strerror(errno)
                : n == 0                                 ? "empty file"
                : n > 0 && (unsigned long)n > CRL_FILE_MAX ? "larger than 256 MiB"
                                                         : "read error");
    if (f != NULL)
        fclose(f);
    *out_len = buf != NULL ? (size_t)n : 0;
    return buf;
}

/* is_der_crl: the outer CertificateList (RFC 5280 5.1: SEQUENCE of the
 * TBSCertList, the algorithm and the signature) fills |der| exactly. The
 * cache parses and verifies the rest. */
static bool is_der_crl(const uint8_t *der, size_t len)
{
    CBS in, crl, tbs, alg, sig;

    CBS_init(&in, der, len);
    return CBS_get_asn1(&in, &crl, CBS_ASN1_SEQUENCE) && CBS_len(&in) == 0 &&
           CBS_get_asn1(&crl, &tbs, CBS_ASN1_SEQUENCE) &&
           CBS_get_asn1(&crl, &alg, CBS_ASN1_SEQUENCE) &&
           CBS_get_asn1(&crl, &sig, CBS_ASN1_BITSTRING) && CBS_len(&crl) == 0;
}

/* The --crl files, read before the path is validated (a file that is not
 * a CRL is a usage error whatever the path): DER CRLs, each malloc'd. */
struct crl_ders {
    uint8_t **der;
    size_t *len;
    size_t n, cap;
};

static void crl_ders_free(struct crl_ders *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->der[i]);
    free(c->der);
    free(c->len);
    memset(c, 0, sizeof(*c));
}

static int crl_ders_push(struct crl_ders *c, uint8_t *der, size_t len)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 8;
        uint8_t **d = realloc(c->der, cap * sizeof(*d));
        size_t *l = d != NULL ? realloc(c->len, cap * sizeof(*l)) : NULL;

        if (d != NULL)
            c->der = d;
        if (l == NULL) {
            free(der);
            return -1;
        }
        c->len = l;
        c->cap = cap;
    }
    c->der[c->n] = der;
    c->len[c->n++] = len;
    return 0;
}

/* read_crl_files reads every CRL of |files|: a DER file as it is (no
 * X509_CRL is built: for a 1,000,000-entry CRL that alone took 1.2 s), PEM
 * through cv_load_crls (several CRLs per file). -1 with a message on
 * stderr when a file cannot be read or is not a CRL. */
static int read_crl_files(struct crl_ders *out, const char *const *files, size_t n)
{
    char err[256];

    for (size_t i = 0; i < n; i++) {
        STACK_OF(X509_CRL) *sk = NULL;
        size_t len;
        uint8_t *buf = read_crl_file(files[i], &len);

        if (buf == NULL)
            return -1;
        if (is_der_crl(buf, len)) {
            if (crl_ders_push(out, buf, len) != 0)
                return -1;
            continue;
        }
        free(buf);
        if (cv_load_crls(&sk, files[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "%s\n", err);
            return -1;
        }
        for (size_t j = 0; j < sk_X509_CRL_num(sk); j++) {
            uint8_t *der = NULL, *copy;
            int dlen = i2d_X509_CRL(sk_X509_CRL_value(sk, j), &der);

            copy = dlen > 0 ? malloc((size_t)dlen) : NULL;
            if (copy != NULL)
                memcpy(copy, der, (size_t)dlen);
            OPENSSL_free(der);
            if (copy == NULL || crl_ders_push(out, copy, (size_t)dlen) != 0) {
                sk_X509_CRL_pop_free(sk, X509_CRL_free);
                return -1;
            }
        }
        sk_X509_CRL_pop_free(sk, X509_CRL_free);
    }
    return 0;
}

/* check_revocation runs RFC 5280 6.3 on the validated path of |res| over
 * the --crl files (|crls|, kept as DER) with path_check_revocation: the
 * service's engine, as path_validate's own check. */
static int check_revocation(struct path_result *res, const struct ctl_opts *o,
                            const struct crl_ders *crls, const STACK_OF(X509) *anchors,
                            const STACK_OF(X509) *untrusted)
{
    return path_check_revocation(res, &o->path, anchors, untrusted,
                                 (const uint8_t *const *)crls->der, crls->len, crls->n);
}

/* run_path validates the first certificate of |cert_file| (the others in
 * it are extra untrusted candidates) and prints the outcome. |via| prints
 * the anchor's subject on success. */
static int run_path(struct ctl_opts *o, const char *cert_file, bool via)
{
    STACK_OF(X509) *anchors = sk_X509_new_null(), *untrusted = sk_X509_new_null();
    STACK_OF(X509) *target = sk_X509_new_null();
    struct crl_ders crls = {0};
    struct path_options path;
    struct path_result res;
    int rc = CTL_USAGE;

    memset(&res, 0, sizeof(res));
    if (anchors == NULL || untrusted == NULL || target == NULL ||
        load_cert_files(anchors, o->anchors, o->n_anchors) != 0 ||
        load_cert_files(untrusted, o->untrusted, o->n_untrusted) != 0 ||
        load_cert_files(target, &cert_file, 1) != 0 ||
        read_crl_files(&crls, o->crls, o->n_crls) != 0)
        goto done;
    X509 *leaf = sk_X509_shift(target);
    while (sk_X509_num(target) > 0)
        sk_X509_push(untrusted, sk_X509_shift(target));
    sk_X509_push(target, leaf); /* keeps ownership in one place */
    o->path.policy_oids = o->policies;
    o->path.n_policy_oids = o->n_policies;
    /* The path first, then revocation here (check_revocation). */
    path = o->path;
    path.crl_check = CRL_CHECK_NONE;
    if (path_validate(&res, &path, leaf, anchors, untrusted, NULL) != 0) {
        fprintf(stderr, "internal error: %s\n", res.detail);
        goto done;
    }
    if (res.valid && o->path.crl_check != CRL_CHECK_NONE &&
        check_revocation(&res, o, &crls, anchors, untrusted) != 0) {
        fprintf(stderr, "certvalctl: out of memory checking revocation\n");
        goto done;
    }
    if (res.valid) {
        if (via) {
            char name[256];
            X509 *top = sk_X509_value(res.chain, sk_X509_num(res.chain) - 1);
            X509_NAME_oneline(X509_get_subject_name(top), name, sizeof(name));
            printf("OK via %s\n", name);
        } else {
            printf("OK\n");
        }
        rc = CTL_VALID;
    } else {
        printf("FAIL %s: %s\n", verdict_reason_name(res.reason), res.detail);
        rc = CTL_INVALID;
    }
done:
    path_result_clear(&res);
    sk_X509_pop_free(anchors, X509_free);
    sk_X509_pop_free(untrusted, X509_free);
    sk_X509_pop_free(target, X509_free);
    crl_ders_free(&crls);
    return rc;
}

static void verify_usage(FILE *f)
{
    fprintf(f, "usage: certvalctl verify [--anchor FILE]... [--untrusted FILE]... [--crl FILE]...\n"
               "         [--at UNIX_TIME] [--crl-check none|leaf|all] [--policy OID]...\n"
               "         [--explicit-policy] [--inhibit-policy-mapping] [--inhibit-any-policy]\n"
               "         [--purpose client|server|any] [--hostname NAME] [--ip ADDR]\n"
               "         [--email ADDR] [--algorithms strict|legacy] [--min-rsa-bits N] [--compat]\n"
               "         [--max-depth N] CERT\n"
               "Prints OK or FAIL <REASON>: <detail>. Files are PEM (several objects) or DER.\n");
}

/* path_opt_apply applies option |ch| (its letter in the verify and
 * check-trust tables) with |arg| to |o|; -1 (message printed) on a bad
 * value or an option neither table has. */
static int path_opt_apply(struct ctl_opts *o, int ch, const char *arg)
{
    switch (ch) {
    case 'a': return add_item(o->anchors, &o->n_anchors, arg, "--anchor");
    case 'b': return add_item(o->anchors, &o->n_anchors, arg, "--bundle");
    case 'u': return add_item(o->untrusted, &o->n_untrusted, arg, "--untrusted");
    case 'c': return add_item(o->crls, &o->n_crls, arg, "--crl");
    case 'p': return add_item(o->policies, &o->n_policies, arg, "--policy");
    case 't': return parse_time(&o->path.at, arg);
    case 'C': return parse_crl_check(&o->path.crl_check, arg);
    case 'P': return parse_purpose(&o->path.purpose, arg);
    case 'G': return parse_algorithms(&o->path.conformance.algorithms, arg);
    case 'R':
        return parse_uint(&o->path.conformance.min_rsa_bits, arg, 512, 16384, "--min-rsa-bits");
    case 'D': return parse_uint(&o->path.max_depth, arg, 1, 32, "--max-depth");
    case 'H': o->path.hostname = arg; return 0;
    case 'I': o->path.ip = arg; return 0;
    case 'm': o->path.email = arg; return 0;
    case 'E': o->path.explicit_policy = true; return 0;
    case 'M': o->path.inhibit_policy_mapping = true; return 0;
    case 'A': o->path.inhibit_any_policy = true; return 0;
    case 'K': o->path.conformance.compat = true; return 0;
    default: return -1;
    }
}

/* path_opts_parse fills |o| (now, any purpose, by default) from |argv| by
 * |longopts|. Returns -1 when the command goes on, else its exit code:
 * CTL_VALID after --help (|usage| on stdout), CTL_USAGE after a bad option
 * (|usage| on stderr). */
static int path_opts_parse(struct ctl_opts *o, int argc, char **argv,
                           const struct option *longopts, void (*usage)(FILE *f))
{
    int ch;

    memset(o, 0, sizeof(*o));
    o->path.at = (int64_t)time(NULL);
    o->path.purpose = PATH_PURPOSE_ANY;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            return CTL_VALID;
        }
        if (path_opt_apply(o, ch, optarg) != 0) {
            usage(stderr);
            return CTL_USAGE;
        }
    }
    return -1;
}

int ctl_verify_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"anchor", required_argument, NULL, 'a'},
        {"untrusted", required_argument, NULL, 'u'},
        {"crl", required_argument, NULL, 'c'},
        {"at", required_argument, NULL, 't'},
        {"crl-check", required_argument, NULL, 'C'},
        {"policy", required_argument, NULL, 'p'},
        {"explicit-policy", no_argument, NULL, 'E'},
        {"inhibit-policy-mapping", no_argument, NULL, 'M'},
        {"inhibit-any-policy", no_argument, NULL, 'A'},
        {"purpose", required_argument, NULL, 'P'},
        {"hostname", required_argument, NULL, 'H'},
        {"ip", required_argument, NULL, 'I'},
        {"email", required_argument, NULL, 'm'},
        {"algorithms", required_argument, NULL, 'G'},
        {"min-rsa-bits", required_argument, NULL, 'R'},
        {"compat", no_argument, NULL, 'K'},
        {"max-depth", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct ctl_opts o;
    int rc = path_opts_parse(&o, argc, argv, longopts, verify_usage);

    if (rc >= 0)
        return rc;
    if (optind != argc - 1 || o.n_anchors == 0) {
        fprintf(stderr, o.n_anchors == 0 ? "at least one --anchor is required\n"
                                         : "exactly one CERT is required\n");
        verify_usage(stderr);
        return CTL_USAGE;
    }
    if (o.path.ip != NULL) {
        uint8_t buf[16];
        if (inet_pton(AF_INET, o.path.ip, buf) != 1 && inet_pton(AF_INET6, o.path.ip, buf) != 1) {
            fprintf(stderr, "bad --ip \"%s\": want an IPv4 or IPv6 address\n", o.path.ip);
            return CTL_USAGE;
        }
    }
    if (o.path.hostname != NULL && o.path.purpose != PATH_PURPOSE_SERVER) {
        fprintf(stderr, "--hostname needs --purpose server\n");
        return CTL_USAGE;
    }
    return run_path(&o, argv[optind], false);
}

static void check_trust_usage(FILE *f)
{
    fprintf(f, "usage: certvalctl check-trust --bundle FILE [--at UNIX_TIME]\n"
               "         [--purpose client|server|any] [--hostname NAME] CHAIN_FILE\n"
               "CHAIN_FILE: PEM, leaf first, then intermediates. Prints OK via <anchor> or FAIL.\n");
}

int ctl_check_trust_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"bundle", required_argument, NULL, 'b'},
        {"at", required_argument, NULL, 't'},
        {"purpose", required_argument, NULL, 'P'},
        {"hostname", required_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct ctl_opts o;
    int rc = path_opts_parse(&o, argc, argv, longopts, check_trust_usage);

    if (rc >= 0)
        return rc;
    if (optind != argc - 1 || o.n_anchors == 0) {
        check_trust_usage(stderr);
        return CTL_USAGE;
    }
    return run_path(&o, argv[optind], true);
}

/* ---- inspect ---- */

/* load_crl_dir loads every regular file of |dir| into |c|. */
static int add_crl_file(struct crl_cache *c, const char *path, const STACK_OF(X509) *issuers)
{
    STACK_OF(X509_CRL) *sk = NULL;
    char err[256];

    if (cv_load_crls(&sk, path, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    for (size_t i = 0; i < sk_X509_CRL_num(sk); i++) {
        uint8_t *der = NULL;
        int len = i2d_X509_CRL(sk_X509_CRL_value(sk, i), &der);
        if (len < 0 ||
            crl_cache_add_der(c, der, (size_t)len, issuers, path, err, sizeof(err)) != 0)
            fprintf(stderr, "warning: %s: %s\n", path, len < 0 ? "cannot encode" : err);
        OPENSSL_free(der);
    }
    sk_X509_CRL_pop_free(sk, X509_CRL_free);
    return 0;
}

static int load_crl_dir(struct crl_cache *c, const char *dir, const STACK_OF(X509) *issuers)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];

    if (d == NULL) {
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        add_crl_file(c, path, issuers);
    }
    closedir(d);
    return 0;
}

/* crl_issuers: every CA certificate the configuration names, to find and
 * verify CRL signers. */
static STACK_OF(X509) *crl_issuers(const struct validator_config *vc)
{
    STACK_OF(X509) *sk = sk_X509_new_null();

    if (sk == NULL ||
        load_cert_files(sk, (const char *const *)vc->anchor_files, vc->n_anchor_files) != 0 ||
        load_cert_files(sk, (const char *const *)vc->intermediate_files,
                        vc->n_intermediate_files) != 0)
        goto err;
    for (size_t i = 0; i < vc->n_profiles; i++)
        if (load_cert_files(sk, (const char *const *)vc->profiles[i].issuer_files,
                            vc->profiles[i].n_issuer_files) != 0)
            goto err;
    return sk;
err:
    sk_X509_pop_free(sk, X509_free);
    return NULL;
}

static struct crl_cache *inspect_crls(const struct certval_config *cfg)
{
    struct crl_cache *c = crl_cache_new();
    STACK_OF(X509) *issuers = crl_issuers(&cfg->validator);

    if (c == NULL || issuers == NULL)
        goto err;
    for (size_t i = 0; i < cfg->n_crl_files; i++)
        if (add_crl_file(c, cfg->crl_files[i], issuers) != 0)
            goto err;
    if (cfg->crl_dir != NULL && load_crl_dir(c, cfg->crl_dir, issuers) != 0)
        goto err;
    sk_X509_pop_free(issuers, X509_free);
    return c;
err:
    sk_X509_pop_free(issuers, X509_free);
    crl_cache_free(c);
    return NULL;
}

/* chain_der encodes every certificate of |certs| into |bufs| / |items|. */
static int chain_der(struct cv_bytes *items, uint8_t **bufs, const STACK_OF(X509) *certs)
{
    for (size_t i = 0; i < sk_X509_num(certs); i++) {
        int len = i2d_X509(sk_X509_value(certs, i), &bufs[i]);
        if (len < 0)
            return -1;
        items[i].data = bufs[i];
        items[i].len = (size_t)len;
    }
    return 0;
}

static void print_verdict(const struct verdict *v)
{
    printf("profile: %s\nkind: %s\ndecision: %s\nreason: %s\ndetail: %s\n",
           v->profile[0] ? v->profile : "-", cert_kind_name(v->kind),
           verdict_decision_name(v->decision), verdict_reason_name(v->reason),
           v->detail[0] ? v->detail : "-");
    if (v->subject[0])
        printf("subject: %s\nserial: %s\nnot_after: %" PRId64 "\n", v->subject, v->serial_hex,
               v->not_after_unix);
}

static void inspect_usage(FILE *f)
{
    fprintf(f, "usage: certvalctl inspect --config FILE --tenant T [--device D] [--at UNIX_TIME]\n"
               "         CERT...\n"
               "CERT files (PEM or DER) make one chain, leaf first.\n");
}

struct inspect_args {
    const char *config, *tenant, *device;
    int64_t at;
};

static int inspect_run(const struct inspect_args *a, char **files, size_t n_files)
{
    struct certval_config *cfg = NULL;
    struct validator *v = NULL;
    struct crl_cache *crls = NULL;
    STACK_OF(X509) *certs = sk_X509_new_null();
    struct cv_bytes items[CTL_MAX_LIST];
    uint8_t *bufs[CTL_MAX_LIST] = {NULL};
    struct chain_input in;
    struct verdict out;
    char err[512];
    int rc = CTL_USAGE;

    if (config_load(&cfg, a->config, err, sizeof(err)) != 0 ||
        validator_new(&v, &cfg->validator, 1, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        goto done;
    }
    if (certs == NULL || load_cert_files(certs, (const char *const *)files, n_files) != 0)
        goto done;
    if (sk_X509_num(certs) > CTL_MAX_LIST || chain_der(items, bufs, certs) != 0) {
        fprintf(stderr, "chain too long or not encodable\n");
        goto done;
    }
    certval_rcu_reader_register();
    crls = inspect_crls(cfg);
    if (crls == NULL) {
        certval_rcu_reader_unregister();
        goto done;
    }
    memset(&in, 0, sizeof(in));
    in.certs = items;
    in.n_certs = sk_X509_num(certs);
    in.tenant_id.data = (const uint8_t *)a->tenant;
    in.tenant_id.len = strlen(a->tenant);
    in.device_id.data = (const uint8_t *)(a->device ? a->device : "");
    in.device_id.len = a->device ? strlen(a->device) : 0;
    {
        struct revocation_sources src = {.crls = crls};

        validator_check_chain(v, &src, &out, &in, a->at);
    }
    certval_rcu_reader_unregister();
    print_verdict(&out);
    rc = out.decision == DECISION_DENY ? CTL_INVALID : CTL_VALID;
done:
    for (size_t i = 0; i < CTL_MAX_LIST; i++)
        OPENSSL_free(bufs[i]);
    sk_X509_pop_free(certs, X509_free);
    crl_cache_free(crls);
    validator_free(v);
    config_free(cfg);
    return rc;
}

int ctl_inspect_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"tenant", required_argument, NULL, 'T'},
        {"device", required_argument, NULL, 'D'},
        {"at", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct inspect_args a = {.at = (int64_t)time(NULL)};
    int ch;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c': a.config = optarg; break;
        case 'T': a.tenant = optarg; break;
        case 'D': a.device = optarg; break;
        case 't':
            if (parse_time(&a.at, optarg) != 0)
                return CTL_USAGE;
            break;
        case 'h': inspect_usage(stdout); return CTL_VALID;
        default: inspect_usage(stderr); return CTL_USAGE;
        }
    }
    if (a.config == NULL || a.tenant == NULL || optind >= argc) {
        inspect_usage(stderr);
        return CTL_USAGE;
    }
    return inspect_run(&a, argv + optind, (size_t)(argc - optind));
}
