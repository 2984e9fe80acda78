/* Private to the etcd client (etcd_client.c, etcd_kv.c, etcd_lease.c,
 * etcd_watch.c): the client's shared state and the helpers its files
 * share. Callers use etcd.h.
 *
 * Conventions: as etcd.h: ETCD_OK (0) or a negative ETCD_E* code, with a
 * message in |err|. */
#ifndef CERTVAL_FLEET_ETCD_INTERNAL_H
#define CERTVAL_FLEET_ETCD_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <grpc/support/time.h>

#include "etcd.h"
#include "etcd/rpc.pb-c.h"
#include "rpc_unary.h"

#define ETCD_DEFAULT_TIMEOUT_MS 5000
#define ETCD_TOKEN_MAX 1024
/* A pushed CRL is read back in chunks of at most 1 MiB, but a range of many
 * deny entries can be large: 256 MiB bounds what one answer may allocate. */
#define ETCD_MAX_RECV_BYTES (256 << 20)

/* The client. Who does what: the endpoint list, the channels, the current
 * endpoint and the auth token are shared by every thread using the client
 * and protected by |lock|. */
struct etcd_client {
    char **endpoints;
    size_t n_endpoints;
    char *user, *password;
    unsigned timeout_ms;
    grpc_channel_credentials *creds;
    pthread_mutex_t lock;    /* protects everything below */
    grpc_channel **channels; /* created on first use, one per endpoint */
    size_t current;
    char token[ETCD_TOKEN_MAX]; /* "" = none yet */
};

/* etcd_client.c */

/* etcd_set_err writes a message into |err| (when not NULL, |errlen| > 0). */
__attribute__((format(printf, 3, 4))) void etcd_set_err(char *err, size_t errlen, const char *fmt,
                                                        ...);
/* etcd_channel_get returns the channel of endpoint |i| (created now if need
 * be; the client keeps it). Called with |lock| held. */
grpc_channel *etcd_channel_get(struct etcd_client *c, size_t i);
/* etcd_unreachable: |s| says the endpoint did not answer (try the next). */
bool etcd_unreachable(grpc_status_code s);
/* etcd_authenticate gets a token on |ch| into c->token: 0, or -1 with
 * |r| saying why. Called with |lock| held. */
int etcd_authenticate(struct etcd_client *c, grpc_channel *ch, gpr_timespec deadline,
                      struct rpc_unary_reply *r);
/* etcd_call packs |req|, calls |method| (each endpoint in turn while they
 * are unreachable, authenticating when needed) and unpacks the reply with
 * |desc| into |*out| (the caller frees it): ETCD_OK or ETCD_E*. */
int etcd_call(struct etcd_client *c, const char *method, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out, char *err,
              size_t errlen);

/* etcd_call_drop_reply is etcd_call for a request whose answer carries
 * nothing the caller uses: the reply is unpacked (so a bad one is an
 * error) and freed. */
int etcd_call_drop_reply(struct etcd_client *c, const char *method, const ProtobufCMessage *req,
                         const ProtobufCMessageDescriptor *desc, char *err, size_t errlen);

/* etcd_kv.c */
/* etcd_kv_copy copies |kv| (NULL: an empty pair) into |out|, key and value
 * NUL-terminated: 0, or -1 out of memory (|out| left empty). */
int etcd_kv_copy(struct etcd_kv *out, const Mvccpb__KeyValue *kv);
/* etcd_bin wraps |p| (borrowed) as protobuf bytes. */
ProtobufCBinaryData etcd_bin(const void *p, size_t n);

#endif
