/* router.c — see router.h. A linear scan of a dozen exact paths is faster than any hash here
 * and keeps the table readable; the only prefix route is /debug/ on the debug listener. */
#include "primed/router.h"

#include <string.h>

enum { M_GET = 1, M_POST = 2 };

struct entry {
    const char *path;
    unsigned methods;
    bool main_listener, debug_listener;
    struct route r;
};

static const struct entry table[] = {
    {"/", M_GET, true, false, {ROUTE_ROOT, MH_ROOT, "GET, HEAD"}},
    {"/healthz", M_GET, true, true, {ROUTE_HEALTHZ, MH_HEALTHZ, "GET, HEAD"}},
    {"/readyz", M_GET, true, true, {ROUTE_READYZ, MH_READYZ, "GET, HEAD"}},
    {"/metrics", M_GET, true, true, {ROUTE_METRICS, MH_METRICS, "GET, HEAD"}},
    {"/v1/primes", M_GET, true, false, {ROUTE_PRIMES, MH_PRIMES, "GET, HEAD"}},
    {"/v1/count", M_GET, true, false, {ROUTE_COUNT, MH_COUNT, "GET, HEAD"}},
    {"/v1/isprime", M_GET, true, false, {ROUTE_ISPRIME, MH_ISPRIME, "GET, HEAD"}},
    {"/v1/nth", M_GET, true, false, {ROUTE_NTH, MH_NTH, "GET, HEAD"}},
    {"/v1/next", M_GET, true, false, {ROUTE_NEXT, MH_NEXT, "GET, HEAD"}},
    {"/v1/prev", M_GET, true, false, {ROUTE_PREV, MH_PREV, "GET, HEAD"}},
    {"/v1/batch", M_POST, true, false, {ROUTE_BATCH, MH_BATCH, "POST"}},
    {"/symbolz", M_GET | M_POST, false, true, {ROUTE_DEBUG, MH_DEBUG, "GET, HEAD, POST"}},
};

/* Profiling endpoints decide their own methods (pprof POSTs to /symbolz and some /debug paths). */
static const struct route debug_prefix = {ROUTE_DEBUG, MH_DEBUG, "GET, HEAD, POST"};

static unsigned method_bit(const char *m)
{
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) return M_GET;
    if (strcmp(m, "POST") == 0) return M_POST;
    return 0;
}

enum router_result router_match(bool debug, const char *method, const char *path,
                                const struct route **out)
{
    *out = NULL;
    if (debug && strncmp(path, "/debug/", 7) == 0) {
        *out = &debug_prefix;
        return method_bit(method) ? ROUTER_OK : ROUTER_METHOD_NOT_ALLOWED;
    }
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const struct entry *e = &table[i];
        if (!(debug ? e->debug_listener : e->main_listener) || strcmp(e->path, path) != 0) continue;
        *out = &e->r;
        return (method_bit(method) & e->methods) ? ROUTER_OK : ROUTER_METHOD_NOT_ALLOWED;
    }
    return ROUTER_NOT_FOUND;
}
