/* Fleet (fleet.h): applying keys of the fleet's etcd prefix to the local
 * state (follower thread), one key at a time or by a full read. */
#include "fleet_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* ---- applying to the local state (follower thread) ---- */

static int apply_deny_put(struct fleet *f, const struct deny_key *k, const uint8_t *val, size_t len)
{
    Certval__V1__DenyEntry *e = certval__v1__deny_entry__unpack(NULL, len, val);
    char err[300];
    int64_t now = fleet_now_s();
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

/* ---- one key, from a read or an event ---- */

const char *fleet_rel_key(const struct fleet *f, const struct etcd_kv *kv)
{
    size_t p = strlen(f->cfg.prefix);

    if (kv->key_len <= p || memcmp(kv->key, f->cfg.prefix, p) != 0 ||
        memchr(kv->key, 0, kv->key_len) != NULL)
        return NULL;
    return (const char *)kv->key + p;
}

/* fleet_apply_key applies one key's put (or delete) at |revision|. */
int fleet_apply_key(struct fleet *f, const struct etcd_kv *kv, bool is_delete, bool existed,
                    int64_t revision)
{
    const char *rel = fleet_rel_key(f, kv);
    struct deny_key k;

    if (rel == NULL)
        return ETCD_OK;
    if (strncmp(rel, "s/deny/", 7) == 0) {
        if (fleet_deny_key_parse(&k, rel + 7) < 0) {
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
            fleet_apply_withdraw(f, rel + 6, revision);
            return ETCD_OK;
        }
        return fleet_apply_manifest(f, rel + 6, kv->value, kv->value_len, revision);
    }
    return ETCD_OK;
}

void fleet_set_applied(struct fleet *f, int64_t revision)
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

/* fleet_full_read reads PREFIX s/ at one revision and makes the local state
 * equal to it: entries and CRLs the fleet no longer holds are removed. */
int fleet_full_read(struct fleet *f, char *err, size_t errlen)
{
    char from[FLEET_KEY_MAX];
    uint8_t end[FLEET_KEY_MAX];
    struct etcd_kvs all;
    struct local_keys local;
    size_t elen, deny_n = 0;
    size_t from_len = fleet_key_of(from, sizeof(from), f, "s/", "");
    int rc;

    elen = etcd_prefix_end(end, sizeof(end), from, from_len);
    rc = etcd_range(f->etcd, &all, from, from_len, end, elen, 0, 0, err, errlen);
    if (rc != ETCD_OK)
        return rc;
    atomic_store(&f->store_revision, all.revision);
    for (size_t i = 0; i < all.n && rc == ETCD_OK; i++) {
        const char *rel = fleet_rel_key(f, &all.v[i]);

        if (rel != NULL && strncmp(rel, "s/deny/", 7) == 0)
            deny_n++;
        rc = fleet_apply_key(f, &all.v[i], false, true, all.revision);
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

            fleet_deny_key_string(key, sizeof(key), f, &local.v[i]);
            if (!key_in(&all, key))
                apply_deny_delete(f, &local.v[i]);
        }
        free(local.v);
    }
    for (size_t i = 0; i < f->n_tracked;) {
        char key[FLEET_KEY_MAX];
        size_t before = f->n_tracked;

        fleet_key_of(key, sizeof(key), f, "s/crl/", f->tracked[i].id);
        if (!key_in(&all, key))
            fleet_apply_withdraw(f, f->tracked[i].id, all.revision);
        if (f->n_tracked == before)
            i++;
    }
    atomic_store(&f->deny_entries, deny_n);
    pthread_mutex_lock(&f->lock);
    f->applied_revision = all.revision; /* a re-read may go back only if etcd was restored */
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
    etcd_kvs_clear(&all);
    fleet_state_save(f);
    return ETCD_OK;
}
