/* admission.c — see admission.h.
 *
 * A request is charged up front at its estimated price: charging after the work would let a
 * client start any number of expensive requests on an empty bucket. A batch, whose body is
 * parsed only on a worker, is re-priced there at the sum of its queries before any of them runs
 * (admission_batch_charge). When the request ends, whatever the outcome, it is settled at the
 * worker CPU it really used (the pool measures it, helpers' chunks included): a completed answer
 * pays max(price, CPU), anything else (5xx, a client that left, a drain) pays its CPU and gets
 * the rest back. So no path spends worker time for free, and a wrong estimate is paid in full.
 * Tokens are never charged for routes that must stay reachable under abuse (probes, metrics).
 */
#include "admission.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "primed/errors.h"

int admission_init(struct admission *a, const struct primed_config *cfg)
{
    memset(a, 0, sizeof *a);
    char why[160];
    int n = ratelimit_cidrs_parse(cfg->trusted_proxies, a->proxies, RATELIMIT_MAX_PROXIES, why,
                                  sizeof why);
    if (n < 0) return -EINVAL; /* config.c validated it already */
    a->nproxies = (size_t)n;
    if (cfg->rate_limit > 0) {
        struct ratelimit_params p = {.rate = cfg->rate_limit,
                                     .burst = cfg->rate_limit_burst ? cfg->rate_limit_burst
                                                                    : cfg->rate_limit,
                                     .clients = cfg->rate_limit_clients};
        a->rl = ratelimit_create(&p);
        if (!a->rl) return -ENOMEM;
        a->rate = p.rate;
    }
    a->keyed = a->rl != NULL || cfg->max_inflight_per_client > 0;
    return 0;
}

void admission_fini(struct admission *a)
{
    ratelimit_destroy(a->rl);
    a->rl = NULL;
}

bool admission_wants_forwarded_for(const struct admission *a)
{
    return a->nproxies > 0; /* request memory shares key every client (admission_client_of) */
}

uint64_t admission_client_of(const struct admission *a, const char *peer, const char *xff)
{
    struct ratelimit_key k;
    if (ratelimit_client_key(peer, xff, a->proxies, a->nproxies, &k) != 0) return 0;
    return ratelimit_key_tag(&k);
}

/* Every API row is limited; health, readiness, metrics, `/` and the debug endpoints never are. */
static bool route_limited(const struct route *rt)
{
    return rt->kind == ROUTE_K_API;
}

/* The refusal of a price: 429 with Retry-After, or 400 when no bucket could ever pay it. resp's
 * previous content is freed. */
static void render_refusal(const struct admission *a, uint64_t cost,
                           const struct ratelimit_verdict *v, struct http_response *resp)
{
    http_response_fini(resp);
    if (v->never) {
        errors_render(resp, PERR_LIMIT_EXCEEDED, NULL, NULL,
                      "request price %" PRIu64 " tokens (about that many ms of worker CPU) is "
                      "more than one request may cost under rate_limit: burst %" PRIu64
                      " + %d s of refill = %" PRIu64 " tokens",
                      cost, v->limit, RATELIMIT_MAX_DEBT_S, ratelimit_max_price(a->rate, v->limit));
        return;
    }
    errors_render(resp, PERR_RATE_LIMITED, NULL, NULL,
                  "request price %" PRIu64 " tokens; the client's bucket holds %" PRIu64
                  " of at most %" PRIu64 ", retry in %" PRIu64 " s",
                  cost, v->remaining, v->limit, v->retry_after_s);
    char ra[24];
    snprintf(ra, sizeof ra, "%" PRIu64, v->retry_after_s);
    http_response_header(resp, "Retry-After", ra);
}

bool admission_admit(struct admission *a, const struct api_ctx *api, const struct route *rt,
                     enum api_plan plan, const struct api_query *q, const char *peer,
                     const char *xff, uint64_t now_ns, struct admission_ticket *t,
                     struct http_response *resp)
{
    memset(t, 0, sizeof *t);
    if (!a->keyed || !route_limited(rt)) return true;
    if (ratelimit_client_key(peer, xff, a->proxies, a->nproxies, &t->key) != 0) return true;
    t->keyed = true;
    if (!a->rl) return true;
    t->limited = true;
    t->cost = plan == API_ANSWERED ? 1 : api_cost(api, q);
    t->label = router_label_index(rt);
    if (ratelimit_take(a->rl, &t->key, t->cost, t->label, now_ns, &t->v)) {
        t->charged = true;
        return true;
    }
    render_refusal(a, t->cost, &t->v, resp);
    return false;
}

bool admission_batch_charge(struct admission *a, struct admission_ticket *t, uint64_t tokens,
                            uint64_t now_ns, struct http_response *resp)
{
    if (!t->charged || !a->rl) return true;
    if (tokens < 1) tokens = 1;
    struct ratelimit_verdict v;
    if (!ratelimit_retake(a->rl, &t->key, t->cost, tokens, t->label, now_ns, &v)) {
        render_refusal(a, tokens, &v, resp);
        return false;
    }
    t->cost = tokens;
    t->v = v;
    return true;
}

uint64_t admission_client_tag(const struct admission_ticket *t)
{
    return t->keyed ? ratelimit_key_tag(&t->key) : 0;
}

/* x in decimal into out[21]; returns out. snprintf cost ~120 ns a call, a third of the whole
 * admission on the isprime path (scripts/bench-ratelimit.sh). */
static const char *u64_text(uint64_t x, char out[21])
{
    char *p = out + 20;
    *p = '\0';
    do {
        *--p = (char)('0' + x % 10);
        x /= 10;
    } while (x);
    return p;
}

void admission_headers(const struct admission_ticket *t,
                       void (*add)(void *arg, const char *name, const char *value), void *arg)
{
    if (!t->limited) return;
    char v[21];
    add(arg, "RateLimit-Limit", u64_text(t->v.limit, v));
    add(arg, "RateLimit-Remaining", u64_text(t->v.remaining, v));
    add(arg, "RateLimit-Reset", u64_text(t->v.reset_s, v));
}

uint64_t admission_settle(struct admission *a, struct admission_ticket *t, int status,
                          bool completed, uint64_t cpu_ns)
{
    if (!t->charged || !a->rl) return 0;
    t->charged = false;
    uint64_t cpu_ms = (cpu_ns + 999999u) / 1000000u; /* a started millisecond counts */
    uint64_t final = completed && status < 500 ? (cpu_ms > t->cost ? cpu_ms : t->cost)
                                               : (cpu_ms > 1 ? cpu_ms : 1);
    if (final > t->cost)
        ratelimit_charge(a->rl, &t->key, final - t->cost);
    else if (final < t->cost)
        ratelimit_refund(a->rl, &t->key, t->cost - final);
    return final;
}

uint64_t admission_retry_after_s(const struct admission *a, const struct admission_ticket *t,
                                 uint64_t cpu_ns)
{
    if (!t->limited || !a->rl || a->rate == 0) return 1;
    uint64_t cpu_ms = (cpu_ns + 999999u) / 1000000u;
    uint64_t extra = cpu_ms > t->cost ? cpu_ms - t->cost : 0;
    uint64_t s = t->v.reset_s + (extra + a->rate - 1) / a->rate;
    return s ? s : 1;
}
