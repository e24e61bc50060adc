/* api.c — see api.h. The thin part of the API: it dispatches through the op table (api_op.h)
 * and holds what every op shares — the cost model's derived decisions (the hopeless check, the
 * rate-limit price), parameter helpers, small renderers, the answers for cancelled work, and the
 * workers' state. It never switches over operations: what differs between ops is in their rows.
 *
 * Inline answers: isprime/next/prev/twin are one to a few dozen Miller–Rabin tests (≤ ~2 µs),
 * less than a hand-off to a worker costs (queue lock, condvar wake-up, connection suspend +
 * resume: two extra thread switches and an eventfd round-trip). scripts/bench-http.sh measures
 * both (--inline-small-answers false forces the hand-off) and the report quotes the numbers. An op
 * says it may be answered so with inline_ok; everything that sieves goes to a worker.
 */
#include "primed/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_op.h"
#include "primed/errors.h"
#include "primed/jsonw.h"
#include "primed/numparse.h"
#include "primed/pool.h"
#include "primed/trace.h"

void *api_worker_init(void *arg)
{
    const struct api_ctx *ctx = arg;
    struct api_worker *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->sieve = sieve_ctx_create(ctx && ctx->cfg ? (size_t)ctx->cfg->sieve_segment_bytes : 0);
    if (!w->sieve) {
        free(w);
        return NULL;
    }
    return w;
}

void api_worker_fini(void *arg, void *local)
{
    struct api_worker *w = local;
    if (!w) return;
    sieve_ctx_destroy(w->sieve);
    free(w);
}

void api_query_fini(struct api_query *q)
{
    q->body = NULL; /* borrowed */
    q->body_len = 0;
}

/* ---- the cost model's decisions ------------------------------------------------------------ */

#define COST_MAX 1e9

uint64_t api_tokens(double ms)
{
    return ms >= COST_MAX ? (uint64_t)COST_MAX : 1 + (uint64_t)ms;
}

uint64_t api_cost(const struct api_ctx *ctx, const struct api_query *q)
{
    (void)ctx; /* prices are from scratch, whatever the π cache holds */
    return api_tokens(q->op->cost_ms(NULL, q));
}

bool api_query_expensive(const struct api_query *q)
{
    return q->op->holds_memory(q);
}

unsigned api_usable_workers(const struct api_ctx *ctx)
{
    unsigned n = ctx->pool && ctx->cfg->workers ? ctx->cfg->workers : 1;
    unsigned cap = ctx->cfg->max_inflight_per_client;
    return cap && cap < n ? cap : n;
}

/* A request "clearly cannot fit" when even spread over every worker it may use its estimate is
 * API_ADMIT_MARGIN times its deadline: the model is within ~±50% on this machine class (docs/
 * sieve.md), so anything closer is attempted and cancelled at the deadline if it runs over. No
 * deadline, or refusal turned off (refuse_hopeless = false: tests of the deadline path itself):
 * everything is attempted and the deadline, if any, cancels it. */
bool api_hopeless(const struct api_ctx *ctx, double ms, double *wall)
{
    *wall = ms / 1000.0 / api_usable_workers(ctx);
    if (!ctx->cfg->refuse_hopeless || ctx->cfg->request_timeout_ms == 0) return false;
    return *wall > API_ADMIT_MARGIN * (ctx->cfg->request_timeout_ms / 1000.0);
}

/* 0, or the refusal rendered into resp (PERR_LIMIT_EXCEEDED, O(1): no work is attempted). */
static int admit_by_cost(const struct api_ctx *ctx, const struct api_query *q,
                         struct http_response *resp)
{
    double ms = q->op->cost_ms(ctx, q), wall;
    if (!api_hopeless(ctx, ms, &wall)) return 0;
    unsigned nw = api_usable_workers(ctx);
    errors_render(resp, PERR_LIMIT_EXCEEDED, NULL, NULL,
                  "estimated %.3g s on %u worker%s (%.3g s of CPU), deadline request_timeout_ms = "
                  "%u ms",
                  wall, nw, nw == 1 ? "" : "s", ms / 1000.0, ctx->cfg->request_timeout_ms);
    return -1;
}

/* ---- parameters and small answers ---------------------------------------------------------- */

int api_params_check(const struct http_request *req, const struct api_op_def *op,
                     struct http_params *p, struct http_response *resp)
{
    *p = (struct http_params){0};
    for (int i = 0; i < HTTP_MAX_PARAMS && op->params[i].name; i++)
        p->names[i] = op->params[i].name;
    return http_params_check(req, p, resp);
}

int api_number_param(const struct http_params *p, int i, uint64_t *out, struct http_response *resp)
{
    if (!p->vals[i]) {
        errors_render(resp, PERR_MISSING_PARAM, p->names[i], NULL, "parameter '%s' is required",
                      p->names[i]);
        return -1;
    }
    enum numparse_result r = numparse_u64(p->vals[i], out);
    if (r != NUMPARSE_OK) {
        errors_render(resp, PERR_BAD_PARAM, p->names[i], NULL, "%s %s", p->names[i],
                      numparse_message(r));
        return -1;
    }
    return 0;
}

int api_range_params(const struct http_params *p, struct api_query *q, uint64_t limit,
                     const char *limit_name, struct http_response *resp)
{
    if (api_number_param(p, 0, &q->a, resp) || api_number_param(p, 1, &q->b, resp)) return -1;
    if (q->a > q->b) {
        errors_render(resp, PERR_BAD_PARAM, "from", NULL, "from (%llu) is greater than to (%llu)",
                      (unsigned long long)q->a, (unsigned long long)q->b);
        return -1;
    }
    if (q->b - q->a > limit) {
        errors_render(resp, PERR_LIMIT_EXCEEDED, "to", NULL,
                      "range to-from must be at most %s = %llu", limit_name,
                      (unsigned long long)limit);
        return -1;
    }
    return 0;
}

void api_respond_small(struct http_response *resp, const struct jsonw *w)
{
    if (w->overflow || http_response_body(resp, 200, HTTP_JSON, w->buf, w->len) != 0)
        errors_render(resp, PERR_INTERNAL, NULL, NULL, NULL);
}

void api_render_small(struct http_response *resp, const char *k1, uint64_t v1, const char *k2,
                      bool is_bool, bool b, uint64_t v2)
{
    char buf[API_SMALL_BODY_MAX];
    struct jsonw w;
    jsonw_init_fixed(&w, buf, sizeof buf);
    jsonw_lit(&w, "{\"");
    jsonw_raw(&w, k1, strlen(k1));
    jsonw_lit(&w, "\":");
    jsonw_u64(&w, v1);
    jsonw_lit(&w, ",\"");
    jsonw_raw(&w, k2, strlen(k2));
    jsonw_lit(&w, "\":");
    if (is_bool)
        jsonw_bool(&w, b);
    else
        jsonw_u64(&w, v2);
    jsonw_char(&w, '}');
    api_respond_small(resp, &w);
}

enum pool_outcome api_cancel_answer(int reason, struct http_response *resp)
{
    if (reason == POOL_CANCEL_DEADLINE) {
        errors_render(resp, PERR_DEADLINE, NULL, NULL,
                      "request took longer than request_timeout_ms");
        return POOL_TIMEOUT;
    }
    if (reason == POOL_CANCEL_PRICE) {
        errors_render(resp, PERR_RATE_LIMITED, NULL, NULL,
                      "the request used more worker CPU than its price allows "
                      "(rate_limit_cpu_factor); it is charged what it used");
        return POOL_CANCELLED;
    }
    errors_render(resp, PERR_UNAVAILABLE, NULL, NULL,
                  reason == POOL_CANCEL_SHUTDOWN ? "server is shutting down" : "request cancelled");
    return POOL_CANCELLED;
}

void api_trace_work(const char *what, int64_t chunk, uint64_t t0)
{
    struct trace_ev e = TRACE_EV_INIT;
    e.name = what;
    e.rid = pool_current_label();
    e.chunk = chunk;
    e.t0 = t0;
    e.t1 = trace_now_ns();
    trace_span(&e);
}

enum pool_outcome api_failed_answer(int r, const atomic_int *cancel, struct http_response *resp)
{
    int reason = cancel ? atomic_load_explicit(cancel, memory_order_acquire) : 0;
    if (r == -ECANCELED || reason) return api_cancel_answer(reason, resp);
    if (r == -ENOMEM) {
        errors_render(resp, PERR_OVERLOADED, NULL, NULL, "pi(x) memory budget exhausted");
        return POOL_DONE;
    }
    errors_render(resp, PERR_INTERNAL, NULL, NULL, "computation failed: %s", strerror(-r));
    return POOL_DONE;
}

/* ---- dispatch ------------------------------------------------------------------------------ */

#if PRIMED_LEAK_PLANT
/* Test-only (make LEAK_PLANT=1, build/leak/): 1 KiB lost per API request (api_prepare), so that
 * `make leakcheck` can prove it catches a leak and names this function, and
 * tests/test_compare_instances.sh can use this build as its leaky canary. Never in a product. */
void leakcheck_planted_leak(void);
static void *volatile leak_sink;
__attribute__((noinline)) void leakcheck_planted_leak(void)
{
    char *p = malloc(1024);
    if (p) memset(p, 0x5a, 1024);
    leak_sink = p; /* the previous block is lost */
}
#endif

/* parse; then an inline answer for an op cheaper than a hand-off, or the hopeless check on the
 * estimate (not for a stream, which its reader paces, nor for a query priced on its worker). */
enum api_plan api_prepare(const struct api_ctx *ctx, enum route_id route,
                          const struct http_request *req, struct api_query *q,
                          struct http_response *resp)
{
#if PRIMED_LEAK_PLANT
    leakcheck_planted_leak();
#endif
    memset(q, 0, sizeof *q);
    const struct route *rt = router_find(route);
    if (!rt || !rt->op) {
        errors_render(resp, PERR_NOT_FOUND, NULL, NULL, NULL);
        return API_ANSWERED;
    }
    q->route = route;
    q->op = rt->op;
    enum api_plan plan = q->op->parse(ctx, req, q, resp);
    if (plan != API_RUN) return plan;
    if (q->op->inline_ok && ctx->inline_small) {
        q->op->run(ctx, q, NULL, NULL, resp);
        return API_ANSWERED;
    }
    if (!q->op->priced_on_worker && admit_by_cost(ctx, q, resp) != 0) return API_ANSWERED;
    return API_RUN;
}

enum pool_outcome api_run(const struct api_ctx *ctx, struct api_query *q, void *local,
                          const atomic_int *cancel, struct http_response *resp)
{
    int reason = cancel ? atomic_load_explicit(cancel, memory_order_acquire) : 0;
    if (reason || !local) return api_cancel_answer(reason, resp);
    if (!q->op->run) {
        errors_render(resp, PERR_INTERNAL, NULL, NULL, "not a fixed-size answer");
        return POOL_DONE;
    }
    return q->op->run(ctx, q, local, cancel, resp);
}

enum pool_outcome api_stream(const struct api_ctx *ctx, struct api_query *q, void *local,
                             struct stream *s, const atomic_int *cancel)
{
    int reason = cancel ? atomic_load_explicit(cancel, memory_order_acquire) : 0;
    if (reason || !local || !q->op->stream) {
        stream_finish(s, false);
        return reason == POOL_CANCEL_DEADLINE ? POOL_TIMEOUT : POOL_CANCELLED;
    }
    return q->op->stream(ctx, q, local, s, cancel);
}
