/* jsonw.c — bounded JSON text writer: escaped strings, fast u64 decimals, raw text.
 *
 * u64 → decimal is on the hot path of /v1/primes (millions of numbers per response): the digit
 * count comes from a bit-length estimate and one table compare, then two digits per division
 * from a 200-byte table, written in place — no snprintf, no temporary, no reversal. snprintf
 * ("%" PRIu64) was the simpler design; it costs a format-string parse and locale checks per
 * number. Appends are all-or-nothing so a full buffer never holds half a token.
 */
#include "primed/jsonw.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

static const uint64_t pow10_table[20] = {
    1ULL,
    10ULL,
    100ULL,
    1000ULL,
    10000ULL,
    100000ULL,
    1000000ULL,
    10000000ULL,
    100000000ULL,
    1000000000ULL,
    10000000000ULL,
    100000000000ULL,
    1000000000000ULL,
    10000000000000ULL,
    100000000000000ULL,
    1000000000000000ULL,
    10000000000000000ULL,
    100000000000000000ULL,
    1000000000000000000ULL,
    10000000000000000000ULL,
};

static unsigned dec_digits(uint64_t v)
{
    if (v < 10) return 1;
    /* floor(log10(2^bits)) ≈ bits * 1233 / 4096; t is exact or one too high after the +1. */
    unsigned bits = 64u - (unsigned)__builtin_clzll(v);
    unsigned t = (bits * 1233u) >> 12;
    return t + 1u - (v < pow10_table[t]);
}

size_t jsonw_u64_format(char *out, uint64_t v)
{
    unsigned n = dec_digits(v);
    char *p = out + n;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, digit_pairs + 2 * r, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, digit_pairs + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    return n;
}

void jsonw_init_fixed(struct jsonw *w, char *buf, size_t size)
{
    memset(w, 0, sizeof(*w));
    w->buf = buf;
    w->cap = size > 0 ? size - 1 : 0;
    w->max = w->cap;
    if (size > 0) buf[0] = '\0';
}

void jsonw_init_dynamic(struct jsonw *w, size_t max)
{
    memset(w, 0, sizeof(*w));
    w->dynamic = true;
    w->max = max;
}

void jsonw_fini(struct jsonw *w)
{
    if (w->dynamic) free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

void jsonw_reset(struct jsonw *w)
{
    w->len = 0;
    w->overflow = false;
    if (w->buf != NULL) w->buf[0] = '\0';
}

char *jsonw_steal(struct jsonw *w, size_t *len)
{
    char *b = w->buf;
    *len = w->len;
    if (b == NULL) {
        b = malloc(1);
        if (b != NULL) b[0] = '\0';
        *len = 0;
    }
    w->buf = NULL;
    w->len = w->cap = 0;
    w->overflow = false;
    return b;
}

/* Make room for `need` more bytes of text; 0 or a negative errno (then overflow is set). */
static int reserve(struct jsonw *w, size_t need)
{
    if (need <= w->cap - w->len) return 0;
    if (!w->dynamic || need > w->max - w->len) {
        w->overflow = true;
        return -ENOSPC;
    }
    size_t want = w->len + need;
    size_t ncap = w->cap < 240 ? 240 : w->cap;
    while (ncap < want)
        ncap = ncap > w->max / 2 ? w->max : ncap * 2;
    if (ncap > w->max) ncap = w->max;
    char *nb = realloc(w->buf, ncap + 1);
    if (nb == NULL) {
        w->overflow = true;
        return -ENOMEM;
    }
    if (w->buf == NULL) nb[0] = '\0';
    w->buf = nb;
    w->cap = ncap;
    return 0;
}

int jsonw_raw(struct jsonw *w, const char *s, size_t n)
{
    int rc = reserve(w, n);
    if (rc != 0) return rc;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
    return 0;
}

int jsonw_char(struct jsonw *w, char c)
{
    return jsonw_raw(w, &c, 1);
}

int jsonw_bool(struct jsonw *w, bool b)
{
    return b ? jsonw_lit(w, "true") : jsonw_lit(w, "false");
}

int jsonw_u64(struct jsonw *w, uint64_t v)
{
    if (w->cap - w->len >= JSONW_U64_MAX) { /* fast path: format in place */
        w->len += jsonw_u64_format(w->buf + w->len, v);
        w->buf[w->len] = '\0';
        return 0;
    }
    char tmp[JSONW_U64_MAX];
    size_t n = jsonw_u64_format(tmp, v);
    return jsonw_raw(w, tmp, n);
}

/* Length of the valid UTF-8 sequence at s[0..n) (2…4), or 0 if s[0] does not start one. The
 * ranges are RFC 3629's: no overlongs, no surrogates, nothing above U+10FFFF — exactly what a
 * strict parser such as jansson accepts. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return len;
}

size_t jsonw_escape(char *out, size_t cap, const char *s, size_t n, size_t *consumed)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < n) {
        unsigned char c = u[i];
        char esc[6];
        const char *piece;
        size_t plen, in_len = 1;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            /* the common case: copy a run of plain ASCII at once */
            size_t j = i + 1;
            while (j < n && u[j] >= 0x20 && u[j] < 0x80 && u[j] != '"' && u[j] != '\\')
                j++;
            size_t run = j - i;
            if (run > cap - o) run = cap - o;
            if (run == 0) break;
            memcpy(out + o, s + i, run);
            o += run;
            i += run;
            continue;
        }
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            piece = esc;
            plen = 2;
        } else if (c < 0x20) {
            esc[0] = '\\';
            piece = esc;
            plen = 2;
            switch (c) {
            case '\n':
                esc[1] = 'n';
                break;
            case '\r':
                esc[1] = 'r';
                break;
            case '\t':
                esc[1] = 't';
                break;
            case '\b':
                esc[1] = 'b';
                break;
            case '\f':
                esc[1] = 'f';
                break;
            default:
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                plen = 6;
            }
        } else {
            in_len = utf8_seq(u + i, n - i);
            if (in_len > 0) {
                piece = s + i;
                plen = in_len;
            } else {
                piece = "\\ufffd"; /* replacement character for a stray byte */
                plen = 6;
                in_len = 1;
            }
        }
        if (plen > cap - o) break;
        memcpy(out + o, piece, plen);
        o += plen;
        i += in_len;
    }
    if (consumed != NULL) *consumed = i;
    return o;
}

/* Escaped length of s[0..n) (exact: the same walk as jsonw_escape without output). */
static size_t escaped_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, len = 0;
    while (i < n) {
        unsigned char c = u[i];
        if (c >= 0x20 && c < 0x80) {
            len += (c == '"' || c == '\\') ? 2 : 1;
            i++;
        } else if (c < 0x20) {
            len += (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') ? 2 : 6;
            i++;
        } else {
            size_t k = utf8_seq(u + i, n - i);
            if (k > 0) {
                len += k;
                i += k;
            } else {
                len += 6;
                i++;
            }
        }
    }
    return len;
}

int jsonw_strn(struct jsonw *w, const char *s, size_t n)
{
    size_t need = escaped_len(s, n) + 2;
    int rc = reserve(w, need);
    if (rc != 0) return rc;
    char *p = w->buf + w->len;
    p[0] = '"';
    size_t o = jsonw_escape(p + 1, need - 2, s, n, NULL);
    p[1 + o] = '"';
    w->len += o + 2;
    w->buf[w->len] = '\0';
    return 0;
}

int jsonw_str(struct jsonw *w, const char *s)
{
    return jsonw_strn(w, s, strlen(s));
}

int jsonw_strn_trunc(struct jsonw *w, const char *s, size_t n, size_t limit)
{
    size_t need = escaped_len(s, n) + 2;
    if (need <= limit) return jsonw_strn(w, s, n);
    if (limit < 5) {
        w->overflow = true;
        return -ENOSPC;
    }
    int rc = reserve(w, limit);
    if (rc != 0) return rc;
    char *p = w->buf + w->len;
    p[0] = '"';
    size_t o = jsonw_escape(p + 1, limit - 5, s, n, NULL); /* room for "..." and the quote */
    memcpy(p + 1 + o, "...\"", 4);
    w->len += o + 5;
    w->buf[w->len] = '\0';
    return 1;
}
