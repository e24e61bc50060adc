/* fuzz_router.c — libFuzzer harness for router_match against the documented route table.
 *
 * The reference below is written from the API documentation, not from router.c: which paths
 * each listener serves and with which methods. Properties: the result agrees with it; a 405
 * carries an Allow list that names the allowed methods and not the refused one; nothing under
 * /debug/ (or /symbolz) is reachable on the main listener; the answer is deterministic.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "primed/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ref {
    const char *path;
    bool post_only;
    bool main, debug;
};
static const struct ref routes[] = {
    {"/", false, true, false},           {"/healthz", false, true, true},
    {"/readyz", false, true, true},      {"/metrics", false, true, true},
    {"/v1/primes", false, true, false},  {"/v1/count", false, true, false},
    {"/v1/isprime", false, true, false}, {"/v1/nth", false, true, false},
    {"/v1/next", false, true, false},    {"/v1/prev", false, true, false},
    {"/v1/batch", true, true, false},
};

/* Does the comma-separated Allow list name m exactly? */
static bool allow_has(const char *allow, const char *m)
{
    size_t n = strlen(m);
    for (const char *p = allow; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t k = strcspn(p, ", ");
        if (k == n && memcmp(p, m, n) == 0) return true;
        p += k;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096) return -1;
    bool debug = data[0] & 1;
    /* method NUL path (both C strings, as the server hands them over) */
    char *buf = malloc(size + 1);
    if (buf == NULL) return 0;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    const char *method = buf;
    size_t ml = strlen(buf);
    const char *path = ml + 1 < size ? buf + ml + 1 : "";

    const struct route *r = (const struct route *)1;
    enum router_result res = router_match(debug, method, path, &r);
    const struct route *r2;
    if (router_match(debug, method, path, &r2) != res || r2 != r) abort();

    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0;
    enum router_result want = ROUTER_NOT_FOUND;
    if (debug && (strncmp(path, "/debug/", 7) == 0 || strcmp(path, "/symbolz") == 0)) {
        want = get || post ? ROUTER_OK : ROUTER_METHOD_NOT_ALLOWED;
    } else {
        for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
            if (strcmp(routes[i].path, path) != 0 || !(debug ? routes[i].debug : routes[i].main))
                continue;
            bool ok = routes[i].post_only ? post : get;
            want = ok ? ROUTER_OK : ROUTER_METHOD_NOT_ALLOWED;
        }
    }
    if (res != want) {
        fprintf(stderr, "router_match(%d, \"%s\", \"%s\") = %d, documented %d\n", debug, method,
                path, (int)res, (int)want);
        abort();
    }
    switch (res) {
    case ROUTER_NOT_FOUND:
        break;
    case ROUTER_OK:
        if (r == NULL || (unsigned)r->id >= ROUTE__COUNT) abort();
        if (!debug && r->id == ROUTE_DEBUG) abort(); /* debug handlers never on the main port */
        if (!allow_has(r->allow, method)) abort();
        break;
    case ROUTER_METHOD_NOT_ALLOWED:
        if (r == NULL || r->allow == NULL || r->allow[0] == '\0') abort();
        if (allow_has(r->allow, method)) abort(); /* 405 for a method Allow names */
        break;
    default:
        abort();
    }
    free(buf);
    return 0;
}
