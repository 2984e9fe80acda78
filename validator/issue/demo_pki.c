/* The demo PKI of `certvalctl demo-pki` and `certvald --demo`: a tenant CA,
 * a public device PKI, one certificate for each verdict, the CRLs and a
 * certval.yaml that trusts them. docs/demo.md describes the result; this
 * file is the single source of truth for what is generated. */
#include "pki_gen.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/rand.h>

#define DEMO_DAY 86400
#define DEMO_TENANT_DAYS 395  /* 13 months: inside the tenant profile's 396 days */
#define DEMO_DEVICE_DAYS 1826 /* 5 years: inside the device profile's 1827 days */
#define DEMO_CA_DAYS 3652
#define DEMO_PATH_MAX 4096
#define DEMO_EKU_CLIENT "1.3.6.1.5.5.7.3.2"
#define DEMO_TENANT_URI "urn:certval:tenant:"
#define DEMO_DEVICE_URI "urn:certval:device:"

enum demo_ca_id {
    DEMO_TENANT_CA = 0,
    DEMO_DEVICE_ROOT = 1,
    DEMO_DEVICE_ISSUING = 2,
    DEMO_ROGUE_CA = 3,
    DEMO_N_CAS = 4,
};

struct demo_ca {
    const char *file; /* base name: <file>.pem, <file>.key */
    const char *cn;
    enum demo_ca_id parent; /* itself for a root */
    int path_len;
};

static const struct demo_ca demo_cas[DEMO_N_CAS] = {
    [DEMO_TENANT_CA] = {"tenant-ca", "certval Demo Tenant CA", DEMO_TENANT_CA, 0},
    [DEMO_DEVICE_ROOT] = {"device-root", "Demo Public Root CA", DEMO_DEVICE_ROOT, 1},
    [DEMO_DEVICE_ISSUING] = {"device-issuing-ca", "Demo Device Issuing CA", DEMO_DEVICE_ROOT, 0},
    [DEMO_ROGUE_CA] = {"rogue-ca", "Rogue CA", DEMO_ROGUE_CA, 0},
};

/* One leaf and the verdict it is expected to get. Validity is given as an
 * offset of notBefore from |now| and a lifetime. */
struct demo_leaf {
    const char *file;
    enum demo_ca_id issuer;
    const char *tenant;
    const char *device; /* NULL for tenant certificates */
    int64_t nb_offset;
    int64_t lifetime;
    bool revoked;
    const char *claim_device; /* device id to claim in the README example */
    const char *verdict;
};

static const struct demo_leaf demo_leaves[] = {
    {"tenant-acme", DEMO_TENANT_CA, "acme", NULL, -DEMO_DAY, DEMO_TENANT_DAYS *DEMO_DAY, false,
     "any", "REQUIRE_PASSWORD (tenant certificate)"},
    {"tenant-acme-reissued", DEMO_TENANT_CA, "acme", NULL, -3600, DEMO_TENANT_DAYS *DEMO_DAY, false,
     "any", "REQUIRE_PASSWORD (second valid tenant certificate during redistribution)"},
    {"tenant-globex", DEMO_TENANT_CA, "globex", NULL, -DEMO_DAY, DEMO_TENANT_DAYS *DEMO_DAY, false,
     "any", "REQUIRE_PASSWORD; claimed as tenant acme: DENY WRONG_TENANT"},
    {"tenant-acme-revoked", DEMO_TENANT_CA, "acme", NULL, -DEMO_DAY, DEMO_TENANT_DAYS *DEMO_DAY,
     true, "any", "DENY REVOKED (listed in tenant-ca.crl)"},
    {"tenant-acme-expired", DEMO_TENANT_CA, "acme", NULL, -400 * DEMO_DAY,
     DEMO_TENANT_DAYS *DEMO_DAY, false, "any", "DENY EXPIRED (expired 5 days ago)"},
    {"tenant-acme-too-long", DEMO_TENANT_CA, "acme", NULL, -DEMO_DAY, 3 * 365 * DEMO_DAY, false,
     "any", "DENY VALIDITY_TOO_LONG (3 years > 396 days)"},
    {"device-acme-dev1", DEMO_DEVICE_ISSUING, "acme", "dev-001", -DEMO_DAY,
     DEMO_DEVICE_DAYS *DEMO_DAY, false, "dev-001",
     "ALLOW (acme: device certificate skips the password); other device: DENY DEVICE_MISMATCH"},
    {"device-globex-dev2", DEMO_DEVICE_ISSUING, "globex", "dev-002", -DEMO_DAY,
     DEMO_DEVICE_DAYS *DEMO_DAY, false, "dev-002",
     "REQUIRE_PASSWORD (globex requires the password)"},
    {"device-acme-revoked", DEMO_DEVICE_ISSUING, "acme", "dev-003", -DEMO_DAY,
     DEMO_DEVICE_DAYS *DEMO_DAY, true, "dev-003", "DENY REVOKED (listed in device-issuing-ca.crl)"},
    {"device-acme-expired", DEMO_DEVICE_ISSUING, "acme", "dev-004",
     -(int64_t)(DEMO_DEVICE_DAYS + 10) * DEMO_DAY, DEMO_DEVICE_DAYS *DEMO_DAY, false, "dev-004",
     "DENY EXPIRED (expired 10 days ago)"},
    {"rogue-client", DEMO_ROGUE_CA, "acme", NULL, -DEMO_DAY, DEMO_TENANT_DAYS *DEMO_DAY, false,
     "any", "DENY UNTRUSTED_ISSUER (issued by the untrusted Rogue CA)"},
};
#define DEMO_N_LEAVES (sizeof(demo_leaves) / sizeof(demo_leaves[0]))

/* Everything generated in one run; freed by demo_state_clear. */
struct demo_state {
    const char *dir;
    int64_t now;
    EVP_PKEY *ca_key[DEMO_N_CAS];
    X509 *ca_cert[DEMO_N_CAS];
    uint64_t leaf_serial[DEMO_N_LEAVES];
    char *err;
    size_t errlen;
};

static void demo_state_clear(struct demo_state *st)
{
    for (int i = 0; i < DEMO_N_CAS; i++) {
        EVP_PKEY_free(st->ca_key[i]);
        st->ca_key[i] = NULL;
        X509_free(st->ca_cert[i]);
        st->ca_cert[i] = NULL;
    }
}

static int demo_fail(struct demo_state *st, const char *what)
{
    snprintf(st->err, st->errlen, "%s", what);
    return -1;
}

/* demo_path joins dir, base and suffix into |buf|; -1 when it does not fit. */
static int demo_path(struct demo_state *st, char *buf, size_t len, const char *base,
                     const char *suffix)
{
    int n = snprintf(buf, len, "%s/%s%s", st->dir, base, suffix);

    if (n < 0 || (size_t)n >= len)
        return demo_fail(st, "demo-pki: path too long");
    return 0;
}

/* demo_serial returns a random positive 63-bit serial: the CRL writer takes
 * uint64_t serials and 63 random bits are plenty for a demo. */
static uint64_t demo_serial(void)
{
    uint64_t s = 0;

    while (s == 0) {
        RAND_bytes((uint8_t *)&s, sizeof(s));
        s &= INT64_MAX;
    }
    return s;
}

/* demo_mkdirs creates |dir| and its missing parents (like mkdir -p). */
static int demo_mkdirs(struct demo_state *st, const char *dir)
{
    char buf[DEMO_PATH_MAX];
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof(buf))
        return demo_fail(st, "demo-pki: bad directory name");
    memcpy(buf, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            snprintf(st->err, st->errlen, "%s: cannot create directory: %s", buf, strerror(errno));
            return -1;
        }
        buf[i] = dir[i];
    }
    return 0;
}

static int demo_write_key(struct demo_state *st, const char *base, EVP_PKEY *key)
{
    char path[DEMO_PATH_MAX];

    if (demo_path(st, path, sizeof(path), base, ".key") != 0)
        return -1;
    return pki_write_key_pem(path, key, st->err, st->errlen);
}

static int demo_make_ca(struct demo_state *st, enum demo_ca_id id)
{
    const struct demo_ca *ca = &demo_cas[id];
    struct pki_cert_spec spec = {
        .cn = ca->cn,
        .o = id == DEMO_TENANT_CA  ? "certval Demo"
             : id == DEMO_ROGUE_CA ? "Rogue"
                                   : "Demo Public",
        .not_before = st->now - DEMO_DAY,
        .not_after = st->now - DEMO_DAY + (int64_t)DEMO_CA_DAYS * DEMO_DAY,
        .is_ca = true,
        .path_len = ca->path_len,
        .key_usage = PKI_KU_KEY_CERT_SIGN | PKI_KU_CRL_SIGN | PKI_KU_DIGITAL_SIGNATURE,
    };
    char path[DEMO_PATH_MAX];
    bool root = ca->parent == id;

    st->ca_key[id] = pki_key_new(PKI_KEY_P256);
    if (st->ca_key[id] == NULL)
        return demo_fail(st, "demo-pki: key generation failed");
    st->ca_cert[id] = pki_issue(&spec, st->ca_key[id], root ? NULL : st->ca_cert[ca->parent],
                                st->ca_key[ca->parent]);
    if (st->ca_cert[id] == NULL)
        return demo_fail(st, "demo-pki: cannot issue a CA certificate");
    if (demo_path(st, path, sizeof(path), ca->file, ".pem") != 0 ||
        pki_write_cert_pem(path, st->ca_cert[id], false, st->err, st->errlen) != 0)
        return -1;
    return demo_write_key(st, ca->file, st->ca_key[id]);
}

/* demo_write_leaf writes <file>.pem, <file>.der, <file>-chain.pem (leaf,
 * then the intermediate when the issuer is not a root) and <file>.key. */
static int demo_write_leaf(struct demo_state *st, const struct demo_leaf *l, X509 *cert,
                           EVP_PKEY *key)
{
    char path[DEMO_PATH_MAX];
    const struct demo_ca *ca = &demo_cas[l->issuer];

    if (demo_path(st, path, sizeof(path), l->file, ".pem") != 0 ||
        pki_write_cert_pem(path, cert, false, st->err, st->errlen) != 0)
        return -1;
    if (demo_path(st, path, sizeof(path), l->file, ".der") != 0 ||
        pki_write_cert_der(path, cert, st->err, st->errlen) != 0)
        return -1;
    if (demo_path(st, path, sizeof(path), l->file, "-chain.pem") != 0 ||
        pki_write_cert_pem(path, cert, false, st->err, st->errlen) != 0)
        return -1;
    if (ca->parent != l->issuer &&
        pki_write_cert_pem(path, st->ca_cert[l->issuer], true, st->err, st->errlen) != 0)
        return -1;
    return demo_write_key(st, l->file, key);
}

static int demo_make_leaf(struct demo_state *st, size_t i)
{
    const struct demo_leaf *l = &demo_leaves[i];
    char tenant_uri[128], device_uri[128], cn[128];
    const char *uris[2] = {tenant_uri, device_uri};
    struct pki_cert_spec spec = {
        .cn = cn,
        .o = l->tenant,
        .serial = demo_serial(),
        .not_before = st->now + l->nb_offset,
        .not_after = st->now + l->nb_offset + l->lifetime,
        .path_len = -1,
        .key_usage = PKI_KU_DIGITAL_SIGNATURE,
        .eku = DEMO_EKU_CLIENT,
        .san_uris = uris,
        .n_san_uris = l->device != NULL ? 2 : 1,
    };
    EVP_PKEY *key = pki_key_new(PKI_KEY_P256);
    X509 *cert = NULL;
    int rc = -1;

    snprintf(tenant_uri, sizeof(tenant_uri), "%s%s", DEMO_TENANT_URI, l->tenant);
    snprintf(device_uri, sizeof(device_uri), "%s%s", DEMO_DEVICE_URI, l->device ? l->device : "");
    /* A device certificate's CN is its device id; a tenant certificate's
     * names the tenant for humans (the profile reads the SAN URI). */
    if (l->device != NULL)
        snprintf(cn, sizeof(cn), "%s", l->device);
    else
        snprintf(cn, sizeof(cn), "tenant %s", l->tenant);
    st->leaf_serial[i] = spec.serial;
    if (key == NULL) {
        demo_fail(st, "demo-pki: key generation failed");
        goto err;
    }
    cert = pki_issue(&spec, key, st->ca_cert[l->issuer], st->ca_key[l->issuer]);
    if (cert == NULL) {
        demo_fail(st, "demo-pki: cannot issue a leaf certificate");
        goto err;
    }
    rc = demo_write_leaf(st, l, cert, key);
err:
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

/* demo_write_crl writes <CA file>.crl listing the revoked leaves of |ca|. */
static int demo_write_crl(struct demo_state *st, enum demo_ca_id ca)
{
    uint64_t serials[DEMO_N_LEAVES];
    size_t n = 0;
    char path[DEMO_PATH_MAX];
    X509_CRL *crl;
    int rc = -1;

    for (size_t i = 0; i < DEMO_N_LEAVES; i++) {
        if (demo_leaves[i].issuer == ca && demo_leaves[i].revoked)
            serials[n++] = st->leaf_serial[i];
    }
    /* cRLNumber from the clock: a re-run publishes a newer CRL. */
    crl = pki_crl_new(st->ca_cert[ca], st->ca_key[ca], serials, n, st->now - 3600,
                      st->now + 7 * DEMO_DAY, (uint64_t)st->now);
    if (crl == NULL)
        return demo_fail(st, "demo-pki: cannot build a CRL");
    if (demo_path(st, path, sizeof(path), demo_cas[ca].file, ".crl") == 0)
        rc = pki_write_crl_der(path, crl, st->err, st->errlen);
    X509_CRL_free(crl);
    return rc;
}

static int demo_write_malformed(struct demo_state *st)
{
    /* A SEQUENCE header claiming 65535 bytes, then text: a parser must
     * refuse it without reading past the end. */
    static const char garbage[] = "\x30\x82\xff\xff"
                                  "this is not a certificate";
    char path[DEMO_PATH_MAX];
    FILE *fp;
    int ok;

    if (demo_path(st, path, sizeof(path), "malformed", ".der") != 0)
        return -1;
    fp = fopen(path, "wb");
    if (fp == NULL) {
        snprintf(st->err, st->errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    ok = fwrite(garbage, 1, sizeof(garbage) - 1, fp) == sizeof(garbage) - 1;
    if (fclose(fp) != 0 || !ok)
        return demo_fail(st, "demo-pki: cannot write malformed.der");
    return 0;
}

static const char demo_yaml_fmt[] =
    "# certval demo configuration, written by `certvalctl demo-pki`.\n"
    "# Relative paths are resolved against this file's folder.\n"
    "listen:\n"
    "  tcp: [\"%s\"]\n"
    "shutdown:\n"
    "  drain_grace_seconds: 5\n"
    "trust:\n"
    "  anchors: [tenant-ca.pem, device-root.pem]\n"
    "  intermediates: [device-issuing-ca.pem]\n"
    "revocation:\n"
    "  crl_files: [tenant-ca.crl, device-issuing-ca.crl, device-root.crl]\n"
    "state_dir: state\n"
    "profiles:\n"
    "  - name: tenant\n"
    "    kind: tenant\n"
    "    issuers: [tenant-ca.pem]\n"
    "    tenant_id: {from: san_uri, prefix: \"" DEMO_TENANT_URI "\"}\n"
    "    revocation: leaf\n"
    "  - name: device\n"
    "    kind: device\n"
    "    issuers: [device-issuing-ca.pem]\n"
    "    tenant_id: {from: san_uri, prefix: \"" DEMO_TENANT_URI "\"}\n"
    "    device_id: {from: san_uri, prefix: \"" DEMO_DEVICE_URI "\"}\n"
    "    revocation: all\n"
    "tenants:\n"
    "  - id: acme\n"
    "    device_certificate_skips_password: true\n"
    "    require_device_binding: true\n"
    "  - id: globex\n"
    "    device_certificate_skips_password: false\n"
    "    require_device_binding: true\n";

static int demo_write_yaml(struct demo_state *st, const char *listen)
{
    char path[DEMO_PATH_MAX];
    FILE *fp;
    int ok;

    /* The address goes into a double-quoted YAML scalar. */
    if (strpbrk(listen, "\"\\\n\r") != NULL || listen[0] == '\0')
        return demo_fail(st, "demo-pki: bad listen address");
    if (demo_path(st, path, sizeof(path), "state", "") != 0 || demo_mkdirs(st, path) != 0)
        return -1;
    if (demo_path(st, path, sizeof(path), "certval", ".yaml") != 0)
        return -1;
    fp = fopen(path, "w");
    if (fp == NULL) {
        snprintf(st->err, st->errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    ok = fprintf(fp, demo_yaml_fmt, listen) > 0;
    if (fclose(fp) != 0 || !ok)
        return demo_fail(st, "demo-pki: cannot write certval.yaml");
    return 0;
}

/* demo_serial_hex writes |serial| as its DER content octets in hex, two
 * digits per octet: the form verdicts, the audit log and certvalctl print
 * (a leading zero nibble is kept). */
static void demo_serial_hex(char out[19], uint64_t serial)
{
    int first = 7;

    while (first > 0 && ((serial >> (8 * first)) & 0xff) == 0)
        first--;
    /* DER INTEGER: a positive value whose top bit is set gets a 00 octet. */
    size_t o = ((serial >> (8 * first)) & 0x80) ? (size_t)snprintf(out, 19, "00") : 0;
    for (int i = first; i >= 0 && o + 2 < 19; i--)
        o += (size_t)snprintf(out + o, 19 - o, "%02x", (unsigned)((serial >> (8 * i)) & 0xff));
}

static void demo_readme_leaves(FILE *fp, const struct demo_state *st)
{
    fprintf(fp, "%-30s %-8s %-8s %-18s %s\n", "chain file", "tenant", "device", "serial (hex)",
            "expected verdict");
    for (size_t i = 0; i < DEMO_N_LEAVES; i++) {
        const struct demo_leaf *l = &demo_leaves[i];
        char chain[64], serial[19];

        snprintf(chain, sizeof(chain), "%s-chain.pem", l->file);
        demo_serial_hex(serial, st->leaf_serial[i]);
        fprintf(fp, "%-30s %-8s %-8s %-18s %s\n", chain, l->tenant, l->claim_device, serial,
                l->verdict);
    }
    fprintf(fp, "%-30s %-8s %-8s %-18s %s\n", "malformed.der", "acme", "any", "-",
            "DENY MALFORMED (not DER; send it with certvalctl validate --raw)");
}

static int demo_write_readme(struct demo_state *st, const char *listen)
{
    char path[DEMO_PATH_MAX];
    FILE *fp;

    if (demo_path(st, path, sizeof(path), "README", ".txt") != 0)
        return -1;
    fp = fopen(path, "w");
    if (fp == NULL) {
        snprintf(st->err, st->errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    fprintf(fp,
            "certval demo PKI, generated for validation time %lld (Unix seconds).\n"
            "Start: certvald --config certval.yaml   (listens on %s)\n\n"
            "Trust anchors:  tenant-ca.pem (certval Demo Tenant CA, the service's own CA),\n"
            "                device-root.pem (Demo Public Root CA)\n"
            "Intermediate:   device-issuing-ca.pem (Demo Device Issuing CA)\n"
            "Not trusted:    rogue-ca.pem (Rogue CA)\n"
            "CRLs (DER):     tenant-ca.crl, device-issuing-ca.crl, device-root.crl (empty);\n"
            "                nextUpdate = generation time + 7 days\n"
            "Keys:           <name>.key (PKCS#8 PEM, mode 0600); tenant-ca.key re-issues\n"
            "                tenant certificates\n"
            "Each leaf:      <name>.pem, <name>.der, <name>-chain.pem (leaf + intermediates)\n\n"
            "Tenants: acme (device certificate skips password), globex (password always)\n\n",
            (long long)st->now, listen);
    demo_readme_leaves(fp, st);
    fprintf(fp, "\nA leaf presented without its intermediate still validates: certval.yaml\n"
                "lists device-issuing-ca.pem under trust.intermediates.\n");
    if (fclose(fp) != 0)
        return demo_fail(st, "demo-pki: cannot write README.txt");
    return 0;
}

static int demo_generate_all(struct demo_state *st, const char *listen)
{
    if (demo_mkdirs(st, st->dir) != 0)
        return -1;
    /* Parents before children: the table order is root first. */
    for (int i = 0; i < DEMO_N_CAS; i++) {
        if (demo_make_ca(st, (enum demo_ca_id)i) != 0)
            return -1;
    }
    for (size_t i = 0; i < DEMO_N_LEAVES; i++) {
        if (demo_make_leaf(st, i) != 0)
            return -1;
    }
    if (demo_write_crl(st, DEMO_TENANT_CA) != 0 || demo_write_crl(st, DEMO_DEVICE_ISSUING) != 0 ||
        demo_write_crl(st, DEMO_DEVICE_ROOT) != 0)
        return -1;
    if (demo_write_malformed(st) != 0 || demo_write_yaml(st, listen) != 0)
        return -1;
    return demo_write_readme(st, listen);
}

int demo_pki_generate(const char *dir, int64_t now, const char *listen, char *err, size_t errlen)
{
    char dummy[1];
    struct demo_state st = {
        .dir = dir,
        .now = now,
        .err = err != NULL && errlen > 0 ? err : dummy,
        .errlen = err != NULL && errlen > 0 ? errlen : sizeof(dummy),
    };
    int rc;

    st.err[0] = '\0';
    if (dir == NULL || dir[0] == '\0')
        return demo_fail(&st, "demo-pki: no directory given");
    rc = demo_generate_all(&st, listen != NULL ? listen : "127.0.0.1:50051");
    demo_state_clear(&st);
    return rc;
}
