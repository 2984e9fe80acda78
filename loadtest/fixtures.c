/* certval-fixtures: large synthetic PKIs for the load tests.
 *
 *   certval-fixtures pki --dir DIR [--key p256|rsa2048] [--devices N]
 *       [--revoked N] [--expired N] [--untrusted N] [--malformed N]
 *       [--victims N] [--crl-entries N] [--threads T] [--quiet]
 *   certval-fixtures crl --dir DIR [--crl-entries N] [--revoke-victims] [--quiet]
 *
 * `pki` writes, in DIR: tenant-ca, device-root, device-issuing-ca and
 * rogue-ca (.pem, .key), the CRLs tenant-ca.crl, device-root.crl (empty) and
 * device-issuing-ca.crl (the revoked class plus filler serials up to
 * --crl-entries), chains.bundle (every test chain, see lt_bundle.h),
 * fixtures.txt (the counts, for `crl` and the scripts) and certval.yaml.
 * `crl` rewrites device-issuing-ca.crl (atomically, by rename) with a newer
 * cRLNumber, optionally also listing the victim class: the CRL swaps of the
 * big-CRL and revocation scenarios.
 *
 * Key generation dominates certificate issuance, so every leaf shares one
 * key: what a validator pays for is the CA's signature on each leaf, which
 * is distinct. Signing runs on --threads threads (default: CPUs). Progress
 * goes to stderr. Exit 0, or 1 with a message. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "crl_gen.h"
#include "lt_bundle.h"
#include "lt_report.h"
#include "pki_gen.h"

#define FX_DAY 86400
#define FX_PATH_MAX 4096
#define FX_CHUNK 2048
#define FX_MAX_THREADS 64
#define FX_MAX_COUNT 1000000u
#define FX_MAX_CRL 10000000u
#define FX_EKU_CLIENT "1.3.6.1.5.5.7.3.2"
#define FX_TENANT_URI "urn:certval:tenant:"
#define FX_DEVICE_URI "urn:certval:device:"
#define FX_TENANT "acme"
/* Serials: class in bits 40..47, index below; CRL filler in class 0x80.
 * Deterministic so that `crl` can rebuild the list without the certs. */
#define FX_SERIAL(cls, i) ((((uint64_t)(cls) + 1) << 40) | (uint64_t)(i))
#define FX_FILLER(i) ((UINT64_C(0x80) << 40) | (uint64_t)(i))

enum fx_ca { FX_TENANT_CA, FX_DEVICE_ROOT, FX_DEVICE_ISSUING, FX_ROGUE_CA, FX_N_CAS };

static const char *const fx_ca_file[FX_N_CAS] = {"tenant-ca", "device-root",
                                                 "device-issuing-ca", "rogue-ca"};
static const char *const fx_ca_cn[FX_N_CAS] = {"certval Load Tenant CA", "Load Public Root CA",
                                               "Load Device Issuing CA", "Load Rogue CA"};

struct fx_opts {
    const char *dir;
    enum pki_key_type key;
    size_t count[LT_N_CLASSES]; /* chains per class */
    size_t crl_entries;
    unsigned threads;
    bool revoke_victims;
    bool quiet;
};

struct fx_state {
    struct fx_opts o;
    int64_t now;
    EVP_PKEY *ca_key[FX_N_CAS];
    X509 *ca_cert[FX_N_CAS];
    EVP_PKEY *leaf_key;
    char err[512];
};

/* ---- progress bar ---- */

struct fx_progress {
    const char *what;
    uint64_t total;
    uint64_t start_ns;
    uint64_t last_ns;
    unsigned last_decile; /* not a terminal: the last 10% step printed */
    bool quiet, tty;
};

static void fx_progress_start(struct fx_progress *p, const char *what, uint64_t total, bool quiet)
{
    p->what = what;
    p->total = total > 0 ? total : 1;
    p->start_ns = lt_now_ns();
    p->last_ns = 0;
    p->last_decile = 0;
    p->quiet = quiet;
    p->tty = isatty(STDERR_FILENO) == 1;
}

/* fx_progress_show draws "[#####.....]  45%  450000/1000000  12.3 s"; on a
 * terminal in place at most 10 times a second, otherwise one line per 10%. */
static void fx_progress_show(struct fx_progress *p, uint64_t done)
{
    uint64_t t = lt_now_ns();
    unsigned pct = (unsigned)(done * 100 / p->total), bars = pct / 5;
    char bar[21];

    if (p->quiet)
        return;
    if (p->tty && done < p->total && t - p->last_ns < 100000000u)
        return;
    if (!p->tty && done < p->total && pct / 10 == p->last_decile)
        return;
    for (unsigned i = 0; i < 20; i++)
        bar[i] = i < bars ? '#' : '.';
    bar[20] = '\0';
    fprintf(stderr, "%s%-24s [%s] %3u%% %" PRIu64 "/%" PRIu64 " %.1f s%s", p->tty ? "\r" : "",
            p->what, bar, pct, done, p->total, (double)(t - p->start_ns) / 1e9,
            p->tty && done < p->total ? "" : "\n");
    p->last_ns = t;
    p->last_decile = pct / 10;
}

/* ---- small helpers ---- */

static int fx_fail(struct fx_state *st, const char *what)
{
    snprintf(st->err, sizeof(st->err), "%s", what);
    return -1;
}

static int fx_path(struct fx_state *st, char *buf, const char *base, const char *suffix)
{
    int n = snprintf(buf, FX_PATH_MAX, "%s/%s%s", st->o.dir, base, suffix);

    if (n < 0 || n >= FX_PATH_MAX)
        return fx_fail(st, "path too long");
    return 0;
}

static int fx_write_file(struct fx_state *st, const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    int ok;

    if (fp == NULL) {
        snprintf(st->err, sizeof(st->err), "%s: %s", path, strerror(errno));
        return -1;
    }
    ok = fwrite(data, 1, len, fp) == len;
    if (fclose(fp) != 0 || !ok) {
        snprintf(st->err, sizeof(st->err), "%s: write failed", path);
        return -1;
    }
    return 0;
}

static bool fx_parse_size(const char *s, size_t max, size_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > max)
        return false;
    *out = (size_t)v;
    return true;
}

/* ---- CAs ---- */

static int fx_make_ca(struct fx_state *st, enum fx_ca id)
{
    bool root = id != FX_DEVICE_ISSUING;
    enum fx_ca parent = root ? id : FX_DEVICE_ROOT;
    struct pki_cert_spec spec = {
        .cn = fx_ca_cn[id],
        .o = "certval Load",
        .serial = (uint64_t)id + 1,
        .not_before = st->now - FX_DAY,
        .not_after = st->now + 3650 * FX_DAY,
        .is_ca = true,
        .path_len = id == FX_DEVICE_ROOT ? 1 : 0,
        .key_usage = PKI_KU_KEY_CERT_SIGN | PKI_KU_CRL_SIGN | PKI_KU_DIGITAL_SIGNATURE,
    };
    char path[FX_PATH_MAX];

    st->ca_key[id] = pki_key_new(st->o.key);
    if (st->ca_key[id] == NULL)
        return fx_fail(st, "key generation failed");
    st->ca_cert[id] = pki_issue(&spec, st->ca_key[id], root ? NULL : st->ca_cert[parent],
                                st->ca_key[parent]);
    if (st->ca_cert[id] == NULL)
        return fx_fail(st, "cannot issue a CA certificate");
    if (fx_path(st, path, fx_ca_file[id], ".pem") != 0 ||
        pki_write_cert_pem(path, st->ca_cert[id], false, st->err, sizeof(st->err)) != 0)
        return -1;
    if (fx_path(st, path, fx_ca_file[id], ".key") != 0)
        return -1;
    return pki_write_key_pem(path, st->ca_key[id], st->err, sizeof(st->err));
}

/* ---- leaves, signed in parallel ---- */

/* One leaf to make: its class and index within the class. */
struct fx_item {
    enum lt_class cls;
    size_t idx;
    uint8_t *der; /* OPENSSL_malloc'd by i2d_X509 */
    size_t der_len;
};

struct fx_job {
    struct fx_state *st;
    struct fx_item *items;
    size_t n;
    int rc;
};

static void fx_names(enum lt_class cls, size_t idx, char *device, size_t len)
{
    static const char prefix[LT_N_CLASSES] = {'t', 'd', 'r', 'e', 'u', 'm', 'v'};

    snprintf(device, len, "dev-%c%07zu", prefix[cls], idx);
}

static X509 *fx_issue_leaf(struct fx_state *st, enum lt_class cls, size_t idx)
{
    char device[32], tenant_uri[64], device_uri[64];
    const char *uris[2] = {tenant_uri, device_uri};
    bool tenant = cls == LT_CLASS_TENANT;
    enum fx_ca issuer = tenant ? FX_TENANT_CA
                        : cls == LT_CLASS_UNTRUSTED ? FX_ROGUE_CA
                                                    : FX_DEVICE_ISSUING;
    struct pki_cert_spec spec = {
        .cn = device,
        .o = FX_TENANT,
        .serial = FX_SERIAL(cls, idx),
        .not_before = st->now - FX_DAY,
        .not_after = st->now - FX_DAY + (tenant ? 395 : 730) * (int64_t)FX_DAY,
        .path_len = -1,
        .key_usage = PKI_KU_DIGITAL_SIGNATURE,
        .eku = FX_EKU_CLIENT,
        .san_uris = uris,
        .n_san_uris = tenant ? 1 : 2,
    };

    fx_names(cls, idx, device, sizeof(device));
    if (tenant)
        snprintf(device, sizeof(device), "tenant " FX_TENANT);
    if (cls == LT_CLASS_EXPIRED) {
        spec.not_before = st->now - 400 * (int64_t)FX_DAY;
        spec.not_after = st->now - 10 * (int64_t)FX_DAY;
    }
    snprintf(tenant_uri, sizeof(tenant_uri), "%s%s", FX_TENANT_URI, FX_TENANT);
    snprintf(device_uri, sizeof(device_uri), "%s%s", FX_DEVICE_URI, device);
    return pki_issue(&spec, st->leaf_key, st->ca_cert[issuer], st->ca_key[issuer]);
}

static void *fx_job_run(void *arg)
{
    struct fx_job *j = arg;

    j->rc = 0;
    for (size_t i = 0; i < j->n; i++) {
        X509 *x = fx_issue_leaf(j->st, j->items[i].cls, j->items[i].idx);
        int len = x != NULL ? i2d_X509(x, &j->items[i].der) : -1;

        X509_free(x);
        if (len <= 0) {
            j->rc = -1;
            return NULL;
        }
        j->items[i].der_len = (size_t)len;
    }
    return NULL;
}

/* fx_sign_chunk issues |n| leaves on the configured threads. */
static int fx_sign_chunk(struct fx_state *st, struct fx_item *items, size_t n)
{
    struct fx_job jobs[FX_MAX_THREADS];
    pthread_t tids[FX_MAX_THREADS];
    unsigned t = st->o.threads, started = 0;
    size_t per = (n + t - 1) / t;
    int rc = 0;

    for (unsigned k = 0; k < t; k++) {
        size_t lo = k * per, hi = lo + per < n ? lo + per : n;

        jobs[k] = (struct fx_job){.st = st, .items = items + lo, .n = lo < hi ? hi - lo : 0};
        if (k == 0)
            continue; /* run on this thread below */
        if (pthread_create(&tids[k], NULL, fx_job_run, &jobs[k]) != 0) {
            jobs[k].n = 0;
            rc = -1;
            break;
        }
        started = k;
    }
    fx_job_run(&jobs[0]);
    for (unsigned k = 1; k <= started; k++)
        pthread_join(tids[k], NULL);
    for (unsigned k = 0; k < t; k++)
        rc |= jobs[k].rc;
    return rc == 0 ? 0 : fx_fail(st, "cannot issue a leaf certificate");
}

static int fx_write_item(struct fx_state *st, struct lt_bundle_writer *w, const struct fx_item *it)
{
    char device[32];
    const uint8_t *certs[1] = {it->der};
    size_t lens[1] = {it->der_len};
    /* Device chains carry their intermediate (shared record 0); the tenant
     * CA and the rogue CA are roots, their leaves travel alone. */
    unsigned ref = it->cls == LT_CLASS_TENANT || it->cls == LT_CLASS_UNTRUSTED ? LT_BUNDLE_NO_REF
                                                                              : 0;

    fx_names(it->cls, it->idx, device, sizeof(device));
    if (it->cls == LT_CLASS_TENANT)
        snprintf(device, sizeof(device), "laptop-%zu", it->idx);
    return lt_bundle_writer_add(w, it->cls, FX_TENANT, device, certs, lens, 1, ref, st->err,
                                sizeof(st->err));
}

static int fx_write_malformed(struct fx_state *st, struct lt_bundle_writer *w, size_t idx)
{
    /* A SEQUENCE header claiming 65535 bytes, then text (as in the demo). */
    static const uint8_t garbage[] = "\x30\x82\xff\xff"
                                     "this is not a certificate";
    const uint8_t *certs[1] = {garbage};
    size_t lens[1] = {sizeof(garbage) - 1};
    char device[32];

    fx_names(LT_CLASS_MALFORMED, idx, device, sizeof(device));
    return lt_bundle_writer_add(w, LT_CLASS_MALFORMED, FX_TENANT, device, certs, lens, 1,
                                LT_BUNDLE_NO_REF, st->err, sizeof(st->err));
}

/* fx_write_leaves issues every leaf, chunk by chunk, into the bundle. */
static int fx_write_leaves(struct fx_state *st, struct lt_bundle_writer *w)
{
    struct fx_item *items = calloc(FX_CHUNK, sizeof(*items));
    struct fx_progress prog;
    uint64_t total = 0, done = 0;
    int rc = -1;

    if (items == NULL)
        return fx_fail(st, "out of memory");
    for (int c = 0; c < LT_N_CLASSES; c++)
        total += c == LT_CLASS_MALFORMED ? 0 : st->o.count[c];
    fx_progress_start(&prog, "certificates", total, st->o.quiet);
    for (int c = 0; c < LT_N_CLASSES; c++) {
        for (size_t i = 0; c != LT_CLASS_MALFORMED && i < st->o.count[c]; i += FX_CHUNK) {
            size_t n = st->o.count[c] - i < FX_CHUNK ? st->o.count[c] - i : FX_CHUNK;
            int bad;

            for (size_t k = 0; k < n; k++) {
                items[k].cls = (enum lt_class)c;
                items[k].idx = i + k;
            }
            bad = fx_sign_chunk(st, items, n);

            for (size_t k = 0; k < n; k++) {
                if (bad == 0 && fx_write_item(st, w, &items[k]) != 0)
                    bad = -1;
            }
            for (size_t k = 0; k < n; k++)
                OPENSSL_free(items[k].der);
            memset(items, 0, n * sizeof(*items));
            if (bad != 0)
                goto err;
            done += n;
            fx_progress_show(&prog, done);
        }
    }
    for (size_t i = 0; i < st->o.count[LT_CLASS_MALFORMED]; i++) {
        if (fx_write_malformed(st, w, i) != 0)
            goto err;
    }
    if (done != total)
        fx_progress_show(&prog, total);
    rc = 0;
err:
    free(items);
    return rc;
}

/* ---- CRLs ---- */

struct fx_crl_arg {
    const struct fx_opts *o;
};

/* The revoked class first, then (optionally) the victims, then filler. */
static void fx_crl_entry(void *arg, size_t i, struct crl_gen_entry *e)
{
    const struct fx_opts *o = ((const struct fx_crl_arg *)arg)->o;
    size_t n_rev = o->count[LT_CLASS_REVOKED];
    size_t n_vic = o->revoke_victims ? o->count[LT_CLASS_VICTIM] : 0;
    uint64_t serial;

    if (i < n_rev)
        serial = FX_SERIAL(LT_CLASS_REVOKED, i);
    else if (i < n_rev + n_vic)
        serial = FX_SERIAL(LT_CLASS_VICTIM, i - n_rev);
    else
        serial = FX_FILLER(i - n_rev - n_vic);
    crl_gen_serial_u64(e, serial);
    e->revoked_at = 1700000000 + (int64_t)(i % 1000000);
    e->reason = 1; /* keyCompromise */
}

static void fx_crl_none(void *arg, size_t i, struct crl_gen_entry *e)
{
    (void)arg;
    (void)i;
    (void)e;
}

/* fx_write_crl writes |base|.crl for CA |ca| with |n| entries from
 * |entry_at|, through a temporary file and rename(2) so that a server
 * reloading meanwhile never reads half a file. */
static int fx_write_crl(struct fx_state *st, enum fx_ca ca, size_t n, crl_gen_entry_fn entry_at)
{
    struct fx_crl_arg a = {.o = &st->o};
    struct timespec ts;
    struct crl_gen_spec spec = {
        .issuer = st->ca_cert[ca],
        .key = st->ca_key[ca],
        .this_update = st->now - 60,
        .next_update = st->now + 7 * FX_DAY,
        .has_crl_number = true,
        .n_entries = n,
        .entry_at = entry_at,
        .arg = &a,
    };
    char path[FX_PATH_MAX], tmp[FX_PATH_MAX];
    uint8_t *der = NULL;
    size_t len = 0;
    int rc = -1;

    /* cRLNumber from the clock in milliseconds: each swap is newer. */
    clock_gettime(CLOCK_REALTIME, &ts);
    spec.crl_number = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    if (fx_path(st, path, fx_ca_file[ca], ".crl") != 0 ||
        fx_path(st, tmp, fx_ca_file[ca], ".crl.tmp") != 0)
        return -1;
    if (crl_gen_der(&spec, &der, &len) != 0)
        return fx_fail(st, "cannot build a CRL");
    if (fx_write_file(st, tmp, der, len) == 0) {
        rc = rename(tmp, path) == 0 ? 0 : fx_fail(st, "cannot rename the new CRL into place");
    }
    OPENSSL_free(der);
    return rc;
}

static size_t fx_crl_size(const struct fx_opts *o)
{
    size_t listed = o->count[LT_CLASS_REVOKED] +
                    (o->revoke_victims ? o->count[LT_CLASS_VICTIM] : 0);

    return o->crl_entries > listed ? o->crl_entries : listed;
}

/* ---- configuration and state ---- */

static const char fx_yaml[] =
    "# certval configuration for the load tests, written by certval-fixtures.\n"
    "listen:\n"
    "  tcp: [\"127.0.0.1:0\"]\n"
    "shutdown:\n"
    "  drain_grace_seconds: 2\n"
    "trust:\n"
    "  anchors: [tenant-ca.pem, device-root.pem]\n"
    "  intermediates: [device-issuing-ca.pem]\n"
    "revocation:\n"
    "  crl_files: [tenant-ca.crl, device-issuing-ca.crl, device-root.crl]\n"
    "limits:\n"
    "  max_chains_per_batch: 4096\n"
    "profiles:\n"
    "  - name: tenant\n"
    "    kind: tenant\n"
    "    issuers: [tenant-ca.pem]\n"
    "    tenant_id: {from: san_uri, prefix: \"" FX_TENANT_URI "\"}\n"
    "    revocation: leaf\n"
    "  - name: device\n"
    "    kind: device\n"
    "    issuers: [device-issuing-ca.pem]\n"
    "    tenant_id: {from: san_uri, prefix: \"" FX_TENANT_URI "\"}\n"
    "    device_id: {from: san_uri, prefix: \"" FX_DEVICE_URI "\"}\n"
    "    revocation: all\n"
    "tenants:\n"
    "  - id: " FX_TENANT "\n"
    "    device_certificate_skips_password: true\n"
    "    require_device_binding: true\n";

static int fx_write_state(struct fx_state *st)
{
    char path[FX_PATH_MAX];
    FILE *fp;
    int ok;

    if (fx_path(st, path, "certval", ".yaml") != 0 ||
        fx_write_file(st, path, fx_yaml, sizeof(fx_yaml) - 1) != 0)
        return -1;
    if (fx_path(st, path, "fixtures", ".txt") != 0)
        return -1;
    fp = fopen(path, "w");
    if (fp == NULL)
        return fx_fail(st, "cannot write fixtures.txt");
    ok = fprintf(fp, "key=%s\ncrl_entries=%zu\ngenerated_at=%lld\n",
                 st->o.key == PKI_KEY_RSA2048 ? "rsa2048" : "p256", fx_crl_size(&st->o),
                 (long long)st->now) > 0;
    for (int c = 0; c < LT_N_CLASSES; c++)
        ok = ok && fprintf(fp, "%s=%zu\n", lt_class_name((enum lt_class)c), st->o.count[c]) > 0;
    if (fclose(fp) != 0 || !ok)
        return fx_fail(st, "cannot write fixtures.txt");
    return 0;
}

/* fx_read_state reads fixtures.txt back into the counts of |st|. */
static int fx_read_state(struct fx_state *st)
{
    char path[FX_PATH_MAX], line[256];
    FILE *fp;

    if (fx_path(st, path, "fixtures", ".txt") != 0)
        return -1;
    fp = fopen(path, "r");
    if (fp == NULL) {
        snprintf(st->err, sizeof(st->err), "%s/fixtures.txt: %s (run `pki` first)", st->o.dir,
                 strerror(errno));
        return -1;
    }
    for (int guard = 0; guard < 64 && fgets(line, sizeof(line), fp) != NULL; guard++) {
        char *eq = strchr(line, '=');
        size_t v;
        enum lt_class c;

        if (eq == NULL)
            continue;
        line[strcspn(line, "\n")] = '\0';
        if (lt_class_parse(&c, line, (size_t)(eq - line)) == 0 &&
            fx_parse_size(eq + 1, FX_MAX_COUNT, &v))
            st->o.count[c] = v;
    }
    fclose(fp);
    return 0;
}

static int fx_load_ca(struct fx_state *st, enum fx_ca ca)
{
    char path[FX_PATH_MAX];
    BIO *bio;

    if (fx_path(st, path, fx_ca_file[ca], ".pem") != 0)
        return -1;
    bio = BIO_new_file(path, "r");
    st->ca_cert[ca] = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (fx_path(st, path, fx_ca_file[ca], ".key") != 0)
        return -1;
    bio = BIO_new_file(path, "r");
    st->ca_key[ca] = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (st->ca_cert[ca] == NULL || st->ca_key[ca] == NULL) {
        snprintf(st->err, sizeof(st->err), "cannot read %s.pem/.key in %s", fx_ca_file[ca],
                 st->o.dir);
        return -1;
    }
    return 0;
}

/* ---- commands ---- */

static int fx_cmd_pki(struct fx_state *st)
{
    struct lt_bundle_writer *w = NULL;
    char path[FX_PATH_MAX];
    const uint8_t *inter[1];
    size_t inter_len[1];
    uint8_t *der = NULL;
    int len;
    uint64_t t0 = lt_now_ns();

    if (mkdir(st->o.dir, 0755) != 0 && errno != EEXIST) {
        snprintf(st->err, sizeof(st->err), "%s: %s", st->o.dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < FX_N_CAS; i++) {
        if (fx_make_ca(st, (enum fx_ca)i) != 0)
            return -1;
    }
    st->leaf_key = pki_key_new(st->o.key);
    if (st->leaf_key == NULL)
        return fx_fail(st, "key generation failed");
    if (fx_path(st, path, "chains", ".bundle") != 0 ||
        lt_bundle_writer_open(&w, path, st->err, sizeof(st->err)) != 0)
        return -1;
    len = i2d_X509(st->ca_cert[FX_DEVICE_ISSUING], &der);
    inter[0] = der;
    inter_len[0] = len > 0 ? (size_t)len : 0;
    if (len <= 0 || lt_bundle_writer_add(w, LT_CLASS_SHARED, NULL, NULL, inter, inter_len, 1,
                                         LT_BUNDLE_NO_REF, st->err, sizeof(st->err)) != 0 ||
        fx_write_leaves(st, w) != 0) {
        char ignored[8];

        OPENSSL_free(der);
        lt_bundle_writer_close(w, ignored, sizeof(ignored));
        return -1;
    }
    OPENSSL_free(der);
    if (lt_bundle_writer_close(w, st->err, sizeof(st->err)) != 0)
        return -1;
    if (!st->o.quiet)
        fprintf(stderr, "certval-fixtures: certificates done in %.1f s\n",
                (double)(lt_now_ns() - t0) / 1e9);
    if (fx_write_crl(st, FX_TENANT_CA, 0, fx_crl_none) != 0 ||
        fx_write_crl(st, FX_DEVICE_ROOT, 0, fx_crl_none) != 0)
        return -1;
    t0 = lt_now_ns();
    if (fx_write_crl(st, FX_DEVICE_ISSUING, fx_crl_size(&st->o), fx_crl_entry) != 0)
        return -1;
    if (!st->o.quiet)
        fprintf(stderr, "certval-fixtures: device-issuing-ca.crl (%zu entries) in %.2f s\n",
                fx_crl_size(&st->o), (double)(lt_now_ns() - t0) / 1e9);
    return fx_write_state(st);
}

static int fx_cmd_crl(struct fx_state *st, bool have_entries)
{
    size_t wanted = st->o.crl_entries;
    uint64_t t0 = lt_now_ns();

    if (fx_read_state(st) != 0 || fx_load_ca(st, FX_DEVICE_ISSUING) != 0)
        return -1;
    if (have_entries)
        st->o.crl_entries = wanted;
    if (fx_write_crl(st, FX_DEVICE_ISSUING, fx_crl_size(&st->o), fx_crl_entry) != 0)
        return -1;
    if (!st->o.quiet)
        fprintf(stderr, "certval-fixtures: device-issuing-ca.crl (%zu entries%s) in %.2f s\n",
                fx_crl_size(&st->o), st->o.revoke_victims ? ", victims revoked" : "",
                (double)(lt_now_ns() - t0) / 1e9);
    return 0;
}

static void fx_usage(FILE *f)
{
    fprintf(f,
            "usage: certval-fixtures pki --dir DIR [--key p256|rsa2048] [--devices N]\n"
            "           [--revoked N] [--expired N] [--untrusted N] [--malformed N]\n"
            "           [--victims N] [--tenants N] [--crl-entries N] [--threads T] [--quiet]\n"
            "       certval-fixtures crl --dir DIR [--crl-entries N] [--revoke-victims] "
            "[--quiet]\n"
            "Counts are at most %u; --crl-entries at most %u.\n",
            FX_MAX_COUNT, FX_MAX_CRL);
}

/* fx_parse_opt handles one "--name value" pair; 1 = consumed a value,
 * 0 = flag, -1 = error. */
static int fx_parse_opt(struct fx_opts *o, const char *name, const char *val, bool *have_entries)
{
    static const struct { const char *name; enum lt_class cls; } counts[] = {
        {"--devices", LT_CLASS_DEVICE},     {"--revoked", LT_CLASS_REVOKED},
        {"--expired", LT_CLASS_EXPIRED},    {"--untrusted", LT_CLASS_UNTRUSTED},
        {"--malformed", LT_CLASS_MALFORMED}, {"--victims", LT_CLASS_VICTIM},
        {"--tenants", LT_CLASS_TENANT},
    };
    size_t v;

    if (strcmp(name, "--quiet") == 0)
        return o->quiet = true, 0;
    if (strcmp(name, "--revoke-victims") == 0)
        return o->revoke_victims = true, 0;
    if (val == NULL)
        return -1;
    if (strcmp(name, "--dir") == 0)
        return o->dir = val, 1;
    if (strcmp(name, "--key") == 0) {
        if (strcmp(val, "p256") != 0 && strcmp(val, "rsa2048") != 0)
            return -1;
        o->key = strcmp(val, "p256") == 0 ? PKI_KEY_P256 : PKI_KEY_RSA2048;
        return 1;
    }
    if (strcmp(name, "--crl-entries") == 0) {
        *have_entries = true;
        return fx_parse_size(val, FX_MAX_CRL, &o->crl_entries) ? 1 : -1;
    }
    if (strcmp(name, "--threads") == 0) {
        if (!fx_parse_size(val, FX_MAX_THREADS, &v) || v == 0)
            return -1;
        o->threads = (unsigned)v;
        return 1;
    }
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        if (strcmp(name, counts[i].name) == 0)
            return fx_parse_size(val, FX_MAX_COUNT, &o->count[counts[i].cls]) ? 1 : -1;
    }
    return -1;
}

int main(int argc, char **argv)
{
    static struct fx_state st;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    bool have_entries = false, pki;
    int rc = 1;

    if (argc < 2 || (strcmp(argv[1], "pki") != 0 && strcmp(argv[1], "crl") != 0)) {
        fx_usage(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    pki = strcmp(argv[1], "pki") == 0;
    st.o = (struct fx_opts){
        .key = PKI_KEY_P256,
        .count = {[LT_CLASS_TENANT] = 1, [LT_CLASS_DEVICE] = 1000, [LT_CLASS_REVOKED] = 100,
                  [LT_CLASS_EXPIRED] = 100, [LT_CLASS_UNTRUSTED] = 100,
                  [LT_CLASS_MALFORMED] = 10, [LT_CLASS_VICTIM] = 16},
        .crl_entries = 10000,
        .threads = ncpu > 0 && ncpu < FX_MAX_THREADS ? (unsigned)ncpu : 1,
    };
    for (int i = 2; i < argc; i++) {
        int used = fx_parse_opt(&st.o, argv[i], i + 1 < argc ? argv[i + 1] : NULL, &have_entries);

        if (used < 0) {
            fprintf(stderr, "certval-fixtures: bad option or value: %s\n", argv[i]);
            fx_usage(stderr);
            return 2;
        }
        i += used;
    }
    if (st.o.dir == NULL) {
        fx_usage(stderr);
        return 2;
    }
    st.now = (int64_t)time(NULL);
    if ((pki ? fx_cmd_pki(&st) : fx_cmd_crl(&st, have_entries)) == 0)
        rc = 0;
    else
        fprintf(stderr, "certval-fixtures: %s\n", st.err);
    for (int i = 0; i < FX_N_CAS; i++) {
        EVP_PKEY_free(st.ca_key[i]);
        X509_free(st.ca_cert[i]);
    }
    EVP_PKEY_free(st.leaf_key);
    return rc;
}
