/* Fleet (fleet.h): the follower thread, which reads the prefix whole,
 * watches it from the next revision, and reconnects with backoff. */
#include "fleet_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "log.h"
#include "rcu_reader.h"

/* ---- the follower ---- */

static void mark_connected(struct fleet *f, bool on)
{
    bool was = atomic_exchange(&f->connected, on);

    if (on && !was) {
        atomic_store(&f->disconnected_since, 0);
        fleet_set_detail(f, "following etcd", "");
    } else if (!on && was) {
        atomic_store(&f->disconnected_since, fleet_now_s());
        atomic_fetch_add(&f->reconnects, 1);
    }
}

/* check_start_timeout falls back to the local copy once start_timeout_ms
 * has passed without a first read. */
static void check_start_timeout(struct fleet *f)
{
    if (atomic_load(&f->first_read_done) || atomic_load(&f->local_copy))
        return;
    if (fleet_now_ms() - f->started_at < (int64_t)f->cfg.start_timeout_ms)
        return;
    atomic_store(&f->local_copy, true);
    fleet_set_detail(
        f, "etcd not reached since start: serving the local copy from the state folder", "");
    log_warn("fleet: etcd did not answer within %u ms: SERVING from the local copy (revision "
             "%lld) until it does",
             f->cfg.start_timeout_ms, (long long)f->applied_revision);
    if (f->ready_hook != NULL)
        f->ready_hook(f->ready_arg);
}

/* pause_ms sleeps |ms| in steps, returning early on stop. */
static void pause_ms(struct fleet *f, int64_t ms)
{
    int64_t until = fleet_now_ms() + ms;

    while (!atomic_load(&f->stop) && fleet_now_ms() < until) {
        int64_t left = until - fleet_now_ms();

        usleep((useconds_t)(left > 100 ? 100 : left > 0 ? left : 1) * 1000);
        check_start_timeout(f);
    }
}

/* Exponential backoff with jitter: a random wait in [b/2, b], b doubling
 * up to max_backoff_ms, so pods that lost etcd together do not come back
 * in step. */
static void backoff(struct fleet *f, int64_t *b)
{
    uint32_t r = 0;
    int64_t wait;

    RAND_bytes((uint8_t *)&r, sizeof(r));
    wait = *b / 2 + (int64_t)(r % (uint32_t)(*b / 2 + 1));
    pause_ms(f, wait);
    *b = *b * 2 > (int64_t)f->cfg.max_backoff_ms ? (int64_t)f->cfg.max_backoff_ms : *b * 2;
}

static void first_read_done(struct fleet *f)
{
    if (atomic_exchange(&f->first_read_done, true))
        return;
    if (atomic_exchange(&f->local_copy, false))
        log_info("fleet: etcd reached: the local copy is replaced by the fleet's state");
    if (f->ready_hook != NULL)
        f->ready_hook(f->ready_arg);
}

/* watch_loop follows the watch until it fails, is compacted or stop. */
static int watch_loop(struct fleet *f, struct etcd_watch *w, char *err, size_t errlen)
{
    int64_t last_answer = fleet_now_ms(), last_progress = 0;

    while (!atomic_load(&f->stop)) {
        struct etcd_watch_batch b;
        int64_t top = 0;
        int rc;

        if (fleet_now_ms() - last_progress >= FLEET_PROGRESS_MS) {
            etcd_watch_request_progress(w);
            last_progress = fleet_now_ms();
        }
        rc = etcd_watch_next(w, &b, 250, err, errlen);
        if (rc != ETCD_OK) {
            etcd_watch_batch_clear(&b);
            return rc;
        }
        if (b.n == 0 && !b.progress) {
            if (fleet_now_ms() - last_answer > FLEET_SILENCE_MS) {
                snprintf(err, errlen, "etcd stopped answering on the watch");
                return ETCD_EUNAVAILABLE;
            }
            continue;
        }
        last_answer = fleet_now_ms();
        if (b.revision > atomic_load(&f->store_revision))
            atomic_store(&f->store_revision, b.revision);
        for (size_t i = 0; i < b.n && rc == ETCD_OK; i++) {
            const struct etcd_event *e = &b.v[i];

            rc = fleet_apply_key(f, &e->kv, e->is_delete, e->prev.key_len > 0, e->kv.mod_revision);
            if (rc == ETCD_OK && e->kv.mod_revision > top)
                top = e->kv.mod_revision;
        }
        if (rc == ETCD_OK && b.n > 0) {
            fleet_set_applied(f, top);
            fleet_state_save(f);
        } else if (rc == ETCD_OK && b.progress) {
            fleet_set_applied(f, b.revision);
        }
        etcd_watch_batch_clear(&b);
        if (rc != ETCD_OK)
            return rc;
    }
    return ETCD_OK;
}

void *fleet_follower(void *arg)
{
    struct fleet *f = arg;
    int64_t b = 100;
    char err[512];

    certval_rcu_reader_register();
    f->need_full_read = true;
    while (!atomic_load(&f->stop)) {
        struct etcd_watch *w = NULL;
        char from[FLEET_KEY_MAX];
        uint8_t end[FLEET_KEY_MAX];
        size_t from_len = fleet_key_of(from, sizeof(from), f, "s/", "");
        size_t elen = etcd_prefix_end(end, sizeof(end), from, from_len);
        int64_t start, compacted = 0;
        int rc;

        check_start_timeout(f);
        err[0] = '\0';
        if (f->need_full_read) {
            rc = fleet_full_read(f, err, sizeof(err));
            if (rc != ETCD_OK) {
                if (atomic_load(&f->connected) || !atomic_load(&f->first_read_done))
                    log_warn("fleet: cannot read the fleet's state: %s", err);
                mark_connected(f, false);
                fleet_set_detail(f, "etcd: ", err);
                backoff(f, &b);
                continue;
            }
            f->need_full_read = false;
            if (f->rereading) /* counted once done */
                atomic_fetch_add(&f->rereads, 1);
            f->rereading = false;
            first_read_done(f);
        }
        pthread_mutex_lock(&f->lock);
        start = f->applied_revision + 1;
        pthread_mutex_unlock(&f->lock);
        rc = etcd_watch_open(f->etcd, &w, &compacted, from, from_len, end, elen, start, true, err,
                             sizeof(err));
        if (rc == ETCD_OK) {
            mark_connected(f, true);
            b = 100;
            rc = watch_loop(f, w, err, sizeof(err));
            etcd_watch_close(w);
        }
        if (atomic_load(&f->stop))
            break;
        if (rc == ETCD_ECOMPACTED) {
            /* The history since our revision is gone: read it all again. */
            log_warn("fleet: etcd compacted past revision %lld: reading the whole prefix again",
                     (long long)start);
            f->need_full_read = true;
            f->rereading = true;
            continue;
        }
        if (atomic_load(&f->connected))
            log_warn("fleet: lost etcd (%s): serving the state of revision %lld, reconnecting", err,
                     (long long)(start - 1));
        mark_connected(f, false);
        fleet_set_detail(f, "etcd: ", err);
        backoff(f, &b);
    }
    certval_rcu_reader_unregister();
    return NULL;
}
