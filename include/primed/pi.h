/* pi.h — π(x), the number of primes <= x, for every x in 0 … 2^64-1 (Gourdon's variant of the
 * combinatorial method by default; Deléglise–Rivat kept as an independent cross-check).
 *
 * A library contract (libprimedsieve.a): no HTTP, JSON or pool types. One π(x) is a plan split
 * into independent chunks, so that a caller's workers can share it (the service drives it with
 * pool_parallel); pi_count is the same on the calling thread. The engine never starts a thread.
 *
 * Memory: every table and scratch buffer comes from one process-wide budget (pi_mem_*). A call
 * that would pass the budget fails with -ENOMEM and holds nothing afterwards; nothing aborts.
 * Cancellation: `cancel` (may be NULL) is polled at least once per sieve segment / leaf group,
 * i.e. every few milliseconds; a non-zero value makes the call return -ECANCELED.
 */
#ifndef PRIMED_PI_H
#define PRIMED_PI_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct pi_plan pi_plan;

/* Tuning knobs; zero fields take the defaults. Any values give the same answer (tests vary them
 * so that the parameters step), the defaults give the speed documented in docs/sieve.md. */
enum pi_algo { PI_ALGO_DEFAULT = 0, PI_ALGO_GOURDON, PI_ALGO_DR };
struct pi_opts {
    unsigned threads;  /* workers expected to run the chunks (sets the chunk count); 0 = 1 */
    double alpha;      /* y = alpha · x^(1/3), clamped to [x^(1/3), x^(1/2)]; 0 = by x */
    uint64_t segment;  /* numbers per sieve segment, a multiple of 1024; 0 = 2^19 */
    enum pi_algo algo; /* DEFAULT = GOURDON */
    double alpha_z;    /* Gourdon: z = alpha_z · y, clamped to [y, √x); 0 = by x */
};

/* Builds the tables for π(x) (primes, π and μ/least-prime-factor up to y ≈ α·x^(1/3)) on the
 * calling thread, and the chunk schedule. *out is the caller's, freed by pi_plan_destroy.
 * Returns 0, -ENOMEM (budget or malloc), -ECANCELED. */
int pi_plan_create(uint64_t x, const struct pi_opts *opts, pi_plan **out, const atomic_int *cancel);

/* Number of chunks: every chunk index in [0, n) must be run once, in any order, on any threads
 * (concurrently), before pi_plan_result. Chunks are ordered big first, so that workers claiming
 * them in index order finish together. */
uint64_t pi_plan_chunks(const pi_plan *plan);

/* Runs chunk i. Thread-safe against other chunks of the same plan (each writes its own slot);
 * a chunk must not run twice at once. Charges its scratch (≤ ~1 MB; ~3 MB near 2^64) to the budget
 * and frees it before returning. Returns 0, -ECANCELED, -ENOMEM or -EINVAL (i out of range). A
 * chunk that failed may be run again. */
int pi_run_chunk(pi_plan *plan, uint64_t i, const atomic_int *cancel);

/* What chunk i computes, for profiles and traces: "hard", "p2", "easy", "s1", "c1" or "ac". */
const char *pi_chunk_kind(const pi_plan *plan, uint64_t i);

/* Combines the chunks' results (a b_hard-sized array from the budget, freed before return).
 * Returns 0, -ENOMEM, or -EINVAL while some chunk has not completed. */
int pi_plan_result(const pi_plan *plan, uint64_t *pi);

void pi_plan_destroy(pi_plan *plan); /* accepts NULL */

/* π(x) on the calling thread: create, run every chunk, result, destroy. Returns 0, -ENOMEM,
 * -ECANCELED. */
int pi_count(uint64_t x, uint64_t *pi, const atomic_int *cancel);

/* The cost model (docs/sieve.md): estimated seconds on one worker of this machine class for
 * π(x) by pi_count, and for counting [lo, hi] with sieve_count. Callers choose the cheaper way to
 * count a range (π(hi) − π(lo−1) costs two π calls) and refuse requests that cannot fit their
 * deadline. Pure functions, no allocation. */
double pi_cost_seconds(uint64_t x);
double pi_sieve_cost_seconds(uint64_t lo, uint64_t hi);

/* The π budget: bytes held now by all plans and running chunks, the most ever held, and the
 * limit (default PI_MEM_LIMIT_DEFAULT; set before or between calls, any thread). */
#define PI_MEM_LIMIT_DEFAULT (512ull << 20)
struct pi_mem_stats {
    uint64_t in_use;
    uint64_t peak;
    uint64_t limit;
};
void pi_mem_stats_get(struct pi_mem_stats *out);
void pi_mem_set_limit(uint64_t bytes);

#endif
