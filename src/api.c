/* api.c — see api.h.
 *
 * Inline answers: isprime/next/prev are one to a few dozen Miller–Rabin tests (≤ ~2 µs), less
 * than a hand-off to a worker costs (queue lock, condvar wake-up, connection suspend + resume:
 * two extra thread switches and an eventfd round-trip). scripts/bench-http.sh measures both
 * (--inline-small-answers false forces the hand-off) and the report quotes the numbers. Everything
 * that sieves goes to a worker.
 *
 * /v1/primes body: {"from":A,"to":B,"primes":[…],"count":N} — "count" comes last because the
 * list is streamed and its length is known only at the end (computing it first would sieve the
 * range twice). Text format: one prime per line.
 */
#include "primed/api.h"

#include <errno.h>
#include <jansson.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "primed/errors.h"
#include "primed/jsonw.h"
#include "primed/numparse.h"
#include "primed/pi.h"
#include "primed/primality.h"
#include "primed/reqmem.h"
#include "primed/sieve.h"

/* π(2^64-1): the number of primes below 2^64. nth(k) for larger k does not exist; answering
 * that needs no sieving. */
#define PI_2_64 425656284035217743ull

/* The answer to a small query is at most this long. */
#define SMALL_BODY_MAX 256
/* A batch answer never grows beyond this (1000 queries × ~120 bytes fits many times over). */
#define BATCH_BODY_MAX (16u << 20)

struct api_worker {
    sieve_ctx *sieve;
};

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

/* Above these a count or nth is "large": a count of 1e10 numbers is ~1 s of sieving on one
 * worker, and nth above 1e8 builds a Meissel pi table of tens of MiB. Below them the work is a
 * fixed per-worker segment, so shedding it would not save memory. */
#define EXPENSIVE_COUNT_RANGE 10000000000ULL
#define EXPENSIVE_NTH 100000000ULL
#define EXPENSIVE_PI_SECONDS 0.5 /* π(1e15)-ish: tables of a few MiB from the π budget */

bool api_query_expensive(const struct api_query *q)
{
    switch (q->op) {
    case API_PRIMES: /* a stream: a buffer charged to the budget for as long as its reader */
    case API_BATCH:  /* up to max_batch_queries answers held at once */
        return true;
    case API_COUNT:
        return q->b - q->a >= EXPENSIVE_COUNT_RANGE;
    case API_NTH:
        return q->a >= EXPENSIVE_NTH;
    case API_PI:
        return pi_cost_seconds(q->a) >= EXPENSIVE_PI_SECONDS;
    default:
        return false;
    }
}

/* ---- parameters ---------------------------------------------------------------------------- */

static int number_param(const struct http_params *p, int i, uint64_t *out,
                        struct http_response *resp)
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

/* A 200 JSON answer from a fixed writer over a SMALL_BODY_MAX stack buffer (copied). */
static void respond_small(struct http_response *resp, const struct jsonw *w)
{
    if (w->overflow || http_response_body(resp, 200, HTTP_JSON, w->buf, w->len) != 0)
        errors_render(resp, PERR_INTERNAL, NULL, NULL, NULL);
}

/* ---- small answers ------------------------------------------------------------------------- */

/* {"k1":v1,"k2":v2} with v2 a number, or a boolean when is_bool. */
static void render_small(struct http_response *resp, const char *k1, uint64_t v1, const char *k2,
                         bool is_bool, bool b, uint64_t v2)
{
    char buf[SMALL_BODY_MAX];
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
    respond_small(resp, &w);
}

/* {"from":A,"to":B,"count":N} */
static void render_count(struct http_response *resp, uint64_t from, uint64_t to, uint64_t n)
{
    char buf[SMALL_BODY_MAX];
    struct jsonw w;
    jsonw_init_fixed(&w, buf, sizeof buf);
    jsonw_lit(&w, "{\"from\":");
    jsonw_u64(&w, from);
    jsonw_lit(&w, ",\"to\":");
    jsonw_u64(&w, to);
    jsonw_lit(&w, ",\"count\":");
    jsonw_u64(&w, n);
    jsonw_char(&w, '}');
    respond_small(resp, &w);
}

/* isprime/next/prev: pure functions, no sieve. Returns the error (or -1 for none). */
static int primality_answer(enum api_op op, uint64_t n, uint64_t *out, bool *isp)
{
    switch (op) {
    case API_ISPRIME:
        *isp = primality_is_prime(n);
        return -1;
    case API_NEXT:
        return primality_next(n, out) ? -1 : (int)PERR_NO_SUCH_PRIME;
    case API_PREV:
        return primality_prev(n, out) ? -1 : (int)PERR_NO_SUCH_PRIME;
    default:
        return (int)PERR_INTERNAL;
    }
}

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

/* {"n":N,"twin":true,"pair":[N,N+2]} when N and N+2 are both prime, else {"n":N,"twin":false}
 * (N+2 above 2^64-1 is not a number of the API: false). Two Miller–Rabin tests, inline. */
static void answer_twin(struct http_response *resp, uint64_t n)
{
    bool twin = n <= UINT64_MAX - 2 && primality_is_prime(n) && primality_is_prime(n + 2);
    char buf[SMALL_BODY_MAX];
    struct jsonw w;
    jsonw_init_fixed(&w, buf, sizeof buf);
    jsonw_lit(&w, "{\"n\":");
    jsonw_u64(&w, n);
    jsonw_lit(&w, ",\"twin\":");
    jsonw_bool(&w, twin);
    if (twin) {
        jsonw_lit(&w, ",\"pair\":[");
        jsonw_u64(&w, n);
        jsonw_char(&w, ',');
        jsonw_u64(&w, n + 2);
        jsonw_char(&w, ']');
    }
    jsonw_char(&w, '}');
    respond_small(resp, &w);
}

static void answer_primality(struct http_response *resp, enum api_op op, uint64_t n)
{
    if (op == API_TWIN) {
        answer_twin(resp, n);
        return;
    }
    uint64_t p = 0;
    bool isp = false;
    int e = primality_answer(op, n, &p, &isp);
    if (op == API_ISPRIME) {
        render_small(resp, "n", n, "prime", true, isp, 0);
    } else if (e >= 0) {
        errors_render(resp, (enum primed_err)e, "n", NULL,
                      op == API_NEXT ? "no prime above %llu fits in 64 bits"
                                     : "no prime below %llu",
                      (unsigned long long)n);
    } else {
        render_small(resp, "n", n, op == API_NEXT ? "next" : "prev", false, false, p);
    }
}

/* ---- the cost model ------------------------------------------------------------------------ */

/* One worker's seconds for a count of [a, b], π(x) and nth(k), all from the engine's model
 * (pi.h, docs/sieve.md): count takes the cheaper of sieving [a, b] and π(b) − π(a−1); nth is a
 * π(x) at the estimate x plus a sieve of the gap (at most about √x numbers either side). The
 * same figures choose the count path, refuse hopeless requests (prepare) and price requests for
 * the rate limiter (api_cost), so none of them can disagree. */
static double count_by_pi_seconds(uint64_t a, uint64_t b)
{
    return pi_cost_seconds(b) + (a > 1 ? pi_cost_seconds(a - 1) : 0.0);
}

bool api_count_by_pi(uint64_t a, uint64_t b)
{
    return a <= b && count_by_pi_seconds(a, b) < pi_sieve_cost_seconds(a, b);
}

static double count_seconds(uint64_t a, uint64_t b)
{
    return fmin(count_by_pi_seconds(a, b), pi_sieve_cost_seconds(a, b));
}

static double nth_seconds(uint64_t k)
{
    uint64_t x = sieve_nth_estimate(k);
    uint64_t gap = (uint64_t)sqrt((double)x) + 1;
    return pi_cost_seconds(x) +
           pi_sieve_cost_seconds(x, x > UINT64_MAX - gap ? UINT64_MAX : x + gap);
}

static double query_seconds(const struct api_query *q)
{
    switch (q->op) {
    case API_COUNT:
        return count_seconds(q->a, q->b);
    case API_NTH:
        return nth_seconds(q->a);
    case API_PI:
        return pi_cost_seconds(q->a);
    default:
        return 0;
    }
}

/* A request "clearly cannot fit" when even spread over every worker it may use its estimate is
 * ADMIT_MARGIN times its deadline: the model is within ~±50% on this machine class (docs/
 * sieve.md), so anything closer is attempted and cancelled at the deadline if it runs over. */
#define ADMIT_MARGIN 2.0

static unsigned usable_workers(const struct api_ctx *ctx)
{
    unsigned n = ctx->pool && ctx->cfg->workers ? ctx->cfg->workers : 1;
    unsigned cap = ctx->cfg->max_inflight_per_client;
    return cap && cap < n ? cap : n;
}

/* 0, or the refusal rendered into resp (PERR_LIMIT_EXCEEDED, O(1): no work is attempted). */
static int admit_by_cost(const struct api_ctx *ctx, const struct api_query *q,
                         struct http_response *resp)
{
    /* No deadline, or refusal turned off (refuse_hopeless = false: tests of the deadline path
     * itself): everything is attempted and the deadline, if any, cancels it. */
    if (!ctx->cfg->refuse_hopeless || ctx->cfg->request_timeout_ms == 0) return 0;
    double one = query_seconds(q);
    unsigned nw = usable_workers(ctx);
    double wall = one / nw, deadline = ctx->cfg->request_timeout_ms / 1000.0;
    if (wall <= ADMIT_MARGIN * deadline) return 0;
    errors_render(resp, PERR_LIMIT_EXCEEDED, NULL, NULL,
                  "estimated %.3g s on %u worker%s (%.3g s of CPU), deadline request_timeout_ms = "
                  "%u ms",
                  wall, nw, nw == 1 ? "" : "s", one, ctx->cfg->request_timeout_ms);
    return -1;
}

/* ---- prepare ------------------------------------------------------------------------------- */

static bool wants_text(const struct http_request *req)
{
    const char *acc = req->get_header ? req->get_header(req, "Accept") : NULL;
    return acc && strstr(acc, "text/plain") && !strstr(acc, "application/json");
}

static enum api_plan prepare_range(const struct api_ctx *ctx, enum api_op op,
                                   const struct http_request *req, struct api_query *q,
                                   struct http_response *resp)
{
    struct http_params p = {.names = {"from", "to", op == API_PRIMES ? "format" : NULL}};
    if (http_params_check(req, &p, resp) || number_param(&p, 0, &q->a, resp) ||
        number_param(&p, 1, &q->b, resp))
        return API_ANSWERED;
    if (q->a > q->b) {
        errors_render(resp, PERR_BAD_PARAM, "from", NULL, "from (%llu) is greater than to (%llu)",
                      (unsigned long long)q->a, (unsigned long long)q->b);
        return API_ANSWERED;
    }
    uint64_t limit = op == API_PRIMES ? ctx->cfg->max_list_range : ctx->cfg->max_count_range;
    if (q->b - q->a > limit) {
        errors_render(
            resp, PERR_LIMIT_EXCEEDED, "to", NULL, "range to-from must be at most %s = %llu",
            op == API_PRIMES ? "max_list_range" : "max_count_range", (unsigned long long)limit);
        return API_ANSWERED;
    }
    if (op == API_PRIMES) {
        const char *f = p.vals[2];
        if (f && strcmp(f, "text") == 0)
            q->text = true;
        else if (f && strcmp(f, "json") == 0)
            q->text = false;
        else if (f) {
            errors_render(resp, PERR_BAD_PARAM, "format", NULL, "format must be json or text");
            return API_ANSWERED;
        } else
            q->text = wants_text(req);
        return API_STREAM;
    }
    q->by_pi = api_count_by_pi(q->a, q->b);
    return admit_by_cost(ctx, q, resp) ? API_ANSWERED : API_RUN;
}

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
static enum api_plan prepare_batch(const struct http_request *req, struct api_query *q,
                                   struct http_response *resp)
{
    struct http_params p = {.names = {NULL}};
    if (http_params_check(req, &p, resp)) return API_ANSWERED;
    if (!is_json_type(req->get_header ? req->get_header(req, "Content-Type") : NULL)) {
        errors_render(resp, PERR_UNSUPPORTED_MEDIA, NULL, NULL,
                      "the body must be Content-Type: application/json");
        return API_ANSWERED;
    }
    q->body = req->body ? req->body : "";
    q->body_len = req->body ? req->body_len : 0;
    return API_RUN;
}

static enum api_plan prepare_pi(const struct api_ctx *ctx, const struct http_request *req,
                                struct api_query *q, struct http_response *resp)
{
    struct http_params p = {.names = {"x"}};
    if (http_params_check(req, &p, resp) || number_param(&p, 0, &q->a, resp)) return API_ANSWERED;
    return admit_by_cost(ctx, q, resp) ? API_ANSWERED : API_RUN;
}

enum api_plan api_prepare(const struct api_ctx *ctx, enum route_id route,
                          const struct http_request *req, struct api_query *q,
                          struct http_response *resp)
{
#if PRIMED_LEAK_PLANT
    leakcheck_planted_leak();
#endif
    memset(q, 0, sizeof *q);
    switch (route) {
    case ROUTE_PRIMES:
        q->op = API_PRIMES;
        return prepare_range(ctx, API_PRIMES, req, q, resp);
    case ROUTE_COUNT:
        q->op = API_COUNT;
        return prepare_range(ctx, API_COUNT, req, q, resp);
    case ROUTE_BATCH:
        q->op = API_BATCH;
        return prepare_batch(req, q, resp);
    case ROUTE_ISPRIME:
        q->op = API_ISPRIME;
        break;
    case ROUTE_NEXT:
        q->op = API_NEXT;
        break;
    case ROUTE_PREV:
        q->op = API_PREV;
        break;
    case ROUTE_NTH:
        q->op = API_NTH;
        break;
    case ROUTE_PI:
        q->op = API_PI;
        return prepare_pi(ctx, req, q, resp);
    case ROUTE_TWIN:
        q->op = API_TWIN;
        break;
    default:
        errors_render(resp, PERR_NOT_FOUND, NULL, NULL, NULL);
        return API_ANSWERED;
    }
    struct http_params p = {.names = {"n"}};
    if (http_params_check(req, &p, resp) || number_param(&p, 0, &q->a, resp)) return API_ANSWERED;
    if (q->op == API_NTH) {
        if (q->a == 0) {
            errors_render(resp, PERR_BAD_PARAM, "n", NULL, "n must be at least 1 (nth(1) = 2)");
            return API_ANSWERED;
        }
        if (q->a > PI_2_64) {
            errors_render(resp, PERR_NO_SUCH_PRIME, "n", NULL,
                          "there are only %llu primes below 2^64", (unsigned long long)PI_2_64);
            return API_ANSWERED;
        }
        if (q->a > ctx->cfg->max_nth) {
            errors_render(resp, PERR_LIMIT_EXCEEDED, "n", NULL, "n must be at most max_nth = %llu",
                          (unsigned long long)ctx->cfg->max_nth);
            return API_ANSWERED;
        }
        return admit_by_cost(ctx, q, resp) ? API_ANSWERED : API_RUN;
    }
    if (ctx->inline_small) {
        answer_primality(resp, q->op, q->a);
        return API_ANSWERED;
    }
    return API_RUN;
}

/* ---- prices --------------------------------------------------------------------------------- */

/* Measured on the benchmark machine (docs/benchmarks.md): counting sieves ~8e6 numbers per ms
 * of one worker below 1e10; higher up every number costs more (more sieving primes, bucket
 * sieving): ~13x at 1e18, ~15x near 2^64. Listing costs ~4x counting (formatting and sending).
 * count, nth and pi are priced by the engine's cost model (query_seconds). Small batch queries
 * (isprime, next, prev) cost ~2 µs: 500 per token. */
#define COST_NUMBERS_PER_MS 8e6
#define COST_LIST_FACTOR 4.0
#define COST_SMALL_PER_TOKEN 500
#define COST_MAX 1e9
#define BATCH_MIN_QUERY_BYTES 22 /* {"op":"isprime","n":1} */

static double height_factor(uint64_t hi)
{
    return hi <= 10000000000ull ? 1.0 : 1.0 + 1.5 * (log10((double)hi) - 10.0);
}

static double range_ms(uint64_t a, uint64_t b)
{
    return ((double)(b - a) + 1.0) / COST_NUMBERS_PER_MS * height_factor(b);
}

static uint64_t tokens(double ms)
{
    return ms >= COST_MAX ? (uint64_t)COST_MAX : 1 + (uint64_t)ms;
}

/* A query's worker milliseconds as a batch element: small ones cost their ~2 µs, not a token. */
static double query_ms(const struct api_query *q)
{
    switch (q->op) {
    case API_COUNT:
    case API_NTH:
    case API_PI:
        return 1000.0 * query_seconds(q);
    case API_PRIMES:
        return COST_LIST_FACTOR * range_ms(q->a, q->b);
    default:
        return 1.0 / COST_SMALL_PER_TOKEN;
    }
}

uint64_t api_cost(const struct api_ctx *ctx, const struct api_query *q)
{
    switch (q->op) {
    case API_COUNT:
    case API_NTH:
    case API_PI:
        return tokens(query_ms(q));
    case API_PRIMES:
        return tokens(COST_LIST_FACTOR * range_ms(q->a, q->b));
    case API_BATCH:
        /* Up front, unparsed (the I/O thread never parses a body): one small query per
         * BATCH_MIN_QUERY_BYTES. The worker prices the parsed queries before running any
         * (batch_price) and charges the whole through q->charge. */
        return tokens((double)(q->body_len / BATCH_MIN_QUERY_BYTES) / COST_SMALL_PER_TOKEN);
    case API_ISPRIME:
    case API_NEXT:
    case API_PREV:
    case API_TWIN:
        break;
    }
    return 1;
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
    int r = sieve_count(w->sieve, clo, chi, &n, cp->cancel);
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

/* π(x) by the engine: the plan (tables, on this worker), its chunks spread over idle workers
 * by pool_parallel (each polls `cancel` per segment), then the sum. The plan and every chunk's
 * scratch come from the π budget and are freed on every path. Returns 0, -ENOMEM, -ECANCELED. */
struct pi_par {
    struct pool_par par;
    pi_plan *plan; /* read-only here; each chunk writes its own slot inside the engine */
    const atomic_int *cancel;
};

static int pi_chunk(void *arg, uint64_t c, void *local)
{
    (void)local;
    struct pi_par *pp = arg;
    return pi_run_chunk(pp->plan, c, pp->cancel);
}

static int pi_parallel(const struct api_ctx *ctx, uint64_t x, uint64_t *out,
                       const atomic_int *cancel)
{
    struct pi_opts opts = {.threads = ctx->pool ? ctx->cfg->workers : 1};
    pi_plan *plan = NULL;
    int r = pi_plan_create(x, &opts, &plan, cancel);
    if (r != 0) goto done;
    uint64_t n = pi_plan_chunks(plan);
    if (!ctx->pool || n <= 1) {
        for (uint64_t i = 0; i < n && r == 0; i++)
            r = pi_run_chunk(plan, i, cancel);
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

/* [a, b] as π(b) − π(a−1). */
static int count_by_pi(const struct api_ctx *ctx, uint64_t a, uint64_t b, uint64_t *out,
                       const atomic_int *cancel)
{
    uint64_t hi = 0, lo = 0;
    int r = pi_parallel(ctx, b, &hi, cancel);
    if (r == 0 && a > 1) r = pi_parallel(ctx, a - 1, &lo, cancel);
    *out = hi - lo;
    return r;
}

/* The k-th prime: x near it by inverting li (sieve_nth_estimate), π(x) by the engine, then the
 * gap (about √x numbers) sieved on this worker. */
static int nth_prime(const struct api_ctx *ctx, struct api_worker *w, uint64_t k, uint64_t *p,
                     const atomic_int *cancel)
{
    uint64_t x = sieve_nth_estimate(k), pi = 0;
    int r = pi_parallel(ctx, x, &pi, cancel);
    if (r != 0) return r;
    return sieve_nth_finish(w->sieve, x, pi, k, p, cancel);
}

static enum pool_outcome cancelled_answer(int reason, struct http_response *resp)
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

static enum pool_outcome failed_answer(int r, const atomic_int *cancel, struct http_response *resp)
{
    int reason = cancel ? atomic_load_explicit(cancel, memory_order_acquire) : 0;
    if (r == -ECANCELED || reason) return cancelled_answer(reason, resp);
    if (r == -ENOMEM) {
        errors_render(resp, PERR_OVERLOADED, NULL, NULL, "pi(x) memory budget exhausted");
        return POOL_DONE;
    }
    errors_render(resp, PERR_INTERNAL, NULL, NULL, "computation failed: %s", strerror(-r));
    return POOL_DONE;
}

/* ---- batch --------------------------------------------------------------------------------- */

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

/* A batch op is a route-table row marked `batch`; its name is the row's label. */
static bool is_batch_op(const struct route *rt)
{
    return rt->kind == ROUTE_K_API && rt->batch;
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
        if (is_batch_op(router_route(i)) && strcmp(router_route(i)->label, op) == 0)
            route = (int)router_route(i)->id;
    if (route < 0) {
        char list[128] = "";
        for (size_t i = 0; i < router_count(); i++)
            if (is_batch_op(router_route(i)))
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                         list[0] ? ", " : "", router_route(i)->label);
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

/* The worker milliseconds of every query of qs, by the cost model, without running any: each is
 * prepared as its GET (with small answers kept off the I/O-thread path, so none is computed
 * here); one that prepare answers (an error, a refusal) costs what a small query does. */
static double batch_price_ms(const struct api_ctx *ctx, json_t *qs)
{
    struct api_ctx pctx = *ctx;
    pctx.inline_small = false;
    double ms = 0;
    for (size_t i = 0; i < json_array_size(qs); i++) {
        struct http_response er;
        http_response_init(&er);
        struct batch_query bq;
        int route = batch_query_init(json_array_get(qs, i), &bq, &er);
        struct api_query sq;
        memset(&sq, 0, sizeof sq);
        enum api_plan plan =
            route < 0 ? API_ANSWERED : api_prepare(&pctx, (enum route_id)route, &bq.req, &sq, &er);
        ms += plan == API_ANSWERED ? 1.0 / COST_SMALL_PER_TOKEN : query_ms(&sq);
        api_query_fini(&sq);
        http_response_fini(&er);
    }
    return ms;
}

/* Before any query runs: the batch's whole price is its queries' sum, refused like a single
 * request when it clearly cannot finish in time on the workers it may use (400, as admit_by_cost
 * refuses one query), and charged to the client through q->charge (a 429 if its bucket cannot
 * pay it). 0 to go on, -1 with the answer in resp. */
static int batch_admit(const struct api_ctx *ctx, struct api_query *q, json_t *qs,
                       struct http_response *resp)
{
    double ms = batch_price_ms(ctx, qs);
    if (ctx->cfg->refuse_hopeless && ctx->cfg->request_timeout_ms) {
        unsigned nw = usable_workers(ctx);
        double wall = ms / 1000.0 / nw, deadline = ctx->cfg->request_timeout_ms / 1000.0;
        if (wall > ADMIT_MARGIN * deadline) {
            errors_render(resp, PERR_LIMIT_EXCEEDED, "queries", NULL,
                          "the batch's %zu queries are estimated at %.3g s on %u worker%s (%.3g "
                          "s of CPU), deadline request_timeout_ms = %u ms",
                          json_array_size(qs), wall, nw, nw == 1 ? "" : "s", ms / 1000.0,
                          ctx->cfg->request_timeout_ms);
            return -1;
        }
    }
    if (q->charge && !q->charge(q->charge_arg, tokens(ms), resp)) return -1;
    return 0;
}

static enum pool_outcome run_batch(const struct api_ctx *ctx, struct api_query *q,
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

enum pool_outcome api_run(const struct api_ctx *ctx, struct api_query *q, void *local,
                          const atomic_int *cancel, struct http_response *resp)
{
    int reason = cancel ? atomic_load_explicit(cancel, memory_order_acquire) : 0;
    if (reason || !local) return cancelled_answer(reason, resp);
    struct api_worker *w = local;
    uint64_t n = 0;
    int r;
    switch (q->op) {
    case API_COUNT:
        r = q->by_pi ? count_by_pi(ctx, q->a, q->b, &n, cancel)
                     : count_range(ctx, w, q->a, q->b, &n, cancel);
        if (r != 0) return failed_answer(r, cancel, resp);
        render_count(resp, q->a, q->b, n);
        return POOL_DONE;
    case API_PI:
        r = pi_parallel(ctx, q->a, &n, cancel);
        if (r != 0) return failed_answer(r, cancel, resp);
        render_small(resp, "x", q->a, "pi", false, false, n);
        return POOL_DONE;
    case API_NTH:
        r = nth_prime(ctx, w, q->a, &n, cancel);
        if (r == -ERANGE) {
            errors_render(resp, PERR_NO_SUCH_PRIME, "n", NULL, "the %llu-th prime is above 2^64-1",
                          (unsigned long long)q->a);
            return POOL_DONE;
        }
        if (r != 0) return failed_answer(r, cancel, resp);
        render_small(resp, "n", q->a, "prime", false, false, n);
        return POOL_DONE;
    case API_ISPRIME:
    case API_NEXT:
    case API_PREV:
    case API_TWIN:
        answer_primality(resp, q->op, q->a);
        return POOL_DONE;
    case API_BATCH:
        return run_batch(ctx, q, w, cancel, resp);
    case API_PRIMES:
        break;
    }
    errors_render(resp, PERR_INTERNAL, NULL, NULL, "not a fixed-size answer");
    return POOL_DONE;
}

/* ---- streaming ----------------------------------------------------------------------------- */

/* A stream job never waits for its reader: when no block is free it records where it stopped
 * (q->pos) and returns POOL_PARKED; the stream resumes it once half of the buffer is free, and
 * the next run restarts the sieve at the first prime that did not fit. The range is sieved in
 * chunks sized to produce about half a buffer of text (stream_chunk_span), so a park throws away
 * at most one chunk of sieving: with whole-range calls every resume re-sieved a full segment
 * (7.8e6 numbers with 256 KiB segments, ~4 MB of text) to send 128 KiB: 6× the sieving work
 * for /v1/primes to 1e9. A chunk costs one sieving-prime setup (π(√hi) divisions; ~3400 at 1e9,
 * 78k at 1e12); above ~1e13 the sieve's narrow-window hybrid (Miller–Rabin on survivors) takes
 * over, so a restart never pays a big-prime window pass. Keeping the sieved-but-unsent primes
 * instead would avoid the re-sieving, but costs up to a segment of primes per parked stream,
 * outside the memory budget. */

#define EMIT_PARKED 1 /* emit/next_block result: the producer parked (not an error) */

struct emit_state {
    struct stream *s;
    struct jsonw w; /* fixed writer over the block being filled; w.buf NULL = no block */
    bool need_sep, text;
    uint64_t count;
    uint64_t next; /* where to resume when parking inside emit_primes */
};

/* Publish the current block, take a fresh one. 0, EMIT_PARKED or -ECANCELED. */
static int next_block(struct emit_state *st)
{
    if (st->w.buf) stream_block_commit(st->s, st->w.len);
    st->w.buf = NULL;
    st->w.len = 0;
    size_t cap = 0;
    char *b = NULL;
    switch (stream_block_get(st->s, &b, &cap)) {
    case STREAM_GET_OK:
        jsonw_init_fixed(&st->w, b, cap);
        return 0;
    case STREAM_GET_FULL:
        return EMIT_PARKED;
    default:
        return -ECANCELED;
    }
}

static int emit_primes(void *arg, const uint64_t *primes, size_t n)
{
    struct emit_state *st = arg;
    char sep = st->text ? '\n' : ',';
    while (n > 0) {
        size_t k = jsonw_u64_items(&st->w, primes, n, sep, &st->need_sep);
        primes += k;
        n -= k;
        st->count += k;
        if (n > 0) {
            int r = next_block(st);
            if (r == EMIT_PARKED) st->next = primes[0]; /* the first prime not sent */
            if (r != 0) return r;
        }
    }
    return 0;
}

/* Append literal text, moving to a fresh block when it does not fit (all or nothing). */
static int emit_text(struct emit_state *st, const char *s, size_t len)
{
    if (jsonw_raw(&st->w, s, len) == 0) return 0;
    st->w.overflow = false;
    int r = next_block(st);
    if (r != 0) return r;
    return jsonw_raw(&st->w, s, len);
}

/* Numbers after x whose primes fill about `bytes` of output: (bytes / bytes per prime) × ln x. */
static uint64_t stream_chunk_span(uint64_t x, size_t bytes)
{
    char digits[24];
    int d = snprintf(digits, sizeof digits, "%llu", (unsigned long long)x);
    double ln = x > 16 ? log((double)x) : 2.0;
    double span = (double)bytes / (double)(d + 1) * ln;
    return span < 4096.0 ? 4096 : (uint64_t)span;
}

const char *api_stream_content_type(const struct api_query *q)
{
    return q->text ? HTTP_TEXT : HTTP_JSON;
}

enum pool_outcome api_stream(const struct api_ctx *ctx, struct api_query *q, void *local,
                             struct stream *s, const atomic_int *cancel)
{
    int reason = cancel ? atomic_load_explicit(cancel, memory_order_acquire) : 0;
    struct api_worker *w = local;
    if (reason || !w) {
        stream_finish(s, false);
        return reason == POOL_CANCEL_DEADLINE ? POOL_TIMEOUT : POOL_CANCELLED;
    }
    struct api_stream_pos *pos = &q->pos;
    struct emit_state st = {
        .s = s, .text = q->text, .need_sep = pos->need_sep, .count = pos->count};
    int r = next_block(&st);
    if (r == 0 && pos->phase == API_SP_HEAD) {
        if (!q->text) {
            char head[128];
            int hl = snprintf(head, sizeof head, "{\"from\":%llu,\"to\":%llu,\"primes\":[",
                              (unsigned long long)q->a, (unsigned long long)q->b);
            r = emit_text(&st, head, (size_t)hl); /* a fresh block: fits, never parks */
        }
        pos->phase = API_SP_PRIMES;
        pos->next = q->a;
    }
    /* The first chunk of a run is about what the free part of the buffer takes; chunks grow 4×
     * while the reader keeps up (the run goes on), up to the sieve's own chunk width (a window
     * at high ranges), to amortise per-call setup: above ~1e13 narrow chunks take the hybrid
     * path (Miller–Rabin on every survivor, ~37 ns a number) and only wide ones the full sieve
     * (~1 ns a number after a setup pass over π(√hi) primes). A park throws away at most the
     * chunk in hand, which the reader earned by taking the chunks before it. Measured on
     * /v1/primes [1e18, 1e18+1e8] to curl: 16× doubling 6.9 s, this (with stream.c's wait for a
     * reader that keeps pace) 1.2 s. */
    uint64_t span = stream_chunk_span(pos->next, stream_capacity(s) / 2);
    while (r == 0 && pos->phase == API_SP_PRIMES) {
        uint64_t hi = q->b - pos->next < span ? q->b : pos->next + span - 1;
        r = sieve_foreach(w->sieve, pos->next, hi, emit_primes, &st, cancel);
        if (r == EMIT_PARKED) pos->next = st.next;
        if (r != 0) break;
        if (hi == q->b) {
            pos->phase = API_SP_TAIL;
        } else {
            pos->next = hi + 1;
            uint64_t cap = sieve_chunk_width(pos->next, q->b);
            span = span >= cap / 4 ? (span > cap ? span : cap) : span * 4;
        }
    }
    if (r == 0) { /* API_SP_TAIL: written whole, or again after a park */
        char tail[64];
        int tl = q->text ? (st.count ? snprintf(tail, sizeof tail, "\n") : 0)
                         : snprintf(tail, sizeof tail, "],\"count\":%llu}",
                                    (unsigned long long)st.count);
        if (tl > 0) r = emit_text(&st, tail, (size_t)tl);
    }
    if (r == EMIT_PARKED) {
        /* Everything written so far is committed (next_block); stop touching s now. */
        pos->need_sep = st.need_sep;
        pos->count = st.count;
        return POOL_PARKED;
    }
    if (r == 0) stream_block_commit(s, st.w.len);
    stream_finish(s, r == 0);
    if (r == 0) return POOL_DONE;
    reason = cancel ? atomic_load_explicit(cancel, memory_order_acquire) : 0;
    if (reason == POOL_CANCEL_DEADLINE) return POOL_TIMEOUT;
    return POOL_CANCELLED;
}
