/* stream.h — a bounded buffer between one producing worker and one HTTP response reader.
 *
 * A streamed response (/v1/primes) is written by a worker into a few fixed blocks and read by
 * libmicrohttpd's content-reader callback. Memory per stream is capacity bytes, whatever the
 * length of the response, and every stream's capacity is charged to one global budget. The
 * producer blocks (condvar) when every block is full; the consumer never blocks: when it finds
 * the buffer empty it "parks" (server.c suspends the connection) and the producer wakes it when
 * the next block is committed. Knows nothing of HTTP or the sieve.
 */
#ifndef PRIMED_STREAM_H
#define PRIMED_STREAM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of stream buffers in use across the process, against a limit (cfg.memory_budget). */
struct stream_budget {
    atomic_uint_fast64_t used; /* add/sub by stream_create/destroy (relaxed: a counter) */
    uint64_t limit;            /* set once before any stream exists */
};
void stream_budget_init(struct stream_budget *b, uint64_t limit);

struct stream;

/* Called by the producer (outside the stream lock) when a parked consumer must run again. */
typedef void (*stream_wake_fn)(void *arg);
/* Called by the consumer under the stream lock when the buffer is empty (server.c: suspend the
 * connection). Holding the lock makes "park" happen-before the producer's "wake". */
typedef void (*stream_park_fn)(void *arg);

/* capacity bytes split into blocks of block_bytes (at least 2 blocks). Returns NULL with errno
 * EAGAIN when the budget cannot take `capacity` more bytes, ENOMEM when malloc fails. `wake` and
 * its arg are borrowed until stream_destroy. */
struct stream *stream_create(struct stream_budget *budget, size_t capacity, size_t block_bytes,
                             stream_wake_fn wake, void *wake_arg);
void stream_destroy(struct stream *s); /* accepts NULL; returns the bytes to the budget */

/* Producer (one thread). stream_block_get waits while every block is full and returns a block to
 * fill (*cap bytes), or NULL once the stream is cancelled. stream_block_commit publishes len
 * bytes of it (len may be 0: nothing is published). stream_finish marks the end (ok: complete;
 * !ok: the response must be cut short). */
char *stream_block_get(struct stream *s, size_t *cap);
void stream_block_commit(struct stream *s, size_t len);
void stream_finish(struct stream *s, bool ok);

enum stream_read_result {
    STREAM_DATA = 0, /* *n > 0 bytes were copied */
    STREAM_EMPTY,    /* nothing yet; park(arg) was called, wake will follow */
    STREAM_EOF,      /* finished ok and fully read */
    STREAM_FAILED,   /* finished not ok, or cancelled */
};
/* Consumer (one thread at a time). Never blocks. */
enum stream_read_result stream_read(struct stream *s, char *buf, size_t max, size_t *n,
                                    stream_park_fn park, void *park_arg);

/* Where the stream stands, for deciding between a streamed 200 and an error response. */
enum stream_state {
    STREAM_S_PENDING = 0,  /* nothing committed, not finished */
    STREAM_S_FLOWING,      /* data committed, or finished ok */
    STREAM_S_FAILED_EMPTY, /* finished not ok or cancelled before any data was committed */
};
enum stream_state stream_state(struct stream *s);
/* Unblock the producer (stream_block_get returns NULL) and fail the consumer. Any thread. */
void stream_cancel(struct stream *s);
/* Bytes this stream holds (its capacity), for metrics. */
size_t stream_capacity(const struct stream *s);

#endif
