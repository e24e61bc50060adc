/* sieve_pi.c — sieve_pi(), the bounded π(x) of sieve.h, now answered by pi_count (pi.c).
 *
 * It used to be Meissel's formula over a π table to x^(2/3) (24 MB at 4e12); Deléglise–Rivat
 * needs ~x^(1/3) memory and is faster at every x, so there is one π implementation. The bound
 * SIEVE_PI_MAX stays so that callers choosing by it keep their behaviour until they move to
 * pi.h. Never allocates outside the π budget; ctx is unused.
 */
#include <errno.h>

#include "primed/pi.h"
#include "primed/sieve.h"

int sieve_pi(sieve_ctx *ctx, uint64_t x, uint64_t *out, const atomic_int *cancel)
{
    (void)ctx;
    if (x > SIEVE_PI_MAX) return -ERANGE;
    return pi_count(x, out, cancel);
}
