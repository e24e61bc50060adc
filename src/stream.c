/* stream.c — see stream.h. A ring of nblocks fixed blocks under one mutex: the producer fills
 * block (head + count) % nblocks privately and publishes it with commit; the consumer copies
 * out of block `head` and frees it when read to its end. One copy (into libmicrohttpd's write
 * buffer) is the only one on the path; the producer formats text straight into a block.
 */
#include "primed/stream.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "primed/assert.h"
#include "primed/metrics.h"

/* A producer that finds every block full waits up to this long for one to free, unless the reader
 * has shown itself slow (a wait that ran out) since it last caught up (found the buffer empty):
 * a client keeping pace then never makes the producer park and throw away the rest of its sieve
 * chunk, and a slow one costs one such wait, not one per park. Measured on /v1/primes
 * [1e18, 1e18+1e8] to curl on loopback: parking on every full buffer, 48 parks and 6.9 s. */
#define FAST_WAIT_NS 1000000L

struct stream {
    pthread_mutex_t mu;
    struct stream_budget *budget;
    stream_wake_fn wake, resume;
    void *wake_arg, *resume_arg;
    size_t capacity, block_bytes, nblocks;
    char *mem;    /* nblocks × block_bytes */
    size_t *lens; /* [nblocks] committed length of each block */
    /* under mu */
    size_t head;           /* consumer's block */
    size_t count;          /* committed, not yet fully read blocks */
    size_t off;            /* consumer's offset in block head */
    bool parked;           /* consumer found it empty and waits for wake */
    bool producer_parked;  /* producer found it full and waits for resume */
    bool producer_waiting; /* producer sleeps on `space` (at most FAST_WAIT_NS) */
    pthread_cond_t space;  /* signalled when a block is freed or the stream cancelled */
    bool reader_slow;      /* a wait ran out since the reader last found the buffer empty */
    bool started;          /* something was committed or the stream finished */
    bool finished, ok, cancelled;
    bool committed_any; /* some block was ever committed */
};

/* The budget's own metrics, pulled at each scrape. Relaxed loads: each is a counter or gauge
 * read on its own; the set is not one cut. */
static void collect(void *arg, struct metrics_writer *w)
{
    struct stream_budget *b = arg;
    metrics_write_one(w, "primed_streams_active", "gauge", "Streamed responses alive.",
                      atomic_load_explicit(&b->streams, memory_order_relaxed));
    metrics_write_one(w, "primed_stream_buffer_bytes", "gauge",
                      "Bytes of stream buffers in use (charged to the memory budget).",
                      atomic_load_explicit(&b->used, memory_order_relaxed));
    metrics_write_one(w, "primed_memory_budget_bytes", "gauge",
                      "The stream memory budget streams are admitted against (memory_budget, "
                      "clamped to the memory limit).",
                      stream_budget_limit(b));
    metrics_write_one(w, "primed_stream_buffer_cache_buffers", "gauge",
                      "Idle stream buffers kept for reuse (outside the budget).",
                      stream_budget_cached(b));
    metrics_write_one(w, "primed_stream_buffer_cache_hits_total", "counter",
                      "Stream buffers taken from the idle cache instead of malloc.",
                      atomic_load_explicit(&b->cache_hits, memory_order_relaxed));
    metrics_write_one(w, "primed_stream_buffer_cache_misses_total", "counter",
                      "Stream buffers malloc'd because the idle cache was empty.",
                      atomic_load_explicit(&b->cache_misses, memory_order_relaxed));
}

int stream_budget_init(struct stream_budget *b, uint64_t limit)
{
    atomic_init(&b->used, 0);
    atomic_init(&b->limit, limit);
    pthread_mutex_init(&b->cache_mu, NULL);
    b->cache_bytes = b->cache_max = b->cache_n = 0;
    atomic_init(&b->cache_hits, 0);
    atomic_init(&b->cache_misses, 0);
    atomic_init(&b->streams, 0);
    return metrics_register_collector(collect, b) == 0 ? 0 : -ENOSPC;
}

void stream_budget_set_limit(struct stream_budget *b, uint64_t limit)
{
    atomic_store_explicit(&b->limit, limit, memory_order_relaxed);
}

uint64_t stream_budget_limit(const struct stream_budget *b)
{
    return atomic_load_explicit(&b->limit, memory_order_relaxed);
}

/* The capacity a stream really has: whole blocks only. */
static size_t rounded_capacity(size_t capacity, size_t block_bytes)
{
    return capacity / block_bytes * block_bytes;
}

void stream_budget_set_cache(struct stream_budget *b, size_t capacity, size_t block_bytes,
                             size_t max_buffers)
{
    b->cache_bytes = block_bytes ? rounded_capacity(capacity, block_bytes) : 0;
    b->cache_max = max_buffers < STREAM_CACHE_SLOTS ? max_buffers : STREAM_CACHE_SLOTS;
}

size_t stream_budget_cached(struct stream_budget *b)
{
    pthread_mutex_lock(&b->cache_mu);
    size_t n = b->cache_n;
    pthread_mutex_unlock(&b->cache_mu);
    return n;
}

void stream_budget_destroy(struct stream_budget *b)
{
    metrics_unregister_collector(collect, b); /* no scrape reads b once this returns */
    pthread_mutex_lock(&b->cache_mu);
    while (b->cache_n > 0)
        free(b->cache[--b->cache_n]);
    pthread_mutex_unlock(&b->cache_mu);
    pthread_mutex_destroy(&b->cache_mu);
}

/* Whether buffers of `bytes` go through b's cache. */
static bool cacheable(const struct stream_budget *b, size_t bytes)
{
    return b && b->cache_max > 0 && bytes == b->cache_bytes;
}

/* A buffer of `bytes` for a starting producer: a cached one if the size is the cached size. */
static char *buffer_take(struct stream_budget *b, size_t bytes)
{
    char *mem = NULL;
    if (cacheable(b, bytes)) {
        pthread_mutex_lock(&b->cache_mu);
        if (b->cache_n > 0) mem = b->cache[--b->cache_n];
        pthread_mutex_unlock(&b->cache_mu);
        atomic_fetch_add_explicit(mem ? &b->cache_hits : &b->cache_misses, 1, memory_order_relaxed);
    }
    return mem ? mem : malloc(bytes);
}

/* A finished stream's buffer: back to the cache when it fits there, else freed. */
static void buffer_give(struct stream_budget *b, char *mem, size_t bytes)
{
    if (mem && cacheable(b, bytes)) {
        pthread_mutex_lock(&b->cache_mu);
        if (b->cache_n < b->cache_max) {
            b->cache[b->cache_n++] = mem;
            mem = NULL;
        }
        pthread_mutex_unlock(&b->cache_mu);
    }
    free(mem);
}

struct stream *stream_create(struct stream_budget *budget, size_t capacity, size_t block_bytes,
                             stream_wake_fn wake, void *wake_arg, stream_wake_fn resume,
                             void *resume_arg)
{
    if (block_bytes == 0 || capacity / block_bytes < 2) {
        errno = EINVAL;
        return NULL;
    }
    size_t nblocks = capacity / block_bytes;
    capacity = rounded_capacity(capacity, block_bytes);
    if (budget) {
        /* Reserve first, then compare: two admissions racing for the last room may both be
         * refused, but the sum admitted never passes the limit. */
        uint64_t used = atomic_fetch_add_explicit(&budget->used, capacity, memory_order_relaxed);
        if (used + capacity > stream_budget_limit(budget)) {
            atomic_fetch_sub_explicit(&budget->used, capacity, memory_order_relaxed);
            errno = EAGAIN;
            return NULL;
        }
    }
    struct stream *s = calloc(1, sizeof *s);
    if (!s) goto err_budget;
    s->lens = calloc(nblocks, sizeof *s->lens);
    if (!s->lens) goto err_s;
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) goto err_lens;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int crc = pthread_cond_init(&s->space, &ca);
    pthread_condattr_destroy(&ca);
    if (crc != 0) goto err_lens;
    pthread_mutex_init(&s->mu, NULL);
    s->budget = budget;
    s->wake = wake;
    s->wake_arg = wake_arg;
    s->resume = resume;
    s->resume_arg = resume_arg;
    s->capacity = capacity;
    s->block_bytes = block_bytes;
    s->nblocks = nblocks;
    if (budget) atomic_fetch_add_explicit(&budget->streams, 1, memory_order_relaxed);
    return s;

err_lens:
    free(s->lens);
err_s:
    free(s);
err_budget:
    if (budget) atomic_fetch_sub_explicit(&budget->used, capacity, memory_order_relaxed);
    errno = ENOMEM;
    return NULL;
}

void stream_destroy(struct stream *s)
{
    if (!s) return;
    if (s->budget) {
        atomic_fetch_sub_explicit(&s->budget->used, s->capacity, memory_order_relaxed);
        atomic_fetch_sub_explicit(&s->budget->streams, 1, memory_order_relaxed);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->space);
    free(s->lens);
    buffer_give(s->budget, s->mem, s->capacity);
    free(s);
}

enum stream_get stream_block_get(struct stream *s, char **block, size_t *cap)
{
    pthread_mutex_lock(&s->mu);
    if (!s->mem && !s->cancelled) {
        /* The blocks are allocated by the producer when it starts, not at admission: a stream
         * waiting in the queue holds its budget share but no memory (a buffer from the
         * budget's cache when one is idle). s->mem is written here
         * (producer) and read by the consumer only once count > 0, under mu. */
        s->mem = buffer_take(s->budget, s->capacity);
        if (!s->mem) {
            pthread_mutex_unlock(&s->mu);
            return STREAM_GET_FAILED;
        }
    }
    if (!s->cancelled && s->count == s->nblocks && !s->reader_slow && s->started) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += FAST_WAIT_NS;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        s->producer_waiting = true;
        while (!s->cancelled && s->count == s->nblocks)
            if (pthread_cond_timedwait(&s->space, &s->mu, &until) != 0) break;
        s->producer_waiting = false;
        if (s->count == s->nblocks) s->reader_slow = true;
    }
    enum stream_get g = STREAM_GET_FAILED;
    if (s->cancelled) {
        g = STREAM_GET_FAILED;
    } else if (s->count == s->nblocks) {
        /* A producer parks only while running, and a park is resumed (flag cleared) before
         * the job runs again: a park over a park would lose one of the two resumes. */
        PRIMED_ASSERT(!s->producer_parked);
        s->producer_parked = true; /* cleared by exactly one of stream_read / stream_cancel */
        g = STREAM_GET_FULL;
    } else {
        *block = s->mem + ((s->head + s->count) % s->nblocks) * s->block_bytes;
        *cap = s->block_bytes;
        g = STREAM_GET_OK;
    }
    pthread_mutex_unlock(&s->mu);
    return g;
}

/* Called with mu held: whether the producer must call wake after unlocking. */
static bool take_wake(struct stream *s)
{
    bool first = !s->started;
    s->started = true;
    if (s->parked || first) {
        s->parked = false;
        return true;
    }
    return false;
}

void stream_block_commit(struct stream *s, size_t len)
{
    if (len == 0) return;
    pthread_mutex_lock(&s->mu);
    bool wake = false;
    /* A commit follows a get that found a free block (so the buffer is not full unless a cancel
     * came in between), and nothing is committed after stream_finish. */
    PRIMED_ASSERT((s->cancelled || s->count < s->nblocks) && !s->finished);
    if (!s->cancelled && s->count < s->nblocks) {
        s->lens[(s->head + s->count) % s->nblocks] = len;
        s->count++;
        s->committed_any = true;
        wake = take_wake(s);
    }
    pthread_mutex_unlock(&s->mu);
    if (wake && s->wake) s->wake(s->wake_arg);
}

void stream_finish(struct stream *s, bool ok)
{
    pthread_mutex_lock(&s->mu);
    s->finished = true;
    s->ok = ok;
    bool wake = take_wake(s);
    pthread_mutex_unlock(&s->mu);
    if (wake && s->wake) s->wake(s->wake_arg);
}

void stream_cancel(struct stream *s)
{
    pthread_mutex_lock(&s->mu);
    s->cancelled = true;
    bool wake = take_wake(s);
    bool resume = s->producer_parked; /* resumed to see the cancel and finish */
    s->producer_parked = false;
    if (s->producer_waiting) pthread_cond_signal(&s->space);
    pthread_mutex_unlock(&s->mu);
    if (wake && s->wake) s->wake(s->wake_arg);
    if (resume && s->resume) s->resume(s->resume_arg);
}

enum stream_read_result stream_read(struct stream *s, char *buf, size_t max, size_t *n,
                                    stream_park_fn park, void *park_arg)
{
    *n = 0;
    bool resume = false;
    pthread_mutex_lock(&s->mu);
    enum stream_read_result r;
    if (s->cancelled) {
        r = STREAM_FAILED;
    } else if (s->count > 0) {
        bool freed = false;
        while (s->count > 0 && *n < max) {
            size_t len = s->lens[s->head];
            size_t take = len - s->off;
            if (take > max - *n) take = max - *n;
            memcpy(buf + *n, s->mem + s->head * s->block_bytes + s->off, take);
            *n += take;
            s->off += take;
            if (s->off == len) {
                s->off = 0;
                s->head = (s->head + 1) % s->nblocks;
                s->count--;
                freed = true;
            }
        }
        if (freed && s->producer_waiting) pthread_cond_signal(&s->space);
        /* A parked producer runs again once half of the blocks are free (see stream.h). */
        if (freed && s->producer_parked && s->nblocks - s->count >= (s->nblocks + 1) / 2) {
            s->producer_parked = false;
            resume = true;
        }
        r = STREAM_DATA;
    } else if (s->finished) {
        r = s->ok ? STREAM_EOF : STREAM_FAILED;
    } else {
        s->parked = true;
        s->reader_slow = false; /* it caught up with the producer */
        if (park) park(park_arg);
        r = STREAM_EMPTY;
    }
    pthread_mutex_unlock(&s->mu);
    if (resume && s->resume) s->resume(s->resume_arg);
    return r;
}

enum stream_state stream_state(struct stream *s)
{
    pthread_mutex_lock(&s->mu);
    enum stream_state st = STREAM_S_PENDING;
    if (s->committed_any || (s->finished && s->ok && !s->cancelled))
        st = STREAM_S_FLOWING;
    else if (s->cancelled || (s->finished && !s->ok))
        st = STREAM_S_FAILED_EMPTY;
    pthread_mutex_unlock(&s->mu);
    return st;
}

enum stream_producer stream_producer_state(struct stream *s, size_t *buffered)
{
    pthread_mutex_lock(&s->mu);
    enum stream_producer p = s->finished          ? STREAM_P_FINISHED
                             : s->producer_parked ? STREAM_P_PARKED
                                                  : STREAM_P_ACTIVE;
    size_t b = 0;
    for (size_t i = 0; i < s->count; i++)
        b += s->lens[(s->head + i) % s->nblocks];
    if (buffered) *buffered = b >= s->off ? b - s->off : 0;
    pthread_mutex_unlock(&s->mu);
    return p;
}

size_t stream_capacity(const struct stream *s)
{
    return s->capacity;
}
