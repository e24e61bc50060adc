/* fuzz_router.c — libFuzzer harness for router_match against the route table's own rows.
 *
 * The expectation is derived from the table (router_count/router_route), as every test must, by
 * a different algorithm than the router's: the set of rows whose path equals the input and
 * which serve the listener decides found/not found, the row's methods decide 200 vs 405.
 * Properties: the result agrees; a 405 carries an Allow list that names the allowed methods and
 * not the refused one; no debug-kind handler is reachable on the main listener; deterministic.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "primed/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    const struct route *first = NULL;
    for (size_t i = router_count(); i-- > 0;) { /* backwards: the first matching row wins */
        const struct route *row = router_route(i);
        if (strcmp(row->path, path) != 0 ||
            !(row->listeners & (debug ? ROUTE_L_DEBUG : ROUTE_L_MAIN)))
            continue;
        bool ok = (get && (row->methods & ROUTE_M_GET)) || (post && (row->methods & ROUTE_M_POST));
        want = ok ? ROUTER_OK : ROUTER_METHOD_NOT_ALLOWED;
        first = row;
    }
    if (want != ROUTER_NOT_FOUND && r != first) abort();
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
        if (!debug && r->kind == ROUTE_K_DEBUG) abort(); /* never on the main port */
        if (!allow_has(router_allow(r), method)) abort();
        break;
    case ROUTER_METHOD_NOT_ALLOWED:
        if (r == NULL || router_allow(r)[0] == '\0') abort();
        if (allow_has(router_allow(r), method)) abort(); /* 405 for a method Allow names */
        break;
    default:
        abort();
    }
    free(buf);
    return 0;
}
