/* op_nth.c — GET /v1/nth?n=K: the K-th prime (nth(1) = 2); batch op `nth`.
 *
 * x near it by inverting li (sieve_nth_estimate), π(x) by the engine, then the gap (about √x
 * numbers) sieved on this worker; the cost model prices exactly those two steps. With the π
 * cache, a cached point near the K-th prime replaces both when sieving from it is cheaper.
 */
#include <errno.h>
#include <math.h>

#include "api_op.h"
#include "primed/errors.h"
#include "primed/pi.h"

/* π(2^64-1): the number of primes below 2^64. nth(k) for larger k does not exist; answering
 * that needs no sieving. */
#define PI_2_64 425656284035217743ull

static enum api_plan nth_parse(const struct api_ctx *ctx, const struct http_request *req,
                               struct api_query *q, struct http_response *resp)
{
    struct http_params p;
    if (api_params_check(req, q->op, &p, resp) || api_number_param(&p, 0, &q->a, resp))
        return API_ANSWERED;
    if (q->a == 0) {
        errors_render(resp, PERR_BAD_PARAM, "n", NULL, "n must be at least 1 (nth(1) = 2)");
        return API_ANSWERED;
    }
    if (q->a > PI_2_64) {
        errors_render(resp, PERR_NO_SUCH_PRIME, "n", NULL, "there are only %llu primes below 2^64",
                      (unsigned long long)PI_2_64);
        return API_ANSWERED;
    }
    if (q->a > ctx->cfg->max_nth) {
        errors_render(resp, PERR_LIMIT_EXCEEDED, "n", NULL, "n must be at most max_nth = %llu",
                      (unsigned long long)ctx->cfg->max_nth);
        return API_ANSWERED;
    }
    return API_RUN;
}

/* The sieve from the estimate x to the k-th prime (at most about √x numbers either side). */
static double finish_seconds(uint64_t x)
{
    uint64_t gap = (uint64_t)sqrt((double)x) + 1;
    return pi_sieve_cost_seconds(x, x > UINT64_MAX - gap ? UINT64_MAX : x + gap);
}

/* π(x) at the estimate x plus a sieve of the gap. */
static double nth_cost_ms(const struct api_ctx *ctx, const struct api_query *q)
{
    uint64_t x = sieve_nth_estimate(q->a);
    return 1000.0 * (api_pi_cost_seconds(ctx, x) + finish_seconds(x));
}

/* Above this nth builds a Meissel π table of tens of MiB. */
#define EXPENSIVE_NTH 100000000ULL

static bool nth_holds_memory(const struct api_query *q)
{
    return q->a >= EXPENSIVE_NTH;
}

/* {"n":K,"prime":P}. From a cached (x0, π(x0)) whose π is near k when sieving from there is
 * cheaper than π(estimate) (a client walking k, k+1, …: a few thousand numbers each), else
 * π(estimate) through api_pi (the cache, a neighbour, single-flight) and the sieve from there.
 * The answer is a cached point too: π(p_k) = k. */
static enum pool_outcome nth_run(const struct api_ctx *ctx, struct api_query *q,
                                 struct api_worker *w, const atomic_int *cancel,
                                 struct http_response *resp)
{
    uint64_t x = sieve_nth_estimate(q->a), pi = 0, p = 0;
    double fresh = api_pi_cost_seconds(ctx, x) + finish_seconds(x);
    int r = api_nth_walk(ctx, w, q->a, fresh, &p, cancel);
    if (r == 1) {
        r = api_pi(ctx, w, x, &pi, cancel);
        if (r == 0) r = sieve_nth_finish(w->sieve, x, pi, q->a, &p, cancel);
    }
    if (r == 0) picache_put(ctx->pic, p, q->a);
    if (r == -ERANGE) {
        errors_render(resp, PERR_NO_SUCH_PRIME, "n", NULL, "the %llu-th prime is above 2^64-1",
                      (unsigned long long)q->a);
        return POOL_DONE;
    }
    if (r != 0) return api_failed_answer(r, cancel, resp);
    api_render_small(resp, "n", q->a, "prime", false, false, p);
    return POOL_DONE;
}

const struct api_op_def api_op_nth = {
    .name = "nth",
    .params = {{"n", "which prime: nth(1) = 2", .required = true, .min = 1, .max = PI_2_64,
                .set = "max_nth", .limit = API_LIMIT_VALUE}},
    .answer = "n:u64 prime:u64",
    .parse = nth_parse,
    .cost_ms = nth_cost_ms,
    .holds_memory = nth_holds_memory,
    .run = nth_run,
    .batch = true,
};
