/* admission.h — per-client admission of API requests: who the client is, what the request
 * costs, whether its bucket holds that, and what it gets back when the request ends early.
 *
 * The glue between the HTTP front end (dispatch.c admits, with the peer address and the
 * X-Forwarded-For value as plain strings; server.c settles when the request ends), the price list
 * (api_cost) and the buckets (ratelimit.h). It decides nothing about HTTP framing and never sees
 * libmicrohttpd types; the 429 it renders comes from the one error table. Health, readiness,
 * metrics, / and the debug listener are never limited; every other route is (so a new /v1 route is
 * limited by default). Internal to the server (its adapter and dispatch.c are its users), so it
 * lives beside the sources.
 */
#ifndef PRIMED_ADMISSION_H
#define PRIMED_ADMISSION_H

#include <stdbool.h>
#include <stdint.h>

#include "primed/api.h"
#include "primed/config.h"
#include "primed/http.h"
#include "primed/ratelimit.h"
#include "primed/router.h"

struct admission {
    struct ratelimit *rl; /* owned; NULL when rate_limit is 0 */
    struct ratelimit_cidr proxies[RATELIMIT_MAX_PROXIES];
    size_t nproxies;
    bool keyed;    /* clients are identified at all (rate limit or per-client job cap) */
    uint64_t rate; /* rate_limit (tokens/s) when rl is set */
};

/* One request's admission, embedded in the request (zeroed = not admitted, nothing to undo).
 * Written by the I/O thread at admission, by the request's worker in admission_batch_charge
 * (ordered before the I/O thread reads it again by the worker's resume), and read once more by
 * admission_settle, which runs when the request's last reference goes (after its job's `done`). */
struct admission_ticket {
    bool limited; /* a limited route under an active rate limit: RateLimit-* headers apply */
    bool charged; /* tokens were taken: admission_settle settles them */
    bool keyed;
    struct ratelimit_key key;
    uint64_t cost; /* tokens taken so far */
    size_t label;  /* router_label_index of the route (the limited-requests counter) */
    struct ratelimit_verdict v;
};

/* Reads rate_limit, rate_limit_burst, rate_limit_clients, trusted_proxies and
 * max_inflight_per_client. Returns 0, -EINVAL (bad trusted_proxies) or -ENOMEM. */
int admission_init(struct admission *a, const struct primed_config *cfg);
void admission_fini(struct admission *a); /* accepts a zeroed or failed one */

/* Whether the caller should bother collecting X-Forwarded-For (some proxy is trusted). */
bool admission_wants_forwarded_for(const struct admission *a);

/* The client's tag (as admission_client_tag would give it), whether or not rate limits are on:
 * what request memory shares are charged to. 0 when the peer is not an address. */
uint64_t admission_client_of(const struct admission *a, const char *peer, const char *xff);

/* After api_prepare: key the client (peer text, xff may be NULL), price the request (1 when
 * plan is API_ANSWERED, api_cost otherwise) and charge it. Returns true to go on. Returns false
 * when the client is over its limit: resp then holds 429 rate_limited with Retry-After (its
 * previous content freed) and the caller must answer it instead of running the query. */
bool admission_admit(struct admission *a, const struct api_ctx *api, const struct route *rt,
                     enum api_plan plan, const struct api_query *q, const char *peer,
                     const char *xff, uint64_t now_ns, struct admission_ticket *t,
                     struct http_response *resp);

/* The client's tag for the pool's per-client fairness (pool_job.client), 0 = none. */
uint64_t admission_client_tag(const struct admission_ticket *t);

/* The RateLimit-Limit / -Remaining / -Reset headers of a limited-route response (none
 * otherwise): calls add(arg, name, value) for each; value is valid during the call. */
void admission_headers(const struct admission_ticket *t,
                       void (*add)(void *arg, const char *name, const char *value), void *arg);

/* A batch, on its worker, before any query runs: re-price it at `tokens` (the sum of its
 * queries' prices) in place of what was taken up front. Returns true to go on; false when the
 * client's bucket cannot pay it, with the 429 (or the 400 of a price no bucket can pay) in resp.
 * A no-op (true) when nothing was charged. Any thread; see the ticket for the ordering. */
bool admission_batch_charge(struct admission *a, struct admission_ticket *t, uint64_t tokens,
                            uint64_t now_ns, struct http_response *resp);

/* Seconds a client should wait before its next request, for a 429 that did not come from its
 * bucket (a metered request stopped past its CPU limit): the time to refill from the verdict
 * at admission plus what the CPU used beyond the price will take to pay back. At least 1. */
uint64_t admission_retry_after_s(const struct admission *a, const struct admission_ticket *t,
                                 uint64_t cpu_ns);

/* The request is over and its work has stopped: settle at the worker CPU it used (cpu_ns, the
 * pool's measure of its job, helpers included; 0 when it never ran). A completed answer below
 * 500 pays max(price, CPU ms); any other end (5xx, a client that left, a drain) pays its CPU ms,
 * at least 1. The difference from what was taken is charged or given back. Returns the tokens
 * the request paid in the end (0 when nothing was charged). Idempotent. */
uint64_t admission_settle(struct admission *a, struct admission_ticket *t, int status,
                          bool completed, uint64_t cpu_ns);

#endif
