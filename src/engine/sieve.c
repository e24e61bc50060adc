/* sieve.c — the segmented mod-30 sieve of Eratosthenes behind sieve_count/foreach/bitmap.
 *
 * A range is cut into windows, a window into segments of seg_bytes (L2/4). Per segment: the
 * presieve patterns are AND-ed in (7 … 163), then small and medium sieving primes cross off their
 * multiples, segment-local and cache-hot. Big primes (far more bytes between two multiples than a
 * segment holds) are handled once per window by sieve_big.c: one division each finds the first
 * multiple, and the hits are sorted into L2-sized buckets before they are applied. The window
 * buffer (32 MiB) and the bucket pool (16 MiB) are bounded, so per-ctx memory is bounded whatever
 * the width of the range or the height of hi.
 *
 * Rejected: primesieve-style buckets that keep every big prime's next multiple across windows.
 * They avoid re-deriving a big prime's first multiple per window (one division), but hold 8
 * bytes per sieving prime: 237 MB for [1e18, 1e18+1e9], 381 MB near 2^64 (primesieve 11,
 * measured here). A window of 32 MiB spans 1e9 numbers, which amortises the divisions; the cost
 * shows on wide ranges near 2^64, where each window re-derives 203M first multiples.
 *
 * Must never: allocate per segment or per prime, hold a lock, or overflow near 2^64 (every
 * absolute value is derived from a checked 128-bit product or from offsets below hi).
 */
#include "primed/sieve.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "presieve.h"
#include "primed/primality.h"
#include "sieve_big.h"
#include "sieve_kernels.h"
#include "sieve_table.h"
#include "wheel.h"

/* Default window when big primes are present: 32 MiB = 1.007e9 numbers, so [1e18, 1e18+1e9] is
 * one window and each big prime costs one division. Measured on that range with the bucket pool
 * at 16 MiB: 16 MiB windows 1.79 s, 32 MiB 1.55 s (before the buckets, when every hit was a cache
 * miss, 16 MiB was best: 1.4-2.8 s). */
#define WIN_BYTES_DEFAULT ((size_t)32 << 20)
#define BATCH_CAP 4096                   /* primes per sieve_emit_fn call at most */
#define HYBRID_LIMIT ((uint64_t)1 << 20) /* sieving limit of the hybrid mode (see run()) */

/* A small or medium sieving prime p = 30q + wheel_residue[ri], and its next multiple: byte
 * `off` from the current window start, wheel index `wi` of the multiplier. */
struct sprime {
    uint64_t off;
    uint32_t q;
    uint8_t ri;
    uint8_t wi;
};

struct sieve_ctx {
    size_t seg_bytes; /* multiple of 64 */
    size_t seg_low;   /* the segment of a job without big primes (see sieve_ctx_create) */
    size_t seg_cur;   /* this job's segment: seg_bytes or seg_low (run_setup) */
    size_t small_cur; /* this job's small-prime bound, seg_cur / 4 */
    size_t win_bytes; /* multiple of seg_bytes; the window when big primes are sieved */
    uint64_t big_min; /* primes above this are "big" */
    uint8_t *buf;     /* window buffer, buf_bytes (+ 8 bytes of padding for word counting) */
    size_t buf_bytes;
    struct sprime *sp; /* small + medium sieving primes of the current range */
    size_t sp_n, sp_cap;
    size_t sp_small; /* sp[0 … sp_small) are small primes (< small_max), sorted by size */
    size_t sp_tiny;  /* sp[0 … sp_tiny) are below tiny_max: sieved per L1-sized piece */
    size_t l1_bytes;
    uint64_t tiny_max;
    uint64_t small_max;
    bool hybrid; /* narrow high windows by partial sieve + Miller-Rabin (default on) */
    struct sieve_big *big_state; /* bucket state for big primes, made on first use */
    size_t big_pool_bytes;       /* its pool size, 0 = default */
    uint64_t batch[BATCH_CAP];   /* sieve_foreach batches */
};

/* Process-wide statistics: written by every sieving thread with relaxed adds once per call (or
 * once per window), read by sieve_stats_get. Values only; they order nothing. */
static atomic_uint_least64_t g_numbers, g_segments, g_emitted;

/* A segment is a quarter of L2: the small primes' unrolled loops stream through it while the
 * presieve patterns and medium-prime state stay cached too. Measured here (L1 48K, L2 1M):
 * count to 1e10 took 1.12 s with 48 KiB segments, 1.03 s with 256 KiB. */
static size_t default_seg_bytes(void)
{
    long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE);
    size_t s = l2 > 0 ? (size_t)l2 / 4 : l1 > 0 ? (size_t)l1 * 4 : 131072;
    if (s < 32768) s = 32768;
    if (s > (1u << 20)) s = 1u << 20;
    return s & ~(size_t)63;
}

sieve_ctx *sieve_ctx_create(size_t segment_bytes)
{
    sieve_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    size_t s = segment_bytes ? segment_bytes : default_seg_bytes();
    if (s < 1024) s = 1024;
    if (s > ((size_t)4 << 20)) /* beyond L2 sizes there is nothing to gain */
        s = (size_t)4 << 20;
    s &= ~(size_t)63;
    ctx->seg_bytes = s;
    ctx->win_bytes = WIN_BYTES_DEFAULT < s ? s : WIN_BYTES_DEFAULT / s * s;
    /* A medium prime p has about 8*seg_bytes/p multiples per segment; beyond ~1 per segment
     * the per-segment visit costs more than a per-window division. */
    ctx->big_min = (uint64_t)8 * s;
    if (ctx->big_min > ((uint64_t)8 << 20)) /* bounds the medium state: π(8M) * 16 B = 8.6 MB */
        ctx->big_min = (uint64_t)8 << 20;
    /* a full wheel cycle (p bytes) fits a segment several times */
    ctx->small_max = s / 4;
    /* A job without big primes (√hi <= big_min) sieves in L2-sized segments by default: there
     * no bucket slice or medium-prime bound depends on the segment, and [0, 1e10] took 1.02 s
     * with 1 MiB segments against 1.045 s with 256 KiB (which stay for big-prime windows, where
     * the medium state and the slices grow with the segment: +19 MB of RSS at 1e18). */
    ctx->seg_low = segment_bytes ? s : (4 * s > ((size_t)4 << 20) ? s : 4 * s);
    long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE);
    ctx->l1_bytes = l1 >= 16384 && (size_t)l1 < s ? (size_t)l1 : s;
    /* Tiny primes have 8 hits per p bytes; below L1/8 (4 KiB here) a piece of L1 holds 8+ of
     * their cycles. Measured on [0, 1e10] (sorted by residue): tiny_max = L1/4 1.067 s,
     * L1/8 1.042 s, L1/16 1.10 s. */
    ctx->tiny_max = ctx->l1_bytes / 8;
    ctx->hybrid = true;
    return ctx;
}

void sieve_ctx_destroy(sieve_ctx *ctx)
{
    if (!ctx) return;
    free(ctx->buf);
    free(ctx->sp);
    sieve_big_destroy(ctx->big_state);
    free(ctx);
}

void sieve_ctx_set_hybrid(sieve_ctx *ctx, bool allow)
{
    ctx->hybrid = allow;
}

void sieve_ctx_set_bucket_pool(sieve_ctx *ctx, size_t bytes)
{
    sieve_big_destroy(ctx->big_state);
    ctx->big_state = NULL;
    ctx->big_pool_bytes = bytes;
}

static int ensure_buf(sieve_ctx *ctx, size_t bytes)
{
    if (ctx->buf_bytes >= bytes) return 0;
    uint8_t *b = aligned_alloc(64, (bytes + 64 + 63) & ~(size_t)63);
    if (!b) return -ENOMEM;
    free(ctx->buf);
    ctx->buf = b;
    ctx->buf_bytes = bytes;
    return 0;
}

/* Cross off the multiples of p = 30q + residue[ri] from byte `off` while off < end. Returns the
 * offset of the first multiple at or past end; *wi follows. */
static inline uint64_t cross(uint8_t *buf, uint64_t off, uint64_t end, uint64_t q, unsigned ri,
                             unsigned *wi)
{
    const struct wheel_step *st = wheel_steps[ri];
    unsigned i = *wi;
    while (off < end) {
        buf[off] &= st[i].mask;
        off += q * st[i].dm + st[i].dc;
        i = (i + 1) & 7;
    }
    *wi = i;
    return off;
}

/* Small primes (many multiples per segment): the technique of primesieve's EratSmall. The 8
 * multiples p*(30j + M[i]) of one wheel cycle lie at bytes base + q*M[i] + floor(r*M[i]/30),
 * base advancing by p bytes per cycle; with r fixed (one switch case per residue) the 8 masks
 * are constants and the offsets loop-invariant, so a cycle is 8 and-to-memory instructions. */
#define SM_OFF(R, i) (q * WHEEL_M(i) + (uint64_t)(WHEEL_M(R) * WHEEL_M(i)) / 30)
#define SM_MASK(R, i) ((uint8_t) ~(1u << WHEEL_BIT((WHEEL_M(R) * WHEEL_M(i)) % 30)))
#define SM_CASE(R)                                                                                 \
    case R: {                                                                                      \
        const uint64_t o[8] = {SM_OFF(R, 0), SM_OFF(R, 1), SM_OFF(R, 2), SM_OFF(R, 3),             \
                               SM_OFF(R, 4), SM_OFF(R, 5), SM_OFF(R, 6), SM_OFF(R, 7)};            \
        uint64_t base = sp->off - o[i];                                                            \
        for (; i < 8; i++) { /* finish the current cycle */                                        \
            if (base + o[i] >= end) goto save_##R;                                                 \
            buf[base + o[i]] &= wheel_steps[R][i].mask;                                            \
        }                                                                                          \
        base += p;                                                                                 \
        for (; base + o[7] < end; base += p) {                                                     \
            uint8_t *c = buf + base;                                                               \
            c[o[0]] &= SM_MASK(R, 0);                                                              \
            c[o[1]] &= SM_MASK(R, 1);                                                              \
            c[o[2]] &= SM_MASK(R, 2);                                                              \
            c[o[3]] &= SM_MASK(R, 3);                                                              \
            c[o[4]] &= SM_MASK(R, 4);                                                              \
            c[o[5]] &= SM_MASK(R, 5);                                                              \
            c[o[6]] &= SM_MASK(R, 6);                                                              \
            c[o[7]] &= SM_MASK(R, 7);                                                              \
        }                                                                                          \
        for (i = 0; base + o[i] < end; i++) /* o[7] >= end: stops by i = 7 */                      \
            buf[base + o[i]] &= wheel_steps[R][i].mask;                                            \
        save_##R : sp->off = base + o[i];                                                          \
        sp->wi = (uint8_t)i;                                                                       \
        return;                                                                                    \
    }

/* Cross off the multiples of a small prime in buf[... end); the prime's next multiple is >= the
 * segment start (it was left there by the previous segment). */
static inline void cross_small(uint8_t *buf, uint64_t end, struct sprime *sp)
{
    const uint64_t q = sp->q;
    const uint64_t p = 30 * q + wheel_residue[sp->ri];
    unsigned i = sp->wi;
    switch (sp->ri) {
        SM_CASE(0)
        SM_CASE(1)
        SM_CASE(2)
        SM_CASE(3)
        SM_CASE(4)
        SM_CASE(5)
        SM_CASE(6)
        SM_CASE(7)
    }
}

enum mode { MODE_COUNT, MODE_EMIT, MODE_BITMAP };

struct job {
    enum mode mode;
    uint64_t lo, hi; /* the numbers asked for (COUNT, EMIT) */
    uint64_t B;      /* first number of byte 0: a multiple of 30 */
    uint64_t nbytes; /* bytes of the range, from B */
    sieve_emit_fn emit;
    void *arg;
    uint8_t *out;    /* MODE_BITMAP destination, nbytes */
    uint64_t *batch; /* MODE_EMIT: ctx->batch, batch_n used */
    const atomic_int *cancel;
    uint64_t count; /* primes counted or emitted */
    size_t batch_n;
    uint64_t segments;
};

static inline bool cancelled(const atomic_int *c)
{
    return c && atomic_load_explicit(c, memory_order_relaxed) != 0;
}

/* Load the small and medium sieving primes (PRESIEVE_LAST_PRIME, min(sq, big_min)] with their
 * first multiples in the range. */
static int load_sprimes(sieve_ctx *ctx, const struct stable *t, struct job *jb, uint64_t sq)
{
    uint64_t last = sq < ctx->big_min ? sq : ctx->big_min;
    ctx->sp_n = 0;
    ctx->sp_small = 0;
    ctx->sp_tiny = 0;
    if (last <= PRESIEVE_LAST_PRIME) return 0;
    struct stable_iter it;
    stable_iter_init(&it, t, PRESIEVE_LAST_PRIME + 1);
    uint64_t hi = jb->B + (jb->nbytes - 1) * 30 + 29 < jb->B ? UINT64_MAX
                                                             : jb->B + (jb->nbytes - 1) * 30 + 29;
    for (uint64_t p; (p = stable_iter_next(&it)) != 0 && p <= last;) {
        uint64_t off;
        unsigned wi;
        if (!wheel_first_multiple(p, jb->B, hi, &off, &wi)) continue;
        if (ctx->sp_n == ctx->sp_cap) {
            size_t ncap = ctx->sp_cap ? 2 * ctx->sp_cap : 1024;
            struct sprime *n = realloc(ctx->sp, ncap * sizeof *n);
            if (!n) return -ENOMEM;
            ctx->sp = n;
            ctx->sp_cap = ncap;
        }
        struct sprime *s = &ctx->sp[ctx->sp_n++];
        s->off = off;
        s->q = (uint32_t)(p / 30);
        s->ri = (uint8_t)wheel_bit_of[p % 30];
        s->wi = (uint8_t)wi;
        if (p < ctx->small_cur) ctx->sp_small = ctx->sp_n;
        if (p < ctx->tiny_max) ctx->sp_tiny = ctx->sp_n;
    }
    return 0;
}

/* Order sp[from … to) by residue class, in place (American flag sort: 8 buckets, each element
 * swapped straight to its bucket). cross_small switches on the class, so runs of one class keep
 * that jump predicted: [0, 1e10] took 1.087 s unsorted, 1.042 s sorted. The order of crossing
 * is free. */
static void sort_by_residue(struct sprime *sp, size_t from, size_t to)
{
    size_t next[8] = {0}, end[8];
    for (size_t k = from; k < to; k++)
        next[sp[k].ri]++;
    for (size_t r = 0, at = from; r < 8; r++) {
        at += next[r];
        end[r] = at;
        next[r] = at - next[r];
    }
    for (unsigned r = 0; r < 8; r++)
        while (next[r] < end[r]) {
            unsigned c = sp[next[r]].ri;
            if (c == r) {
                next[r]++;
                continue;
            }
            struct sprime t = sp[next[c]]; /* c's slot holds something not yet placed */
            sp[next[c]++] = sp[next[r]];
            sp[next[r]] = t;
        }
}

static int flush_batch(struct job *jb)
{
    if (jb->batch_n == 0) return 0;
    size_t n = jb->batch_n;
    jb->batch_n = 0;
    jb->count += n;
    return jb->emit(jb->arg, jb->batch, n);
}

/* Hand out the primes of a finished window (bits set in buf[0 … wlen)) numbered from W0. */
static int emit_window(sieve_ctx *ctx, struct job *jb, uint64_t W0, size_t wlen)
{
    const uint8_t *buf = ctx->buf;
    for (size_t w = 0; w < wlen; w += 8) {
        uint64_t bits;
        memcpy(&bits, buf + w, 8);
        if (!bits) continue;
        /* a word holds at most 64 primes: make room once per word, not once per prime */
        if (jb->batch_n > BATCH_CAP - 64) {
            int rc = flush_batch(jb);
            if (rc) return rc;
        }
        uint64_t *out = jb->batch + jb->batch_n;
        const uint64_t base = W0 + 30 * (uint64_t)w;
        size_t k = 0;
        for (; bits; bits &= bits - 1) {
            unsigned b = (unsigned)__builtin_ctzll(bits);
            out[k++] = base + 30 * (uint64_t)(b / 8) + wheel_residue[b % 8];
        }
        jb->batch_n += k;
    }
    return 0;
}

/* The bytes past wlen up to the next word are zero (deliver_window). */
static uint64_t count_window(const uint8_t *buf, size_t wlen)
{
    return sieve_kernels()->popcount(buf, (wlen + 7) & ~(size_t)7);
}

/* Hybrid mode: clear the survivors of a partial sieve that are not prime. */
static int verify_window(sieve_ctx *ctx, uint64_t W0, size_t wlen, const atomic_int *cancel)
{
    uint8_t *buf = ctx->buf;
    for (size_t w = 0; w < wlen; w++) {
        if ((w & 4095) == 0 && cancelled(cancel)) return -ECANCELED;
        for (unsigned bits = buf[w]; bits; bits &= bits - 1) {
            unsigned b = (unsigned)__builtin_ctz(bits);
            if (!primality_is_prime(W0 + 30 * (uint64_t)w + wheel_residue[b]))
                buf[w] &= (uint8_t) ~(1u << b);
        }
    }
    return 0;
}

/* Medium primes: a few multiples per segment each, generic wheel stepping. */
__attribute__((noinline)) static void sieve_medium(sieve_ctx *ctx, uint64_t end)
{
    uint8_t *buf = ctx->buf;
    for (size_t k = ctx->sp_small; k < ctx->sp_n; k++) {
        struct sprime *p = &ctx->sp[k];
        unsigned wi = p->wi;
        p->off = cross(buf, p->off, end, p->q, p->ri, &wi);
        p->wi = (uint8_t)wi;
    }
}

/* What run() decided for a job: the top number, the sieving limit, and the window size. */
struct run_setup {
    uint64_t last_num;
    uint64_t sq; /* sieving primes up to sq (HYBRID_LIMIT when verify) */
    bool verify; /* hybrid: survivors proved by Miller–Rabin */
    bool big;    /* sq > big_min: windows of win_bytes, big primes by sieve_big */
    size_t wbytes;
    const struct stable *t;
};

/* The sieving-prime table's filler (sieve_table.h): the table owns no sieve, the generator lends
 * it this one. Cold, once per 15.7M-number block; a ctx per block costs a 512 KB buffer and
 * ~6500 first multiples, nothing next to the block's sieving. */
static int fill_table_block(uint64_t byte_lo, size_t nbytes, uint8_t *out)
{
    sieve_ctx *c = sieve_ctx_create(0);
    if (!c) return -ENOMEM;
    int rc = sieve_bitmap(c, byte_lo, nbytes, out);
    sieve_ctx_destroy(c);
    return rc;
}

/* Choose the sieving limit and the window, get the table and the buffers, load the small and
 * medium primes. 0, -ENOMEM or -ECANCELED. */
static int run_setup(sieve_ctx *ctx, struct job *jb, struct run_setup *rs)
{
    rs->last_num = jb->mode == MODE_BITMAP ? jb->B + 30 * jb->nbytes - 1 : jb->hi;
    rs->sq = primality_isqrt(rs->last_num);
    /* Hybrid: a window narrow next to π(√hi) costs more in sieving-prime setup (one division
     * per prime up to √hi) than proving its few survivors. Then sieve only by the primes up to
     * HYBRID_LIMIT and let Miller–Rabin decide the rest. Measured here: the hybrid costs ~37 ns
     * per number, the full sieve ~3.5 ns per sieving prime (setup) + ~3 ns per number, so they
     * break even near width = π(√hi)/10 (2e7 near 2^64, 5e6 at 1e18); [2^64-1e6, 2^64-1] takes
     * 0.04 s instead of 0.75 s. */
    rs->verify = false;
    if (jb->mode != MODE_BITMAP && ctx->hybrid && jb->hi - jb->lo < sieve_hybrid_width(jb->hi)) {
        rs->verify = true;
        rs->sq = HYBRID_LIMIT;
    }
    if (!(rs->t = stable_acquire(rs->sq, fill_table_block, jb->cancel)))
        return errno == ECANCELED ? -ECANCELED : -ENOMEM;
    rs->big = rs->sq > ctx->big_min;
    ctx->seg_cur = rs->big ? ctx->seg_bytes : ctx->seg_low;
    ctx->small_cur = rs->big ? ctx->small_max : ctx->seg_cur / 4;
    size_t wbytes = rs->big ? ctx->win_bytes : ctx->seg_cur;
    if (rs->big) {
        /* equal windows: each costs one pass over the big primes, so 1.5e9 numbers (50 MB)
         * take 2 windows of 25 MB rather than 32 + 18 */
        uint64_t nwin = (jb->nbytes + wbytes - 1) / wbytes;
        uint64_t per = (jb->nbytes + nwin - 1) / nwin;
        wbytes = (size_t)((per + ctx->seg_bytes - 1) / ctx->seg_bytes * ctx->seg_bytes);
    }
    if (wbytes > jb->nbytes) wbytes = (size_t)((jb->nbytes + 63) & ~(uint64_t)63);
    rs->wbytes = wbytes;
    int rc = ensure_buf(ctx, wbytes);
    if (rc) return rc;
    if (rs->big && !ctx->big_state &&
        !(ctx->big_state = sieve_big_create(ctx->seg_bytes, ctx->win_bytes, ctx->big_pool_bytes)))
        return -ENOMEM;
    if ((rc = load_sprimes(ctx, rs->t, jb, rs->sq)) != 0) return rc;
    sort_by_residue(ctx->sp, 0, ctx->sp_tiny);
    sort_by_residue(ctx->sp, ctx->sp_tiny, ctx->sp_small);
    return 0;
}

/* Window bytes [wstart, wstart + wlen): presieve, then small and medium primes, per segment. */
static int sieve_segments(sieve_ctx *ctx, struct job *jb, uint64_t wstart, size_t wlen)
{
    uint8_t *buf = ctx->buf;
    const size_t S = ctx->seg_cur;
    const uint64_t byte0 = jb->B / 30;
    for (size_t s = 0; s < wlen; s += S) {
        if (cancelled(jb->cancel)) return -ECANCELED;
        size_t slen = wlen - s < S ? wlen - s : S;
        presieve_fill(buf + s, byte0 + wstart + s, slen);
        uint64_t end = s + slen;
        /* The smallest primes hit so often that they run in L1-sized pieces (the way
         * primesieve's EratSmall does); the rest of the small ones sweep the segment. */
        for (size_t sub = s; sub < end; sub += ctx->l1_bytes) {
            uint64_t subend = end - sub < ctx->l1_bytes ? end : sub + ctx->l1_bytes;
            for (size_t k = 0; k < ctx->sp_tiny; k++)
                cross_small(buf, subend, &ctx->sp[k]);
        }
        for (size_t k = ctx->sp_tiny; k < ctx->sp_small; k++)
            cross_small(buf, end, &ctx->sp[k]);
        sieve_medium(ctx, end);
        jb->segments++;
    }
    for (size_t k = 0; k < ctx->sp_n; k++)
        ctx->sp[k].off -= wlen;
    return 0;
}

/* A sieved window to the job: copied (BITMAP), or clipped to [lo, hi] and counted or emitted. */
static int deliver_window(sieve_ctx *ctx, struct job *jb, uint64_t wstart, size_t wlen)
{
    uint8_t *buf = ctx->buf;
    if (jb->mode == MODE_BITMAP) {
        memcpy(jb->out + wstart, buf, wlen);
        return 0;
    }
    /* Clip to [lo, hi] and zero the padding up to the next word. */
    if (wstart == 0)
        for (int b = 0; b < 8; b++)
            if (jb->B + wheel_residue[b] < jb->lo) buf[0] &= (uint8_t) ~(1u << b);
    if (wstart + wlen == jb->nbytes) {
        uint64_t rem = jb->hi - (jb->B + 30 * (jb->nbytes - 1));
        for (int b = 0; b < 8; b++)
            if (wheel_residue[b] > rem) buf[wlen - 1] &= (uint8_t) ~(1u << b);
    }
    memset(buf + wlen, 0, 8);
    if (jb->mode == MODE_COUNT) {
        jb->count += count_window(buf, wlen);
        return 0;
    }
    return emit_window(ctx, jb, jb->B + 30 * wstart, wlen);
}

/* The engine: sieve bytes [0, nbytes) from B window by window and hand each window on. */
static int run(sieve_ctx *ctx, struct job *jb)
{
    struct run_setup rs;
    int rc = run_setup(ctx, jb, &rs);
    if (rc) return rc;
    for (uint64_t wstart = 0; wstart < jb->nbytes; wstart += rs.wbytes) {
        size_t wlen = jb->nbytes - wstart < rs.wbytes ? (size_t)(jb->nbytes - wstart) : rs.wbytes;
        if ((rc = sieve_segments(ctx, jb, wstart, wlen)) != 0) return rc;
        uint64_t W0 = jb->B + 30 * wstart;
        uint64_t whi = (rs.last_num - W0) / 30 < wlen ? rs.last_num : W0 + 30 * (uint64_t)wlen - 1;
        if (rs.big) {
            uint64_t to = primality_isqrt(whi);
            if (to > rs.sq) to = rs.sq;
            rc = sieve_big_window(ctx->big_state, rs.t, ctx->big_min, to, W0, whi, ctx->buf, wlen,
                                  jb->cancel);
            if (rc) return rc;
        }
        if (rs.verify && (rc = verify_window(ctx, W0, wlen, jb->cancel)) != 0) return rc;
        if ((rc = deliver_window(ctx, jb, wstart, wlen)) != 0) return rc;
    }
    return 0;
}

/* numbers = hi - lo + 1, which wraps to 0 for [0, 2^64-1]: callers pass hi - lo and we saturate. */
static void flush_stats(const struct job *jb, uint64_t width_minus_1, uint64_t emitted)
{
    uint64_t numbers = width_minus_1 == UINT64_MAX ? UINT64_MAX : width_minus_1 + 1;
    atomic_fetch_add_explicit(&g_numbers, numbers, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_segments, jb->segments, memory_order_relaxed);
    if (emitted) atomic_fetch_add_explicit(&g_emitted, emitted, memory_order_relaxed);
}

static void job_range(struct job *jb, uint64_t lo, uint64_t hi)
{
    jb->lo = lo;
    jb->hi = hi;
    jb->B = lo - lo % 30;
    jb->nbytes = (hi - jb->B) / 30 + 1;
}

/* Number of the primes 2, 3, 5 in [lo, hi]: the wheel does not represent them. */
static unsigned tiny_primes(uint64_t lo, uint64_t hi, uint64_t out[3])
{
    static const uint64_t tiny[3] = {2, 3, 5};
    unsigned n = 0;
    for (int i = 0; i < 3; i++)
        if (tiny[i] >= lo && tiny[i] <= hi) out[n++] = tiny[i];
    return n;
}

int sieve_count(sieve_ctx *ctx, uint64_t lo, uint64_t hi, uint64_t *count, const atomic_int *cancel)
{
    *count = 0;
    if (lo > hi) return 0;
    uint64_t tiny[3];
    struct job jb = {.mode = MODE_COUNT, .cancel = cancel};
    job_range(&jb, lo, hi);
    int rc = run(ctx, &jb);
    flush_stats(&jb, hi - lo, 0);
    if (rc) return rc;
    *count = jb.count + tiny_primes(lo, hi, tiny);
    return 0;
}

int sieve_foreach(sieve_ctx *ctx, uint64_t lo, uint64_t hi, sieve_emit_fn emit, void *arg,
                  const atomic_int *cancel)
{
    if (lo > hi) return 0;
    uint64_t tiny[3];
    unsigned nt = tiny_primes(lo, hi, tiny);
    int rc = 0;
    struct job jb = {.mode = MODE_EMIT, .emit = emit, .arg = arg, .cancel = cancel};
    if (nt && (rc = emit(arg, tiny, nt)) != 0) goto out;
    jb.count = nt;
    if (hi < 7) goto out;
    job_range(&jb, lo, hi);
    jb.batch = ctx->batch;
    rc = run(ctx, &jb);
    if (rc == 0) rc = flush_batch(&jb);
out:
    flush_stats(&jb, hi - lo, jb.count);
    return rc;
}

int sieve_bitmap(sieve_ctx *ctx, uint64_t byte_lo, size_t nbytes, uint8_t *out)
{
    if (nbytes == 0) return 0;
    struct job jb = {.mode = MODE_BITMAP, .B = 30 * byte_lo, .nbytes = nbytes, .out = out};
    int rc = run(ctx, &jb);
    flush_stats(&jb, 30 * (uint64_t)nbytes - 1, 0);
    return rc;
}

uint64_t sieve_chunk_width(uint64_t lo, uint64_t hi)
{
    /* Mirrors run(): with big primes every window costs a pass over all of them (~0.5 s at
     * 1e18, ~1.5 s near 2^64), so a chunk is one full window (32 MiB = 1e9 numbers) and never
     * less. Without them, per-chunk setup is a few thousand divisions: chunks of width/32, kept
     * within [1e8, 1e9] so that 2+ threads share the work evenly (measured: width/8 left one of
     * two workers idle for the last chunk, 1.64x on [0,1e10]; width/32 gives 1.84x) and
     * cancellation stays prompt. */
    size_t seg = default_seg_bytes();
    uint64_t win = (uint64_t)30 * (WIN_BYTES_DEFAULT / seg * seg);
    if (primality_isqrt(hi) > (uint64_t)8 * seg) return win;
    uint64_t unit = (uint64_t)30 * seg;
    uint64_t w = (lo > hi ? 0 : hi - lo) / 32;
    if (w < 100000000) w = 100000000;
    if (w > 1000000000) w = 1000000000;
    return (w + unit - 1) / unit * unit;
}

uint64_t sieve_hybrid_width(uint64_t hi)
{
    uint64_t sq = primality_isqrt(hi);
    return sq > HYBRID_LIMIT ? (uint64_t)((double)sq / log((double)sq) / 10) : 0;
}

void sieve_stats_get(struct sieve_stats *out)
{
    out->numbers_sieved = atomic_load_explicit(&g_numbers, memory_order_relaxed);
    out->segments = atomic_load_explicit(&g_segments, memory_order_relaxed);
    out->primes_emitted = atomic_load_explicit(&g_emitted, memory_order_relaxed);
    stable_stats(&out->table_bytes, &out->table_limit);
}

int sieve_warm(void)
{
    return stable_acquire(PRESIEVE_LAST_PRIME + 1, fill_table_block, NULL) ? 0 : -ENOMEM;
}

void sieve_shutdown(void)
{
    stable_shutdown();
}
