/* pi_sigma.c — Gourdon's correction terms Σ1 … Σ6: the leaves that the A, C and D terms leave out
 * or count in another form (trivial leaves, the −b + 2 of easy leaves with p_b > x*, A's doubled
 * weights), in closed form plus three loops over the primes up to x^(1/3). primecount's Sigma.
 *
 * Σ0 (a − 1 + Σ_{y < p <= √x} (index − 1)) is folded into P2 = B − Σ(index − 1) by pi.c, which
 * keeps DR's P2 for Gourdon's B. With a = π(y), b = π(x^(1/3)), c = π(√(x / y)), d = π(x*):
 *   Σ1 = (a − b)(a − b − 1) / 2                 Σ2 = a (b − c − c(c − 3)/2 + d(d − 3)/2)
 *   Σ3 = b(b − 1)(2b − 1)/6 − b − d(d − 1)(2d − 1)/6 + d
 *   Σ4 = a Σ_{x* < p <= √(x/y)} π(x / (p y))     Σ5 = Σ_{√(x/y) < p <= x^(1/3)} π(x / p²)
 *   Σ6 = − Σ_{x* < p <= x^(1/3)} π(√(x / p))²
 * Every π argument is <= max(y, √(x / x*)) <= ylim (pi_plan.c sizes the table so).
 */
#include "pi_int.h"
#include "primed/primality.h"

i128 pi_sigma(const pi_plan *pl)
{
    const uint64_t x = pl->x, y = pl->y;
    const uint64_t sxy = primality_isqrt(x / y);
    const i128 a = pl->a, b = (i128)pi_tab(pl, pl->x13), c = (i128)pi_tab(pl, sxy),
               d = (i128)pi_tab(pl, pl->xstar);
    i128 s1 = (a - b) * (a - b - 1) / 2;
    i128 s2 = a * (b - c - c * (c - 3) / 2 + d * (d - 3) / 2);
    i128 s3 = b * (b - 1) * (2 * b - 1) / 6 - b - d * (d - 1) * (2 * d - 1) / 6 + d;
    i128 s4 = 0, s5 = 0, s6 = 0;
    /* x* <= √(x/y) by its clamp, so every p of Σ4 and Σ5 is above x*; √(x/y) may pass x^(1/3)
     * by one when y = x^(1/3) (floors), hence the loop's end. */
    uint64_t iend = pi_tab(pl, sxy) > (uint64_t)b ? pi_tab(pl, sxy) : (uint64_t)b;
    for (uint64_t i = (uint64_t)d + 1; i <= iend; i++) {
        uint64_t p = pl->primes[i]; /* p <= x^(1/3) + 1 < 2^22 and y <= 2^32: p·y fits */
        if (p <= sxy)
            s4 += (i128)pi_tab(pl, x / (p * y));
        else
            s5 += (i128)pi_tab(pl, x / p / p);
        if (i > (uint64_t)b) continue;
        i128 t = (i128)pi_tab(pl, primality_isqrt(x / p));
        s6 += t * t;
    }
    return s1 + s2 + s3 + a * s4 + s5 - s6;
}
