/* numparse.h — strict parsing of the unsigned 64-bit numbers clients and config send.
 *
 * Accepted: decimal digits only ("0" … "18446744073709551615", leading zeros allowed), or the
 * exact shorthand D e K / D E K where D is decimal digits and K a decimal exponent ("1e10",
 * "25e8"), whose value must fit in 64 bits. Rejected: empty strings, signs, spaces, "+", hex,
 * fractions, a missing mantissa or exponent, and anything that overflows (never wraps).
 */
#ifndef PRIMED_NUMPARSE_H
#define PRIMED_NUMPARSE_H

#include <stddef.h>
#include <stdint.h>

enum numparse_result {
    NUMPARSE_OK = 0,
    NUMPARSE_EMPTY,    /* "" */
    NUMPARSE_SYNTAX,   /* not digits / not D e K */
    NUMPARSE_OVERFLOW, /* > 2^64-1 */
};

/* Parse the NUL-terminated s. */
enum numparse_result numparse_u64(const char *s, uint64_t *out);
/* Parse exactly len bytes of s (no NUL needed; an embedded NUL is a syntax error). */
enum numparse_result numparse_u64n(const char *s, size_t len, uint64_t *out);

/* A human sentence for the result ("must be a decimal integer from 0 to 18446744073709551615
 * or the form 1e10"). */
const char *numparse_message(enum numparse_result r);

#endif
