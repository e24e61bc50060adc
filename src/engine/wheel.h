/* wheel.h — the mod-30 wheel shared by the sieve engine and the sieving-prime table.
 *
 * One byte stands for 30 consecutive integers [30k, 30k+29]; its 8 bits stand for the residues
 * coprime to 30, bit b <-> wheel_residue[b] = 1, 7, 11, 13, 17, 19, 23, 29. Multiples of 2, 3 and
 * 5 are never represented. This header only holds constants and tables; it must never allocate.
 *
 * Crossing off the multiples p*n of a sieving prime p = 30q + r walks n over the residues coprime
 * to 30: the state is (byte offset, wheel index i of n mod 30). Stepping from n = 30j + M[i] to
 * the next such n advances the byte offset by q*dm + dc, where dm = M[i+1] - M[i] and
 * dc = floor(r*M[i+1]/30) - floor(r*M[i]/30) (M[8] = 31), and clears `mask` of the byte first.
 */
#ifndef PRIMED_WHEEL_H
#define PRIMED_WHEEL_H

#include <stdbool.h>
#include <stdint.h>

/* Residue number i (0..8) of the wheel; WHEEL_M(8) = 31 closes the cycle. */
#define WHEEL_M(i)                                                                                 \
    ((i) == 0   ? 1                                                                                \
     : (i) == 1 ? 7                                                                                \
     : (i) == 2 ? 11                                                                               \
     : (i) == 3 ? 13                                                                               \
     : (i) == 4 ? 17                                                                               \
     : (i) == 5 ? 19                                                                               \
     : (i) == 6 ? 23                                                                               \
     : (i) == 7 ? 29                                                                               \
                : 31)

/* Bit index of a residue coprime to 30 (argument already reduced mod 30). */
#define WHEEL_BIT(x)                                                                               \
    ((x) == 1    ? 0                                                                               \
     : (x) == 7  ? 1                                                                               \
     : (x) == 11 ? 2                                                                               \
     : (x) == 13 ? 3                                                                               \
     : (x) == 17 ? 4                                                                               \
     : (x) == 19 ? 5                                                                               \
     : (x) == 23 ? 6                                                                               \
                 : 7)

struct wheel_step {
    uint8_t mask; /* AND mask: clears the bit of the current multiple */
    uint8_t dm;   /* multiplier of q in the step to the next multiple */
    uint8_t dc;   /* constant part of that step */
};

extern const uint8_t wheel_residue[8];            /* bit -> residue */
extern const int8_t wheel_bit_of[30];             /* residue -> bit, -1 when not coprime to 30 */
extern const uint8_t wheel_next_index[30];        /* r -> smallest i with wheel_residue[i] >= r */
extern const struct wheel_step wheel_steps[8][8]; /* [bit of p mod 30][wheel index of n] */

/* The first multiple p*n >= max(W0, p*p) with n coprime to 30, as a byte offset from W0 (a
 * multiple of 30) and the wheel index of n. False when that multiple exceeds hi. */
static inline bool wheel_first_multiple(uint64_t p, uint64_t W0, uint64_t hi, uint64_t *off,
                                        unsigned *wi)
{
    uint64_t n = W0 / p + (W0 % p != 0);
    if (n < p) n = p;
    unsigned r = (unsigned)(n % 30);
    unsigned i = wheel_next_index[r];
    n += wheel_residue[i] - r;
    __uint128_t m = (__uint128_t)p * n;
    if (m > hi) return false;
    *off = ((uint64_t)m - W0) / 30;
    *wi = i;
    return true;
}

#endif
