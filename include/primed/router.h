/* router.h — which handler answers a (listener, method, path).
 *
 * A static table; no allocation, no HTTP library. Knows only paths and methods: what a handler
 * does is api.c's, server.c's or profiling.c's business. Never looks at the query string.
 */
#ifndef PRIMED_ROUTER_H
#define PRIMED_ROUTER_H

#include <stdbool.h>

#include "primed/metrics.h"

enum route_id {
    ROUTE_ROOT = 0,
    ROUTE_HEALTHZ,
    ROUTE_READYZ,
    ROUTE_METRICS,
    ROUTE_PRIMES,
    ROUTE_COUNT,
    ROUTE_ISPRIME,
    ROUTE_NTH,
    ROUTE_NEXT,
    ROUTE_PREV,
    ROUTE_BATCH,
    ROUTE_DEBUG,
    ROUTE__COUNT
};

struct route {
    enum route_id id;
    enum metrics_handler handler; /* metrics label */
    const char *allow;            /* the Allow header value for 405 */
};

enum router_result {
    ROUTER_OK = 0,
    ROUTER_NOT_FOUND,          /* 404 not_found */
    ROUTER_METHOD_NOT_ALLOWED, /* 405: *out is set, use its allow */
};

/* debug: the request came in on the debug listener (which serves /metrics, /healthz, the /debug/
 * tree and /symbolz; /debug/ paths on the main listener are not found). HEAD is allowed wherever
 * GET is. */
enum router_result router_match(bool debug, const char *method, const char *path,
                                const struct route **out);

#endif
