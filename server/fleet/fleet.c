/* Fleet-wide revocation through etcd (fleet.h, docs/fleet.md).
 *
 * Who does what: the follower thread is the only one that changes the
 * local revocation state from the fleet (deny list, pushed CRLs, the
 * tracked CRL generations, STATE/fleet.txt). The admin thread writes to
 * etcd only and waits on |cond| until the follower has applied its write.
 * The counters shown by status and metrics are atomics or read under
 * |lock|. */
#include "fleet.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "crl_cache.h"
#include "crl_fetch_http.h"
#include "deny_list.h"
#include "etcd.h"
#include "hex.h"
#include "rcu_reader.h"
#include "serial.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"

#define FLEET_CHUNK_BYTES (1u << 20) /* under etcd's default 1.5 MiB request limit */
#define FLEET_MAX_CRL_BYTES (256u << 20)
#define FLEET_KEY_MAX 512
#define FLEET_PROGRESS_MS 1000 /* progress requests on the watch */
#define FLEET_SILENCE_MS 4000  /* no answer for this long: the stream is dead */
#define FLEET_APPLY_WAIT_MS 2000
#define FLEET_ISSUER_MAX 256

/* A pushed CRL the follower applied (or refused) from the fleet. */
struct tracked_crl {
    char id[65];  /* issuer name SHA-256, hex */
    char gen[33]; /* manifest generation */
    char issuer[FLEET_ISSUER_MAX];
    bool refused;
};

struct fleet {
    struct fleet_config cfg; /* a copy */
    struct etcd_client *etcd;
    struct crl_cache *crls;
    struct deny_list *deny;
    char *state_dir;
    void (*ready_hook)(void *arg);
    void *ready_arg;
    pthread_t thread;
    bool thread_started;
    _Atomic bool stop;
    int64_t started_at;

    pthread_mutex_t lock; /* protects what follows, and |cond| */
    pthread_cond_t cond;  /* applied_revision moved, or stop */
    int64_t applied_revision;
    size_t withdraw_restored; /* of the last withdrawal applied */
    int64_t withdraw_revision;
    char detail[256];

    _Atomic bool connected, first_read_done, local_copy;
    _Atomic int64_t store_revision, disconnected_since;
    _Atomic uint64_t deny_entries, n_crls, rereads, reconnects, crls_refused;

    /* follower thread only */
    struct tracked_crl *tracked;
    size_t n_tracked, cap_tracked;
    bool need_full_read;
    bool rereading; /* the full read pending is a re-read after compaction */
};

static struct fleet *g_fleet;

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void hex_of(char *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* from_hex decodes exactly |n| hex digits into |out| (n/2 bytes), with the
 * one hex decoder (cache/hex.h). */
static int from_hex(uint8_t *out, const char *s, size_t n)
{
    size_t got = 0;

    return n % 2 == 0 && hex_decode(out, n / 2, &got, s, n) == 0 && got == n / 2 ? 0 : -1;
}

static void set_detail(struct fleet *f, const char *what, const char *arg)
{
    pthread_mutex_lock(&f->lock);
    snprintf(f->detail, sizeof(f->detail), "%s%s", what, arg);
    pthread_mutex_unlock(&f->lock);
}

/* ---- keys ---- */

static int key_of(char *out, size_t cap, const struct fleet *f, const char *what, const char *rest)
{
    int n = snprintf(out, cap, "%s%s%s", f->cfg.prefix, what, rest);

    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* A deny entry in canonical form: the key (issuer + minimal serial, or
 * leaf) and the packed value. */
struct deny_key {
    bool leaf;
    uint8_t id[32];
    uint8_t serial[DENY_LIST_SERIAL_MAX];
    size_t serial_len;
};

static int deny_key_string(char *out, size_t cap, const struct fleet *f, const struct deny_key *k)
{
    char idhex[65], serhex[2 * DENY_LIST_SERIAL_MAX + 1], rest[256];

    hex_of(idhex, k->id, 32);
    if (k->leaf) {
        snprintf(rest, sizeof(rest), "leaf/%s", idhex);
    } else {
        hex_of(serhex, k->serial, k->serial_len);
        snprintf(rest, sizeof(rest), "serial/%s/%s", idhex, serhex);
    }
    return key_of(out, cap, f, "s/deny/", rest);
}

/* Parses "leaf/HEX" or "serial/HEX/SERIALHEX" (the part after s/deny/). */
static int deny_key_parse(struct deny_key *k, const char *s)
{
    memset(k, 0, sizeof(*k));
    if (strncmp(s, "leaf/", 5) == 0 && strlen(s + 5) == 64) {
        k->leaf = true;
        return from_hex(k->id, s + 5, 64);
    }
    if (strncmp(s, "serial/", 7) == 0 && strlen(s + 7) > 65 && s[7 + 64] == '/') {
        const char *ser = s + 7 + 65;
        size_t n = strlen(ser);

        if (n == 0 || n % 2 != 0 || n / 2 > DENY_LIST_SERIAL_MAX ||
            from_hex(k->id, s + 7, 64) != 0 || from_hex(k->serial, ser, n) != 0)
            return -1;
        k->serial_len = n / 2;
        return 0;
    }
    return -1;
}

/* Minimal INTEGER content octets, as deny_list keeps them (cache/serial.h). */
static void deny_key_minimal(struct deny_key *k)
{
    const uint8_t *p = k->serial;
    size_t n = k->serial_len;

    serial_minimal(&p, &n);
    memmove(k->serial, p, n);
    k->serial_len = n;
}

/* deny_key_from_entry reads the selectors of an admin DenyEntry (the same
 * rules as admin.c: leaf_sha256, or an issuer and serial_hex). */
static int deny_key_from_entry(struct deny_key *k, const Certval__V1__DenyEntry *e, char *msg,
                               size_t cap)
{
    bool has_serial = e->issuer_certificate.len > 0 || e->issuer_name_sha256.len > 0 ||
                      (e->serial_hex != NULL && e->serial_hex[0] != '\0');
    size_t n;

    memset(k, 0, sizeof(*k));
    if (e->leaf_sha256.len > 0 && has_serial) {
        snprintf(msg, cap, "give either leaf_sha256 or an issuer and serial_hex, not both");
        return -1;
    }
    if (e->leaf_sha256.len == 32) {
        k->leaf = true;
        memcpy(k->id, e->leaf_sha256.data, 32);
        return 0;
    }
    if (e->issuer_name_sha256.len == 32) {
        memcpy(k->id, e->issuer_name_sha256.data, 32);
    } else if (e->issuer_certificate.len > 0) {
        const uint8_t *p = e->issuer_certificate.data;
        X509 *x = d2i_X509(NULL, &p, (long)e->issuer_certificate.len);

        if (x == NULL || p != e->issuer_certificate.data + e->issuer_certificate.len) {
            X509_free(x);
            ERR_clear_error();
            goto bad;
        }
        deny_list_issuer_key(k->id, X509_get_subject_name(x));
        X509_free(x);
    } else {
        goto bad;
    }
    n = e->serial_hex != NULL ? strlen(e->serial_hex) : 0;
    if (n == 0 || (n + 1) / 2 > DENY_LIST_SERIAL_MAX)
        goto bad;
    {
        char buf[2 * DENY_LIST_SERIAL_MAX + 2];

        /* An odd count of digits gets a leading zero, as admin.c reads it. */
        snprintf(buf, sizeof(buf), "%s%s", n % 2 ? "0" : "", e->serial_hex);
        if (from_hex(k->serial, buf, strlen(buf)) != 0)
            goto bad;
        k->serial_len = strlen(buf) / 2;
    }
    deny_key_minimal(k);
    return 0;
bad:
    snprintf(msg, cap,
             "give leaf_sha256 (32 bytes), or an issuer (certificate DER or name SHA-256) and "
             "serial_hex");
    return -1;
}

/* ---- applying to the local state (follower thread) ---- */

static int apply_deny_put(struct fleet *f, const struct deny_key *k, const uint8_t *val, size_t len)
{
    Certval__V1__DenyEntry *e = certval__v1__deny_entry__unpack(NULL, len, val);
    char err[300];
    int64_t now = now_s();
    int rc;

    if (e == NULL) {
        log_error("fleet: an unreadable deny entry in etcd was skipped");
        return -1;
    }
    if (e->expires_unix != 0 && e->expires_unix <= now) {
        /* Lapsed already (its lease will delete it): never in force. */
        rc = k->leaf ? deny_list_remove_leaf(f->deny, k->id, err, sizeof(err))
                     : deny_list_remove_serial(f->deny, k->id, k->serial, k->serial_len, err,
                                               sizeof(err));
        certval__v1__deny_entry__free_unpacked(e, NULL);
        return 0;
    }
    err[0] = '\0';
    rc = k->leaf
             ? deny_list_add_leaf(f->deny, k->id, e->reason, now, e->expires_unix, err, sizeof(err))
             : deny_list_add_serial(f->deny, k->id, k->serial, k->serial_len, e->reason, now,
                                    e->expires_unix, err, sizeof(err));
    certval__v1__deny_entry__free_unpacked(e, NULL);
    if (rc == DENY_LIST_ESTORE)
        log_error("fleet: deny entry in force but NOT kept in the state folder: %s", err);
    else if (rc < 0)
        log_error("fleet: deny entry from etcd refused: %s", err);
    return rc == DENY_LIST_ESTORE ? 0 : rc;
}

static void apply_deny_delete(struct fleet *f, const struct deny_key *k)
{
    char err[300];
    int rc;

    err[0] = '\0';
    rc = k->leaf
             ? deny_list_remove_leaf(f->deny, k->id, err, sizeof(err))
             : deny_list_remove_serial(f->deny, k->id, k->serial, k->serial_len, err, sizeof(err));
    if (rc == DENY_LIST_ESTORE)
        log_error("fleet: deny entry removal could not be stored: %s", err);
}

/* ---- STATE/fleet.txt ---- */

static struct tracked_crl *tracked_find(struct fleet *f, const char *id)
{
    for (size_t i = 0; i < f->n_tracked; i++)
        if (strcmp(f->tracked[i].id, id) == 0)
            return &f->tracked[i];
    return NULL;
}

static struct tracked_crl *tracked_add(struct fleet *f, const char *id)
{
    struct tracked_crl *t = tracked_find(f, id);

    if (t != NULL)
        return t;
    if (f->n_tracked == f->cap_tracked) {
        size_t cap = f->cap_tracked ? 2 * f->cap_tracked : 16;
        struct tracked_crl *v = realloc(f->tracked, cap * sizeof(*v));

        if (v == NULL)
            return NULL;
        f->tracked = v;
        f->cap_tracked = cap;
    }
    t = &f->tracked[f->n_tracked++];
    memset(t, 0, sizeof(*t));
    snprintf(t->id, sizeof(t->id), "%s", id);
    return t;
}

static void tracked_remove(struct fleet *f, const char *id)
{
    struct tracked_crl *t = tracked_find(f, id);

    if (t == NULL)
        return;
    *t = f->tracked[f->n_tracked - 1];
    f->n_tracked--;
}

/* state_save writes STATE/fleet.txt atomically: the applied revision and
 * the CRL generations, so a restart knows what it already has. */
static void state_save(struct fleet *f)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8], err[512];
    FILE *fp;
    int64_t rev;

    if (f->state_dir == NULL)
        return;
    /* The deny list first: fleet.txt must never name a revision whose
     * entries are not on disk. */
    snprintf(path, sizeof(path), "%s/deny-list.txt", f->state_dir);
    if (deny_list_save(f->deny, path, err, sizeof(err)) < 0) {
        log_warn("fleet: cannot mirror the deny list in the state folder: %s", err);
        return;
    }
    pthread_mutex_lock(&f->lock);
    rev = f->applied_revision;
    pthread_mutex_unlock(&f->lock);
    snprintf(path, sizeof(path), "%s/fleet.txt", f->state_dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fp = fopen(tmp, "w");
    if (fp == NULL)
        goto fail;
    fprintf(fp, "certval-fleet 1\nrevision %lld\n", (long long)rev);
    for (size_t i = 0; i < f->n_tracked; i++)
        fprintf(fp, "crl %s %s %d %s\n", f->tracked[i].id, f->tracked[i].gen,
                f->tracked[i].refused ? 1 : 0, f->tracked[i].issuer);
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
        fclose(fp);
        goto fail;
    }
    if (fclose(fp) != 0 || rename(tmp, path) != 0)
        goto fail;
    return;
fail:
    log_warn("fleet: cannot write %s: %s", path, strerror(errno));
}

/* state_load reads STATE/fleet.txt (missing: nothing known). */
static void state_load(struct fleet *f)
{
    char path[PATH_MAX], line[600];
    FILE *fp;

    if (f->state_dir == NULL)
        return;
    snprintf(path, sizeof(path), "%s/fleet.txt", f->state_dir);
    fp = fopen(path, "r");
    if (fp == NULL)
        return;
    if (fgets(line, sizeof(line), fp) == NULL || strcmp(line, "certval-fleet 1\n") != 0) {
        log_warn("fleet: %s is not a fleet state file: ignored", path);
        fclose(fp);
        return;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        char id[65], gen[33];
        int refused, off = 0;
        long long rev;

        line[strcspn(line, "\n")] = '\0';
        if (sscanf(line, "revision %lld", &rev) == 1) {
            f->applied_revision = rev;
        } else if (sscanf(line, "crl %64s %32s %d %n", id, gen, &refused, &off) == 3 && off > 0) {
            struct tracked_crl *t = tracked_add(f, id);

            if (t != NULL) {
                snprintf(t->gen, sizeof(t->gen), "%s", gen);
                snprintf(t->issuer, sizeof(t->issuer), "%s", line + off);
                t->refused = refused != 0;
            }
        }
    }
    fclose(fp);
    atomic_store(&f->n_crls, f->n_tracked);
}

/* ---- CRL manifests ---- */

struct manifest {
    char gen[33];
    uint64_t size, chunks, number;
    uint8_t sha256[32];
    bool force;
    char issuer[FLEET_ISSUER_MAX];
};

static int manifest_parse(struct manifest *m, const uint8_t *val, size_t len)
{
    char buf[1024], *line, *save = NULL;
    unsigned seen = 0;

    memset(m, 0, sizeof(*m));
    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, val, len);
    buf[len] = '\0';
    line = strtok_r(buf, "\n", &save);
    if (line == NULL || strcmp(line, "certval-fleet-crl 1") != 0)
        return -1;
    while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
        char *v = strchr(line, ' ');

        if (v == NULL)
            return -1;
        *v++ = '\0';
        if (strcmp(line, "gen") == 0 && strlen(v) > 0 && strlen(v) < sizeof(m->gen)) {
            snprintf(m->gen, sizeof(m->gen), "%s", v);
            seen |= 1;
        } else if (strcmp(line, "size") == 0) {
            m->size = strtoull(v, NULL, 10);
            seen |= 2;
        } else if (strcmp(line, "chunks") == 0) {
            m->chunks = strtoull(v, NULL, 10);
            seen |= 4;
        } else if (strcmp(line, "sha256") == 0 && strlen(v) == 64 &&
                   from_hex(m->sha256, v, 64) == 0) {
            seen |= 8;
        } else if (strcmp(line, "number") == 0) {
            m->number = strtoull(v, NULL, 10);
        } else if (strcmp(line, "force") == 0) {
            m->force = strcmp(v, "1") == 0;
        } else if (strcmp(line, "issuer") == 0) {
            snprintf(m->issuer, sizeof(m->issuer), "%s", v);
            seen |= 16;
        }
    }
    if (seen != 31 || m->size == 0 || m->size > FLEET_MAX_CRL_BYTES ||
        m->chunks != (m->size + FLEET_CHUNK_BYTES - 1) / FLEET_CHUNK_BYTES)
        return -1;
    return 0;
}

static void chunk_key(char *out, size_t cap, const struct fleet *f, const char *id, const char *gen,
                      uint64_t i)
{
    char rest[160];

    snprintf(rest, sizeof(rest), "%s/%s/%06llu", id, gen, (unsigned long long)i);
    key_of(out, cap, f, "c/", rest);
}

/* read_crl reads the chunks of |m| at |revision| and checks them against
 * the manifest. ETCD_OK with |*out| (malloc'd), ETCD_ECOMPACTED, other
 * ETCD_E* codes, or ETCD_EERROR for a mismatch (|err| says which). */
static int read_crl(struct fleet *f, uint8_t **out, const char *id, const struct manifest *m,
                    int64_t revision, char *err, size_t errlen)
{
    uint8_t *buf = malloc(m->size), h[32];
    size_t at = 0;
    int rc = ETCD_OK;

    *out = NULL;
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        return ETCD_ENOMEM;
    }
    for (uint64_t i = 0; i < m->chunks && rc == ETCD_OK; i++) {
        char key[FLEET_KEY_MAX];
        struct etcd_kvs k;

        chunk_key(key, sizeof(key), f, id, m->gen, i);
        rc = etcd_range(f->etcd, &k, key, strlen(key), NULL, 0, revision, 0, err, errlen);
        if (rc != ETCD_OK)
            break;
        if (k.n != 1 || k.v[0].value_len > m->size - at) {
            snprintf(err, errlen, "chunk %llu of %s is missing or too long", (unsigned long long)i,
                     m->issuer);
            rc = ETCD_EERROR;
        } else {
            memcpy(buf + at, k.v[0].value, k.v[0].value_len);
            at += k.v[0].value_len;
        }
        etcd_kvs_clear(&k);
    }
    if (rc == ETCD_OK && at != m->size) {
        snprintf(err, errlen, "the chunks of %s hold %zu bytes, the manifest says %llu", m->issuer,
                 at, (unsigned long long)m->size);
        rc = ETCD_EERROR;
    }
    if (rc == ETCD_OK) {
        SHA256(buf, at, h);
        if (CRYPTO_memcmp(h, m->sha256, 32) != 0) {
            snprintf(err, errlen, "the chunks of %s do not match the manifest's SHA-256",
                     m->issuer);
            rc = ETCD_EERROR;
        }
    }
    if (rc != ETCD_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    return ETCD_OK;
}

/* apply_manifest makes the CRL of manifest |kv| current, read at
 * |revision|. Returns ETCD_OK (applied, or refused by the cache and
 * recorded), ETCD_ECOMPACTED (re-read needed) or another failure (retry
 * after reconnecting). */
static int apply_manifest(struct fleet *f, const char *id, const uint8_t *val, size_t len,
                          int64_t revision)
{
    struct manifest m;
    struct tracked_crl *t = tracked_find(f, id);
    char err[512], issuer[FLEET_ISSUER_MAX];
    uint64_t number = 0, entries = 0;
    uint8_t *der = NULL;
    int rc;

    if (manifest_parse(&m, val, len) < 0) {
        log_error("fleet: unreadable CRL manifest for issuer id %s: skipped", id);
        return ETCD_OK;
    }
    if (t != NULL && strcmp(t->gen, m.gen) == 0)
        return ETCD_OK; /* already applied (restart, re-read) */
    rc = read_crl(f, &der, id, &m, revision, err, sizeof(err));
    if (rc == ETCD_EERROR) {
        /* A manifest whose chunks do not match is never applied. */
        log_error("fleet: CRL for %s NOT applied: %s", m.issuer, err);
        atomic_fetch_add(&f->crls_refused, 1);
        return ETCD_OK;
    }
    if (rc != ETCD_OK) {
        log_warn("fleet: cannot read the CRL of %s at revision %lld: %s", m.issuer,
                 (long long)revision, err);
        return rc;
    }
    rc = reload_crl_push_admin(f->crls, der, m.size, m.force, issuer, sizeof(issuer), &number, &entries,
                        err, sizeof(err));
    free(der);
    t = tracked_add(f, id);
    if (t != NULL) {
        snprintf(t->gen, sizeof(t->gen), "%s", m.gen);
        snprintf(t->issuer, sizeof(t->issuer), "%s", m.issuer);
        t->refused = rc < 0;
    }
    if (rc < 0) {
        atomic_fetch_add(&f->crls_refused, 1);
        log_error("fleet: CRL of %s (number %llu) from etcd refused here: %s", m.issuer,
                  (unsigned long long)m.number, err);
    } else {
        log_info("fleet: CRL of %s applied: number %llu, %llu entries (revision %lld)", issuer,
                 (unsigned long long)number, (unsigned long long)entries, (long long)revision);
    }
    atomic_store(&f->n_crls, f->n_tracked);
    return ETCD_OK;
}

static void apply_withdraw(struct fleet *f, const char *id, int64_t revision)
{
    struct tracked_crl *t = tracked_find(f, id);
    char err[512];
    size_t restored = 0;
    int rc;

    if (t == NULL)
        return;
    rc = t->refused ? RELOAD_CRL_PUSH_NOT_FOUND
                    : reload_crl_withdraw(f->crls, t->issuer, &restored, err, sizeof(err));
    if (rc < 0 && rc != RELOAD_CRL_PUSH_NOT_FOUND)
        log_error("fleet: withdrawal of the CRL of %s failed here: %s", t->issuer, err);
    else
        log_info("fleet: pushed CRL of %s withdrawn (revision %lld)", t->issuer,
                 (long long)revision);
    pthread_mutex_lock(&f->lock);
    f->withdraw_restored = restored;
    f->withdraw_revision = revision;
    pthread_mutex_unlock(&f->lock);
    tracked_remove(f, id);
    atomic_store(&f->n_crls, f->n_tracked);
}

/* ---- one key, from a read or an event ---- */

static const char *rel_key(const struct fleet *f, const struct etcd_kv *kv)
{
    size_t p = strlen(f->cfg.prefix);

    if (kv->key_len <= p || memcmp(kv->key, f->cfg.prefix, p) != 0 ||
        memchr(kv->key, 0, kv->key_len) != NULL)
        return NULL;
    return (const char *)kv->key + p;
}

/* apply_key applies one key's put (or delete) at |revision|. */
static int apply_key(struct fleet *f, const struct etcd_kv *kv, bool is_delete, bool existed,
                     int64_t revision)
{
    const char *rel = rel_key(f, kv);
    struct deny_key k;

    if (rel == NULL)
        return ETCD_OK;
    if (strncmp(rel, "s/deny/", 7) == 0) {
        if (deny_key_parse(&k, rel + 7) < 0) {
            log_warn("fleet: key %s is not a deny entry: ignored", rel);
            return ETCD_OK;
        }
        if (is_delete) {
            apply_deny_delete(f, &k);
            if (existed && atomic_load(&f->deny_entries) > 0)
                atomic_fetch_sub(&f->deny_entries, 1);
        } else {
            apply_deny_put(f, &k, kv->value, kv->value_len);
            if (!existed)
                atomic_fetch_add(&f->deny_entries, 1);
        }
        return ETCD_OK;
    }
    if (strncmp(rel, "s/crl/", 6) == 0 && strlen(rel + 6) == 64) {
        if (is_delete) {
            apply_withdraw(f, rel + 6, revision);
            return ETCD_OK;
        }
        return apply_manifest(f, rel + 6, kv->value, kv->value_len, revision);
    }
    return ETCD_OK;
}

static void set_applied(struct fleet *f, int64_t revision)
{
    pthread_mutex_lock(&f->lock);
    if (revision > f->applied_revision)
        f->applied_revision = revision;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
    if (revision > atomic_load(&f->store_revision))
        atomic_store(&f->store_revision, revision);
}

/* ---- the full read ---- */

struct local_keys {
    struct deny_key *v;
    size_t n, cap;
};

static int collect_local_cb(const struct deny_list_entry *e, void *arg)
{
    struct local_keys *l = arg;
    struct deny_key *k;

    if (l->n == l->cap)
        return 1;
    k = &l->v[l->n++];
    memset(k, 0, sizeof(*k));
    k->leaf = e->kind == DENY_LIST_LEAF;
    memcpy(k->id, e->id, 32);
    if (!k->leaf) {
        k->serial_len = e->serial_len;
        memcpy(k->serial, e->serial, e->serial_len);
    }
    return 0;
}

/* key_in: |key| is among |all|'s keys, which etcd returns in key order
 * (binary search: a full read compares every local entry). */
static bool key_in(const struct etcd_kvs *all, const char *key)
{
    size_t n = strlen(key), lo = 0, hi = all->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct etcd_kv *kv = &all->v[mid];
        size_t m = kv->key_len < n ? kv->key_len : n;
        int c = memcmp(kv->key, key, m);

        if (c == 0)
            c = kv->key_len < n ? -1 : kv->key_len > n ? 1 : 0;
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* full_read reads PREFIX s/ at one revision and makes the local state
 * equal to it: entries and CRLs the fleet no longer holds are removed. */
static int full_read(struct fleet *f, char *err, size_t errlen)
{
    char from[FLEET_KEY_MAX];
    uint8_t end[FLEET_KEY_MAX];
    struct etcd_kvs all;
    struct local_keys local;
    size_t elen, deny_n = 0;
    int from_len = key_of(from, sizeof(from), f, "s/", "");
    int rc;

    elen = etcd_prefix_end(end, sizeof(end), from, (size_t)from_len);
    rc = etcd_range(f->etcd, &all, from, (size_t)from_len, end, elen, 0, 0, err, errlen);
    if (rc != ETCD_OK)
        return rc;
    atomic_store(&f->store_revision, all.revision);
    for (size_t i = 0; i < all.n && rc == ETCD_OK; i++) {
        const char *rel = rel_key(f, &all.v[i]);

        if (rel != NULL && strncmp(rel, "s/deny/", 7) == 0)
            deny_n++;
        rc = apply_key(f, &all.v[i], false, true, all.revision);
    }
    if (rc != ETCD_OK) {
        etcd_kvs_clear(&all);
        return rc;
    }
    /* What the fleet no longer holds. */
    memset(&local, 0, sizeof(local));
    local.cap = deny_list_count(f->deny) + 16;
    local.v = calloc(local.cap, sizeof(*local.v));
    if (local.v != NULL) {
        deny_list_foreach(f->deny, collect_local_cb, &local);
        for (size_t i = 0; i < local.n; i++) {
            char key[FLEET_KEY_MAX];

            if (deny_key_string(key, sizeof(key), f, &local.v[i]) > 0 && !key_in(&all, key))
                apply_deny_delete(f, &local.v[i]);
        }
        free(local.v);
    }
    for (size_t i = 0; i < f->n_tracked;) {
        char key[FLEET_KEY_MAX];
        size_t before = f->n_tracked;

        key_of(key, sizeof(key), f, "s/crl/", f->tracked[i].id);
        if (!key_in(&all, key))
            apply_withdraw(f, f->tracked[i].id, all.revision);
        if (f->n_tracked == before)
            i++;
    }
    atomic_store(&f->deny_entries, deny_n);
    pthread_mutex_lock(&f->lock);
    f->applied_revision = all.revision; /* a re-read may go back only if etcd was restored */
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
    etcd_kvs_clear(&all);
    state_save(f);
    return ETCD_OK;
}

/* ---- the follower ---- */

static void mark_connected(struct fleet *f, bool on)
{
    bool was = atomic_exchange(&f->connected, on);

    if (on && !was) {
        atomic_store(&f->disconnected_since, 0);
        set_detail(f, "following etcd", "");
    } else if (!on && was) {
        atomic_store(&f->disconnected_since, now_s());
        atomic_fetch_add(&f->reconnects, 1);
    }
}

/* check_start_timeout falls back to the local copy once start_timeout_ms
 * has passed without a first read. */
static void check_start_timeout(struct fleet *f)
{
    if (atomic_load(&f->first_read_done) || atomic_load(&f->local_copy))
        return;
    if (now_ms() - f->started_at < (int64_t)f->cfg.start_timeout_ms)
        return;
    atomic_store(&f->local_copy, true);
    set_detail(f, "etcd not reached since start: serving the local copy from the state folder", "");
    log_warn("fleet: etcd did not answer within %u ms: SERVING from the local copy (revision "
             "%lld) until it does",
             f->cfg.start_timeout_ms, (long long)f->applied_revision);
    if (f->ready_hook != NULL)
        f->ready_hook(f->ready_arg);
}

/* pause_ms sleeps |ms| in steps, returning early on stop. */
static void pause_ms(struct fleet *f, int64_t ms)
{
    int64_t until = now_ms() + ms;

    while (!atomic_load(&f->stop) && now_ms() < until) {
        int64_t left = until - now_ms();

        usleep((useconds_t)(left > 100 ? 100 : left > 0 ? left : 1) * 1000);
        check_start_timeout(f);
    }
}

/* Exponential backoff with jitter: a random wait in [b/2, b], b doubling
 * up to max_backoff_ms, so pods that lost etcd together do not come back
 * in step. */
static void backoff(struct fleet *f, int64_t *b)
{
    uint32_t r = 0;
    int64_t wait;

    RAND_bytes((uint8_t *)&r, sizeof(r));
    wait = *b / 2 + (int64_t)(r % (uint32_t)(*b / 2 + 1));
    pause_ms(f, wait);
    *b = *b * 2 > (int64_t)f->cfg.max_backoff_ms ? (int64_t)f->cfg.max_backoff_ms : *b * 2;
}

static void first_read_done(struct fleet *f)
{
    if (atomic_exchange(&f->first_read_done, true))
        return;
    if (atomic_exchange(&f->local_copy, false))
        log_info("fleet: etcd reached: the local copy is replaced by the fleet's state");
    if (f->ready_hook != NULL)
        f->ready_hook(f->ready_arg);
}

/* watch_loop follows the watch until it fails, is compacted or stop. */
static int watch_loop(struct fleet *f, struct etcd_watch *w, char *err, size_t errlen)
{
    int64_t last_answer = now_ms(), last_progress = 0;

    while (!atomic_load(&f->stop)) {
        struct etcd_watch_batch b;
        int64_t top = 0;
        int rc;

        if (now_ms() - last_progress >= FLEET_PROGRESS_MS) {
            etcd_watch_request_progress(w);
            last_progress = now_ms();
        }
        rc = etcd_watch_next(w, &b, 250, err, errlen);
        if (rc != ETCD_OK) {
            etcd_watch_batch_clear(&b);
            return rc;
        }
        if (b.n == 0 && !b.progress) {
            if (now_ms() - last_answer > FLEET_SILENCE_MS) {
                snprintf(err, errlen, "etcd stopped answering on the watch");
                return ETCD_EUNAVAILABLE;
            }
            continue;
        }
        last_answer = now_ms();
        if (b.revision > atomic_load(&f->store_revision))
            atomic_store(&f->store_revision, b.revision);
        for (size_t i = 0; i < b.n && rc == ETCD_OK; i++) {
            const struct etcd_event *e = &b.v[i];

            rc = apply_key(f, &e->kv, e->is_delete, e->prev.key_len > 0, e->kv.mod_revision);
            if (rc == ETCD_OK && e->kv.mod_revision > top)
                top = e->kv.mod_revision;
        }
        if (rc == ETCD_OK && b.n > 0) {
            set_applied(f, top);
            state_save(f);
        } else if (rc == ETCD_OK && b.progress) {
            set_applied(f, b.revision);
        }
        etcd_watch_batch_clear(&b);
        if (rc != ETCD_OK)
            return rc;
    }
    return ETCD_OK;
}

static void *follower(void *arg)
{
    struct fleet *f = arg;
    int64_t b = 100;
    char err[512];

    certval_rcu_reader_register();
    f->need_full_read = true;
    while (!atomic_load(&f->stop)) {
        struct etcd_watch *w = NULL;
        char from[FLEET_KEY_MAX];
        uint8_t end[FLEET_KEY_MAX];
        int from_len = key_of(from, sizeof(from), f, "s/", "");
        size_t elen = etcd_prefix_end(end, sizeof(end), from, (size_t)from_len);
        int64_t start, compacted = 0;
        int rc;

        check_start_timeout(f);
        err[0] = '\0';
        if (f->need_full_read) {
            rc = full_read(f, err, sizeof(err));
            if (rc != ETCD_OK) {
                if (atomic_load(&f->connected) || !atomic_load(&f->first_read_done))
                    log_warn("fleet: cannot read the fleet's state: %s", err);
                mark_connected(f, false);
                set_detail(f, "etcd: ", err);
                backoff(f, &b);
                continue;
            }
            f->need_full_read = false;
            if (f->rereading) /* counted once done */
                atomic_fetch_add(&f->rereads, 1);
            f->rereading = false;
            first_read_done(f);
        }
        pthread_mutex_lock(&f->lock);
        start = f->applied_revision + 1;
        pthread_mutex_unlock(&f->lock);
        rc = etcd_watch_open(f->etcd, &w, &compacted, from, (size_t)from_len, end, elen, start,
                             true, err, sizeof(err));
        if (rc == ETCD_OK) {
            mark_connected(f, true);
            b = 100;
            rc = watch_loop(f, w, err, sizeof(err));
            etcd_watch_close(w);
        }
        if (atomic_load(&f->stop))
            break;
        if (rc == ETCD_ECOMPACTED) {
            /* The history since our revision is gone: read it all again. */
            log_warn("fleet: etcd compacted past revision %lld: reading the whole prefix again",
                     (long long)start);
            f->need_full_read = true;
            f->rereading = true;
            continue;
        }
        if (atomic_load(&f->connected))
            log_warn("fleet: lost etcd (%s): serving the state of revision %lld, reconnecting", err,
                     (long long)(start - 1));
        mark_connected(f, false);
        set_detail(f, "etcd: ", err);
        backoff(f, &b);
    }
    certval_rcu_reader_unregister();
    return NULL;
}

/* ---- start and stop ---- */

static int copy_config(struct fleet_config *out, const struct fleet_config *in)
{
    memset(out, 0, sizeof(*out));
    *out = *in;
    out->endpoints = calloc(in->n_endpoints, sizeof(*out->endpoints));
    out->n_endpoints = 0;
    out->prefix = strdup(in->prefix);
    out->user = in->user != NULL ? strdup(in->user) : NULL;
    out->password_file = in->password_file != NULL ? strdup(in->password_file) : NULL;
    if (out->endpoints == NULL || out->prefix == NULL ||
        (in->user != NULL && (out->user == NULL || out->password_file == NULL)))
        return -1;
    for (size_t i = 0; i < in->n_endpoints; i++) {
        out->endpoints[i] = strdup(in->endpoints[i]);
        if (out->endpoints[i] == NULL)
            return -1;
        out->n_endpoints++;
    }
    return 0;
}

static void fleet_free(struct fleet *f)
{
    if (f == NULL)
        return;
    etcd_client_free(f->etcd);
    fleet_config_clear(&f->cfg);
    free(f->state_dir);
    free(f->tracked);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->cond);
    free(f);
}

static int read_password(char *out, size_t cap, const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");

    out[0] = '\0';
    if (fp == NULL) {
        snprintf(err, errlen, "fleet.password_file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fgets(out, (int)cap, fp) == NULL)
        out[0] = '\0';
    fclose(fp);
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

int fleet_start(const struct fleet_config *cfg, struct crl_cache *crls, struct deny_list *deny,
                const char *state_dir, void (*ready_hook)(void *arg), void *arg, char *err,
                size_t errlen)
{
    struct etcd_client_opts o;
    struct fleet *f;
    char password[512];

    if (cfg == NULL || !cfg->enabled)
        return 0;
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    if (copy_config(&f->cfg, cfg) < 0 ||
        (state_dir != NULL && (f->state_dir = strdup(state_dir)) == NULL)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    password[0] = '\0';
    if (cfg->user != NULL &&
        read_password(password, sizeof(password), cfg->password_file, err, errlen) < 0)
        goto fail;
    memset(&o, 0, sizeof(o));
    o.endpoints = (const char *const *)f->cfg.endpoints;
    o.n_endpoints = f->cfg.n_endpoints;
    o.user = f->cfg.user;
    o.password = password;
    o.timeout_ms = f->cfg.timeout_ms;
    f->etcd = etcd_client_new(&o);
    OPENSSL_cleanse(password, sizeof(password));
    if (f->etcd == NULL) {
        snprintf(err, errlen, "cannot create the etcd client");
        goto fail;
    }
    f->crls = crls;
    f->deny = deny;
    f->ready_hook = ready_hook;
    f->ready_arg = arg;
    f->started_at = now_ms();
    atomic_store(&f->disconnected_since, now_s());
    snprintf(f->detail, sizeof(f->detail), "connecting to etcd");
    if (state_dir != NULL) {
        /* Fleet entries are applied in memory first and mirrored to
         * STATE/deny-list.txt after each batch (state_save): etcd holds them
         * durably already, and a sync per entry before it is in force would
         * put the disk's fsync time on every pod's propagation. */
        if (deny_list_set_store(deny, NULL, err, errlen) < 0)
            goto fail;
        state_load(f);
    } else {
        log_warn("fleet: no state_dir: a restart while etcd is down starts with no fleet state");
    }
    g_fleet = f;
    if (pthread_create(&f->thread, NULL, follower, f) != 0) {
        g_fleet = NULL;
        snprintf(err, errlen, "cannot start the fleet follower thread");
        goto fail;
    }
    f->thread_started = true;
    log_info("fleet: following %s%s on %zu etcd endpoint(s), first %s", f->cfg.prefix, "s/",
             f->cfg.n_endpoints, f->cfg.endpoints[0]);
    return 0;
fail:
    fleet_free(f);
    return -1;
}

void fleet_stop(void)
{
    struct fleet *f = g_fleet;

    if (f == NULL)
        return;
    atomic_store(&f->stop, true);
    pthread_mutex_lock(&f->lock);
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
    if (f->thread_started)
        pthread_join(f->thread, NULL);
    g_fleet = NULL;
    fleet_free(f);
}

bool fleet_enabled(void)
{
    return g_fleet != NULL;
}

bool fleet_ready(const struct fleet_config *cfg, char *why, size_t cap)
{
    struct fleet *f = g_fleet;

    if (cfg == NULL || !cfg->enabled)
        return true;
    if (f != NULL && (atomic_load(&f->first_read_done) || atomic_load(&f->local_copy)))
        return true;
    snprintf(why, cap, "fleet: waiting for the first read of etcd (or start_timeout_ms)");
    return false;
}

bool fleet_revocation_unknown(char *why, size_t cap)
{
    struct fleet *f = g_fleet;
    int64_t since;

    if (f == NULL || f->cfg.max_disconnected_seconds == 0 || atomic_load(&f->connected))
        return false;
    since = atomic_load(&f->disconnected_since);
    if (since == 0 || now_s() - since <= (int64_t)f->cfg.max_disconnected_seconds)
        return false;
    snprintf(why, cap, "cut off from the fleet's etcd for %lld s (fleet.max_disconnected_seconds)",
             (long long)(now_s() - since));
    return true;
}

/* ---- admin writes ---- */

/* wait_applied waits (bounded) until the follower has applied |revision|. */
static bool wait_applied(struct fleet *f, int64_t revision)
{
    struct timespec until;
    bool ok;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += FLEET_APPLY_WAIT_MS / 1000;
    pthread_mutex_lock(&f->lock);
    while (f->applied_revision < revision && !atomic_load(&f->stop))
        if (pthread_cond_timedwait(&f->cond, &f->lock, &until) == ETIMEDOUT)
            break;
    ok = f->applied_revision >= revision;
    pthread_mutex_unlock(&f->lock);
    if (!ok)
        log_warn("fleet: revision %lld committed but not yet applied here", (long long)revision);
    return ok;
}

static grpc_status_code etcd_status(int rc, char *msg, size_t cap, const char *what,
                                    const char *err)
{
    snprintf(msg, cap, "%s: %s", what, err);
    if (rc == ETCD_EUNAVAILABLE) {
        snprintf(msg, cap, "%s: etcd unreachable, nothing changed anywhere: %s", what, err);
        return GRPC_STATUS_UNAVAILABLE;
    }
    return rc == ETCD_ENOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_INTERNAL;
}

/* check_entry refuses what the deny list would refuse (bad reason, an
 * expiry in the past), on a scratch list, before it reaches the fleet. */
static int check_entry(const struct deny_key *k, const Certval__V1__DenyEntry *e, char *msg,
                       size_t cap)
{
    struct deny_list *scratch = deny_list_new();
    int rc;

    if (scratch == NULL) {
        snprintf(msg, cap, "out of memory");
        return -1;
    }
    rc = k->leaf ? deny_list_add_leaf(scratch, k->id, e->reason, now_s(), e->expires_unix, msg, cap)
                 : deny_list_add_serial(scratch, k->id, k->serial, k->serial_len, e->reason,
                                        now_s(), e->expires_unix, msg, cap);
    deny_list_free(scratch);
    return rc;
}

grpc_status_code fleet_admin_deny(bool add, const Certval__V1__DenyEntry *e, uint64_t *out_entries,
                                  char *msg, size_t cap)
{
    struct fleet *f = g_fleet;
    struct deny_key k;
    char key[FLEET_KEY_MAX], err[512];
    int64_t rev = 0, deleted = 0, lease = 0;
    int rc;

    *out_entries = 0;
    if (f == NULL) {
        snprintf(msg, cap, "fleet is off");
        return GRPC_STATUS_FAILED_PRECONDITION;
    }
    if (deny_key_from_entry(&k, e, msg, cap) < 0 || deny_key_string(key, sizeof(key), f, &k) < 0)
        return GRPC_STATUS_INVALID_ARGUMENT;
    if (add) {
        Certval__V1__DenyEntry v = CERTVAL__V1__DENY_ENTRY__INIT;
        char serhex[2 * DENY_LIST_SERIAL_MAX + 1];
        uint8_t *buf;
        size_t len;

        if (check_entry(&k, e, msg, cap) < 0)
            return GRPC_STATUS_INVALID_ARGUMENT;
        if (k.leaf) {
            v.leaf_sha256.data = k.id;
            v.leaf_sha256.len = 32;
        } else {
            hex_of(serhex, k.serial, k.serial_len);
            v.issuer_name_sha256.data = k.id;
            v.issuer_name_sha256.len = 32;
            v.serial_hex = serhex;
        }
        v.reason = e->reason;
        v.expires_unix = e->expires_unix;
        v.created_unix = now_s();
        /* An expiring entry is bound to a lease, so etcd deletes it on
         * every pod when it lapses (each pod also lapses it locally). */
        if (e->expires_unix > 0) {
            rc = etcd_lease_grant(f->etcd, &lease, e->expires_unix - now_s(), err, sizeof(err));
            if (rc != ETCD_OK)
                return etcd_status(rc, msg, cap, "deny entry NOT added", err);
        }
        len = certval__v1__deny_entry__get_packed_size(&v);
        buf = malloc(len > 0 ? len : 1);
        if (buf == NULL) {
            snprintf(msg, cap, "out of memory");
            return GRPC_STATUS_RESOURCE_EXHAUSTED;
        }
        certval__v1__deny_entry__pack(&v, buf);
        rc = etcd_put(f->etcd, &rev, key, strlen(key), buf, len, lease, err, sizeof(err));
        free(buf);
        if (rc != ETCD_OK)
            return etcd_status(rc, msg, cap, "deny entry NOT added", err);
    } else {
        rc = etcd_delete(f->etcd, &rev, &deleted, key, strlen(key), NULL, 0, err, sizeof(err));
        if (rc != ETCD_OK)
            return etcd_status(rc, msg, cap, "deny entry NOT removed", err);
        if (deleted == 0) {
            snprintf(msg, cap, "no such entry in the fleet");
            return GRPC_STATUS_NOT_FOUND;
        }
    }
    log_warn("fleet: emergency deny entry %s in etcd at revision %lld", add ? "added" : "removed",
             (long long)rev);
    wait_applied(f, rev);
    *out_entries = deny_list_count(f->deny);
    return GRPC_STATUS_OK;
}

/* pem_to_der decodes a PEM CRL into |*out| (OPENSSL_free it); DER is
 * returned as is (|*out| NULL). NULL when PEM does not decode. */
static const uint8_t *crl_der(const uint8_t *crl, size_t len, uint8_t **out, size_t *out_len)
{
    long dlen = 0;
    BIO *bio;

    *out = NULL;
    *out_len = len;
    if (len < 5 || memcmp(crl, "-----", 5) != 0)
        return crl;
    bio = BIO_new_mem_buf(crl, len > INT32_MAX ? INT32_MAX : (int)len);
    if (bio == NULL || !PEM_bytes_read_bio(out, &dlen, NULL, "X509 CRL", bio, NULL, NULL)) {
        BIO_free(bio);
        ERR_clear_error();
        return NULL;
    }
    BIO_free(bio);
    *out_len = (size_t)dlen;
    return *out;
}

struct newer_find {
    const char *issuer;
    uint64_t number;
    bool newer;
};

static void newer_cb(const struct crl_issuer_status *st, void *arg)
{
    struct newer_find *n = arg;

    if (strcmp(st->issuer, n->issuer) == 0 && st->has_crl_number && st->crl_number_low > n->number)
        n->newer = true;
}

/* delete_chunks removes the chunks of |id| of generation |gen| (best
 * effort: an unfinished push leaves nothing a reader would use). */
static void delete_chunks(struct fleet *f, const char *id, const char *gen)
{
    char from[FLEET_KEY_MAX], rest[160], err[256];
    uint8_t end[FLEET_KEY_MAX];
    int64_t rev, n;
    int len;
    size_t elen;

    snprintf(rest, sizeof(rest), "%s/%s/", id, gen);
    len = key_of(from, sizeof(from), f, "c/", rest);
    elen = etcd_prefix_end(end, sizeof(end), from, (size_t)len);
    etcd_delete(f->etcd, &rev, &n, from, (size_t)len, end, elen, err, sizeof(err));
}

grpc_status_code fleet_admin_push_crl(const uint8_t *crl, size_t len, bool force, char *issuer,
                                      size_t issuer_cap, uint64_t *number, uint64_t *entries,
                                      char *msg, size_t cap)
{
    struct fleet *f = g_fleet;
    uint8_t *decoded = NULL, gb[8], h[32];
    const uint8_t *der;
    size_t der_len = 0;
    char id[65], gen[17], hhex[65], key[FLEET_KEY_MAX], err[512], manifest[1024];
    struct etcd_kvs cur;
    int64_t mod = 0, rev = 0, this_update = 0, next_update = 0;
    struct newer_find nf;
    bool ok = false;
    grpc_status_code code = GRPC_STATUS_OK;
    uint64_t n_chunks;
    int rc;

    *number = 0;
    *entries = 0;
    snprintf(issuer, issuer_cap, "?");
    if (f == NULL) {
        snprintf(msg, cap, "fleet is off");
        return GRPC_STATUS_FAILED_PRECONDITION;
    }
    der = crl_der(crl, len, &decoded, &der_len);
    if (der == NULL || der_len == 0 || der_len > FLEET_MAX_CRL_BYTES) {
        snprintf(msg, cap, "CRL refused: not a DER or PEM CRL of at most %u bytes",
                 FLEET_MAX_CRL_BYTES);
        code = GRPC_STATUS_INVALID_ARGUMENT;
        goto out;
    }
    /* The fetcher's rule, as PushCrl applies it (read without parsing the
     * revoked list); what does not parse is judged by crl_check. */
    if (!force && crl_fetch_crl_times(&this_update, &next_update, der, der_len) == 0 &&
        next_update != 0 && next_update < now_s()) {
        snprintf(msg, cap,
                 "CRL refused: its nextUpdate has passed: every certificate of its "
                 "issuer would be REVOCATION_STALE; push with force to use it anyway");
        code = GRPC_STATUS_FAILED_PRECONDITION;
        goto out;
    }
    /* Refused here as PushCrl refuses it, before it reaches any pod. */
    if (reload_crl_check(f->crls, der, der_len, issuer, issuer_cap, number, entries, err, sizeof(err)) <
        0) {
        snprintf(msg, cap, "CRL refused: %s", err);
        code = GRPC_STATUS_INVALID_ARGUMENT;
        goto out;
    }
    nf.issuer = issuer;
    nf.number = *number;
    nf.newer = false;
    crl_cache_foreach(f->crls, newer_cb, &nf);
    if (nf.newer && !force) {
        snprintf(msg, cap,
                 "CRL refused: a CRL of %s with a higher cRLNumber is in force "
                 "(push with force to go back)",
                 issuer);
        code = GRPC_STATUS_INVALID_ARGUMENT;
        goto out;
    }
    /* The issuer's id in the keys: SHA-256 of its one-line name, the name
     * every pod's status and WithdrawCrl use. */
    SHA256((const uint8_t *)issuer, strlen(issuer), h);
    hex_of(id, h, 32);
    RAND_bytes(gb, sizeof(gb));
    hex_of(gen, gb, sizeof(gb));
    SHA256(der, der_len, h);
    hex_of(hhex, h, 32);
    key_of(key, sizeof(key), f, "s/crl/", id);
    /* The manifest now, to detect a concurrent push at commit. */
    rc = etcd_range(f->etcd, &cur, key, strlen(key), NULL, 0, 0, 0, err, sizeof(err));
    if (rc != ETCD_OK) {
        code = etcd_status(rc, msg, cap, "CRL NOT pushed", err);
        goto out;
    }
    mod = cur.n > 0 ? cur.v[0].mod_revision : 0;
    etcd_kvs_clear(&cur);
    /* 1. The chunks, under a new generation no reader looks at yet. */
    n_chunks = ((uint64_t)der_len + FLEET_CHUNK_BYTES - 1) / FLEET_CHUNK_BYTES;
    for (uint64_t i = 0; i < n_chunks; i++) {
        char ck[FLEET_KEY_MAX];
        size_t off = (size_t)i * FLEET_CHUNK_BYTES;
        size_t clen = der_len - off < FLEET_CHUNK_BYTES ? der_len - off : FLEET_CHUNK_BYTES;

        chunk_key(ck, sizeof(ck), f, id, gen, i);
        rc = etcd_put(f->etcd, &rev, ck, strlen(ck), der + off, clen, 0, err, sizeof(err));
        if (rc != ETCD_OK) {
            code = etcd_status(rc, msg, cap, "CRL NOT pushed", err);
            delete_chunks(f, id, gen);
            goto out;
        }
    }
    /* 2. One transaction: the manifest (only if nobody else pushed since),
     * and the older generations' chunks go. */
    snprintf(manifest, sizeof(manifest),
             "certval-fleet-crl 1\ngen %s\nsize %zu\nchunks %llu\nsha256 %s\nnumber %llu\n"
             "force %d\nissuer %s\n",
             gen, der_len, (unsigned long long)n_chunks, hhex, (unsigned long long)*number,
             force ? 1 : 0, issuer);
    {
        char cfrom[FLEET_KEY_MAX], cmid[FLEET_KEY_MAX], rest[160];
        uint8_t cend[FLEET_KEY_MAX], gend[FLEET_KEY_MAX];
        size_t cend_len, gend_len;
        int cfrom_len, cmid_len;
        struct etcd_cmp cmp = {ETCD_CMP_MOD, ETCD_CMP_EQUAL, key, strlen(key), mod};
        struct etcd_op ops[3];

        snprintf(rest, sizeof(rest), "%s/", id);
        cfrom_len = key_of(cfrom, sizeof(cfrom), f, "c/", rest);
        cend_len = etcd_prefix_end(cend, sizeof(cend), cfrom, (size_t)cfrom_len);
        snprintf(rest, sizeof(rest), "%s/%s/", id, gen);
        cmid_len = key_of(cmid, sizeof(cmid), f, "c/", rest);
        gend_len = etcd_prefix_end(gend, sizeof(gend), cmid, (size_t)cmid_len);
        memset(ops, 0, sizeof(ops));
        ops[0].key = key;
        ops[0].key_len = strlen(key);
        ops[0].value = manifest;
        ops[0].value_len = strlen(manifest);
        /* Every chunk of the issuer but this generation's: [c/id/, c/id/gen/)
         * and [end of c/id/gen/, end of c/id/). */
        ops[1].is_delete = true;
        ops[1].key = cfrom;
        ops[1].key_len = (size_t)cfrom_len;
        ops[1].end = cmid;
        ops[1].end_len = (size_t)cmid_len;
        ops[2].is_delete = true;
        ops[2].key = gend;
        ops[2].key_len = gend_len;
        ops[2].end = cend;
        ops[2].end_len = cend_len;
        rc = etcd_txn(f->etcd, &rev, &ok, &cmp, 1, ops, 3, err, sizeof(err));
    }
    if (rc != ETCD_OK) {
        code = etcd_status(rc, msg, cap, "CRL NOT pushed", err);
        delete_chunks(f, id, gen);
        goto out;
    }
    if (!ok) {
        snprintf(msg, cap, "another push for %s committed first: push again", issuer);
        code = GRPC_STATUS_ABORTED;
        delete_chunks(f, id, gen);
        goto out;
    }
    log_warn("fleet: CRL of %s (number %llu, %zu bytes in %llu chunks) committed at revision %lld",
             issuer, (unsigned long long)*number, der_len, (unsigned long long)n_chunks,
             (long long)rev);
    wait_applied(f, rev);
out:
    OPENSSL_free(decoded);
    return code;
}

grpc_status_code fleet_admin_withdraw_crl(const char *issuer, uint64_t *out_restored, char *msg,
                                          size_t cap)
{
    struct fleet *f = g_fleet;
    char from[FLEET_KEY_MAX], err[512];
    uint8_t end[FLEET_KEY_MAX];
    struct etcd_kvs all;
    int from_len;
    size_t elen;
    int rc;
    grpc_status_code code = GRPC_STATUS_NOT_FOUND;

    *out_restored = 0;
    if (f == NULL) {
        snprintf(msg, cap, "fleet is off");
        return GRPC_STATUS_FAILED_PRECONDITION;
    }
    from_len = key_of(from, sizeof(from), f, "s/crl/", "");
    elen = etcd_prefix_end(end, sizeof(end), from, (size_t)from_len);
    rc = etcd_range(f->etcd, &all, from, (size_t)from_len, end, elen, 0, 0, err, sizeof(err));
    if (rc != ETCD_OK)
        return etcd_status(rc, msg, cap, "CRL NOT withdrawn", err);
    snprintf(msg, cap, "the fleet holds no pushed CRL for issuer %s", issuer);
    for (size_t i = 0; i < all.n; i++) {
        struct manifest m;
        const char *rel = rel_key(f, &all.v[i]);
        char cfrom[FLEET_KEY_MAX], rest[80];
        uint8_t cend[FLEET_KEY_MAX];
        int cfrom_len;
        struct etcd_cmp cmp;
        struct etcd_op ops[2];
        int64_t rev = 0;
        bool ok = false;

        if (rel == NULL || manifest_parse(&m, all.v[i].value, all.v[i].value_len) < 0 ||
            strcmp(m.issuer, issuer) != 0)
            continue;
        snprintf(rest, sizeof(rest), "%s/", rel + 6);
        cfrom_len = key_of(cfrom, sizeof(cfrom), f, "c/", rest);
        memset(ops, 0, sizeof(ops));
        memset(&cmp, 0, sizeof(cmp));
        cmp.target = ETCD_CMP_MOD;
        cmp.result = ETCD_CMP_EQUAL;
        cmp.key = all.v[i].key;
        cmp.key_len = all.v[i].key_len;
        cmp.value = all.v[i].mod_revision;
        ops[0].is_delete = true;
        ops[0].key = all.v[i].key;
        ops[0].key_len = all.v[i].key_len;
        ops[1].is_delete = true;
        ops[1].key = cfrom;
        ops[1].key_len = (size_t)cfrom_len;
        ops[1].end = cend;
        ops[1].end_len = etcd_prefix_end(cend, sizeof(cend), cfrom, (size_t)cfrom_len);
        rc = etcd_txn(f->etcd, &rev, &ok, &cmp, 1, ops, 2, err, sizeof(err));
        if (rc != ETCD_OK) {
            code = etcd_status(rc, msg, cap, "CRL NOT withdrawn", err);
        } else if (!ok) {
            snprintf(msg, cap, "a push for %s committed meanwhile: look again", issuer);
            code = GRPC_STATUS_ABORTED;
        } else {
            log_warn("fleet: pushed CRL of %s withdrawn in etcd at revision %lld", issuer,
                     (long long)rev);
            if (wait_applied(f, rev)) {
                pthread_mutex_lock(&f->lock);
                if (f->withdraw_revision == rev)
                    *out_restored = f->withdraw_restored;
                pthread_mutex_unlock(&f->lock);
            }
            code = GRPC_STATUS_OK;
        }
        break;
    }
    etcd_kvs_clear(&all);
    return code;
}

/* ---- visibility ---- */

void fleet_get_status(struct fleet_status *out)
{
    struct fleet *f = g_fleet;
    int64_t since;

    memset(out, 0, sizeof(*out));
    if (f == NULL)
        return;
    out->enabled = true;
    out->connected = atomic_load(&f->connected);
    out->first_read_done = atomic_load(&f->first_read_done);
    out->local_copy = atomic_load(&f->local_copy);
    pthread_mutex_lock(&f->lock);
    out->applied_revision = f->applied_revision;
    snprintf(out->detail, sizeof(out->detail), "%s", f->detail);
    pthread_mutex_unlock(&f->lock);
    out->store_revision = atomic_load(&f->store_revision);
    if (out->store_revision < out->applied_revision)
        out->store_revision = out->applied_revision;
    since = atomic_load(&f->disconnected_since);
    out->disconnected_seconds = !out->connected && since > 0 ? now_s() - since : 0;
    out->deny_entries = atomic_load(&f->deny_entries);
    out->crls = atomic_load(&f->n_crls);
    out->rereads = atomic_load(&f->rereads);
    out->reconnects = atomic_load(&f->reconnects);
    out->crls_refused = atomic_load(&f->crls_refused);
}

void fleet_collect(struct mbuf *b, void *arg)
{
    struct fleet_status st;

    (void)arg;
    fleet_get_status(&st);
    if (!st.enabled)
        return;
    mbuf_printf(b,
                "# HELP certval_fleet_connected 1 while the etcd watch is established.\n"
                "# TYPE certval_fleet_connected gauge\ncertval_fleet_connected %d\n"
                "# HELP certval_fleet_local_copy 1 while serving the state folder's copy "
                "(etcd not reached since start).\n"
                "# TYPE certval_fleet_local_copy gauge\ncertval_fleet_local_copy %d\n"
                "# HELP certval_fleet_applied_revision The etcd revision applied here.\n"
                "# TYPE certval_fleet_applied_revision gauge\n"
                "certval_fleet_applied_revision %lld\n"
                "# HELP certval_fleet_lag_revisions Store revision last seen minus applied.\n"
                "# TYPE certval_fleet_lag_revisions gauge\ncertval_fleet_lag_revisions %lld\n"
                "# HELP certval_fleet_disconnected_seconds Time since etcd was lost (0 while "
                "connected).\n"
                "# TYPE certval_fleet_disconnected_seconds gauge\n"
                "certval_fleet_disconnected_seconds %lld\n"
                "# HELP certval_fleet_deny_entries Deny entries held from the fleet.\n"
                "# TYPE certval_fleet_deny_entries gauge\ncertval_fleet_deny_entries %llu\n"
                "# HELP certval_fleet_crls Pushed CRLs held from the fleet.\n"
                "# TYPE certval_fleet_crls gauge\ncertval_fleet_crls %llu\n"
                "# HELP certval_fleet_rereads_total Full reads after a compaction.\n"
                "# TYPE certval_fleet_rereads_total counter\ncertval_fleet_rereads_total %llu\n"
                "# HELP certval_fleet_disconnects_total Times etcd was lost.\n"
                "# TYPE certval_fleet_disconnects_total counter\n"
                "certval_fleet_disconnects_total %llu\n"
                "# HELP certval_fleet_crls_refused_total Fleet CRLs not applied here.\n"
                "# TYPE certval_fleet_crls_refused_total counter\n"
                "certval_fleet_crls_refused_total %llu\n",
                st.connected ? 1 : 0, st.local_copy ? 1 : 0, (long long)st.applied_revision,
                (long long)(st.store_revision - st.applied_revision),
                (long long)st.disconnected_seconds, (unsigned long long)st.deny_entries,
                (unsigned long long)st.crls, (unsigned long long)st.rereads,
                (unsigned long long)st.reconnects, (unsigned long long)st.crls_refused);
}
