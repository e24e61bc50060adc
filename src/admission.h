/* admission.h — per-client admission of API requests: who the client is, what the request
 * costs, whether its bucket holds that, and what it gets back when the request ends early.
 *
 * The glue between the HTTP adapter (server.c, which supplies the peer address and the
 * X-Forwarded-For value as plain strings), the price list (api_cost) and the buckets
 * (ratelimit.h). It decides nothing about HTTP framing and never sees libmicrohttpd types; the
 * 429 it renders comes from the one error table. Health, readiness, metrics, / and the debug
 * listener are never limited; every other route is (so a new /v1 route is limited by default).
 * Internal to the server (server.c is its one user), so it lives beside the sources.
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
    bool keyed; /* clients are identified at all (rate limit or per-client job cap) */
};

/* One request's admission, embedded in the request (zeroed = not admitted, nothing to undo). */
struct admission_ticket {
    bool limited; /* a limited route under an active rate limit: RateLimit-* headers apply */
    bool charged; /* tokens were taken: admission_done may refund */
    bool keyed;
    struct ratelimit_key key;
    uint64_t cost;
    uint64_t t_ns; /* when charged */
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

/* The request is over. When it ended early (client gone, or an error status of 5xx), the
 * client gets back its price minus 1 and minus the milliseconds it ran. When it completed and
 * its run found a price above the one charged up front (`run_cost`: a batch's queries, 0 when
 * not known), the difference is charged now. Idempotent. */
void admission_done(struct admission *a, struct admission_ticket *t, int status, bool completed,
                    uint64_t run_cost, uint64_t now_ns);

#endif
