/* pi_int.h — what the π(x) units (pi*.c) share: the plan, its chunks, the tables' layout and
 * the memory budget.
 *
 * Internal to the engine (pi.h is the contract). The plan's tables are read-only once
 * pi_plan_create returns; a chunk writes only its own struct chunk.
 */
#ifndef PRIMED_PI_INT_H
#define PRIMED_PI_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "primed/pi.h"

typedef __int128 i128;
typedef unsigned __int128 u128;

#define PI_C 6           /* φ(n, c) for p_c = 13 from one period of 30030 */
#define PHI_Q 30030u     /* 2·3·5·7·11·13 */
#define PHI_PERIOD 5760u /* φ(30030, 6) */
#define PAT_WORDS 15015u /* pre-sieve period in 64-bit words of odd numbers (128 numbers) */
#define CNT_SHIFT 9      /* one counter per 512 bits = 1024 numbers */
#define SEG_DEFAULT (1u << 19)
#define DR_MIN 10000u      /* below this, count with a plain sieve */
#define CANCEL_EVERY 4096u /* loop steps between looks at the cancel flag in table builds */

/* ---------------------------------------------------------------- budget (pi_mem.c) */

/* Zeroed memory charged to the process-wide π budget; NULL when it would pass the limit or
 * malloc fails. pi_mem_put takes the size that was asked for (and accepts NULL). */
void *pi_mem_get(size_t n);
void pi_mem_put(void *p, size_t n);
/* Charge (false: over the limit) or release n bytes that another allocator holds for π, e.g. a
 * sieve_ctx's buffers, so the budget still bounds everything a chunk holds. */
bool pi_mem_charge(size_t n);
void pi_mem_uncharge(size_t n);

/* ---------------------------------------------------------------- the plan (pi_plan.c) */

/* DR: HARD, P2, EASY, S1. Gourdon: HARD (its D), P2 (its B), S1 (its Φ0), C1, AC. */
enum chunk_kind { CK_HARD, CK_P2, CK_EASY, CK_S1, CK_C1, CK_AC };

struct chunk {
    enum chunk_kind kind;
    uint64_t lo, hi; /* HARD, P2: segment indices [lo, hi); EASY, C1: b in [lo, hi); S1: n in [lo,
                        hi); AC: numbers [lo, hi) whose π the chunk's leaves look up */
    uint32_t bmax;   /* HARD: leaves and counts for c < b <= bmax */
    int64_t *musum;  /* HARD: [b - c - 1], Σ of the leaf signs for b in this chunk */
    uint64_t *cnt;   /* HARD: [b - c - 1], survivors of p_1 … p_{b-1} in this chunk */
    /* Results, written only by the thread running the chunk, then published by `done`. */
    i128 sum;         /* HARD: Σ sign·(local φ); P2, AC: Σ local π; EASY, S1, C1: the sum */
    uint64_t nprimes; /* P2, AC: primes in the chunk's numbers */
    uint64_t nleaves; /* P2: primes p with x / p in the chunk's numbers; AC: Σ leaf weights */
    atomic_int done;  /* 1 after a complete run: store release by the runner, load acquire by
                         pi_plan_result; reset (relaxed) when a run starts */
};

struct pient {
    uint64_t bits;   /* bit i: 128w + 2i + 1 is an odd prime */
    uint64_t before; /* odd primes below 128w */
};

struct pi_plan {
    uint64_t x, y, z, sqrtx, seg; /* z = x / y: P2's reach */
    bool gourdon; /* π = Φ0 + A + C + D + Σ1…Σ6 − P2 + a − 1 (Gourdon); else DR's S1 + S2 */
    uint64_t mmax;  /* leaves φ(x / (p_b m), b − 1) have m <= mmax < p_b m: DR y, Gourdon zg */
    uint64_t dlim;  /* the hard-leaf sieve covers [0, dlim]: DR x / y, Gourdon x / zg */
    uint64_t xstar; /* Gourdon: D has p_b <= x*, A has x* < p_b <= x^(1/3) */
    uint64_t x13;   /* ⌊x^(1/3)⌋ */
    uint64_t small_pi; /* x < DR_MIN: the answer, computed at create; nchunks = 0 */
    bool small;
    uint32_t a;        /* π(y) */
    uint32_t pi_sqrty; /* π(√mmax): leaves with b above it have a prime m */
    uint32_t b_hard;   /* hard leaves have b <= b_hard: DR min(a − 1, π(√z)), Gourdon π(x*) */
    uint64_t p2_base;  /* P2 segment s covers [p2_base + s·seg, p2_base + (s+1)·seg) */
    /* Read-only after create. */
    uint64_t ylim;    /* tables cover [0, ylim], ylim > y, primes[a + 1] exists */
    uint32_t *primes; /* primes[1] = 2 … primes[np]; primes[0] = 0 */
    uint32_t np;
    struct pient *pt; /* π table: one entry per 128 numbers (bits and count side by side, so
                         a lookup touches one cache line) */
    int32_t *mulpf;   /* odd m <= mmax: 0 if μ(m) = 0 or m has a prime factor > y, else
                         μ(m)·lpf(m) (m = 1: 1) */
    size_t primes_bytes, pt_bytes, mulpf_bytes;
    uint64_t nchunks;
    struct chunk *chunks;
    size_t chunks_bytes;
    int64_t *slot_mem; /* backing store of every hard chunk's musum and cnt */
    size_t slot_bytes;
};

/* π(n) for n <= ylim. */
static inline uint64_t pi_tab(const pi_plan *pl, uint64_t n)
{
    if (n < 2) return 0;
    uint64_t w = n >> 7;
    unsigned nb = (unsigned)(((n & 127) + 1) >> 1);
    uint64_t mask = nb == 64 ? UINT64_MAX : ((uint64_t)1 << nb) - 1;
    return 1 + pl->pt[w].before + (uint64_t)__builtin_popcountll(pl->pt[w].bits & mask);
}

static inline bool pi_cancelled(const atomic_int *cancel)
{
    return cancel && atomic_load_explicit(cancel, memory_order_relaxed) != 0;
}

/* The largest b with hard leaves at or above lo: p_b² < x / lo, and b <= b_hard. */
uint32_t pi_hard_bmax(const pi_plan *pl, uint64_t lo);

uint64_t pi_icbrt(uint64_t x);

/* ---------------------------------------------------------------- tables (pi_tables.c) */

/* phi_tab[r] = #{1 <= k <= r : gcd(k, 30030) = 1}; pat[w]: bit i set iff 128w + 2i + 1 has no
 * factor 3 … 13. Process-wide, built once by pi_tables_once(), never freed. */
extern uint16_t pi_phi_tab[PHI_Q];
extern uint64_t pi_pat[PAT_WORDS];
void pi_tables_once(void);

/* φ(n, c): the numbers <= n with no prime factor <= 13. */
static inline uint64_t phi_c(uint64_t n)
{
    return n / PHI_Q * PHI_PERIOD + pi_phi_tab[n % PHI_Q];
}

/* Fill pl->pt, pl->primes, pl->np (up to pl->ylim), then pl->mulpf (up to pl->y, needs pl->a).
 * Return 0, -ENOMEM or -ECANCELED; what they allocated is the plan's either way. */
int pi_tables_primes(pi_plan *pl, const atomic_int *cancel);
int pi_tables_mulpf(pi_plan *pl, const atomic_int *cancel);

/* ---------------------------------------------------------------- prime bitmaps (pi_p2.c) */

/* The primes of [lo, hi] (lo >= 7, hi − lo < 30·(buffer bytes − 8)) into buf as mod-30 bytes
 * numbered from 30·(lo / 30), sieved by ctx; returns the bytes used (8 zero bytes follow, for
 * word reads), or 0 on ENOMEM. */
struct sieve_ctx;
size_t pi_block_fill(struct sieve_ctx *ctx, uint8_t *buf, uint64_t lo, uint64_t hi);
extern const uint8_t pi_upto[30]; /* the bits of a mod-30 byte whose residue is <= r */

static inline uint64_t pi_word_at(const uint8_t *b, size_t w)
{
    uint64_t v;
    __builtin_memcpy(&v, b + 8 * w, 8);
    return v;
}

/* ---------------------------------------------------------------- the terms */

/* Each runs one chunk of its kind and leaves the result in the chunk; 0, -ENOMEM, -ECANCELED. */
int pi_hard_run(const pi_plan *pl, struct chunk *ck, const atomic_int *cancel); /* pi_hard.c */
int pi_p2_run(const pi_plan *pl, struct chunk *ck, const atomic_int *cancel);   /* pi_p2.c */
int pi_easy_run(const pi_plan *pl, struct chunk *ck, const atomic_int *cancel); /* pi_easy.c */
int pi_s1_run(const pi_plan *pl, struct chunk *ck, const atomic_int *cancel);   /* pi_s1.c */
int pi_c1_run(const pi_plan *pl, struct chunk *ck, const atomic_int *cancel);   /* pi_c1.c */
int pi_ac_run(const pi_plan *pl, struct chunk *ck, const atomic_int *cancel);   /* pi_ac.c */
/* Gourdon's Σ1 … Σ6 (pi_sigma.c): closed forms and loops over p <= x^(1/3), from the tables. */
i128 pi_sigma(const pi_plan *pl);
/* Every term of a completed plan (tests compare them with primecount's --Phi0, --D, --AC,
 * --B and --Sigma): π(x) = s1 + hard + easy + c1 + ac + sigma + a − 1 − p2. DR: s1 = S1, hard =
 * S2_hard, easy = S2_easy + S2_trivial. Gourdon: s1 = Φ0, hard = D, c1 + ac = A + C, sigma =
 * Σ1 … Σ6, p2 = B − Σ_{a < i <= π(√x)} (i − 1). 0, -ENOMEM, or -EINVAL (a chunk not done, or
 * a small x answered without terms). */
struct pi_terms {
    i128 s1, hard, easy, c1, ac, sigma, p2;
};
int pi_plan_terms(const pi_plan *plan, struct pi_terms *t);

/* AC chunks count their primes from this number on (smaller leaves' n never occur). */
#define AC_FIRST 7u

#endif
