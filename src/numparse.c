/* numparse.c — strict unsigned 64-bit number parsing for query parameters and config values.
 *
 * Syntax is checked over the whole input before any arithmetic, so "99999999999999999999x" is a
 * syntax error, not an overflow. Never wraps, never reads past len, never loops on the size of
 * an exponent: an exponent above 19 with a non-zero mantissa is an overflow however many digits
 * it has, so exponents are only ever compared, not accumulated.
 */
#include "primed/numparse.h"

#include <stdbool.h>
#include <string.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Value of the digit run s[0..n) (n >= 1); false on overflow. */
static bool digits_value(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        /* v * 10 + d <= UINT64_MAX  <=>  v < M/10, or v == M/10 and d <= M%10 */
        if (v > UINT64_MAX / 10 || (v == UINT64_MAX / 10 && d > UINT64_MAX % 10)) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

enum numparse_result numparse_u64n(const char *s, size_t len, uint64_t *out)
{
    if (s == NULL || len == 0) return NUMPARSE_EMPTY;

    /* Syntax: D+ ( [eE] D+ )? — an embedded NUL fails is_digit like any other byte. */
    size_t i = 0;
    while (i < len && is_digit(s[i]))
        i++;
    size_t mant_len = i;
    if (mant_len == 0) return NUMPARSE_SYNTAX;
    size_t exp_start = 0, exp_len = 0;
    if (i < len) {
        if (s[i] != 'e' && s[i] != 'E') return NUMPARSE_SYNTAX;
        exp_start = ++i;
        while (i < len && is_digit(s[i]))
            i++;
        exp_len = i - exp_start;
        if (exp_len == 0 || i != len) return NUMPARSE_SYNTAX;
    }

    uint64_t mant;
    if (!digits_value(s, mant_len, &mant)) return NUMPARSE_OVERFLOW;
    if (exp_len == 0 || mant == 0) {
        *out = mant; /* 0eK == 0 for any K, however long */
        return NUMPARSE_OK;
    }

    /* Significant exponent digits: skip leading zeros; more than two digits means >= 100,
     * which overflows for any non-zero mantissa (10^20 > 2^64). */
    const char *e = s + exp_start;
    while (exp_len > 1 && *e == '0') {
        e++;
        exp_len--;
    }
    if (exp_len > 2) return NUMPARSE_OVERFLOW;
    unsigned k = (unsigned)(e[0] - '0');
    if (exp_len == 2) k = k * 10 + (unsigned)(e[1] - '0');
    if (k > 19) return NUMPARSE_OVERFLOW;
    while (k-- > 0) {
        if (mant > UINT64_MAX / 10) return NUMPARSE_OVERFLOW;
        mant *= 10;
    }
    *out = mant;
    return NUMPARSE_OK;
}

enum numparse_result numparse_u64(const char *s, uint64_t *out)
{
    if (s == NULL) return NUMPARSE_EMPTY;
    return numparse_u64n(s, strlen(s), out);
}

const char *numparse_message(enum numparse_result r)
{
    switch (r) {
    case NUMPARSE_OK:
        return "ok";
    case NUMPARSE_EMPTY:
        return "must not be empty: a decimal integer from 0 to 18446744073709551615 or the form "
               "1e10";
    case NUMPARSE_SYNTAX:
        return "must be a decimal integer from 0 to 18446744073709551615 or the form 1e10";
    case NUMPARSE_OVERFLOW:
        return "is larger than 18446744073709551615 (2^64-1)";
    }
    return "invalid number";
}
