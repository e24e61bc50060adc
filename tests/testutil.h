/* testutil.h — helpers the Check tests share: a reproducible random generator and the oracle
 * CLIs (primesieve, primecount) run through popen. Header-only (static inline), so a test that
 * uses none of it pays nothing. Failures go through ck_assert, so call these from inside tests. */
#ifndef PRIMED_TESTUTIL_H
#define PRIMED_TESTUTIL_H

#include <check.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* xorshift64 (Marsaglia): deterministic from its seed, so a failing case can be replayed. The
 * state must start non-zero. */
static inline uint64_t xorshift64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

/* Run an oracle command that prints one number; the test fails unless it printed one and exited 0.
 */
static inline uint64_t oracle_u64(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline uint64_t oracle_u64(const char *fmt, ...)
{
    char cmd[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *f = popen(cmd, "r");
    ck_assert_msg(f != NULL, "popen %s", cmd);
    unsigned long long v = 0;
    int n = fscanf(f, "%llu", &v);
    int st = pclose(f);
    ck_assert_msg(n == 1 && st == 0, "oracle failed: %s", cmd);
    return v;
}

/* primesieve's listing of [lo, hi] in one call, malloc'd (caller frees); *n primes. */
static inline uint64_t *oracle_primes(uint64_t lo, uint64_t hi, size_t *n)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "primesieve %" PRIu64 " %" PRIu64 " -p", lo, hi);
    FILE *f = popen(cmd, "r");
    ck_assert_msg(f != NULL, "popen %s", cmd);
    size_t cap = 1024;
    uint64_t *v = malloc(cap * sizeof *v);
    ck_assert_ptr_nonnull(v);
    unsigned long long p;
    *n = 0;
    while (fscanf(f, "%llu", &p) == 1) {
        if (*n == cap) {
            v = realloc(v, (cap *= 2) * sizeof *v);
            ck_assert_ptr_nonnull(v);
        }
        v[(*n)++] = p;
    }
    ck_assert_msg(pclose(f) == 0, "oracle failed: %s", cmd);
    return v;
}

#endif
