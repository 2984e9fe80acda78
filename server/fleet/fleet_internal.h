/* Private to the fleet (fleet.c, fleet_keys.c, fleet_apply.c,
 * fleet_state.c, fleet_crl.c, fleet_follower.c, fleet_admin.c,
 * fleet_status.c): its state and the helpers its files share. Callers use
 * fleet.h.
 *
 * Conventions: 0 or -1; key builders cannot fail and return the key's
 * length; etcd calls pass on ETCD_E* codes. */
#ifndef CERTVAL_FLEET_INTERNAL_H
#define CERTVAL_FLEET_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crl_cache.h"
#include "deny_list.h"
#include "etcd.h"
#include "fleet.h"

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

/* The fleet. Who writes what is said at the top of fleet.c. */
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

/* A deny entry in canonical form: the key (issuer + minimal serial, or
 * leaf) and the packed value. */
struct deny_key {
    bool leaf;
    uint8_t id[32];
    uint8_t serial[DENY_LIST_SERIAL_MAX];
    size_t serial_len;
};

/* A pushed CRL's manifest (PREFIX s/crl/<issuer id>), as fleet_crl.c
 * reads it. */
struct manifest {
    char gen[33];
    uint64_t size, chunks, number;
    uint8_t sha256[32];
    bool force;
    char issuer[FLEET_ISSUER_MAX];
};

/* The one fleet of the process (fleet.h): set by fleet_start before the
 * follower starts, cleared by fleet_stop after it has ended. */
extern struct fleet *g_fleet;

/* fleet.c */
/* fleet_now_s: the wall clock in seconds; fleet_now_ms: the monotonic
 * clock in milliseconds. */
int64_t fleet_now_s(void);
int64_t fleet_now_ms(void);
/* fleet_hex_of writes |n| bytes as 2n lower-case hex digits and a NUL. */
void fleet_hex_of(char *out, const uint8_t *p, size_t n);
/* fleet_from_hex decodes exactly |n| hex digits into |out|: 0 or -1. */
int fleet_from_hex(uint8_t *out, const char *s, size_t n);
/* fleet_set_detail sets the status detail to |what| followed by |arg|. */
void fleet_set_detail(struct fleet *f, const char *what, const char *arg);

/* fleet_keys.c */
/* fleet_key_of writes PREFIX |what| |rest| into |out| (|cap| >=
 * FLEET_KEY_MAX) and returns its length. Cannot fail: the prefix is bounded
 * by the schema and |what| + |rest| by the callers (< 300 bytes); it aborts
 * if a key would not fit. */
size_t fleet_key_of(char *out, size_t cap, const struct fleet *f, const char *what,
                    const char *rest);
/* fleet_deny_key_string writes |k|'s etcd key (as fleet_key_of, returning
 * its length); fleet_deny_key_parse reads the part after s/deny/;
 * fleet_deny_key_from_entry reads an admin DenyEntry's selectors (|msg|
 * says what is wrong): 0 or -1. */
size_t fleet_deny_key_string(char *out, size_t cap, const struct fleet *f,
                             const struct deny_key *k);
int fleet_deny_key_parse(struct deny_key *k, const char *s);
int fleet_deny_key_from_entry(struct deny_key *k, const Certval__V1__DenyEntry *e, char *msg,
                              size_t cap);

/* fleet_apply.c */
/* fleet_rel_key: |kv|'s key after the prefix, or NULL when it is not
 * under it. */
const char *fleet_rel_key(const struct fleet *f, const struct etcd_kv *kv);
/* fleet_apply_key applies one key's put (or delete) at |revision|: ETCD_OK
 * or the ETCD_E* code of a CRL that could not be read (follower thread). */
int fleet_apply_key(struct fleet *f, const struct etcd_kv *kv, bool is_delete, bool existed,
                    int64_t revision);
/* fleet_set_applied records |revision| as applied and wakes the admin
 * thread's waits. */
void fleet_set_applied(struct fleet *f, int64_t revision);
/* fleet_full_read reads PREFIX s/ at one revision and makes the local
 * state equal to it: ETCD_OK or ETCD_E*. */
int fleet_full_read(struct fleet *f, char *err, size_t errlen);

/* fleet_state.c */
/* The tracked CRLs (follower thread): find (NULL: none), add (or find;
 * NULL out of memory), remove. */
struct tracked_crl *fleet_tracked_find(struct fleet *f, const char *id);
struct tracked_crl *fleet_tracked_add(struct fleet *f, const char *id);
void fleet_tracked_remove(struct fleet *f, const char *id);
/* fleet_state_save writes STATE/deny-list.txt then STATE/fleet.txt
 * (nothing without a state folder); fleet_state_load reads fleet.txt
 * (missing: nothing known). Failures are logged. */
void fleet_state_save(struct fleet *f);
void fleet_state_load(struct fleet *f);

/* fleet_crl.c */
/* fleet_manifest_parse reads a manifest: 0, or -1 when it is not one. */
int fleet_manifest_parse(struct manifest *m, const uint8_t *val, size_t len);
/* fleet_chunk_key writes the key of chunk |i| of CRL |id| generation
 * |gen|. */
void fleet_chunk_key(char *out, size_t cap, const struct fleet *f, const char *id, const char *gen,
                     uint64_t i);
/* fleet_apply_manifest applies the CRL of a manifest (ETCD_OK, also when
 * refused; ETCD_ECOMPACTED or another code: read again), fleet_apply_withdraw
 * withdraws a tracked CRL (follower thread). */
int fleet_apply_manifest(struct fleet *f, const char *id, const uint8_t *val, size_t len,
                         int64_t revision);
void fleet_apply_withdraw(struct fleet *f, const char *id, int64_t revision);

/* fleet_follower.c */
/* fleet_follower is the follower thread's body (|arg|: the fleet). */
void *fleet_follower(void *arg);

#endif
