/* reqbody.h — a request body buffered for the API, every byte charged to the request memory
 * budget (reqmem.h), and to its client's share of it, before it is held.
 *
 * What is charged is what has arrived, rounded up to the buffer's size (4 KiB, then doubling, at
 * most the declared Content-Length + 1), never what a client declares: a declaration costs a
 * client nothing to send, so 143 connections declaring 1 MiB each and sending a byte a second
 * once held the whole budget. Owned by one request, used on its connection's I/O thread only
 * (no locking). Internal to the server, so this header lives beside the sources.
 */
#ifndef PRIMED_REQBODY_H
#define PRIMED_REQBODY_H

#include <stddef.h>
#include <stdint.h>

#include "primed/reqmem.h"

struct reqbody {
    char *buf; /* malloc'd, NUL-terminated: len of cap bytes, never above max + 1 */
    size_t len, cap;
    size_t charged;    /* bytes charged to the budget and the client (== cap) */
    uint64_t client;   /* the client's tag (reqmem_charge_client); 0 = none */
    uint64_t declared; /* Content-Length, 0 = none (chunked): the buffer never grows past it */
};

/* An empty body: a zeroed struct is one too. */
void reqbody_init(struct reqbody *b);

/* Before the first byte: whose body it is (client tag, 0 = none) and its declared length
 * (0 = unknown). Charges nothing. */
void reqbody_expect(struct reqbody *b, uint64_t client, uint64_t declared);

/* Append n bytes. max: the largest body allowed (max_body_bytes). Returns 0; -EFBIG when the
 * body would exceed max, -EAGAIN when the budget cannot hold it, -EDQUOT when the client's share
 * cannot (the body is dropped in these cases: the caller answers 413 or 503 once the rest is
 * read, or closes); -ENOMEM. */
int reqbody_append(struct reqbody *b, struct reqmem *mem, uint64_t max, const char *data, size_t n);

/* Free the buffer and give every charged byte back. The body is empty afterwards (its client
 * and declared length are kept). */
void reqbody_drop(struct reqbody *b, struct reqmem *mem);

#endif
