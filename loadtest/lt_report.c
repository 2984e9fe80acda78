/* Results, traffic mix and reports: see lt_report.h. */
#include "lt_report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const lt_decision_names[LT_N_DECISIONS] = {"UNSPECIFIED", "ALLOW",
                                                              "REQUIRE_PASSWORD", "DENY"};

/* certval.v1 Reason, without the VERDICT_REASON_ prefix, in enum order. */
static const char *const lt_reason_names[LT_N_REASONS] = {
    "UNSPECIFIED", "OK", "MALFORMED", "UNTRUSTED_ISSUER", "BAD_SIGNATURE", "EXPIRED",
    "NOT_YET_VALID", "REVOKED", "REVOCATION_UNKNOWN", "REVOCATION_STALE", "KEY_USAGE",
    "EXTENDED_KEY_USAGE", "BASIC_CONSTRAINTS", "NAME_CONSTRAINTS", "POLICY",
    "UNKNOWN_CRITICAL_EXTENSION", "PATH_TOO_LONG", "WRONG_TENANT", "DEVICE_MISMATCH",
    "VALIDITY_TOO_LONG", "NO_MATCHING_PROFILE", "UNKNOWN_TENANT", "MISSING_IDENTITY",
    "NAME_CHAINING", "INTERNAL_ERROR",
};

static const char *const lt_status_names[LT_N_STATUS] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED", "CLIENT_FAILED",
};

/* What each class must get (decision, reason). */
static const unsigned lt_expect[LT_N_CLASSES][2] = {
    [LT_CLASS_TENANT] = {LT_DECISION_REQUIRE_PASSWORD, LT_REASON_OK},
    [LT_CLASS_DEVICE] = {LT_DECISION_ALLOW, LT_REASON_OK},
    [LT_CLASS_REVOKED] = {LT_DECISION_DENY, LT_REASON_REVOKED},
    [LT_CLASS_EXPIRED] = {LT_DECISION_DENY, LT_REASON_EXPIRED},
    [LT_CLASS_UNTRUSTED] = {LT_DECISION_DENY, LT_REASON_UNTRUSTED_ISSUER},
    [LT_CLASS_MALFORMED] = {LT_DECISION_DENY, LT_REASON_MALFORMED},
    [LT_CLASS_VICTIM] = {LT_DECISION_ALLOW, LT_REASON_OK},
};

const char *lt_decision_name(unsigned d)
{
    return d < LT_N_DECISIONS ? lt_decision_names[d] : "UNKNOWN";
}

const char *lt_reason_name(unsigned r)
{
    return r < LT_N_REASONS ? lt_reason_names[r] : "UNKNOWN";
}

const char *lt_status_name(unsigned s)
{
    return s < LT_N_STATUS ? lt_status_names[s] : "UNKNOWN";
}

void lt_expected(enum lt_class c, unsigned *decision, unsigned *reason)
{
    *decision = (unsigned)c < LT_N_CLASSES ? lt_expect[c][0] : 0;
    *reason = (unsigned)c < LT_N_CLASSES ? lt_expect[c][1] : 0;
}

int lt_result_init(struct lt_result *r)
{
    memset(r, 0, sizeof(*r));
    return lt_hist_init(&r->lat, LT_HIST_SUB_BITS);
}

void lt_result_clear(struct lt_result *r)
{
    lt_hist_clear(&r->lat);
}

void lt_result_merge(struct lt_result *dst, const struct lt_result *src)
{
    dst->calls += src->calls;
    dst->chains += src->chains;
    dst->unknown_ids += src->unknown_ids;
    for (int d = 0; d < LT_N_DECISIONS; d++) {
        for (int k = 0; k < LT_N_REASONS; k++)
            dst->verdicts[d][k] += src->verdicts[d][k];
    }
    for (int c = 0; c < LT_N_CLASSES; c++) {
        dst->class_sent[c] += src->class_sent[c];
        dst->class_match[c] += src->class_match[c];
    }
    for (int s = 0; s < LT_N_STATUS; s++)
        dst->errors[s] += src->errors[s];
    lt_hist_merge(&dst->lat, &src->lat);
}

void lt_result_verdict(struct lt_result *r, int cls, unsigned decision, unsigned reason)
{
    r->chains++;
    if (decision >= LT_N_DECISIONS)
        decision = 0;
    if (reason >= LT_N_REASONS)
        reason = 0;
    r->verdicts[decision][reason]++;
    if (cls < 0 || cls >= LT_N_CLASSES) {
        r->unknown_ids++;
        return;
    }
    r->class_sent[cls]++;
    if (lt_expect[cls][0] == decision && lt_expect[cls][1] == reason)
        r->class_match[cls]++;
}

uint64_t lt_result_mismatches(const struct lt_result *r)
{
    uint64_t match = 0;

    for (int c = 0; c < LT_N_CLASSES; c++)
        match += r->class_match[c];
    /* Compare with the verdicts received: chains of failed calls got none. */
    return r->chains >= match ? r->chains - match : 0;
}

int lt_mix_parse(struct lt_mix *m, const char *text, char *err, size_t errlen)
{
    const char *p = text;

    memset(m, 0, sizeof(*m));
    for (int guard = 0; *p != '\0' && guard < 64; guard++) {
        const char *eq = strchr(p, '='), *end = strchr(p, ',');
        char *num_end;
        unsigned long w;
        enum lt_class c;

        if (end == NULL)
            end = p + strlen(p);
        if (eq == NULL || eq > end || lt_class_parse(&c, p, (size_t)(eq - p)) != 0) {
            snprintf(err, errlen, "--mix: expected CLASS=WEIGHT,... (classes: tenant, device, "
                                  "revoked, expired, untrusted, malformed, victim)");
            return -1;
        }
        w = strtoul(eq + 1, &num_end, 10);
        if (num_end != end || w > 1000000) {
            snprintf(err, errlen, "--mix: bad weight for %s", lt_class_name((enum lt_class)c));
            return -1;
        }
        m->weight[c] = (unsigned)w;
        p = *end == ',' ? end + 1 : end;
    }
    for (int c = 0; c < LT_N_CLASSES; c++)
        m->total += m->weight[c];
    if (m->total == 0) {
        snprintf(err, errlen, "--mix: all weights are zero");
        return -1;
    }
    return 0;
}

int lt_mix_restrict(struct lt_mix *m, const struct lt_bundle *b, char *err, size_t errlen)
{
    m->total = 0;
    for (int c = 0; c < LT_N_CLASSES; c++) {
        if (m->weight[c] > 0 && lt_bundle_count(b, (enum lt_class)c) == 0) {
            fprintf(stderr, "warning: the fixtures have no %s chain; weight ignored\n",
                    lt_class_name((enum lt_class)c));
            m->weight[c] = 0;
        }
        m->total += m->weight[c];
    }
    if (m->total == 0) {
        snprintf(err, errlen, "the fixtures hold no chain of any class in the mix");
        return -1;
    }
    return 0;
}

int lt_fixtures_open(struct lt_bundle **out, struct lt_mix *m, const char *dir, char *err,
                     size_t errlen)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/chains.bundle", dir);
    if (lt_bundle_open(out, path, err, errlen) != 0 || lt_mix_restrict(m, *out, err, errlen) != 0) {
        lt_bundle_free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

enum lt_class lt_mix_pick(const struct lt_mix *m, uint64_t r)
{
    uint64_t x = r % m->total;

    for (int c = 0; c < LT_N_CLASSES; c++) {
        if (x < m->weight[c])
            return (enum lt_class)c;
        x -= m->weight[c];
    }
    return LT_CLASS_TENANT;
}

uint64_t lt_rand64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

uint64_t lt_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* lt_json_str writes |s| as a JSON string (the harness's strings are
 * plain ASCII names and paths; quotes, backslashes and controls escaped). */
static void lt_json_str(FILE *fp, const char *s)
{
    fputc('"', fp);
    for (const char *p = s ? s : ""; *p != '\0'; p++) {
        unsigned char ch = (unsigned char)*p;

        if (ch == '"' || ch == '\\')
            fprintf(fp, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(fp, "\\u%04x", ch);
        else
            fputc(ch, fp);
    }
    fputc('"', fp);
}

static double lt_us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static void lt_report_verdicts_json(FILE *fp, const struct lt_result *r)
{
    bool first_d = true;

    fprintf(fp, "  \"verdicts\": {");
    for (unsigned d = 0; d < LT_N_DECISIONS; d++) {
        bool first_r = true;

        for (unsigned k = 0; k < LT_N_REASONS; k++) {
            if (r->verdicts[d][k] == 0)
                continue;
            if (first_r) {
                fprintf(fp, "%s\n    \"%s\": {", first_d ? "" : ",", lt_decision_name(d));
                first_d = false;
            }
            fprintf(fp, "%s\"%s\": %llu", first_r ? "" : ", ", lt_reason_name(k),
                    (unsigned long long)r->verdicts[d][k]);
            first_r = false;
        }
        if (!first_r)
            fprintf(fp, "}");
    }
    fprintf(fp, "%s},\n", first_d ? "" : "\n  ");
    fprintf(fp, "  \"by_class\": {");
    first_d = true;
    for (int c = 0; c < LT_N_CLASSES; c++) {
        unsigned ed, er;

        if (r->class_sent[c] == 0)
            continue;
        lt_expected((enum lt_class)c, &ed, &er);
        fprintf(fp, "%s\n    \"%s\": {\"received\": %llu, \"matched\": %llu, \"expected\": \"%s %s\"}",
                first_d ? "" : ",", lt_class_name((enum lt_class)c),
                (unsigned long long)r->class_sent[c], (unsigned long long)r->class_match[c],
                lt_decision_name(ed), lt_reason_name(er));
        first_d = false;
    }
    fprintf(fp, "%s},\n", first_d ? "" : "\n  ");
}

void lt_report_json(FILE *fp, const struct lt_run_info *in, const struct lt_result *r)
{
    double secs = in->seconds > 0 ? in->seconds : 1e-9;
    uint64_t n_err = 0;
    bool first = true;

    fprintf(fp, "{\n  \"tool\": ");
    lt_json_str(fp, in->tool);
    fprintf(fp, ",\n  \"mode\": ");
    lt_json_str(fp, in->mode);
    fprintf(fp, ",\n  \"api\": ");
    lt_json_str(fp, in->api);
    fprintf(fp, ",\n  \"target\": ");
    lt_json_str(fp, in->target);
    fprintf(fp, ",\n  \"fixtures\": ");
    lt_json_str(fp, in->fixtures);
    fprintf(fp, ",\n  \"mix\": ");
    lt_json_str(fp, in->mix);
    fprintf(fp,
            ",\n  \"channels\": %u, \"concurrency\": %u, \"batch\": %u, \"threads\": %u,\n"
            "  \"rate\": %.1f, \"warmup_s\": %.3f, \"seconds\": %.3f,\n"
            "  \"calls\": %llu, \"chains\": %llu,\n"
            "  \"throughput\": {\"calls_per_s\": %.1f, \"chains_per_s\": %.1f},\n",
            in->channels, in->concurrency, in->batch, in->threads, in->rate, in->warmup_s,
            in->seconds, (unsigned long long)r->calls, (unsigned long long)r->chains,
            (double)r->calls / secs, (double)r->chains / secs);
    lt_report_verdicts_json(fp, r);
    fprintf(fp, "  \"mismatches\": %llu, \"unknown_ids\": %llu,\n",
            (unsigned long long)lt_result_mismatches(r), (unsigned long long)r->unknown_ids);
    fprintf(fp,
            "  \"latency_us\": {\"count\": %llu, \"mean\": %.1f, \"p50\": %.1f, \"p90\": %.1f, "
            "\"p99\": %.1f, \"p99.9\": %.1f, \"max\": %.1f},\n",
            (unsigned long long)r->lat.total, lt_hist_mean(&r->lat) / 1000.0,
            lt_us(lt_hist_percentile(&r->lat, 50)), lt_us(lt_hist_percentile(&r->lat, 90)),
            lt_us(lt_hist_percentile(&r->lat, 99)), lt_us(lt_hist_percentile(&r->lat, 99.9)),
            lt_us(r->lat.total ? r->lat.max : 0));
    fprintf(fp, "  \"errors\": {");
    for (unsigned s = 1; s < LT_N_STATUS; s++) {
        if (r->errors[s] == 0)
            continue;
        fprintf(fp, "%s\"%s\": %llu", first ? "" : ", ", lt_status_name(s),
                (unsigned long long)r->errors[s]);
        n_err += r->errors[s];
        first = false;
    }
    fprintf(fp, "},\n  \"errors_total\": %llu", (unsigned long long)n_err);
    if (in->extra_json != NULL)
        fprintf(fp, ",\n  \"extra\": %s", in->extra_json);
    fprintf(fp, "\n}\n");
}

void lt_report_human(FILE *fp, const struct lt_run_info *in, const struct lt_result *r)
{
    double secs = in->seconds > 0 ? in->seconds : 1e-9;
    uint64_t n_err = 0;

    for (unsigned s = 1; s < LT_N_STATUS; s++)
        n_err += r->errors[s];
    fprintf(fp, "%s: %s %s, %.1f s measured (after %.1f s warm-up)\n", in->tool, in->mode,
            in->api, in->seconds, in->warmup_s);
    fprintf(fp, "  throughput: %.0f calls/s, %.0f chains/s (%llu calls, %llu chains)\n",
            (double)r->calls / secs, (double)r->chains / secs, (unsigned long long)r->calls,
            (unsigned long long)r->chains);
    fprintf(fp, "  latency: p50 %.1f us, p90 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us\n",
            lt_us(lt_hist_percentile(&r->lat, 50)), lt_us(lt_hist_percentile(&r->lat, 90)),
            lt_us(lt_hist_percentile(&r->lat, 99)), lt_us(lt_hist_percentile(&r->lat, 99.9)),
            lt_us(r->lat.total ? r->lat.max : 0));
    for (unsigned d = 0; d < LT_N_DECISIONS; d++) {
        for (unsigned k = 0; k < LT_N_REASONS; k++) {
            if (r->verdicts[d][k] != 0)
                fprintf(fp, "  %-16s %-18s %llu\n", lt_decision_name(d), lt_reason_name(k),
                        (unsigned long long)r->verdicts[d][k]);
        }
    }
    fprintf(fp, "  verdicts not matching their chain's class: %llu; failed calls: %llu\n",
            (unsigned long long)lt_result_mismatches(r), (unsigned long long)n_err);
}

int lt_report_write(const char *tool, const char *json_path, const struct lt_run_info *info,
                    const struct lt_result *r)
{
    FILE *fp = stdout;

    lt_report_human(stderr, info, r);
    if (json_path != NULL && (fp = fopen(json_path, "w")) == NULL) {
        fprintf(stderr, "%s: %s: %s\n", tool, json_path, strerror(errno));
        return -1;
    }
    lt_report_json(fp, info, r);
    if (fp != stdout)
        fclose(fp);
    return 0;
}
