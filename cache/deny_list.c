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
#include "deny_list.h"
#include "hex.h"

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

#define ERRF(...) ((err) && (errlen) ? (void)snprintf((err), (errlen), __VA_ARGS__) : (void)0)

/* Same ThreadSanitizer annotation as crl_cache.c: TSan cannot see that a
 * grace period orders a reader's last access before the writer's free. */
#if defined(__SANITIZE_THREAD__)
#define DL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define DL_TSAN 1
#endif
#endif
#ifdef DL_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
static char dl_tsan_grace;
#define TSAN_RELEASE() __tsan_release(&dl_tsan_grace)
#define TSAN_ACQUIRE() __tsan_acquire(&dl_tsan_grace)
#else
#define TSAN_RELEASE() ((void)0)
#define TSAN_ACQUIRE() ((void)0)
#endif

#define DL_FILE_MAGIC "certval-deny-list 1"
#define DL_LINE_MAX 1024  /* bytes per line, newline excluded */
#define DL_MIN_CAP 16
#define DL_HASH_IN_MAX (1 + 32 + DENY_LIST_SERIAL_MAX)

struct dl_entry {
    int64_t created_at;
    int64_t expires_at;
    uint8_t kind;
    uint8_t serial_len;
    uint8_t reason_len;
    uint8_t id[32];
    uint8_t data[]; /* serial octets, then reason and its NUL */
};

struct dl_slot {
    uint64_t hash; /* kept in the slot: probes and rebuilds never touch entries */
    struct dl_entry *e; /* NULL = empty */
};

struct dl_snap {
    size_t count;
    size_t mask; /* capacity - 1; capacity is a power of two, load <= 1/2 */
    struct dl_slot slot[];
};

struct deny_list {
    struct dl_snap *snap; /* RCU-protected */
    pthread_mutex_t write_lock;
    uint64_t generation; /* atomic */
    uint64_t sip_key[2]; /* immutable after deny_list_new */
    char *store;         /* deny_list_set_store's file, NULL = none; under write_lock */
};

/* A key to look up or insert, not owned. */
struct dl_key {
    uint8_t kind;
    const uint8_t *id;
    const uint8_t *serial;
    size_t serial_len;
};

/* ---- keys and entries -------------------------------------------------- */

/* serial_minimal drops the octets X.690 8.3.2 forbids (first nine bits all
 * 0 or all 1), so "00 01" and "01" name the same serial. */
static void serial_minimal(const uint8_t **p, size_t *n)
{
    while (*n > 1 && (((*p)[0] == 0x00 && !((*p)[1] & 0x80)) ||
                      ((*p)[0] == 0xff && ((*p)[1] & 0x80)))) {
        (*p)++;
        (*n)--;
    }
}

static uint64_t key_hash(const struct deny_list *d, const struct dl_key *k)
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

/* utf8_ok accepts well-formed UTF-8 (no overlongs, surrogates or code
 * points over U+10FFFF) without control characters: reasons are shown in
 * logs and in protobuf string fields, which must be UTF-8. */
static bool utf8_ok(const uint8_t *s, size_t n)
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
    if (!utf8_ok((const uint8_t *)reason, n)) {
        ERRF("reason is not UTF-8 text without control characters");
        return -1;
    }
    *out_len = n;
    return 0;
}

static struct dl_entry *entry_new(const struct dl_key *k, const char *reason, size_t reason_len,
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

static struct dl_snap *snap_alloc(size_t count)
{
    size_t cap = cap_for(count);
    struct dl_snap *s = calloc(1, sizeof(*s) + cap * sizeof(s->slot[0]));

    if (s != NULL)
        s->mask = cap - 1;
    return s;
}

/* snap_find returns the slot index of |k| in |s|, or -1. Load <= 1/2, so an
 * empty slot ends every probe within mask + 1 steps. */
static long snap_find(const struct dl_snap *s, uint64_t hash, const struct dl_key *k)
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

/* snap_put inserts a slot known to be absent; the table has room. */
static void snap_put(struct dl_snap *s, uint64_t hash, struct dl_entry *e)
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

/* snap_rebuild copies |old| into a table sized for |extra| more entries,
 * leaving out slot |skip| (-1: none) and, when |purge|, entries expired at
 * |now|. NULL on allocation failure. */
static struct dl_snap *snap_rebuild(const struct dl_snap *old, long skip, size_t extra, bool purge,
                                    int64_t now)
{
    struct dl_snap *s = snap_alloc(old->count + extra);

    if (s == NULL)
        return NULL;
    for (size_t i = 0; i <= old->mask; i++) {
        const struct dl_slot *sl = &old->slot[i];
        if (sl->e == NULL || (long)i == skip || (purge && !entry_live(sl->e, now)))
            continue;
        snap_put(s, sl->hash, sl->e);
    }
    return s;
}

static void snap_free_entries(struct dl_snap *s)
{
    for (size_t i = 0; s != NULL && i <= s->mask; i++)
        free(s->slot[i].e);
}

/* ---- publication --------------------------------------------------------- */

/* publish makes |next| current, bumps the generation, waits for readers of
 * the old snapshot to leave, then frees the old table and |retired| (the
 * entries |next| no longer holds, |n_retired| of them, or with
 * |retire_all_old| every entry of the old table). Called under write_lock;
 * cannot fail. */
static void publish(struct deny_list *d, struct dl_snap *next, struct dl_entry **retired,
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
        snap_free_entries(old);
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
    d->snap = snap_alloc(0);
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
    snap_free_entries(d->snap);
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
    uint8_t buf[DENY_LIST_SERIAL_MAX + 1];
    uint8_t *p = buf;
    int n;

    *out_len = 0;
    n = serial ? i2c_ASN1_INTEGER(serial, NULL) : -1;
    if (n <= 0 || (size_t)n > sizeof(buf) || i2c_ASN1_INTEGER(serial, &p) != n)
        return -1;
    const uint8_t *q = buf;
    size_t len = (size_t)n;
    serial_minimal(&q, &len);
    if (len > DENY_LIST_SERIAL_MAX)
        return -1;
    memcpy(out, q, len);
    *out_len = len;
    return 0;
}

/* ---- writers ----------------------------------------------------------- */

static int write_snap(const struct dl_snap *s, const char *path, char *err, size_t errlen);

/* store_next writes |next| to the store file, if there is one, before it is
 * published (called under write_lock). On failure the file is put back as
 * the current snapshot has it and DENY_LIST_ESTORE is returned: the caller
 * then drops |next| and nothing has changed, in memory or on disk. */
static int store_next(struct deny_list *d, const struct dl_snap *next, char *err, size_t errlen)
{
    int rc;

    if (d->store == NULL)
        return 0;
    rc = write_snap(next, d->store, err, errlen);
    if (rc == 0)
        return 0;
    if (rc == -2) /* renamed, but the folder's fsync failed: undo it */
        (void)write_snap(d->snap, d->store, NULL, 0);
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
    e = entry_new(k, reason, reason_len, now, expires_at);
    if (e == NULL) {
        ERRF("out of memory");
        return -1;
    }
    uint64_t hash = key_hash(d, k);

    pthread_mutex_lock(&d->write_lock);
    long pos = snap_find(d->snap, hash, k);
    if (pos < 0 && d->snap->count >= DENY_LIST_MAX_ENTRIES) {
        ERRF("deny list is full (%d entries)", DENY_LIST_MAX_ENTRIES);
        goto err;
    }
    next = snap_rebuild(d->snap, pos, 1, false, 0);
    if (next == NULL) {
        ERRF("out of memory");
        goto err;
    }
    replaced = pos >= 0 ? d->snap->slot[pos].e : NULL;
    snap_put(next, hash, e);
    if ((rc = store_next(d, next, err, errlen)) != 0)
        goto err;
    publish(d, next, &replaced, replaced ? 1 : 0, false);
    pthread_mutex_unlock(&d->write_lock);
    return 0;
err:
    pthread_mutex_unlock(&d->write_lock);
    free(next); /* the slot table only: its entries are the current ones, and |e| */
    free(e);
    return rc;
}

int deny_list_add_serial(struct deny_list *d, const uint8_t issuer_name_sha256[32],
                         const uint8_t *serial, size_t serial_len, const char *reason,
                         int64_t now, int64_t expires_at, char *err, size_t errlen)
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
    uint64_t hash = key_hash(d, k);

    pthread_mutex_lock(&d->write_lock);
    long pos = snap_find(d->snap, hash, k);
    if (pos < 0)
        goto err;
    next = snap_rebuild(d->snap, pos, 0, false, 0);
    if (next == NULL) {
        ERRF("out of memory");
        goto err;
    }
    gone = d->snap->slot[pos].e;
    if ((rc = store_next(d, next, err, errlen)) != 0)
        goto err;
    publish(d, next, &gone, 1, false);
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
    next = gone ? snap_rebuild(cur, -1, 0, true, now) : NULL;
    if (next == NULL) {
        n_gone = 0;
        goto out;
    }
    n_gone = 0;
    for (size_t i = 0; i <= cur->mask; i++)
        if (cur->slot[i].e != NULL && !entry_live(cur->slot[i].e, now))
            gone[n_gone++] = cur->slot[i].e;
    publish(d, next, gone, n_gone, false);
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
        long pos = snap_find(s, key_hash(d, k), k);
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
                            const uint8_t *serial, size_t serial_len, int64_t now,
                            char *out_reason, size_t reason_len)
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

/* snap_foreach walks one snapshot; the caller keeps it alive. */
static int snap_foreach(const struct dl_snap *s,
                        int (*fn)(const struct deny_list_entry *e, void *arg), void *arg)
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
    rc = snap_foreach(__atomic_load_n(&d->snap, __ATOMIC_ACQUIRE), fn, arg);
    TSAN_RELEASE();
    urcu_memb_read_unlock();
    return rc;
}

/* ---- persistence: saving --------------------------------------------------
 *
 * File format, version 1 (one entry per line, fields separated by one space,
 * binary fields in lowercase hex, the reason as hex of its UTF-8 bytes or
 * "-" when empty, times as decimal Unix seconds):
 *
 *   certval-deny-list 1
 *   serial <issuer-name-sha256> <serial> <created_at> <expires_at> <reason>
 *   leaf <leaf-sha256> <created_at> <expires_at> <reason>
 *   end <number of entry lines>
 *
 * The "end" line catches a truncated file (the rename makes that unlikely,
 * a hand copy does not). The longest line is about 500 bytes. */

static void hex_put(FILE *f, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        putc(digits[p[i] >> 4], f);
        putc(digits[p[i] & 15], f);
    }
}

static int save_entry(const struct deny_list_entry *e, void *arg)
{
    FILE *f = arg;

    fputs(e->kind == DENY_LIST_SERIAL ? "serial " : "leaf ", f);
    hex_put(f, e->id, 32);
    if (e->kind == DENY_LIST_SERIAL) {
        putc(' ', f);
        hex_put(f, e->serial, e->serial_len);
    }
    fprintf(f, " %lld %lld ", (long long)e->created_at, (long long)e->expires_at);
    if (e->reason[0] == 0)
        putc('-', f);
    else
        hex_put(f, (const uint8_t *)e->reason, strlen(e->reason));
    putc('\n', f);
    return ferror(f) ? -1 : 0;
}

/* fsync_dir makes the rename durable (POSIX: the directory entry is data of
 * the directory). */
static int fsync_dir(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;

    if (n == 0)
        n = 1; /* "/file" */
    if (n >= sizeof(dir))
        return -1;
    memcpy(dir, slash ? path : ".", n);
    dir[n] = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* write_snap writes |s| to |path| through "|path|.tmp": 0; -1 when |path|
 * is unchanged; -2 when |path| was replaced but the folder's fsync failed
 * (the new file may not survive a crash). The caller keeps |s| alive. */
static int write_snap(const struct dl_snap *s, const char *path, char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    FILE *f = NULL;
    int fd = -1, rc = -1;

    if (path == NULL || snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        ERRF("bad path");
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
        ERRF("%s: %s", tmp, strerror(errno));
        goto err;
    }
    fd = -1; /* owned by f now */
    fprintf(f, "%s\n", DL_FILE_MAGIC);
    if (snap_foreach(s, save_entry, f) != 0 || fprintf(f, "end %zu\n", s->count) < 0 ||
        fflush(f) != 0 || fsync(fileno(f)) != 0) {
        ERRF("%s: write failed: %s", tmp, strerror(errno));
        goto err;
    }
    if (fclose(f) != 0) {
        f = NULL;
        ERRF("%s: close failed: %s", tmp, strerror(errno));
        goto err;
    }
    f = NULL;
    if (rename(tmp, path) != 0) {
        ERRF("rename %s to %s: %s", tmp, path, strerror(errno));
        goto err;
    }
    if (fsync_dir(path) != 0) {
        ERRF("%s: fsync of the directory failed: %s", path, strerror(errno));
        return -2;
    }
    rc = 0;
err:
    if (f != NULL)
        fclose(f);
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int deny_list_save(const struct deny_list *d, const char *path, char *err, size_t errlen)
{
    int rc;

    if (d == NULL || path == NULL) {
        ERRF("bad path");
        return -1;
    }
    /* The write lock, not the read lock: no writer can free the snapshot
     * while we hold it, the walk may take a while without delaying grace
     * periods, and two saves cannot interleave on the same .tmp file. */
    pthread_mutex_lock((pthread_mutex_t *)&d->write_lock);
    rc = write_snap(d->snap, path, err, errlen);
    pthread_mutex_unlock((pthread_mutex_t *)&d->write_lock);
    return rc == 0 ? 0 : -1;
}

/* ---- persistence: loading ------------------------------------------------ */

struct dl_loader {
    struct deny_list *d;
    struct dl_snap *snap;   /* private until published */
    size_t entry_lines;
    bool ended;
};

/* next_field cuts the next space-separated field off |line|. */
static bool next_field(CBS *line, CBS *out)
{
    const uint8_t *p = CBS_data(line);
    size_t n = CBS_len(line), i = 0;

    while (i < n && p[i] != ' ')
        i++;
    if (i == 0)
        return false;
    CBS_init(out, p, i);
    CBS_skip(line, i < n ? i + 1 : i);
    return true;
}

/* hex_field decodes |f| into |out| (at most |cap| bytes). */
static bool hex_field(const CBS *f, uint8_t *out, size_t cap, size_t *out_len)
{
    const uint8_t *p = CBS_data(f);
    size_t n = CBS_len(f);

    if (n == 0 || n % 2 != 0 || n / 2 > cap)
        return false;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_digit_value(p[2 * i]), lo = hex_digit_value(p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *out_len = n / 2;
    return true;
}

/* time_field parses a non-negative decimal int64 without strtoll's
 * leniencies (sign, spaces, empty). */
static bool time_field(const CBS *f, int64_t *out)
{
    const uint8_t *p = CBS_data(f);
    size_t n = CBS_len(f);
    int64_t v = 0;

    if (n == 0 || n > 19)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9' || v > (INT64_MAX - (p[i] - '0')) / 10)
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

/* loader_grow doubles the private table when it would pass half full. */
static int loader_grow(struct dl_loader *L)
{
    if (2 * (L->snap->count + 1) <= L->snap->mask + 1)
        return 0;
    struct dl_snap *bigger = snap_rebuild(L->snap, -1, L->snap->count + 1, false, 0);
    if (bigger == NULL)
        return -1;
    free(L->snap);
    L->snap = bigger;
    return 0;
}

/* load_entry parses one "serial"/"leaf" line (after its first field). */
static const char *load_entry(struct dl_loader *L, uint8_t kind, CBS *rest, int64_t now)
{
    uint8_t id[32], serial[DENY_LIST_SERIAL_MAX], reason[DENY_LIST_REASON_MAX + 1];
    size_t id_len = 0, serial_len = 0, reason_len = 0;
    int64_t created, expires;
    CBS f;

    if (!next_field(rest, &f) || !hex_field(&f, id, 32, &id_len) || id_len != 32)
        return "bad SHA-256 field";
    if (kind == DENY_LIST_SERIAL) {
        if (!next_field(rest, &f) || !hex_field(&f, serial, sizeof(serial), &serial_len))
            return "bad serial field";
        const uint8_t *sp = serial;
        serial_minimal(&sp, &serial_len);
        if (sp != serial)
            return "serial not minimally encoded";
    }
    if (!next_field(rest, &f) || !time_field(&f, &created))
        return "bad created_at field";
    if (!next_field(rest, &f) || !time_field(&f, &expires))
        return "bad expires_at field";
    if (!next_field(rest, &f))
        return "missing reason field";
    if (!CBS_mem_equal(&f, (const uint8_t *)"-", 1) &&
        !hex_field(&f, reason, DENY_LIST_REASON_MAX, &reason_len))
        return "bad reason field";
    if (CBS_len(rest) != 0)
        return "trailing fields";
    if (!utf8_ok(reason, reason_len))
        return "reason is not UTF-8 text without control characters";
    L->entry_lines++;
    if (L->entry_lines > DENY_LIST_MAX_ENTRIES)
        return "more than 1000000 entries";
    if (expires != 0 && now >= expires)
        return NULL; /* expired while stored: dropped */
    struct dl_key k = {kind, id, serial, serial_len};
    uint64_t hash = key_hash(L->d, &k);
    if (snap_find(L->snap, hash, &k) >= 0)
        return "duplicate entry";
    reason[reason_len] = 0;
    if (loader_grow(L) != 0)
        return "out of memory";
    struct dl_entry *e = entry_new(&k, (const char *)reason, reason_len, created, expires);
    if (e == NULL)
        return "out of memory";
    snap_put(L->snap, hash, e);
    return NULL;
}

/* load_line parses one line (without its newline); NULL or a problem. */
static const char *load_line(struct dl_loader *L, const char *line, size_t len, size_t lineno,
                             int64_t now)
{
    CBS rest, f;

    if (lineno == 1)
        return strcmp(line, DL_FILE_MAGIC) == 0 ? NULL : "not a certval deny list version 1";
    if (L->ended)
        return "data after the end line";
    CBS_init(&rest, (const uint8_t *)line, len);
    if (!next_field(&rest, &f))
        return "empty line";
    if (CBS_mem_equal(&f, (const uint8_t *)"serial", 6))
        return load_entry(L, DENY_LIST_SERIAL, &rest, now);
    if (CBS_mem_equal(&f, (const uint8_t *)"leaf", 4))
        return load_entry(L, DENY_LIST_LEAF, &rest, now);
    if (CBS_mem_equal(&f, (const uint8_t *)"end", 3)) {
        int64_t n;
        if (!next_field(&rest, &f) || !time_field(&f, &n) || CBS_len(&rest) != 0)
            return "bad end line";
        if ((uint64_t)n != L->entry_lines)
            return "end line count does not match the entries (truncated file?)";
        L->ended = true;
        return NULL;
    }
    return "unknown line type";
}

int deny_list_load(struct deny_list *d, const char *path, int64_t now, char *err, size_t errlen)
{
    struct dl_loader L = {.d = d};
    char line[DL_LINE_MAX + 2]; /* the line, its newline, the NUL */
    const char *problem = NULL;
    size_t lineno = 0;
    FILE *f = NULL;

    if (d == NULL || path == NULL) {
        ERRF("NULL argument");
        return -1;
    }
    f = fopen(path, "re");
    if (f == NULL) {
        if (errno == ENOENT)
            return 0;
        ERRF("%s: %s", path, strerror(errno));
        return -1;
    }
    L.snap = snap_alloc(0);
    if (L.snap == NULL) {
        problem = "out of memory";
        goto err;
    }
    /* At most 1M entry lines + header + end line; the entry limit stops the
     * loop long before it could run away. */
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strlen(line);
        lineno++;
        if (len == 0 || line[len - 1] != '\n') {
            problem = len > DL_LINE_MAX ? "line longer than 1024 bytes" : "missing newline";
            goto err;
        }
        line[--len] = 0;
        if (memchr(line, 0, len) != NULL) {
            problem = "NUL byte in line";
            goto err;
        }
        problem = load_line(&L, line, len, lineno, now);
        if (problem != NULL)
            goto err;
    }
    if (ferror(f)) {
        problem = "read error";
        goto err;
    }
    lineno++;
    if (!L.ended) {
        problem = lineno == 1 ? "empty file" : "missing end line (truncated file?)";
        goto err;
    }
    fclose(f);
    pthread_mutex_lock(&d->write_lock);
    publish(d, L.snap, NULL, 0, true);
    pthread_mutex_unlock(&d->write_lock);
    return 0;
err:
    ERRF("%s:%zu: %s", path, lineno, problem);
    fclose(f);
    snap_free_entries(L.snap);
    free(L.snap);
    return -1;
}
