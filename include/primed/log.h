/* log.h — one line per request and per lifecycle event, to stderr, JSON (default) or text.
 *
 * Lines are written with a single write(2) so concurrent threads never interleave. A log call
 * never allocates on the heap and never blocks on anything but the write itself.
 */
#ifndef PRIMED_LOG_H
#define PRIMED_LOG_H

#include <stdint.h>
#include <time.h>

#include "primed/config.h"

void log_init(enum log_level level, enum log_format format);
int log_enabled(enum log_level level);

/* A lifecycle event: {"ts":"…","level":"info","event":"listening","msg":"…", k1:v1, …}.
 * kv is a NULL-terminated list of (const char *key, const char *value) string pairs, values
 * JSON-escaped by the logger (a NULL value is written as null; msg may be NULL to omit it).
 * Lines longer than 4096 bytes are cut and marked "truncated":true, still valid JSON. */
void log_event(enum log_level level, const char *event, const char *msg, ...);

struct log_request_rec {
    const char *request_id;
    const char *method;
    const char *path;
    const char *client_addr;
    int status;
    uint64_t bytes;
    uint64_t duration_us;
};
void log_request(const struct log_request_rec *r);

/* Make a fresh request id (16 hex chars) into buf[17]. */
void log_new_request_id(char buf[17]);
/* Copy an incoming X-Request-Id if it is 1…64 chars of [A-Za-z0-9._-]; otherwise return -1 and
 * the caller makes a new one. */
int log_sanitize_request_id(const char *in, char *out, unsigned outlen);

/* The log's timestamp: RFC 3339 UTC with milliseconds, "2026-01-02T03:04:05.678Z" (24 chars +
 * NUL) into out[25]. Lock-free (gmtime_r takes glibc's tz lock); years 1970…9999. */
void log_format_time(const struct timespec *ts, char out[25]);

#endif
