/* batch.c — POST /v1/batch: several queries in one JSON body, {"queries":[…]} → {"results":[…]}.
 *
 * A loop over the single-request path: each query goes through api_prepare and api_run exactly
 * as the GET endpoint of its op (a row of the op table marked batch), and its answer's body is
 * spliced into the results. What is batch's own: the envelope, the pre-scan that bounds what the
 * parse may allocate, the counting allocator the parse runs under, and the pre-price (the sum of
 * the queries' cost estimates) charged before any query runs. It never computes a result itself.
 */
#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_op.h"
#include "primed/errors.h"
#include "primed/jsonw.h"
#include "primed/reqmem.h"

/* A batch answer never grows beyond this (1000 queries × ~120 bytes fits many times over). */
#define BATCH_BODY_MAX (16u << 20)
/* Up front, unparsed (the I/O thread never parses a body), a batch is priced as one small query
 * per BATCH_MIN_QUERY_BYTES of body. */
#define BATCH_MIN_QUERY_BYTES 22 /* {"op":"isprime","n":1} */

/* POST /v1/batch is a loop over the single-request code: each query becomes a struct
 * http_request whose arguments are the query's members (as strings), goes through api_prepare
 * and api_run exactly as the GET endpoint of its op does, and the body of that answer (a result
 * or an error from errors.c) is spliced into {"results":[…]}. The envelope is the only part
 * that is batch's own: the body's shape, the op names, the members' JSON types.
 *
 * Memory. The body waits for a worker as raw bytes (charged by server.c to the request memory
 * budget). On the worker, before jansson sees it, batch_scan walks the bytes once (O(n), no
 * allocation) and refuses what the API cannot use: nesting below a query, more queries than
 * max_batch_queries, more than BATCH_MEMBERS_MAX members in an object, tokens longer than
 * BATCH_TOKEN_MAX. What is left parses into a tree of about 1.3–2 KiB a query, and the parse
 * runs under a counting allocator (json_acct) that stops it at a per-parse cap and charges what
 * it holds to the same budget. So a queued batch holds its raw bytes only, and a running one
 * its bytes plus a tree of a few MiB at most (the audit's 1 MiB body of small objects made a
 * 65 MiB tree, held while it waited). A streaming parse would avoid the tree, but jansson has none,
 * and the scan leaves the tree small and bounded. */

/* A batch op is an API route whose op row is marked `batch`; its name is the op's name. */
static bool is_batch_op(const struct route *rt)
{
    return rt->kind == ROUTE_K_API && rt->op && rt->op->batch;
}

#define BATCH_DEPTH_MAX 3 /* {"queries":[{…}]}: root, array, query */
/* Members of the root and of one query: op, the parameters, and slack for unknown names, which
 * are answered per query (unknown_parameter) as GET answers them. */
#define BATCH_MEMBERS_MAX 8
#define BATCH_TOKEN_MAX 256 /* bytes of one string (with its quotes) or number/literal */
/* A parse is stopped (400) above BASE + PER_QUERY × max_batch_queries + 2 × the body's bytes.
 * Within the scan's limits a real one stays below: measured with jansson 2.14, 1000 queries of 8
 * members peak at 1.3 MiB with 1-byte tokens, 2.0 MiB with 60-byte ones (a 0.9 MB body). */
#define BATCH_PARSE_PER_QUERY (2u * 1024)
#define BATCH_PARSE_BASE (64u * 1024)
/* The parse charges the budget in steps of this size, not per malloc. */
#define BATCH_CHARGE_STEP (64u * 1024)

/* One O(n) pass over the raw body. 0, or -1 with a 400 rendered into resp. It does not validate
 * JSON (jansson does, afterwards); it only bounds what a valid document could make jansson
 * allocate. */
static int batch_scan(const struct api_ctx *ctx, const char *s, size_t n,
                      struct http_response *resp)
{
    unsigned depth = 0;
    uint64_t commas[BATCH_DEPTH_MAX + 1] = {0}; /* in the open container at each depth */
    size_t tok = 0;                             /* length of the number/literal being read */
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '"') {
            size_t j = i + 1;
            while (j < n && s[j] != '"')
                j += s[j] == '\\' ? 2 : 1;
            if (j - i + 1 > BATCH_TOKEN_MAX) {
                errors_render(resp, PERR_LIMIT_EXCEEDED, "queries", NULL,
                              "a batch string is longer than %d bytes", BATCH_TOKEN_MAX - 2);
                return -1;
            }
            i = j;
            tok = 0;
            continue;
        }
        switch (c) {
        case '{':
        case '[':
            if (++depth > BATCH_DEPTH_MAX) {
                errors_render(resp, PERR_BAD_JSON, "queries", NULL,
                              "the body must be {\"queries\":[{…},…]}: nothing nests inside a "
                              "query");
                return -1;
            }
            commas[depth] = 0;
            tok = 0;
            break;
        case '}':
        case ']':
            if (depth) depth--;
            tok = 0;
            break;
        case ',':
            tok = 0;
            if (depth == 2 && ++commas[2] >= ctx->cfg->max_batch_queries) {
                errors_render(resp, PERR_LIMIT_EXCEEDED, "queries", NULL,
                              "at most max_batch_queries = %u queries per batch",
                              ctx->cfg->max_batch_queries);
                return -1;
            }
            if (depth != 2 && depth && ++commas[depth] >= BATCH_MEMBERS_MAX) {
                errors_render(resp, PERR_LIMIT_EXCEEDED, "queries", NULL,
                              "at most %d members in a batch object", BATCH_MEMBERS_MAX);
                return -1;
            }
            break;
        case ' ':
        case '\t':
        case '\n':
        case '\r':
        case ':':
            tok = 0;
            break;
        default:
            if (++tok > BATCH_TOKEN_MAX) {
                errors_render(resp, PERR_LIMIT_EXCEEDED, "queries", NULL,
                              "a batch number is longer than %d bytes", BATCH_TOKEN_MAX);
                return -1;
            }
        }
    }
    return 0;
}

/* The counting allocator behind jansson while a batch is parsed, used, and freed on this thread
 * (thread-local: jansson's hook is process-wide, and config.c and tests use jansson
 * uncounted). Sizes come from malloc_usable_size, not from a size prefix: a prefix would break
 * the free of every block allocated before the hook was installed or outside a parse (config.c,
 * tests), which this hook also frees. Between json_acct_begin and _end every jansson block on
 * this thread is one of the parse's, so `used` is exact. */
struct json_acct {
    struct reqmem *mem;
    size_t cap;         /* stop the parse above this */
    size_t used;        /* usable bytes of the live blocks */
    size_t charged;     /* bytes charged to mem (≥ used, in BATCH_CHARGE_STEP steps) */
    bool over_cap;      /* a malloc was refused: the parse would pass cap */
    bool over_budget;   /* a malloc was refused: the budget is spent */
    bool malloc_failed; /* malloc itself failed */
};
static _Thread_local struct json_acct *json_acct_now;

static void *json_acct_malloc(size_t n)
{
    struct json_acct *a = json_acct_now;
    if (!a) return malloc(n);
    if (n > a->cap - a->used) {
        a->over_cap = true;
        return NULL;
    }
    void *p = malloc(n);
    if (!p) {
        a->malloc_failed = true;
        return NULL;
    }
    size_t sz = malloc_usable_size(p);
    if (sz > a->cap - a->used) {
        free(p);
        a->over_cap = true;
        return NULL;
    }
    if (a->used + sz > a->charged) {
        size_t step = a->used + sz - a->charged;
        step = (step + BATCH_CHARGE_STEP - 1) / BATCH_CHARGE_STEP * BATCH_CHARGE_STEP;
        if (!reqmem_charge(a->mem, step)) {
            free(p);
            a->over_budget = true;
            return NULL;
        }
        a->charged += step;
    }
    a->used += sz;
    return p;
}

static void json_acct_free(void *p)
{
    struct json_acct *a = json_acct_now;
    if (a && p) a->used -= malloc_usable_size(p);
    free(p);
}

static void json_acct_install(void)
{
    json_set_alloc_funcs(json_acct_malloc, json_acct_free);
}

static void json_acct_begin(struct json_acct *a, struct reqmem *mem, size_t cap)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, json_acct_install);
    *a = (struct json_acct){.mem = mem, .cap = cap};
    json_acct_now = a;
}

static void json_acct_end(struct json_acct *a)
{
    json_acct_now = NULL;
    reqmem_release(a->mem, a->charged);
    a->charged = 0;
}

/* One batch query seen as a GET request: its members other than "op" are the arguments, in
 * order, as the strings a query string would carry. */
struct batch_query {
    struct http_request req;
    unsigned nargs;
    const char *names[BATCH_MEMBERS_MAX];
    const char *vals[BATCH_MEMBERS_MAX];
    char ints[BATCH_MEMBERS_MAX][24]; /* JSON integers in decimal */
};

static const char *bq_get_arg(const struct http_request *req, const char *name)
{
    const struct batch_query *bq = req->impl;
    for (unsigned i = 0; i < bq->nargs; i++)
        if (strcmp(bq->names[i], name) == 0) return bq->vals[i];
    return NULL;
}

static void bq_each_arg(const struct http_request *req,
                        void (*fn)(void *arg, const char *name, const char *value), void *arg)
{
    const struct batch_query *bq = req->impl;
    for (unsigned i = 0; i < bq->nargs; i++)
        fn(arg, bq->names[i], bq->vals[i]);
}

/* The route of query o, with its arguments in bq; or -1 with the envelope's error in er. The
 * request has no path, headers or body: api_prepare reads only the arguments of these routes. */
static int batch_query_init(json_t *o, struct batch_query *bq, struct http_response *er)
{
    const char *op = json_string_value(json_object_get(o, "op"));
    if (!json_is_object(o) || !op) {
        errors_render(er, PERR_BAD_JSON, "op", NULL,
                      "each query must be an object with a string op");
        return -1;
    }
    int route = -1;
    for (size_t i = 0; i < router_count(); i++)
        if (is_batch_op(router_route(i)) && strcmp(router_route(i)->op->name, op) == 0)
            route = (int)router_route(i)->id;
    if (route < 0) {
        char list[128] = "";
        for (size_t i = 0; i < router_count(); i++)
            if (is_batch_op(router_route(i)))
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                         list[0] ? ", " : "", router_route(i)->op->name);
        errors_render(er, PERR_BAD_PARAM, "op", NULL, "op must be one of %s", list);
        return -1;
    }
    bq->req = (struct http_request){
        .method = "GET", .get_arg = bq_get_arg, .each_arg = bq_each_arg, .impl = bq};
    bq->nargs = 0;
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val)
    {
        if (strcmp(key, "op") == 0) continue;
        if (bq->nargs == BATCH_MEMBERS_MAX) break; /* batch_scan allows no more */
        unsigned i = bq->nargs++;
        bq->names[i] = key;
        if (json_is_integer(val)) {
            snprintf(bq->ints[i], sizeof bq->ints[i], "%" JSON_INTEGER_FORMAT,
                     json_integer_value(val));
            bq->vals[i] = bq->ints[i];
        } else if (json_is_string(val) &&
                   strlen(json_string_value(val)) == json_string_length(val)) {
            bq->vals[i] = json_string_value(val);
        } else {
            errors_render(er, PERR_BAD_PARAM, key, NULL,
                          "%.64s must be a JSON integer or a string (one above 2^63-1 must be a "
                          "string)",
                          key);
            return -1;
        }
    }
    return route;
}

/* One query's answer into er, through the GET path. Returns POOL_DONE (er holds a result or an
 * error), or the outcome of a cancelled computation (er holds its error: it answers the batch). */
static enum pool_outcome batch_query_answer(const struct api_ctx *ctx, struct api_worker *w,
                                            json_t *o, const atomic_int *cancel,
                                            struct http_response *er)
{
    struct batch_query bq;
    int route = batch_query_init(o, &bq, er);
    if (route < 0) return POOL_DONE;
    struct api_query sq;
    enum api_plan plan = api_prepare(ctx, (enum route_id)route, &bq.req, &sq, er);
    enum pool_outcome out = POOL_DONE;
    if (plan == API_RUN)
        out = api_run(ctx, &sq, w, cancel, er);
    else if (plan != API_ANSWERED)
        errors_render(er, PERR_INTERNAL, NULL, NULL, "batch op without a fixed-size answer");
    api_query_fini(&sq);
    return out;
}

/* Parse q's body under the accounting allocator `a` (begun by the caller). Returns the tree, or
 * NULL with the error in resp. */
static json_t *batch_parse(const struct api_ctx *ctx, const struct api_query *q,
                           struct json_acct *a, struct http_response *resp)
{
    if (batch_scan(ctx, q->body, q->body_len, resp) != 0) return NULL;
    json_error_t jerr;
    json_t *root = json_loadb(q->body, q->body_len, JSON_REJECT_DUPLICATES, &jerr);
    /* jansson reports most allocation failures inside its lexer as syntax errors, so the flags,
     * not jerr, tell the client's bad JSON from our refusals. */
    if (a->over_budget) {
        errors_render(resp, PERR_OVERLOADED, NULL, NULL, "request memory budget exhausted");
    } else if (a->over_cap) {
        errors_render(resp, PERR_LIMIT_EXCEEDED, "queries", NULL,
                      "the batch needs more than %zu bytes to parse", a->cap);
    } else if (a->malloc_failed) {
        errors_render(resp, PERR_INTERNAL, NULL, NULL, "out of memory while parsing the body");
    } else if (!root) {
        errors_render(resp, PERR_BAD_JSON, NULL, NULL, "invalid JSON at line %d column %d: %s",
                      jerr.line, jerr.column, jerr.text);
    } else {
        json_t *qs = json_object_get(root, "queries");
        if (!json_is_object(root) || json_object_size(root) != 1 || !json_is_array(qs)) {
            errors_render(resp, PERR_BAD_JSON, "queries", NULL,
                          "the body must be {\"queries\":[…]} and nothing else");
        } else if (json_array_size(qs) > ctx->cfg->max_batch_queries) {
            errors_render(resp, PERR_LIMIT_EXCEEDED, "queries", NULL,
                          "at most max_batch_queries = %u queries per batch",
                          ctx->cfg->max_batch_queries);
        } else {
            return root;
        }
    }
    json_decref(root);
    return NULL;
}

/* The worker milliseconds of every query of qs, by the cost model, without running any: *price
 * from scratch, *now as the π cache stands (cost_ms). Each is prepared as its GET (with small
 * answers kept off the I/O-thread path, so none is computed here); one that prepare answers (an
 * error, a refusal) costs what a small query does. */
static void batch_cost_ms(const struct api_ctx *ctx, json_t *qs, double *price, double *now)
{
    struct api_ctx pctx = *ctx;
    pctx.inline_small = false;
    *price = *now = 0;
    for (size_t i = 0; i < json_array_size(qs); i++) {
        struct http_response er;
        http_response_init(&er);
        struct batch_query bq;
        int route = batch_query_init(json_array_get(qs, i), &bq, &er);
        struct api_query sq;
        memset(&sq, 0, sizeof sq);
        enum api_plan plan =
            route < 0 ? API_ANSWERED : api_prepare(&pctx, (enum route_id)route, &bq.req, &sq, &er);
        *price += plan == API_ANSWERED ? API_SMALL_MS : sq.op->cost_ms(NULL, &sq);
        *now += plan == API_ANSWERED ? API_SMALL_MS : sq.op->cost_ms(&pctx, &sq);
        api_query_fini(&sq);
        http_response_fini(&er);
    }
}

/* Before any query runs: the batch's whole price is its queries' sum, refused like a single
 * request when it clearly cannot finish in time on the workers it may use (400, as admit_by_cost
 * refuses one query), and charged to the client through q->charge (a 429 if its bucket cannot
 * pay it). 0 to go on, -1 with the answer in resp. */
static int batch_admit(const struct api_ctx *ctx, struct api_query *q, json_t *qs,
                       struct http_response *resp)
{
    double ms, now, wall;
    batch_cost_ms(ctx, qs, &ms, &now);
    if (api_hopeless(ctx, now, &wall)) {
        unsigned nw = api_usable_workers(ctx);
        errors_render(resp, PERR_LIMIT_EXCEEDED, "queries", NULL,
                      "the batch's %zu queries are estimated at %.3g s on %u worker%s (%.3g s of "
                      "CPU), deadline request_timeout_ms = %u ms",
                      json_array_size(qs), wall, nw, nw == 1 ? "" : "s", now / 1000.0,
                      ctx->cfg->request_timeout_ms);
        return -1;
    }
    if (q->charge && !q->charge(q->charge_arg, api_tokens(ms), resp)) return -1;
    return 0;
}

static enum pool_outcome batch_run(const struct api_ctx *ctx, struct api_query *q,
                                   struct api_worker *w, const atomic_int *cancel,
                                   struct http_response *resp)
{
    struct json_acct acct;
    json_acct_begin(&acct, ctx->mem,
                    BATCH_PARSE_BASE + (size_t)ctx->cfg->max_batch_queries * BATCH_PARSE_PER_QUERY +
                        2 * q->body_len);
    json_t *root = batch_parse(ctx, q, &acct, resp);
    enum pool_outcome out = POOL_DONE;
    if (!root) goto done;
    json_t *qs = json_object_get(root, "queries");
    if (batch_admit(ctx, q, qs, resp) != 0) goto done;
    struct jsonw body;
    jsonw_init_dynamic(&body, BATCH_BODY_MAX);
    jsonw_lit(&body, "{\"results\":[");
    for (size_t i = 0; i < json_array_size(qs); i++) {
        struct http_response er;
        http_response_init(&er);
        out = batch_query_answer(ctx, w, json_array_get(qs, i), cancel, &er);
        if (out != POOL_DONE) { /* cancelled: its error answers the whole batch */
            http_response_fini(resp);
            *resp = er;
            jsonw_fini(&body);
            goto done;
        }
        if (i) jsonw_char(&body, ',');
        jsonw_raw(&body, er.body ? er.body : "null", er.body ? er.body_len : 4);
        http_response_fini(&er);
    }
    jsonw_lit(&body, "]}");
    if (body.overflow) {
        jsonw_fini(&body);
        errors_render(resp, PERR_INTERNAL, NULL, NULL, "batch answer too large");
        goto done;
    }
    size_t len;
    char *text = jsonw_steal(&body, &len);
    if (!text) {
        errors_render(resp, PERR_INTERNAL, NULL, NULL, NULL);
        goto done;
    }
    http_response_body_owned(resp, 200, HTTP_JSON, text, len);
done:
    json_decref(root);
    json_acct_end(&acct);
    return out;
}

/* ---- the op ------------------------------------------------------------------------------- */

static bool is_json_type(const char *ct)
{
    if (!ct) return false;
    while (*ct == ' ')
        ct++;
    size_t n = strlen("application/json");
    return strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* The body is not looked at here: parsing it is work proportional to the request (a 1 MiB body
 * took the I/O thread ~50 ms, and its tree held ~65 MiB while the job waited for a worker). The
 * job keeps only the raw bytes, which server.c has charged to the request memory budget. */
static enum api_plan batch_parse_request(const struct api_ctx *ctx, const struct http_request *req,
                                         struct api_query *q, struct http_response *resp)
{
    (void)ctx;
    struct http_params p;
    if (api_params_check(req, q->op, &p, resp)) return API_ANSWERED;
    if (!is_json_type(req->get_header ? req->get_header(req, "Content-Type") : NULL)) {
        errors_render(resp, PERR_UNSUPPORTED_MEDIA, NULL, NULL,
                      "the body must be Content-Type: application/json");
        return API_ANSWERED;
    }
    q->body = req->body ? req->body : "";
    q->body_len = req->body ? req->body_len : 0;
    return API_RUN;
}

/* The deposit, one small query per BATCH_MIN_QUERY_BYTES. The worker prices the parsed queries
 * before running any (batch_admit) and charges the whole through q->charge. */
static double batch_deposit_ms(const struct api_ctx *ctx, const struct api_query *q)
{
    (void)ctx;
    return (double)(q->body_len / BATCH_MIN_QUERY_BYTES) / API_SMALL_PER_MS;
}

/* Up to max_batch_queries answers held at once. */
static bool batch_holds_memory(const struct api_query *q)
{
    (void)q;
    return true;
}

const struct api_op_def api_op_batch = {
    .name = "batch",
    .body = "queries:query[..max_batch_queries]",
    .answer = "results:answer[]",
    .parse = batch_parse_request,
    .cost_ms = batch_deposit_ms,
    .holds_memory = batch_holds_memory,
    .run = batch_run,
    .priced_on_worker = true,
};
