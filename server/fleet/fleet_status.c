/* Fleet (fleet.h): status for the admin API and the metrics. */
#include "fleet_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "metrics.h"

/* ---- visibility ---- */

void fleet_get_status(struct fleet_status *out)
{
    struct fleet *f = g_fleet;
    int64_t since;

    memset(out, 0, sizeof(*out));
    if (f == NULL)
        return;
    out->enabled = true;
    out->connected = atomic_load(&f->connected);
    out->first_read_done = atomic_load(&f->first_read_done);
    out->local_copy = atomic_load(&f->local_copy);
    pthread_mutex_lock(&f->lock);
    out->applied_revision = f->applied_revision;
    snprintf(out->detail, sizeof(out->detail), "%s", f->detail);
    pthread_mutex_unlock(&f->lock);
    out->store_revision = atomic_load(&f->store_revision);
    if (out->store_revision < out->applied_revision)
        out->store_revision = out->applied_revision;
    since = atomic_load(&f->disconnected_since);
    out->disconnected_seconds = !out->connected && since > 0 ? fleet_now_s() - since : 0;
    out->deny_entries = atomic_load(&f->deny_entries);
    out->crls = atomic_load(&f->n_crls);
    out->rereads = atomic_load(&f->rereads);
    out->reconnects = atomic_load(&f->reconnects);
    out->crls_refused = atomic_load(&f->crls_refused);
}

void fleet_collect(struct mbuf *b, void *arg)
{
    struct fleet_status st;

    (void)arg;
    fleet_get_status(&st);
    if (!st.enabled)
        return;
    mbuf_printf(b,
                "# HELP certval_fleet_connected 1 while the etcd watch is established.\n"
                "# TYPE certval_fleet_connected gauge\ncertval_fleet_connected %d\n"
                "# HELP certval_fleet_local_copy 1 while serving the state folder's copy "
                "(etcd not reached since start).\n"
                "# TYPE certval_fleet_local_copy gauge\ncertval_fleet_local_copy %d\n"
                "# HELP certval_fleet_applied_revision The etcd revision applied here.\n"
                "# TYPE certval_fleet_applied_revision gauge\n"
                "certval_fleet_applied_revision %lld\n"
                "# HELP certval_fleet_lag_revisions Store revision last seen minus applied.\n"
                "# TYPE certval_fleet_lag_revisions gauge\ncertval_fleet_lag_revisions %lld\n"
                "# HELP certval_fleet_disconnected_seconds Time since etcd was lost (0 while "
                "connected).\n"
                "# TYPE certval_fleet_disconnected_seconds gauge\n"
                "certval_fleet_disconnected_seconds %lld\n"
                "# HELP certval_fleet_deny_entries Deny entries held from the fleet.\n"
                "# TYPE certval_fleet_deny_entries gauge\ncertval_fleet_deny_entries %llu\n"
                "# HELP certval_fleet_crls Pushed CRLs held from the fleet.\n"
                "# TYPE certval_fleet_crls gauge\ncertval_fleet_crls %llu\n"
                "# HELP certval_fleet_rereads_total Full reads after a compaction.\n"
                "# TYPE certval_fleet_rereads_total counter\ncertval_fleet_rereads_total %llu\n"
                "# HELP certval_fleet_disconnects_total Times etcd was lost.\n"
                "# TYPE certval_fleet_disconnects_total counter\n"
                "certval_fleet_disconnects_total %llu\n"
                "# HELP certval_fleet_crls_refused_total Fleet CRLs not applied here.\n"
                "# TYPE certval_fleet_crls_refused_total counter\n"
                "certval_fleet_crls_refused_total %llu\n",
                st.connected ? 1 : 0, st.local_copy ? 1 : 0, (long long)st.applied_revision,
                (long long)(st.store_revision - st.applied_revision),
                (long long)st.disconnected_seconds, (unsigned long long)st.deny_entries,
                (unsigned long long)st.crls, (unsigned long long)st.rereads,
                (unsigned long long)st.reconnects, (unsigned long long)st.crls_refused);
}
