/* The snapshot half of reload.h: building, publishing and releasing
 * configuration snapshots (RCU), and keeping the one in force when a
 * reload's inputs did not change. The CRL-ingest half is reload_crl.c. */
#include "reload.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include <urcu/urcu-memb.h>

#include "config.h"
#include "crl_cache.h"
#include "log.h"
#include "reload_internal.h"
#include "validator.h"

/* Published with rcu_xchg_pointer; read under the RCU read lock. */
static struct reload_snapshot *current;
static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t next_version = 1;

static void snapshot_free(struct reload_snapshot *s)
{
    if (s == NULL)
        return;
    validator_free(s->validator);
    config_free(s->cfg);
    free(s->anchors);
    free(s);
}

void reload_release(struct reload_snapshot *s)
{
    if (s != NULL && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        snapshot_free(s);
}

struct reload_snapshot *reload_acquire(void)
{
    struct reload_snapshot *s;

    urcu_memb_read_lock();
    s = rcu_dereference(current);
    /* The published reference keeps refs >= 1 until after a grace period
     * that starts once the pointer is replaced, so inside the read-side
     * section the count cannot reach zero under us. */
    if (s != NULL)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    urcu_memb_read_unlock();
    return s;
}

static void publish(struct reload_snapshot *next)
{
    struct reload_snapshot *old = rcu_xchg_pointer(&current, next);

    if (old != NULL) {
        urcu_memb_synchronize_rcu();
        reload_release(old);
    }
}
static void note_anchors(struct reload_snapshot *s)
{
    STACK_OF(X509) *all = sk_X509_new_null();
    const struct validator_config *v = &s->cfg->validator;
    size_t n;

    if (all == NULL)
        return;
    reload_add_certs_from(all, v->anchor_files, v->n_anchor_files);
    n = sk_X509_num(all);
    s->anchors = calloc(n > 0 ? n : 1, sizeof(*s->anchors));
    for (size_t i = 0; s->anchors != NULL && i < n; i++) {
        X509 *x = sk_X509_value(all, i);
        int64_t t = 0;

        X509_NAME_oneline(X509_get_subject_name(x), s->anchors[i].subject,
                          sizeof(s->anchors[i].subject));
        if (cv_asn1_time_to_unix(&t, X509_get0_notAfter(x)) == 0)
            s->anchors[i].not_after = t;
        s->n_anchors++;
    }
    sk_X509_pop_free(all, X509_free);
}

/* Hashes a file's path and bytes into |h|; a file that cannot be read
 * hashes as its path and an error marker, so it never matches a readable
 * one. */
static void digest_file(SHA256_CTX *h, const char *path)
{
    uint8_t buf[16384];
    FILE *f = fopen(path, "rb");
    size_t n;

    SHA256_Update(h, path, strlen(path) + 1);
    if (f == NULL) {
        SHA256_Update(h, "\xff", 1);
        return;
    }
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        SHA256_Update(h, buf, n);
    fclose(f);
}

/* The identity of everything a validator is built from: the configuration
 * file and each certificate file it names. CRLs are not part of it (they
 * live in the CRL cache, not in the snapshot). */
static void inputs_digest(uint8_t out[32], const struct certval_config *cfg)
{
    const struct validator_config *v = &cfg->validator;
    SHA256_CTX h;

    SHA256_Init(&h);
    digest_file(&h, cfg->path);
    for (size_t i = 0; i < v->n_anchor_files; i++)
        digest_file(&h, v->anchor_files[i]);
    for (size_t i = 0; i < v->n_intermediate_files; i++)
        digest_file(&h, v->intermediate_files[i]);
    for (size_t i = 0; i < v->n_profiles; i++)
        for (size_t j = 0; j < v->profiles[i].n_issuer_files; j++)
            digest_file(&h, v->profiles[i].issuer_files[j]);
    SHA256_Final(out, &h);
}

/* A reload whose inputs are byte for byte those of the snapshot in force
 * keeps that snapshot (and so its version: the verdict cache stays warm);
 * only the CRL files are looked at again. Called with reload_lock held. */
static bool keep_current(const uint8_t inputs[32], struct crl_cache *crls)
{
    struct reload_snapshot *cur = current; /* writers hold reload_lock: no RCU needed */
    size_t n_crls;

    if (cur == NULL || memcmp(cur->inputs, inputs, 32) != 0)
        return false;
    n_crls = reload_crls_load_config(crls, cur->cfg);
    log_info("configuration %s unchanged: version %llu kept, %zu CRLs loaded", cur->cfg->path,
             (unsigned long long)cur->version, n_crls);
    return true;
}

int reload_install(struct certval_config *cfg, struct crl_cache *crls, char *err, size_t errlen)
{
    struct reload_snapshot *s = NULL;
    uint8_t inputs[32];
    size_t n_crls;

    pthread_mutex_lock(&reload_lock);
    inputs_digest(inputs, cfg);
    if (keep_current(inputs, crls)) {
        pthread_mutex_unlock(&reload_lock);
        config_free(cfg);
        reload_notify_crl_change(true); /* crl_fetch: URLs, readiness */
        return 0;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    s->version = next_version;
    if (validator_new(&s->validator, &cfg->validator, s->version, err, errlen) < 0)
        goto err;
    s->cfg = cfg;
    cfg = NULL;
    memcpy(s->inputs, inputs, sizeof(s->inputs));
    atomic_store(&s->refs, 1);
    note_anchors(s);
    n_crls = reload_crls_load_config(crls, s->cfg);
    next_version++;
    log_info("configuration %s version %llu installed: %zu trust anchors, %zu profiles, "
             "%zu tenants, %zu CRLs loaded",
             s->cfg->path, (unsigned long long)s->version, validator_anchor_count(s->validator),
             s->cfg->validator.n_profiles, s->cfg->validator.n_tenants, n_crls);
    publish(s);
    pthread_mutex_unlock(&reload_lock);
    reload_notify_crl_change(true); /* crl_fetch: URLs, readiness */
    return 0;
err:
    pthread_mutex_unlock(&reload_lock);
    snapshot_free(s);
    config_free(cfg);
    return -1;
}

int reload_file(const char *path, struct crl_cache *crls, char *err, size_t errlen)
{
    struct certval_config *cfg = NULL;

    if (config_load(&cfg, path, err, errlen) < 0)
        return -1;
    return reload_install(cfg, crls, err, errlen);
}

void reload_lock_hold(void)
{
    pthread_mutex_lock(&reload_lock);
}

void reload_lock_drop(void)
{
    pthread_mutex_unlock(&reload_lock);
}

void reload_shutdown(void)
{
    pthread_mutex_lock(&reload_lock);
    publish(NULL);
    pthread_mutex_unlock(&reload_lock);
}
