/* test_sieve_kernels.c — every vector variant of the sieve's kernels this CPU can run, forced one
 * by one, against the portable variant (byte for byte), against trial division (the pre-sieve)
 * and against primesieve (whole counts). A CPU without AVX-512 runs the same tests on fewer
 * variants; the list it ran is printed. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "presieve.h"
#include "primed/sieve.h"
#include "sieve_kernels.h"
#include "testutil.h"
#include "wheel.h"

static uint64_t rng_state = 0x2545f4914f6cdd1du;
static uint64_t rnd(void)
{
    return xorshift64(&rng_state);
}

#define MAXN 20000

START_TEST(every_variant_ands_streams_like_the_portable_one)
{
    size_t nv;
    const struct sieve_kernels *v = sieve_kernels_all(&nv);
    static uint8_t src[SIEVE_KERNEL_STREAMS][MAXN + 64], want[MAXN + 64], got[MAXN + 64];
    for (int round = 0; round < 200; round++) {
        size_t n = round < 70 ? (size_t)round : (size_t)(rnd() % MAXN);
        const uint8_t *s[SIEVE_KERNEL_STREAMS];
        for (int k = 0; k < SIEVE_KERNEL_STREAMS; k++) {
            size_t mis = rnd() % 64;       /* any alignment */
            for (size_t i = 0; i < n; i++) /* mostly ones, as patterns are */
                src[k][mis + i] = (uint8_t) ~(rnd() & rnd() & rnd());
            s[k] = src[k] + mis;
        }
        memset(want, 0x5a, sizeof want);
        v[0].and_streams(want, s, n);
        for (size_t i = 0; i < n; i++) {
            uint8_t a = 0xff;
            for (int k = 0; k < SIEVE_KERNEL_STREAMS; k++)
                a &= s[k][i];
            ck_assert_uint_eq(want[i], a);
        }
        ck_assert_uint_eq(want[n], 0x5a); /* nothing written past n */
        for (size_t j = 1; j < nv; j++) {
            if (!v[j].supported()) continue;
            memset(got, 0x5a, sizeof got);
            v[j].and_streams(got, s, n);
            ck_assert_msg(memcmp(got, want, n + 1) == 0, "%s differs at n = %zu", v[j].name, n);
        }
    }
}
END_TEST

START_TEST(every_variant_popcounts_like_the_portable_one)
{
    size_t nv;
    const struct sieve_kernels *v = sieve_kernels_all(&nv);
    static uint8_t buf[MAXN + 64];
    for (int round = 0; round < 200; round++) {
        size_t n = (round < 40 ? (size_t)round : (size_t)(rnd() % MAXN)) & ~(size_t)7;
        size_t mis = rnd() % 64;
        for (size_t i = 0; i < n; i++)
            buf[mis + i] = (uint8_t)rnd();
        uint64_t want = 0;
        for (size_t i = 0; i < n; i++)
            want += (uint64_t)__builtin_popcount(buf[mis + i]);
        for (size_t j = 0; j < nv; j++)
            if (v[j].supported())
                ck_assert_msg(v[j].popcount(buf + mis, n) == want, "%s, n = %zu", v[j].name, n);
    }
}
END_TEST

/* wheel_first_multiple by its definition, in 128 bits: the least k >= max(⌈W0/p⌉, p) coprime to
 * 30; a hit when p·k - W0 <= span. */
static bool first_multiple_naive(uint64_t p, uint64_t W0, uint64_t span, uint32_t *ow)
{
    __uint128_t k = W0 / p + (W0 % p != 0);
    if (k < p) k = p;
    while (wheel_bit_of[(unsigned)(k % 30)] < 0)
        k++;
    __uint128_t d = (__uint128_t)p * k - W0;
    if (d > span) return false;
    *ow = (uint32_t)((uint64_t)d / 30 << 3 | (uint64_t)wheel_bit_of[(unsigned)(k % 30)]);
    return true;
}

/* A random odd p in [2^16, 2^32) coprime to 30, often an edge of that range. */
static uint32_t coprime30(void)
{
    static const uint32_t edge[] = {65537, 65539, 4294967291u, 4294967279u, 4294967231u};
    uint64_t p = rnd() % 4 == 0 ? edge[rnd() % 5] : 65536 + rnd() % (((uint64_t)1 << 32) - 65536);
    while (wheel_bit_of[p % 30] < 0 || p >= ((uint64_t)1 << 32))
        p = p + 1 >= ((uint64_t)1 << 32) ? 65537 : p + 1;
    return (uint32_t)p;
}

#define FM_BATCH 300
START_TEST(every_variant_finds_first_multiples_like_the_definition)
{
    size_t nv;
    const struct sieve_kernels *v = sieve_kernels_all(&nv);
    static uint32_t p[FM_BATCH], hit[FM_BATCH + 16], ow[FM_BATCH + 16], whit[FM_BATCH],
        wow[FM_BATCH];
    uint64_t hits = 0, misses = 0, tested = 0;
    for (int round = 0; round < 3000; round++) {
        size_t n = round < 40 ? (size_t)round : (size_t)(rnd() % FM_BATCH);
        /* windows at 0, below p^2, anywhere, and at the very top of the range */
        uint64_t span = rnd() % 8 == 0 ? ((uint64_t)1 << 30) - 1 : rnd() % ((uint64_t)1 << 30);
        uint64_t W0, p0 = coprime30();
        switch (round % 4) {
        case 0:
            W0 = rnd() % 3 == 0 ? 0 : rnd() % ((uint64_t)1 << 40);
            break;
        case 1:
            W0 = p0 * p0 - rnd() % ((uint64_t)1 << 32);
            break; /* primes near √W0 */
        case 2:    /* often a multiple of p0, which is in the batch: a quotient with no remainder */
            W0 = rnd() % 2 ? rnd() : 30 * p0 * (rnd() % (UINT64_MAX / 30 / p0));
            break;
        default:
            W0 = UINT64_MAX - span - rnd() % 1000;
            break;
        }
        if (W0 > UINT64_MAX - span) W0 = UINT64_MAX - span;
        W0 -= W0 % 30;
        size_t want = 0;
        for (size_t i = 0; i < n; i++) {
            p[i] = coprime30();
            if (round % 4 == 1) { /* p^2 just below or above W0: the first multiple is p^2 */
                uint64_t q = p0 + 30 * (rnd() % 2001) - 30 * 1000;
                p[i] = q >= 65536 && q < ((uint64_t)1 << 32) ? (uint32_t)q : (uint32_t)p0;
            }
            if (round % 4 == 2 && i % 5 == 0) p[i] = (uint32_t)p0;
            if (first_multiple_naive(p[i], W0, span, &wow[want])) whit[want++] = (uint32_t)i;
        }
        hits += want;
        misses += n - want;
        for (size_t j = 0; j < nv; j++) {
            if (!v[j].supported() || !v[j].first_multiples) continue; /* NULL: sieve_big's loop */
            tested++;
            for (size_t i = 0; i < FM_BATCH + 16; i++)
                hit[i] = ow[i] = 0xdeadbeef;
            size_t h = v[j].first_multiples(p, n, W0, span, hit, ow);
            ck_assert_msg(h == want, "%s: %zu hits, want %zu (W0 %" PRIu64 ")", v[j].name, h, want,
                          W0);
            for (size_t i = 0; i < h; i++)
                ck_assert_msg(hit[i] == whit[i] && ow[i] == wow[i],
                              "%s: p %u W0 %" PRIu64 " span %" PRIu64 ": ow %u want %u", v[j].name,
                              p[hit[i]], W0, span, ow[i], wow[i]);
            for (size_t i = n + 7; i < FM_BATCH + 16; i++) /* room for n + 7, no more */
                ck_assert_msg(hit[i] == 0xdeadbeef && ow[i] == 0xdeadbeef, "%s wrote past n + 7",
                              v[j].name);
        }
    }
    ck_assert_uint_gt(hits, 1000); /* both outcomes were exercised */
    ck_assert_uint_gt(misses, 1000);
    if (!tested) fprintf(stderr, "sieve kernels: no first-multiples kernel on this CPU\n");
}
END_TEST

/* Whether the pre-sieve should have kept 30·b + r: no prime factor in 7 … 163 unless it is
 * that prime, and not 1. */
static bool presieve_keeps(uint64_t x)
{
    if (x == 1) return false;
    for (uint64_t p = 7; p <= PRESIEVE_LAST_PRIME; p += 2)
        if (p % 3 && p % 5 && x % p == 0) return x == p; /* the least such p is prime */
    return true;
}

START_TEST(presieve_matches_trial_division_in_every_variant)
{
    size_t nv;
    const struct sieve_kernels *v = sieve_kernels_all(&nv);
    static uint8_t buf[MAXN];
    for (size_t j = 0; j < nv; j++) {
        if (!v[j].supported()) continue;
        ck_assert_int_eq(sieve_isa_select(v[j].name), 0);
        ck_assert_str_eq(sieve_isa_name(), v[j].name);
        for (int round = 0; round < 40; round++) {
            uint64_t b = round < 8 ? (uint64_t)round : rnd() >> (rnd() % 64);
            if (b > UINT64_MAX / 30 - MAXN) b = UINT64_MAX / 30 - MAXN;
            /* a few long fills cross the fill's 8 KiB runs; the rest are short */
            size_t n = round < 8 ? 1 + (size_t)round * 3
                                 : 1 + (size_t)(rnd() % (round % 8 == 0 ? MAXN - 1 : 3000));
            presieve_fill(buf, b, n);
            for (size_t i = 0; i < n; i++)
                for (unsigned bit = 0; bit < 8; bit++) {
                    uint64_t x = 30 * (b + i) + wheel_residue[bit];
                    ck_assert_msg(((buf[i] >> bit) & 1) == presieve_keeps(x),
                                  "%s: %" PRIu64 " (byte %" PRIu64 " + %zu of %zu)", v[j].name, x,
                                  b, i, n);
                }
        }
    }
    ck_assert_int_eq(sieve_isa_select(NULL), 0);
}
END_TEST

START_TEST(every_variant_counts_like_primesieve)
{
    sieve_ctx *ctx = sieve_ctx_create(0);
    sieve_ctx *tiny = sieve_ctx_create(1024);
    uint64_t lo[8], hi[8], want[8];
    for (int i = 0; i < 8; i++) { /* near 2^60 the oracle takes ~1 s: two windows there */
        int bits = i == 0 ? 0 : i < 3 ? 34 : i < 6 ? 45 : 60 + (int)(rnd() % 4);
        lo[i] = bits ? rnd() >> (64 - bits) : 0;
        hi[i] = lo[i] + (i == 0 ? 200000000 : i % 2 ? 3000000 : 40000000);
        want[i] = oracle_u64("primesieve %" PRIu64 " %" PRIu64 " -c -q", lo[i], hi[i]);
    }
    size_t nv = 0;
    while (sieve_isa_variant(nv))
        nv++;
    ck_assert_uint_ge(nv, 1);
    ck_assert_str_eq(sieve_isa_variant(0), "portable");
    for (size_t j = 0; j < nv; j++) {
        if (sieve_isa_select(sieve_isa_variant(j)) != 0) {
            fprintf(stderr, "sieve kernels: %s not supported here, skipped\n",
                    sieve_isa_variant(j));
            continue;
        }
        fprintf(stderr, "sieve kernels: testing %s\n", sieve_isa_name());
        for (int i = 0; i < 8; i++) {
            uint64_t c = 0;
            ck_assert_int_eq(sieve_count(ctx, lo[i], hi[i], &c, NULL), 0);
            ck_assert_msg(c == want[i], "%s [%" PRIu64 ", %" PRIu64 "]: %" PRIu64 " != %" PRIu64,
                          sieve_isa_name(), lo[i], hi[i], c, want[i]);
            if (hi[i] - lo[i] > 5000000) continue;
            ck_assert_int_eq(sieve_count(tiny, lo[i], hi[i], &c, NULL), 0);
            ck_assert_msg(c == want[i], "%s seg 1024 [%" PRIu64 ", %" PRIu64 "]", sieve_isa_name(),
                          lo[i], hi[i]);
        }
    }
    ck_assert_int_eq(sieve_isa_select("no-such-isa"), -ENOTSUP);
    ck_assert_int_eq(sieve_isa_select(NULL), 0);
    ck_assert_str_eq(sieve_isa_name(), sieve_kernels()->name);
    sieve_ctx_destroy(tiny);
    sieve_ctx_destroy(ctx);
}
END_TEST

static Suite *kernels_suite(void)
{
    Suite *s = suite_create("sieve_kernels");
    bool own_timeout = getenv("CK_DEFAULT_TIMEOUT") == NULL;
#define ADD(fn)                                                                                    \
    do {                                                                                           \
        TCase *tc = tcase_create(#fn);                                                             \
        if (own_timeout) tcase_set_timeout(tc, 300);                                               \
        tcase_add_test(tc, fn);                                                                    \
        suite_add_tcase(s, tc);                                                                    \
    } while (0)
    ADD(every_variant_ands_streams_like_the_portable_one);
    ADD(every_variant_popcounts_like_the_portable_one);
    ADD(every_variant_finds_first_multiples_like_the_definition);
    ADD(presieve_matches_trial_division_in_every_variant);
    ADD(every_variant_counts_like_primesieve);
    return s;
}

PRIMED_CHECK_MAIN(kernels_suite)
