/* sieve_nth.c — the k-th prime: estimate x with π(x) ≈ k, find π(x) (Deléglise–Rivat, pi.c,
 * for every x), sieve the difference.
 *
 * The estimate inverts R(x) ≈ li(x) - li(√x)/2 (first two terms of Riemann's R) by Newton's
 * method in long double; its error is O(√x / log x) primes, so the final sieve covers a few
 * million numbers even for k = 1e10. π(x) is the caller's (sieve_nth asks pi_count on the
 * calling thread; the service runs a pi_plan's chunks in parallel) — this file only estimates
 * and finishes. Its own memory is one sieve_ctx call at a time (plus pi_count's budgeted tables).
 */
#include <errno.h>
#include <math.h>

#include "primed/pi.h"
#include "primed/sieve.h"

#define PI_2_64 425656284035217743u /* π(2^64 - 1) */

/* Logarithmic integral by Ramanujan's series (x >= 2). */
static long double li(long double x)
{
    const long double gamma = 0.57721566490153286060651209L;
    long double lx = logl(x), sum = 0, term = 1, inner = 0;
    for (int n = 1; n < 400; n++) {
        term *= lx / n; /* (ln x)^n / n! */
        if (((n - 1) & 1) == 0) inner += 1.0L / (2 * ((n - 1) / 2) + 1);
        long double t = term / ldexpl(1.0L, n - 1) * inner;
        sum += (n & 1) ? t : -t;
        if (n > 2 * lx && fabsl(t) < 1e-30L * fabsl(sum)) break;
    }
    return gamma + logl(lx) + sqrtl(x) * sum;
}

static long double approx_pi(long double x)
{
    return li(x) - 0.5L * li(sqrtl(x));
}

uint64_t sieve_nth_estimate(uint64_t k)
{
    if (k < 20) /* the series is poor near 2; any x is correct, this one is close */
        return 4 * k;
    long double kk = (long double)k, lk = logl(kk);
    long double x = kk * (lk + logl(lk) - 1);
    for (int i = 0; i < 50; i++) {
        long double nx = x - (approx_pi(x) - kk) * logl(x);
        if (nx < 3) nx = 3;
        if (fabsl(nx - x) < 0.5L) {
            x = nx;
            break;
        }
        x = nx;
    }
    if (x >= 18446744073709551615.0L) return UINT64_MAX;
    return (uint64_t)x;
}

struct pick {
    uint64_t left; /* primes still to skip, 1-based: the left-th prime seen is the answer */
    uint64_t prime;
};

static int pick_cb(void *arg, const uint64_t *primes, size_t n)
{
    struct pick *pk = arg;
    if (pk->left > n) {
        pk->left -= n;
        return 0;
    }
    pk->prime = primes[pk->left - 1];
    return 1;
}

/* The idx-th prime (1-based) of [a, b], which holds at least idx primes. */
static int locate(sieve_ctx *ctx, uint64_t a, uint64_t b, uint64_t idx, uint64_t *prime,
                  const atomic_int *cancel)
{
    struct pick pk = {idx, 0};
    int rc = sieve_foreach(ctx, a, b, pick_cb, &pk, cancel);
    if (rc == 1) {
        *prime = pk.prime;
        return 0;
    }
    return rc < 0 ? rc : -EINVAL; /* 0: fewer primes than counted, i.e. a wrong pi_x */
}

/* Width of a step covering about `need` primes near x, bounded so that one step is one
 * cancellable, memory-bounded sieve call of reasonable length. */
static uint64_t step_width(uint64_t need, uint64_t x)
{
    double lx = log((double)x + 16);
    double w = (double)need * lx * 1.1 + 10000;
    if (w > 2e9) w = 2e9;
    return (uint64_t)w;
}

int sieve_nth_finish(sieve_ctx *ctx, uint64_t x, uint64_t pi_x, uint64_t k, uint64_t *prime,
                     const atomic_int *cancel)
{
    if (k == 0) return -EINVAL;
    if (k > PI_2_64) return -ERANGE;
    int rc;
    if (pi_x < k) {
        uint64_t need = k - pi_x;
        if (x == UINT64_MAX) return -ERANGE;
        uint64_t a = x + 1;
        for (;;) {
            uint64_t w = step_width(need, a);
            uint64_t b = UINT64_MAX - a < w ? UINT64_MAX : a + w;
            uint64_t c;
            if ((rc = sieve_count(ctx, a, b, &c, cancel)) != 0) return rc;
            if (c >= need) return locate(ctx, a, b, need, prime, cancel);
            need -= c;
            if (b == UINT64_MAX) return -ERANGE;
            a = b + 1;
        }
    }
    uint64_t need = pi_x - k + 1; /* counting down from x, the need-th prime */
    uint64_t b = x;
    for (;;) {
        uint64_t w = step_width(need, b);
        uint64_t a = b < w ? 0 : b - w;
        uint64_t c;
        if ((rc = sieve_count(ctx, a, b, &c, cancel)) != 0) return rc;
        if (c >= need) return locate(ctx, a, b, c - need + 1, prime, cancel);
        need -= c;
        if (a == 0) return -EINVAL; /* pi_x was larger than π(x) */
        b = a - 1;
    }
}

int sieve_nth(sieve_ctx *ctx, uint64_t k, uint64_t *prime, const atomic_int *cancel)
{
    if (k == 0) return -EINVAL;
    if (k > PI_2_64) return -ERANGE;
    uint64_t x = sieve_nth_estimate(k), pi_x;
    int rc = pi_count(x, &pi_x, cancel);
    if (rc) return rc;
    return sieve_nth_finish(ctx, x, pi_x, k, prime, cancel);
}
