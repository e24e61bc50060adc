/* admission.c — see admission.h.
 *
 * A request is charged once, up front, at its estimated price: charging after the work would
 * let a client start any number of expensive requests on an empty bucket. The estimate can be
 * wrong, so a request that ends early gets back what it did not use (bounded below by its wall
 * time, which is at least the CPU it had on one worker). Tokens are never charged for routes
 * that must stay reachable under abuse (probes, metrics).
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
    t->t_ns = now_ns;
    if (ratelimit_take(a->rl, &t->key, t->cost, router_label_index(rt), now_ns, &t->v)) {
        t->charged = true;
        return true;
    }
    http_response_fini(resp);
    errors_render(resp, PERR_RATE_LIMITED, NULL, NULL,
                  "request price %" PRIu64 " tokens; the client's bucket holds %" PRIu64
                  " of at most %" PRIu64 ", retry in %" PRIu64 " s",
                  t->cost, t->v.remaining, t->v.limit, t->v.retry_after_s);
    char ra[24];
    snprintf(ra, sizeof ra, "%" PRIu64, t->v.retry_after_s);
    http_response_header(resp, "Retry-After", ra);
    return false;
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

void admission_done(struct admission *a, struct admission_ticket *t, int status, bool completed,
                    uint64_t run_cost, uint64_t now_ns)
{
    if (!t->charged || !a->rl) return;
    t->charged = false;
    if (completed && status < 500) {
        if (run_cost > t->cost) ratelimit_charge(a->rl, &t->key, run_cost - t->cost);
        return;
    }
    uint64_t ran_ms = now_ns > t->t_ns ? (now_ns - t->t_ns) / 1000000u : 0;
    if (t->cost > 1 + ran_ms) ratelimit_refund(a->rl, &t->key, t->cost - 1 - ran_ms);
}
