#include "audit.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "verdict.h"

static bool audit_all;
static uint32_t audit_limit = 1000;

/* The current one-second window and what was used / dropped in it. The
 * thread that moves the window forward reports the previous drop count. */
static _Atomic int64_t window;
static _Atomic uint32_t used;
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

static bool admit(void)
{
    int64_t now = (int64_t)time(NULL);
    int64_t w = atomic_load_explicit(&window, memory_order_relaxed);

    if (now != w && atomic_compare_exchange_strong(&window, &w, now)) {
        uint64_t dropped = atomic_exchange(&dropped_in_window, 0);

        atomic_store(&used, 0);
        if (dropped > 0) {
            char fields[128];

            snprintf(fields, sizeof(fields), "\"suppressed\":%llu,\"window_start\":%lld",
                     (unsigned long long)dropped, (long long)w);
            log_event(CV_LOG_WARN, "audit_suppressed", fields);
        }
    }
    if (atomic_fetch_add_explicit(&used, 1, memory_order_relaxed) < audit_limit)
        return true;
    atomic_fetch_add_explicit(&dropped_in_window, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&dropped_total, 1, memory_order_relaxed);
    return false;
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
    size_t len = 0;

    if (v->decision != DECISION_DENY && !audit_all)
        return;
    if (!admit())
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
    log_event(v->decision == DECISION_DENY ? CV_LOG_WARN : CV_LOG_INFO, "audit", fields);
}
