/* sieve_kernels.c — portable, AVX2 and AVX-512 variants of the sieve's vector loops, and the
 * run-time choice between them (sieve_kernels.h).
 *
 * and_streams runs as two passes of 8 streams each (the first stores, the second AND-s into what
 * the first stored): 8 pointers, dst and the index fit the 15 usable registers, 16 would not; the
 * presieve hands over at most 8 KiB per call, so the second pass re-reads dst from L1.
 * First multiples have no portable variant (NULL): sieve_big.c's one-at-a-time loop with a
 * 64-bit division is what it would be, and batching that loop only added stores ([1e18,
 * 1e18+1e9] 1.39 → 1.44 s).
 * Counting has no AVX2 variant: POPCNT over 64-bit words is 0.3 % of a count of [0, 1e10]
 * (gperftools profile, docs/sieve.md), so the AVX2 row keeps the portable loop; VPOPCNTDQ is
 * used where the CPU has it because it costs nothing to have.
 * Must never: run a variant the CPU lacks (sieve_isa_select refuses those).
 */
#include "sieve_kernels.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "primed/sieve.h"
#include "wheel.h" /* WHEEL_M, for the first multiples' step table */

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* One pass over 8 streams from byte i on: dst = AND of them (first) or dst &= AND of them. */
static size_t and8_tail(uint8_t *dst, const uint8_t *const s[8], size_t i, size_t n, bool first)
{
    for (; i < n; i++) {
        uint8_t v = s[0][i] & s[1][i] & s[2][i] & s[3][i] & s[4][i] & s[5][i] & s[6][i] & s[7][i];
        dst[i] = first ? v : (uint8_t)(dst[i] & v);
    }
    return n;
}

/* The body of a pass, for a vector type V of W bytes with loads LD, stores ST and AND op AND. */
#define AND8_PASS(V, W, LD, ST, AND)                                                               \
    do {                                                                                           \
        const uint8_t *a = s[0], *b = s[1], *c = s[2], *d = s[3], *e = s[4], *f = s[5], *g = s[6], \
                      *h = s[7];                                                                   \
        size_t i = 0;                                                                              \
        for (; i + (W) <= n; i += (W)) {                                                           \
            V v = AND(AND(AND(LD(a + i), LD(b + i)), AND(LD(c + i), LD(d + i))),                   \
                      AND(AND(LD(e + i), LD(f + i)), AND(LD(g + i), LD(h + i))));                  \
            if (!first) v = AND(v, LD(dst + i));                                                   \
            ST(dst + i, v);                                                                        \
        }                                                                                          \
        and8_tail(dst, s, i, n, first);                                                            \
    } while (0)

#define P_AND(x, y) ((x) & (y))
#define P_ST(p, v)                                                                                 \
    do {                                                                                           \
        uint64_t t_ = (v);                                                                         \
        memcpy((p), &t_, 8);                                                                       \
    } while (0)

static void and8_portable(uint8_t *dst, const uint8_t *const s[8], size_t n, bool first)
{
    AND8_PASS(uint64_t, 8, load64, P_ST, P_AND);
}

static void and_portable(uint8_t *dst, const uint8_t *const src[SIEVE_KERNEL_STREAMS], size_t n)
{
    and8_portable(dst, src, n, true);
    and8_portable(dst, src + 8, n, false);
}

static uint64_t popcount_portable(const uint8_t *buf, size_t n)
{
    uint64_t c = 0;
    for (size_t w = 0; w + 8 <= n; w += 8)
        c += (uint64_t)__builtin_popcountll(load64(buf + w));
    return c;
}

static bool always(void)
{
    return true;
}

#if defined(__x86_64__)
#define TARGET_AVX2 __attribute__((target("avx2")))
#define TARGET_AVX512 __attribute__((target("avx512f")))
#define TARGET_AVX512VP __attribute__((target("avx512f,avx512vpopcntdq")))
#define TARGET_AVX512DQ __attribute__((target("avx512f,avx512dq,avx512vl")))
#define LD256(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define ST256(p, v) _mm256_storeu_si256((__m256i *)(void *)(p), (v))
#define LD512(p) _mm512_loadu_si512((const void *)(p))
#define ST512(p, v) _mm512_storeu_si512((void *)(p), (v))

TARGET_AVX2 static void and8_avx2(uint8_t *dst, const uint8_t *const s[8], size_t n, bool first)
{
    AND8_PASS(__m256i, 32, LD256, ST256, _mm256_and_si256);
}

TARGET_AVX2 static void and_avx2(uint8_t *dst, const uint8_t *const src[SIEVE_KERNEL_STREAMS],
                                 size_t n)
{
    and8_avx2(dst, src, n, true);
    and8_avx2(dst, src + 8, n, false);
}

/* first_multiples for AVX2, 4 primes at a time, the same steps as first_multiples_avx512 below.
 * AVX2 has no 64-bit multiply and no 64-bit integer <-> double conversions; they are built from
 * what it has, for the sizes that occur here: every converted value is below 2^52 (2^52 + x is
 * exact as a double, its low bits are x), every product has one factor below 2^32. */
#define M52 0x4330000000000000LL /* the bits of 2^52 as a double */

TARGET_AVX2 static inline __m256d u52_to_pd(__m256i x)
{
    const __m256i m = _mm256_set1_epi64x(M52);
    return _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(x, m)), _mm256_castsi256_pd(m));
}

TARGET_AVX2 static inline __m256i pd_to_u52(__m256d y) /* 0 <= y < 2^52, truncated */
{
    const __m256i m = _mm256_set1_epi64x(M52);
    __m256d t = _mm256_round_pd(y, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    return _mm256_xor_si256(_mm256_castpd_si256(_mm256_add_pd(t, _mm256_castsi256_pd(m))), m);
}

TARGET_AVX2 static inline __m256i mul_u32(__m256i a, __m256i b) /* a * b mod 2^64, b < 2^32 */
{
    __m256i hi = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), b);
    return _mm256_add_epi64(_mm256_mul_epu32(a, b), _mm256_slli_epi64(hi, 32));
}

/* The first multiples' step table (both kernels): r = n mod 30 -> (the next residue coprime to 30,
 * from r on) - r | that residue's wheel index << 8 (wheel.h); 30 and 31 unused. */
#define NEXT_I(r)                                                                                  \
    ((r) <= 1    ? 0                                                                               \
     : (r) <= 7  ? 1                                                                               \
     : (r) <= 11 ? 2                                                                               \
     : (r) <= 13 ? 3                                                                               \
     : (r) <= 17 ? 4                                                                               \
     : (r) <= 19 ? 5                                                                               \
     : (r) <= 23 ? 6                                                                               \
                 : 7)
#define NEXT_T(r) ((uint32_t)(WHEEL_M(NEXT_I(r)) - (r)) | (uint32_t)NEXT_I(r) << 8)
static const uint32_t next_tab[32] = {
    NEXT_T(0),  NEXT_T(1),  NEXT_T(2),  NEXT_T(3),  NEXT_T(4),  NEXT_T(5),  NEXT_T(6),  NEXT_T(7),
    NEXT_T(8),  NEXT_T(9),  NEXT_T(10), NEXT_T(11), NEXT_T(12), NEXT_T(13), NEXT_T(14), NEXT_T(15),
    NEXT_T(16), NEXT_T(17), NEXT_T(18), NEXT_T(19), NEXT_T(20), NEXT_T(21), NEXT_T(22), NEXT_T(23),
    NEXT_T(24), NEXT_T(25), NEXT_T(26), NEXT_T(27), NEXT_T(28), NEXT_T(29), 0,          0};

static const int32_t pick4[16][8] = {/* a 4-bit mask -> the low dwords of its lanes, first */
                                     {0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0},
                                     {2, 0, 0, 0, 0, 0, 0, 0}, {0, 2, 0, 0, 0, 0, 0, 0},
                                     {4, 0, 0, 0, 0, 0, 0, 0}, {0, 4, 0, 0, 0, 0, 0, 0},
                                     {2, 4, 0, 0, 0, 0, 0, 0}, {0, 2, 4, 0, 0, 0, 0, 0},
                                     {6, 0, 0, 0, 0, 0, 0, 0}, {0, 6, 0, 0, 0, 0, 0, 0},
                                     {2, 6, 0, 0, 0, 0, 0, 0}, {0, 2, 6, 0, 0, 0, 0, 0},
                                     {4, 6, 0, 0, 0, 0, 0, 0}, {0, 4, 6, 0, 0, 0, 0, 0},
                                     {2, 4, 6, 0, 0, 0, 0, 0}, {0, 2, 4, 6, 0, 0, 0, 0}};

TARGET_AVX2 static size_t first_multiples_avx2(const uint32_t *p, size_t n, uint64_t W0,
                                               uint64_t span, uint32_t *hit, uint32_t *ow)
{
    const __m256i w0 = _mm256_set1_epi64x((long long)W0), zero = _mm256_setzero_si256();
    const __m256i ones = _mm256_set1_epi64x(-1), sign = _mm256_set1_epi64x(INT64_MIN);
    const __m256i spanx = _mm256_set1_epi64x((long long)(span ^ (uint64_t)INT64_MIN));
    const __m256i magic = _mm256_set1_epi64x(0x88888889), lo8 = _mm256_set1_epi64x(0xff);
    const __m256i lanes = _mm256_setr_epi64x(0, 1, 2, 3);
    const __m256d w0d = _mm256_set1_pd((double)W0), d30 = _mm256_set1_pd(30.0);
    size_t h = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t tail[4] = {65537, 65537, 65537, 65537};
        const uint32_t *src = p + i;
        if (n - i < 4) {
            memcpy(tail, p + i, (n - i) * sizeof *p);
            src = tail;
        }
        const __m256i vp =
            _mm256_cvtepu32_epi64(_mm_loadu_si128((const __m128i *)(const void *)src));
        __m256i q = pd_to_u52(_mm256_div_pd(w0d, u52_to_pd(vp)));
        __m256i r = _mm256_sub_epi64(w0, mul_u32(q, vp)); /* in (-p, 2p) */
        const __m256i neg = _mm256_cmpgt_epi64(zero, r);
        q = _mm256_add_epi64(q, neg);
        r = _mm256_add_epi64(r, _mm256_and_si256(neg, vp));
        const __m256i over = _mm256_cmpgt_epi64(r, _mm256_sub_epi64(vp, _mm256_set1_epi64x(1)));
        q = _mm256_sub_epi64(q, over);
        r = _mm256_sub_epi64(r, _mm256_and_si256(over, vp));
        __m256i k = _mm256_sub_epi64(q, _mm256_xor_si256(_mm256_cmpeq_epi64(r, zero), ones));
        k = _mm256_blendv_epi8(k, vp, _mm256_cmpgt_epi64(vp, k));
        const __m256i k30 = pd_to_u52(_mm256_div_pd(u52_to_pd(k), d30));
        const __m256i r30 = _mm256_sub_epi64(
            k, _mm256_sub_epi64(_mm256_slli_epi64(k30, 5), _mm256_slli_epi64(k30, 1)));
        const __m256i t =
            _mm256_cvtepu32_epi64(_mm256_i64gather_epi32((const int *)next_tab, r30, 4));
        k = _mm256_add_epi64(k, _mm256_and_si256(t, lo8));
        const __m256i d = _mm256_sub_epi64(mul_u32(k, vp), w0);
        __m256i got = _mm256_xor_si256(_mm256_cmpgt_epi64(_mm256_xor_si256(d, sign), spanx), ones);
        got = _mm256_and_si256(got,
                               _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(n - i)), lanes));
        const __m256i off = _mm256_srli_epi64(_mm256_mul_epu32(d, magic), 36);
        const __m256i o = _mm256_or_si256(_mm256_slli_epi64(off, 3), _mm256_srli_epi64(t, 8));
        const unsigned bits = (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(got));
        const __m256i idx = _mm256_loadu_si256((const __m256i *)(const void *)pick4[bits]);
        _mm_storeu_si128((__m128i *)(void *)(ow + h),
                         _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(o, idx)));
        _mm_storeu_si128(
            (__m128i *)(void *)(hit + h),
            _mm_add_epi32(_mm_srli_epi32(_mm256_castsi256_si128(idx), 1), _mm_set1_epi32((int)i)));
        h += (size_t)__builtin_popcount(bits);
    }
    return h;
}

TARGET_AVX512 static void and8_avx512(uint8_t *dst, const uint8_t *const s[8], size_t n, bool first)
{
    AND8_PASS(__m512i, 64, LD512, ST512, _mm512_and_si512);
}

TARGET_AVX512 static void and_avx512(uint8_t *dst, const uint8_t *const src[SIEVE_KERNEL_STREAMS],
                                     size_t n)
{
    and8_avx512(dst, src, n, true);
    and8_avx512(dst, src + 8, n, false);
}

TARGET_AVX512VP static uint64_t popcount_avx512vp(const uint8_t *buf, size_t n)
{
    __m512i acc = _mm512_setzero_si512();
    size_t w = 0;
    for (; w + 64 <= n; w += 64)
        acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(LD512(buf + w)));
    return (uint64_t)_mm512_reduce_add_epi64(acc) + popcount_portable(buf + w, n - w);
}

/* wheel_first_multiple for 8 primes at a time, without a 64-bit division: the quotient W0 / p
 * from doubles (p >= 2^16, so it is below 2^48 and the double is within 1/8 of it), corrected to
 * the exact one by the remainder computed in integers; n mod 30 the same way (n < 2^53 is exact
 * as a double, and a quotient that is a whole number divides exactly); the step to the next k
 * coprime to 30 and its wheel index from one 32-entry table. m - W0 never wraps (the first
 * multiple lies within 7p of max(W0, p^2), and p^2 + 7p < 2^64 for p < 2^32). */
TARGET_AVX512DQ static size_t first_multiples_avx512(const uint32_t *p, size_t n, uint64_t W0,
                                                     uint64_t span, uint32_t *hit, uint32_t *ow)
{
    const __m512i t0 = _mm512_loadu_si512(next_tab), t1 = _mm512_loadu_si512(next_tab + 16);
    const __m512i w0 = _mm512_set1_epi64((long long)W0), one = _mm512_set1_epi64(1);
    const __m512i thirty = _mm512_set1_epi64(30), spanv = _mm512_set1_epi64((long long)span);
    const __m512i magic = _mm512_set1_epi64(0x88888889); /* d / 30 = d * magic >> 36, d < 2^32 */
    const __m512i lo8 = _mm512_set1_epi64(0xff), zero = _mm512_setzero_si512();
    const __m512d w0d = _mm512_set1_pd((double)W0), d30 = _mm512_set1_pd(30.0);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    size_t h = 0;
    for (size_t i = 0; i < n; i += 8) {
        const __mmask8 in = n - i >= 8 ? 0xff : (__mmask8)((1u << (n - i)) - 1);
        const __m512i vp = _mm512_cvtepu32_epi64(_mm256_maskz_loadu_epi32(in, p + i));
        __m512i q = _mm512_cvttpd_epu64(_mm512_div_pd(w0d, _mm512_cvtepu64_pd(vp)));
        __m512i r = _mm512_sub_epi64(w0, _mm512_mullo_epi64(q, vp)); /* in (-p, 2p) */
        const __mmask8 neg = _mm512_cmplt_epi64_mask(r, zero);
        q = _mm512_mask_sub_epi64(q, neg, q, one);
        r = _mm512_mask_add_epi64(r, neg, r, vp);
        const __mmask8 over = _mm512_cmpge_epu64_mask(r, vp);
        q = _mm512_mask_add_epi64(q, over, q, one);
        r = _mm512_mask_sub_epi64(r, over, r, vp);
        __m512i k = _mm512_mask_add_epi64(q, _mm512_test_epi64_mask(r, r), q, one);
        k = _mm512_max_epu64(k, vp);
        const __m512i k30 = _mm512_cvttpd_epu64(_mm512_div_pd(_mm512_cvtepu64_pd(k), d30));
        const __m512i r30 = _mm512_sub_epi64(k, _mm512_mullo_epi64(k30, thirty));
        const __m512i t = _mm512_maskz_permutex2var_epi32(0x5555, t0, r30, t1);
        k = _mm512_add_epi64(k, _mm512_and_si512(t, lo8));
        const __m512i d = _mm512_sub_epi64(_mm512_mullo_epi64(vp, k), w0);
        const __mmask8 got = _mm512_mask_cmple_epu64_mask(in, d, spanv);
        const __m512i off = _mm512_srli_epi64(_mm512_mul_epu32(d, magic), 36);
        const __m512i o = _mm512_or_si512(_mm512_slli_epi64(off, 3), _mm512_srli_epi64(t, 8));
        /* compress in registers, store 8 lanes: a compress to memory is microcoded on Zen 4
         * (it was half of this function's time) */
        _mm256_storeu_si256((__m256i *)(void *)(ow + h),
                            _mm256_maskz_compress_epi32(got, _mm512_cvtepi64_epi32(o)));
        _mm256_storeu_si256(
            (__m256i *)(void *)(hit + h),
            _mm256_maskz_compress_epi32(got, _mm256_add_epi32(lane, _mm256_set1_epi32((int)i))));
        h += (size_t)__builtin_popcount(got);
    }
    return h;
}

static bool has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

/* The AVX-512 rows need DQ and VL too (first_multiples_avx512): every AVX-512 CPU since
 * Skylake-SP has them; one without (Knights Landing) gets the AVX2 row. */
static bool has_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl");
}

static bool has_avx512vp(void)
{
    return has_avx512() && __builtin_cpu_supports("avx512vpopcntdq");
}
#endif

/* Worst to best: the choice is the last supported row. */
static const struct sieve_kernels g_variants[] = {
    {"portable", always, and_portable, popcount_portable, NULL},
#if defined(__x86_64__)
    {"avx2", has_avx2, and_avx2, popcount_portable, first_multiples_avx2},
    {"avx512", has_avx512, and_avx512, popcount_portable, first_multiples_avx512},
    {"avx512vpopcnt", has_avx512vp, and_avx512, popcount_avx512vp, first_multiples_avx512},
#endif
};
#define NVARIANTS (sizeof g_variants / sizeof g_variants[0])

/* The variant in use. Written by the first caller (the best one; every racing writer stores the
 * same value) and by sieve_isa_select; read once per presieve run or counted window. Relaxed:
 * it points into a constant table, so there is nothing else to publish. */
static _Atomic(const struct sieve_kernels *) g_current;

static const struct sieve_kernels *best(void)
{
    size_t i = NVARIANTS;
    while (i > 1 && !g_variants[i - 1].supported())
        i--;
    return &g_variants[i - 1];
}

const struct sieve_kernels *sieve_kernels(void)
{
    const struct sieve_kernels *k = atomic_load_explicit(&g_current, memory_order_relaxed);
    if (!k) {
        k = best();
        atomic_store_explicit(&g_current, k, memory_order_relaxed);
    }
    return k;
}

const struct sieve_kernels *sieve_kernels_all(size_t *n)
{
    *n = NVARIANTS;
    return g_variants;
}

int sieve_isa_select(const char *name)
{
    const struct sieve_kernels *k = NULL;
    if (!name) k = best();
    for (size_t i = 0; !k && i < NVARIANTS; i++)
        if (strcmp(g_variants[i].name, name) == 0) k = &g_variants[i];
    if (!k || !k->supported()) return -ENOTSUP;
    atomic_store_explicit(&g_current, k, memory_order_relaxed);
    return 0;
}

const char *sieve_isa_name(void)
{
    return sieve_kernels()->name;
}

const char *sieve_isa_variant(size_t i)
{
    return i < NVARIANTS ? g_variants[i].name : NULL;
}
