/* Fleet (fleet.h): pushed CRLs in etcd, a manifest under s/crl/ and its
 * chunks under c/, read and checked, then applied or withdrawn here. */
#include "fleet_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/mem.h>
#include <openssl/sha.h>

#include "log.h"
#include "reload.h"

/* ---- CRL manifests ---- */

int fleet_manifest_parse(struct manifest *m, const uint8_t *val, size_t len)
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
                   fleet_from_hex(m->sha256, v, 64) == 0) {
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

void fleet_chunk_key(char *out, size_t cap, const struct fleet *f, const char *id, const char *gen,
                     uint64_t i)
{
    char rest[160];

    snprintf(rest, sizeof(rest), "%s/%s/%06llu", id, gen, (unsigned long long)i);
    fleet_key_of(out, cap, f, "c/", rest);
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

        fleet_chunk_key(key, sizeof(key), f, id, m->gen, i);
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

/* fleet_apply_manifest makes the CRL of manifest |kv| current, read at
 * |revision|. Returns ETCD_OK (applied, or refused by the cache and
 * recorded), ETCD_ECOMPACTED (re-read needed) or another failure (retry
 * after reconnecting). */
int fleet_apply_manifest(struct fleet *f, const char *id, const uint8_t *val, size_t len,
                         int64_t revision)
{
    struct manifest m;
    struct tracked_crl *t = fleet_tracked_find(f, id);
    char err[512], issuer[FLEET_ISSUER_MAX];
    uint64_t number = 0, entries = 0;
    uint8_t *der = NULL;
    int rc;

    if (fleet_manifest_parse(&m, val, len) < 0) {
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
    rc = reload_crl_push_admin(f->crls, der, m.size, m.force, issuer, sizeof(issuer), &number,
                               &entries, err, sizeof(err));
    free(der);
    t = fleet_tracked_add(f, id);
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

void fleet_apply_withdraw(struct fleet *f, const char *id, int64_t revision)
{
    struct tracked_crl *t = fleet_tracked_find(f, id);
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
    fleet_tracked_remove(f, id);
    atomic_store(&f->n_crls, f->n_tracked);
}
