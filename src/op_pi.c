/* op_pi.c — GET /v1/pi?x=X: π(X), the number of primes ≤ X, by the combinatorial engine
 * (Deléglise–Rivat, pi.h); batch op `pi`. The π itself (cache, reuse of a neighbour,
 * single-flight, parallel chunks) is api_pi's, shared with count and nth (pi_flight.c).
 */
#include "api_op.h"
#include "primed/pi.h"

static enum api_plan pi_parse(const struct api_ctx *ctx, const struct http_request *req,
                              struct api_query *q, struct http_response *resp)
{
    (void)ctx;
    struct http_params p;
    if (api_params_check(req, q->op, &p, resp) || api_number_param(&p, 0, &q->a, resp))
        return API_ANSWERED;
    return API_RUN;
}

static double pi_cost_ms(const struct api_ctx *ctx, const struct api_query *q)
{
    return 1000.0 * api_pi_cost_seconds(ctx, q->a);
}

#define EXPENSIVE_PI_SECONDS 0.5 /* π(1e15)-ish: tables of a few MiB from the π budget */

static bool pi_holds_memory(const struct api_query *q)
{
    return pi_cost_seconds(q->a) >= EXPENSIVE_PI_SECONDS;
}

/* {"x":X,"pi":N} */
static enum pool_outcome pi_run(const struct api_ctx *ctx, struct api_query *q,
                                struct api_worker *w, const atomic_int *cancel,
                                struct http_response *resp)
{
    uint64_t n = 0;
    int r = api_pi(ctx, w, q->a, &n, cancel);
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
