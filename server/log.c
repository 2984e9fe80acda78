#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "utf8.h"

static _Atomic int min_level = CV_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
    atomic_store(&min_level, (int)level);
}

void log_json_escape_n(char *out, size_t cap, size_t *len, const uint8_t *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        char esc[7];
        size_t k = 1, m = 0;

        if (c == '"' || c == '\\') {
            esc[m++] = '\\';
            esc[m++] = (char)c;
        } else if (c == '\n') {
            esc[m++] = '\\';
            esc[m++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            m = 4;
            esc[m++] = hex[c >> 4];
            esc[m++] = hex[c & 15];
        } else if (c >= 0x80 && (k = utf8_seq_len(s + i, n - i)) == 0) {
            /* Not UTF-8: U+FFFD, so the line stays valid UTF-8 JSON. */
            memcpy(esc, "\\ufffd", 6);
            m = 6;
            k = 1;
        } else {
            memcpy(esc, s + i, k);
            m = k;
        }
        if (*len + m >= cap)
            break;
        memcpy(out + *len, esc, m);
        *len += m;
        i += k;
    }
    out[*len] = '\0';
}

void log_json_escape(char *out, size_t cap, size_t *len, const char *s)
{
    log_json_escape_n(out, cap, len, (const uint8_t *)s, strlen(s));
}

/* line_head writes the line's start with time |at|, or now when NULL. */
static size_t line_head(char *line, size_t cap, enum log_level level, const struct timespec *at)
{
    struct timespec ts;
    struct tm tm;
    int n;

    if (at != NULL)
        ts = *at;
    else
        clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, cap, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000, level_names[level]);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static void line_write(const char *line, size_t len)
{
    /* One write per line: lines from concurrent threads never interleave. */
    if (write(STDOUT_FILENO, line, len) < 0)
        return;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    char msg[2048], line[4608];
    size_t len;
    va_list ap;

    if ((int)level < atomic_load(&min_level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    len = line_head(line, sizeof(line), level, NULL);
    len += (size_t)snprintf(line + len, sizeof(line) - len, "\"msg\":\"");
    log_json_escape(line, sizeof(line) - 3, &len, msg);
    line[len++] = '"';
    line[len++] = '}';
    line[len++] = '\n';
    line_write(line, len);
}

void log_event(enum log_level level, const char *type, const char *fields)
{
    log_event_at(level, NULL, type, fields);
}

void log_event_at(enum log_level level, const struct timespec *ts, const char *type,
                  const char *fields)
{
    char line[8192];
    size_t len;
    int n;

    if ((int)level < atomic_load(&min_level))
        return;
    len = line_head(line, sizeof(line), level, ts);
    n = snprintf(line + len, sizeof(line) - len, "\"type\":\"%s\",%s}\n", type, fields);
    if (n < 0 || (size_t)n >= sizeof(line) - len)
        return; /* callers bound their fields well below the line size */
    line_write(line, len + (size_t)n);
}
