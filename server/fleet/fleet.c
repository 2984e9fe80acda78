/* Fleet-wide revocation through etcd (fleet.h, docs/fleet.md): start and
 * stop, readiness, and the helpers the fleet's files share.
 *
 * Who does what: the follower thread (fleet_follower.c) is the only one
 * that changes the local revocation state from the fleet (deny list, pushed
 * CRLs, the tracked CRL generations, STATE/fleet.txt). The admin thread
 * (fleet_admin.c) writes to etcd only and waits on |cond| until the
 * follower has applied its write. The counters shown by status and metrics
 * (fleet_status.c) are atomics or read under |lock|. */
#include "fleet_internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/mem.h>

#include "deny_list.h"
#include "hex.h"
#include "log.h"

struct fleet *g_fleet;

int64_t fleet_now_s(void)
{
    return (int64_t)time(NULL);
}

int64_t fleet_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void fleet_hex_of(char *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* fleet_from_hex decodes exactly |n| hex digits into |out| (n/2 bytes), with the
 * one hex decoder (cache/hex.h). */
int fleet_from_hex(uint8_t *out, const char *s, size_t n)
{
    size_t got = 0;

    return n % 2 == 0 && hex_decode(out, n / 2, &got, s, n) == 0 && got == n / 2 ? 0 : -1;
}

void fleet_set_detail(struct fleet *f, const char *what, const char *arg)
{
    pthread_mutex_lock(&f->lock);
    snprintf(f->detail, sizeof(f->detail), "%s%s", what, arg);
    pthread_mutex_unlock(&f->lock);
}

/* ---- start and stop ---- */

static int copy_config(struct fleet_config *out, const struct fleet_config *in)
{
    memset(out, 0, sizeof(*out));
    *out = *in;
    out->endpoints = calloc(in->n_endpoints, sizeof(*out->endpoints));
    out->n_endpoints = 0;
    out->prefix = strdup(in->prefix);
    out->user = in->user != NULL ? strdup(in->user) : NULL;
    out->password_file = in->password_file != NULL ? strdup(in->password_file) : NULL;
    if (out->endpoints == NULL || out->prefix == NULL ||
        (in->user != NULL && (out->user == NULL || out->password_file == NULL)))
        return -1;
    for (size_t i = 0; i < in->n_endpoints; i++) {
        out->endpoints[i] = strdup(in->endpoints[i]);
        if (out->endpoints[i] == NULL)
            return -1;
        out->n_endpoints++;
    }
    return 0;
}

static void fleet_free(struct fleet *f)
{
    if (f == NULL)
        return;
    etcd_client_free(f->etcd);
    fleet_config_clear(&f->cfg);
    free(f->state_dir);
    free(f->tracked);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->cond);
    free(f);
}

static int read_password(char *out, size_t cap, const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");

    out[0] = '\0';
    if (fp == NULL) {
        snprintf(err, errlen, "fleet.password_file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fgets(out, (int)cap, fp) == NULL)
        out[0] = '\0';
    fclose(fp);
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

int fleet_start(const struct fleet_config *cfg, struct crl_cache *crls, struct deny_list *deny,
                const char *state_dir, void (*ready_hook)(void *arg), void *arg, char *err,
                size_t errlen)
{
    struct etcd_client_opts o;
    struct fleet *f;
    char password[512];

    if (cfg == NULL || !cfg->enabled)
        return 0;
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    if (copy_config(&f->cfg, cfg) < 0 ||
        (state_dir != NULL && (f->state_dir = strdup(state_dir)) == NULL)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    password[0] = '\0';
    if (cfg->user != NULL &&
        read_password(password, sizeof(password), cfg->password_file, err, errlen) < 0)
        goto fail;
    memset(&o, 0, sizeof(o));
    o.endpoints = (const char *const *)f->cfg.endpoints;
    o.n_endpoints = f->cfg.n_endpoints;
    o.user = f->cfg.user;
    o.password = password;
    o.timeout_ms = f->cfg.timeout_ms;
    f->etcd = etcd_client_new(&o);
    OPENSSL_cleanse(password, sizeof(password));
    if (f->etcd == NULL) {
        snprintf(err, errlen, "cannot create the etcd client");
        goto fail;
    }
    f->crls = crls;
    f->deny = deny;
    f->ready_hook = ready_hook;
    f->ready_arg = arg;
    f->started_at = fleet_now_ms();
    atomic_store(&f->disconnected_since, fleet_now_s());
    snprintf(f->detail, sizeof(f->detail), "connecting to etcd");
    if (state_dir != NULL) {
        /* Fleet entries are applied in memory first and mirrored to
         * STATE/deny-list.txt after each batch (fleet_state_save): etcd holds them
         * durably already, and a sync per entry before it is in force would
         * put the disk's fsync time on every pod's propagation. */
        if (deny_list_set_store(deny, NULL, err, errlen) < 0)
            goto fail;
        fleet_state_load(f);
    } else {
        log_warn("fleet: no state_dir: a restart while etcd is down starts with no fleet state");
    }
    g_fleet = f;
    if (pthread_create(&f->thread, NULL, fleet_follower, f) != 0) {
        g_fleet = NULL;
        snprintf(err, errlen, "cannot start the fleet follower thread");
        goto fail;
    }
    f->thread_started = true;
    log_info("fleet: following %s%s on %zu etcd endpoint(s), first %s", f->cfg.prefix, "s/",
             f->cfg.n_endpoints, f->cfg.endpoints[0]);
    return 0;
fail:
    fleet_free(f);
    return -1;
}

void fleet_stop(void)
{
    struct fleet *f = g_fleet;

    if (f == NULL)
        return;
    atomic_store(&f->stop, true);
    pthread_mutex_lock(&f->lock);
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
    if (f->thread_started)
        pthread_join(f->thread, NULL);
    g_fleet = NULL;
    fleet_free(f);
}

bool fleet_enabled(void)
{
    return g_fleet != NULL;
}

bool fleet_ready(const struct fleet_config *cfg, char *why, size_t cap)
{
    struct fleet *f = g_fleet;

    if (cfg == NULL || !cfg->enabled)
        return true;
    if (f != NULL && (atomic_load(&f->first_read_done) || atomic_load(&f->local_copy)))
        return true;
    snprintf(why, cap, "fleet: waiting for the first read of etcd (or start_timeout_ms)");
    return false;
}

bool fleet_revocation_unknown(char *why, size_t cap)
{
    struct fleet *f = g_fleet;
    int64_t since;

    if (f == NULL || f->cfg.max_disconnected_seconds == 0 || atomic_load(&f->connected))
        return false;
    since = atomic_load(&f->disconnected_since);
    if (since == 0 || fleet_now_s() - since <= (int64_t)f->cfg.max_disconnected_seconds)
        return false;
    snprintf(why, cap, "cut off from the fleet's etcd for %lld s (fleet.max_disconnected_seconds)",
             (long long)(fleet_now_s() - since));
    return true;
}
