/* rawreq.h — checks on the raw request as libmicrohttpd left it in its read buffer: query
 * argument limits before the query is parsed, control bytes in the target, and the walk over
 * the request line and headers that finds bytes hidden behind a NUL.
 *
 * Plain bytes and pointers, no libmicrohttpd type: server.c feeds it what the library hands
 * over. Internal to the server, so it lives beside the sources. Never allocates.
 */
#ifndef PRIMED_RAWREQ_H
#define PRIMED_RAWREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most query arguments a request may carry (no route takes more than three). */
#define RAWREQ_MAX_QUERY_ARGS 64

/* Whether the query (the bytes after '?', NUL-terminated) of a URI of uri_len bytes can be
 * parsed within half of a connection's memory of connection_memory_limit bytes, and has at most
 * RAWREQ_MAX_QUERY_ARGS arguments. */
bool rawreq_query_fits(uint64_t connection_memory_limit, size_t uri_len, const char *query);

/* A control byte (below 0x20, or DEL) in the NUL-terminated request target. */
bool rawreq_has_control_byte(const char *s);

/* The walk over [method, method + header_size): the request line, then each header in order. */
struct rawreq_walk {
    const char *cur, *end;
    bool bad;
};

/* Start a walk. raw_uri/uri_len: the target as the URI-log callback saw it; version: where the
 * library says the version string starts. false: the target had a NUL inside, or the pointers
 * do not lie in one buffer (refuse the request). */
bool rawreq_walk_start(struct rawreq_walk *w, const char *method, size_t header_size,
                       const char *raw_uri, size_t uri_len, const char *version);
/* The next header (value may be NULL or empty). false (and w->bad set) when it is not the next
 * span of the buffer, or a byte hid behind a NUL or is a control byte: stop walking. */
bool rawreq_walk_header(struct rawreq_walk *w, const char *key, size_t key_size, const char *value,
                        size_t value_size);
/* After the last header: true when nothing bad was seen and only separators remain. */
bool rawreq_walk_end(const struct rawreq_walk *w);

#endif
