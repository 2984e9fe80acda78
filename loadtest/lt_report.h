/* Results of a loadtest run, the traffic mix, and the two outputs shared by
 * certval-load and certval-baseline-openssl: a human summary and one JSON
 * document of the same shape, so that scripts compare them field by field.
 *
 * Decision and reason numbers are those of certval.v1 (proto/certval/v1/
 * certval.proto; the names are frozen there). Plain C, no crypto.
 * Conventions: 0 or -1 with a message in |err|. Not thread-safe: each
 * thread fills its own lt_result and the main thread merges them. */
#ifndef CERTVAL_LT_REPORT_H
#define CERTVAL_LT_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lt_bundle.h"
#include "lt_hist.h"

#define LT_N_DECISIONS 4
#define LT_N_REASONS 25
#define LT_N_STATUS 18            /* gRPC status codes 0..16, then 17: */
#define LT_STATUS_CLIENT_FAILED 17 /* the batch failed on the client side */
#define LT_HIST_SUB_BITS 7

/* Decision / reason numbers used by the harness (certval.v1 values). */
enum {
    LT_DECISION_ALLOW = 1,
    LT_DECISION_REQUIRE_PASSWORD = 2,
    LT_DECISION_DENY = 3,
    LT_REASON_OK = 1,
    LT_REASON_MALFORMED = 2,
    LT_REASON_UNTRUSTED_ISSUER = 3,
    LT_REASON_EXPIRED = 5,
    LT_REASON_REVOKED = 7,
};

/* The traffic mix: a weight per class. */
struct lt_mix {
    unsigned weight[LT_N_CLASSES];
    uint64_t total;
};

/* Everything a run measured. */
struct lt_result {
    uint64_t calls;                                  /* completed with status OK */
    uint64_t chains;                                 /* verdicts received */
    uint64_t verdicts[LT_N_DECISIONS][LT_N_REASONS]; /* by decision and reason */
    uint64_t class_sent[LT_N_CLASSES];               /* verdicts received per class */
    uint64_t class_match[LT_N_CLASSES];              /* verdicts that match the class */
    uint64_t unknown_ids;                            /* verdict ids not sent by us */
    uint64_t errors[LT_N_STATUS];                    /* failed calls by gRPC status */
    struct lt_hist lat;                              /* nanoseconds per call */
};

/* How the run was made, for the report. Strings may be NULL. */
struct lt_run_info {
    const char *tool;
    const char *mode;      /* "closed", "open", "in-process" */
    const char *api;       /* "unary", "stream", "X509_verify_cert" */
    const char *target;
    const char *fixtures;
    const char *mix;       /* as given on the command line */
    unsigned channels, concurrency, batch, threads;
    double rate;           /* open loop: intended calls/s; 0 otherwise */
    double warmup_s;
    double seconds;        /* the measured window */
    const char *extra_json; /* inserted as "extra": {...}; NULL = none */
};

/* lt_result_init zeroes |r| and allocates its histogram. */
int lt_result_init(struct lt_result *r);

/* lt_result_clear frees what |r| owns. */
void lt_result_clear(struct lt_result *r);

/* lt_result_merge adds |src| into |dst|. */
void lt_result_merge(struct lt_result *dst, const struct lt_result *src);

/* lt_result_verdict counts one verdict of chain class |cls| (-1 = unknown
 * id) with |decision| and |reason|, checking it against the class. */
void lt_result_verdict(struct lt_result *r, int cls, unsigned decision, unsigned reason);

/* lt_result_mismatches returns the verdicts that did not match their class. */
uint64_t lt_result_mismatches(const struct lt_result *r);

/* lt_expected returns the decision and reason class |c| must get. */
void lt_expected(enum lt_class c, unsigned *decision, unsigned *reason);

/* lt_decision_name / lt_reason_name / lt_status_name: short names
 * ("ALLOW", "REVOKED", "UNAVAILABLE"), "UNKNOWN" out of range. */
const char *lt_decision_name(unsigned d);
const char *lt_reason_name(unsigned r);
const char *lt_status_name(unsigned s);

/* lt_mix_parse reads "tenant=90,device=10,..." into |m|; classes absent
 * get weight 0; at least one weight must be positive. */
int lt_mix_parse(struct lt_mix *m, const char *text, char *err, size_t errlen);

/* lt_mix_restrict sets to 0 the weight of classes that have no chain in
 * |b|; -1 when nothing is left. */
int lt_mix_restrict(struct lt_mix *m, const struct lt_bundle *b, char *err, size_t errlen);

/* lt_fixtures_open opens |dir|/chains.bundle into |*out| (the caller's to
 * lt_bundle_free) and restricts |m| to the classes it holds; on failure
 * |*out| is NULL and |err| says why. */
int lt_fixtures_open(struct lt_bundle **out, struct lt_mix *m, const char *dir, char *err,
                     size_t errlen);

/* lt_mix_pick returns the class for a uniform 64-bit random |r|. */
enum lt_class lt_mix_pick(const struct lt_mix *m, uint64_t r);

/* lt_rand64 advances |state| and returns 64 random bits (splitmix64; not
 * for secrets). */
uint64_t lt_rand64(uint64_t *state);

/* lt_now_ns returns CLOCK_MONOTONIC in nanoseconds. */
uint64_t lt_now_ns(void);

/* lt_report_json writes one JSON document for |r| to |fp|. */
void lt_report_json(FILE *fp, const struct lt_run_info *info, const struct lt_result *r);

/* lt_report_human writes a few lines for people to |fp|. */
void lt_report_human(FILE *fp, const struct lt_run_info *info, const struct lt_result *r);

/* lt_report_write writes the human summary to stderr and the JSON document
 * to |json_path| (NULL = stdout); -1, with "|tool|: PATH: why" on stderr,
 * when |json_path| cannot be opened. */
int lt_report_write(const char *tool, const char *json_path, const struct lt_run_info *info,
                    const struct lt_result *r);

#endif
