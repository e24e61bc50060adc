/* router.h — the one route table: which handler answers a (listener, method, path).
 *
 * Every endpoint is one row of router.c's table: path, methods, listeners, handler (route_id),
 * metric label, for an API row its operation (the op table, src/api_op.h: parse, cost, run,
 * batch…), and a one-line summary. Everything else that lists endpoints is derived from it: the
 * router itself, the 405 Allow header, the metric `handler` label set (main.c hands it to
 * metrics_init), the `/` listing (handlers.c), the /debug/pprof/ index (profiling.c), the batch
 * op list (batch.c) and /openapi.json (openapi.c). Adding an endpoint is a route_id, a row and its
 * handler (for the API: its op file). No allocation, no HTTP library; never looks at the query
 * string.
 */
#ifndef PRIMED_ROUTER_H
#define PRIMED_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

struct api_op_def; /* src/api_op.h */

/* Who answers. The kind of handler is the row's `kind`; the id says which one. */
enum route_id {
    /* built-in handlers (handlers.c) */
    ROUTE_ROOT = 0,
    ROUTE_HEALTHZ,
    ROUTE_READYZ,
    ROUTE_METRICS,
    ROUTE_OPENAPI,
    /* the API (api.c) */
    ROUTE_PRIMES,
    ROUTE_COUNT,
    ROUTE_ISPRIME,
    ROUTE_NTH,
    ROUTE_PI,
    ROUTE_TWIN,
    ROUTE_NEXT,
    ROUTE_PREV,
    ROUTE_BATCH,
    ROUTE_FACTOR,
    /* debug endpoints (profiling.c), behind the debug token */
    ROUTE_DEBUG_INDEX,
    ROUTE_DEBUG_HEAP,
    ROUTE_DEBUG_PROFILE,
    ROUTE_DEBUG_SYMBOL,
    ROUTE_DEBUG_CMDLINE,
    ROUTE_DEBUG_STATS,
    ROUTE_DEBUG_REQUESTS,
    ROUTE_DEBUG_THREADS,        /* thread dump (pprof_threads.c) */
    ROUTE_DEBUG_THREADS_LEGACY, /* the same in gperftools' CPU format, for google-pprof */
    ROUTE_DEBUG_TRACE,          /* execution trace (trace.c), Chrome Trace Event Format */
    ROUTE__COUNT
};

enum route_kind {
    ROUTE_K_BUILTIN = 0, /* handlers.c answers on the I/O thread (O(1) work) */
    ROUTE_K_API,         /* api_prepare, then maybe a worker */
    ROUTE_K_DEBUG,       /* profiling.c, debug listener, bearer token */
};

/* Methods: HEAD is allowed wherever GET is. */
enum { ROUTE_M_GET = 1, ROUTE_M_POST = 2 };
/* Listeners. */
enum { ROUTE_L_MAIN = 1, ROUTE_L_DEBUG = 2 };

struct route {
    const char *path;   /* exact match */
    unsigned methods;   /* ROUTE_M_* */
    unsigned listeners; /* ROUTE_L_* */
    enum route_kind kind;
    enum route_id id;
    const char *label;           /* metrics `handler` label; several rows may share one */
    const struct api_op_def *op; /* ROUTE_K_API rows: the operation; NULL for the others */
    const char *summary;         /* one line for the `/` listing and the debug index */
};

enum router_result {
    ROUTER_OK = 0,
    ROUTER_NOT_FOUND,          /* 404 not_found */
    ROUTER_METHOD_NOT_ALLOWED, /* 405: *out is set, use router_allow(*out) */
};

/* debug: the request came in on the debug listener. *out is the matched row (NULL when not
 * found); rows are static, valid for the process lifetime. */
enum router_result router_match(bool debug, const char *method, const char *path,
                                const struct route **out);

/* The Allow header value for a row ("GET, HEAD", "POST" or "GET, HEAD, POST"). */
const char *router_allow(const struct route *r);

/* The table, in listing order: router_route(i) for i < router_count(). */
size_t router_count(void);
const struct route *router_route(size_t i);
/* The first row whose id is id (an API id has exactly one row), or NULL. A scan of the table. */
const struct route *router_find(enum route_id id);

/* The metric label set, derived from the rows' labels (first appearance order), plus a last
 * label "other" for requests that matched no row. router_label_index(NULL) is "other". */
#define ROUTER_MAX_LABELS 32
size_t router_label_count(void); /* including "other" */
const char *router_label_name(size_t i);
size_t router_label_index(const struct route *r);

#endif
