#include "audit.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "verdict.h"

static bool audit_all;
static uint32_t audit_limit = 1000;

/* The current one-second window and how many lines it admitted, in one
 * atomic word (seconds << 24 | count) so that moving the window and
 * counting in it cannot interleave: a thread that saw the old window can
 * never add to the new one's count. The thread that moves the window
 * forward reports the previous drop count. */
#define AUDIT_COUNT_BITS 24
#define AUDIT_COUNT_MASK ((UINT64_C(1) << AUDIT_COUNT_BITS) - 1)
static _Atomic uint64_t window_used;
static _Atomic uint64_t dropped_in_window;
static _Atomic uint64_t dropped_total;

void audit_configure(bool all_verdicts, uint32_t max_lines_per_second)
{
    audit_all = all_verdicts;
    audit_limit = max_lines_per_second > 0 ? max_lines_per_second : 1;
}

uint64_t audit_suppressed_total(void)
{
    return atomic_load_explicit(&dropped_total, memory_order_relaxed);
}

/* admit decides whether a line may be written now, at most audit_limit per
 * second of CLOCK_REALTIME, and gives the time it decided at in |ts|: the
 * line carries that time, so the lines of one "ts" second never exceed
 * the limit. */
static bool admit(struct timespec *ts)
{
    uint64_t cur = atomic_load(&window_used), next;
    uint64_t now;

    clock_gettime(CLOCK_REALTIME, ts);
    now = (uint64_t)ts->tv_sec;
    for (;;) {
        uint64_t w = cur >> AUDIT_COUNT_BITS, n = cur & AUDIT_COUNT_MASK;

        if (w != now) {
            next = now << AUDIT_COUNT_BITS | 1;
        } else if (n < audit_limit) {
            next = cur + 1;
        } else {
            atomic_fetch_add_explicit(&dropped_in_window, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&dropped_total, 1, memory_order_relaxed);
            return false;
        }
        if (atomic_compare_exchange_weak(&window_used, &cur, next))
            break;
    }
    if ((cur >> AUDIT_COUNT_BITS) != now) {
        uint64_t dropped = atomic_exchange(&dropped_in_window, 0);

        if (dropped > 0) {
            char fields[128];

            snprintf(fields, sizeof(fields), "\"suppressed\":%llu,\"window_start\":%lld",
                     (unsigned long long)dropped, (long long)(cur >> AUDIT_COUNT_BITS));
            log_event(CV_LOG_WARN, "audit_suppressed", fields);
        }
    }
    return true;
}

/* Appends ,"key":"escaped value" to |buf|: at most AUDIT_FIELD_MAX bytes of
 * |value| (then "..."), escaped by log_json_escape_n, so even eleven values
 * that escape 6x stay under log_event's line. */
static void field_n(char *buf, size_t cap, size_t *len, const char *key, const uint8_t *value,
                    size_t n)
{
    int k = snprintf(buf + *len, cap - *len, "%s\"%s\":\"", *len ? "," : "", key);
    bool cut = n > AUDIT_FIELD_MAX;

    if (k < 0 || (size_t)k >= cap - *len) {
        buf[*len] = '\0'; /* drop the part of the key that did fit */
        return;
    }
    *len += (size_t)k;
    log_json_escape_n(buf, cap - 5, len, value, cut ? AUDIT_FIELD_MAX : n);
    if (cut) {
        memcpy(buf + *len, "...", 3);
        *len += 3;
    }
    buf[(*len)++] = '"';
    buf[*len] = '\0';
}

static void field(char *buf, size_t cap, size_t *len, const char *key, const char *value)
{
    field_n(buf, cap, len, key, (const uint8_t *)value, strlen(value));
}

static void claim(char *buf, size_t cap, size_t *len, const char *key, struct cv_bytes value)
{
    field_n(buf, cap, len, key, value.data != NULL ? value.data : (const uint8_t *)"",
            value.data != NULL ? value.len : 0);
}

void audit_verdict(const struct verdict *v, struct cv_bytes tenant, struct cv_bytes device,
                   struct cv_bytes user)
{
    char fields[7168], fp[65];
    struct timespec at;
    size_t len = 0;

    if (v->decision != DECISION_DENY && !audit_all)
        return;
    if (!admit(&at))
        return;
    fp[0] = '\0';
    if (v->has_leaf_sha256) {
        for (int i = 0; i < 32; i++)
            snprintf(fp + 2 * i, 3, "%02x", v->leaf_sha256[i]);
    }
    fields[0] = '\0';
    field(fields, sizeof(fields), &len, "decision", verdict_decision_name(v->decision));
    field(fields, sizeof(fields), &len, "reason", verdict_reason_name(v->reason));
    claim(fields, sizeof(fields), &len, "tenant", tenant);
    claim(fields, sizeof(fields), &len, "device", device);
    claim(fields, sizeof(fields), &len, "user", user);
    field(fields, sizeof(fields), &len, "profile", v->profile);
    field(fields, sizeof(fields), &len, "kind", cert_kind_name(v->kind));
    field(fields, sizeof(fields), &len, "issuer", v->issuer);
    field(fields, sizeof(fields), &len, "serial", v->serial_hex);
    field(fields, sizeof(fields), &len, "leaf_sha256", fp);
    field(fields, sizeof(fields), &len, "detail", v->detail);
    log_event_at(v->decision == DECISION_DENY ? CV_LOG_WARN : CV_LOG_INFO, &at, "audit", fields);
}
