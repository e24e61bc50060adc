/* fuzz_api.c — libFuzzer harness for the /v1 request path without sockets: api_prepare on
 * arbitrary query strings and batch bodies, then api_run / api_stream when the query is cheap.
 *
 * A batch is parsed only by api_run (on a worker), where each query goes through api_prepare
 * and api_run again: so batch bodies reach every GET check too.
 *
 * Input: byte 0 picks the route, byte 1 flags (inline answers, Accept: text/plain, a wrong
 * Content-Type), the rest is the query string ("a=b&c") or, for /v1/batch, the body. Values
 * reach the API as C strings, as libmicrohttpd hands them over. Properties: every answer is
 * either a 200 JSON/text body or an error of the error table (status and code agree, the body is
 * JSON); /v1/count and /v1/primes agree with Miller–Rabin (primality.c, not the sieve) over the
 * whole range; /v1/pi (the combinatorial engine) agrees with Miller–Rabin up to PI_MR_MAX and,
 * above it, π(x) − π(x − PI_WINDOW) does (the window's lower π computed through pi_count at a
 * different x, so the two runs take different parameters and chunk plans); /v1/twin agrees with
 * two Miller–Rabin tests; /v1/factor's primes multiply back to n; streamed lists are complete,
 * increasing and inside [from, to]; no leak (ASan).
 */
#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "primed/api.h"
#include "primed/errors.h"
#include "primed/numparse.h"
#include "primed/pi.h"
#include "primed/primality.h"
#include "primed/stream.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small limits keep every accepted query cheap enough to compute on each input. */
#define MAX_RANGE 3000
#define MAX_NTH 20000
#define CHEAP_HI 1000000000000ULL /* sieving primes up to 10^6 only */
#define PI_CHEAP 10000000000ULL   /* π(x) is computed up to 10^10 (milliseconds) */
#define PI_MR_MAX 30000u          /* π(x) against Miller–Rabin over [0, x] up to here */
#define PI_WINDOW 1000u           /* above it, over (x − PI_WINDOW, x] */

static struct primed_config cfg;
static struct api_ctx ctx;
static void *local;
static struct stream_budget budget;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    config_defaults(&cfg);
    cfg.max_list_range = MAX_RANGE;
    cfg.max_count_range = MAX_RANGE;
    cfg.max_nth = MAX_NTH;
    cfg.max_batch_queries = 16;
    ctx.cfg = &cfg;
    ctx.pool = NULL;
    local = api_worker_init(&ctx);
    if (local == NULL) abort();
    stream_budget_init(&budget, 1 << 20);
    return 0;
}

#define MAX_ARGS 16
struct fake {
    struct http_request req;
    const char *names[MAX_ARGS], *values[MAX_ARGS];
    int nargs;
    const char *content_type, *accept;
};

static const char *get_arg(const struct http_request *req, const char *name)
{
    const struct fake *f = req->impl;
    for (int i = 0; i < f->nargs; i++)
        if (strcmp(f->names[i], name) == 0) return f->values[i];
    return NULL;
}
static const char *get_header(const struct http_request *req, const char *name)
{
    const struct fake *f = req->impl;
    if (strcasecmp(name, "Content-Type") == 0) return f->content_type;
    if (strcasecmp(name, "Accept") == 0) return f->accept;
    return NULL;
}
static void each_arg(const struct http_request *req,
                     void (*fn)(void *arg, const char *name, const char *value), void *arg)
{
    const struct fake *f = req->impl;
    for (int i = 0; i < f->nargs; i++)
        fn(arg, f->names[i], f->values[i]);
}

/* "a=b&c&d=" in place; a value is NULL when there is no '='. */
static void split_query(struct fake *f, char *q)
{
    while (q != NULL && f->nargs < MAX_ARGS) {
        char *amp = strchr(q, '&');
        if (amp) *amp++ = '\0';
        char *eq = strchr(q, '=');
        if (eq) *eq++ = '\0';
        f->names[f->nargs] = q;
        f->values[f->nargs] = eq;
        f->nargs++;
        q = amp;
    }
}

static void check_error(const struct http_response *r)
{
    json_error_t e;
    json_t *j = json_loadb(r->body, r->body_len, 0, &e);
    const char *code = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    if (j == NULL || code == NULL || r->content_type == NULL ||
        strcmp(r->content_type, HTTP_JSON) != 0) {
        fprintf(stderr, "bad error body %d: %.*s\n", r->status, (int)r->body_len, r->body);
        abort();
    }
    bool known = false;
    for (int i = 0; i < PERR__COUNT; i++)
        if (strcmp(errors_code((enum primed_err)i), code) == 0 &&
            errors_status((enum primed_err)i) == r->status)
            known = true;
    if (!known) abort(); /* a status/code pair the error table does not have */
    json_decref(j);
}

/* 200 JSON: an object (ints as reals: jansson's integers stop at 2^63-1). */
static json_t *check_ok_json(const char *body, size_t len)
{
    json_error_t e;
    json_t *j = json_loadb(body, len, JSON_DECODE_INT_AS_REAL, &e);
    if (j == NULL || !json_is_object(j)) {
        fprintf(stderr, "200 body is not a JSON object: %.*s\n", (int)len, body);
        abort();
    }
    return j;
}

static uint64_t mr_count(uint64_t a, uint64_t b)
{
    uint64_t n = 0;
    for (uint64_t x = a;; x++) {
        n += primality_is_prime(x);
        if (x == b) break;
    }
    return n;
}

/* The number of a 200 JSON body's member (jansson's reals are exact to 2^53; π(10^10) < 2^29). */
static uint64_t json_u64(const struct http_response *r, const char *key)
{
    json_t *j = check_ok_json(r->body, r->body_len);
    uint64_t v = (uint64_t)json_real_value(json_object_get(j, key));
    json_decref(j);
    return v;
}

static void check_pi(const struct api_query *q, const struct http_response *r)
{
    if (r->status != 200) abort(); /* every x up to PI_CHEAP has an answer */
    uint64_t x = q->a, pi = json_u64(r, "pi"), want, lower = 0;
    if (x <= PI_MR_MAX) {
        want = mr_count(0, x);
    } else {
        atomic_int cancel = 0;
        if (pi_count(x - PI_WINDOW, &lower, &cancel) != 0) abort();
        want = lower + mr_count(x - PI_WINDOW + 1, x);
    }
    if (pi != want) {
        fprintf(stderr, "pi(%llu) = %llu, Miller-Rabin says %llu\n", (unsigned long long)x,
                (unsigned long long)pi, (unsigned long long)want);
        abort();
    }
}

static void check_twin(const struct api_query *q, const struct http_response *r)
{
    json_t *j = check_ok_json(r->body, r->body_len);
    uint64_t n = q->a;
    bool want = n <= UINT64_MAX - 2 && primality_is_prime(n) && primality_is_prime(n + 2);
    if (r->status != 200 || json_is_true(json_object_get(j, "twin")) != want) abort();
    json_decref(j);
}

/* /v1/factor: ascending primes whose powers multiply back to n (read from the text: jansson's
 * reals lose digits above 2^53). */
static void check_factor(const struct api_query *q, const struct http_response *r)
{
    if (r->status != 200) return; /* n = 0: an error, checked by check_response */
    char body[512];
    if (r->body_len >= sizeof body) abort();
    memcpy(body, r->body, r->body_len);
    body[r->body_len] = '\0';
    const char *s = strstr(body, "\"factors\":[");
    if (s == NULL) abort();
    s += strlen("\"factors\":[");
    unsigned __int128 prod = 1;
    unsigned long long last = 1, p;
    unsigned e;
    int used;
    while (sscanf(s, "[%llu,%u]%n", &p, &e, &used) == 2) {
        if (p <= last || e == 0 || !primality_is_prime(p)) abort();
        for (unsigned i = 0; i < e; i++)
            prod *= p;
        last = p;
        s += used;
        if (*s == ',') s++;
    }
    if (strcmp(s, "]}") != 0 || prod != q->a) abort();
}

static void check_response(const struct http_response *r)
{
    if (r->body == NULL || r->body_len == 0) abort();
    if (r->status >= 400)
        check_error(r);
    else if (r->status == 200)
        json_decref(check_ok_json(r->body, r->body_len));
    else
        abort();
}

/* A batch member bound ("to" of a count/primes, "x" of a pi) that is at most hi, or absent. */
static bool member_below(json_t *o, const char *key, uint64_t hi)
{
    json_t *v = json_object_get(o, key);
    uint64_t u = 0;
    if (v == NULL) return true;
    if (json_is_integer(v)) return (uint64_t)json_integer_value(v) <= hi;
    if (json_is_string(v)) return numparse_u64(json_string_value(v), &u) == NUMPARSE_OK && u <= hi;
    return !json_is_real(v);
}

/* Batch bodies are computed only when every count and pi in them is cheap (or when the body is
 * not JSON at all: the worker refuses it); nth is bounded by max_nth. */
static bool batch_cheap(const char *body, size_t len)
{
    json_error_t e;
    json_t *root = json_loadb(body, len, 0, &e);
    if (root == NULL) return true;
    bool cheap = true;
    json_t *qs = json_object_get(root, "queries"), *o;
    size_t i;
    json_array_foreach(qs, i, o)
    {
        if (!member_below(o, "to", CHEAP_HI) || !member_below(o, "x", PI_CHEAP)) cheap = false;
    }
    json_decref(root);
    return cheap;
}

static void run_stream(const struct api_query *q)
{
    /* A small buffer (4 KiB in 1 KiB blocks) makes the producer park and resume often: each
     * POOL_PARKED is followed by draining the buffer and running api_stream again, as the pool
     * does once the reader has freed space. */
    struct stream *s = stream_create(&budget, 4 * 1024, 1024, NULL, NULL, NULL, NULL);
    if (s == NULL) abort();
    atomic_int cancel = 0;
    struct api_query sq = *q; /* api_stream keeps its position in sq.pos */
    sq.pos = (struct api_stream_pos){0};
    size_t cap = 1 << 20, len = 0, n;
    char *out = malloc(cap + 1);
    enum stream_read_result rr;
    enum pool_outcome o;
    while ((o = api_stream(&ctx, &sq, local, s, &cancel)) == POOL_PARKED) {
        while ((rr = stream_read(s, out + len, cap - len, &n, NULL, NULL)) == STREAM_DATA)
            len += n;
        if (rr != STREAM_EMPTY) abort();
    }
    if (o != POOL_DONE) abort();
    while ((rr = stream_read(s, out + len, cap - len, &n, NULL, NULL)) == STREAM_DATA)
        len += n;
    if (rr != STREAM_EOF) abort();
    stream_destroy(s);
    out[len] = '\0';

    uint64_t want = mr_count(q->a, q->b), got = 0, prev = 0;
    if (q->text) {
        for (char *p = out; *p;) {
            char *end;
            uint64_t v = strtoull(p, &end, 10);
            if (end == p || *end != '\n' || v < q->a || v > q->b || (got && v <= prev) ||
                !primality_is_prime(v))
                abort();
            prev = v;
            got++;
            p = end + 1;
        }
    } else {
        json_t *j = check_ok_json(out, len);
        json_t *arr = json_object_get(j, "primes"), *x;
        size_t i;
        if (!json_is_array(arr) ||
            json_real_value(json_object_get(j, "count")) != (double)json_array_size(arr))
            abort();
        json_array_foreach(arr, i, x)
        {
            uint64_t v = (uint64_t)json_real_value(x);
            if (v < q->a || v > q->b || (got && v <= prev) || !primality_is_prime(v)) abort();
            prev = v;
            got++;
        }
        json_decref(j);
    }
    if (got != want) {
        fprintf(stderr, "primes [%llu, %llu]: %llu listed, Miller-Rabin counts %llu\n",
                (unsigned long long)q->a, (unsigned long long)q->b, (unsigned long long)got,
                (unsigned long long)want);
        abort();
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum route_id routes[] = {ROUTE_PRIMES, ROUTE_COUNT, ROUTE_ISPRIME, ROUTE_NTH,
                                           ROUTE_NEXT,   ROUTE_PREV,  ROUTE_BATCH,   ROUTE_PI,
                                           ROUTE_TWIN,   ROUTE_FACTOR};
    if (size < 2 || size > 8192) return -1;
    enum route_id route = routes[data[0] % (sizeof routes / sizeof routes[0])];
    unsigned flags = data[1];
    struct fake f = {.nargs = 0};
    f.req.method = route == ROUTE_BATCH ? "POST" : "GET";
    f.req.path = "/fuzz";
    f.req.request_id = "fuzz";
    f.req.client_addr = "127.0.0.1";
    f.req.get_arg = get_arg;
    f.req.get_header = get_header;
    f.req.each_arg = each_arg;
    f.req.impl = &f;
    f.content_type = (flags & 4) ? "text/plain" : "application/json; charset=utf-8";
    f.accept = (flags & 2) ? "text/plain" : NULL;
    ctx.inline_small = flags & 1;

    char extra[] = "x=1";
    char *buf = malloc(size - 1); /* the rest + NUL */
    if (buf == NULL) return 0;
    memcpy(buf, data + 2, size - 2);
    buf[size - 2] = '\0';
    if (route == ROUTE_BATCH) {
        f.req.body = buf;
        f.req.body_len = size - 2;
        if (flags & 8) split_query(&f, extra); /* a batch takes no query parameters */
    } else {
        split_query(&f, buf);
    }

    struct api_query q;
    struct http_response resp;
    http_response_init(&resp);
    enum api_plan plan = api_prepare(&ctx, route, &f.req, &q, &resp);
    switch (plan) {
    case API_ANSWERED:
        check_response(&resp);
        break;
    case API_RUN: {
        bool cheap = q.route == ROUTE_BATCH ? batch_cheap(q.body, q.body_len)
                     : q.route == ROUTE_PI  ? q.a <= PI_CHEAP
                                            : q.b <= CHEAP_HI;
        if (q.route == ROUTE_COUNT && q.b - q.a > MAX_RANGE)
            abort(); /* the limit was not applied */
        if (q.route == ROUTE_NTH && (q.a == 0 || q.a > MAX_NTH)) abort();
        if (!cheap) break;
        atomic_int cancel = 0;
        if (api_run(&ctx, &q, local, &cancel, &resp) != POOL_DONE) abort();
        check_response(&resp);
        if (q.route == ROUTE_COUNT && resp.status == 200) {
            json_t *j = check_ok_json(resp.body, resp.body_len);
            if ((uint64_t)json_real_value(json_object_get(j, "count")) != mr_count(q.a, q.b))
                abort();
            json_decref(j);
        }
        if (q.route == ROUTE_PI) check_pi(&q, &resp);
        if (q.route == ROUTE_TWIN) check_twin(&q, &resp);
        if (q.route == ROUTE_FACTOR) check_factor(&q, &resp);
        break;
    }
    case API_STREAM:
        if (q.route != ROUTE_PRIMES || q.a > q.b || q.b - q.a > MAX_RANGE) abort();
        if (q.b <= CHEAP_HI) run_stream(&q);
        break;
    default:
        abort();
    }
    http_response_fini(&resp);
    api_query_fini(&q);
    free(buf);
    return 0;
}
