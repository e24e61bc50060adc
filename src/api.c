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
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "primed/errors.h"
#include "primed/jsonw.h"
#include "primed/numparse.h"
#include "primed/primality.h"
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
    if (q->batch) json_decref(q->batch);
    q->batch = NULL;
}

/* Above these a count or nth is "large": a count of 1e10 numbers is ~1 s of sieving on one
 * worker, and nth above 1e8 builds a Meissel pi table of tens of MiB. Below them the work is a
 * fixed per-worker segment, so shedding it would not save memory. */
#define EXPENSIVE_COUNT_RANGE 10000000000ULL
#define EXPENSIVE_NTH 100000000ULL

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
    default:
        return false;
    }
}

/* ---- parameters ---------------------------------------------------------------------------- */

#define MAX_PARAMS 3
struct params {
    const char *names[MAX_PARAMS]; /* allowed names, NULL-terminated if fewer */
    const char *vals[MAX_PARAMS];
    const char *unknown;   /* first unknown name */
    const char *duplicate; /* first repeated name */
};

static void collect_arg(void *arg, const char *name, const char *value)
{
    struct params *p = arg;
    for (int i = 0; i < MAX_PARAMS && p->names[i]; i++) {
        if (strcmp(p->names[i], name) != 0) continue;
        if (p->vals[i] && !p->duplicate) p->duplicate = p->names[i];
        p->vals[i] = value ? value : "";
        return;
    }
    if (!p->unknown) p->unknown = name;
}

/* 0, or an error rendered into resp. */
static int params_check(const struct http_request *req, struct params *p,
                        struct http_response *resp)
{
    if (req->each_arg) req->each_arg(req, collect_arg, p);
    if (p->unknown) {
        errors_render(resp, PERR_UNKNOWN_PARAM, p->unknown, NULL, "unknown parameter '%.64s'",
                      p->unknown);
        return -1;
    }
    if (p->duplicate) {
        errors_render(resp, PERR_BAD_PARAM, p->duplicate, NULL, "parameter '%s' given twice",
                      p->duplicate);
        return -1;
    }
    return 0;
}

static int number_param(const struct params *p, int i, uint64_t *out, struct http_response *resp)
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

/* ---- small answers ------------------------------------------------------------------------- */

static void render_small(struct http_response *resp, const char *k1, uint64_t v1, const char *k2,
                         const char *k3, uint64_t v3, bool has3, bool is_bool, bool b)
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
        jsonw_u64(&w, v3);
    if (has3) {
        jsonw_lit(&w, ",\"");
        jsonw_raw(&w, k3, strlen(k3));
        jsonw_lit(&w, "\":");
        jsonw_u64(&w, v3);
    }
    jsonw_char(&w, '}');
    if (http_response_body(resp, 200, HTTP_JSON, w.buf, w.len) != 0)
        errors_render(resp, PERR_INTERNAL, NULL, NULL, NULL);
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
    if (http_response_body(resp, 200, HTTP_JSON, w.buf, w.len) != 0)
        errors_render(resp, PERR_INTERNAL, NULL, NULL, NULL);
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

static void answer_primality(struct http_response *resp, enum api_op op, uint64_t n)
{
    uint64_t p = 0;
    bool isp = false;
    int e = primality_answer(op, n, &p, &isp);
    if (op == API_ISPRIME) {
        render_small(resp, "n", n, "prime", NULL, 0, false, true, isp);
    } else if (e >= 0) {
        errors_render(resp, (enum primed_err)e, "n", NULL,
                      op == API_NEXT ? "no prime above %llu fits in 64 bits"
                                     : "no prime below %llu",
                      (unsigned long long)n);
    } else {
        render_small(resp, "n", n, op == API_NEXT ? "next" : "prev", NULL, p, false, false, false);
    }
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
    struct params p = {.names = {"from", "to", op == API_PRIMES ? "format" : NULL}};
    if (params_check(req, &p, resp) || number_param(&p, 0, &q->a, resp) ||
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
    return API_RUN;
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

/* jansson reports most allocation failures inside its lexer as syntax errors ("string or '}'
 * expected"), so its error cannot tell a client's bad JSON from our ENOMEM. Its allocator hook
 * can: a failed malloc sets this thread's flag, and prepare_batch answers 500, not 400. */
static _Thread_local bool json_alloc_failed;

static void *json_alloc(size_t n)
{
    void *p = malloc(n);
    if (!p) json_alloc_failed = true;
    return p;
}

static void json_alloc_install(void)
{
    json_set_alloc_funcs(json_alloc, free);
}

static enum api_plan prepare_batch(const struct api_ctx *ctx, const struct http_request *req,
                                   struct api_query *q, struct http_response *resp)
{
    struct params p = {.names = {NULL}};
    if (params_check(req, &p, resp)) return API_ANSWERED;
    if (!is_json_type(req->get_header ? req->get_header(req, "Content-Type") : NULL)) {
        errors_render(resp, PERR_UNSUPPORTED_MEDIA, NULL, NULL,
                      "the body must be Content-Type: application/json");
        return API_ANSWERED;
    }
    static pthread_once_t alloc_once = PTHREAD_ONCE_INIT;
    pthread_once(&alloc_once, json_alloc_install);
    json_error_t jerr;
    json_alloc_failed = false;
    json_t *root =
        json_loadb(req->body ? req->body : "", req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root && json_alloc_failed) {
        errors_render(resp, PERR_INTERNAL, NULL, NULL, "out of memory while parsing the body");
        return API_ANSWERED;
    }
    if (!root) {
        errors_render(resp, PERR_BAD_JSON, NULL, NULL, "invalid JSON at line %d column %d: %s",
                      jerr.line, jerr.column, jerr.text);
        return API_ANSWERED;
    }
    json_t *qs = json_object_get(root, "queries");
    if (!json_is_object(root) || json_object_size(root) != 1 || !json_is_array(qs)) {
        errors_render(resp, PERR_BAD_JSON, "queries", NULL,
                      "the body must be {\"queries\":[…]} and nothing else");
        json_decref(root);
        return API_ANSWERED;
    }
    if (json_array_size(qs) > ctx->cfg->max_batch_queries) {
        errors_render(resp, PERR_LIMIT_EXCEEDED, "queries", NULL,
                      "at most max_batch_queries = %u queries per batch",
                      ctx->cfg->max_batch_queries);
        json_decref(root);
        return API_ANSWERED;
    }
    q->batch = root;
    return API_RUN;
}

enum api_plan api_prepare(const struct api_ctx *ctx, enum route_id route,
                          const struct http_request *req, struct api_query *q,
                          struct http_response *resp)
{
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
        return prepare_batch(ctx, req, q, resp);
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
    default:
        errors_render(resp, PERR_NOT_FOUND, NULL, NULL, NULL);
        return API_ANSWERED;
    }
    struct params p = {.names = {"n"}};
    if (params_check(req, &p, resp) || number_param(&p, 0, &q->a, resp)) return API_ANSWERED;
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
        return API_RUN;
    }
    if (ctx->inline_small) {
        answer_primality(resp, q->op, q->a);
        return API_ANSWERED;
    }
    return API_RUN;
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

static int nth_prime(const struct api_ctx *ctx, struct api_worker *w, uint64_t k, uint64_t *p,
                     const atomic_int *cancel)
{
    uint64_t x = sieve_nth_estimate(k), pi = 0;
    /* π(x) by Meissel's formula where its table fits (nth(1e10): 0.05 s on one worker, against
     * 44 s of counting [0, x]); beyond, counted in chunks across the pool. */
    int r = x <= SIEVE_PI_MAX ? sieve_pi(w->sieve, x, &pi, cancel)
                              : count_range(ctx, w, 0, x, &pi, cancel);
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
    errors_render(resp, PERR_UNAVAILABLE, NULL, NULL,
                  reason == POOL_CANCEL_SHUTDOWN ? "server is shutting down" : "request cancelled");
    return POOL_CANCELLED;
}

static enum pool_outcome failed_answer(int r, const atomic_int *cancel, struct http_response *resp)
{
    int reason = cancel ? atomic_load_explicit(cancel, memory_order_acquire) : 0;
    if (r == -ECANCELED || reason) return cancelled_answer(reason, resp);
    errors_render(resp, PERR_INTERNAL, NULL, NULL, "computation failed: %s", strerror(-r));
    return POOL_DONE;
}

/* A batch query's number: a non-negative JSON integer or a string numparse accepts. */
static int batch_number(json_t *o, const char *key, uint64_t *out, const char **why)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        *why = "missing";
        return PERR_MISSING_PARAM;
    }
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return -1;
    }
    if (json_is_string(v)) {
        enum numparse_result r = numparse_u64(json_string_value(v), out);
        if (r == NUMPARSE_OK) return -1;
        *why = numparse_message(r);
        return PERR_BAD_PARAM;
    }
    *why = "must be a non-negative integer or a decimal string";
    return PERR_BAD_PARAM;
}

static void batch_error(struct jsonw *out, enum primed_err e, const char *param, const char *msg)
{
    const struct primed_error_info *info = errors_info(e);
    jsonw_lit(out, "{\"error\":{\"code\":");
    jsonw_str(out, info->code);
    jsonw_lit(out, ",\"message\":");
    jsonw_str(out, msg ? msg : info->message);
    if (param) {
        jsonw_lit(out, ",\"param\":");
        jsonw_str(out, param);
    }
    jsonw_lit(out, "}}");
}

static void kv_u64(struct jsonw *out, const char *k, uint64_t v, bool comma)
{
    if (comma) jsonw_char(out, ',');
    jsonw_str(out, k);
    jsonw_char(out, ':');
    jsonw_u64(out, v);
}

/* One batch query into out. Returns a sieve error (stop the batch) or 0. */
static int batch_one(const struct api_ctx *ctx, struct api_worker *w, json_t *o, struct jsonw *out,
                     const atomic_int *cancel)
{
    const char *op = json_string_value(json_object_get(o, "op"));
    if (!json_is_object(o) || !op) {
        batch_error(out, PERR_BAD_JSON, "op", "each query must be an object with a string op");
        return 0;
    }
    bool range = strcmp(op, "count") == 0;
    bool single = strcmp(op, "isprime") == 0 || strcmp(op, "nth") == 0 || strcmp(op, "next") == 0 ||
                  strcmp(op, "prev") == 0;
    if (!range && !single) {
        batch_error(out, PERR_BAD_PARAM, "op", "op must be isprime, count, nth, next or prev");
        return 0;
    }
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val)
    {
        if (strcmp(key, "op") == 0 || (range && (!strcmp(key, "from") || !strcmp(key, "to"))) ||
            (single && !strcmp(key, "n")))
            continue;
        batch_error(out, PERR_UNKNOWN_PARAM, key, NULL);
        return 0;
    }
    const char *why = NULL;
    uint64_t a = 0, b = 0;
    int e;
    if (range) {
        if ((e = batch_number(o, "from", &a, &why)) >= 0) {
            batch_error(out, (enum primed_err)e, "from", why);
            return 0;
        }
        if ((e = batch_number(o, "to", &b, &why)) >= 0) {
            batch_error(out, (enum primed_err)e, "to", why);
            return 0;
        }
        if (a > b) {
            batch_error(out, PERR_BAD_PARAM, "from", "from is greater than to");
            return 0;
        }
        if (b - a > ctx->cfg->max_count_range) {
            batch_error(out, PERR_LIMIT_EXCEEDED, "to", "range wider than max_count_range");
            return 0;
        }
        uint64_t n = 0;
        int r = count_range(ctx, w, a, b, &n, cancel);
        if (r != 0) return r;
        jsonw_char(out, '{');
        kv_u64(out, "from", a, false);
        kv_u64(out, "to", b, true);
        kv_u64(out, "count", n, true);
        jsonw_char(out, '}');
        return 0;
    }
    if ((e = batch_number(o, "n", &a, &why)) >= 0) {
        batch_error(out, (enum primed_err)e, "n", why);
        return 0;
    }
    jsonw_char(out, '{');
    if (strcmp(op, "isprime") == 0) {
        kv_u64(out, "n", a, false);
        jsonw_lit(out, ",\"prime\":");
        jsonw_bool(out, primality_is_prime(a));
        jsonw_char(out, '}');
        return 0;
    }
    uint64_t p = 0;
    if (strcmp(op, "nth") == 0) {
        if (a > PI_2_64) {
            out->len--;
            batch_error(out, PERR_NO_SUCH_PRIME, "n",
                        "there are only 425656284035217743 primes below 2^64");
            return 0;
        }
        if (a == 0 || a > ctx->cfg->max_nth) {
            out->len--; /* drop the '{' */
            batch_error(out, a == 0 ? PERR_BAD_PARAM : PERR_LIMIT_EXCEEDED, "n",
                        a == 0 ? "n must be at least 1" : "n larger than max_nth");
            return 0;
        }
        int r = nth_prime(ctx, w, a, &p, cancel);
        if (r == -ERANGE) {
            out->len--;
            batch_error(out, PERR_NO_SUCH_PRIME, "n", NULL);
            return 0;
        }
        if (r != 0) return r;
        kv_u64(out, "n", a, false);
        kv_u64(out, "prime", p, true);
        jsonw_char(out, '}');
        return 0;
    }
    bool next = strcmp(op, "next") == 0;
    bool ok = next ? primality_next(a, &p) : primality_prev(a, &p);
    if (!ok) {
        out->len--;
        batch_error(out, PERR_NO_SUCH_PRIME, "n", NULL);
        return 0;
    }
    kv_u64(out, "n", a, false);
    kv_u64(out, next ? "next" : "prev", p, true);
    jsonw_char(out, '}');
    return 0;
}

static enum pool_outcome run_batch(const struct api_ctx *ctx, const struct api_query *q,
                                   struct api_worker *w, const atomic_int *cancel,
                                   struct http_response *resp)
{
    json_t *qs = json_object_get(q->batch, "queries");
    struct jsonw out;
    jsonw_init_dynamic(&out, BATCH_BODY_MAX);
    jsonw_lit(&out, "{\"results\":[");
    for (size_t i = 0; i < json_array_size(qs); i++) {
        if (i) jsonw_char(&out, ',');
        int r = batch_one(ctx, w, json_array_get(qs, i), &out, cancel);
        if (r != 0) {
            jsonw_fini(&out);
            return failed_answer(r, cancel, resp);
        }
    }
    jsonw_lit(&out, "]}");
    if (out.overflow) {
        jsonw_fini(&out);
        errors_render(resp, PERR_INTERNAL, NULL, NULL, "batch answer too large");
        return POOL_DONE;
    }
    size_t len;
    char *body = jsonw_steal(&out, &len);
    if (!body) {
        errors_render(resp, PERR_INTERNAL, NULL, NULL, NULL);
        return POOL_DONE;
    }
    http_response_body_owned(resp, 200, HTTP_JSON, body, len);
    return POOL_DONE;
}

enum pool_outcome api_run(const struct api_ctx *ctx, const struct api_query *q, void *local,
                          const atomic_int *cancel, struct http_response *resp)
{
    int reason = cancel ? atomic_load_explicit(cancel, memory_order_acquire) : 0;
    if (reason || !local) return cancelled_answer(reason, resp);
    struct api_worker *w = local;
    uint64_t n = 0;
    int r;
    switch (q->op) {
    case API_COUNT:
        r = count_range(ctx, w, q->a, q->b, &n, cancel);
        if (r != 0) return failed_answer(r, cancel, resp);
        render_count(resp, q->a, q->b, n);
        return POOL_DONE;
    case API_NTH:
        r = nth_prime(ctx, w, q->a, &n, cancel);
        if (r == -ERANGE) {
            errors_render(resp, PERR_NO_SUCH_PRIME, "n", NULL, "the %llu-th prime is above 2^64-1",
                          (unsigned long long)q->a);
            return POOL_DONE;
        }
        if (r != 0) return failed_answer(r, cancel, resp);
        render_small(resp, "n", q->a, "prime", NULL, n, false, false, false);
        return POOL_DONE;
    case API_ISPRIME:
    case API_NEXT:
    case API_PREV:
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
