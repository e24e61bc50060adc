/* pi_s1.c — the ordinary leaves S1 = Σ_{n <= y, p|n ⇒ p > 13} μ(n) φ(x / n, 6), by ranges of n,
 * with φ(·, 6) from one period of 30030. primecount's S1.
 *
 * Reads only the plan's μ·lpf table; a chunk's whole result is its sum.
 */
#include <errno.h>

#include "pi_int.h"

int pi_s1_run(const pi_plan *pl, struct chunk *ck, const atomic_int *cancel)
{
    i128 sum = 0;
    uint64_t n = ck->lo | 1;
    if (ck->lo <= 1) {
        sum += (i128)phi_c(pl->x); /* n = 1 */
        n = 3;
    }
    for (uint64_t k = 0; n < ck->hi; n += 2, k++) {
        if (k % (CANCEL_EVERY * 16) == 0 && pi_cancelled(cancel)) return -ECANCELED;
        int32_t v = pl->mulpf[n >> 1];
        if (v > 13)
            sum += (i128)phi_c(pl->x / n);
        else if (v < -13)
            sum -= (i128)phi_c(pl->x / n);
    }
    ck->sum = sum;
    return 0;
}
