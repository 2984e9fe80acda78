/* JSON-lines logging on stdout. One line per event:
 *   {"ts":"2026-11-22T12:00:00.123Z","level":"info","msg":"..."}
 * Thread-safe: each line is formatted into a local buffer and written with
 * one write(2), so lines from different threads never interleave.
 *
 * Conventions: nothing fails to the caller (a short write is dropped);
 * escaping truncates to |cap| and reports the length written. */
#ifndef CERTVAL_LOG_H
#define CERTVAL_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { CV_LOG_DEBUG = 0, CV_LOG_INFO = 1, CV_LOG_WARN = 2, CV_LOG_ERROR = 3 };

/* log_set_level drops messages below |level|. */
void log_set_level(enum log_level level);

/* log_msg writes one line at |level|; the formatted message is JSON-escaped. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(CV_LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(CV_LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(CV_LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(CV_LOG_ERROR, __VA_ARGS__)

/* log_event writes one line {"ts":...,"level":...,"type":TYPE,FIELDS} where
 * |fields| is already-escaped JSON members without braces ("\"k\":\"v\",..."). */
void log_event(enum log_level level, const char *type, const char *fields);

/* log_event_at is log_event with the line's "ts" given (CLOCK_REALTIME), so
 * a caller that decided on a time (the audit rate limit's window) writes
 * that same time. */
struct timespec;
void log_event_at(enum log_level level, const struct timespec *ts, const char *type,
                  const char *fields);

/* log_json_escape_n appends the |n| bytes of |s| to |out| (capacity |cap|,
 * current length |*len|, kept NUL-terminated) as JSON string content:
 * quotes, backslashes and control characters (NUL included) escaped, each
 * byte that is not part of well-formed UTF-8 written as \ufffd, so the
 * result is valid UTF-8 JSON whatever |s| holds. Stops before the first
 * character that would not fit. */
void log_json_escape_n(char *out, size_t cap, size_t *len, const uint8_t *s, size_t n);

/* log_json_escape is log_json_escape_n for a NUL-terminated |s|. */
void log_json_escape(char *out, size_t cap, size_t *len, const char *s);

#endif
