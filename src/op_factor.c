/* op_factor.c — GET /v1/factor?n=N: the prime factorization of N; batch op `factor`.
 *
 * {"n":N,"factors":[[p,e],…]} with the primes ascending; 1 has the empty product,
 * {"n":1,"factors":[]}; 0 has no factorization: 400 bad_parameter. factor_u64 (the engine's
 * Pollard–Brent over Miller–Rabin) is exact for every 64-bit n. It runs on a worker: its worst
 * case (two ~32-bit primes) is ~0.5 ms, far more than a hand-off, so it is not inline_ok.
 */
#include <math.h>

#include "api_op.h"
#include "primed/errors.h"
#include "primed/factor.h"
#include "primed/jsonw.h"

static enum api_plan factor_parse(const struct api_ctx *ctx, const struct http_request *req,
                                  struct api_query *q, struct http_response *resp)
{
    struct http_params p;
    if (api_params_check(req, q->op, &p, resp) || api_number_param(&p, 0, &q->a, resp))
        return API_ANSWERED;
    if (q->a == 0) {
        errors_render(resp, PERR_BAD_PARAM, "n", NULL, "n must be at least 1 (0 has no factors)");
        return API_ANSWERED;
    }
    return API_RUN;
}

/* Rho finds a prime factor p in ~√p steps and p ≤ √n unless n is prime (Miller–Rabin only):
 * ~n^(1/4) steps. Measured: 0.5 ms for the two largest 32-bit primes (n ≈ 2^64); the model
 * allows twice that for rho's variance. Trial division and Miller–Rabin are the floor. */
#define FACTOR_MS_AT_2_64 1.0

static double factor_cost_ms(const struct api_ctx *ctx, const struct api_query *q)
{
    (void)ctx;
    double ms = FACTOR_MS_AT_2_64 * pow((double)q->a / 18446744073709551616.0, 0.25);
    return ms > API_SMALL_MS ? ms : API_SMALL_MS;
}

static bool factor_holds_memory(const struct api_query *q)
{
    return false;
}

static enum pool_outcome factor_run(const struct api_ctx *ctx, struct api_query *q,
                                    struct api_worker *w, const atomic_int *cancel,
                                    struct http_response *resp)
{
    struct factor f[FACTOR_MAX];
    unsigned k = factor_u64(q->a, f);
    char buf[API_SMALL_BODY_MAX]; /* 15 pairs whose primes multiply to < 2^64: < 200 bytes */
    struct jsonw jw;
    jsonw_init_fixed(&jw, buf, sizeof buf);
    jsonw_lit(&jw, "{\"n\":");
    jsonw_u64(&jw, q->a);
    jsonw_lit(&jw, ",\"factors\":[");
    for (unsigned i = 0; i < k; i++) {
        if (i) jsonw_char(&jw, ',');
        jsonw_char(&jw, '[');
        jsonw_u64(&jw, f[i].p);
        jsonw_char(&jw, ',');
        jsonw_u64(&jw, f[i].e);
        jsonw_char(&jw, ']');
    }
    jsonw_lit(&jw, "]}");
    api_respond_small(resp, &jw);
    return POOL_DONE;
}

const struct api_op_def api_op_factor = {
    .name = "factor",
    .params = {{"n", "the number to factor (0 has no factorization)", .required = true, .min = 1}},
    .answer = "n:u64 factors:u64[2][]",
    .parse = factor_parse,
    .cost_ms = factor_cost_ms,
    .holds_memory = factor_holds_memory,
    .run = factor_run,
    .batch = true,
};
