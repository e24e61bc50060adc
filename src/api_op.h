/* api_op.h — the operation table's row: everything about one /v1 operation in one struct.
 *
 * Each API row of the route table (router.c) points at one `struct api_op_def`, defined in the
 * op's own file (op_count.c, op_factor.c, batch.c, …). api.c dispatches through it and nothing
 * else switches over operations: parsing, the deadline check, the rate-limit price, memory
 * shedding, the inline path, the worker run and batch membership are all read from the row.
 * A new operation is a row here (its `extern`), a row in router.c and one file; test_api checks
 * that every API route has a complete row. Internal to the API module (api.c, op_*.c, batch.c).
 */
#ifndef PRIMED_API_OP_H
#define PRIMED_API_OP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "primed/api.h"
#include "primed/jsonw.h"
#include "primed/sieve.h"

/* A worker's private state (api_worker_init). */
struct api_worker {
    sieve_ctx *sieve;
};

/* The one cost model: a query's cost is the milliseconds of one worker's CPU it is estimated to
 * take. Everything else is derived from it (api.c): the hopeless check (estimate spread over
 * the workers the client may use vs request_timeout_ms), the rate-limit price (tokens =
 * 1 + ms, capped), the batch's pre-price (the sum of its queries' ms). */
#define API_SMALL_PER_MS 500 /* a few Miller–Rabin tests: ~2 µs */
#define API_SMALL_MS (1.0 / API_SMALL_PER_MS)

/* One query parameter of an op, as parse reads it (api_params_check takes the names from here,
 * in this order) and as /openapi.json describes it (src/openapi.c). */
enum api_param_type { API_PARAM_U64 = 0, API_PARAM_WORD };
enum api_limit_kind {
    API_LIMIT_NONE = 0,
    API_LIMIT_VALUE, /* the value is at most the setting */
    API_LIMIT_WIDTH, /* to - from is at most the setting (named on `to`) */
};
struct api_param {
    const char *name; /* NULL ends the list */
    const char *about;
    enum api_param_type type;
    bool required;
    uint64_t min;    /* U64: the smallest value parse accepts (below: 400 bad_parameter) */
    uint64_t max;    /* U64: the largest that has an answer (above: 404); 0 = 2^64-1 */
    const char *set; /* the setting (config.c's key) that bounds it: 400 limit_exceeded */
    enum api_limit_kind limit;
    const char *words; /* WORD: the accepted values, '|'-separated */
};

struct api_op_def {
    const char *name; /* the batch op name; equal to its route row's label (test_api checks) */
    /* Its query parameters (a batch query's members) and its 200 answer, in openapi.c's small
     * grammar ("n:u64 prime:bool"; `?` after a name: optional; types u64, bool, string, object,
     * answer (any batch op's answer or an error), query (a batch query); suffixes [] [N] and
     * [..setting] make arrays). text: the answer in text/plain too, and when. */
    struct api_param params[HTTP_MAX_PARAMS];
    const char *answer;
    const char *text;
    const char *body; /* a JSON request body (POST), in the same grammar; NULL for none */
    /* On the I/O thread: read and validate req's parameters into q (q is zeroed, q->op and
     * q->route set). Returns API_RUN or API_STREAM, or API_ANSWERED with a 4xx in resp. No work
     * beyond a primality test; the deadline check and the inline answer are api_prepare's. */
    enum api_plan (*parse)(const struct api_ctx *ctx, const struct http_request *req,
                           struct api_query *q, struct http_response *resp);
    /* Worker milliseconds of a parsed q (the cost model above); >= 0, finite. ctx NULL: from
     * scratch, a function of q alone — the price (docs/configuration.md: prices do not depend
     * on the π cache). ctx: as the π cache stands now, where a value it holds costs nothing and
     * one a cached neighbour is near costs the sieve of the gap (api_pi_cost_seconds) — the
     * hopeless check, so that a cached π(1e19) is answered, not refused. */
    double (*cost_ms)(const struct api_ctx *ctx, const struct api_query *q);
    /* Does q make the server hold memory beyond a worker's fixed segment (a stream buffer,
     * π tables, a batch's answers)? Such work is refused while memory is above the high-water
     * mark (memwatch.h). It is a question about memory, not CPU, hence not derived from cost_ms:
     * a count of [0, 1e10] costs ~3 ms by π but builds π tables. */
    bool (*holds_memory)(const struct api_query *q);
    /* Exactly one of run and stream is set. run: compute q into resp (a 200 or an error).
     * w is NULL only on the inline path (inline_ok); cancel may be NULL there too. Returns
     * POOL_DONE, or the cancel's outcome with its answer in resp (api_cancel_answer). */
    enum pool_outcome (*run)(const struct api_ctx *ctx, struct api_query *q, struct api_worker *w,
                             const atomic_int *cancel, struct http_response *resp);
    /* stream: the body in blocks, as api_stream documents (op_primes.c). */
    enum pool_outcome (*stream)(const struct api_ctx *ctx, struct api_query *q,
                                struct api_worker *w, struct stream *s, const atomic_int *cancel);
    bool inline_ok; /* run is cheaper than a hand-off (≤ a few µs, no worker state): answered on
                       the I/O thread when ctx->inline_small */
    bool batch;     /* a /v1/batch op, under `name` */
    /* cost_ms is only a deposit taken before the query can be priced (a batch's body is parsed
     * on its worker): the hopeless check waits for the run, which re-prices (batch.c). */
    bool priced_on_worker;
};

/* The rows (one file each). */
extern const struct api_op_def api_op_primes, api_op_count, api_op_isprime, api_op_nth, api_op_pi,
    api_op_twin, api_op_next, api_op_prev, api_op_batch, api_op_factor;

/* ---- shared by the op files (api.c) -----------------------------------------------------------
 */

/* The answer to a small query is at most this long. */
#define API_SMALL_BODY_MAX 256

/* http_params_check with the names of op's params: 0, or -1 with the 400 in resp. */
int api_params_check(const struct http_request *req, const struct api_op_def *op,
                     struct http_params *p, struct http_response *resp);
/* Parameter i of p as a u64: 0, or -1 with missing_parameter / bad_parameter in resp. */
int api_number_param(const struct http_params *p, int i, uint64_t *out, struct http_response *resp);
/* from/to (names[0], names[1] of p, already checked by http_params_check) into q->a, q->b:
 * from <= to and to - from <= limit (named limit_name in the message). 0 or -1 with the 400. */
int api_range_params(const struct http_params *p, struct api_query *q, uint64_t limit,
                     const char *limit_name, struct http_response *resp);
/* A 200 JSON answer from a fixed writer (copied), or 500 when it overflowed. */
void api_respond_small(struct http_response *resp, const struct jsonw *w);
/* {"k1":v1,"k2":v2} with v2 a number, or a boolean when is_bool. */
void api_render_small(struct http_response *resp, const char *k1, uint64_t v1, const char *k2,
                      bool is_bool, bool b, uint64_t v2);
/* The answer for a cancel reason (504 deadline, 429 price, 503 shutdown/client). */
enum pool_outcome api_cancel_answer(int reason, struct http_response *resp);
/* The answer for a failed computation r (-ECANCELED, -ENOMEM, other). */
enum pool_outcome api_failed_answer(int r, const atomic_int *cancel, struct http_response *resp);

/* During a trace capture: a span [t0, now] named `what` ("π chunk", "sieve chunk", "π plan") on
 * the calling worker's track, with the chunk index (-1: none) and the request id the worker
 * wears (pool_current_label). Call only when t0 != 0, i.e. trace_on() was true at its start. */
void api_trace_work(const char *what, int64_t chunk, uint64_t t0);
/* Rate-limit tokens for ms of worker CPU: 1 + ms, capped at 1e9. */
uint64_t api_tokens(double ms);
/* Workers one request may use at once (the pool size, capped by max_inflight_per_client). */
unsigned api_usable_workers(const struct api_ctx *ctx);
/* The hopeless check: does ms of worker CPU clearly not fit in request_timeout_ms on the
 * workers q may use (more than API_ADMIT_MARGIN × the deadline)? Always false when refusal is
 * off or there is no deadline. *wall gets the estimated wall seconds. */
#define API_ADMIT_MARGIN 2.0
bool api_hopeless(const struct api_ctx *ctx, double ms, double *wall);

/* π(x) for an op running on worker w (pi_flight.c): from the cache (ctx->pic), else by the
 * cheaper of the engine and a cached neighbour ± a sieved gap, shared with every request asking
 * for the same x at the same time (single-flight), its chunks spread over idle workers; the
 * answer goes into the cache. cancel is this request's own: it stops this request's part of the
 * work only. Returns 0, -ENOMEM, -ECANCELED. */
int api_pi(const struct api_ctx *ctx, struct api_worker *w, uint64_t x, uint64_t *out,
           const atomic_int *cancel);
/* What api_pi(x) would cost now, in seconds of one worker (0 when cached): the cost model's
 * pi_cost_seconds, or a cached neighbour's gap by pi_sieve_cost_seconds when cheaper. ctx NULL:
 * from scratch, pi_cost_seconds (the price; cost_ms). */
double api_pi_cost_seconds(const struct api_ctx *ctx, uint64_t x);
/* api_pi's counters (what api_pi_collect exports), for tests. */
struct api_pi_stats {
    uint64_t engine, gap; /* computations started, by method */
    uint64_t joined;      /* requests that joined one in flight */
    uint64_t walks;       /* nth answers sieved from a cached point */
    unsigned inflight;    /* computations in flight now */
};
void api_pi_stats_get(struct api_pi_stats *out);
/* The k-th prime by sieving from the cached point whose π is nearest k, when that costs less than
 * budget_s by the cost model: 0 with *prime, 1 when no cached point is that cheap (nothing done),
 * or sieve_nth_finish's error. */
int api_nth_walk(const struct api_ctx *ctx, struct api_worker *w, uint64_t k, double budget_s,
                 uint64_t *prime, const atomic_int *cancel);

#endif
