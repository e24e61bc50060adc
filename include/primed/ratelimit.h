/* ratelimit.h — per-client token buckets weighted by cost, in a bounded client table.
 *
 * A client is an address: an IPv4 address, or the /64 of an IPv6 address. Behind a balancer
 * (the peer is in `trusted_proxies`) it is the first untrusted address of X-Forwarded-For read
 * right to left; a header from an untrusted peer is never believed. The table holds at most
 * `clients` buckets, all allocated at create; a new client evicts (clock) a cold one. Takes
 * plain strings and numbers only: no HTTP library, no JSON, no clock of its own (callers pass
 * CLOCK_MONOTONIC ns), so every rule here is unit-testable.
 */
#ifndef PRIMED_RATELIMIT_H
#define PRIMED_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "primed/metrics.h"
#include "primed/router.h"

/* ---- bucket arithmetic (pure) ------------------------------------------------------------ */

/* Tokens are kept in millitokens so refill is exact integer arithmetic. */
#define RATELIMIT_MILLI 1000

struct ratelimit_bucket {
    int64_t level_mt;  /* millitokens; negative = debt left by a request costing more than burst */
    uint64_t stamp_ns; /* when level_mt was last brought up to date */
};

/* What a take answers, for the RateLimit-* and Retry-After headers (whole seconds, rounded
 * up; remaining rounded down). */
struct ratelimit_verdict {
    bool allowed;
    uint64_t limit;         /* the burst: most tokens one client can spend at once */
    uint64_t remaining;     /* whole tokens left after this request (0 when in debt) */
    uint64_t reset_s;       /* seconds until the bucket is full again */
    uint64_t retry_after_s; /* when refused: seconds until this request would be allowed */
    bool never;             /* refused because cost > ratelimit_max_price: retrying cannot help */
};

/* A price above the burst is admitted from a full bucket and leaves a debt, but never a debt of
 * more than RATELIMIT_MAX_DEBT_S seconds of refill: so whatever a client sends, the prices
 * admitted in any window of T seconds add up to at most burst + rate × max(T, this) — a bound
 * on the CPU it can make the server spend, given prices that match the work (the pool meters
 * that they do). The most one request may cost: burst + rate × RATELIMIT_MAX_DEBT_S. */
#define RATELIMIT_MAX_DEBT_S 10
uint64_t ratelimit_max_price(uint64_t rate, uint64_t burst);

/* A fresh (full) bucket at now_ns. */
void ratelimit_bucket_init(struct ratelimit_bucket *b, uint64_t burst, uint64_t now_ns);
/* Refill at `rate` tokens/s up to `burst`, then take `cost` tokens if the bucket holds them.
 * A cost above the burst is allowed only from a full bucket and leaves the bucket in debt
 * (negative), so such requests are possible but average out to `rate`; a cost above
 * ratelimit_max_price never is (v->never). A clock that went back
 * (now_ns < stamp) refills nothing and restarts from now_ns. rate and burst must be >= 1.
 * Never fails; fills *v. */
bool ratelimit_bucket_take(struct ratelimit_bucket *b, uint64_t now_ns, uint64_t rate,
                           uint64_t burst, uint64_t cost, struct ratelimit_verdict *v);
/* Give back `tokens` (never above the burst). */
void ratelimit_bucket_refund(struct ratelimit_bucket *b, uint64_t burst, uint64_t tokens);
/* Take `tokens` more after the fact (a batch whose queries cost more than its up-front price):
 * the bucket may go into debt, which refill pays off like any other. */
void ratelimit_bucket_charge(struct ratelimit_bucket *b, uint64_t tokens);

/* ---- client keys ------------------------------------------------------------------------- */

/* 16 bytes: an IPv6 /64 (low 8 bytes zero) or an IPv4 address as ::ffff:a.b.c.d. */
struct ratelimit_key {
    uint8_t b[16];
};

/* A trusted-proxy network. */
struct ratelimit_cidr {
    uint8_t addr[16]; /* IPv4 as ::ffff:a.b.c.d, masked */
    unsigned bits;    /* prefix length over the 128-bit form (IPv4 /n is 96 + n) */
};
#define RATELIMIT_MAX_PROXIES 64
#define RATELIMIT_MAX_XFF_HOPS 32 /* X-Forwarded-For entries examined, right to left */

/* Parse "10.0.0.0/8, 192.168.1.7, fd00::/8" (comma or space separated; a bare address is a
 * /32 or /128; empty = none). Returns the number of networks, or -1 with why[] set. */
int ratelimit_cidrs_parse(const char *list, struct ratelimit_cidr *out, size_t max, char *why,
                          size_t whylen);

/* The client of a request: the peer address (text, as inet_ntop writes it), and when the peer
 * is in one of the n proxies, the X-Forwarded-For value (may be NULL) scanned right to left,
 * skipping trusted entries: the first untrusted one is the client. An entry that is not an
 * address stops the scan (the hop to its right, which put it there, is the client); so do more
 * than RATELIMIT_MAX_XFF_HOPS entries. Returns 0, or -1 when peer is not an address (the caller
 * then does not rate-limit). */
int ratelimit_client_key(const char *peer, const char *xff, const struct ratelimit_cidr *proxies,
                         size_t n, struct ratelimit_key *out);
/* The key as text ("203.0.113.9", "2001:db8:1:2::/64"), for logs and tests. */
void ratelimit_key_format(const struct ratelimit_key *k, char *out, size_t outlen);
/* A stable 64-bit tag of a key (never 0), e.g. for the pool's per-client fairness. */
uint64_t ratelimit_key_tag(const struct ratelimit_key *k);

/* ---- the client table -------------------------------------------------------------------- */

struct ratelimit;

struct ratelimit_params {
    uint64_t rate;    /* tokens per second, >= 1 */
    uint64_t burst;   /* tokens, >= 1 */
    unsigned clients; /* table capacity, >= 1 */
};

/* Allocates the whole table (about 44 bytes per client) and registers a metrics collector
 * (primed_ratelimit_*). Returns NULL with errno EINVAL or ENOMEM. */
struct ratelimit *ratelimit_create(const struct ratelimit_params *p);
/* Unregisters the collector and frees. Accepts NULL. */
void ratelimit_destroy(struct ratelimit *rl);

/* Charge `cost` tokens to key at now_ns; `label` (router_label_index) labels the
 * limited-requests counter. Creates
 * the client's bucket (full) when it is not in the table, evicting a cold one if needed. Returns
 * v->allowed. Any thread; takes one shard lock. */
bool ratelimit_take(struct ratelimit *rl, const struct ratelimit_key *key, uint64_t cost,
                    size_t label, uint64_t now_ns, struct ratelimit_verdict *v);
/* Give back tokens of an admitted request that ended early (no-op if the client was evicted
 * meanwhile). */
void ratelimit_refund(struct ratelimit *rl, const struct ratelimit_key *key, uint64_t tokens);
/* Charge tokens more to an admitted request's client (no-op if it was evicted meanwhile). */
void ratelimit_charge(struct ratelimit *rl, const struct ratelimit_key *key, uint64_t tokens);
/* Re-price an admitted request: give back `old_cost` and take `new_cost` under the rules of
 * ratelimit_take, in one step under the client's lock. When the new price is refused the bucket
 * is left as it was (the old price still taken). Returns v->allowed. */
bool ratelimit_retake(struct ratelimit *rl, const struct ratelimit_key *key, uint64_t old_cost,
                      uint64_t new_cost, size_t label, uint64_t now_ns,
                      struct ratelimit_verdict *v);
/* Forget every client whose bucket has refilled completely (it is then the same as a new
 * one). O(clients), one shard lock at a time; the metrics collector calls it at each scrape. */
void ratelimit_expire(struct ratelimit *rl, uint64_t now_ns);

struct ratelimit_stats {
    uint64_t clients;                    /* buckets in the table */
    uint64_t capacity;                   /* rate_limit_clients */
    uint64_t evictions;                  /* live buckets dropped to make room */
    uint64_t expirations;                /* full (idle) buckets forgotten */
    uint64_t table_bytes;                /* allocated at create, never changes */
    uint64_t limited[ROUTER_MAX_LABELS]; /* by route label index (router.h) */
};
void ratelimit_stats_get(struct ratelimit *rl, struct ratelimit_stats *out);

#endif
