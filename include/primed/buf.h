/* buf.h — a growable byte buffer with a ceiling: the one way primed builds a body or an encoding
 * of unknown length in memory (metrics exposition, thread dumps, pprof protobufs, symbol lists).
 *
 * Failure contract: an append that cannot allocate, or that would take the length past `max`,
 * appends nothing, records the error and makes every later append a no-op (sticky), so a writer
 * may append a whole document and check once at the end (buf_error or buf_steal). The contents
 * are always NUL-terminated after `len` once anything is allocated (text users need no extra
 * step; binary users ignore the byte). Not thread-safe: one owner at a time.
 * Request bodies do not use this: their growth is charged to the request memory budget
 * (reqbody.c). jsonw's dynamic mode keeps its own growth because it shares code with its fixed
 * mode (a caller's array).
 */
#ifndef PRIMED_BUF_H
#define PRIMED_BUF_H

#include <stddef.h>

struct buf {
    char *p;    /* owned; NULL until the first allocation; p[len] == '\0' when non-NULL */
    size_t len; /* bytes appended */
    size_t cap; /* bytes usable before the next growth (the NUL's byte not counted) */
    size_t max; /* len never exceeds this */
    int err;    /* sticky: 0, -ENOMEM (allocation failed), -ENOSPC (past max), -EINVAL (format) */
};

/* An empty buffer that may hold up to max bytes. Allocates nothing; cannot fail. */
void buf_init(struct buf *b, size_t max);
/* Room for `more` bytes beyond len, growing by doubling (at most to max). Returns 0 or the
 * sticky error (also the error recorded by an earlier call). */
int buf_reserve(struct buf *b, size_t more);
/* Append n bytes (n == 0 is a no-op even with src NULL). Returns 0 or the sticky error. */
int buf_append(struct buf *b, const void *src, size_t n);
/* Append formatted text (without its NUL). Returns 0 or the sticky error. */
__attribute__((format(printf, 2, 3))) int buf_printf(struct buf *b, const char *fmt, ...);
/* The sticky error: 0, -ENOMEM, -ENOSPC or -EINVAL. */
static inline int buf_error(const struct buf *b)
{
    return b->err;
}
/* Take the contents: a malloc'd, NUL-terminated array of *len bytes that the caller now owns and
 * frees (a 1-byte "" for an empty buffer). NULL with *len = 0 when the buffer has an error or
 * the empty array cannot be allocated; either way the buffer is freed and empty after the call,
 * its error kept. */
char *buf_steal(struct buf *b, size_t *len);
/* Empty the contents for reuse, keeping the allocation and the error. */
void buf_reset(struct buf *b);
/* Free the contents; the buffer is empty (error cleared) and may be reused with the same max.
 * Safe on a zeroed or already-freed buffer. */
void buf_free(struct buf *b);

#endif
