/* http.h — the server-independent shape of a request and a response.
 *
 * Handlers (api, metrics, profiling) see only these structs, never libmicrohttpd, so they can be
 * unit-tested without sockets. server.c (requests) and respond.c (responses) adapt them to
 * libmicrohttpd. A response body is owned by the response (malloc'd, freed by http_response_fini)
 * unless body_static is set.
 */
#ifndef PRIMED_HTTP_H
#define PRIMED_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_EXTRA_HEADERS 6
#define HTTP_HEADER_VALUE_MAX 256

struct http_request {
    const char *method;      /* "GET", "POST", … */
    const char *path;        /* path only, no query string */
    const char *request_id;  /* sanitised X-Request-Id or a generated one */
    const char *client_addr; /* textual peer address */
    const char *body;        /* borrowed; NULL when there is none */
    size_t body_len;
    /* Query-string argument / header lookup (NULL when absent). Borrowed, valid for the
     * request's lifetime. */
    const char *(*get_arg)(const struct http_request *req, const char *name);
    const char *(*get_header)(const struct http_request *req, const char *name);
    /* Calls fn(arg, name, value) for every query argument, in order (to reject unknown ones). */
    void (*each_arg)(const struct http_request *req,
                     void (*fn)(void *arg, const char *name, const char *value), void *arg);
    void *impl; /* server-private */
};

struct http_header {
    const char *name; /* static string */
    char value[HTTP_HEADER_VALUE_MAX];
};

struct http_response {
    int status;
    const char *content_type; /* static string */
    char *body;               /* owned unless body_static */
    size_t body_len;
    bool body_static;
    struct http_header headers[HTTP_MAX_EXTRA_HEADERS];
    int nheaders;
};

void http_response_init(struct http_response *resp);
void http_response_fini(struct http_response *resp); /* frees the body if owned */
/* Add a header (value copied, truncated to HTTP_HEADER_VALUE_MAX-1). Returns -ENOSPC when
 * full. */
int http_response_header(struct http_response *resp, const char *name, const char *value);
/* Set an owned body copied from buf (or static). Returns 0 or -ENOMEM. */
int http_response_body(struct http_response *resp, int status, const char *content_type,
                       const char *buf, size_t len);
void http_response_static(struct http_response *resp, int status, const char *content_type,
                          const char *buf, size_t len);
/* Set a body the caller malloc'd (e.g. from jsonw_steal): takes ownership of buf, which is freed
 * by http_response_fini. Never fails. */
void http_response_body_owned(struct http_response *resp, int status, const char *content_type,
                              char *buf, size_t len);

/* The query parameters an endpoint accepts: names (NULL-terminated if fewer than
 * HTTP_MAX_PARAMS) in, values (NULL when absent, "" when empty) out. Every endpoint checks its
 * arguments through http_params_check, so an unknown or repeated name gets the same error
 * everywhere. */
#define HTTP_MAX_PARAMS 3
struct http_params {
    const char *names[HTTP_MAX_PARAMS];
    const char *vals[HTTP_MAX_PARAMS];
    const char *unknown;   /* first unknown name */
    const char *duplicate; /* first repeated name */
};
/* Fills p->vals from req's arguments. Returns 0, or -1 with a 400 rendered into resp
 * (unknown_parameter for an unknown name, bad_parameter for a repeated one). */
int http_params_check(const struct http_request *req, struct http_params *p,
                      struct http_response *resp);

#define HTTP_JSON "application/json"
#define HTTP_TEXT "text/plain; charset=utf-8"

#endif
