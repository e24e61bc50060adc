/* jsonw.h — a tiny bounded JSON text writer for the responses jansson cannot produce.
 *
 * jansson's integers are signed 64-bit, so primes above 2^63-1 are written here instead. The
 * writer appends raw text, escaped strings, u64 decimals (the hot path: listing millions of
 * primes) and booleans to either a caller's fixed buffer or a heap buffer that grows up to an
 * explicit cap. It never writes past its bound, never produces invalid UTF-8 inside a string,
 * and never knows about HTTP. It does not track JSON structure: commas and brackets are the
 * caller's, written with jsonw_raw/jsonw_char.
 */
#ifndef PRIMED_JSONW_H
#define PRIMED_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest decimal u64: "18446744073709551615". */
#define JSONW_U64_MAX 20

struct jsonw {
    char *buf;     /* fixed: borrowed from the caller; dynamic: owned, NULL until first write */
    size_t len;    /* bytes written; buf[len] == '\0' whenever buf != NULL */
    size_t cap;    /* bytes usable for text (the allocation/buffer is cap + 1 for the NUL) */
    size_t max;    /* dynamic: len never exceeds this; fixed: == cap */
    bool dynamic;  /* buf is malloc'd by the writer and may grow */
    bool overflow; /* sticky: some append did not fit (or malloc failed) and was dropped */
};

/* Fixed mode over buf[size] (size >= 1; one byte is kept for the terminating NUL). */
void jsonw_init_fixed(struct jsonw *w, char *buf, size_t size);
/* Dynamic mode: grows by doubling, never beyond max bytes of text. No allocation until the
 * first append. */
void jsonw_init_dynamic(struct jsonw *w, size_t max);
/* Frees a dynamic buffer (safe on a zeroed or already-finished writer). */
void jsonw_fini(struct jsonw *w);
/* Forget the text (keeps the buffer) and clear the overflow flag. */
void jsonw_reset(struct jsonw *w);
/* Hand the NUL-terminated text to the caller (free() it) and leave w empty. Dynamic mode
 * gives its buffer away; fixed mode returns a malloc'd copy. Returns NULL (and *len = 0) only
 * when that memory cannot be had. */
char *jsonw_steal(struct jsonw *w, size_t *len);

/* Every append either fits whole and returns 0, or leaves the text unchanged, sets
 * w->overflow and returns -ENOSPC (bound reached) or -ENOMEM. */
int jsonw_raw(struct jsonw *w, const char *s, size_t n);
int jsonw_char(struct jsonw *w, char c);
/* A quoted, escaped JSON string. Invalid UTF-8 bytes become U+FFFD; control characters are
 * escaped. */
int jsonw_str(struct jsonw *w, const char *s);
int jsonw_strn(struct jsonw *w, const char *s, size_t n);
int jsonw_u64(struct jsonw *w, uint64_t v);
int jsonw_bool(struct jsonw *w, bool b);
/* Literal text known at compile time. */
#define jsonw_lit(w, s) jsonw_raw((w), (s), sizeof(s) - 1)

/* Streaming helper for long arrays of numbers (e.g. /v1/primes): append v[0..n) in decimal,
 * each preceded by `sep` when *need_sep is true; *need_sep becomes true after the first item,
 * so successive calls continue one array. Stops before the first item that does not fit (never
 * a partial number, never sets overflow) and returns how many items were written; a dynamic
 * writer grows up to its max first. */
size_t jsonw_u64_items(struct jsonw *w, const uint64_t *v, size_t n, char sep, bool *need_sep);

/* A quoted string of at most `limit` bytes including its quotes (limit >= 5). When s does not
 * fit, a prefix cut at a character boundary followed by "..." is written instead. Returns 1 if
 * truncated, 0 if whole, or a negative error as above (only when `limit` itself does not fit). */
int jsonw_strn_trunc(struct jsonw *w, const char *s, size_t n, size_t limit);

/* Write the decimal digits of v (no NUL) to out[JSONW_U64_MAX]; returns their count (1…20). */
size_t jsonw_u64_format(char *out, uint64_t v);

/* Escape s[0..n) as JSON string content (no quotes) into out[cap]. Stops before the first
 * character whose escaped form would not fit; *consumed gets the input bytes used. Returns the
 * bytes written. Never splits an escape or a UTF-8 sequence. */
size_t jsonw_escape(char *out, size_t cap, const char *s, size_t n, size_t *consumed);

#endif
