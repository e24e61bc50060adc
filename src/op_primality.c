/* op_primality.c — the ops answered by Miller–Rabin alone (primality.h), each a few µs and no
 * worker state, so inline_ok: GET /v1/isprime, /v1/next, /v1/prev, /v1/twin?n=N (batch ops of
 * the same names). One file because they share their parameter and their cost.
 */
#include "api_op.h"
#include "primed/errors.h"
#include "primed/jsonw.h"
#include "primed/primality.h"

static enum api_plan n_parse(const struct api_ctx *ctx, const struct http_request *req,
                             struct api_query *q, struct http_response *resp)
{
    (void)ctx;
    struct http_params p;
    if (api_params_check(req, q->op, &p, resp) || api_number_param(&p, 0, &q->a, resp))
        return API_ANSWERED;
    return API_RUN;
}

static double small_cost_ms(const struct api_ctx *ctx, const struct api_query *q)
{
    (void)ctx;
    (void)q;
    return API_SMALL_MS;
}

static bool small_holds_memory(const struct api_query *q)
{
    (void)q;
    return false;
}

/* {"n":N,"prime":bool} */
static enum pool_outcome isprime_run(const struct api_ctx *ctx, struct api_query *q,
                                     struct api_worker *w, const atomic_int *cancel,
                                     struct http_response *resp)
{
    api_render_small(resp, "n", q->a, "prime", true, primality_is_prime(q->a), 0);
    return POOL_DONE;
}

/* {"n":N,"next":P}, or 404 no_such_prime above the largest 64-bit prime. */
static enum pool_outcome next_run(const struct api_ctx *ctx, struct api_query *q,
                                  struct api_worker *w, const atomic_int *cancel,
                                  struct http_response *resp)
{
    uint64_t p = 0;
    if (primality_next(q->a, &p))
        api_render_small(resp, "n", q->a, "next", false, false, p);
    else
        errors_render(resp, PERR_NO_SUCH_PRIME, "n", NULL, "no prime above %llu fits in 64 bits",
                      (unsigned long long)q->a);
    return POOL_DONE;
}

/* {"n":N,"prev":P}, or 404 no_such_prime for n <= 2. */
static enum pool_outcome prev_run(const struct api_ctx *ctx, struct api_query *q,
                                  struct api_worker *w, const atomic_int *cancel,
                                  struct http_response *resp)
{
    uint64_t p = 0;
    if (primality_prev(q->a, &p))
        api_render_small(resp, "n", q->a, "prev", false, false, p);
    else
        errors_render(resp, PERR_NO_SUCH_PRIME, "n", NULL, "no prime below %llu",
                      (unsigned long long)q->a);
    return POOL_DONE;
}

/* {"n":N,"twin":true,"pair":[N,N+2]} when N and N+2 are both prime, else {"n":N,"twin":false}
 * (N+2 above 2^64-1 is not a number of the API: false). Two Miller–Rabin tests. */
static enum pool_outcome twin_run(const struct api_ctx *ctx, struct api_query *q,
                                  struct api_worker *w, const atomic_int *cancel,
                                  struct http_response *resp)
{
    uint64_t n = q->a;
    bool twin = n <= UINT64_MAX - 2 && primality_is_prime(n) && primality_is_prime(n + 2);
    char buf[API_SMALL_BODY_MAX];
    struct jsonw jw;
    jsonw_init_fixed(&jw, buf, sizeof buf);
    jsonw_lit(&jw, "{\"n\":");
    jsonw_u64(&jw, n);
    jsonw_lit(&jw, ",\"twin\":");
    jsonw_bool(&jw, twin);
    if (twin) {
        jsonw_lit(&jw, ",\"pair\":[");
        jsonw_u64(&jw, n);
        jsonw_char(&jw, ',');
        jsonw_u64(&jw, n + 2);
        jsonw_char(&jw, ']');
    }
    jsonw_char(&jw, '}');
    api_respond_small(resp, &jw);
    return POOL_DONE;
}

/* 2^64 - 59: no prime above it fits in 64 bits, so next(n) for n >= it is 404 no_such_prime. */
#define LARGEST_U64_PRIME 18446744073709551557ull

#define SMALL_OP(op_name, run_fn, n_about, n_max, answer_spec)                                     \
    {                                                                                              \
        .name = op_name, .params = {{"n", n_about, .required = true, .max = n_max}},               \
        .answer = answer_spec, .parse = n_parse, .cost_ms = small_cost_ms,                         \
        .holds_memory = small_holds_memory, .run = run_fn, .inline_ok = true, .batch = true,       \
    }

const struct api_op_def api_op_isprime =
    SMALL_OP("isprime", isprime_run, "the number to test", 0, "n:u64 prime:bool");
const struct api_op_def api_op_next =
    SMALL_OP("next", next_run, "the answer is the smallest prime above n", LARGEST_U64_PRIME - 1,
             "n:u64 next:u64");
const struct api_op_def api_op_prev =
    SMALL_OP("prev", prev_run, "the answer is the largest prime below n (none for n <= 2: 404)", 0,
             "n:u64 prev:u64");
const struct api_op_def api_op_twin =
    SMALL_OP("twin", twin_run, "is n the smaller of a twin pair (n, n+2)?", 0,
             "n:u64 twin:bool pair?:u64[2]");
