/* sieve.h — segmented sieve of Eratosthenes over all of 0 … 2^64-1.
 *
 * A library that knows nothing of HTTP, JSON or the worker pool. All ranges are inclusive.
 * The sieving primes up to √hi are shared by every thread (computed once, extended on demand,
 * published with an atomic pointer: readers never block). Everything else a sieving thread needs
 * lives in a sieve_ctx, which belongs to exactly one thread at a time.
 *
 * Cancellation: every long call takes `cancel`, a flag polled once per segment (may be NULL).
 * When it reads non-zero the call stops and returns -ECANCELED. It never allocates without bound.
 */
#ifndef PRIMED_SIEVE_H
#define PRIMED_SIEVE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sieve_ctx sieve_ctx;

/* Per-thread working state (segment buffers, bucket lists). Returns NULL on ENOMEM.
 * segment_bytes 0 picks the default (sized to the L1/L2 cache). */
sieve_ctx *sieve_ctx_create(size_t segment_bytes);
void sieve_ctx_destroy(sieve_ctx *ctx); /* accepts NULL */

/* Windows that are narrow for their height (width < π(√hi)/10, e.g. < 2e7 near 2^64) are by
 * default sieved only by the primes up to 2^20, their survivors proven by Miller–Rabin: exact,
 * and up to 20x faster than generating every sieving prime up to √hi. allow = false forces the
 * full sieve (tests use it to exercise both paths). */
void sieve_ctx_set_hybrid(sieve_ctx *ctx, bool allow);

/* Big sieving primes (far apart compared with a segment) are crossed off through a fixed pool of
 * buckets, 16 MiB by default; when it runs low the pending hits are applied early. bytes = 0
 * restores the default. Any size gives the same answers; tests shrink it to exercise the early
 * applies, and it sets part of the memory per ctx (with the 32 MiB window; docs/sieve.md). */
void sieve_ctx_set_bucket_pool(sieve_ctx *ctx, size_t bytes);

/* Count the primes in [lo, hi] (0 when lo > hi). Returns 0, -ECANCELED or -ENOMEM. */
int sieve_count(sieve_ctx *ctx, uint64_t lo, uint64_t hi, uint64_t *count,
                const atomic_int *cancel);

/* Called with the primes of [lo, hi] in increasing order, a batch (usually one segment) at a
 * time. `primes` is borrowed, valid only during the call. Return 0 to go on, anything else to
 * stop: sieve_foreach then returns that value. */
typedef int (*sieve_emit_fn)(void *arg, const uint64_t *primes, size_t n);

/* Iterate the primes of [lo, hi]. Returns 0, the callback's non-zero value, -ECANCELED or
 * -ENOMEM. Memory is O(segment) whatever the width of the range. */
int sieve_foreach(sieve_ctx *ctx, uint64_t lo, uint64_t hi, sieve_emit_fn emit, void *arg,
                  const atomic_int *cancel);

/* Chunking for intra-request parallelism: the recommended chunk width for splitting a count of
 * [lo, hi] into independent pieces (a multiple of the segment span, large enough that per-chunk
 * setup is amortised). Any split is correct; this one is efficient. */
uint64_t sieve_chunk_width(uint64_t lo, uint64_t hi);

/* The widest [lo, hi] that a ctx with the hybrid on (the default) answers by the hybrid (sieve
 * to 2^20, Miller–Rabin on the survivors) rather than by a full sieve, whose setup is a pass over
 * all π(√hi) sieving primes; 0 when hi is too low for the hybrid. For callers that cut a range
 * into chunks (op_primes.c's stream): a full-sieve chunk costs that pass whatever its width. */
uint64_t sieve_hybrid_width(uint64_t hi);

/* nth prime, 1-based: nth(1) = 2. Single-threaded: π(x) by pi_count (pi.h, every x), then the
 * gap sieved with ctx. Returns 0, -ERANGE when the k-th
 * prime exceeds 2^64-1 (k > 425656284035217743), -EINVAL for k = 0, -ECANCELED, -ENOMEM. */
int sieve_nth(sieve_ctx *ctx, uint64_t k, uint64_t *prime, const atomic_int *cancel);

/* Pieces of sieve_nth for callers that count in parallel:
 * sieve_nth_estimate(k) returns x with π(x) close to k (inverse of li(x) - li(√x)/2, within
 * about √x primes; 0 for k = 0);
 * sieve_nth_finish(ctx, x, pi_x, k, ...) finds the k-th prime given pi_x = π(x), by sieving
 * forward from x+1 when pi_x < k, or backward from x when pi_x >= k. Same returns as sieve_nth;
 * -EINVAL also when pi_x is not π(x) and that shows (fewer primes below x than claimed). */
uint64_t sieve_nth_estimate(uint64_t k);
int sieve_nth_finish(sieve_ctx *ctx, uint64_t x, uint64_t pi_x, uint64_t k, uint64_t *prime,
                     const atomic_int *cancel);

/* Vector kernels (the pre-sieve's AND of patterns, the count of a window): a portable variant
 * and AVX2 / AVX-512 ones; the best this CPU supports (cpuid) is used unless one is forced.
 * sieve_isa_select(name) forces the variant `name` process-wide from the next window on (tests
 * compare every variant with the portable one; benchmarks); NULL restores the best. Returns 0,
 * or -ENOTSUP for an unknown name or a variant this CPU cannot run. Every variant gives the
 * same answers. sieve_isa_name() names the variant in use; sieve_isa_variant(i) the i-th one
 * (0 = "portable"), NULL past the last. */
int sieve_isa_select(const char *name);
const char *sieve_isa_name(void);
const char *sieve_isa_variant(size_t i);

/* Process-wide counters for /metrics (relaxed atomics, flushed once per call, not per prime). */
struct sieve_stats {
    uint64_t numbers_sieved; /* width of all ranges sieved */
    uint64_t segments;       /* segments processed */
    uint64_t primes_emitted; /* primes handed to sieve_emit_fn callbacks */
    uint64_t table_bytes;    /* bytes held by the shared sieving-prime table now */
    uint64_t table_limit;    /* the table covers sieving primes up to this value */
};
void sieve_stats_get(struct sieve_stats *out);

/* The raw mod-30 prime bitmap (see wheel.h) of bytes [byte_lo, byte_lo + nbytes), i.e. of the
 * numbers 30*byte_lo … 30*(byte_lo+nbytes)-1, into out[0 … nbytes) (caller-owned). Requires
 * 30*(byte_lo+nbytes) <= 2^64 - 30. Used to build the shared table. Returns 0 or -ENOMEM. */
int sieve_bitmap(sieve_ctx *ctx, uint64_t byte_lo, size_t nbytes, uint8_t *out);

/* Builds the shared sieving-prime table's first block (the primes below 15.7M, 512 KiB; ~50 ms
 * here), which every sieve call needs: a server calls it before it serves, so that no request
 * pays for it (a rate-limited request is metered, and the first one after start was stopped for
 * the table's CPU). 0 or -ENOMEM; a later sieve call builds it if this failed. */
int sieve_warm(void);

/* Frees the shared sieving-prime table. Call only when no thread is sieving (at exit); a later
 * sieve call rebuilds it. */
void sieve_shutdown(void);

#endif
