/* Emergency deny list.
 *
 * Operator-managed entries that make a certificate DENY REVOKED at once,
 * ahead of (and independently of) CRLs: either an (issuer, serial) pair or
 * the SHA-256 of a leaf certificate's DER. Each entry carries a reason, a
 * creation time and an optional expiry.
 *
 * Who does what (docs/revocation.md, "Deny list and verdict cache"):
 *  - readers: deny_list_match_*, deny_list_count, deny_list_generation and
 *    deny_list_foreach, from any thread registered with
 *    certval_rcu_reader_register() (cache/rcu_reader.h). They take only the RCU
 *    read lock: no mutex, no allocation, no write to shared memory.
 *  - writers: deny_list_add_*, _remove_*, _purge_expired, _load, from any
 *    thread. They are serialised by an internal mutex, build the next
 *    immutable snapshot aside, publish it with one pointer store and wait
 *    for an RCU grace period before freeing the old one. A writer must not
 *    be inside an RCU read-side section (for example inside a
 *    deny_list_foreach callback): the grace period would wait for itself.
 *
 * Changes are visible to every thread of the process as soon as the writer
 * returns. With a store file (deny_list_set_store), an add or remove is
 * written to it and synced before it is published, so a change that
 * returned 0 survives a crash. Propagation to other replicas is the admin
 * API's job.
 *
 * Conventions: functions that can fail return 0 on success and -1 with a
 * message in |err| (when |err| is not NULL and |errlen| > 0); adds and
 * removes return DENY_LIST_ESTORE instead when the store file could not be
 * written (nothing changed then, in memory or in the file). */
#ifndef CERTVAL_DENY_LIST_H
#define CERTVAL_DENY_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>
#include <openssl/x509.h>

#include "serial.h"

#define DENY_LIST_SERIAL_MAX SERIAL_MAX_OCTETS /* serial content octets (serial.h) */
#define DENY_LIST_REASON_MAX 128      /* reason bytes, without the NUL */
#define DENY_LIST_MAX_ENTRIES 1000000 /* adds and loads beyond are refused */
#define DENY_LIST_ESTORE (-2)         /* the store file could not be written */

enum deny_list_kind {
    DENY_LIST_SERIAL = 1, /* issuer name SHA-256 + serial */
    DENY_LIST_LEAF = 2,   /* SHA-256 of the leaf certificate's DER */
};

/* One entry, as shown to deny_list_foreach callbacks. Every pointer is
 * borrowed and valid only during the callback. */
struct deny_list_entry {
    enum deny_list_kind kind;
    uint8_t id[32];        /* issuer name SHA-256, or leaf SHA-256 */
    const uint8_t *serial; /* DENY_LIST_SERIAL only; minimal content octets */
    size_t serial_len;     /* 0 for DENY_LIST_LEAF */
    const char *reason;    /* NUL-terminated UTF-8 */
    int64_t created_at;    /* Unix seconds */
    int64_t expires_at;    /* Unix seconds; 0 = never */
};

struct deny_list;

/* deny_list_new returns an empty deny list, or NULL on allocation failure. */
struct deny_list *deny_list_new(void);

/* deny_list_free frees |d| and every entry; NULL is accepted. No reader or
 * writer may be using it. */
void deny_list_free(struct deny_list *d);

/* deny_list_set_store makes |path| (copied; NULL = none) the file every
 * later add and remove is written to, in deny_list_save's format, before it
 * takes effect. deny_list_purge_expired does not write it (expired entries
 * are dropped at load anyway). Returns -1 only on allocation failure.
 * Thread-safe (writer). */
int deny_list_set_store(struct deny_list *d, const char *path, char *err, size_t errlen);

/* deny_list_issuer_key sets |out| to the SHA-256 of the DER encoding of
 * |issuer| (all zero if it cannot be encoded). Use the issuer name of the
 * certificate being checked (X509_get_issuer_name), which is also the
 * subject of its issuer. Thread-safe for an |issuer| no thread modifies. */
void deny_list_issuer_key(uint8_t out[32], const X509_NAME *issuer);

/* deny_list_serial_content writes the minimal DER content octets of
 * |serial| to |out| and their count to |*out_len|: the form serials are
 * listed in. Returns -1 when the serial is longer than
 * DENY_LIST_SERIAL_MAX octets (such a serial cannot be listed). */
int deny_list_serial_content(uint8_t out[DENY_LIST_SERIAL_MAX], size_t *out_len,
                             const ASN1_INTEGER *serial);

/* deny_list_add_serial lists |serial| (INTEGER content octets, 1 to
 * DENY_LIST_SERIAL_MAX; redundant leading 0x00/0xff octets are removed) as
 * issued by the issuer whose name hashes to |issuer_name_sha256|.
 * |reason|: valid UTF-8, no control characters, at most DENY_LIST_REASON_MAX
 * bytes (may be empty, not NULL). |expires_at| 0 means never; otherwise it
 * must be after |now|. An existing entry with the same key is replaced (new
 * reason and times). Refused (-1): bad arguments, the list is full
 * (DENY_LIST_MAX_ENTRIES), allocation failure; DENY_LIST_ESTORE: the store
 * file could not be written. Thread-safe (writer). */
int deny_list_add_serial(struct deny_list *d, const uint8_t issuer_name_sha256[32],
                         const uint8_t *serial, size_t serial_len, const char *reason,
                         int64_t now, int64_t expires_at, char *err, size_t errlen);

/* deny_list_add_leaf lists the certificate whose DER hashes to
 * |leaf_sha256|; otherwise as deny_list_add_serial. */
int deny_list_add_leaf(struct deny_list *d, const uint8_t leaf_sha256[32], const char *reason,
                       int64_t now, int64_t expires_at, char *err, size_t errlen);

/* deny_list_remove_serial removes the (issuer, serial) entry: 0 when
 * removed, -1 when not listed (or on allocation failure, with a message in
 * |err|; "not listed" leaves |err| empty), DENY_LIST_ESTORE when the store
 * file could not be written (the entry stays). Thread-safe (writer). */
int deny_list_remove_serial(struct deny_list *d, const uint8_t issuer_name_sha256[32],
                            const uint8_t *serial, size_t serial_len, char *err, size_t errlen);

/* deny_list_remove_leaf removes the leaf entry; as deny_list_remove_serial. */
int deny_list_remove_leaf(struct deny_list *d, const uint8_t leaf_sha256[32], char *err,
                          size_t errlen);

/* deny_list_purge_expired removes every entry expired at |now| and returns
 * how many were removed (0 also on allocation failure: expired entries never
 * match anyway, purging only frees their memory). Thread-safe (writer). */
size_t deny_list_purge_expired(struct deny_list *d, int64_t now);

/* deny_list_match_serial returns true when (issuer, serial) is listed and
 * not expired at |now| (an entry matches while now < expires_at), copying
 * its reason (truncated, NUL-terminated) into |out_reason| when it is not
 * NULL and |reason_len| > 0; |out_reason| is set to "" otherwise. Serials
 * longer than DENY_LIST_SERIAL_MAX never match. Lock-free; the calling
 * thread must be a registered RCU reader. */
bool deny_list_match_serial(const struct deny_list *d, const uint8_t issuer_name_sha256[32],
                            const uint8_t *serial, size_t serial_len, int64_t now,
                            char *out_reason, size_t reason_len);

/* deny_list_match_leaf is deny_list_match_serial for a leaf SHA-256. */
bool deny_list_match_leaf(const struct deny_list *d, const uint8_t leaf_sha256[32], int64_t now,
                          char *out_reason, size_t reason_len);

/* deny_list_count returns the number of entries in the current snapshot
 * (expired ones included until purged). Registered reader threads only. */
size_t deny_list_count(const struct deny_list *d);

/* deny_list_generation returns a counter bumped after every published
 * change (acquire load): a thread that sees generation g also sees every
 * change up to g. The verdict cache records it. Any thread. */
uint64_t deny_list_generation(const struct deny_list *d);

/* deny_list_foreach calls |fn| for every entry of one consistent snapshot,
 * under the RCU read lock, in no particular order; it stops early when |fn|
 * returns non-zero and returns that value (0 otherwise). |fn| must not call
 * deny_list writers nor block for long. Registered reader threads only. */
int deny_list_foreach(const struct deny_list *d,
                      int (*fn)(const struct deny_list_entry *e, void *arg), void *arg);

/* deny_list_save writes the current entries to |path| atomically: to
 * "|path|.tmp", fsync, rename over |path|, fsync of the directory. The file
 * format is "certval-deny-list 1", one entry per line (hex fields) and an
 * "end N" line (docs/revocation.md). -1 with a message naming the file on
 * any I/O error (|path| is then unchanged). Thread-safe: it holds the
 * writers' mutex while it walks the entries, so the caller need not be a
 * registered reader and concurrent changes wait for it. */
int deny_list_save(const struct deny_list *d, const char *path, char *err, size_t errlen);

/* deny_list_load replaces the contents of |d| with the entries of |path|,
 * dropping those expired at |now|, in one publication. A missing file is not
 * an error: 0, and |d| is left unchanged. A malformed file (bad header, bad
 * field, line over 1 KiB, duplicate entry, missing or wrong "end" line,
 * more than DENY_LIST_MAX_ENTRIES entries) is refused with -1 and a message
 * "PATH:LINE: problem"; |d| is then unchanged. Thread-safe (writer). */
int deny_list_load(struct deny_list *d, const char *path, int64_t now, char *err, size_t errlen);

#endif
