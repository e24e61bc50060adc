/* pi_p2.c — P2 = Σ_{y < p <= √x} (π(x / p) − π(p) + 1): [y, z] sieved segment by segment, and for
 * each prime p whose x / p falls in a segment, the primes below x / p counted. primecount's P2.
 *
 * A chunk (a range of segments) counts from its own start: it returns its primes (nprimes), its
 * leaves (nleaves) and Σ of the local counts; pi_plan_result adds the earlier chunks' primes.
 */
#include <errno.h>

#include "pi_int.h"
#include "primed/primality.h"

/* One chunk's state: the counted segment s, the window ps of primes p, the running totals. */
struct p2 {
    const pi_plan *pl;
    struct seg s, ps;
    uint64_t *next; /* [k]: the next odd multiple of primes[k] in s, kept across segments */
    uint32_t nnext;
    uint64_t run;     /* primes in the chunk's earlier segments */
    uint64_t nleaves; /* primes p with x / p in the chunk's numbers */
    u128 sum;
};

/* For the primes p in (plo, phi] (walked downwards, so that x / p grows), sum += run + #primes in
 * [nlo, x / p] of s. The p are sieved in windows of at most seg + 1 numbers (x / lo − x / hi <=
 * seg when lo >= √x). */
static void p2_leaves(struct p2 *c, uint64_t plo, uint64_t phi)
{
    const uint64_t S = c->pl->seg, x = c->pl->x;
    struct seg *s = &c->s, *ps = &c->ps;
    size_t wi = 0;
    uint64_t before = 0; /* set bits in s->w[0 … wi) */
    uint64_t run = c->run, nleaves = 0;
    u128 sum = 0; /* locals: s->w is uint64_t and could alias c's fields */
    while (phi >= plo) {
        uint64_t wlo = phi - plo + 1 > S ? phi - S + 1 : plo; /* window [wlo, phi] */
        ps->lo = wlo & ~(uint64_t)127;
        ps->nwords = (size_t)((phi - ps->lo) / 128 + 1);
        seg_presieve(ps);
        seg_sieve_full(c->pl, ps, phi + 1, NULL, c->pl->np);
        seg_clear_bits(ps, 0, (wlo - ps->lo) >> 1);
        seg_clear_bits(ps, seg_bits_upto(ps, phi), ps->nwords * 64);
        for (size_t w = ps->nwords; w-- > 0;) {
            for (uint64_t m = ps->w[w]; m;) {
                unsigned bit = 63 - (unsigned)__builtin_clzll(m);
                m &= ~((uint64_t)1 << bit);
                uint64_t p = ps->lo + 128 * w + 2 * bit + 1;
                uint64_t k = seg_bits_upto(s, x / p);
                while (wi < (size_t)(k >> 6))
                    before += (uint64_t)__builtin_popcountll(s->w[wi++]);
                uint64_t cnt = before;
                if (k & 63)
                    cnt +=
                        (uint64_t)__builtin_popcountll(s->w[wi] & (((uint64_t)1 << (k & 63)) - 1));
                sum += run + cnt;
                nleaves++;
            }
        }
        if (wlo == plo) break;
        phi = wlo - 1;
    }
    c->sum += sum;
    c->nleaves += nleaves;
}

/* Segment sidx: its primes in [A, B] counted, and the leaves whose x / p falls in it. */
static void p2_segment(struct p2 *c, uint64_t sidx, uint64_t A, uint64_t B)
{
    const pi_plan *pl = c->pl;
    uint64_t lo = pl->p2_base + sidx * pl->seg, hi = lo + pl->seg;
    uint64_t nlo = lo > A ? lo : A, nhi = hi - 1 < B ? hi - 1 : B; /* counted numbers */
    struct seg *s = &c->s;
    s->lo = lo;
    s->nwords = pl->seg / 128;
    seg_presieve(s);
    seg_sieve_full(pl, s, hi, c->next, c->nnext - 1);
    seg_clear_bits(s, 0, (nlo - lo) >> 1);
    seg_clear_bits(s, seg_bits_upto(s, nhi), s->nwords * 64);
    /* p in (x / (nhi + 1), x / nlo] ∩ (y, √x], downwards */
    uint64_t plo = pl->x / (nhi + 1) + 1, phi = pl->x / nlo;
    if (plo < pl->y + 1) plo = pl->y + 1;
    if (phi > pl->sqrtx) phi = pl->sqrtx;
    p2_leaves(c, plo, phi);
    c->run += seg_popcount(s);
}

/* Numbers [A, B] (A = max(chunk start, y + 1), B = min(chunk end, z)): primes counted; for every
 * prime p in (y, √x] with x / p in [A, B], sum += #primes in [A, x / p]. */
int pi_p2_run(const pi_plan *pl, struct chunk *ck, const atomic_int *cancel)
{
    const uint64_t S = pl->seg;
    size_t nwords = S / 128 + 2;
    uint64_t A = pl->p2_base + ck->lo * S, B = pl->p2_base + ck->hi * S - 1;
    if (A < pl->y + 1) A = pl->y + 1;
    if (B > pl->z) B = pl->z;
    struct p2 c = {.pl = pl};
    c.nnext = (uint32_t)pi_tab(pl, primality_isqrt(B)) + 1;
    int rc = -ENOMEM;
    if (!(c.s.w = pi_mem_get(nwords * 8)) || !(c.ps.w = pi_mem_get(nwords * 8)) ||
        !(c.next = pi_mem_get((size_t)c.nnext * 8)))
        goto out;
    uint64_t seg0 = pl->p2_base + ck->lo * S;
    for (uint32_t k = PI_C + 1; k < c.nnext; k++) {
        uint64_t p = pl->primes[k], j = (seg0 + p - 1) / p * p;
        if (j < p * p) j = p * p;
        c.next[k] = j & 1 ? j : j + p;
    }
    rc = 0;
    for (uint64_t sidx = ck->lo; sidx < ck->hi && rc == 0; sidx++) {
        if (pi_cancelled(cancel))
            rc = -ECANCELED;
        else
            p2_segment(&c, sidx, A, B);
    }
    if (rc == 0) {
        ck->sum = (i128)c.sum;
        ck->nprimes = c.run;
        ck->nleaves = c.nleaves;
    }
out:
    pi_mem_put(c.next, (size_t)c.nnext * 8);
    pi_mem_put(c.ps.w, nwords * 8);
    pi_mem_put(c.s.w, nwords * 8);
    return rc;
}
