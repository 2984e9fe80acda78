/* etcd v3 client (etcd.h): the Lease service and compaction. */
#include "etcd_internal.h"

int etcd_lease_grant(struct etcd_client *c, int64_t *out_id, int64_t ttl_s, char *err,
                     size_t errlen)
{
    Etcdserverpb__LeaseGrantRequest req = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
    Etcdserverpb__LeaseGrantResponse *resp = NULL;
    int rc;

    *out_id = 0;
    req.ttl = ttl_s;
    rc = etcd_call(c, "/etcdserverpb.Lease/LeaseGrant", &req.base,
                   &etcdserverpb__lease_grant_response__descriptor, (ProtobufCMessage **)&resp, err,
                   errlen);
    if (rc != ETCD_OK)
        return rc;
    if (resp->error != NULL && resp->error[0] != '\0') {
        etcd_set_err(err, errlen, "etcd refused the lease: %s%s", resp->error, "");
        rc = ETCD_EERROR;
    } else {
        *out_id = resp->id;
    }
    etcdserverpb__lease_grant_response__free_unpacked(resp, NULL);
    return rc;
}

int etcd_lease_revoke(struct etcd_client *c, int64_t id, char *err, size_t errlen)
{
    Etcdserverpb__LeaseRevokeRequest req = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;

    req.id = id;
    return etcd_call_drop_reply(c, "/etcdserverpb.Lease/LeaseRevoke", &req.base,
                                &etcdserverpb__lease_revoke_response__descriptor, err, errlen);
}

int etcd_lease_keepalive(struct etcd_client *c, int64_t *out_ttl, int64_t id, char *err,
                         size_t errlen)
{
    /* LeaseKeepAlive is a stream; one request and one answer on it renew
     * the lease once, which is all certval needs (it keeps no lease). */
    Etcdserverpb__LeaseKeepAliveRequest req = ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
    Etcdserverpb__LeaseKeepAliveResponse *resp = NULL;
    int rc;

    *out_ttl = 0;
    req.id = id;
    rc = etcd_call(c, "/etcdserverpb.Lease/LeaseKeepAlive", &req.base,
                   &etcdserverpb__lease_keep_alive_response__descriptor, (ProtobufCMessage **)&resp,
                   err, errlen);
    if (rc != ETCD_OK)
        return rc;
    *out_ttl = resp->ttl;
    etcdserverpb__lease_keep_alive_response__free_unpacked(resp, NULL);
    return ETCD_OK;
}

int etcd_compact(struct etcd_client *c, int64_t revision, char *err, size_t errlen)
{
    Etcdserverpb__CompactionRequest req = ETCDSERVERPB__COMPACTION_REQUEST__INIT;

    req.revision = revision;
    req.physical = true;
    return etcd_call_drop_reply(c, "/etcdserverpb.KV/Compact", &req.base,
                                &etcdserverpb__compaction_response__descriptor, err, errlen);
}
