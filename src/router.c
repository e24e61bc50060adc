/* router.c — see router.h. The table below is the only list of endpoints in the program.
 *
 * A linear scan of a couple dozen exact paths is faster than any hash here and keeps the table
 * readable. The metric labels are derived once (pthread_once) into a dense index so the hot path
 * (one finished request) is an array lookup.
 */
#include "primed/router.h"

#include <pthread.h>
#include <string.h>

#include "api_op.h"

#define G ROUTE_M_GET
#define P ROUTE_M_POST
#define MAIN ROUTE_L_MAIN
#define DBG ROUTE_L_DEBUG

static const struct route table[] = {
    /* path, methods, listeners, kind, id, metric label, operation (API rows), summary */
    {"/v1/primes", G, MAIN, ROUTE_K_API, ROUTE_PRIMES, "primes", &api_op_primes,
     "list the primes in [from, to] (JSON or text, streamed)"},
    {"/v1/count", G, MAIN, ROUTE_K_API, ROUTE_COUNT, "count", &api_op_count,
     "count the primes in [from, to]"},
    {"/v1/isprime", G, MAIN, ROUTE_K_API, ROUTE_ISPRIME, "isprime", &api_op_isprime, "is n prime?"},
    {"/v1/nth", G, MAIN, ROUTE_K_API, ROUTE_NTH, "nth", &api_op_nth, "the n-th prime (nth(1) = 2)"},
    {"/v1/pi", G, MAIN, ROUTE_K_API, ROUTE_PI, "pi", &api_op_pi,
     "pi(x), the number of primes <= x"},
    {"/v1/next", G, MAIN, ROUTE_K_API, ROUTE_NEXT, "next", &api_op_next, "the smallest prime > n"},
    {"/v1/prev", G, MAIN, ROUTE_K_API, ROUTE_PREV, "prev", &api_op_prev, "the largest prime < n"},
    {"/v1/twin", G, MAIN, ROUTE_K_API, ROUTE_TWIN, "twin", &api_op_twin,
     "are n and n+2 both prime? (the pair when they are)"},
    {"/v1/factor", G, MAIN, ROUTE_K_API, ROUTE_FACTOR, "factor", &api_op_factor,
     "the prime factors of n, with exponents"},
    {"/v1/batch", P, MAIN, ROUTE_K_API, ROUTE_BATCH, "batch", &api_op_batch,
     "several queries in one JSON body {\"queries\":[...]}"},
    {"/healthz", G, MAIN | DBG, ROUTE_K_BUILTIN, ROUTE_HEALTHZ, "healthz", NULL, "liveness"},
    {"/readyz", G, MAIN | DBG, ROUTE_K_BUILTIN, ROUTE_READYZ, "readyz", NULL,
     "readiness (503 while starting or draining)"},
    {"/metrics", G, MAIN | DBG, ROUTE_K_BUILTIN, ROUTE_METRICS, "metrics", NULL,
     "Prometheus metrics (text format 0.0.4)"},
    {"/openapi.json", G, MAIN, ROUTE_K_BUILTIN, ROUTE_OPENAPI, "openapi", NULL,
     "this API's OpenAPI 3.1 description"},
    {"/", G, MAIN, ROUTE_K_BUILTIN, ROUTE_ROOT, "root", NULL, "this listing"},
    {"/debug/pprof/", G, DBG, ROUTE_K_DEBUG, ROUTE_DEBUG_INDEX, "debug", NULL, "this index"},
    {"/debug/pprof", G, DBG, ROUTE_K_DEBUG, ROUTE_DEBUG_INDEX, "debug", NULL, "this index"},
    {"/debug/pprof/heap", G, DBG, ROUTE_K_DEBUG, ROUTE_DEBUG_HEAP, "debug", NULL,
     "sampled live heap (tcmalloc, legacy text format)"},
    {"/debug/heap", G, DBG, ROUTE_K_DEBUG, ROUTE_DEBUG_HEAP, "debug", NULL,
     "sampled live heap (alias of /debug/pprof/heap)"},
    {"/debug/pprof/profile", G, DBG, ROUTE_K_DEBUG, ROUTE_DEBUG_PROFILE, "debug", NULL,
     "CPU profile; ?seconds=N"},
    {"/debug/pprof/symbol", G | P, DBG, ROUTE_K_DEBUG, ROUTE_DEBUG_SYMBOL, "debug", NULL,
     "address to function (POST 0xaddr+0xaddr...)"},
    {"/symbolz", G | P, DBG, ROUTE_K_DEBUG, ROUTE_DEBUG_SYMBOL, "debug", NULL,
     "address to function (google-pprof's path)"},
    {"/debug/pprof/cmdline", G, DBG, ROUTE_K_DEBUG, ROUTE_DEBUG_CMDLINE, "debug", NULL,
     "command line, NUL-separated"},
    {"/debug/stats", G, DBG, ROUTE_K_DEBUG, ROUTE_DEBUG_STATS, "debug", NULL,
     "tcmalloc statistics"},
    {"/debug/requests", G, DBG, ROUTE_K_DEBUG, ROUTE_DEBUG_REQUESTS, "debug", NULL,
     "requests in flight and workers (?limit=N, ?format=text)"},
    {"/debug/pprof/threads", G, DBG, ROUTE_K_DEBUG, ROUTE_DEBUG_THREADS, "debug", NULL,
     "every thread's stack now: pprof profile; ?debug=1 grouped text, ?debug=2 one per thread"},
    {"/debug/pprof/goroutine", G, DBG, ROUTE_K_DEBUG, ROUTE_DEBUG_THREADS, "debug", NULL,
     "the thread dump at the path Go users type (alias of /debug/pprof/threads)"},
    {"/debug/pprof/trace", G, DBG, ROUTE_K_DEBUG, ROUTE_DEBUG_TRACE, "debug", NULL,
     "execution trace; ?seconds=N (Chrome Trace Event Format JSON: Perfetto, speedscope)"},
    /* google-pprof takes a URL that does not end in a page it knows as a base and appends
     * /pprof/profile?seconds=N, /pprof/symbol and /pprof/cmdline: these rows let
     * `google-pprof --text .../debug/pprof/threads` work as typed. */
    {"/debug/pprof/threads/pprof/profile", G, DBG, ROUTE_K_DEBUG, ROUTE_DEBUG_THREADS_LEGACY,
     "debug", NULL, "the thread dump in gperftools' CPU format (google-pprof's path)"},
    {"/debug/pprof/threads/pprof/symbol", G | P, DBG, ROUTE_K_DEBUG, ROUTE_DEBUG_SYMBOL, "debug",
     NULL, "address to function (google-pprof's path for the thread dump)"},
    {"/debug/pprof/threads/pprof/cmdline", G, DBG, ROUTE_K_DEBUG, ROUTE_DEBUG_CMDLINE, "debug",
     NULL, "command line (google-pprof's path for the thread dump)"},
};
#define NROUTES (sizeof table / sizeof table[0])
_Static_assert(NROUTES < ROUTER_MAX_LABELS * 2, "route table larger than expected");

size_t router_count(void)
{
    return NROUTES;
}

const struct route *router_route(size_t i)
{
    return i < NROUTES ? &table[i] : NULL;
}

const struct route *router_find(enum route_id id)
{
    for (size_t i = 0; i < NROUTES; i++)
        if (table[i].id == id) return &table[i];
    return NULL;
}

static unsigned method_bit(const char *m)
{
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) return ROUTE_M_GET;
    if (strcmp(m, "POST") == 0) return ROUTE_M_POST;
    return 0;
}

enum router_result router_match(bool debug, const char *method, const char *path,
                                const struct route **out)
{
    *out = NULL;
    unsigned listener = debug ? ROUTE_L_DEBUG : ROUTE_L_MAIN;
    for (size_t i = 0; i < NROUTES; i++) {
        const struct route *e = &table[i];
        if (!(e->listeners & listener) || strcmp(e->path, path) != 0) continue;
        *out = e;
        return (method_bit(method) & e->methods) ? ROUTER_OK : ROUTER_METHOD_NOT_ALLOWED;
    }
    return ROUTER_NOT_FOUND;
}

const char *router_allow(const struct route *r)
{
    switch (r->methods) {
    case ROUTE_M_GET:
        return "GET, HEAD";
    case ROUTE_M_POST:
        return "POST";
    default:
        return "GET, HEAD, POST";
    }
}

/* ---- metric labels: written once under labels_once, read-only afterwards ------------------ */

static pthread_once_t labels_once = PTHREAD_ONCE_INIT;
static const char *label_names[ROUTER_MAX_LABELS];
static size_t nlabels;                  /* including "other" */
static unsigned char label_of[NROUTES]; /* row → dense label index */

static void labels_build(void)
{
    for (size_t i = 0; i < NROUTES; i++) {
        size_t k = 0;
        while (k < nlabels && strcmp(label_names[k], table[i].label) != 0)
            k++;
        if (k == nlabels && nlabels < ROUTER_MAX_LABELS - 1)
            label_names[nlabels++] = table[i].label;
        label_of[i] = (unsigned char)(k < nlabels ? k : ROUTER_MAX_LABELS - 1);
    }
    label_names[nlabels++] = "other";
}

size_t router_label_count(void)
{
    pthread_once(&labels_once, labels_build);
    return nlabels;
}

const char *router_label_name(size_t i)
{
    pthread_once(&labels_once, labels_build);
    return i < nlabels ? label_names[i] : label_names[nlabels - 1];
}

size_t router_label_index(const struct route *r)
{
    pthread_once(&labels_once, labels_build);
    if (!r || r < table || r >= table + NROUTES) return nlabels - 1;
    size_t k = label_of[r - table];
    return k < nlabels ? k : nlabels - 1;
}
