/* Private to cache/: the deny list's structures and the helpers shared by
 * deny_list.c (keys, snapshots, publication, readers and writers) and
 * deny_list_file.c (saving and loading the store file). Locking and RCU
 * rules: deny_list.c's head comment.
 *
 * Conventions: as deny_list.h (0, or -1 with a message in |err|);
 * constructors return NULL when out of memory; dl_snap_find returns the
 * slot, or -1 when the key is not there (a result, not an error). */
#ifndef CERTVAL_DENY_LIST_INTERNAL_H
#define CERTVAL_DENY_LIST_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "deny_list.h"

#define ERRF(...) ((err) && (errlen) ? (void)snprintf((err), (errlen), __VA_ARGS__) : (void)0)

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

/* dl_key_hash returns the keyed hash of |k| under |d|'s SipHash key. */
uint64_t dl_key_hash(const struct deny_list *d, const struct dl_key *k);

/* dl_utf8_ok reports whether |s| (|n| bytes) is well-formed UTF-8. */
bool dl_utf8_ok(const uint8_t *s, size_t n);

/* dl_entry_new returns a new entry for |k|, or NULL when out of memory. */
struct dl_entry *dl_entry_new(const struct dl_key *k, const char *reason, size_t reason_len,
                              int64_t created_at, int64_t expires_at);

/* dl_snap_alloc returns an empty table sized for |count| entries, or NULL. */
struct dl_snap *dl_snap_alloc(size_t count);

/* dl_snap_find returns the slot of |k| in |s|, or -1. */
long dl_snap_find(const struct dl_snap *s, uint64_t hash, const struct dl_key *k);

/* dl_snap_put inserts |e| (not present yet) into |s|, which has room. */
void dl_snap_put(struct dl_snap *s, uint64_t hash, struct dl_entry *e);

/* dl_snap_rebuild returns a copy of |old| without slot |skip| (-1 = none),
 * without expired entries when |purge|, with room for |extra| more; NULL
 * when out of memory. */
struct dl_snap *dl_snap_rebuild(const struct dl_snap *old, long skip, size_t extra, bool purge,
                                int64_t now);

/* dl_snap_free_entries frees every entry |s| holds (not |s| itself). */
void dl_snap_free_entries(struct dl_snap *s);

/* dl_publish installs |next|, waits for the grace period, then frees the
 * old table and the |n_retired| entries of |retired| (every entry of the
 * old table when |retire_all_old|). Under write_lock. */
void dl_publish(struct deny_list *d, struct dl_snap *next, struct dl_entry **retired,
                size_t n_retired, bool retire_all_old);

/* dl_snap_foreach calls |fn| with each entry of |s| until it returns
 * non-zero, and returns that value (0 when all were visited). */
int dl_snap_foreach(const struct dl_snap *s,
                    int (*fn)(const struct deny_list_entry *e, void *arg), void *arg);

/* dl_write_snap writes |s| to |path| atomically (temporary file, fsync,
 * rename, fsync of the folder). 0, or -1 with a message in |err|. */
int dl_write_snap(const struct dl_snap *s, const char *path, char *err, size_t errlen);

#endif
