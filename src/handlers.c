/* handlers.c — see handlers.h: the built-in endpoints and the debug listener's bearer token.
 *
 * Never touches libmicrohttpd or a worker: each answer is a static body, the route table's
 * listing built once, or the metrics exposition. The `/` listing is derived from router.c's
 * table, never written out here.
 */
#include "handlers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "openapi.h"
#include "primed/errors.h"
#include "primed/jsonw.h"
#include "primed/memwatch.h"
#include "primed/metrics.h"
#include "primed/profiling.h"

#ifndef PRIMED_VERSION
#define PRIMED_VERSION "0.0.0"
#endif

/* What each built-in answers (handlers_answer); a built-in row without one fails the start
 * (openapi_render), so a new built-in cannot be left undescribed. */
static const struct {
    enum route_id id;
    const char *answer;
} answers[] = {
    {ROUTE_HEALTHZ, "status:string"},
    {ROUTE_READYZ, "status:string"},
    {ROUTE_METRICS, "@text/plain"},
    {ROUTE_OPENAPI, "openapi:string info:object servers:object[] tags:object[] paths:object "
                    "components:object"},
    {ROUTE_ROOT, "name:string version:string endpoints:string[]"},
};

const char *handlers_answer(enum route_id id)
{
    for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++)
        if (answers[i].id == id) return answers[i].answer;
    return NULL;
}

/* The `/` body, derived from the route table: every main-listener path but `/` itself. */
int handlers_init(struct handlers *h, const struct primed_config *cfg)
{
    h->openapi = NULL;
    int r = openapi_render(cfg, &h->openapi, &h->openapi_len);
    if (r != 0) return r;
    struct jsonw w;
    jsonw_init_fixed(&w, h->root_body, sizeof h->root_body);
    jsonw_lit(&w, "{\"name\":\"primed\",\"version\":");
    jsonw_str(&w, PRIMED_VERSION);
    jsonw_lit(&w, ",\"endpoints\":[");
    bool first = true;
    for (size_t i = 0; i < router_count(); i++) {
        const struct route *rt = router_route(i);
        if (!(rt->listeners & ROUTE_L_MAIN) || rt->id == ROUTE_ROOT) continue;
        if (!first) jsonw_char(&w, ',');
        jsonw_str(&w, rt->path);
        first = false;
    }
    jsonw_lit(&w, "]}");
    h->root_len = w.len;
    return w.overflow ? -ENOSPC : 0;
}

void handlers_fini(struct handlers *h)
{
    free(h->openapi);
    h->openapi = NULL;
}

bool handlers_builtin(const struct handlers *h, enum route_id id, const struct handlers_status *st,
                      struct http_response *resp)
{
    switch (id) {
    case ROUTE_HEALTHZ:
        http_response_static(resp, 200, HTTP_JSON, "{\"status\":\"ok\"}", 15);
        return true;
    case ROUTE_READYZ: {
        bool shedding = memwatch_shedding();
        if (st->ready && !st->draining && !shedding)
            http_response_static(resp, 200, HTTP_JSON, "{\"status\":\"ready\"}", 18);
        else
            errors_render(resp, PERR_UNAVAILABLE, NULL, NULL, "%s",
                          st->draining ? "draining"
                          : shedding   ? "memory above the high-water mark"
                                       : "starting");
        return true;
    }
    case ROUTE_OPENAPI:
        http_response_static(resp, 200, HTTP_JSON, h->openapi, h->openapi_len);
        return true;
    case ROUTE_ROOT:
        http_response_static(resp, 200, HTTP_JSON, h->root_body, h->root_len);
        return true;
    case ROUTE_METRICS: {
        char *out = NULL;
        size_t len = 0;
        if (metrics_render(&out, &len) != 0)
            errors_render(resp, PERR_INTERNAL, NULL, NULL, NULL);
        else
            http_response_body_owned(resp, 200, METRICS_CONTENT_TYPE, out, len);
        return true;
    }
    default:
        return false;
    }
}

static bool token_ok(const char *tok, const struct http_request *req)
{
    if (!tok[0]) return true;
    const char *h = req->get_header(req, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7) != 0) return false;
    h += 7;
    size_t hl = strlen(h), tl = strlen(tok);
    unsigned char diff = hl != tl;
    for (size_t i = 0; i < tl; i++)
        diff |= (unsigned char)(tok[i] ^ (i < hl ? h[i] : 0));
    return diff == 0;
}

void handlers_debug(const char *token, enum route_id id, const struct http_request *req,
                    struct http_response *resp)
{
    if (!token_ok(token, req)) {
        errors_render(resp, PERR_UNAUTHORIZED, NULL, NULL,
                      "Authorization: Bearer <debug_token> required");
        return;
    }
    profiling_handle(id, req, resp);
}
