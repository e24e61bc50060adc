/* picache.h — a bounded cache of π values, x → π(x), shared by the pi, count and nth operations.
 *
 * Why a cache: users repeat themselves (dashboards poll the same count, clients walk nth k, k+1,
 * …, bursts of the same pi?x), and a π(x) near 1e17 is tens of seconds of both workers. Values
 * never change, so no entry ever goes stale and no TTL is needed for correctness; the only reason
 * to drop one is room. The bound is therefore a hard number of bytes (pi_cache_bytes), and what
 * goes when it is reached is the least recently used entry (LRU): the values a dashboard or a
 * walking client keeps asking for stay, one-off values leave.
 *
 * Bound: every byte the cache holds (its shard table and each shard's entry arrays) is counted;
 * the arrays grow by doubling up to their share of the bound and never past it, so the bytes
 * held (primed_pi_cache_bytes) never exceed it, whatever the inserts. The arrays are charged to
 * the request memory budget (reqmem.h) as they grow — the cache is memory that answers make the
 * server hold — and a growth the budget cannot take is not made: that shard stays at its size
 * and evicts (the cache can do without; a request body cannot). The fixed shard table (~2 KiB)
 * is not charged. Charges are given back only by picache_destroy: a full cache holds its bound.
 *
 * Concurrency: the entries are split over shards by a hash of x, each with its own small mutex,
 * held for O(log n) work (a binary search, an LRU relink, at worst a memmove of a few KiB).
 * No global lock is taken on a lookup or an insert: two threads contend only when they touch the
 * same shard at the same moment (1/16 of the time for two threads at random). Rejected: one
 * mutex for the whole cache (every hit of every worker and I/O thread would serialise on it);
 * a reader-writer lock (a hit writes too: it moves the entry to the front of the LRU); a
 * lock-free table (an LRU order is a shared write per hit whatever the table, and the critical
 * sections are ~100 ns against computations of ≥ 100 µs). The LRU is per shard, so the entry
 * evicted is the least recently used of its shard: with a uniform hash that is the global LRU
 * give or take the shard count.
 *
 * Nearby values: each shard keeps its entries sorted by x as well, so the cached x nearest to a
 * given x (below and above) is found with one binary search per shard (taken only on a miss, by
 * the caller that then decides whether π(x0) ± a sieved gap is cheaper than π(x)). π is
 * non-decreasing in x, so the same order finds the entries whose π is nearest a given k (nth).
 *
 * Knows nothing of HTTP, the pool or the engine; all functions are thread-safe and accept a NULL
 * cache (off: every lookup misses, inserts are dropped).
 */
#ifndef PRIMED_PICACHE_H
#define PRIMED_PICACHE_H

#include <stdbool.h>
#include <stdint.h>

struct picache;
struct reqmem;
struct metrics_writer;

#define PICACHE_BYTES_DEFAULT (1ull << 20)
/* Bytes one entry costs (its record and its place in the sorted index). */
#define PICACHE_ENTRY_BYTES 28u

/* A cache of at most `bytes` bytes, its entry arrays charged to `mem` as they grow (NULL: not
 * charged). bytes == 0: *out = NULL (off) and 0. Up to 16 shards, fewer when the bound is small
 * (each holds at least 64 entries). Returns 0, -EINVAL (bytes > 0 but below PICACHE_BYTES_MIN),
 * -ENOMEM. */
#define PICACHE_BYTES_MIN 4096u
int picache_create(uint64_t bytes, struct reqmem *mem, struct picache **out);
/* Frees everything and gives the charge back. Accepts NULL. */
void picache_destroy(struct picache *c);

/* π(x) when cached (a hit: the entry becomes the most recently used). Counts a hit or a miss. */
bool picache_get(struct picache *c, uint64_t x, uint64_t *pi);
/* The same without counting or touching anything (a second look, e.g. before starting work). */
bool picache_peek(struct picache *c, uint64_t x, uint64_t *pi);
/* Remember π(x) = pi (an existing entry is refreshed); evicts the least recently used entry of
 * its shard when the shard is full. */
void picache_put(struct picache *c, uint64_t x, uint64_t pi);

/* Neighbours, for reuse: a cached point (x, π(x)) on each side. Neither lookup counts as a hit
 * or a miss, nor changes the LRU order. */
struct picache_point {
    bool ok;
    uint64_t x, pi;
};
/* The largest cached x0 < x and the smallest cached x0 > x. */
void picache_near_x(struct picache *c, uint64_t x, struct picache_point *below,
                    struct picache_point *above);
/* The cached entry with the largest π below k (the largest x among equals), and the one with
 * the smallest π at or above k (the smallest x among equals). */
void picache_near_pi(struct picache *c, uint64_t k, struct picache_point *below,
                     struct picache_point *above);

struct picache_stats {
    uint64_t hits, misses, evictions;
    uint64_t entries;  /* now */
    uint64_t capacity; /* most entries it can hold */
    uint64_t bytes;    /* held now: the shard table and the entry arrays */
    uint64_t bound;    /* pi_cache_bytes: bytes never exceeds it */
    unsigned shards;   /* x goes to shard (x · 0x9e3779b97f4a7c15) >> (64 − log2 shards) */
};
/* Zeros for NULL. Each shard is read under its lock: a consistent count per shard. */
void picache_stats_get(struct picache *c, struct picache_stats *out);

/* Collector (metrics_register_collector, arg = the cache or NULL): primed_pi_cache_hits_total,
 * _misses_total, _evictions_total, _entries, _bytes, _bound_bytes. */
void picache_collect(void *arg, struct metrics_writer *w);

#endif
