/* Fleet (fleet.h): the admin API's writes, which go to etcd (and wait,
 * bounded, until this pod has applied them). */
#include "fleet_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "crl_fetch_http.h"
#include "log.h"
#include "reload.h"

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
    rc = k->leaf ? deny_list_add_leaf(scratch, k->id, e->reason, fleet_now_s(), e->expires_unix,
                                      msg, cap)
                 : deny_list_add_serial(scratch, k->id, k->serial, k->serial_len, e->reason,
                                        fleet_now_s(), e->expires_unix, msg, cap);
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
    if (fleet_deny_key_from_entry(&k, e, msg, cap) < 0)
        return GRPC_STATUS_INVALID_ARGUMENT;
    fleet_deny_key_string(key, sizeof(key), f, &k);
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
            fleet_hex_of(serhex, k.serial, k.serial_len);
            v.issuer_name_sha256.data = k.id;
            v.issuer_name_sha256.len = 32;
            v.serial_hex = serhex;
        }
        v.reason = e->reason;
        v.expires_unix = e->expires_unix;
        v.created_unix = fleet_now_s();
        /* An expiring entry is bound to a lease, so etcd deletes it on
         * every pod when it lapses (each pod also lapses it locally). */
        if (e->expires_unix > 0) {
            rc = etcd_lease_grant(f->etcd, &lease, e->expires_unix - fleet_now_s(), err,
                                  sizeof(err));
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
    size_t len;
    size_t elen;

    snprintf(rest, sizeof(rest), "%s/%s/", id, gen);
    len = fleet_key_of(from, sizeof(from), f, "c/", rest);
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
        next_update != 0 && next_update < fleet_now_s()) {
        snprintf(msg, cap,
                 "CRL refused: its nextUpdate has passed: every certificate of its "
                 "issuer would be REVOCATION_STALE; push with force to use it anyway");
        code = GRPC_STATUS_FAILED_PRECONDITION;
        goto out;
    }
    /* Refused here as PushCrl refuses it, before it reaches any pod. */
    if (reload_crl_check(f->crls, der, der_len, issuer, issuer_cap, number, entries, err,
                         sizeof(err)) < 0) {
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
    fleet_hex_of(id, h, 32);
    RAND_bytes(gb, sizeof(gb));
    fleet_hex_of(gen, gb, sizeof(gb));
    SHA256(der, der_len, h);
    fleet_hex_of(hhex, h, 32);
    fleet_key_of(key, sizeof(key), f, "s/crl/", id);
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

        fleet_chunk_key(ck, sizeof(ck), f, id, gen, i);
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
        size_t cfrom_len, cmid_len;
        struct etcd_cmp cmp = {ETCD_CMP_MOD, ETCD_CMP_EQUAL, key, strlen(key), mod};
        struct etcd_op ops[3];

        snprintf(rest, sizeof(rest), "%s/", id);
        cfrom_len = fleet_key_of(cfrom, sizeof(cfrom), f, "c/", rest);
        cend_len = etcd_prefix_end(cend, sizeof(cend), cfrom, cfrom_len);
        snprintf(rest, sizeof(rest), "%s/%s/", id, gen);
        cmid_len = fleet_key_of(cmid, sizeof(cmid), f, "c/", rest);
        gend_len = etcd_prefix_end(gend, sizeof(gend), cmid, cmid_len);
        memset(ops, 0, sizeof(ops));
        ops[0].key = key;
        ops[0].key_len = strlen(key);
        ops[0].value = manifest;
        ops[0].value_len = strlen(manifest);
        /* Every chunk of the issuer but this generation's: [c/id/, c/id/gen/)
         * and [end of c/id/gen/, end of c/id/). */
        ops[1].is_delete = true;
        ops[1].key = cfrom;
        ops[1].key_len = cfrom_len;
        ops[1].end = cmid;
        ops[1].end_len = cmid_len;
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
    size_t from_len;
    size_t elen;
    int rc;
    grpc_status_code code = GRPC_STATUS_NOT_FOUND;

    *out_restored = 0;
    if (f == NULL) {
        snprintf(msg, cap, "fleet is off");
        return GRPC_STATUS_FAILED_PRECONDITION;
    }
    from_len = fleet_key_of(from, sizeof(from), f, "s/crl/", "");
    elen = etcd_prefix_end(end, sizeof(end), from, from_len);
    rc = etcd_range(f->etcd, &all, from, from_len, end, elen, 0, 0, err, sizeof(err));
    if (rc != ETCD_OK)
        return etcd_status(rc, msg, cap, "CRL NOT withdrawn", err);
    snprintf(msg, cap, "the fleet holds no pushed CRL for issuer %s", issuer);
    for (size_t i = 0; i < all.n; i++) {
        struct manifest m;
        const char *rel = fleet_rel_key(f, &all.v[i]);
        char cfrom[FLEET_KEY_MAX], rest[80];
        uint8_t cend[FLEET_KEY_MAX];
        size_t cfrom_len;
        struct etcd_cmp cmp;
        struct etcd_op ops[2];
        int64_t rev = 0;
        bool ok = false;

        if (rel == NULL || fleet_manifest_parse(&m, all.v[i].value, all.v[i].value_len) < 0 ||
            strcmp(m.issuer, issuer) != 0)
            continue;
        snprintf(rest, sizeof(rest), "%s/", rel + 6);
        cfrom_len = fleet_key_of(cfrom, sizeof(cfrom), f, "c/", rest);
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
        ops[1].key_len = cfrom_len;
        ops[1].end = cend;
        ops[1].end_len = etcd_prefix_end(cend, sizeof(cend), cfrom, cfrom_len);
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
