/* The CRL-ingest half of reload.h: CRL files named by the configuration
 * (loaded at each install, unchanged files skipped), CRLs pushed by the
 * admin API or the fetcher (verified against the current snapshot's CAs,
 * kept in STATE/crls/), withdrawal of a forced CRL, the change hook, the
 * last refusal, and start-up readiness. The snapshot half is reload.c. */
#include "reload.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <urcu/urcu-memb.h>

#include "config.h"
#include "crl_cache.h"
#include "crl_fetch_http.h"
#include "log.h"
#include "reload_internal.h"
#include "validator.h"

/* The last CRL refusal, for the admin status report. */
static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_error[600];

static _Atomic uint64_t refused;

/* Set once before the first install (reload_set_crl_change_hook). */
/* Pushes (fetcher, admin, fleet) and withdraws change the CRLs of one
 * issuer; a withdraw reads the other sources aside and swaps them in for
 * the issuer, so no push may land between its read and its swap (it would
 * be replaced by the older file CRL). Lock order: reload_lock, then this. */
static pthread_mutex_t crl_write_lock = PTHREAD_MUTEX_INITIALIZER;

static reload_crl_change_fn change_hook;
static void *change_hook_arg;

uint64_t reload_crl_refused_total(void)
{
    return atomic_load(&refused);
}

static void note_crl_error(const char *what, const char *why)
{
    atomic_fetch_add(&refused, 1);
    pthread_mutex_lock(&error_lock);
    snprintf(last_error, sizeof(last_error), "%s: %s", what, why);
    pthread_mutex_unlock(&error_lock);
}

void reload_crl_last_error(char *buf, size_t cap)
{
    pthread_mutex_lock(&error_lock);
    snprintf(buf, cap, "%s", last_error);
    pthread_mutex_unlock(&error_lock);
}

/* CRL files already in the cache, by identity: a reload skips a file that
 * has not changed since it was loaded, so reloading the configuration does
 * not re-parse (and re-allocate) a large CRL each time. Guarded by
 * reload_lock (reload.c): the table is read (seen_find) and written
 * (seen_note) only by loads without LOAD_EVEN_IF_SEEN, and those come only
 * from reload_crls_load_config, whose callers in reload.c hold the lock.
 * reload_crl_withdraw runs without it (admin thread) and so loads with
 * LOAD_EVEN_IF_SEEN, which leaves the table alone. */
struct seen_file {
    char *path;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
};
#define SEEN_MAX 4096
static struct seen_file seen[SEEN_MAX];
static size_t n_seen;

static struct seen_file *seen_find(const char *path)
{
    for (size_t i = 0; i < n_seen; i++)
        if (strcmp(seen[i].path, path) == 0)
            return &seen[i];
    return NULL;
}

static bool seen_unchanged(const struct seen_file *f, const struct stat *st)
{
    return f != NULL && f->dev == st->st_dev && f->ino == st->st_ino && f->size == st->st_size &&
           f->mtime.tv_sec == st->st_mtim.tv_sec && f->mtime.tv_nsec == st->st_mtim.tv_nsec &&
           f->ctime.tv_sec == st->st_ctim.tv_sec && f->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static void seen_note(const char *path, const struct stat *st)
{
    struct seen_file *f = seen_find(path);

    if (f == NULL) {
        if (n_seen == SEEN_MAX)
            return; /* only an optimisation: beyond the table, files are re-read */
        f = &seen[n_seen];
        f->path = strdup(path);
        if (f->path == NULL)
            return;
        n_seen++;
    }
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    f->size = st->st_size;
    f->mtime = st->st_mtim;
    f->ctime = st->st_ctim;
}

/* load_crl_file flags, beside CRL_CACHE_ALLOW_OLDER. */
#define LOAD_EVEN_IF_SEEN 0x100u /* read it even when unchanged; seen[] not touched */

static int load_crl_file(struct crl_cache *crls, const char *path, const STACK_OF(X509) * issuers,
                         unsigned flags)
{
    char err[512], source[1100];
    uint8_t *buf = NULL;
    FILE *f = fopen(path, "rb");
    struct stat st;
    long len;
    int rc = -1;

    if (f == NULL) {
        log_warn("CRL %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) == 0 && !(flags & LOAD_EVEN_IF_SEEN) &&
        seen_unchanged(seen_find(path), &st)) {
        fclose(f);
        return 0; /* in the cache already, as read last time */
    }
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    buf = malloc(len > 0 ? (size_t)len : 1);
    if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len)
        goto out;
    snprintf(source, sizeof(source), "file:%s", path);
    rc = crl_cache_add_der_flags(crls, buf, (size_t)len, issuers, source,
                                 flags & CRL_CACHE_ALLOW_OLDER, err, sizeof(err));
    if (rc < 0) {
        log_warn("CRL %s refused: %s", path, err);
        note_crl_error(path, err);
    } else if (!(flags & LOAD_EVEN_IF_SEEN)) {
        seen_note(path, &st);
    }
out:
    if (rc < 0 && buf == NULL)
        log_warn("CRL %s: cannot read", path);
    free(buf);
    fclose(f);
    return rc;
}

/* Appends the certificates of |files|; a file that does not load is left
 * out here (the validator, built from the same files, reports it). */
void reload_add_certs_from(STACK_OF(X509) * dst, char **files, size_t n)
{
    char err[512];

    for (size_t i = 0; i < n; i++)
        cv_append_certs(dst, (const char *const *)&files[i], 1, err, sizeof(err));
}

static STACK_OF(X509) * crl_issuers(const struct certval_config *cfg)
{
    const struct validator_config *v = &cfg->validator;
    STACK_OF(X509) *all = sk_X509_new_null();

    if (all == NULL)
        return NULL;
    reload_add_certs_from(all, v->anchor_files, v->n_anchor_files);
    reload_add_certs_from(all, v->intermediate_files, v->n_intermediate_files);
    for (size_t i = 0; i < v->n_profiles; i++)
        reload_add_certs_from(all, v->profiles[i].issuer_files, v->profiles[i].n_issuer_files);
    return all;
}

/* In STATE/crls/: CRLs forced by an operator (admin push with force) are
 * named "forced-*" and load last, over whatever is newer. */
static bool is_forced_file(const char *name)
{
    return strncmp(name, "forced-", 7) == 0;
}

/* load_crl_dir loads the regular files of |dir|; with |forced| only the
 * forced ones (with CRL_CACHE_ALLOW_OLDER, read every time), otherwise all
 * others. */
static size_t load_crl_dir(struct crl_cache *crls, const char *dir, const STACK_OF(X509) * issuers,
                           unsigned flags, bool forced)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t loaded = 0;

    if (d == NULL) {
        log_warn("CRL directory %s: %s", dir, strerror(errno));
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;

        if (e->d_name[0] == '.')
            continue;
        if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
            continue;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || is_forced_file(e->d_name) != forced)
            continue;
        if (load_crl_file(crls, path, issuers,
                          forced ? flags | CRL_CACHE_ALLOW_OLDER | LOAD_EVEN_IF_SEEN : flags) == 0)
            loaded++;
    }
    closedir(d);
    return loaded;
}

/* load_all loads the CRL files, folder and state folder of |cfg|. */
static size_t load_all(struct crl_cache *crls, const struct certval_config *cfg, unsigned flags)
{
    STACK_OF(X509) *issuers = crl_issuers(cfg);
    size_t loaded = 0;

    if (issuers == NULL)
        return 0;
    for (size_t i = 0; i < cfg->n_crl_files; i++) {
        if (load_crl_file(crls, cfg->crl_files[i], issuers, flags) == 0)
            loaded++;
    }
    if (cfg->crl_dir != NULL)
        loaded += load_crl_dir(crls, cfg->crl_dir, issuers, flags, false);
    if (cfg->state_dir != NULL) {
        char dir[4200];
        struct stat st;

        /* CRLs pushed through the admin API (or fetched) before a restart;
         * forced ones last, so they stay in force over newer files. */
        snprintf(dir, sizeof(dir), "%s/crls", cfg->state_dir);
        if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
            loaded += load_crl_dir(crls, dir, issuers, flags, false);
            loaded += load_crl_dir(crls, dir, issuers, flags, true);
        }
    }
    sk_X509_pop_free(issuers, X509_free);
    return loaded;
}

size_t reload_crls_load_config(struct crl_cache *crls, const struct certval_config *cfg)
{
    return load_all(crls, cfg, 0);
}

struct find_source {
    const char *source;
    char *issuer;
    size_t issuer_cap;
    uint64_t number, entries;
    bool found;
};

static void find_source_cb(const struct crl_issuer_status *st, void *arg)
{
    struct find_source *f = arg;

    if (strcmp(st->source, f->source) != 0)
        return;
    snprintf(f->issuer, f->issuer_cap, "%s", st->issuer);
    f->number = st->crl_number_low;
    f->entries = st->entries;
    f->found = true;
}

/* The state file of |issuer|'s CRL of |kind| ("admin", "forced", "fetched"):
 * STATE/crls/KIND-<first 8 bytes of SHA-256 of the issuer name>.crl. */
static void state_crl_path(char *out, size_t cap, const char *state_dir, const char *kind,
                           const char *issuer)
{
    uint8_t h[SHA256_DIGEST_LENGTH];

    SHA256((const uint8_t *)issuer, strlen(issuer), h);
    snprintf(out, cap, "%s/crls/%s-%02x%02x%02x%02x%02x%02x%02x%02x.crl", state_dir, kind, h[0],
             h[1], h[2], h[3], h[4], h[5], h[6], h[7]);
}

/* Writes |der| to |issuer|'s state file of |kind| via a temporary file and
 * rename, so a crash never leaves half a CRL behind, and removes the files
 * it supersedes: any accepted CRL ends an earlier force, and a push of one
 * kind replaces the previous push. */
static void persist_crl(const char *state_dir, const char *kind, const char *issuer,
                        const uint8_t *der, size_t len)
{
    char dir[4200], path[4300], tmp[4400];
    FILE *f;

    if (mkdir(state_dir, 0750) != 0 && errno != EEXIST)
        goto fail;
    snprintf(dir, sizeof(dir), "%s/crls", state_dir);
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        goto fail;
    state_crl_path(path, sizeof(path), state_dir, kind, issuer);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "wb");
    if (f == NULL)
        goto fail;
    if (fwrite(der, 1, len, f) != len || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fclose(f);
        goto fail;
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        goto fail;
    if (strcmp(kind, "forced") != 0) {
        state_crl_path(path, sizeof(path), state_dir, "forced", issuer);
        unlink(path);
    }
    if (strcmp(kind, "fetched") != 0) {
        state_crl_path(path, sizeof(path), state_dir,
                       strcmp(kind, "admin") == 0 ? "forced" : "admin", issuer);
        unlink(path);
    }
    return;
fail:
    log_warn("cannot keep the pushed CRL in %s: %s (it is in use, but not kept across restarts)",
             state_dir, strerror(errno));
}

static int push(struct crl_cache *crls, const uint8_t *der, size_t len, const char *label,
                unsigned flags, char *issuer, size_t issuer_cap, uint64_t *number,
                uint64_t *entries, char *err, size_t errlen)
{
    static _Atomic uint64_t seq;
    struct reload_snapshot *s = reload_acquire();
    STACK_OF(X509) *issuers = NULL;
    struct find_source f;
    char source[128];
    int added, rc = -1;

    if (s == NULL) {
        snprintf(err, errlen, "no configuration loaded");
        return -1;
    }
    issuers = crl_issuers(s->cfg);
    if (issuers == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* A unique source label finds this CRL's entry in the cache again. */
    snprintf(source, sizeof(source), "%s#%llu", label,
             (unsigned long long)atomic_fetch_add(&seq, 1));
    pthread_mutex_lock(&crl_write_lock);
    added = crl_cache_add_der_flags(crls, der, len, issuers, source, flags, err, errlen);
    pthread_mutex_unlock(&crl_write_lock);
    if (added < 0) {
        note_crl_error(label, err);
        goto out;
    }
    memset(&f, 0, sizeof(f));
    f.source = source;
    f.issuer = issuer;
    f.issuer_cap = issuer_cap;
    crl_cache_foreach(crls, find_source_cb, &f);
    *number = f.number;
    *entries = f.entries;
    if (!f.found)
        snprintf(issuer, issuer_cap, "?");
    if (s->cfg->state_dir != NULL)
        persist_crl(s->cfg->state_dir,
                    (flags & CRL_CACHE_ALLOW_OLDER)   ? "forced"
                    : strncmp(label, "admin", 5) == 0 ? "admin"
                                                      : "fetched",
                    issuer, der, len);
    log_info("CRL pushed by %s: issuer %s, number %llu, %llu entries", label, issuer,
             (unsigned long long)*number, (unsigned long long)*entries);
    rc = 0;
out:
    sk_X509_pop_free(issuers, X509_free);
    reload_release(s);
    if (rc == 0 && change_hook != NULL)
        change_hook(false, change_hook_arg); /* crl_fetch: readiness */
    return rc;
}

int reload_crl_push(struct crl_cache *crls, const uint8_t *der, size_t len, const char *label,
                    char *issuer, size_t issuer_cap, uint64_t *number, uint64_t *entries, char *err,
                    size_t errlen)
{
    return push(crls, der, len, label, 0, issuer, issuer_cap, number, entries, err, errlen);
}

int reload_crl_push_admin(struct crl_cache *crls, const uint8_t *crl, size_t len, bool force,
                          char *issuer, size_t issuer_cap, uint64_t *number, uint64_t *entries,
                          char *err, size_t errlen)
{
    const uint8_t *der = crl;
    uint8_t *decoded = NULL;
    long dlen = 0;
    int64_t this_update = 0, next_update = 0;
    int rc;

    /* The fetcher's rule (crl_fetch.c): a CRL past its nextUpdate would make
     * every certificate of its issuer REVOCATION_STALE. PEM is decoded to
     * read its times; what does not parse is judged by the cache. */
    if (len >= 5 && memcmp(crl, "-----", 5) == 0) {
        BIO *bio = BIO_new_mem_buf(crl, len > INT32_MAX ? INT32_MAX : (int)len);

        if (bio != NULL && PEM_bytes_read_bio(&decoded, &dlen, NULL, "X509 CRL", bio, NULL, NULL))
            der = decoded;
        BIO_free(bio);
        ERR_clear_error();
    }
    if (!force &&
        crl_fetch_crl_times(&this_update, &next_update, der, der == crl ? len : (size_t)dlen) ==
            0 &&
        next_update != 0 && next_update < (int64_t)time(NULL)) {
        snprintf(err, errlen,
                 "the CRL's nextUpdate (%lld) has passed: every certificate of its issuer would "
                 "be REVOCATION_STALE; push with force to use it anyway",
                 (long long)next_update);
        note_crl_error("admin", err);
        OPENSSL_free(decoded);
        return RELOAD_CRL_PUSH_EXPIRED;
    }
    OPENSSL_free(decoded);
    rc = push(crls, crl, len, force ? "admin-forced" : "admin", force ? CRL_CACHE_ALLOW_OLDER : 0,
              issuer, issuer_cap, number, entries, err, errlen);
    if (rc == 0 && force)
        log_warn("CRL for %s FORCED by the admin API (CRL number %llu): it stays in force over "
                 "newer files until a newer CRL is accepted or it is withdrawn",
                 issuer, (unsigned long long)*number);
    return rc;
}

/* fleet (issue 11): the verification of reload_crl_push, in a cache aside. */
int reload_crl_check(struct crl_cache *crls, const uint8_t *der, size_t len, char *issuer,
                     size_t issuer_cap, uint64_t *number, uint64_t *entries, char *err,
                     size_t errlen)
{
    struct reload_snapshot *s = reload_acquire();
    STACK_OF(X509) *issuers = NULL;
    struct crl_cache *aside = NULL;
    struct find_source f;
    int rc = -1;

    *number = 0;
    *entries = 0;
    snprintf(issuer, issuer_cap, "?");
    if (s == NULL) {
        snprintf(err, errlen, "no configuration loaded");
        return -1;
    }
    issuers = crl_issuers(s->cfg);
    aside = crl_cache_new_aside(crls);
    if (issuers == NULL || aside == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (crl_cache_add_der_flags(aside, der, len, issuers, "check", 0, err, errlen) < 0)
        goto out;
    memset(&f, 0, sizeof(f));
    f.source = "check";
    f.issuer = issuer;
    f.issuer_cap = issuer_cap;
    crl_cache_foreach(aside, find_source_cb, &f);
    *number = f.number;
    *entries = f.entries;
    rc = f.found ? 0 : -1;
    if (!f.found)
        snprintf(err, errlen, "the CRL was accepted but not found again");
out:
    crl_cache_free(aside);
    sk_X509_pop_free(issuers, X509_free);
    reload_release(s);
    return rc;
}

struct find_pushed {
    const char *issuer;
    bool found;
};

/* A CRL the admin API put in force: pushed now ("admin#N",
 * "admin-forced#N") or loaded from its state file at start. */
static void find_pushed_cb(const struct crl_issuer_status *st, void *arg)
{
    struct find_pushed *f = arg;

    if (strcmp(st->issuer, f->issuer) == 0 &&
        (strncmp(st->source, "admin", 5) == 0 || strstr(st->source, "/crls/admin-") != NULL ||
         strstr(st->source, "/crls/forced-") != NULL))
        f->found = true;
}

int reload_crl_withdraw(struct crl_cache *crls, const char *issuer, size_t *out_restored, char *err,
                        size_t errlen)
{
    struct reload_snapshot *s = NULL;
    struct find_pushed fp = {issuer, false};
    struct crl_cache *aside = NULL;
    size_t removed = 0;
    char path[4300];
    int rc = -1;

    *out_restored = 0;
    /* load_all reads the files and the seen[] table as an install does
     * (reload_lock, which also keeps the snapshot current until the swap);
     * no push may land between the read and the swap. */
    reload_lock_hold();
    pthread_mutex_lock(&crl_write_lock);
    s = reload_acquire();
    if (s == NULL) {
        snprintf(err, errlen, "no configuration loaded");
        goto out;
    }
    crl_cache_foreach(crls, find_pushed_cb, &fp);
    if (!fp.found) {
        snprintf(err, errlen, "no pushed CRL is in force for issuer %s", issuer);
        rc = RELOAD_CRL_PUSH_NOT_FOUND;
        goto out;
    }
    /* First the state files, so a restart agrees; then the other sources
     * are read aside and swapped in with one publication, so the issuer is
     * never without a CRL in between. */
    if (s->cfg->state_dir != NULL) {
        state_crl_path(path, sizeof(path), s->cfg->state_dir, "admin", issuer);
        unlink(path);
        state_crl_path(path, sizeof(path), s->cfg->state_dir, "forced", issuer);
        unlink(path);
    }
    aside = crl_cache_new_aside(crls);
    if (aside == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    load_all(aside, s->cfg, LOAD_EVEN_IF_SEEN);
    if (crl_cache_replace_issuer(crls, aside, issuer, &removed, out_restored, err, errlen) != 0)
        goto out;
    log_warn("admin: pushed CRL of %s withdrawn; %zu CRL(s) from files or fetches in force again",
             issuer, *out_restored);
    rc = 0;
out:
    pthread_mutex_unlock(&crl_write_lock);
    reload_lock_drop();
    crl_cache_free(aside);
    reload_release(s);
    if (rc == 0 && change_hook != NULL)
        change_hook(false, change_hook_arg);
    return rc;
}

/* ---- CRL arrival hook and start-up readiness (crl_fetch, issue 4) ---- */

void reload_set_crl_change_hook(reload_crl_change_fn fn, void *arg)
{
    change_hook = fn;
    change_hook_arg = arg;
}

void reload_notify_crl_change(bool config_changed)
{
    if (change_hook != NULL)
        change_hook(config_changed, change_hook_arg);
}

/* True when |crls| holds a CRL of each certificate of |file|. */
static bool file_issuers_have_crl(const struct crl_cache *crls, const char *file,
                                  const ASN1_INTEGER *serial, char *why, size_t why_cap)
{
    STACK_OF(X509) *certs = NULL;
    char err[300];
    bool ok = true;

    if (cv_load_certs(&certs, file, err, sizeof(err)) < 0) {
        snprintf(why, why_cap, "%s", err);
        return false;
    }
    for (size_t i = 0; ok && i < sk_X509_num(certs); i++) {
        X509 *x = sk_X509_value(certs, i);

        /* Any serial will do: only NO_CRL means "nothing from this issuer". */
        if (crl_cache_check(crls, x, serial, (int64_t)time(NULL), 0, NULL) == CRL_STATUS_NO_CRL) {
            char name[256];

            X509_NAME_oneline(X509_get_subject_name(x), name, sizeof(name));
            snprintf(why, why_cap, "no CRL yet for issuer %s (%s)", name, file);
            ok = false;
        }
    }
    sk_X509_pop_free(certs, X509_free);
    return ok;
}

bool reload_revocation_ready(const struct reload_snapshot *s, const struct crl_cache *crls,
                             char *why, size_t why_cap)
{
    const struct validator_config *v = &s->cfg->validator;
    ASN1_INTEGER *serial = ASN1_INTEGER_new();
    bool ok = serial != NULL && ASN1_INTEGER_set(serial, 1);

    snprintf(why, why_cap, "%s", ok ? "" : "out of memory");
    for (size_t i = 0; ok && i < v->n_profiles; i++) {
        const struct profile_config *p = &v->profiles[i];

        if (p->revocation == REVOCATION_NONE)
            continue;
        for (size_t j = 0; ok && j < p->n_issuer_files; j++)
            ok = file_issuers_have_crl(crls, p->issuer_files[j], serial, why, why_cap);
    }
    ASN1_INTEGER_free(serial);
    return ok;
}
