/* fuzz_jsonw.c — libFuzzer harness for the JSON text writer (jsonw.h) against jansson.
 *
 * Arbitrary bytes (invalid UTF-8, controls, NULs) go through jsonw_strn, jsonw_strn_trunc and
 * chunked jsonw_escape; jansson, which we did not write, must parse every result as a string,
 * equal to the input when the input was valid UTF-8 without NUL. Bounds are checked too: nothing
 * is written past a fixed buffer (ASan) and a truncated string stays within its limit. The input
 * bytes, read as u64s, also go through jsonw_u64_items and are read back with strtoull.
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "primed/jsonw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What jansson makes of one JSON string text; NULL when it is not one. Caller frees. */
static char *decode(const char *text, size_t len, size_t *outlen)
{
    json_error_t e;
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (j == NULL || !json_is_string(j)) {
        fprintf(stderr, "not a JSON string: %.*s (%s)\n", (int)len, text, j ? "" : e.text);
        abort();
    }
    *outlen = json_string_length(j);
    char *s = malloc(*outlen + 1);
    if (s == NULL) abort();
    memcpy(s, json_string_value(j), *outlen + 1);
    json_decref(j);
    return s;
}

static bool valid_utf8_no_nul(const uint8_t *s, size_t n)
{
    if (memchr(s, 0, n) != NULL) return false;
    json_t *j = json_stringn((const char *)s, n); /* jansson validates UTF-8 here */
    json_decref(j);
    return j != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096) return -1;
    size_t param = data[0];
    const char *s = (const char *)data + 1;
    size_t n = size - 1;

    /* Whole string, dynamic writer. */
    struct jsonw w;
    jsonw_init_dynamic(&w, 16 * n + 16);
    if (jsonw_strn(&w, s, n) != 0 || w.overflow) abort();
    size_t dlen;
    char *d = decode(w.buf, w.len, &dlen);
    if (valid_utf8_no_nul(data + 1, n) && (dlen != n || memcmp(d, s, n) != 0)) abort();
    jsonw_fini(&w);

    /* Truncated string into a fixed buffer exactly as large as the limit. */
    size_t limit = 5 + param;
    char *fixed = malloc(limit + 1);
    if (fixed == NULL) abort();
    jsonw_init_fixed(&w, fixed, limit + 1);
    int tr = jsonw_strn_trunc(&w, s, n, limit);
    if (tr < 0 || w.len > limit) abort();
    size_t tlen;
    char *t = decode(w.buf, w.len, &tlen);
    if (tr == 0 && (tlen != dlen || memcmp(t, d, dlen) != 0)) abort();
    if (tr == 1) { /* a prefix of the whole decoded string, then "..." */
        if (tlen < 3 || memcmp(t + tlen - 3, "...", 3) != 0 || tlen - 3 > dlen ||
            memcmp(t, d, tlen - 3) != 0)
            abort();
    }
    free(t);
    free(fixed);

    /* Chunked escaping with a tiny output buffer gives the same text as one pass. */
    size_t cap = 1 + param % 16;
    char *out = malloc(cap), *joined = malloc(8 * n + 3);
    if (out == NULL || joined == NULL) abort();
    size_t jl = 0, pos = 0;
    joined[jl++] = '"';
    while (pos < n) {
        size_t used = 0;
        size_t k = jsonw_escape(out, cap, s + pos, n - pos, &used);
        if (k > cap || used > n - pos) abort();
        if (used == 0) {
            if (cap >= 12) abort(); /* 12 bytes hold any one escaped character */
            break;
        }
        if (jl + k + 2 > 8 * n + 3) abort();
        memcpy(joined + jl, out, k);
        jl += k;
        pos += used;
    }
    if (pos == n) {
        joined[jl++] = '"';
        size_t clen;
        char *c = decode(joined, jl, &clen);
        if (clen != dlen || memcmp(c, d, dlen) != 0) abort();
        free(c);
    }
    free(joined);
    free(out);
    free(d);

    /* u64 items into a small fixed buffer: whole numbers only, parse back as an array. */
    uint64_t v[64];
    size_t nv = n / 8 < 64 ? n / 8 : 64;
    memcpy(v, s, nv * 8);
    char arr[128 + 2];
    jsonw_init_fixed(&w, arr, (size_t)(param % 128) + 3);
    jsonw_char(&w, '[');
    bool need_sep = false;
    size_t wrote = jsonw_u64_items(&w, v, nv, ',', &need_sep);
    if (wrote > nv || w.overflow) abort();
    if (jsonw_char(&w, ']') == 0) {
        /* jansson refuses integers above 2^63-1, so strtoull (glibc) reads them back. */
        const char *p = w.buf + 1;
        for (size_t i = 0; i < wrote; i++) {
            char *endp;
            errno = 0;
            unsigned long long x = strtoull(p, &endp, 10);
            if (errno != 0 || endp == p || x != v[i] || (*p == '0' && endp - p != 1)) abort();
            if (*endp != (i + 1 < wrote ? ',' : ']')) abort();
            p = endp + 1;
        }
        if (wrote == 0 && strcmp(w.buf, "[]") != 0) abort();
        if ((size_t)(p - w.buf) + (wrote == 0 ? 1 : 0) != w.len) abort();
    }
    return 0;
}
