/* pi_c1.c — the first part of Gourdon's C: easy special leaves with a squarefree m (prime or
 * not) for small p_b, φ(x / (p_b m), b − 1) = π(x / (p_b m)) − b + 2 from the π table, by ranges
 * of b. primecount's C1.
 *
 * b runs over (max(c, π((x / zg)^(1/3))), π(√zg)]; the leaves have lpf(m) > p_b, P+(m) <= y and
 * max(x / p_b³, zg / p_b) < m <= min(x / p_b², zg), so that p_b <= n = x / (p_b m) < p_b² <= zg
 * (the π table reaches zg). Reads only the plan's tables; a chunk's whole result is its sum.
 */
#include <errno.h>

#include "pi_int.h"

int pi_c1_run(const pi_plan *pl, struct chunk *ck, const atomic_int *cancel)
{
    i128 sum = 0;
    for (uint64_t b = ck->lo; b < ck->hi; b++) {
        if (pi_cancelled(cancel)) return -ECANCELED;
        uint64_t p = pl->primes[b], xp = pl->x / p, xpp = xp / p, xppp = xpp / p;
        uint64_t mhi = xpp < pl->mmax ? xpp : pl->mmax, mlo = pl->mmax / p;
        if (mlo < xppp) mlo = xppp;
        if (mlo < p) mlo = p;
        if (mhi > 0 && !(mhi & 1)) mhi--; /* every m here is odd: its factors exceed p >= 17 */
        i128 s = 0;
        for (uint64_t m = mhi; m > mlo; m -= 2) {
            int32_t v = pl->mulpf[m >> 1];
            if ((uint64_t)(v < 0 ? -(int64_t)v : v) <= p) continue; /* μ = 0, P+ > y or lpf <= p */
            i128 phi = (i128)pi_tab(pl, xp / m) - (i128)b + 2;
            s += v > 0 ? -phi : phi; /* the leaf's sign is −μ(m) */
        }
        sum += s;
    }
    ck->sum = sum;
    return 0;
}
