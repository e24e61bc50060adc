/* op_pi.c — GET /v1/pi?x=X: π(X), the number of primes ≤ X, by the combinatorial engine
 * (Deléglise–Rivat, pi.h); batch op `pi`. Also the parallel π that count and nth use.
 */
#include "api_op.h"
#include "primed/pi.h"
#include "primed/trace.h"

static enum api_plan pi_parse(const struct api_ctx *ctx, const struct http_request *req,
                              struct api_query *q, struct http_response *resp)
{
    (void)ctx;
    struct http_params p;
    if (api_params_check(req, q->op, &p, resp) || api_number_param(&p, 0, &q->a, resp))
        return API_ANSWERED;
    return API_RUN;
}

static double pi_cost_ms(const struct api_query *q)
{
    return 1000.0 * pi_cost_seconds(q->a);
}

#define EXPENSIVE_PI_SECONDS 0.5 /* π(1e15)-ish: tables of a few MiB from the π budget */

static bool pi_holds_memory(const struct api_query *q)
{
    return pi_cost_seconds(q->a) >= EXPENSIVE_PI_SECONDS;
}

/* π(x) by the engine: the plan (tables, on this worker), its chunks spread over idle workers
 * by pool_parallel (each polls `cancel` per segment), then the sum. The plan and every chunk's
 * scratch come from the π budget and are freed on every path. */
struct pi_par {
    struct pool_par par;
    pi_plan *plan; /* read-only here; each chunk writes its own slot inside the engine */
    const atomic_int *cancel;
};

/* One chunk of the plan, a span of its own during a trace capture. */
static int pi_chunk_traced(pi_plan *plan, uint64_t c, const atomic_int *cancel)
{
    uint64_t t0 = trace_on() ? trace_now_ns() : 0;
    int r = pi_run_chunk(plan, c, cancel);
    if (t0) api_trace_work("π chunk", (int64_t)c, t0);
    return r;
}

static int pi_chunk(void *arg, uint64_t c, void *local)
{
    (void)local;
    struct pi_par *pp = arg;
    return pi_chunk_traced(pp->plan, c, pp->cancel);
}

int api_pi_parallel(const struct api_ctx *ctx, uint64_t x, uint64_t *out, const atomic_int *cancel)
{
    struct pi_opts opts = {.threads = ctx->pool ? ctx->cfg->workers : 1};
    pi_plan *plan = NULL;
    uint64_t t0 = trace_on() ? trace_now_ns() : 0;
    int r = pi_plan_create(x, &opts, &plan, cancel);
    if (t0) api_trace_work("π plan", -1, t0);
    if (r != 0) goto done;
    uint64_t n = pi_plan_chunks(plan);
    if (!ctx->pool || n <= 1) {
        for (uint64_t i = 0; i < n && r == 0; i++)
            r = pi_chunk_traced(plan, i, cancel);
    } else {
        struct pi_par pp = {.par = {.fn = pi_chunk, .nchunks = n}, .plan = plan, .cancel = cancel};
        pp.par.arg = &pp;
        r = pool_parallel(ctx->pool, &pp.par, NULL);
    }
    if (r == 0) r = pi_plan_result(plan, out);
done:
    pi_plan_destroy(plan);
    return r;
}

/* {"x":X,"pi":N} */
static enum pool_outcome pi_run(const struct api_ctx *ctx, struct api_query *q,
                                struct api_worker *w, const atomic_int *cancel,
                                struct http_response *resp)
{
    uint64_t n = 0;
    int r = api_pi_parallel(ctx, q->a, &n, cancel);
    if (r != 0) return api_failed_answer(r, cancel, resp);
    api_render_small(resp, "x", q->a, "pi", false, false, n);
    return POOL_DONE;
}

const struct api_op_def api_op_pi = {
    .name = "pi",
    .params = {{"x", "count the primes up to and including x", .required = true}},
    .answer = "x:u64 pi:u64",
    .parse = pi_parse,
    .cost_ms = pi_cost_ms,
    .holds_memory = pi_holds_memory,
    .run = pi_run,
    .batch = true,
};
