/* pi_easy.c — the special leaves with p_b > √y that need no sieve: trivial (φ = 1) and easy
 * (φ = π(n) − b + 2 from the π table), by ranges of b. primecount's S2_trivial and S2_easy.
 *
 * Reads only the plan's tables; a chunk's whole result is its sum.
 */
#include <errno.h>

#include "pi_int.h"
#include "primed/primality.h"

/* b in [lo, hi), p_b > √y: leaves φ(x / (p_b q), b − 1) for primes p_b < q <= y whose n = x /
 * (p_b q) <= y: 1 when n < p_b, π(n) − b + 2 otherwise (n < p_b² as p_b² > y). Where q > √(x/p)
 * many consecutive q share π(n): the run ends at the q with n reaching the next prime, found
 * with one more π lookup. */
int pi_easy_run(const pi_plan *pl, struct chunk *ck, const atomic_int *cancel)
{
    const uint64_t x = pl->x, y = pl->y;
    i128 sum = 0;
    for (uint64_t b = ck->lo; b < ck->hi; b++) {
        if (pi_cancelled(cancel)) return -ECANCELED;
        uint64_t p = pl->primes[b], xp = x / p, xpp = xp / p;
        /* trivial: q in (max(p, x / p²), y] */
        uint64_t t = xpp > p ? xpp : p;
        if (t < y) sum += (i128)(pl->a - pi_tab(pl, t));
        /* easy: q in (max(p, xp / (y + 1)), min(y, xpp)] */
        uint64_t qhi = xpp < y ? xpp : y, qlo = xp / (y + 1);
        if (qlo < p) qlo = p;
        if (qhi <= qlo) continue;
        uint64_t l = pi_tab(pl, qhi), lmin = pi_tab(pl, qlo);
        uint64_t sqxp = primality_isqrt(xp);
        while (l > lmin) {
            uint64_t q = pl->primes[l], n = xp / q, pin = pi_tab(pl, n);
            if (q > sqxp) {
                /* the q_j with π(xp / q_j) = pin are those with q_j > xp / p_{pin+1} */
                uint64_t l2 = pi_tab(pl, xp / pl->primes[pin + 1]);
                if (l2 < lmin) l2 = lmin;
                sum += (i128)(l - l2) * (i128)(pin - b + 2);
                l = l2;
            } else {
                sum += (i128)(pin - b + 2);
                l--;
            }
        }
    }
    ck->sum = sum;
    return 0;
}
