/* sieve_big.h — crossing off the big sieving primes of a window through buckets (internal to
 * the sieve).
 *
 * A big prime hits a window a few times at most, far apart. Crossing those hits straight into a
 * window of megabytes is one cache miss each (83% of a count at 1e18 was that one store); here
 * they are first sorted into per-bucket lists (a bucket is an L2-sized slice of the window) and
 * then applied slice by slice, each slice hot in cache. Memory is a fixed pool of bucket blocks:
 * when it runs low the pending hits are applied and the pool is reused, so the state is bounded
 * whatever the number of sieving primes. Nothing persists from one window to the next.
 */
#ifndef PRIMED_SIEVE_BIG_H
#define PRIMED_SIEVE_BIG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "sieve_table.h"

struct sieve_big;

/* bucket_bytes: the slice applied at once (rounded down to a power of two, at least 32 KiB, at
 * most 4 MiB); max_window_bytes: the largest window that will be passed; pool_bytes: the bucket
 * pool (0 = default, 16 MiB: DEFAULT_POOL_BYTES in sieve_big.c; raised to what max_window_bytes
 * needs). NULL on ENOMEM. */
struct sieve_big *sieve_big_create(size_t bucket_bytes, size_t max_window_bytes, size_t pool_bytes);
void sieve_big_destroy(struct sieve_big *sb); /* accepts NULL */

/* AND into buf[0 … wlen) (the window whose byte 0 stands for W0, a multiple of 30, and whose
 * last number is whi) the multiples of every prime of t in (from, to]. wlen <= max_window_bytes.
 * Returns 0 or -ECANCELED (cancel polled every 2^20 primes or so; the window is then half done). */
int sieve_big_window(struct sieve_big *sb, const struct stable *t, uint64_t from, uint64_t to,
                     uint64_t W0, uint64_t whi, uint8_t *buf, size_t wlen,
                     const atomic_int *cancel);

/* Bytes this state holds (pool + bucket heads), for the memory statements of the docs/tests. */
size_t sieve_big_bytes(const struct sieve_big *sb);

#endif
