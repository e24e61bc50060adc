/* pi_tables.c — the tables π(x) reads: per process, φ(n, 6) mod 30030 and the 3 … 13 pre-sieve
 * pattern; per plan, the primes and π(n) up to ylim (primecount's PiTable) and μ(m)·lpf(m) for
 * odd m <= mmax (its FactorTable).
 *
 * Every table is written once, before any chunk runs, and only read afterwards.
 */
#include <errno.h>
#include <pthread.h>

#include "pi_int.h"
#include "primed/primality.h"

/* phi_tab[r] = #{1 <= k <= r : gcd(k, 30030) = 1}; pat[w]: bit i set iff 128w + 2i + 1 has no
 * factor 3 … 13 (so 1 is set and 3 … 13 are not). Built once (pthread_once), never freed:
 * 180 KB of static storage, the same for every call. */
uint16_t pi_phi_tab[PHI_Q];
uint64_t pi_pat[PAT_WORDS];
static pthread_once_t tabs_once = PTHREAD_ONCE_INIT;

static void tabs_build(void)
{
    unsigned n = 0;
    for (unsigned r = 0; r < PHI_Q; r++) {
        n += r % 2 && r % 3 && r % 5 && r % 7 && r % 11 && r % 13;
        pi_phi_tab[r] = (uint16_t)n;
    }
    for (unsigned w = 0; w < PAT_WORDS; w++) {
        uint64_t v = 0;
        for (unsigned i = 0; i < 64; i++) {
            uint64_t m = 128 * (uint64_t)w + 2 * i + 1;
            if (m % 3 && m % 5 && m % 7 && m % 11 && m % 13) v |= (uint64_t)1 << i;
        }
        pi_pat[w] = v;
    }
}

void pi_tables_once(void)
{
    pthread_once(&tabs_once, tabs_build);
}

/* Odd primes up to ylim in the π table, their running counts, the list. */
int pi_tables_primes(pi_plan *pl, const atomic_int *cancel)
{
    uint64_t words = (pl->ylim >> 7) + 1;
    pl->pt_bytes = words * sizeof *pl->pt;
    if (!(pl->pt = pi_mem_get(pl->pt_bytes))) return -ENOMEM;
    struct pient *t = pl->pt;
    for (uint64_t w = 0; w < words; w++)
        t[w].bits = UINT64_MAX;
    t[0].bits &= ~(uint64_t)1;           /* 1 */
    uint64_t nbits = (pl->ylim + 1) / 2; /* odd numbers 1 … ylim */
    for (uint64_t i = nbits; i < words * 64; i++)
        t[i >> 6].bits &= ~((uint64_t)1 << (i & 63));
    uint64_t r = primality_isqrt(pl->ylim);
    for (uint64_t p = 3; p <= r; p += 2) {
        if (!(t[p >> 7].bits >> ((p & 127) >> 1) & 1)) continue;
        if (pi_cancelled(cancel)) return -ECANCELED; /* <= √ylim (~5000) primes */
        for (uint64_t m = p * p; m <= pl->ylim; m += 2 * p)
            t[m >> 7].bits &= ~((uint64_t)1 << ((m & 127) >> 1));
    }
    uint64_t run = 0;
    for (uint64_t w = 0; w < words; w++) {
        t[w].before = run;
        run += (uint64_t)__builtin_popcountll(t[w].bits);
    }
    pl->np = (uint32_t)run + 1;
    pl->primes_bytes = ((size_t)pl->np + 1) * sizeof *pl->primes;
    if (!(pl->primes = pi_mem_get(pl->primes_bytes))) return -ENOMEM;
    pl->primes[0] = 0;
    pl->primes[1] = 2;
    uint32_t k = 1;
    for (uint64_t w = 0; w < words; w++)
        for (uint64_t m = t[w].bits; m; m &= m - 1)
            pl->primes[++k] = (uint32_t)(128 * w + 2 * (uint64_t)__builtin_ctzll(m) + 1);
    return 0;
}

/* μ(m)·lpf(m) for odd m <= mmax: primes in decreasing order, so the smallest writes last; the
 * multiples of primes in (y, mmax] (Gourdon's zg > y) are zeroed, as their leaves have P+(m) > y.
 */
int pi_tables_mulpf(pi_plan *pl, const atomic_int *cancel)
{
    uint64_t n = pl->mmax / 2 + 1; /* odd m = 2i + 1 <= mmax */
    pl->mulpf_bytes = n * sizeof *pl->mulpf;
    if (!(pl->mulpf = pi_mem_get(pl->mulpf_bytes))) return -ENOMEM;
    int32_t *v = pl->mulpf;
    for (uint64_t i = 0; i < n; i++)
        v[i] = 1;
    uint32_t kmax = (uint32_t)pi_tab(pl, pl->mmax);
    for (uint32_t k = kmax; k >= 2; k--) {
        uint64_t p = pl->primes[k];
        /* p's pass costs mmax/2p: look at the flag every prime once p is small */
        if ((k % CANCEL_EVERY == 0 || p < 65536) && pi_cancelled(cancel)) return -ECANCELED;
        if (p > pl->y) {
            for (uint64_t i = p / 2; i < n; i += p)
                v[i] = 0;
            continue;
        }
        for (uint64_t i = p / 2; i < n; i += p) /* m = p, 3p, 5p, … */
            if (v[i]) v[i] = v[i] > 0 ? -(int32_t)p : (int32_t)p;
        if (p * p <= pl->mmax)
            for (uint64_t i = p * p / 2; i < n; i += p * p)
                v[i] = 0;
    }
    return 0;
}
