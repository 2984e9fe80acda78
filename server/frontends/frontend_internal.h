/* Private to server/frontends/: the listeners frontends_start starts.
 *
 * Conventions: 0 on success, -1 on failure (with a message in |err| where
 * there is one). */
#ifndef CERTVAL_FRONTEND_INTERNAL_H
#define CERTVAL_FRONTEND_INTERNAL_H

#include <stddef.h>
#include <sys/socket.h>

struct frontends_config;
struct verdict;
struct reload_snapshot;
struct revocation_sources;

/* frontend_parse_listen parses "IPv4:PORT" or "[IPv6]:PORT". 0 or -1. */
int frontend_parse_listen(struct sockaddr_storage *ss, socklen_t *len, const char *listen);

/* frontend_bound_port sets |*out_port| to the port |fd| is bound to (0 when
 * it cannot be read) and returns 0, or -1 when it cannot be read. */
int frontend_bound_port(int fd, int *out_port);

/* frontend_header_name writes PREFIX + |suffix| (the answer's names). */
void frontend_header_name(char *out, size_t cap, const struct frontends_config *f,
                          const char *suffix);

/* frontend_now returns the validation time (Unix seconds). */
long long frontend_now(void);

/* The listeners validate against |src| (kept, not copied) until stopped. */
int nginx_http_start(const char *listen, const struct revocation_sources *src, int *out_port,
                     char *err, size_t errlen);
void nginx_http_stop(void);
int spoe_start(const char *listen, const struct revocation_sources *src, int *out_port, char *err,
               size_t errlen);
void spoe_stop(void);

#endif
