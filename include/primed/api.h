/* api.h — the /v1 endpoints: parse and validate a query, then compute and render its answer.
 *
 * api_prepare runs on the I/O thread and does no work proportional to the request beyond a
 * primality test: it validates query parameters (strict numbers, no unknown or repeated names,
 * configured limits) and either answers at once (errors; the ops cheaper than a hand-off, marked
 * inline_ok in the op table — see api.c) or returns a query for a worker: api_run (fixed answer) or
 * api_stream (the /v1/primes body, written block by block into a stream). A batch body is only
 * looked at on the worker (api_run), where each of its queries goes through this same
 * prepare/run path. Never touches sockets or the HTTP library; never invents an error status
 * (errors.h).
 */
#ifndef PRIMED_API_H
#define PRIMED_API_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "primed/config.h"
#include "primed/http.h"
#include "primed/picache.h"
#include "primed/pool.h"
#include "primed/reqmem.h"
#include "primed/router.h"
#include "primed/stream.h"

struct api_ctx {
    const struct primed_config *cfg; /* borrowed for the process lifetime */
    struct pool *pool;               /* for intra-request parallelism; NULL = sequential */
    bool inline_small;               /* answer isprime/next/prev on the I/O thread */
    struct reqmem *mem;  /* batch parses are charged here (borrowed); NULL = unbounded */
    struct picache *pic; /* π values shared by pi, count and nth (borrowed); NULL = no cache */
};

/* One operation's row of the op table (src/api_op.h): parse, cost, run, inline?, batch?.
 * Opaque outside the API module. */
struct api_op_def;

/* Where a parked /v1/primes stream picks up again (see api_stream). Zero = not started. */
enum api_stream_phase { API_SP_HEAD = 0, API_SP_PRIMES, API_SP_TAIL };
struct api_stream_pos {
    enum api_stream_phase phase;
    uint64_t next;  /* API_SP_PRIMES: the first number not yet sieved (the last prime sent + 1
                       or more: the first prime that did not fit) */
    uint64_t count; /* primes sent so far */
    bool need_sep;  /* a separator goes before the next prime */
};

struct api_query {
    enum route_id route;         /* the endpoint (set by api_prepare) */
    const struct api_op_def *op; /* its row of the op table (set by api_prepare) */
    uint64_t a, b;               /* from/to, or n, or x */
    bool by_pi; /* count: π(b) − π(a−1) by the π engine instead of sieving (api_prepare) */
    bool text;  /* /v1/primes as text/plain */
    /* batch: the raw body, borrowed from the request, which outlives the query (server.c
     * frees the body with the request). Parsed only by api_run, on a worker. */
    const char *body;
    size_t body_len;
    /* batch: the body is priced only on the worker (the I/O thread never parses it): before
     * any of its queries runs, api_run sums their prices and asks charge(charge_arg, tokens,
     * resp) for the whole; false refuses the batch with what charge rendered into resp (a 429).
     * NULL = nothing to charge (no rate limit). Set by the caller before the job is submitted. */
    bool (*charge)(void *arg, uint64_t tokens, struct http_response *resp);
    void *charge_arg;
    /* Written only by the run of api_stream producing this query's body (runs never overlap:
     * pool_resume orders them through the pool lock). */
    struct api_stream_pos pos;
};
/* Releases what q owns (today nothing: a batch borrows its body); call it for every prepared
 * query, so that a query that comes to own memory needs no change in its callers. */
void api_query_fini(struct api_query *q);

enum api_plan {
    API_ANSWERED = 0, /* resp is filled (an error or an inline answer) */
    API_RUN,          /* call api_run on a worker */
    API_STREAM,       /* call api_stream on a worker; the body is chunked */
};
enum api_plan api_prepare(const struct api_ctx *ctx, enum route_id route,
                          const struct http_request *req, struct api_query *q,
                          struct http_response *resp);

/* Is q expensive new work (a stream, a batch, a large count or nth), to be refused while memory
 * is above the high-water mark (memwatch.h)? Cheap answers never reach this question. Its op's
 * holds_memory. */
bool api_query_expensive(const struct api_query *q);
/* The price of a prepared query in rate-limit tokens, 1 token ≈ 1 ms of one worker's CPU:
 * 1 + its op's cost estimate in worker milliseconds (the one cost model, src/api_op.h;
 * docs/configuration.md lists the formulas). Always >= 1; capped at 1e9. A batch's is a deposit
 * by its size; its worker re-prices it (api_query.charge). */
uint64_t api_cost(const struct api_ctx *ctx, const struct api_query *q);

/* Does a count of [a, b] go through π(b) − π(a−1) rather than a sieve of [a, b]? The cheaper of
 * the two by the engine's cost model (pi_cost_seconds, pi_sieve_cost_seconds; docs/sieve.md). */
bool api_count_by_pi(uint64_t a, uint64_t b);

/* The metrics of π(x) beyond the cache's own (picache_collect): computations in flight, requests
 * that joined one, answers reused from a cached neighbour (a collector; arg unused). */
struct metrics_writer;
void api_pi_collect(void *arg, struct metrics_writer *w);

/* Worker-local state (pool_create's init/fini with arg = the api_ctx). */
void *api_worker_init(void *ctx);
void api_worker_fini(void *ctx, void *local);

/* Compute q on a worker into resp. Cancellation: a DEADLINE reason yields 504, SHUTDOWN 503,
 * CLIENT an (unsent) 503. local may be NULL only when cancel is already set. A batch is parsed
 * here (400 for a shape it cannot use, 503 when ctx->mem cannot hold the parse) and each of its
 * queries prepared and run as its GET endpoint; a cancel stops the batch with the cancel's
 * answer. */
enum pool_outcome api_run(const struct api_ctx *ctx, struct api_query *q, void *local,
                          const atomic_int *cancel, struct http_response *resp);

/* The Content-Type of q's stream. */
const char *api_stream_content_type(const struct api_query *q);
/* Produce q's streamed body into s, then stream_finish(s, ok). When every block of s is full it
 * saves its position in q->pos and returns POOL_PARKED without finishing: call it again (same
 * q and s) once s resumes the producer; it goes on from q->pos. It never blocks. */
enum pool_outcome api_stream(const struct api_ctx *ctx, struct api_query *q, void *local,
                             struct stream *s, const atomic_int *cancel);

#endif
