/* fuzz_numparse.c — libFuzzer harness for numparse_u64n / numparse_u64.
 *
 * Every input is parsed by the product and by an independent reference written here (a grammar
 * walk with saturating unsigned __int128 arithmetic, so it cannot wrap where the product must
 * refuse). Any disagreement on the result class or the value aborts. Plain digit strings are also
 * checked against strtoull, a third opinion neither of us wrote.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "primed/numparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef unsigned __int128 u128;
/* Anything above 2^64-1 saturates here: "too big" is all the reference needs to know. */
#define BIG ((u128)UINT64_MAX + 1)

static u128 sat_mul10_add(u128 v, unsigned d)
{
    if (v >= BIG) return BIG;
    v = v * 10 + d;
    return v >= BIG ? BIG : v;
}

/* The reference: digits+ ([eE] digits+)? over exactly n bytes. */
static enum numparse_result reference(const uint8_t *s, size_t n, uint64_t *out)
{
    if (n == 0) return NUMPARSE_EMPTY;
    size_t epos = n;
    for (size_t i = 0; i < n; i++)
        if (s[i] == 'e' || s[i] == 'E') {
            epos = i;
            break;
        }
    size_t mlen = epos, elen = epos < n ? n - epos - 1 : 0;
    if (mlen == 0 || (epos < n && elen == 0)) return NUMPARSE_SYNTAX;
    for (size_t i = 0; i < n; i++)
        if (i != epos && !(s[i] >= '0' && s[i] <= '9')) return NUMPARSE_SYNTAX;

    u128 m = 0, k = 0;
    for (size_t i = 0; i < mlen; i++)
        m = sat_mul10_add(m, (unsigned)(s[i] - '0'));
    for (size_t i = epos + 1; i < n; i++)
        k = sat_mul10_add(k, (unsigned)(s[i] - '0'));
    if (m >= BIG) return NUMPARSE_OVERFLOW; /* the mantissa alone overflows, even for "e0" */
    if (m == 0) {
        *out = 0;
        return NUMPARSE_OK;
    }
    for (u128 j = 0; j < k; j++) { /* k > 20 saturates within 20 rounds */
        m *= 10;
        if (m >= BIG) return NUMPARSE_OVERFLOW;
    }
    *out = (uint64_t)m;
    return NUMPARSE_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t got = 0xfeedface, want = 0xabad1dea;
    enum numparse_result r = numparse_u64n((const char *)data, size, &got);
    enum numparse_result ref = reference(data, size, &want);
    if (r != ref || (r == NUMPARSE_OK && got != want)) {
        fprintf(stderr, "numparse_u64n(%.*s) = %d/%llu, reference %d/%llu\n", (int)size,
                (const char *)data, (int)r, (unsigned long long)got, (int)ref,
                (unsigned long long)want);
        abort();
    }
    /* The message table covers every result. */
    if (numparse_message(r) == NULL || strlen(numparse_message(r)) == 0) abort();

    /* The NUL-terminated entry point agrees with the counted one up to the first NUL. */
    char *z = malloc(size + 1);
    if (z == NULL) return 0;
    memcpy(z, data, size);
    z[size] = '\0';
    size_t zlen = strlen(z);
    uint64_t gz = 0, wz = 0;
    enum numparse_result rz = numparse_u64(z, &gz);
    enum numparse_result refz = reference((const uint8_t *)z, zlen, &wz);
    if (rz != refz || (rz == NUMPARSE_OK && gz != wz)) abort();

    /* Plain decimal digits: strtoull is a third, independent opinion (ERANGE == overflow). */
    if (zlen == size && zlen > 0 && strspn(z, "0123456789") == zlen) {
        errno = 0;
        unsigned long long sv = strtoull(z, NULL, 10);
        bool range = errno == ERANGE;
        if (range != (r == NUMPARSE_OVERFLOW) || (!range && sv != got)) abort();
    }
    free(z);
    return 0;
}
