/* handlers.h — the built-in endpoints (/, /healthz, /readyz, /metrics, /openapi.json) and the debug
 * listener's gate (the bearer token in front of profiling.c's endpoints).
 *
 * They see only http.h's request and response, never libmicrohttpd, and do O(1) work (or one
 * metrics render), so the adapter runs them on its I/O thread. Errors are rendered through
 * errors.c. Internal to the server, so this header lives beside the sources.
 */
#ifndef PRIMED_HANDLERS_H
#define PRIMED_HANDLERS_H

#include <stdbool.h>
#include <stddef.h>

#include "primed/config.h"
#include "primed/http.h"
#include "primed/router.h"

struct handlers {
    char root_body[1024]; /* the `/` listing, built once by handlers_init */
    size_t root_len;
    char *openapi; /* /openapi.json, built once by handlers_init (owned; handlers_fini) */
    size_t openapi_len;
};

/* What /readyz reports, as the server sees it at the time of the request. */
struct handlers_status {
    bool ready;    /* start-up done (server_set_ready) */
    bool draining; /* server_begin_drain called */
};

/* Build the `/` listing from the route table and /openapi.json (openapi.c) for cfg. Returns 0,
 * -ENOSPC when the listing does not fit, or openapi_render's error. */
int handlers_init(struct handlers *h, const struct primed_config *cfg);
/* The 200 body of a built-in route, for /openapi.json: openapi.c's grammar ("status:string",
 * api_op.h), or "@" and a media type for a body that is not JSON; NULL for a non-built-in. */
const char *handlers_answer(enum route_id id);
/* Free what handlers_init built (also after a failed init). */
void handlers_fini(struct handlers *h);

/* Answer a ROUTE_K_BUILTIN row into resp (initialised, empty). Returns false, leaving resp
 * untouched, when id is not a built-in. */
bool handlers_builtin(const struct handlers *h, enum route_id id, const struct handlers_status *st,
                      struct http_response *resp);

/* Answer a ROUTE_K_DEBUG row: 401 unless req carries "Authorization: Bearer <token>" (any
 * request passes when token is empty), else profiling.c's handler. Compares in constant time. */
void handlers_debug(const char *token, enum route_id id, const struct http_request *req,
                    struct http_response *resp);

#endif
