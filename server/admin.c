/* certval.v1.Admin: operator calls on their own listener, each checked
 * against the bearer token in admin.token_file.
 *
 * Calls are rare and short, so they run on the admin server's transport
 * thread (no worker pool); a big CRL push holds only that thread, never the
 * validator's. The token file is read on every call, so a rotated Secret
 * takes effect without a reload. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <openssl/mem.h>
#include <openssl/x509.h>

#include "admin.h"
#include "call.h"
#include "certval/v1/admin.pb-c.h"
#include "crl_cache.h"
#include "deny_list.h"
#include "fleet.h" /* fleet (issue 11) */
#include "hex.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"

#define TOKEN_MAX 4096

/* Copies, not pointers into a configuration: a reload frees the snapshot
 * the start-up values came from. Set once before serving, read-only after. */
static char *token_path;
static char *state_dir_path;
static char *config_path;

/* What the admin calls change: the server's CRL cache and deny list (owned
 * by main). Set once before serving. */
struct admin_state {
    struct crl_cache *crls;
    struct deny_list *deny;
};
static struct admin_state admin_st;

/* Whether deny-list changes reach stable storage, and why not: written at
 * start and after each change by the admin thread, read by GetRevocationStatus
 * (same thread) and mirrored in the certval_deny_list_durable metric. */
static pthread_mutex_t durable_lock = PTHREAD_MUTEX_INITIALIZER;
static bool deny_durable;
static char deny_store_error[512] = "admin API not configured";
static bool deny_store_set; /* deny_list_set_store done (admin thread only) */

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static void set_durable(bool ok, const char *why)
{
    pthread_mutex_lock(&durable_lock);
    deny_durable = ok;
    snprintf(deny_store_error, sizeof(deny_store_error), "%s", ok ? "" : why);
    pthread_mutex_unlock(&durable_lock);
    metrics_set_deny_list_durable(ok);
}

static void get_durable(bool *ok, char *why, size_t cap)
{
    pthread_mutex_lock(&durable_lock);
    *ok = deny_durable;
    snprintf(why, cap, "%s", deny_store_error);
    pthread_mutex_unlock(&durable_lock);
}

/* fsync_dir_of makes a new entry of |path|'s parent folder durable. */
static void fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path);
    int fd;

    if (n == 0 || n >= sizeof(dir))
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)n, path);
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* mkdir_p creates |path| and its missing parents with mode 0750 (owner
 * rwx, group rx: the state holds the operator's deny list), syncing each
 * parent that got a new entry. 0, or -1 with a message in |err|. */
static int mkdir_p(const char *path, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    struct stat st;

    if (n == 0 || n >= sizeof(buf)) {
        snprintf(err, errlen, "state_dir: bad path");
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, 0750) == 0) {
            fsync_dir_of(buf);
        } else if (errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", buf, strerror(errno));
            return -1;
        }
        buf[i] = i < n ? '/' : '\0';
    }
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is not a folder", path);
        return -1;
    }
    return 0;
}

/* state_dir_prepare creates the state folder and proves it writable with a
 * synced probe file, so a broken folder is reported at start, not at the
 * first emergency. */
static void state_dir_prepare(void)
{
    char probe[PATH_MAX], err[512];
    int fd;

    if (state_dir_path == NULL) {
        set_durable(false, "no state_dir is configured: deny entries cannot be kept");
        log_warn("admin: no state_dir is configured: AddDenyEntry and RemoveDenyEntry are "
                 "refused, pushed CRLs are not kept across restarts");
        return;
    }
    if (mkdir_p(state_dir_path, err, sizeof(err)) == 0 &&
        snprintf(probe, sizeof(probe), "%s/.certval-probe", state_dir_path) < (int)sizeof(probe)) {
        fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0 && write(fd, "ok\n", 3) == 3 && fsync(fd) == 0) {
            close(fd);
            unlink(probe);
            set_durable(true, "");
            return;
        }
        snprintf(err, sizeof(err), "cannot write in %s: %s", state_dir_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(probe);
    }
    set_durable(false, err);
    log_error("admin: state folder: %s: deny-list changes will be refused until it is fixed", err);
}

void admin_configure(const char *token_file, const char *state_dir, const char *cfg_path,
                     struct crl_cache *crls, struct deny_list *deny)
{
    admin_st.crls = crls;
    admin_st.deny = deny;
    free(token_path);
    free(state_dir_path);
    free(config_path);
    token_path = dup_or_null(token_file);
    state_dir_path = dup_or_null(state_dir);
    config_path = dup_or_null(cfg_path);
    state_dir_prepare();
}

struct acall {
    struct call_base base;
    struct tag recv_tag, send_tag, status_tag;
    grpc_byte_buffer *recv_buf, *send_buf;
    char method[128];
    bool authorized;
};

/* An answer: a packed message, or a non-OK status. */
struct answer {
    grpc_status_code code;
    char msg[600];
    uint8_t *body; /* malloc'd */
    size_t len;
};

static void acall_destroy(struct call_base *cb)
{
    struct acall *a = container_of(cb, struct acall, base);

    if (a->recv_buf != NULL)
        grpc_byte_buffer_destroy(a->recv_buf);
    if (a->send_buf != NULL)
        grpc_byte_buffer_destroy(a->send_buf);
    free(a);
}

static void unref_done(struct tag *t, bool ok)
{
    struct acall *a = container_of(t, struct acall, status_tag);

    (void)ok;
    call_unref(&a->base);
}

static void send_done(struct tag *t, bool ok)
{
    struct acall *a = container_of(t, struct acall, send_tag);

    (void)ok;
    call_unref(&a->base);
}

/* ---- authentication ---- */

/* Reads the token (first line, surrounding white space removed). */
static size_t read_token(char *buf, size_t cap)
{
    FILE *f = token_path != NULL ? fopen(token_path, "r") : NULL;
    size_t n = 0;

    if (f == NULL)
        return 0;
    if (fgets(buf, (int)cap, f) != NULL) {
        n = strcspn(buf, "\r\n");
        while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
            n--;
    }
    buf[n] = '\0';
    fclose(f);
    return n;
}

static bool authorized(const grpc_metadata_array *md)
{
    char token[TOKEN_MAX];
    size_t tlen = read_token(token, sizeof(token));
    bool ok = false;

    if (tlen < 16) {
        log_error("admin: token file %s is missing, unreadable or shorter than 16 bytes: "
                  "refusing every admin call",
                  token_path != NULL ? token_path : "(not configured)");
        return false;
    }
    for (size_t i = 0; i < md->count; i++) {
        const grpc_metadata *m = &md->metadata[i];
        const char *v = (const char *)GRPC_SLICE_START_PTR(m->value);
        size_t vlen = GRPC_SLICE_LENGTH(m->value);

        if (grpc_slice_str_cmp(m->key, "authorization") != 0)
            continue;
        /* Constant-time comparison of the token part. */
        if (vlen == 7 + tlen && strncmp(v, "Bearer ", 7) == 0 &&
            CRYPTO_memcmp(v + 7, token, tlen) == 0)
            ok = true;
    }
    OPENSSL_cleanse(token, sizeof(token));
    return ok;
}

/* ---- operations ---- */

static void answer_fail(struct answer *ans, grpc_status_code code, const char *prefix,
                        const char *detail)
{
    ans->code = code;
    snprintf(ans->msg, sizeof(ans->msg), "%s%.500s", prefix, detail);
}

#define PACK(ans, type, fn, msgp)                                                                  \
    do {                                                                                           \
        (ans)->len = fn##__get_packed_size(msgp);                                                  \
        (ans)->body = malloc((ans)->len > 0 ? (ans)->len : 1);                                     \
        if ((ans)->body == NULL)                                                                   \
            answer_fail(ans, GRPC_STATUS_RESOURCE_EXHAUSTED, "", "out of memory");               \
        else                                                                                       \
            fn##__pack(msgp, (ans)->body);                                                         \
    } while (0)

static void op_reload(struct answer *ans, const struct admin_state *st)
{
    Certval__V1__ReloadResponse resp = CERTVAL__V1__RELOAD_RESPONSE__INIT;
    struct reload_snapshot *s;
    char err[1024];

    if (reload_file(config_path, st->crls, err, sizeof(err)) < 0) {
        log_error("admin Reload refused, the previous configuration keeps serving: %s", err);
        answer_fail(ans, GRPC_STATUS_FAILED_PRECONDITION, "", err);
        return;
    }
    s = reload_acquire();
    resp.config_version = s != NULL ? s->version : 0;
    reload_release(s);
    PACK(ans, Certval__V1__ReloadResponse, certval__v1__reload_response, &resp);
}

static void op_push_crl(struct answer *ans, const struct admin_state *st, const uint8_t *in,
                        size_t len)
{
    Certval__V1__PushCrlRequest *req = certval__v1__push_crl_request__unpack(NULL, len, in);
    Certval__V1__PushCrlResponse resp = CERTVAL__V1__PUSH_CRL_RESPONSE__INIT;
    char issuer[256], err[512];
    uint64_t number = 0, entries = 0;
    int rc;

    if (req == NULL || req->crl.len == 0) {
        answer_fail(ans, GRPC_STATUS_INVALID_ARGUMENT, "", "request carries no CRL");
        goto out;
    }
    if (fleet_enabled()) { /* fleet (issue 11): to etcd, applied by every pod */
        ans->code = fleet_admin_push_crl(req->crl.data, req->crl.len, req->force, issuer,
                                         sizeof(issuer), &number, &entries, ans->msg,
                                         sizeof(ans->msg));
        if (ans->code != GRPC_STATUS_OK)
            goto out;
        rc = 0;
    } else {
        rc = reload_crl_push_admin(st->crls, req->crl.data, req->crl.len, req->force, issuer,
                            sizeof(issuer), &number, &entries, err, sizeof(err));
    }
    if (rc < 0) {
        answer_fail(ans,
                    rc == RELOAD_CRL_PUSH_EXPIRED ? GRPC_STATUS_FAILED_PRECONDITION
                                                  : GRPC_STATUS_INVALID_ARGUMENT,
                    "CRL refused: ", err);
        goto out;
    }
    resp.issuer = issuer;
    resp.crl_number = number;
    resp.entries = entries;
    PACK(ans, Certval__V1__PushCrlResponse, certval__v1__push_crl_response, &resp);
out:
    if (req != NULL)
        certval__v1__push_crl_request__free_unpacked(req, NULL);
}

static void op_withdraw_crl(struct answer *ans, const struct admin_state *st, const uint8_t *in,
                            size_t len)
{
    Certval__V1__WithdrawCrlRequest *req = certval__v1__withdraw_crl_request__unpack(NULL, len, in);
    Certval__V1__WithdrawCrlResponse resp = CERTVAL__V1__WITHDRAW_CRL_RESPONSE__INIT;
    char err[512];
    size_t restored = 0;
    int rc;

    if (req == NULL || req->issuer == NULL || req->issuer[0] == '\0') {
        answer_fail(ans, GRPC_STATUS_INVALID_ARGUMENT, "",
                    "give the issuer name, as status shows it");
        goto out;
    }
    if (fleet_enabled()) { /* fleet (issue 11) */
        uint64_t r = 0;

        ans->code = fleet_admin_withdraw_crl(req->issuer, &r, ans->msg, sizeof(ans->msg));
        if (ans->code != GRPC_STATUS_OK)
            goto out;
        restored = (size_t)r;
        rc = 0;
    } else {
        rc = reload_crl_withdraw(st->crls, req->issuer, &restored, err, sizeof(err));
    }
    if (rc < 0) {
        answer_fail(ans,
                    rc == RELOAD_CRL_PUSH_NOT_FOUND ? GRPC_STATUS_NOT_FOUND : GRPC_STATUS_INTERNAL,
                    "", err);
        goto out;
    }
    resp.restored = restored;
    PACK(ans, Certval__V1__WithdrawCrlResponse, certval__v1__withdraw_crl_response, &resp);
out:
    if (req != NULL)
        certval__v1__withdraw_crl_request__free_unpacked(req, NULL);
}

struct status_build {
    Certval__V1__IssuerRevocationStatus *items;
    Certval__V1__IssuerRevocationStatus **ptrs;
    char (*issuer)[256];
    char (*source)[256];
    size_t n, cap;
    int64_t now;
};

static void status_cb(const struct crl_issuer_status *st, void *arg)
{
    struct status_build *b = arg;
    Certval__V1__IssuerRevocationStatus init = CERTVAL__V1__ISSUER_REVOCATION_STATUS__INIT;
    Certval__V1__IssuerRevocationStatus *it;

    if (b->n == b->cap)
        return;
    it = &b->items[b->n];
    *it = init;
    /* The strings live only during the callback: copy them. */
    snprintf(b->issuer[b->n], sizeof(b->issuer[b->n]), "%s", st->issuer);
    snprintf(b->source[b->n], sizeof(b->source[b->n]), "%s", st->source);
    it->issuer = b->issuer[b->n];
    it->source = b->source[b->n];
    it->crl_number = st->crl_number_low;
    it->this_update_unix = st->this_update;
    it->next_update_unix = st->next_update;
    it->age_seconds = b->now - st->this_update;
    it->entries = st->entries;
    it->unusable = st->unusable;
    b->ptrs[b->n] = it;
    b->n++;
}

static void op_status(struct answer *ans, const struct admin_state *st)
{
    Certval__V1__GetRevocationStatusResponse resp =
        CERTVAL__V1__GET_REVOCATION_STATUS_RESPONSE__INIT;
    struct status_build b;
    char last[600], store_err[512];
    bool durable;

    memset(&b, 0, sizeof(b));
    b.cap = crl_cache_issuer_count(st->crls) + 16; /* room for CRLs added meanwhile */
    b.items = calloc(b.cap, sizeof(*b.items));
    b.ptrs = calloc(b.cap, sizeof(*b.ptrs));
    b.issuer = calloc(b.cap, sizeof(*b.issuer));
    b.source = calloc(b.cap, sizeof(*b.source));
    b.now = (int64_t)time(NULL);
    if (b.items == NULL || b.ptrs == NULL || b.issuer == NULL || b.source == NULL) {
        answer_fail(ans, GRPC_STATUS_RESOURCE_EXHAUSTED, "", "out of memory");
        goto out;
    }
    crl_cache_foreach(st->crls, status_cb, &b);
    reload_crl_last_error(last, sizeof(last));
    resp.n_issuers = b.n;
    resp.issuers = b.ptrs;
    resp.last_error = last;
    resp.deny_entries = deny_list_count(st->deny);
    get_durable(&durable, store_err, sizeof(store_err));
    resp.deny_list_durable = durable;
    resp.deny_list_store_error = store_err;
    /* fleet (issue 11) */
    struct fleet_status fs;
    Certval__V1__FleetStatus fleet = CERTVAL__V1__FLEET_STATUS__INIT;

    fleet_get_status(&fs);
    if (fs.enabled) {
        fleet.enabled = true;
        fleet.connected = fs.connected;
        fleet.applied_revision = fs.applied_revision;
        fleet.store_revision = fs.store_revision;
        fleet.local_copy = fs.local_copy;
        fleet.disconnected_seconds = fs.disconnected_seconds;
        fleet.deny_entries = fs.deny_entries;
        fleet.crls = fs.crls;
        fleet.rereads = fs.rereads;
        fleet.detail = fs.detail;
        resp.fleet = &fleet;
    }
    PACK(ans, Certval__V1__GetRevocationStatusResponse,
         certval__v1__get_revocation_status_response, &resp);
out:
    free(b.items);
    free(b.ptrs);
    free(b.issuer);
    free(b.source);
}

/* ---- emergency deny entries ---- */

/* The issuer of a serial entry: from the CA certificate, or given hashed. */
static int entry_issuer(uint8_t out[32], const Certval__V1__DenyEntry *e)
{
    if (e->issuer_name_sha256.len == 32) {
        memcpy(out, e->issuer_name_sha256.data, 32);
        return 0;
    }
    if (e->issuer_certificate.len > 0) {
        const uint8_t *p = e->issuer_certificate.data;
        X509 *x = d2i_X509(NULL, &p, (long)e->issuer_certificate.len);

        if (x == NULL || p != e->issuer_certificate.data + e->issuer_certificate.len) {
            X509_free(x);
            return -1;
        }
        deny_list_issuer_key(out, X509_get_subject_name(x));
        X509_free(x);
        return 0;
    }
    return -1;
}

/* deny_store_ready points the deny list at STATE/deny-list.txt (once), so
 * each change is on disk before it is in force. False, with |ans| set to
 * FAILED_PRECONDITION, when there is no state folder to keep it in. */
static bool deny_store_ready(struct answer *ans, struct deny_list *deny)
{
    char path[PATH_MAX], err[512];

    if (state_dir_path == NULL) {
        answer_fail(ans, GRPC_STATUS_FAILED_PRECONDITION, "",
                    "no state_dir is configured: the change could not be kept across restarts, "
                    "so it was not made");
        return false;
    }
    if (deny_store_set)
        return true;
    if (snprintf(path, sizeof(path), "%s/deny-list.txt", state_dir_path) >= (int)sizeof(path) ||
        deny_list_set_store(deny, path, err, sizeof(err)) < 0) {
        answer_fail(ans, GRPC_STATUS_FAILED_PRECONDITION, "", "state_dir: path too long");
        return false;
    }
    deny_store_set = true;
    return true;
}

/* The selectors of |e|: exactly one of leaf_sha256 and issuer + serial. */
static bool has_serial_selector(const Certval__V1__DenyEntry *e)
{
    return e->issuer_certificate.len > 0 || e->issuer_name_sha256.len > 0 ||
           (e->serial_hex != NULL && e->serial_hex[0] != '\0');
}

static int deny_apply(struct deny_list *deny, bool add, const Certval__V1__DenyEntry *e, char *err,
                      size_t errlen)
{
    uint8_t issuer[32], serial[DENY_LIST_SERIAL_MAX];
    size_t serial_len = 0;
    int64_t now = (int64_t)time(NULL);

    if (e->leaf_sha256.len > 0 && has_serial_selector(e)) {
        snprintf(err, errlen,
                 "give either leaf_sha256 or an issuer and serial_hex, not both "
                 "(one entry has one selector)");
        return -1;
    }
    if (e->leaf_sha256.len == 32)
        return add ? deny_list_add_leaf(deny, e->leaf_sha256.data, e->reason, now, e->expires_unix,
                                        err, errlen)
                   : deny_list_remove_leaf(deny, e->leaf_sha256.data, err, errlen);
    if (e->leaf_sha256.len == 0 && entry_issuer(issuer, e) == 0 &&
        hex_decode_padded(serial, sizeof(serial), &serial_len, e->serial_hex,
                          strlen(e->serial_hex)) == 0)
        return add ? deny_list_add_serial(deny, issuer, serial, serial_len, e->reason, now,
                                          e->expires_unix, err, errlen)
                   : deny_list_remove_serial(deny, issuer, serial, serial_len, err, errlen);
    snprintf(err, errlen,
             "give leaf_sha256 (32 bytes), or an issuer (certificate DER "
             "or name SHA-256) and serial_hex");
    return -1;
}

static void op_deny_change(struct answer *ans, const struct admin_state *st, bool add,
                           const uint8_t *in, size_t len)
{
    Certval__V1__DenyEntry *e = certval__v1__deny_entry__unpack(NULL, len, in);
    Certval__V1__DenyEntryResponse resp = CERTVAL__V1__DENY_ENTRY_RESPONSE__INIT;
    char err[512];
    int rc;

    if (e == NULL) {
        answer_fail(ans, GRPC_STATUS_INVALID_ARGUMENT, "", "not a certval.v1.DenyEntry");
        return;
    }
    if (fleet_enabled()) { /* fleet (issue 11): to etcd, applied by every pod */
        uint64_t n = 0;

        ans->code = fleet_admin_deny(add, e, &n, ans->msg, sizeof(ans->msg));
        certval__v1__deny_entry__free_unpacked(e, NULL);
        if (ans->code == GRPC_STATUS_OK) {
            resp.entries = n;
            PACK(ans, Certval__V1__DenyEntryResponse, certval__v1__deny_entry_response, &resp);
        }
        return;
    }
    if (!deny_store_ready(ans, st->deny)) {
        certval__v1__deny_entry__free_unpacked(e, NULL);
        return;
    }
    err[0] = '\0';
    rc = deny_apply(st->deny, add, e, err, sizeof(err));
    certval__v1__deny_entry__free_unpacked(e, NULL);
    if (rc == DENY_LIST_ESTORE) {
        log_error("admin: deny entry NOT %s: it could not be stored: %s", add ? "added" : "removed",
                  err);
        set_durable(false, err);
        answer_fail(ans, GRPC_STATUS_FAILED_PRECONDITION,
                    "the change could not be stored, so it was not made: ", err);
        return;
    }
    if (rc < 0) {
        answer_fail(ans, add || err[0] ? GRPC_STATUS_INVALID_ARGUMENT : GRPC_STATUS_NOT_FOUND, "",
                    err[0] ? err : "no such entry");
        return;
    }
    set_durable(true, "");
    log_warn("admin: emergency deny entry %s and stored; %zu entries", add ? "added" : "removed",
             deny_list_count(st->deny));
    resp.entries = deny_list_count(st->deny);
    PACK(ans, Certval__V1__DenyEntryResponse, certval__v1__deny_entry_response, &resp);
}

struct list_build {
    Certval__V1__DenyEntry *items;
    Certval__V1__DenyEntry **ptrs;
    uint8_t (*ids)[32];
    char (*serials)[2 * DENY_LIST_SERIAL_MAX + 1];
    char (*reasons)[DENY_LIST_REASON_MAX + 1];
    size_t n, cap;
};

static int list_cb(const struct deny_list_entry *de, void *arg)
{
    Certval__V1__DenyEntry init = CERTVAL__V1__DENY_ENTRY__INIT;
    struct list_build *b = arg;
    Certval__V1__DenyEntry *e;

    if (b->n == b->cap)
        return 1;
    e = &b->items[b->n];
    *e = init;
    memcpy(b->ids[b->n], de->id, 32);
    snprintf(b->reasons[b->n], sizeof(b->reasons[b->n]), "%s", de->reason);
    b->serials[b->n][0] = '\0';
    for (size_t i = 0; i < de->serial_len && i < DENY_LIST_SERIAL_MAX; i++)
        snprintf(b->serials[b->n] + 2 * i, 3, "%02x", de->serial[i]);
    if (de->kind == DENY_LIST_LEAF) {
        e->leaf_sha256.data = b->ids[b->n];
        e->leaf_sha256.len = 32;
    } else {
        e->issuer_name_sha256.data = b->ids[b->n];
        e->issuer_name_sha256.len = 32;
    }
    e->serial_hex = b->serials[b->n];
    e->reason = b->reasons[b->n];
    e->created_unix = de->created_at;
    e->expires_unix = de->expires_at;
    b->ptrs[b->n] = e;
    b->n++;
    return 0;
}

static void op_deny_list(struct answer *ans, const struct admin_state *st)
{
    Certval__V1__ListDenyEntriesResponse resp = CERTVAL__V1__LIST_DENY_ENTRIES_RESPONSE__INIT;
    struct list_build b;

    memset(&b, 0, sizeof(b));
    b.cap = deny_list_count(st->deny) + 16; /* room for entries added meanwhile */
    b.items = calloc(b.cap, sizeof(*b.items));
    b.ptrs = calloc(b.cap, sizeof(*b.ptrs));
    b.ids = calloc(b.cap, sizeof(*b.ids));
    b.serials = calloc(b.cap, sizeof(*b.serials));
    b.reasons = calloc(b.cap, sizeof(*b.reasons));
    if (b.items == NULL || b.ptrs == NULL || b.ids == NULL || b.serials == NULL ||
        b.reasons == NULL) {
        answer_fail(ans, GRPC_STATUS_RESOURCE_EXHAUSTED, "", "out of memory");
    } else {
        deny_list_foreach(st->deny, list_cb, &b);
        resp.n_entries = b.n;
        resp.entries = b.ptrs;
        PACK(ans, Certval__V1__ListDenyEntriesResponse, certval__v1__list_deny_entries_response,
             &resp);
    }
    free(b.items);
    free(b.ptrs);
    free(b.ids);
    free(b.serials);
    free(b.reasons);
}

static void run_op(struct acall *a, struct answer *ans, const uint8_t *in, size_t len)
{
    const struct admin_state *st = &admin_st;
    const char *op = a->method + strlen("/certval.v1.Admin/");

    log_info("admin: %s", op);
    if (strcmp(op, "Reload") == 0)
        op_reload(ans, st);
    else if (strcmp(op, "PushCrl") == 0)
        op_push_crl(ans, st, in, len);
    else if (strcmp(op, "WithdrawCrl") == 0)
        op_withdraw_crl(ans, st, in, len);
    else if (strcmp(op, "GetRevocationStatus") == 0)
        op_status(ans, st);
    else if (strcmp(op, "AddDenyEntry") == 0)
        op_deny_change(ans, st, true, in, len);
    else if (strcmp(op, "RemoveDenyEntry") == 0)
        op_deny_change(ans, st, false, in, len);
    else if (strcmp(op, "ListDenyEntries") == 0)
        op_deny_list(ans, st);
    else
        answer_fail(ans, GRPC_STATUS_UNIMPLEMENTED, "unknown admin method ", op);
}

/* ---- call plumbing ---- */

static void respond(struct acall *a, struct answer *ans)
{
    grpc_slice empty = grpc_empty_slice();
    grpc_slice body;
    grpc_op ops[2];

    if (ans->code != GRPC_STATUS_OK) {
        if (call_send_status(&a->base, &a->status_tag, ans->code, ans->msg) != GRPC_CALL_OK)
            call_unref(&a->base);
        return;
    }
    body = grpc_slice_new(ans->body, ans->len, free);
    ans->body = NULL;
    a->send_buf = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_MESSAGE;
    ops[0].data.send_message.send_message = a->send_buf;
    ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[1].data.send_status_from_server.status = GRPC_STATUS_OK;
    ops[1].data.send_status_from_server.status_details = &empty;
    if (grpc_call_start_batch(a->base.call, ops, 2, &a->send_tag, NULL) != GRPC_CALL_OK)
        call_unref(&a->base);
}

static void recv_done(struct tag *t, bool ok)
{
    struct acall *a = container_of(t, struct acall, recv_tag);
    grpc_byte_buffer *bb = a->recv_buf;
    struct answer ans;
    grpc_byte_buffer_reader reader;
    grpc_slice in = grpc_empty_slice();

    a->recv_buf = NULL;
    memset(&ans, 0, sizeof(ans));
    if (!ok) {
        if (bb != NULL)
            grpc_byte_buffer_destroy(bb);
        call_unref(&a->base);
        return;
    }
    if (!a->authorized) {
        log_warn("admin: %s refused: missing or wrong bearer token", a->method);
        answer_fail(&ans, GRPC_STATUS_UNAUTHENTICATED, "", "missing or wrong bearer token");
    } else if (bb == NULL) {
        answer_fail(&ans, GRPC_STATUS_INVALID_ARGUMENT, "", "no request message");
    } else if (grpc_byte_buffer_reader_init(&reader, bb)) {
        in = grpc_byte_buffer_reader_readall(&reader);
        grpc_byte_buffer_reader_destroy(&reader);
        run_op(a, &ans, GRPC_SLICE_START_PTR(in), GRPC_SLICE_LENGTH(in));
    } else {
        answer_fail(&ans, GRPC_STATUS_INVALID_ARGUMENT, "", "unreadable request");
    }
    grpc_slice_unref(in);
    if (bb != NULL)
        grpc_byte_buffer_destroy(bb);
    respond(a, &ans);
    free(ans.body);
}

void admin_call_start(void *arg, const struct call_request *req)
{
    grpc_call *call = req->call;
    struct acall *a = calloc(1, sizeof(*a));
    grpc_op ops[2];

    if (a == NULL) {
        grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        grpc_call_unref(call);
        return;
    }
    (void)arg;
    snprintf(a->method, sizeof(a->method), "%s", req->method);
    /* The metadata array is the request slot's: decide now. */
    a->authorized = authorized(req->md);
    a->recv_tag.fn = recv_done;
    a->send_tag.fn = send_done;
    a->status_tag.fn = unref_done;
    if (!call_base_init(&a->base, req, acall_destroy)) {
        call_unref(&a->base);
        return;
    }
    memset(ops, 0, sizeof(ops));
    a->base.sent_initial_md = true;
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &a->recv_buf;
    if (grpc_call_start_batch(call, ops, 2, &a->recv_tag, NULL) != GRPC_CALL_OK)
        call_unref(&a->base);
}
