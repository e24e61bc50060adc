/* api_fake.h — the API without sockets, for the API's unit tests (test_api.c, test_op_*.c): a
 * fake struct http_request made of name=value pairs and headers, and one call through
 * api_prepare (then api_run on a private worker state when planned). Test-only. */
#ifndef PRIMED_TEST_API_FAKE_H
#define PRIMED_TEST_API_FAKE_H

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "primed/api.h"
#include "primed/errors.h"

struct fake {
    const char *names[8], *vals[8];
    int n;
    const char *accept, *ctype;
};

static inline const char *f_arg(const struct http_request *r, const char *name)
{
    const struct fake *f = r->impl;
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0) return f->vals[i];
    return NULL;
}
static inline const char *f_header(const struct http_request *r, const char *name)
{
    const struct fake *f = r->impl;
    if (strcasecmp(name, "Accept") == 0) return f->accept;
    if (strcasecmp(name, "Content-Type") == 0) return f->ctype;
    return NULL;
}
static inline void f_each(const struct http_request *r,
                          void (*fn)(void *, const char *, const char *), void *arg)
{
    const struct fake *f = r->impl;
    for (int i = 0; i < f->n; i++)
        fn(arg, f->names[i], f->vals[i]);
}

/* Run prepare (and, if planned, api_run on a private worker state) for a query string made of
 * name=value pairs; returns the status and leaves the body in out. */
static inline int api_fake_call(const struct api_ctx *ctx, enum route_id route, const char *body,
                                struct fake *f, char *out, size_t outlen)
{
    struct http_request req = {.method = "GET",
                               .path = "/",
                               .get_arg = f_arg,
                               .get_header = f_header,
                               .each_arg = f_each,
                               .impl = f,
                               .body = body,
                               .body_len = body ? strlen(body) : 0};
    struct http_response resp;
    http_response_init(&resp);
    struct api_query q;
    enum api_plan plan = api_prepare(ctx, route, &req, &q, &resp);
    if (plan == API_RUN) {
        void *w = api_worker_init((void *)ctx);
        atomic_int cancel = 0;
        api_run(ctx, &q, w, &cancel, &resp);
        api_worker_fini((void *)ctx, w);
    } else if (plan == API_STREAM) {
        http_response_static(&resp, 200, "stream", "", 0);
    }
    snprintf(out, outlen, "%.*s", (int)resp.body_len, resp.body ? resp.body : "");
    int st = resp.status;
    api_query_fini(&q);
    http_response_fini(&resp);
    return st;
}

#define Q(...) (&(struct fake){__VA_ARGS__})

/* The error code of an error body, or "(none)". */
static inline const char *code_of(const char *body)
{
    static char code[64];
    json_t *j = json_loads(body, 0, NULL);
    const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    snprintf(code, sizeof code, "%s", c ? c : "(none)");
    json_decref(j);
    return code;
}

/* A batch is charged up front by its size (unparsed, on the I/O thread), then priced on its
 * worker at the sum of its queries before any runs: what it asks q.charge for. */
struct charge_rec {
    uint64_t tokens;
    int calls;
    bool refuse;
};

static inline bool record_charge(void *arg, uint64_t tokens, struct http_response *resp)
{
    struct charge_rec *c = arg;
    c->tokens = tokens;
    c->calls++;
    if (c->refuse) {
        http_response_fini(resp);
        errors_render(resp, PERR_RATE_LIMITED, NULL, NULL, "test refusal");
    }
    return !c->refuse;
}

static inline struct http_response api_fake_priced_batch(const struct api_ctx *ctx,
                                                         const char *body, struct charge_rec *rec)
{
    struct fake *json = Q(.ctype = "application/json");
    struct http_request req = {.method = "POST",
                               .path = "/v1/batch",
                               .get_arg = f_arg,
                               .get_header = f_header,
                               .each_arg = f_each,
                               .impl = json,
                               .body = body,
                               .body_len = strlen(body)};
    struct http_response resp;
    http_response_init(&resp);
    struct api_query q;
    ck_assert_int_eq(api_prepare(ctx, ROUTE_BATCH, &req, &q, &resp), API_RUN);
    ck_assert_uint_eq(api_cost(ctx, &q), 1 + strlen(body) / 22 / 500); /* up front */
    q.charge = record_charge;
    q.charge_arg = rec;
    void *w = api_worker_init((void *)ctx);
    atomic_int cancel = 0;
    ck_assert_int_eq(api_run(ctx, &q, w, &cancel, &resp), POOL_DONE);
    api_worker_fini((void *)ctx, w);
    api_query_fini(&q);
    return resp;
}

/* A batch body's price on its worker: what it asks q.charge for (and it answers 200). */
static inline uint64_t api_fake_batch_price(const struct api_ctx *ctx, const char *body)
{
    struct charge_rec rec = {0};
    struct http_response resp = api_fake_priced_batch(ctx, body, &rec);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(rec.calls, 1);
    http_response_fini(&resp);
    return rec.tokens;
}

#endif
