/* sieve_table.c — builds, extends and publishes the shared sieving-prime table.
 *
 * Readers load the current directory with acquire and use it if it is big enough; they never
 * lock. Extension is a cold path (a handful of times per process): the builder takes a mutex so
 * that two threads never both spend seconds building the same 143 MB, has the new blocks sieved by
 * the caller's filler (the engine; block 0 alone feeds it), and publishes a new directory with a
 * release CAS. It includes nothing of sieve.c: the dependency is one way, sieve.c → here.
 * Old directories stay reachable through `retired` (a reader may still hold one) until
 * stable_shutdown(). A lock-free build race (both build, loser frees) was rejected: it doubles
 * peak memory and CPU exactly when the table is largest.
 */
#include "sieve_table.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "wheel.h"

#define BLOCK_NUMBERS ((uint64_t)30 * STABLE_BLOCK_BYTES)
/* Enough blocks to hold every prime <= 2^32 - 1 = isqrt(2^64 - 1). */
#define MAX_BLOCKS ((size_t)((((uint64_t)1 << 32) + BLOCK_NUMBERS - 1) / BLOCK_NUMBERS))

/* Written only by the builder (under g_build_mu) with release; read by anyone with acquire. */
static _Atomic(struct stable *) g_table;
static pthread_mutex_t g_build_mu = PTHREAD_MUTEX_INITIALIZER;
/* Written by the builder, read by metrics: relaxed, values only. */
static atomic_uint_least64_t g_bytes, g_limit;

/* Block 0 by the plainest sieve there is: it is the root every other block is sieved from, so
 * it must not depend on the engine. One byte per number, 15.7 MB for a few milliseconds. */
static uint8_t *build_block0(void)
{
    uint8_t *blk = malloc(STABLE_BLOCK_BYTES);
    uint8_t *comp = calloc(BLOCK_NUMBERS, 1);
    if (!blk || !comp) {
        free(blk);
        free(comp);
        return NULL;
    }
    comp[0] = comp[1] = 1;
    for (uint64_t i = 2; i * i < BLOCK_NUMBERS; i++)
        if (!comp[i])
            for (uint64_t j = i * i; j < BLOCK_NUMBERS; j += i)
                comp[j] = 1;
    for (size_t k = 0; k < STABLE_BLOCK_BYTES; k++) {
        uint8_t b = 0;
        for (int bit = 0; bit < 8; bit++)
            if (!comp[30 * k + wheel_residue[bit]]) b |= (uint8_t)(1u << bit);
        blk[k] = b;
    }
    free(comp);
    return blk;
}

/* A new directory with `n` blocks: the first old->nblocks are borrowed from `old` (may be NULL),
 * the rest are built. Returns NULL on ENOMEM (nothing leaks: new blocks are freed). `cancel`
 * (may be NULL) is polled before each block (~16M numbers, a few ms; a sanitizer build's table
 * to 1e9 took >10 s and kept a cancelled request's worker for all of it): when set, the blocks
 * built so far still make a directory (*cancelled = true), so the work is kept for the next
 * caller; with none built, NULL. */
static struct stable *build_dir(struct stable *old, size_t n, stable_fill_fn fill,
                                const atomic_int *cancel, bool *cancelled)
{
    size_t have = old ? old->nblocks : 0;
    struct stable *t = calloc(1, sizeof *t);
    uint8_t **blocks = calloc(n, sizeof *blocks);
    size_t k = have;
    if (!t || !blocks) goto err;
    if (have) memcpy(blocks, old->blocks, have * sizeof *blocks);
    if (k == 0) {
        if (!(blocks[0] = build_block0())) goto err;
        k = 1;
    }
    for (; k < n; k++) {
        if (cancel && atomic_load_explicit(cancel, memory_order_relaxed)) {
            *cancelled = true;
            if (k == have) goto err; /* nothing new: `old` stays the table */
            n = k;
            break;
        }
        if (!(blocks[k] = malloc(STABLE_BLOCK_BYTES))) goto err;
        if (fill((uint64_t)k * STABLE_BLOCK_BYTES, STABLE_BLOCK_BYTES, blocks[k]) != 0) {
            free(blocks[k]);
            goto err;
        }
    }
    t->nblocks = n;
    t->blocks = blocks;
    t->limit = (uint64_t)n * BLOCK_NUMBERS - 1;
    t->retired = old;
    return t;
err:
    if (blocks)
        for (size_t i = have; i < k; i++)
            free(blocks[i]);
    free(blocks);
    free(t);
    return NULL;
}

/* Publish under g_build_mu. The CAS cannot fail while the mutex is held; it states the
 * invariant that only the builder replaces the pointer, and it is the release that makes the
 * block contents visible to every acquire load. */
static void publish(struct stable *old, struct stable *t)
{
    struct stable *expected = old;
    if (!atomic_compare_exchange_strong_explicit(&g_table, &expected, t, memory_order_release,
                                                 memory_order_relaxed))
        abort();
    atomic_store_explicit(&g_bytes, (uint64_t)t->nblocks * STABLE_BLOCK_BYTES,
                          memory_order_relaxed);
    atomic_store_explicit(&g_limit, t->limit, memory_order_relaxed);
}

const struct stable *stable_acquire(uint64_t need, stable_fill_fn fill, const atomic_int *cancel)
{
    struct stable *t = atomic_load_explicit(&g_table, memory_order_acquire);
    if (t && t->limit >= need) return t;
    bool cancelled = false;
    if (need > UINT32_MAX) need = UINT32_MAX;
    pthread_mutex_lock(&g_build_mu);
    t = atomic_load_explicit(&g_table, memory_order_acquire);
    if (!t) {
        /* Publish block 0 first: the engine sieving the later blocks reads it lock-free. */
        struct stable *t0 = build_dir(NULL, 1, fill, NULL, &cancelled); /* milliseconds */
        if (!t0) goto out;
        publish(NULL, t0);
        t = t0;
    }
    if (t->limit < need) {
        size_t n = (size_t)((need + 1 + BLOCK_NUMBERS - 1) / BLOCK_NUMBERS);
        /* Grow by at least half so that a slowly rising √hi does not rebuild directories often. */
        if (n < t->nblocks + t->nblocks / 2) n = t->nblocks + t->nblocks / 2;
        if (n > MAX_BLOCKS) n = MAX_BLOCKS;
        struct stable *nt = build_dir(t, n, fill, cancel, &cancelled);
        if (nt) publish(t, nt);
        t = nt;
    }
out:
    pthread_mutex_unlock(&g_build_mu);
    if (cancelled) {
        errno = ECANCELED;
        return NULL;
    }
    if (!t) errno = ENOMEM;
    return t;
}

void stable_stats(uint64_t *bytes, uint64_t *limit)
{
    *bytes = atomic_load_explicit(&g_bytes, memory_order_relaxed);
    *limit = atomic_load_explicit(&g_limit, memory_order_relaxed);
}

void stable_shutdown(void)
{
    pthread_mutex_lock(&g_build_mu);
    struct stable *t = atomic_exchange_explicit(&g_table, NULL, memory_order_acq_rel);
    if (t)
        for (size_t i = 0; i < t->nblocks; i++) /* the newest directory holds every block */
            free(t->blocks[i]);
    while (t) {
        struct stable *older = t->retired;
        free(t->blocks);
        free(t);
        t = older;
    }
    atomic_store_explicit(&g_bytes, 0, memory_order_relaxed);
    atomic_store_explicit(&g_limit, 0, memory_order_relaxed);
    pthread_mutex_unlock(&g_build_mu);
}
