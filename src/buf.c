/* buf.c — see buf.h. Growth doubles from 64 bytes (or what the first append needs) and is capped
 * at max, so a buffer's footprint is at most twice its contents and never above max + 1.
 * A failed append leaves the contents as they were: callers see a prefix or an error, never a
 * torn write.
 */
#include "primed/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MIN_CAP 64

void buf_init(struct buf *b, size_t max)
{
    *b = (struct buf){.max = max};
}

int buf_reserve(struct buf *b, size_t more)
{
    if (b->err) return b->err;
    if (b->p != NULL && more <= b->cap - b->len) return 0;
    if (more > b->max - b->len) return b->err = -ENOSPC;
    size_t want = b->len + more;
    size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
    while (cap < want)
        cap = cap > b->max / 2 ? b->max : cap * 2;
    if (cap > b->max) cap = b->max; /* a first 64 bytes beyond a tiny max */
    char *np = realloc(b->p, cap + 1);
    if (np == NULL) return b->err = -ENOMEM;
    if (b->p == NULL) np[0] = '\0';
    b->p = np;
    b->cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *src, size_t n)
{
    if (n == 0) return b->err;
    int rc = buf_reserve(b, n);
    if (rc != 0) return rc;
    memcpy(b->p + b->len, src, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    if (b->err) return b->err;
    /* Try in the room there is (its NUL byte included); on a short write, grow and try once
     * more, which then fits: vsnprintf has said exactly how much it needs. */
    for (int attempt = 0; attempt < 2; attempt++) {
        size_t room = b->p != NULL ? b->cap - b->len + 1 : 0;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) return b->err = -EINVAL;
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return 0;
        }
        if (room) b->p[b->len] = '\0'; /* undo the truncated attempt */
        int rc = buf_reserve(b, (size_t)n);
        if (rc != 0) return rc;
    }
    return b->err = -EINVAL; /* unreachable: the second attempt had room for n bytes */
}

char *buf_steal(struct buf *b, size_t *len)
{
    char *out = NULL;
    *len = 0;
    if (b->err == 0) {
        out = b->p != NULL ? b->p : calloc(1, 1);
        if (out != NULL) *len = b->len;
        b->p = NULL;
    }
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    return out;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->p != NULL) b->p[0] = '\0';
}

void buf_free(struct buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->err = 0;
}
