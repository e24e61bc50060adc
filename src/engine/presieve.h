/* presieve.h — removes the multiples of the smallest wheel primes by copying patterns.
 *
 * The primes 7 … PRESIEVE_LAST_PRIME (163) cross off so many bits per segment that copying (and
 * AND-ing) precomputed periodic patterns is far cheaper than sieving them. The patterns are
 * built once per process (a few hundred KB, pthread_once) and never written afterwards.
 */
#ifndef PRIMED_PRESIEVE_H
#define PRIMED_PRESIEVE_H

#include <stddef.h>
#include <stdint.h>

/* Largest prime handled by the patterns; the engine sieves only primes above it. */
#define PRESIEVE_LAST_PRIME 163u

/* dst[i] = mod-30 bitmap byte of absolute byte index `byte_index + i` (numbers 30(byte_index+i)
 * + residue) with every multiple of 7 … PRESIEVE_LAST_PRIME cleared, except those primes
 * themselves, and 1 cleared. */
void presieve_fill(uint8_t *dst, uint64_t byte_index, size_t n);

#endif
