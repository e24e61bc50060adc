/* openapi.c — see openapi.h: GET /openapi.json, the OpenAPI 3.1 description of the service.
 *
 * Derived, never written out: paths and methods from the route table (router.c), parameters,
 * their limits and every 200 body from the op table (api_op.h), the error object and which
 * codes each status carries from the error table (errors.c), the limits' values from the
 * configuration in force. Built once at start with jansson and served as a static body, so a
 * request costs nothing here. A new row in any of those tables is described without a change
 * to this file; it must never name a path, an op or an error code.
 */
#include "openapi.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_op.h"
#include "handlers.h"
#include "primed/errors.h"
#include "primed/numparse.h"
#include "primed/router.h"

#ifndef PRIMED_VERSION
#define PRIMED_VERSION "0.0.0"
#endif

#define REF_U64 "#/components/schemas/U64"
#define REF_ERROR "#/components/schemas/Error"
#define SPEC_TOKEN_MAX 64

struct gen {
    const struct primed_config *cfg;
    json_t *schemas; /* components.schemas (borrowed from the root) */
    bool failed;     /* a setting named by a row is unknown, or a spec is malformed */
};

/* A u64 as JSON: jansson's integers are signed 64-bit, so the top half becomes a real (exact to
 * 2^-53 relative: only ever used for bounds). */
static json_t *u64_json(uint64_t x)
{
    return x <= (uint64_t)INT64_MAX ? json_integer((json_int_t)x) : json_real((double)x);
}

static json_t *ref(const char *to)
{
    return json_pack("{s:s}", "$ref", to);
}

/* ---- settings by name (config_each formats them as a flag takes them) --------------------- */

struct setting_find {
    const char *key;
    char value[128];
    bool found;
};

static void setting_cb(void *arg, const char *key, const char *value)
{
    struct setting_find *f = arg;
    if (strcmp(key, f->key) != 0) return;
    snprintf(f->value, sizeof f->value, "%s", value);
    f->found = true;
}

/* The setting key's value as a u64; a row that names an unknown or non-numeric setting fails the
 * build of the description (test_openapi checks every row through the served document). */
static uint64_t setting_u64(struct gen *g, const char *key)
{
    struct setting_find f = {.key = key};
    config_each(g->cfg, setting_cb, &f);
    uint64_t x = 0;
    if (!f.found || numparse_u64(f.value, &x) != NUMPARSE_OK) g->failed = true;
    return x;
}

static const char *setting_text(struct gen *g, const char *key, char *buf, size_t len)
{
    struct setting_find f = {.key = key};
    config_each(g->cfg, setting_cb, &f);
    if (!f.found) g->failed = true;
    snprintf(buf, len, "%s", f.value);
    return buf;
}

/* ---- the answer grammar (api_op.h): "name:type name?:type[]…" ------------------------------ */

static json_t *type_schema(struct gen *g, const char *type);

/* "u64[2][]": the base, then each suffix wraps it in an array, left to right. */
static json_t *typed_schema(struct gen *g, const char *t)
{
    char base[SPEC_TOKEN_MAX];
    size_t n = strcspn(t, "[");
    snprintf(base, sizeof base, "%.*s", (int)n, t);
    json_t *s = type_schema(g, base);
    for (t += n; *t == '[' && s; t = strchr(t, ']') ? strchr(t, ']') + 1 : t + strlen(t)) {
        json_t *arr = json_pack("{s:s,s:o}", "type", "array", "items", s);
        if (t[1] == '.' && t[2] == '.') {
            char key[SPEC_TOKEN_MAX];
            snprintf(key, sizeof key, "%.*s", (int)strcspn(t + 3, "]"), t + 3);
            json_object_set_new(arr, "maxItems", u64_json(setting_u64(g, key)));
        } else if (t[1] != ']') {
            json_int_t k = strtoll(t + 1, NULL, 10);
            json_object_set_new(arr, "minItems", json_integer(k));
            json_object_set_new(arr, "maxItems", json_integer(k));
        }
        s = arr;
    }
    return s;
}

/* {"type":"object","required":[…],"properties":{…},"additionalProperties":false} */
static json_t *spec_schema(struct gen *g, const char *spec)
{
    json_t *props = json_object(), *req = json_array();
    if (!spec) g->failed = true; /* a row without its answer: caught at start */
    while (spec && *spec) {
        size_t n = strcspn(spec, " ");
        char tok[SPEC_TOKEN_MAX], name[SPEC_TOKEN_MAX];
        snprintf(tok, sizeof tok, "%.*s", (int)n, spec);
        spec += n + (spec[n] == ' ');
        char *colon = strchr(tok, ':');
        if (!colon) {
            g->failed = true;
            continue;
        }
        bool optional = colon > tok && colon[-1] == '?';
        snprintf(name, sizeof name, "%.*s", (int)(colon - tok - optional), tok);
        json_t *s = typed_schema(g, colon + 1);
        if (!s) {
            g->failed = true;
            continue;
        }
        json_object_set_new(props, name, s);
        if (!optional) json_array_append_new(req, json_string(name));
    }
    return json_pack("{s:s,s:o,s:o,s:b}", "type", "object", "required", req, "properties", props,
                     "additionalProperties", 0);
}

/* The name of an op's answer schema in components.schemas ("countAnswer"). */
static void answer_name(const struct api_op_def *op, char *buf, size_t len)
{
    snprintf(buf, len, "%sAnswer", op->name);
}

/* A batch query of op: {"op":"count","from":…,"to":…}, members as integers or strings. */
static json_t *query_schema(const struct api_op_def *op)
{
    json_t *props = json_pack("{s:{s:s}}", "op", "const", op->name);
    json_t *req = json_pack("[s]", "op");
    for (int i = 0; i < HTTP_MAX_PARAMS && op->params[i].name; i++) {
        const struct api_param *p = &op->params[i];
        json_t *s = p->type == API_PARAM_U64
                        ? json_pack("{s:[o,{s:s}]}", "anyOf", ref(REF_U64), "type", "string")
                        : json_pack("{s:s}", "type", "string");
        json_object_set_new(s, "description", json_string(p->about));
        json_object_set_new(props, p->name, s);
        if (p->required) json_array_append_new(req, json_string(p->name));
    }
    return json_pack("{s:s,s:o,s:o,s:b}", "type", "object", "required", req, "properties", props,
                     "additionalProperties", 0);
}

/* "answer": any batch op's answer or an error; "query": any batch op's query. */
static json_t *batch_union(bool answers)
{
    json_t *any = json_array();
    for (size_t i = 0; i < router_count(); i++) {
        const struct route *rt = router_route(i);
        if (rt->kind != ROUTE_K_API || !rt->op || !rt->op->batch) continue;
        char name[SPEC_TOKEN_MAX + 32];
        answer_name(rt->op, name, sizeof name);
        char to[sizeof name + 32];
        snprintf(to, sizeof to, "#/components/schemas/%s", name);
        json_array_append_new(any, answers ? ref(to) : query_schema(rt->op));
    }
    if (answers) json_array_append_new(any, ref(REF_ERROR));
    return json_pack("{s:o}", "anyOf", any);
}

static json_t *type_schema(struct gen *g, const char *type)
{
    if (strcmp(type, "u64") == 0) return ref(REF_U64);
    if (strcmp(type, "bool") == 0) return json_pack("{s:s}", "type", "boolean");
    if (strcmp(type, "string") == 0) return json_pack("{s:s}", "type", "string");
    if (strcmp(type, "object") == 0) return json_pack("{s:s}", "type", "object");
    if (strcmp(type, "answer") == 0) return batch_union(true);
    if (strcmp(type, "query") == 0) return batch_union(false);
    g->failed = true;
    return NULL;
}

/* ---- components ---------------------------------------------------------------------------- */

/* The headers every answer may carry; errors_render and respond.c set them. */
static json_t *headers(void)
{
    return json_pack(
        "{s:{s:s,s:{s:s}},s:{s:s,s:{s:s,s:i}},s:{s:s,s:{s:s,s:i}},s:{s:s,s:{s:s,s:i}},"
        "s:{s:s,s:{s:s,s:i}},s:{s:s,s:{s:s}}}",
        "X-Request-Id", "description", "the request's X-Request-Id, or one made up for it",
        "schema", "type", "string", "RateLimit-Limit", "description",
        "tokens the client's bucket holds when full (1 token is about 1 ms of one worker's CPU); "
        "sent when rate_limit is on",
        "schema", "type", "integer", "minimum", 0, "RateLimit-Remaining", "description",
        "tokens left in the client's bucket after this request's price", "schema", "type",
        "integer", "minimum", 0, "RateLimit-Reset", "description",
        "seconds until the client's bucket is full again", "schema", "type", "integer", "minimum",
        0, "Retry-After", "description", "seconds to wait before trying again", "schema", "type",
        "integer", "minimum", 0, "Allow", "description", "the methods the path accepts", "schema",
        "type", "string");
}

static json_t *header_ref(const char *name)
{
    char to[64];
    snprintf(to, sizeof to, "#/components/headers/%s", name);
    return ref(to);
}

/* The response for an error status: the Error object whose code is one of the table's codes of
 * that status, with the headers errors_render (405 Allow, 503 Retry-After) and respond.c (every
 * 429 has Retry-After) add, and the RateLimit-* fields every metered /v1 answer carries. */
static json_t *error_response(int status)
{
    json_t *codes = json_array();
    char text[1024];
    size_t len = (size_t)snprintf(text, sizeof text, "%d:", status);
    for (int e = 0; e < PERR__COUNT; e++) {
        const struct primed_error_info *info = errors_info((enum primed_err)e);
        if (info->status != status) continue;
        json_array_append_new(codes, json_string(info->code));
        if (len < sizeof text)
            len +=
                (size_t)snprintf(text + len, sizeof text - len, "%s %s (%s)",
                                 json_array_size(codes) > 1 ? ";" : "", info->code, info->message);
    }
    json_t *schema = json_pack("{s:[o],s:{s:{s:{s:{s:o}}}}}", "allOf", ref(REF_ERROR), "properties",
                               "error", "properties", "code", "enum", codes);
    json_t *hdr = json_pack("{s:o}", "X-Request-Id", header_ref("X-Request-Id"));
    if (status == 405) json_object_set_new(hdr, "Allow", header_ref("Allow"));
    if (status == 429 || status == 503)
        json_object_set_new(hdr, "Retry-After", header_ref("Retry-After"));
    for (const char *const *h = (const char *const[]){"RateLimit-Limit", "RateLimit-Remaining",
                                                      "RateLimit-Reset", NULL};
         *h; h++)
        json_object_set_new(hdr, *h, header_ref(*h));
    return json_pack("{s:s,s:o,s:{s:{s:o}}}", "description", text, "headers", hdr, "content",
                     HTTP_JSON, "schema", schema);
}

/* Error, U64, the ops' answers, one response per error status (its codes), the headers. */
static json_t *components(struct gen *g)
{
    json_t *codes = json_array();
    for (int e = 0; e < PERR__COUNT; e++)
        json_array_append_new(codes, json_string(errors_code((enum primed_err)e)));
    json_t *err = json_pack(
        "{s:s,s:[s],s:{s:{s:s,s:[s,s],s:{s:{s:s,s:o},s:{s:s},s:{s:s}},s:b}},s:b}", "type", "object",
        "required", "error", "properties", "error", "type", "object", "required", "code", "message",
        "properties", "code", "type", "string", "enum", codes, "message", "type", "string", "param",
        "type", "string", "additionalProperties", 0, "additionalProperties", 0);
    json_t *u64 = json_pack("{s:s,s:s,s:i,s:o,s:s}", "type", "integer", "format", "uint64",
                            "minimum", 0, "maximum", u64_json(UINT64_MAX), "description",
                            "an unsigned 64-bit integer, 0 ... 2^64-1 (18446744073709551615)");
    g->schemas = json_pack("{s:o,s:o}", "Error", err, "U64", u64);
    for (size_t i = 0; i < router_count(); i++) {
        const struct route *rt = router_route(i);
        if (rt->kind != ROUTE_K_API || !rt->op) continue;
        char name[SPEC_TOKEN_MAX + 32];
        answer_name(rt->op, name, sizeof name);
        json_object_set_new(g->schemas, name, spec_schema(g, rt->op->answer));
    }
    json_t *resp = json_object();
    for (int e = 0; e < PERR__COUNT; e++) {
        const struct primed_error_info *info = errors_info((enum primed_err)e);
        char key[16];
        snprintf(key, sizeof key, "E%d", info->status);
        if (json_object_get(resp, key)) continue; /* built from its first code below */
        json_object_set_new(resp, key, error_response(info->status));
    }
    return json_pack("{s:o,s:o,s:o,s:{s:{s:s,s:s,s:s}}}", "schemas", g->schemas, "responses", resp,
                     "headers", headers(), "securitySchemes", "debugToken", "type", "http",
                     "scheme", "bearer", "description",
                     "debug_token (a setting); the debug listener only, and only when it is set");
}

/* ---- paths --------------------------------------------------------------------------------- */

/* A query parameter: its schema carries the bounds parse enforces, the text says which error
 * each side gets, x-primed-limit names the setting and its value in force. */
static json_t *parameter(struct gen *g, const struct api_param *p)
{
    char about[512];
    size_t len = (size_t)snprintf(about, sizeof about, "%s", p->about);
    json_t *schema;
    if (p->type == API_PARAM_WORD) {
        schema = json_pack("{s:s,s:[]}", "type", "string", "enum");
        for (const char *w = p->words; *w; w += strcspn(w, "|") + (w[strcspn(w, "|")] == '|'))
            json_array_append_new(json_object_get(schema, "enum"),
                                  json_stringn(w, strcspn(w, "|")));
        return json_pack("{s:s,s:s,s:b,s:s,s:o}", "name", p->name, "in", "query", "required",
                         p->required, "description", about, "schema", schema);
    }
    uint64_t max = p->max ? p->max : UINT64_MAX;
    json_t *limit = NULL;
    if (p->set) {
        uint64_t v = setting_u64(g, p->set);
        bool width = p->limit == API_LIMIT_WIDTH;
        if (!width && v < max) max = v;
        limit = json_pack("{s:s,s:o,s:s}", "setting", p->set, "value", u64_json(v), "of",
                          width ? "to - from" : p->name);
        len += (size_t)snprintf(about + len, sizeof about - len,
                                "; %s at most %s = %llu (else 400 limit_exceeded)",
                                width ? "to - from" : p->name, p->set, (unsigned long long)v);
    }
    if (p->max && len < sizeof about)
        len += (size_t)snprintf(about + len, sizeof about - len,
                                "; above %llu there is no answer (404 no_such_prime)",
                                (unsigned long long)p->max);
    if (len < sizeof about)
        snprintf(about + len, sizeof about - len, ". Decimal, or the exact shorthand DeK (1e10)");
    schema = json_pack("{s:s,s:s,s:o,s:o}", "type", "integer", "format", "uint64", "minimum",
                       u64_json(p->min), "maximum", u64_json(max));
    json_t *o = json_pack("{s:s,s:s,s:b,s:s,s:o}", "name", p->name, "in", "query", "required",
                          p->required, "description", about, "schema", schema);
    if (limit) json_object_set_new(o, "x-primed-limit", limit);
    return o;
}

/* The 200 of a route: an op's answer (and its text form), a built-in's from its row, a debug
 * endpoint's by its summary alone (profiles, text, JSON: see docs/observability.md). */
static json_t *success(struct gen *g, const struct route *rt)
{
    json_t *r = json_pack("{s:s,s:{s:o}}", "description", rt->summary, "headers", "X-Request-Id",
                          header_ref("X-Request-Id"));
    json_t *content = json_object();
    if (rt->kind == ROUTE_K_API && rt->op) {
        char to[SPEC_TOKEN_MAX + 64], name[SPEC_TOKEN_MAX + 32];
        answer_name(rt->op, name, sizeof name);
        snprintf(to, sizeof to, "#/components/schemas/%s", name);
        json_object_set_new(content, HTTP_JSON, json_pack("{s:o}", "schema", ref(to)));
        if (rt->op->text)
            json_object_set_new(content, "text/plain",
                                json_pack("{s:{s:s,s:s}}", "schema", "type", "string",
                                          "description", rt->op->text));
        json_t *h = json_object_get(r, "headers");
        for (const char *const *n = (const char *const[]){"RateLimit-Limit", "RateLimit-Remaining",
                                                          "RateLimit-Reset", NULL};
             *n; n++)
            json_object_set_new(h, *n, header_ref(*n));
    } else if (rt->kind == ROUTE_K_BUILTIN) {
        const char *a = handlers_answer(rt->id);
        if (!a)
            g->failed = true;
        else if (a[0] == '@')
            json_object_set_new(content, a + 1, json_pack("{s:{s:s}}", "schema", "type", "string"));
        else
            json_object_set_new(content, HTTP_JSON,
                                json_pack("{s:o}", "schema", spec_schema(g, a)));
    }
    if (json_object_size(content))
        json_object_set_new(r, "content", content);
    else
        json_decref(content);
    return r;
}

/* "200" and every status of the error table that this kind of route can answer. */
static json_t *responses(struct gen *g, const struct route *rt)
{
    unsigned mask = rt->kind == ROUTE_K_API
                        ? PERR_ON_API | (rt->op && rt->op->body ? PERR_ON_BODY : 0)
                    : rt->kind == ROUTE_K_DEBUG ? PERR_ON_DEBUG
                                                : 0;
    json_t *r = json_pack("{s:o}", "200", success(g, rt));
    for (int e = 0; e < PERR__COUNT; e++) {
        const struct primed_error_info *info = errors_info((enum primed_err)e);
        if (info->where && !(info->where & mask)) continue;
        char key[16], to[64];
        snprintf(key, sizeof key, "%d", info->status);
        snprintf(to, sizeof to, "#/components/responses/E%d", info->status);
        json_object_set_new(r, key, ref(to));
    }
    return r;
}

static json_t *operation(struct gen *g, const struct route *rt, const char *method)
{
    char id[128];
    size_t n = (size_t)snprintf(id, sizeof id, "%s", method);
    for (const char *c = rt->path; *c && n + 1 < sizeof id; c++)
        id[n++] = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ? *c : '_';
    id[n] = '\0';
    const char *tag = rt->kind == ROUTE_K_API     ? "api"
                      : rt->kind == ROUTE_K_DEBUG ? "debug"
                                                  : "service";
    json_t *op = json_pack("{s:s,s:s,s:[s],s:o}", "operationId", id, "summary", rt->summary, "tags",
                           tag, "responses", responses(g, rt));
    json_t *params = json_array();
    const struct api_op_def *d = rt->kind == ROUTE_K_API ? rt->op : NULL;
    for (int i = 0; d && !d->body && i < HTTP_MAX_PARAMS && d->params[i].name; i++)
        json_array_append_new(params, parameter(g, &d->params[i]));
    json_object_set_new(op, "parameters", params);
    if (d && d->body && strcmp(method, "post") == 0)
        json_object_set_new(op, "requestBody",
                            json_pack("{s:b,s:{s:{s:o}}}", "required", 1, "content", HTTP_JSON,
                                      "schema", spec_schema(g, d->body)));
    json_object_set_new(op, "security",
                        rt->kind == ROUTE_K_DEBUG ? json_pack("[{s:[]}]", "debugToken")
                                                  : json_array());
    return op;
}

/* One path item per path; a path served only by the debug listener says so in its servers. */
static json_t *paths(struct gen *g)
{
    json_t *out = json_object();
    char dbg[128];
    setting_text(g, "debug_listen", dbg, sizeof dbg);
    for (size_t i = 0; i < router_count(); i++) {
        const struct route *rt = router_route(i);
        json_t *item = json_object_get(out, rt->path);
        if (!item) {
            item = json_object();
            json_object_set_new(out, rt->path, item);
        }
        if (!(rt->listeners & ROUTE_L_MAIN))
            json_object_set_new(
                item, "servers",
                json_pack("[{s:s,s:s,s:{s:{s:s,s:s}}}]", "url", "http://{debug_listen}",
                          "description", "the debug listener (debug_listen)", "variables",
                          "debug_listen", "default", dbg, "description", "its address"));
        if (rt->methods & ROUTE_M_GET) json_object_set_new(item, "get", operation(g, rt, "get"));
        if (rt->methods & ROUTE_M_POST) json_object_set_new(item, "post", operation(g, rt, "post"));
    }
    return out;
}

int openapi_render(const struct primed_config *cfg, char **out, size_t *len)
{
    struct gen g = {.cfg = cfg};
    json_t *comp = components(&g);
    json_t *root = json_pack(
        "{s:s,s:{s:s,s:s,s:s},s:[{s:s,s:s}],s:[{s:s,s:s},{s:s,s:s},{s:s,s:s}],s:o,s:o}", "openapi",
        "3.1.0", "info", "title", "primed", "version", PRIMED_VERSION, "description",
        "Prime numbers over HTTP: counts, lists, pi(x), nth prime, primality, factorization. "
        "Generated by the server from its route, operation and error tables, with the limits of "
        "its configuration.",
        "servers", "url", "/", "description", "this server (the main listener)", "tags", "name",
        "api", "description", "the prime API (rate-limited when rate_limit is on)", "name",
        "service", "description", "health, readiness, metrics and this description", "name",
        "debug", "description", "profiling, on the debug listener behind the bearer token", "paths",
        paths(&g), "components", comp);
    if (!root || g.failed) {
        json_decref(root);
        return -EINVAL;
    }
    *out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!*out) return -ENOMEM;
    *len = strlen(*out);
    return 0;
}
