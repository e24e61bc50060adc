/* stream.h — a bounded buffer between one producing worker and one HTTP response reader.
 *
 * A streamed response (/v1/primes) is written by a worker into a few fixed blocks and read by
 * libmicrohttpd's content-reader callback. Memory per stream is capacity bytes, whatever the
 * length of the response, and every stream's capacity is charged to one global budget.
 * Neither side blocks on a slow peer, so a slow reader costs its buffer and never a thread
 * (the one wait: a producer facing a full buffer whose reader freed a block within the last
 * millisecond waits up to a millisecond for the next, instead of parking and re-sieving):
 *   - the consumer, finding the buffer empty, "parks" (respond.c's req_park suspends the
 * connection) and the producer's next commit (or finish) calls `wake`;
 *   - the producer, finding every block full, "parks" too (stream_block_get → STREAM_GET_FULL: it
 *     saves its position and gives its worker back); once the reader has freed half of the blocks,
 *     or the stream is cancelled, `resume` is called exactly once for that park (server.c
 *     re-queues the job with pool_resume). Waking at half, not at one free block, makes every
 *     resume produce at least nblocks/2 blocks so that the producer's restart cost is amortised.
 * Producer states (under the stream lock): RUNNING --get finds no free block--> PARKED
 * --reader frees nblocks/2 blocks, or cancel--> (resume called, flag cleared) RUNNING (a new run
 * of the job, which sees the cancel and finishes). Exactly one party clears the parked flag, so
 * a park is resumed exactly once, whatever the race between the reader and cancel.
 * Knows nothing of HTTP, the pool or the sieve.
 */
#ifndef PRIMED_STREAM_H
#define PRIMED_STREAM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STREAM_CACHE_SLOTS 16

/* Bytes of stream buffers in use across the process, against a limit (cfg.memory_budget, clamped
 * to the memory limit by memwatch, which moves it when the limit changes), and a small cache of
 * idle buffers. A stream's whole capacity is charged when it is admitted (stream_create), before
 * any of it is allocated, so the bytes admitted never exceed the limit in force at admission,
 * however many streams arrive at once. A lowered limit refuses new streams until those admitted
 * leave; it takes nothing back. A finished stream's buffer goes to the cache when there is room
 * and the next stream's producer takes it instead of calling malloc: one large allocation per
 * streamed response otherwise costs tcmalloc's page heap and, with heap sampling on (one sample
 * per 512 KiB), a stack walk every other /v1/primes. Cached buffers are idle memory outside the
 * budget, at most cache_max × cache_bytes (primed_stream_buffer_cache_buffers). */
struct stream_budget {
    atomic_uint_fast64_t used;  /* add/sub by stream_create/destroy (relaxed: a counter) */
    atomic_uint_fast64_t limit; /* stream_budget_set_limit (relaxed: a value on its own) */
    pthread_mutex_t cache_mu;
    size_t cache_bytes; /* the one buffer size cached (a stream's rounded capacity) */
    size_t cache_max;   /* 0 = no cache; at most STREAM_CACHE_SLOTS */
    size_t cache_n;     /* under cache_mu */
    char *cache[STREAM_CACHE_SLOTS];
    atomic_uint_fast64_t cache_hits, cache_misses; /* buffers taken from the cache / malloc'd */
    atomic_uint_fast64_t streams; /* alive: ++ by stream_create, -- by stream_destroy (relaxed) */
};
/* No cache until stream_budget_set_cache. Registers the budget's metrics collector
 * (primed_streams_active, primed_stream_buffer_bytes, …) until stream_budget_destroy. Returns 0,
 * or -ENOSPC when the metrics registry is full; call stream_budget_destroy either way. */
int stream_budget_init(struct stream_budget *b, uint64_t limit);
/* Admit new streams against `limit` bytes from now on. Any thread. */
void stream_budget_set_limit(struct stream_budget *b, uint64_t limit);
uint64_t stream_budget_limit(const struct stream_budget *b);
/* Cache up to max_buffers (capped at STREAM_CACHE_SLOTS) idle buffers of the streams created with
 * this capacity and block size. Call before any stream exists. */
void stream_budget_set_cache(struct stream_budget *b, size_t capacity, size_t block_bytes,
                             size_t max_buffers);
/* Idle buffers in the cache now. */
size_t stream_budget_cached(struct stream_budget *b);
/* Unregisters the collector and frees the cached buffers. No stream of this budget may be
 * alive. */
void stream_budget_destroy(struct stream_budget *b);

struct stream;

/* Called (outside the stream lock) when a parked side must run again: `wake` by the producer
 * for the consumer, `resume` by the consumer or stream_cancel for the producer. */
typedef void (*stream_wake_fn)(void *arg);
/* Called by the consumer under the stream lock when the buffer is empty (respond.c: suspend the
 * connection). Holding the lock makes "park" happen-before the producer's "wake". */
typedef void (*stream_park_fn)(void *arg);

/* capacity bytes split into blocks of block_bytes (at least 2 blocks). Returns NULL with errno
 * EAGAIN when the budget cannot take `capacity` more bytes, ENOMEM when malloc fails. `wake`,
 * `resume` and their args are borrowed until stream_destroy (either may be NULL). */
struct stream *stream_create(struct stream_budget *budget, size_t capacity, size_t block_bytes,
                             stream_wake_fn wake, void *wake_arg, stream_wake_fn resume,
                             void *resume_arg);
void stream_destroy(struct stream *s); /* accepts NULL; returns the bytes to the budget */

/* Producer (one thread at a time). stream_block_get waits at most 1 ms, and only for a reader that
 * is keeping pace (see above): STREAM_GET_OK gives a block to
 * fill (*block, *cap bytes); STREAM_GET_FULL means every block is full and the producer is now
 * parked: it must stop touching the stream until `resume` is called (exactly once per park);
 * STREAM_GET_FAILED means cancelled (or out of memory): finish not ok. stream_block_commit
 * publishes len bytes of the block (len may be 0: nothing is published). stream_finish marks the
 * end (ok: complete; !ok: the response must be cut short). */
enum stream_get { STREAM_GET_OK = 0, STREAM_GET_FULL, STREAM_GET_FAILED };
enum stream_get stream_block_get(struct stream *s, char **block, size_t *cap);
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
/* Fail the producer (stream_block_get returns STREAM_GET_FAILED; a parked producer is resumed to
 * see it) and the consumer. Any thread, any number of times. */
void stream_cancel(struct stream *s);
/* The producer's side, for /debug/requests (one cut under the stream lock; any thread). */
enum stream_producer {
    STREAM_P_ACTIVE = 0, /* running or waiting for a worker (queued or resumed) */
    STREAM_P_PARKED,     /* every block full: no worker, waits for the reader */
    STREAM_P_FINISHED,   /* stream_finish called (or cancelled): only the reader is left */
};
enum stream_producer stream_producer_state(struct stream *s, size_t *buffered);
/* Bytes this stream holds (its capacity), for metrics. */
size_t stream_capacity(const struct stream *s);

#endif
