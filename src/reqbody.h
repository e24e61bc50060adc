/* reqbody.h — a request body buffered for the API, every byte charged to the request memory
 * budget (reqmem.h) before it is held.
 *
 * Owned by one request, used on its connection's I/O thread only (no locking). Internal to the
 * server, so this header lives beside the sources.
 */
#ifndef PRIMED_REQBODY_H
#define PRIMED_REQBODY_H

#include <stddef.h>
#include <stdint.h>

#include "primed/reqmem.h"

struct reqbody {
    char *buf; /* malloc'd, NUL-terminated: len of cap bytes, never above max + 1 */
    size_t len, cap;
    size_t charged; /* bytes charged to the budget (≥ cap: a declared length is charged whole) */
};

/* An empty body: a zeroed struct is one too. */
void reqbody_init(struct reqbody *b);

/* Charge a declared Content-Length of n > 0 bytes (plus the NUL) before any byte is read, so a
 * client learns at once that there is no room. Returns 0, or -EAGAIN when the budget lacks it. */
int reqbody_declare(struct reqbody *b, struct reqmem *mem, uint64_t n);

/* Append n bytes. max: the largest body allowed (max_body_bytes). Returns 0; -EFBIG when the
 * body would exceed max, -EAGAIN when the budget cannot hold it (the body is dropped in both
 * cases: the caller answers 413 or 503 once the rest is read); -ENOMEM. */
int reqbody_append(struct reqbody *b, struct reqmem *mem, uint64_t max, const char *data, size_t n);

/* Free the buffer and give every charged byte back. The body is empty afterwards. */
void reqbody_drop(struct reqbody *b, struct reqmem *mem);

#endif
