/* etcd v3 client (etcd.h): the KV service (range, put, delete, txn) and
 * the key-value copies the KV and Watch answers share. */
#include "etcd_internal.h"

#include <stdlib.h>
#include <string.h>

void etcd_kvs_clear(struct etcd_kvs *k)
{
    if (k == NULL)
        return;
    for (size_t i = 0; i < k->n; i++) {
        free(k->v[i].key);
        free(k->v[i].value);
    }
    free(k->v);
    memset(k, 0, sizeof(*k));
}

size_t etcd_prefix_end(uint8_t *out, size_t cap, const void *prefix, size_t len)
{
    const uint8_t *p = prefix;

    for (size_t i = len; i > 0; i--) {
        if (p[i - 1] != 0xff && i <= cap) {
            memcpy(out, p, i - 1);
            out[i - 1] = (uint8_t)(p[i - 1] + 1);
            return i;
        }
    }
    if (cap > 0)
        out[0] = 0;
    return 1;
}

/* ---- KV ---- */

int etcd_kv_copy(struct etcd_kv *out, const Mvccpb__KeyValue *kv)
{
    memset(out, 0, sizeof(*out));
    if (kv == NULL)
        return 0;
    out->key = malloc(kv->key.len + 1);
    out->value = malloc(kv->value.len + 1);
    if (out->key == NULL || out->value == NULL) {
        free(out->key);
        free(out->value);
        memset(out, 0, sizeof(*out));
        return -1;
    }
    if (kv->key.len > 0)
        memcpy(out->key, kv->key.data, kv->key.len);
    if (kv->value.len > 0)
        memcpy(out->value, kv->value.data, kv->value.len);
    out->key[kv->key.len] = 0; /* keys read as strings stay terminated */
    out->value[kv->value.len] = 0;
    out->key_len = kv->key.len;
    out->value_len = kv->value.len;
    out->create_revision = kv->create_revision;
    out->mod_revision = kv->mod_revision;
    out->version = kv->version;
    out->lease = kv->lease;
    return 0;
}

ProtobufCBinaryData etcd_bin(const void *p, size_t n)
{
    ProtobufCBinaryData b = {n, (uint8_t *)(uintptr_t)p};

    return b;
}

int etcd_range(struct etcd_client *c, struct etcd_kvs *out, const void *key, size_t key_len,
               const void *end, size_t end_len, int64_t revision, int64_t limit, char *err,
               size_t errlen)
{
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    Etcdserverpb__RangeResponse *resp = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    req.key = etcd_bin(key, key_len);
    if (end != NULL)
        req.range_end = etcd_bin(end, end_len);
    req.revision = revision;
    req.limit = limit;
    rc =
        etcd_call(c, "/etcdserverpb.KV/Range", &req.base, &etcdserverpb__range_response__descriptor,
                  (ProtobufCMessage **)&resp, err, errlen);
    if (rc != ETCD_OK)
        return rc;
    out->revision = resp->header != NULL ? resp->header->revision : 0;
    out->more = resp->more;
    out->v = calloc(resp->n_kvs > 0 ? resp->n_kvs : 1, sizeof(*out->v));
    if (out->v == NULL)
        rc = ETCD_ENOMEM;
    for (size_t i = 0; rc == ETCD_OK && i < resp->n_kvs; i++) {
        if (etcd_kv_copy(&out->v[i], resp->kvs[i]) < 0)
            rc = ETCD_ENOMEM;
        else
            out->n++;
    }
    etcdserverpb__range_response__free_unpacked(resp, NULL);
    if (rc != ETCD_OK) {
        etcd_kvs_clear(out);
        etcd_set_err(err, errlen, "out of memory");
    }
    return rc;
}

int etcd_put(struct etcd_client *c, int64_t *out_revision, const void *key, size_t key_len,
             const void *value, size_t value_len, int64_t lease, char *err, size_t errlen)
{
    Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
    Etcdserverpb__PutResponse *resp = NULL;
    int rc;

    *out_revision = 0;
    req.key = etcd_bin(key, key_len);
    req.value = etcd_bin(value, value_len);
    req.lease = lease;
    rc = etcd_call(c, "/etcdserverpb.KV/Put", &req.base, &etcdserverpb__put_response__descriptor,
                   (ProtobufCMessage **)&resp, err, errlen);
    if (rc != ETCD_OK)
        return rc;
    *out_revision = resp->header != NULL ? resp->header->revision : 0;
    etcdserverpb__put_response__free_unpacked(resp, NULL);
    return ETCD_OK;
}

int etcd_delete(struct etcd_client *c, int64_t *out_revision, int64_t *out_deleted, const void *key,
                size_t key_len, const void *end, size_t end_len, char *err, size_t errlen)
{
    Etcdserverpb__DeleteRangeRequest req = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    Etcdserverpb__DeleteRangeResponse *resp = NULL;
    int rc;

    *out_revision = 0;
    *out_deleted = 0;
    req.key = etcd_bin(key, key_len);
    if (end != NULL)
        req.range_end = etcd_bin(end, end_len);
    rc = etcd_call(c, "/etcdserverpb.KV/DeleteRange", &req.base,
                   &etcdserverpb__delete_range_response__descriptor, (ProtobufCMessage **)&resp,
                   err, errlen);
    if (rc != ETCD_OK)
        return rc;
    *out_revision = resp->header != NULL ? resp->header->revision : 0;
    *out_deleted = resp->deleted;
    etcdserverpb__delete_range_response__free_unpacked(resp, NULL);
    return ETCD_OK;
}

int etcd_txn(struct etcd_client *c, int64_t *out_revision, bool *out_succeeded,
             const struct etcd_cmp *cmps, size_t n_cmps, const struct etcd_op *ops, size_t n_ops,
             char *err, size_t errlen)
{
    Etcdserverpb__TxnRequest req = ETCDSERVERPB__TXN_REQUEST__INIT;
    Etcdserverpb__TxnResponse *resp = NULL;
    Etcdserverpb__Compare *cv = calloc(n_cmps + 1, sizeof(*cv));
    Etcdserverpb__Compare **cp = calloc(n_cmps + 1, sizeof(*cp));
    Etcdserverpb__RequestOp *ov = calloc(n_ops + 1, sizeof(*ov));
    Etcdserverpb__RequestOp **op = calloc(n_ops + 1, sizeof(*op));
    Etcdserverpb__PutRequest *puts = calloc(n_ops + 1, sizeof(*puts));
    Etcdserverpb__DeleteRangeRequest *dels = calloc(n_ops + 1, sizeof(*dels));
    int rc = ETCD_ENOMEM;

    *out_revision = 0;
    *out_succeeded = false;
    if (cv == NULL || cp == NULL || ov == NULL || op == NULL || puts == NULL || dels == NULL) {
        etcd_set_err(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_cmps; i++) {
        Etcdserverpb__Compare init = ETCDSERVERPB__COMPARE__INIT;

        cv[i] = init;
        cv[i].key = etcd_bin(cmps[i].key, cmps[i].key_len);
        cv[i].result = (Etcdserverpb__Compare__CompareResult)cmps[i].result;
        cv[i].target = (Etcdserverpb__Compare__CompareTarget)cmps[i].target;
        switch (cmps[i].target) {
        case ETCD_CMP_VERSION:
            cv[i].target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION;
            cv[i].version = cmps[i].value;
            break;
        case ETCD_CMP_CREATE:
            cv[i].target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
            cv[i].create_revision = cmps[i].value;
            break;
        case ETCD_CMP_MOD:
            cv[i].target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
            cv[i].mod_revision = cmps[i].value;
            break;
        }
        cp[i] = &cv[i];
    }
    for (size_t i = 0; i < n_ops; i++) {
        Etcdserverpb__RequestOp oinit = ETCDSERVERPB__REQUEST_OP__INIT;
        Etcdserverpb__PutRequest pinit = ETCDSERVERPB__PUT_REQUEST__INIT;
        Etcdserverpb__DeleteRangeRequest dinit = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;

        ov[i] = oinit;
        if (ops[i].is_delete) {
            dels[i] = dinit;
            dels[i].key = etcd_bin(ops[i].key, ops[i].key_len);
            if (ops[i].end != NULL)
                dels[i].range_end = etcd_bin(ops[i].end, ops[i].end_len);
            ov[i].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
            ov[i].request_delete_range = &dels[i];
        } else {
            puts[i] = pinit;
            puts[i].key = etcd_bin(ops[i].key, ops[i].key_len);
            puts[i].value = etcd_bin(ops[i].value, ops[i].value_len);
            puts[i].lease = ops[i].lease;
            ov[i].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
            ov[i].request_put = &puts[i];
        }
        op[i] = &ov[i];
    }
    req.n_compare = n_cmps;
    req.compare = cp;
    req.n_success = n_ops;
    req.success = op;
    rc = etcd_call(c, "/etcdserverpb.KV/Txn", &req.base, &etcdserverpb__txn_response__descriptor,
                   (ProtobufCMessage **)&resp, err, errlen);
    if (rc == ETCD_OK) {
        *out_revision = resp->header != NULL ? resp->header->revision : 0;
        *out_succeeded = resp->succeeded;
        etcdserverpb__txn_response__free_unpacked(resp, NULL);
    }
out:
    free(cv);
    free(cp);
    free(ov);
    free(op);
    free(puts);
    free(dels);
    return rc;
}
