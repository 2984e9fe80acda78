/* Emergency deny list: RCU-published immutable snapshots.
 *
 * Shared structures (docs/revocation.md, "Deny list and verdict cache"):
 *  - d->snap: an immutable open-addressing table of (hash, entry pointer)
 *    slots. Written only under d->write_lock, by building a complete new
 *    table and storing the pointer with release order; read under the RCU
 *    read lock with an acquire load. Never NULL between _new and _free.
 *  - entries: immutable once published; shared by consecutive snapshots (a
 *    change copies slot arrays, not entries). An entry leaves memory only
 *    after a grace period that follows the publication of a snapshot that
 *    no longer holds it.
 *  - d->generation: atomic, bumped under write_lock after the pointer store.
 *
 * Writers wait for the grace period themselves (urcu_memb_synchronize_rcu)
 * instead of using call_rcu: changes are rare (admin API), and this way a
 * writer thread need not be registered, and every freed byte is gone when
 * the writer returns. Every change rebuilds the slot table in O(n) (not
 * measured at 1M entries; a few tens of ms expected), acceptable for
 * operator actions, and it keeps one simple code path with no tombstones. */

#include "deny_list_internal.h"
#include "hex.h"
#include "tsan_grace.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <urcu/urcu-memb.h>

#include <openssl/bytestring.h>
#include <openssl/mem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/siphash.h>

/* The deny list's grace-period sync object for TSan (tsan_grace.h). */
static char dl_tsan_grace;
#define TSAN_RELEASE() tsan_grace_release(&dl_tsan_grace)
#define TSAN_ACQUIRE() tsan_grace_acquire(&dl_tsan_grace)

#define DL_MIN_CAP 16
#define DL_HASH_IN_MAX (1 + 32 + DENY_LIST_SERIAL_MAX)


/* ---- keys and entries -------------------------------------------------- */

uint64_t dl_key_hash(const struct deny_list *d, const struct dl_key *k)
{
    uint8_t in[DL_HASH_IN_MAX];

    in[0] = k->kind;
    memcpy(in + 1, k->id, 32);
    if (k->serial_len > 0)
        memcpy(in + 33, k->serial, k->serial_len);
    return SIPHASH_24(d->sip_key, in, 33 + k->serial_len);
}

static bool entry_is(const struct dl_entry *e, const struct dl_key *k)
{
    return e->kind == k->kind && e->serial_len == k->serial_len &&
           memcmp(e->id, k->id, 32) == 0 &&
           (k->serial_len == 0 || memcmp(e->data, k->serial, k->serial_len) == 0);
}

static const char *entry_reason(const struct dl_entry *e)
{
    return (const char *)e->data + e->serial_len;
}

static bool entry_live(const struct dl_entry *e, int64_t now)
{
    return e->expires_at == 0 || now < e->expires_at;
}

/* dl_utf8_ok accepts well-formed UTF-8 (no overlongs, surrogates or code
 * points over U+10FFFF) without control characters: reasons are shown in
 * logs and in protobuf string fields, which must be UTF-8. */
bool dl_utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t c = s[i];
        size_t more;
        uint32_t cp, min;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            more = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            more = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            more = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < more)
            return false;
        for (size_t j = 1; j <= more; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
            (cp >= 0x80 && cp < 0xa0))
            return false;
        i += more + 1;
    }
    return true;
}

/* check_reason validates an operator-supplied reason. */
static int check_reason(const char *reason, size_t *out_len, char *err, size_t errlen)
{
    if (reason == NULL) {
        ERRF("reason is NULL");
        return -1;
    }
    size_t n = strnlen(reason, DENY_LIST_REASON_MAX + 1);
    if (n > DENY_LIST_REASON_MAX) {
        ERRF("reason longer than %d bytes", DENY_LIST_REASON_MAX);
        return -1;
    }
    if (!dl_utf8_ok((const uint8_t *)reason, n)) {
        ERRF("reason is not UTF-8 text without control characters");
        return -1;
    }
    *out_len = n;
    return 0;
}

struct dl_entry *dl_entry_new(const struct dl_key *k, const char *reason, size_t reason_len,
                              int64_t created_at, int64_t expires_at)
{
    struct dl_entry *e = malloc(sizeof(*e) + k->serial_len + reason_len + 1);

    if (e == NULL)
        return NULL;
    e->created_at = created_at;
    e->expires_at = expires_at;
    e->kind = k->kind;
    e->serial_len = (uint8_t)k->serial_len;
    e->reason_len = (uint8_t)reason_len;
    memcpy(e->id, k->id, 32);
    if (k->serial_len > 0)
        memcpy(e->data, k->serial, k->serial_len);
    memcpy(e->data + k->serial_len, reason, reason_len);
    e->data[k->serial_len + reason_len] = 0;
    return e;
}

/* ---- snapshots ----------------------------------------------------------- */

static size_t cap_for(size_t count)
{
    size_t cap = DL_MIN_CAP;

    /* count <= DENY_LIST_MAX_ENTRIES, so this stops at 2^21. */
    while (cap < 2 * count)
        cap *= 2;
    return cap;
}

struct dl_snap *dl_snap_alloc(size_t count)
{
    size_t cap = cap_for(count);
    struct dl_snap *s = calloc(1, sizeof(*s) + cap * sizeof(s->slot[0]));

    if (s != NULL)
        s->mask = cap - 1;
    return s;
}

/* dl_snap_find returns the slot index of |k| in |s|, or -1. Load <= 1/2, so an
 * empty slot ends every probe within mask + 1 steps. */
long dl_snap_find(const struct dl_snap *s, uint64_t hash, const struct dl_key *k)
{
    size_t i = hash & s->mask;

    for (size_t n = 0; n <= s->mask; n++, i = (i + 1) & s->mask) {
        const struct dl_slot *sl = &s->slot[i];
        if (sl->e == NULL)
            return -1;
        if (sl->hash == hash && entry_is(sl->e, k))
            return (long)i;
    }
    return -1;
}

/* dl_snap_put inserts a slot known to be absent; the table has room. */
void dl_snap_put(struct dl_snap *s, uint64_t hash, struct dl_entry *e)
{
    size_t i = hash & s->mask;

    for (size_t n = 0; n <= s->mask; n++, i = (i + 1) & s->mask) {
        if (s->slot[i].e == NULL) {
            s->slot[i].hash = hash;
            s->slot[i].e = e;
            s->count++;
            return;
        }
    }
}

/* dl_snap_rebuild copies |old| into a table sized for |extra| more entries,
 * leaving out slot |skip| (-1: none) and, when |purge|, entries expired at
 * |now|. NULL on allocation failure. */
struct dl_snap *dl_snap_rebuild(const struct dl_snap *old, long skip, size_t extra, bool purge,
                                int64_t now)
{
    struct dl_snap *s = dl_snap_alloc(old->count + extra);

    if (s == NULL)
        return NULL;
    for (size_t i = 0; i <= old->mask; i++) {
        const struct dl_slot *sl = &old->slot[i];
        if (sl->e == NULL || (long)i == skip || (purge && !entry_live(sl->e, now)))
            continue;
        dl_snap_put(s, sl->hash, sl->e);
    }
    return s;
}

void dl_snap_free_entries(struct dl_snap *s)
{
    for (size_t i = 0; s != NULL && i <= s->mask; i++)
        free(s->slot[i].e);
}

/* ---- publication --------------------------------------------------------- */

/* dl_publish makes |next| current, bumps the generation, waits for readers of
 * the old snapshot to leave, then frees the old table and |retired| (the
 * entries |next| no longer holds, |n_retired| of them, or with
 * |retire_all_old| every entry of the old table). Called under write_lock;
 * cannot fail. */
void dl_publish(struct deny_list *d, struct dl_snap *next, struct dl_entry **retired,
                size_t n_retired, bool retire_all_old)
{
    struct dl_snap *old = d->snap;

    /* Release: the table and its entries are complete before readers can
     * reach them. The generation moves after the pointer, so a thread that
     * sees the new generation also sees the new entries. */
    __atomic_store_n(&d->snap, next, __ATOMIC_RELEASE);
    __atomic_add_fetch(&d->generation, 1, __ATOMIC_RELEASE);
    urcu_memb_synchronize_rcu();
    TSAN_ACQUIRE();
    if (retire_all_old)
        dl_snap_free_entries(old);
    for (size_t i = 0; i < n_retired; i++)
        free(retired[i]);
    free(old);
}

/* ---- lifecycle ------------------------------------------------------------ */

struct deny_list *deny_list_new(void)
{
    struct deny_list *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return NULL;
    d->snap = dl_snap_alloc(0);
    if (d->snap == NULL || pthread_mutex_init(&d->write_lock, NULL) != 0) {
        free(d->snap);
        free(d);
        return NULL;
    }
    RAND_bytes((uint8_t *)d->sip_key, sizeof(d->sip_key));
    return d;
}

void deny_list_free(struct deny_list *d)
{
    if (d == NULL)
        return;
    dl_snap_free_entries(d->snap);
    free(d->snap);
    d->snap = NULL;
    pthread_mutex_destroy(&d->write_lock);
    free(d->store);
    free(d);
}

int deny_list_set_store(struct deny_list *d, const char *path, char *err, size_t errlen)
{
    char *copy = NULL;

    if (d == NULL) {
        ERRF("NULL argument");
        return -1;
    }
    if (path != NULL && (copy = strdup(path)) == NULL) {
        ERRF("out of memory");
        return -1;
    }
    pthread_mutex_lock(&d->write_lock);
    free(d->store);
    d->store = copy;
    pthread_mutex_unlock(&d->write_lock);
    return 0;
}

void deny_list_issuer_key(uint8_t out[32], const X509_NAME *issuer)
{
    uint8_t *der = NULL;
    int n = issuer ? i2d_X509_NAME((X509_NAME *)issuer, &der) : -1;

    if (n <= 0) {
        memset(out, 0, 32);
        return;
    }
    SHA256(der, (size_t)n, out);
    OPENSSL_free(der);
}

int deny_list_serial_content(uint8_t out[DENY_LIST_SERIAL_MAX], size_t *out_len,
                             const ASN1_INTEGER *serial)
{
    return serial_content(out, DENY_LIST_SERIAL_MAX, out_len, serial);
}

/* ---- writers ----------------------------------------------------------- */


/* store_next writes |next| to the store file, if there is one, before it is
 * published (called under write_lock). On failure the file is put back as
 * the current snapshot has it and DENY_LIST_ESTORE is returned: the caller
 * then drops |next| and nothing has changed, in memory or on disk. */
static int store_next(struct deny_list *d, const struct dl_snap *next, char *err, size_t errlen)
{
    int rc;

    if (d->store == NULL)
        return 0;
    rc = dl_write_snap(next, d->store, err, errlen);
    if (rc == 0)
        return 0;
    if (rc == -2) /* renamed, but the folder's fsync failed: undo it */
        (void)dl_write_snap(d->snap, d->store, NULL, 0);
    return DENY_LIST_ESTORE;
}

static int add_entry(struct deny_list *d, const struct dl_key *k, const char *reason, int64_t now,
                     int64_t expires_at, char *err, size_t errlen)
{
    struct dl_entry *e = NULL, *replaced = NULL;
    struct dl_snap *next = NULL;
    size_t reason_len;
    int rc = -1;

    if (d == NULL || k->id == NULL) {
        ERRF("NULL argument");
        return -1;
    }
    if (check_reason(reason, &reason_len, err, errlen) != 0)
        return -1;
    if (now < 0 || expires_at < 0 || (expires_at != 0 && expires_at <= now)) {
        ERRF("expires_at must be 0 (never) or after now");
        return -1;
    }
    e = dl_entry_new(k, reason, reason_len, now, expires_at);
    if (e == NULL) {
        ERRF("out of memory");
        return -1;
    }
    uint64_t hash = dl_key_hash(d, k);

    pthread_mutex_lock(&d->write_lock);
    long pos = dl_snap_find(d->snap, hash, k);
    if (pos < 0 && d->snap->count >= DENY_LIST_MAX_ENTRIES) {
        ERRF("deny list is full (%d entries)", DENY_LIST_MAX_ENTRIES);
        goto err;
    }
    next = dl_snap_rebuild(d->snap, pos, 1, false, 0);
    if (next == NULL) {
        ERRF("out of memory");
        goto err;
    }
    replaced = pos >= 0 ? d->snap->slot[pos].e : NULL;
    dl_snap_put(next, hash, e);
    if ((rc = store_next(d, next, err, errlen)) != 0)
        goto err;
    dl_publish(d, next, &replaced, replaced ? 1 : 0, false);
    pthread_mutex_unlock(&d->write_lock);
    return 0;
err:
    pthread_mutex_unlock(&d->write_lock);
    free(next); /* the slot table only: its entries are the current ones, and |e| */
    free(e);
    return rc;
}

int deny_list_add_serial(struct deny_list *d, const uint8_t issuer_name_sha256[32],
                         const uint8_t *serial, size_t serial_len, const char *reason, int64_t now,
                         int64_t expires_at, char *err, size_t errlen)
{
    if (serial == NULL || serial_len == 0) {
        ERRF("empty serial");
        return -1;
    }
    serial_minimal(&serial, &serial_len);
    if (serial_len > DENY_LIST_SERIAL_MAX) {
        ERRF("serial longer than %d octets", DENY_LIST_SERIAL_MAX);
        return -1;
    }
    struct dl_key k = {DENY_LIST_SERIAL, issuer_name_sha256, serial, serial_len};
    return add_entry(d, &k, reason, now, expires_at, err, errlen);
}

int deny_list_add_leaf(struct deny_list *d, const uint8_t leaf_sha256[32], const char *reason,
                       int64_t now, int64_t expires_at, char *err, size_t errlen)
{
    struct dl_key k = {DENY_LIST_LEAF, leaf_sha256, NULL, 0};
    return add_entry(d, &k, reason, now, expires_at, err, errlen);
}

static int remove_entry(struct deny_list *d, const struct dl_key *k, char *err, size_t errlen)
{
    struct dl_snap *next = NULL;
    struct dl_entry *gone;
    int rc = -1;

    if (err != NULL && errlen > 0)
        err[0] = 0;
    if (d == NULL || k->id == NULL)
        return -1;
    uint64_t hash = dl_key_hash(d, k);

    pthread_mutex_lock(&d->write_lock);
    long pos = dl_snap_find(d->snap, hash, k);
    if (pos < 0)
        goto err;
    next = dl_snap_rebuild(d->snap, pos, 0, false, 0);
    if (next == NULL) {
        ERRF("out of memory");
        goto err;
    }
    gone = d->snap->slot[pos].e;
    if ((rc = store_next(d, next, err, errlen)) != 0)
        goto err;
    dl_publish(d, next, &gone, 1, false);
    pthread_mutex_unlock(&d->write_lock);
    return 0;
err:
    pthread_mutex_unlock(&d->write_lock);
    free(next);
    return rc;
}

int deny_list_remove_serial(struct deny_list *d, const uint8_t issuer_name_sha256[32],
                            const uint8_t *serial, size_t serial_len, char *err, size_t errlen)
{
    if (serial == NULL || serial_len == 0)
        return -1;
    serial_minimal(&serial, &serial_len);
    if (serial_len > DENY_LIST_SERIAL_MAX)
        return -1;
    struct dl_key k = {DENY_LIST_SERIAL, issuer_name_sha256, serial, serial_len};
    return remove_entry(d, &k, err, errlen);
}

int deny_list_remove_leaf(struct deny_list *d, const uint8_t leaf_sha256[32], char *err,
                          size_t errlen)
{
    struct dl_key k = {DENY_LIST_LEAF, leaf_sha256, NULL, 0};
    return remove_entry(d, &k, err, errlen);
}

size_t deny_list_purge_expired(struct deny_list *d, int64_t now)
{
    struct dl_entry **gone = NULL;
    struct dl_snap *next = NULL;
    size_t n_gone = 0;

    if (d == NULL)
        return 0;
    pthread_mutex_lock(&d->write_lock);
    const struct dl_snap *cur = d->snap;
    for (size_t i = 0; i <= cur->mask; i++)
        n_gone += cur->slot[i].e != NULL && !entry_live(cur->slot[i].e, now);
    if (n_gone == 0)
        goto out;
    gone = malloc(n_gone * sizeof(*gone));
    next = gone ? dl_snap_rebuild(cur, -1, 0, true, now) : NULL;
    if (next == NULL) {
        n_gone = 0;
        goto out;
    }
    n_gone = 0;
    for (size_t i = 0; i <= cur->mask; i++)
        if (cur->slot[i].e != NULL && !entry_live(cur->slot[i].e, now))
            gone[n_gone++] = cur->slot[i].e;
    dl_publish(d, next, gone, n_gone, false);
out:
    pthread_mutex_unlock(&d->write_lock);
    free(gone);
    return n_gone;
}

/* ---- readers ------------------------------------------------------------- */

static void copy_reason(char *out, size_t cap, const char *reason)
{
    if (out == NULL || cap == 0)
        return;
    size_t n = strnlen(reason, cap - 1);
    memcpy(out, reason, n);
    out[n] = 0;
}

static bool match_key(const struct deny_list *d, const struct dl_key *k, int64_t now,
                      char *out_reason, size_t reason_len)
{
    bool found = false;

    copy_reason(out_reason, reason_len, "");
    if (d == NULL || k->id == NULL)
        return false;
    urcu_memb_read_lock();
    /* Acquire pairs with publish's release store. */
    const struct dl_snap *s = __atomic_load_n(&d->snap, __ATOMIC_ACQUIRE);
    if (s->count > 0) { /* the usual case is an empty list: skip the hash */
        long pos = dl_snap_find(s, dl_key_hash(d, k), k);
        if (pos >= 0 && entry_live(s->slot[pos].e, now)) {
            found = true;
            copy_reason(out_reason, reason_len, entry_reason(s->slot[pos].e));
        }
    }
    TSAN_RELEASE();
    urcu_memb_read_unlock();
    return found;
}

bool deny_list_match_serial(const struct deny_list *d, const uint8_t issuer_name_sha256[32],
                            const uint8_t *serial, size_t serial_len, int64_t now, char *out_reason,
                            size_t reason_len)
{
    if (serial == NULL || serial_len == 0) {
        copy_reason(out_reason, reason_len, "");
        return false;
    }
    serial_minimal(&serial, &serial_len);
    if (serial_len > DENY_LIST_SERIAL_MAX) {
        copy_reason(out_reason, reason_len, "");
        return false;
    }
    struct dl_key k = {DENY_LIST_SERIAL, issuer_name_sha256, serial, serial_len};
    return match_key(d, &k, now, out_reason, reason_len);
}

bool deny_list_match_leaf(const struct deny_list *d, const uint8_t leaf_sha256[32], int64_t now,
                          char *out_reason, size_t reason_len)
{
    struct dl_key k = {DENY_LIST_LEAF, leaf_sha256, NULL, 0};
    return match_key(d, &k, now, out_reason, reason_len);
}

size_t deny_list_count(const struct deny_list *d)
{
    size_t n;

    if (d == NULL)
        return 0;
    urcu_memb_read_lock();
    n = __atomic_load_n(&d->snap, __ATOMIC_ACQUIRE)->count;
    TSAN_RELEASE();
    urcu_memb_read_unlock();
    return n;
}

uint64_t deny_list_generation(const struct deny_list *d)
{
    return d ? __atomic_load_n(&d->generation, __ATOMIC_ACQUIRE) : 0;
}

static void entry_view(struct deny_list_entry *v, const struct dl_entry *e)
{
    v->kind = (enum deny_list_kind)e->kind;
    memcpy(v->id, e->id, 32);
    v->serial = e->serial_len ? e->data : NULL;
    v->serial_len = e->serial_len;
    v->reason = entry_reason(e);
    v->created_at = e->created_at;
    v->expires_at = e->expires_at;
}

/* dl_snap_foreach walks one snapshot; the caller keeps it alive. */
int dl_snap_foreach(const struct dl_snap *s, int (*fn)(const struct deny_list_entry *e, void *arg),
                    void *arg)
{
    struct deny_list_entry v;
    int rc = 0;

    for (size_t i = 0; i <= s->mask && rc == 0; i++) {
        if (s->slot[i].e == NULL)
            continue;
        entry_view(&v, s->slot[i].e);
        rc = fn(&v, arg);
    }
    return rc;
}

int deny_list_foreach(const struct deny_list *d,
                      int (*fn)(const struct deny_list_entry *e, void *arg), void *arg)
{
    int rc;

    if (d == NULL || fn == NULL)
        return 0;
    urcu_memb_read_lock();
    rc = dl_snap_foreach(__atomic_load_n(&d->snap, __ATOMIC_ACQUIRE), fn, arg);
    TSAN_RELEASE();
    urcu_memb_read_unlock();
    return rc;
}
