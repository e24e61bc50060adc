/* op_count.c — GET /v1/count?from=A&to=B: the number of primes in [A, B]; batch op `count`.
 *
 * Two ways to the answer, chosen by the engine's cost model (pi.h, docs/sieve.md): sieve [A, B]
 * (split across idle workers when wide) or π(B) − π(A−1) by the combinatorial engine. The same
 * figure, the cheaper of the two, is the op's cost, so the path taken, the hopeless check and
 * the price cannot disagree.
 */
#include <math.h>

#include "api_op.h"
#include "primed/jsonw.h"
#include "primed/pi.h"
#include "primed/trace.h"

/* π(b) − π(a−1) by the cost model, or, with ctx, as the cache would have it now (a cached π
 * costs nothing; api_pi_cost_seconds). */
static double by_pi_seconds(const struct api_ctx *ctx, uint64_t a, uint64_t b)
{
    return api_pi_cost_seconds(ctx, b) + (a > 1 ? api_pi_cost_seconds(ctx, a - 1) : 0.0);
}

static enum api_plan count_parse(const struct api_ctx *ctx, const struct http_request *req,
                                 struct api_query *q, struct http_response *resp)
{
    struct http_params p;
    if (api_params_check(req, q->op, &p, resp) ||
        api_range_params(&p, q, ctx->cfg->max_count_range, "max_count_range", resp))
        return API_ANSWERED;
    q->by_pi = by_pi_seconds(ctx, q->a, q->b) < pi_sieve_cost_seconds(q->a, q->b);
    return API_RUN;
}

bool api_count_by_pi(uint64_t a, uint64_t b)
{
    return a <= b && by_pi_seconds(NULL, a, b) < pi_sieve_cost_seconds(a, b);
}

static double count_cost_ms(const struct api_ctx *ctx, const struct api_query *q)
{
    return 1000.0 * fmin(by_pi_seconds(ctx, q->a, q->b), pi_sieve_cost_seconds(q->a, q->b));
}

/* Above this a count is "large": a count of 1e10 numbers is ~1 s of sieving on one worker, or
 * π tables. Below it the work is a fixed per-worker segment, so shedding it would not save
 * memory. */
#define EXPENSIVE_COUNT_RANGE 10000000000ULL

static bool count_holds_memory(const struct api_query *q)
{
    return q->b - q->a >= EXPENSIVE_COUNT_RANGE;
}

/* ---- computing ----------------------------------------------------------------------------- */

struct count_par {
    struct pool_par par;
    uint64_t lo, hi, width;
    atomic_uint_fast64_t total; /* fetch_add by every chunk (relaxed: read after the join) */
    const atomic_int *cancel;
};

static int count_chunk(void *arg, uint64_t c, void *local)
{
    struct count_par *cp = arg;
    struct api_worker *w = local;
    uint64_t clo = cp->lo + c * cp->width;
    uint64_t chi = cp->hi - clo < cp->width ? cp->hi : clo + cp->width - 1;
    uint64_t n = 0;
    uint64_t t0 = trace_on() ? trace_now_ns() : 0;
    int r = sieve_count(w->sieve, clo, chi, &n, cp->cancel);
    if (t0) api_trace_work("sieve chunk", (int64_t)c, t0);
    if (r != 0) return r;
    atomic_fetch_add_explicit(&cp->total, n, memory_order_relaxed);
    return 0;
}

/* π over [lo, hi], split across idle workers when the range is wide. */
static int count_range(const struct api_ctx *ctx, struct api_worker *w, uint64_t lo, uint64_t hi,
                       uint64_t *out, const atomic_int *cancel)
{
    uint64_t width = sieve_chunk_width(lo, hi);
    if (width == 0) width = hi - lo + 1 ? hi - lo + 1 : UINT64_MAX;
    uint64_t nchunks = (hi - lo) / width + 1;
    if (!ctx->pool || nchunks == 1) return sieve_count(w->sieve, lo, hi, out, cancel);
    struct count_par cp = {.par = {.fn = count_chunk, .nchunks = nchunks},
                           .lo = lo,
                           .hi = hi,
                           .width = width,
                           .cancel = cancel};
    cp.par.arg = &cp;
    atomic_init(&cp.total, 0);
    int r = pool_parallel(ctx->pool, &cp.par, w);
    *out = atomic_load_explicit(&cp.total, memory_order_relaxed);
    return r;
}

/* [a, b] as π(b) − π(a−1), each through the cache and single-flight (api_pi). */
static int count_by_pi(const struct api_ctx *ctx, struct api_worker *w, uint64_t a, uint64_t b,
                       uint64_t *out, const atomic_int *cancel)
{
    uint64_t hi = 0, lo = 0;
    int r = api_pi(ctx, w, b, &hi, cancel);
    if (r == 0 && a > 1) r = api_pi(ctx, w, a - 1, &lo, cancel);
    *out = hi - lo;
    return r;
}

/* {"from":A,"to":B,"count":N} */
static enum pool_outcome count_run(const struct api_ctx *ctx, struct api_query *q,
                                   struct api_worker *w, const atomic_int *cancel,
                                   struct http_response *resp)
{
    uint64_t n = 0;
    int r = q->by_pi ? count_by_pi(ctx, w, q->a, q->b, &n, cancel)
                     : count_range(ctx, w, q->a, q->b, &n, cancel);
    if (r != 0) return api_failed_answer(r, cancel, resp);
    char buf[API_SMALL_BODY_MAX];
    struct jsonw jw;
    jsonw_init_fixed(&jw, buf, sizeof buf);
    jsonw_lit(&jw, "{\"from\":");
    jsonw_u64(&jw, q->a);
    jsonw_lit(&jw, ",\"to\":");
    jsonw_u64(&jw, q->b);
    jsonw_lit(&jw, ",\"count\":");
    jsonw_u64(&jw, n);
    jsonw_char(&jw, '}');
    api_respond_small(resp, &jw);
    return POOL_DONE;
}

const struct api_op_def api_op_count = {
    .name = "count",
    .params = {{"from", "the first number of the range", .required = true},
               {"to", "the last number of the range (at least from)", .required = true,
                .set = "max_count_range", .limit = API_LIMIT_WIDTH}},
    .answer = "from:u64 to:u64 count:u64",
    .parse = count_parse,
    .cost_ms = count_cost_ms,
    .holds_memory = count_holds_memory,
    .run = count_run,
    .batch = true,
};
