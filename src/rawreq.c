/* rawreq.c — see rawreq.h: limits and byte checks on the raw request, before and while
 * libmicrohttpd parses it.
 *
 * Runs on the I/O thread, once per request, O(request line + header bytes) like the parse
 * itself. Knows nothing of libmicrohttpd's types, only of where it leaves bytes.
 */
#include "rawreq.h"

#include <string.h>

/* libmicrohttpd 0.9.75 parses the query right after the URI-log callback into ~56-byte records
 * in the connection's memory pool, next to the request line itself. When the pool runs out (~900
 * arguments in 64 KiB) it abandons the request: no answer, the connection held to the idle
 * timeout, and neither the access handler nor the completion callback runs. No route takes more
 * than three parameters, so a query with more than RAWREQ_MAX_QUERY_ARGS, or whose URI plus
 * ARG_POOL_BYTES per argument would not fit in half the pool (the other half is the read and
 * write buffers), is cut off before it is parsed and refused (400 limit_exceeded). */
#define ARG_POOL_BYTES 64

static size_t count_query_args(const char *query)
{
    if (!*query) return 0;
    size_t n = 1;
    for (const char *p = query; (p = strchr(p, '&')) != NULL; p++)
        n++;
    return n;
}

bool rawreq_query_fits(uint64_t connection_memory_limit, size_t uri_len, const char *query)
{
    size_t nargs = count_query_args(query);
    return nargs <= RAWREQ_MAX_QUERY_ARGS &&
           uri_len + nargs * ARG_POOL_BYTES <= connection_memory_limit / 2;
}

/* A NUL cannot be seen here: the target is a C string that ends at it (see rawreq_walk_start). */
bool rawreq_has_control_byte(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return true;
    return false;
}

/* Control bytes, NUL included, in the request line or a header are a 400, so that primed and a
 * proxy in front of it never disagree on what was asked. libmicrohttpd hands the target and
 * header values over as C strings that end at a NUL ("GET /v1/isprime?n=7\0junk" arrives as
 * n=7, "Content-Length: 1\02" as "1"), so the raw bytes are checked where they still lie, in
 * its read buffer: the request line and the headers, in order, fill [method, method +
 * REQUEST_HEADER_SIZE). Between the strings it hands over only its own separators remain (NUL
 * where it split a line, spaces, tabs, CR, LF); any other byte there hid behind a NUL. A header
 * it does not find in that span was rebuilt from obs-folded lines: refused too (RFC 9112 allows
 * either). */
static bool raw_gap_ok(const char *a, const char *b)
{
    for (; a < b; a++)
        if (*a != '\0' && *a != ' ' && *a != '\t' && *a != '\r' && *a != '\n' && *a != ':')
            return false;
    return true;
}

static bool raw_text_ok(const char *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
    }
    return true;
}

bool rawreq_walk_start(struct rawreq_walk *w, const char *method, size_t header_size,
                       const char *raw_uri, size_t uri_len, const char *version)
{
    const char *end = method + header_size;
    /* The target runs from raw_uri to the NUL libmicrohttpd wrote over the space before the
     * version; a target that ends earlier had a NUL inside. */
    if ((uintptr_t)version != (uintptr_t)raw_uri + uri_len + 1) return false;
    if ((uintptr_t)version < (uintptr_t)method || (uintptr_t)version >= (uintptr_t)end)
        return false;
    *w = (struct rawreq_walk){version + strlen(version), end, false};
    return true;
}

bool rawreq_walk_header(struct rawreq_walk *w, const char *key, size_t key_size, const char *value,
                        size_t value_size)
{
    if (!value || value_size == 0) value = key + key_size;
    /* Compared as integers: a rebuilt (folded) header lies in another object. */
    uintptr_t k = (uintptr_t)key, v = (uintptr_t)value;
    if (k < (uintptr_t)w->cur || k + key_size > v || v + value_size > (uintptr_t)w->end ||
        !raw_gap_ok(w->cur, key) || !raw_text_ok(key, key_size) ||
        !raw_gap_ok(key + key_size, value) || !raw_text_ok(value, value_size)) {
        w->bad = true;
        return false;
    }
    w->cur = value + value_size;
    return true;
}

bool rawreq_walk_end(const struct rawreq_walk *w)
{
    return !w->bad && raw_gap_ok(w->cur, w->end);
}
