/* errors.h — the one table of errors a client can see.
 *
 * Every error response of primed is built from this table: an HTTP status, a stable code string
 * and a default message, rendered as {"error":{"code":"...","message":"...","param":"..."}}.
 * No module invents its own status codes.
 */
#ifndef PRIMED_ERRORS_H
#define PRIMED_ERRORS_H

struct http_response;

enum primed_err {
    PERR_BAD_PARAM = 0,      /* 400 bad_parameter: not a number, out of range, from > to */
    PERR_MISSING_PARAM,      /* 400 missing_parameter */
    PERR_UNKNOWN_PARAM,      /* 400 unknown_parameter */
    PERR_LIMIT_EXCEEDED,     /* 400 limit_exceeded: range wider than configured, nth too large */
    PERR_BAD_REQUEST,        /* 400 bad_request: control byte in the request line or a header */
    PERR_BAD_JSON,           /* 400 bad_json: body is not the JSON asked for */
    PERR_UNAUTHORIZED,       /* 401 unauthorized: debug token missing or wrong */
    PERR_NOT_FOUND,          /* 404 not_found: unknown path */
    PERR_NO_SUCH_PRIME,      /* 404 no_such_prime: next/prev/nth beyond 0 … 2^64-1 */
    PERR_METHOD_NOT_ALLOWED, /* 405 method_not_allowed (+ Allow header) */
    PERR_NOT_ACCEPTABLE,     /* 406 not_acceptable: format/Accept we cannot produce */
    PERR_REQUEST_TIMEOUT,    /* 408 request_timeout: the body did not arrive in time */
    PERR_CONFLICT,           /* 409 conflict: e.g. a CPU profile is already running */
    PERR_BODY_TOO_LARGE,     /* 413 body_too_large */
    PERR_URI_TOO_LONG,       /* 414 uri_too_long */
    PERR_UNSUPPORTED_MEDIA,  /* 415 unsupported_media_type */
    PERR_RATE_LIMITED,       /* 429 rate_limited (+ Retry-After from the client's bucket) */
    PERR_HEADERS_TOO_LARGE,  /* 431 headers_too_large */
    PERR_INTERNAL,           /* 500 internal */
    PERR_NOT_IMPLEMENTED,    /* 501 not_implemented (also: profiling in sanitizer builds) */
    PERR_OVERLOADED,         /* 503 overloaded (+ Retry-After) */
    PERR_UNAVAILABLE,        /* 503 unavailable: draining / not ready */
    PERR_DEADLINE,           /* 504 deadline_exceeded */
    PERR__COUNT
};

/* Which routes can answer an error (its row's `where`; /openapi.json lists it there): 0 = any. */
enum { PERR_ON_API = 1, PERR_ON_BODY = 2, PERR_ON_DEBUG = 4 };

struct primed_error_info {
    int status;
    const char *code;
    const char *message; /* default message when the caller gives none */
    unsigned where;      /* PERR_ON_* bits; 0 = any route */
};

/* Out-of-range values map to PERR_INTERNAL's entry. */
const struct primed_error_info *errors_info(enum primed_err e);
/* Shorthands for errors_info(e)->status / ->code (e.g. for metrics labels). */
int errors_status(enum primed_err e);
const char *errors_code(enum primed_err e);

/* Render the JSON error into resp (status, content type, body, and Allow/Retry-After where the
 * table says so: `allow` is used for 405 and may be NULL otherwise). `param` may be NULL; `fmt`
 * may be NULL for the default message. Returns 0 or -ENOMEM (resp then holds a static 500 body
 * that needs no allocation). */
int errors_render(struct http_response *resp, enum primed_err e, const char *param,
                  const char *allow, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
