/* ratelimit.c — see ratelimit.h.
 *
 * The table is `clients` entries allocated once, split into up to 64 shards by a seeded hash of
 * the key (the seed comes from getrandom, so a client cannot aim its addresses at one chain or
 * one shard). Each shard has its own mutex, an index of chained heads and a clock hand: a take
 * locks one shard for O(1) work, so lookups from the I/O threads do not serialize. When a shard
 * is full, the hand sweeps: a bucket that has refilled completely is forgotten at once (it is
 * indistinguishable from a new one), a recently used one loses its reference bit, the first
 * cold one is evicted. Memory never grows after create, whatever the number of addresses seen.
 * Rejected: a lock-free table (a take is ~50 ns under an uncontended shard lock, against a
 * request of several µs) and exact LRU (a list splice per take for no better admission).
 */
#include "primed/ratelimit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Inputs are clamped so that every millitoken × ns product fits in 64 bits: (2 × 1e9 tokens ×
 * 1000) × 1e6 < 2^64. config.c's ranges stay below. */
#define RL_MAX 1000000000ull
#define NS_PER_MT_NUM 1000000ull /* ns per millitoken = 1e6 / rate */

static uint64_t clamp(uint64_t x)
{
    return x < 1 ? 1 : x > RL_MAX ? RL_MAX : x;
}

/* ---- bucket arithmetic ---------------------------------------------------------------------- */

void ratelimit_bucket_init(struct ratelimit_bucket *b, uint64_t burst, uint64_t now_ns)
{
    b->level_mt = (int64_t)(clamp(burst) * RATELIMIT_MILLI);
    b->stamp_ns = now_ns;
}

static void refill(struct ratelimit_bucket *b, uint64_t now_ns, uint64_t rate, int64_t cap_mt)
{
    if (now_ns < b->stamp_ns) { /* clock went back: no credit, restart from now */
        b->stamp_ns = now_ns;
        return;
    }
    if (b->level_mt < cap_mt) {
        uint64_t missing = (uint64_t)(cap_mt - b->level_mt);
        uint64_t elapsed = now_ns - b->stamp_ns;
        /* The time to refill completely, compared first so elapsed × rate cannot overflow. */
        if (elapsed >= missing * NS_PER_MT_NUM / rate + 1)
            b->level_mt = cap_mt;
        else
            b->level_mt += (int64_t)(elapsed * rate / NS_PER_MT_NUM);
        if (b->level_mt > cap_mt) b->level_mt = cap_mt;
    }
    b->stamp_ns = now_ns;
}

/* Seconds (rounded up) until the bucket holds `want_mt`. */
static uint64_t seconds_until(const struct ratelimit_bucket *b, int64_t want_mt, uint64_t rate)
{
    if (b->level_mt >= want_mt) return 0;
    uint64_t missing = (uint64_t)(want_mt - b->level_mt);
    uint64_t per_s = rate * RATELIMIT_MILLI;
    return (missing + per_s - 1) / per_s;
}

uint64_t ratelimit_max_price(uint64_t rate, uint64_t burst)
{
    return clamp(burst) + clamp(rate) * RATELIMIT_MAX_DEBT_S;
}

bool ratelimit_bucket_take(struct ratelimit_bucket *b, uint64_t now_ns, uint64_t rate,
                           uint64_t burst, uint64_t cost, struct ratelimit_verdict *v)
{
    rate = clamp(rate);
    burst = clamp(burst);
    cost = clamp(cost);
    int64_t cap_mt = (int64_t)(burst * RATELIMIT_MILLI);
    int64_t cost_mt = (int64_t)(cost * RATELIMIT_MILLI);
    refill(b, now_ns, rate, cap_mt);
    /* Above the burst a request is admitted only from a full bucket and leaves a debt, of at
     * most RATELIMIT_MAX_DEBT_S seconds of refill. */
    v->never = cost > ratelimit_max_price(rate, burst);
    bool ok = !v->never && (cost_mt <= b->level_mt || (cost > burst && b->level_mt >= cap_mt));
    v->allowed = ok;
    v->retry_after_s = 0;
    if (ok)
        b->level_mt -= cost_mt;
    else {
        v->retry_after_s = seconds_until(b, cost > burst ? cap_mt : cost_mt, rate);
        if (v->retry_after_s == 0) v->retry_after_s = 1;
    }
    v->limit = burst;
    v->remaining = b->level_mt > 0 ? (uint64_t)b->level_mt / RATELIMIT_MILLI : 0;
    v->reset_s = seconds_until(b, cap_mt, rate);
    return ok;
}

void ratelimit_bucket_refund(struct ratelimit_bucket *b, uint64_t burst, uint64_t tokens)
{
    int64_t cap_mt = (int64_t)(clamp(burst) * RATELIMIT_MILLI);
    int64_t add = (int64_t)(clamp(tokens) * RATELIMIT_MILLI);
    if (tokens == 0) return;
    b->level_mt = b->level_mt > cap_mt - add ? cap_mt : b->level_mt + add;
}

void ratelimit_bucket_charge(struct ratelimit_bucket *b, uint64_t tokens)
{
    int64_t sub = (int64_t)(clamp(tokens) * RATELIMIT_MILLI);
    b->level_mt = b->level_mt < INT64_MIN / 2 + sub ? INT64_MIN / 2 : b->level_mt - sub;
}

/* ---- addresses ------------------------------------------------------------------------------ */

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* One address of s[0 … n): optional surrounding blanks, "a.b.c.d", "a.b.c.d:port", "v6",
 * "[v6]" or "[v6]:port". IPv4 (and IPv4-mapped IPv6) becomes ::ffff:a.b.c.d. */
static bool parse_addr(const char *s, size_t n, uint8_t out[16], bool *is_v4)
{
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    char buf[INET6_ADDRSTRLEN + 8];
    if (n == 0 || n >= sizeof buf) return false;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) return false;
        size_t rest = n - (size_t)(close - s) - 1;
        const char *p = close + 1;
        if (rest > 0 &&
            (p[0] != ':' || rest < 2 || rest > 6 || strspn(p + 1, "0123456789") < rest - 1))
            return false;
        n = (size_t)(close - s) - 1;
        s++;
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon && memchr(colon + 1, ':', n - (size_t)(colon - s) - 1) == NULL) {
            size_t plen = n - (size_t)(colon - s) - 1; /* exactly one colon: IPv4 with a port */
            if (plen == 0 || plen > 5 || strspn(colon + 1, "0123456789") < plen) return false;
            n = (size_t)(colon - s);
        }
    }
    if (n == 0 || n >= sizeof buf) return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    uint8_t a6[16];
    if (inet_pton(AF_INET, buf, a6 + 12) == 1) {
        memcpy(out, v4mapped, 12);
        memcpy(out + 12, a6 + 12, 4);
        *is_v4 = true;
        return true;
    }
    if (inet_pton(AF_INET6, buf, a6) != 1) return false;
    memcpy(out, a6, 16);
    *is_v4 = memcmp(a6, v4mapped, 12) == 0;
    return true;
}

static void mask(uint8_t a[16], unsigned bits)
{
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * i : 0;
        a[i] &= (uint8_t)(0xff00u >> keep);
    }
}

int ratelimit_cidrs_parse(const char *list, struct ratelimit_cidr *out, size_t max, char *why,
                          size_t whylen)
{
    size_t n = 0;
    const char *p = list ? list : "";
    for (;;) {
        p += strspn(p, ", \t");
        if (*p == '\0') break;
        size_t len = strcspn(p, ", \t");
        const char *slash = memchr(p, '/', len);
        size_t alen = slash ? (size_t)(slash - p) : len;
        struct ratelimit_cidr c;
        char buf[INET6_ADDRSTRLEN];
        bool v4 = memchr(p, ':', alen) == NULL; /* no ports here: a colon means IPv6 */
        uint8_t a6[16];
        if (alen == 0 || alen >= sizeof buf) goto bad_addr;
        memcpy(buf, p, alen);
        buf[alen] = '\0';
        if (v4 && inet_pton(AF_INET, buf, a6 + 12) == 1) {
            memcpy(c.addr, v4mapped, 12);
            memcpy(c.addr + 12, a6 + 12, 4);
        } else if (!v4 && inet_pton(AF_INET6, buf, a6) == 1) {
            memcpy(c.addr, a6, 16);
        } else {
            goto bad_addr;
        }
        unsigned width = v4 ? 32 : 128, bits = width;
        if (slash) {
            size_t blen = len - alen - 1;
            unsigned long b = 0;
            if (blen == 0 || blen > 3 || strspn(slash + 1, "0123456789") < blen) goto bad_bits;
            for (size_t i = 0; i < blen; i++)
                b = b * 10 + (unsigned long)(slash[1 + i] - '0');
            if (b > width) goto bad_bits;
            bits = (unsigned)b;
        }
        c.bits = v4 ? 96 + bits : bits;
        mask(c.addr, c.bits);
        if (n == max) {
            snprintf(why, whylen, "at most %zu networks", max);
            return -1;
        }
        out[n++] = c;
        p += len;
        continue;
    bad_bits:
        snprintf(why, whylen, "'%.*s': the prefix length must be 0-%u", (int)(len > 64 ? 64 : len),
                 p, width);
        return -1;
    bad_addr:
        snprintf(why, whylen, "'%.*s' is not an IPv4 or IPv6 address", (int)(alen > 64 ? 64 : alen),
                 p);
        return -1;
    }
    return (int)n;
}

static bool trusted(const uint8_t a[16], const struct ratelimit_cidr *proxies, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t m[16];
        memcpy(m, a, 16);
        mask(m, proxies[i].bits);
        if (memcmp(m, proxies[i].addr, 16) == 0) return true;
    }
    return false;
}

static void key_of(const uint8_t a[16], bool v4, struct ratelimit_key *out)
{
    memcpy(out->b, a, 16);
    if (!v4) memset(out->b + 8, 0, 8); /* an IPv6 client is its /64: one site, many addresses */
}

int ratelimit_client_key(const char *peer, const char *xff, const struct ratelimit_cidr *proxies,
                         size_t n, struct ratelimit_key *out)
{
    uint8_t a[16];
    bool v4;
    if (!peer || !parse_addr(peer, strlen(peer), a, &v4)) return -1;
    if (!xff || n == 0 || !trusted(a, proxies, n)) {
        key_of(a, v4, out);
        return 0;
    }
    /* Right to left: each trusted hop vouches for the entry to its left. */
    size_t end = strlen(xff);
    for (unsigned hop = 0; hop < RATELIMIT_MAX_XFF_HOPS && end > 0; hop++) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        uint8_t e[16];
        bool ev4;
        if (!parse_addr(xff + start, end - start, e, &ev4)) break; /* garbage: trust stops */
        memcpy(a, e, 16);
        v4 = ev4;
        if (!trusted(a, proxies, n)) break;
        if (start == 0) break;
        end = start - 1;
    }
    key_of(a, v4, out);
    return 0;
}

void ratelimit_key_format(const struct ratelimit_key *k, char *out, size_t outlen)
{
    char t[INET6_ADDRSTRLEN];
    if (memcmp(k->b, v4mapped, 12) == 0) {
        inet_ntop(AF_INET, k->b + 12, t, sizeof t);
        snprintf(out, outlen, "%s", t);
    } else {
        inet_ntop(AF_INET6, k->b, t, sizeof t);
        snprintf(out, outlen, "%s/64", t);
    }
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t key_hash(const struct ratelimit_key *k, uint64_t seed)
{
    uint64_t lo, hi;
    memcpy(&hi, k->b, 8);
    memcpy(&lo, k->b + 8, 8);
    return mix64(mix64(hi ^ seed) ^ lo ^ (seed >> 17 | seed << 47));
}

uint64_t ratelimit_key_tag(const struct ratelimit_key *k)
{
    uint64_t h = key_hash(k, 0x9e3779b97f4a7c15ull);
    return h ? h : 1;
}

/* ---- the table ------------------------------------------------------------------------------ */

#define NIL UINT32_MAX

struct entry {
    struct ratelimit_key key;
    struct ratelimit_bucket bucket;
    uint32_t next; /* chain in the shard index, or free list */
    bool used;
    bool ref; /* taken since the clock hand last passed */
};

struct shard {
    pthread_mutex_t mu;
    struct entry *e; /* [cap], inside the one allocation */
    uint32_t *heads; /* [nheads] */
    uint32_t cap, nheads, used, hand, free;
    uint64_t evictions, expirations;
} __attribute__((aligned(64)));

struct ratelimit {
    uint64_t rate, burst;
    uint64_t seed;
    unsigned nshards, shard_bits;
    uint64_t capacity, bytes;
    struct shard *shards;
    void *mem;                                       /* entries and heads of every shard */
    atomic_uint_fast64_t limited[ROUTER_MAX_LABELS]; /* relaxed: counters */
};

static struct shard *shard_of(struct ratelimit *rl, uint64_t h)
{
    return &rl->shards[rl->nshards == 1 ? 0 : h >> (64 - rl->shard_bits)];
}

/* A bucket that has refilled to the burst carries no information: forget it. */
static bool is_idle(const struct ratelimit *rl, const struct entry *e, uint64_t now_ns)
{
    struct ratelimit_bucket b = e->bucket;
    refill(&b, now_ns, rl->rate, (int64_t)(rl->burst * RATELIMIT_MILLI));
    return b.level_mt >= (int64_t)(rl->burst * RATELIMIT_MILLI);
}

static void unlink_entry(struct ratelimit *rl, struct shard *s, uint32_t i)
{
    uint32_t *pp = &s->heads[key_hash(&s->e[i].key, rl->seed) & (s->nheads - 1)];
    while (*pp != i)
        pp = &s->e[*pp].next;
    *pp = s->e[i].next;
    s->e[i].used = false;
    s->e[i].next = s->free;
    s->free = i;
    s->used--;
}

static uint32_t find(struct ratelimit *rl, struct shard *s, const struct ratelimit_key *k,
                     uint64_t h)
{
    for (uint32_t i = s->heads[h & (s->nheads - 1)]; i != NIL; i = s->e[i].next)
        if (memcmp(s->e[i].key.b, k->b, 16) == 0) return i;
    return NIL;
}

/* A free slot, freeing one by the clock when the shard is full. Under s->mu. */
static uint32_t make_room(struct ratelimit *rl, struct shard *s, uint64_t now_ns)
{
    if (s->free == NIL) {
        /* Two turns at most: the first clears every reference bit. */
        for (uint32_t step = 0; step < 2 * s->cap; step++) {
            uint32_t i = s->hand;
            s->hand = s->hand + 1 == s->cap ? 0 : s->hand + 1;
            struct entry *e = &s->e[i];
            if (is_idle(rl, e, now_ns)) {
                s->expirations++;
                unlink_entry(rl, s, i);
                break;
            }
            if (e->ref) {
                e->ref = false;
                continue;
            }
            s->evictions++;
            unlink_entry(rl, s, i);
            break;
        }
    }
    uint32_t i = s->free;
    s->free = s->e[i].next;
    return i;
}

/* The entry of key in its shard (s->mu held), created with a full bucket when absent. */
static uint32_t find_or_add(struct ratelimit *rl, struct shard *s, const struct ratelimit_key *key,
                            uint64_t h, uint64_t now_ns)
{
    uint32_t i = find(rl, s, key, h);
    if (i == NIL) {
        i = make_room(rl, s, now_ns);
        struct entry *e = &s->e[i];
        e->key = *key;
        ratelimit_bucket_init(&e->bucket, rl->burst, now_ns);
        e->used = true;
        uint32_t *head = &s->heads[h & (s->nheads - 1)];
        e->next = *head;
        *head = i;
        s->used++;
    }
    s->e[i].ref = true;
    return i;
}

static void count_limited(struct ratelimit *rl, size_t label)
{
    atomic_fetch_add_explicit(
        &rl->limited[label < ROUTER_MAX_LABELS ? label : router_label_index(NULL)], 1,
        memory_order_relaxed);
}

bool ratelimit_take(struct ratelimit *rl, const struct ratelimit_key *key, uint64_t cost,
                    size_t label, uint64_t now_ns, struct ratelimit_verdict *v)
{
    uint64_t h = key_hash(key, rl->seed);
    struct shard *s = shard_of(rl, h);
    pthread_mutex_lock(&s->mu);
    uint32_t i = find_or_add(rl, s, key, h, now_ns);
    bool ok = ratelimit_bucket_take(&s->e[i].bucket, now_ns, rl->rate, rl->burst, cost, v);
    pthread_mutex_unlock(&s->mu);
    if (!ok) count_limited(rl, label);
    return ok;
}

bool ratelimit_retake(struct ratelimit *rl, const struct ratelimit_key *key, uint64_t old_cost,
                      uint64_t new_cost, size_t label, uint64_t now_ns, struct ratelimit_verdict *v)
{
    uint64_t h = key_hash(key, rl->seed);
    struct shard *s = shard_of(rl, h);
    pthread_mutex_lock(&s->mu);
    uint32_t i = find_or_add(rl, s, key, h, now_ns);
    struct ratelimit_bucket *b = &s->e[i].bucket;
    ratelimit_bucket_refund(b, rl->burst, old_cost);
    bool ok = ratelimit_bucket_take(b, now_ns, rl->rate, rl->burst, new_cost, v);
    if (!ok) ratelimit_bucket_charge(b, old_cost);
    pthread_mutex_unlock(&s->mu);
    if (!ok) count_limited(rl, label);
    return ok;
}

void ratelimit_refund(struct ratelimit *rl, const struct ratelimit_key *key, uint64_t tokens)
{
    if (tokens == 0) return;
    uint64_t h = key_hash(key, rl->seed);
    struct shard *s = shard_of(rl, h);
    pthread_mutex_lock(&s->mu);
    uint32_t i = find(rl, s, key, h);
    if (i != NIL) ratelimit_bucket_refund(&s->e[i].bucket, rl->burst, tokens);
    pthread_mutex_unlock(&s->mu);
}

void ratelimit_charge(struct ratelimit *rl, const struct ratelimit_key *key, uint64_t tokens)
{
    if (tokens == 0) return;
    uint64_t h = key_hash(key, rl->seed);
    struct shard *s = shard_of(rl, h);
    pthread_mutex_lock(&s->mu);
    uint32_t i = find(rl, s, key, h);
    if (i != NIL) ratelimit_bucket_charge(&s->e[i].bucket, tokens);
    pthread_mutex_unlock(&s->mu);
}

void ratelimit_expire(struct ratelimit *rl, uint64_t now_ns)
{
    for (unsigned k = 0; k < rl->nshards; k++) {
        struct shard *s = &rl->shards[k];
        pthread_mutex_lock(&s->mu);
        for (uint32_t i = 0; i < s->cap && s->used > 0; i++)
            if (s->e[i].used && is_idle(rl, &s->e[i], now_ns)) {
                s->expirations++;
                unlink_entry(rl, s, i);
            }
        pthread_mutex_unlock(&s->mu);
    }
}

void ratelimit_stats_get(struct ratelimit *rl, struct ratelimit_stats *out)
{
    memset(out, 0, sizeof *out);
    out->capacity = rl->capacity;
    out->table_bytes = rl->bytes;
    for (unsigned k = 0; k < rl->nshards; k++) {
        struct shard *s = &rl->shards[k];
        pthread_mutex_lock(&s->mu);
        out->clients += s->used;
        out->evictions += s->evictions;
        out->expirations += s->expirations;
        pthread_mutex_unlock(&s->mu);
    }
    for (int r = 0; r < ROUTER_MAX_LABELS; r++)
        out->limited[r] = atomic_load_explicit(&rl->limited[r], memory_order_relaxed);
}

/* ---- metrics -------------------------------------------------------------------------------- */

static void collect(void *arg, struct metrics_writer *w)
{
    struct ratelimit *rl = arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ratelimit_expire(rl, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    struct ratelimit_stats st;
    ratelimit_stats_get(rl, &st);
    metrics_write_one(w, "primed_ratelimit_clients", "gauge",
                      "Clients with a token bucket in the rate-limit table.", st.clients);
    metrics_write_one(w, "primed_ratelimit_clients_capacity", "gauge",
                      "Size of the rate-limit table (rate_limit_clients).", st.capacity);
    metrics_write_one(
        w, "primed_ratelimit_evictions_total", "counter",
        "Clients dropped from the full rate-limit table before their bucket refilled.",
        st.evictions);
    metrics_write_one(w, "primed_ratelimit_expirations_total", "counter",
                      "Idle clients (bucket full again) forgotten by the rate-limit table.",
                      st.expirations);
    metrics_write_one(w, "primed_ratelimit_table_bytes", "gauge",
                      "Memory of the rate-limit table, allocated once at start.", st.table_bytes);
    metrics_write_family(w, "primed_ratelimit_limited_total", "counter",
                         "Requests refused with 429 rate_limited, by handler.");
    bool written[ROUTER_MAX_LABELS] = {false};
    for (size_t i = 0; i < router_count(); i++) { /* the API rows: the only limited ones */
        const struct route *rt = router_route(i);
        size_t l = router_label_index(rt);
        if (rt->kind != ROUTE_K_API || written[l]) continue;
        written[l] = true;
        char labels[64];
        snprintf(labels, sizeof labels, "handler=\"%s\"", router_label_name(l));
        metrics_write_sample_u64(w, "primed_ratelimit_limited_total", labels, st.limited[l]);
    }
}

static unsigned pow2_at_least(unsigned x)
{
    unsigned p = 1;
    while (p < x)
        p <<= 1;
    return p;
}

struct ratelimit *ratelimit_create(const struct ratelimit_params *p)
{
    if (!p || p->rate == 0 || p->burst == 0 || p->clients == 0) {
        errno = EINVAL;
        return NULL;
    }
    struct ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl) return NULL;
    rl->rate = clamp(p->rate);
    rl->burst = clamp(p->burst);
    rl->capacity = p->clients;
    for (int r = 0; r < ROUTER_MAX_LABELS; r++)
        atomic_init(&rl->limited[r], 0);
    if (getrandom(&rl->seed, sizeof rl->seed, GRND_NONBLOCK) != sizeof rl->seed)
        rl->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uintptr_t)rl;
    /* Up to 64 shards, each of at least 64 clients. */
    rl->nshards = 1;
    rl->shard_bits = 0;
    while (rl->nshards < 64 && p->clients / (rl->nshards * 2) >= 64) {
        rl->nshards *= 2;
        rl->shard_bits++;
    }
    rl->shards = aligned_alloc(64, sizeof(struct shard) * rl->nshards);
    if (!rl->shards) goto err;
    uint32_t per = (uint32_t)((p->clients + rl->nshards - 1) / rl->nshards);
    uint32_t nheads = pow2_at_least(per);
    size_t per_bytes = (size_t)per * sizeof(struct entry) + (size_t)nheads * sizeof(uint32_t);
    rl->mem = malloc(per_bytes * rl->nshards);
    if (!rl->mem) goto err_shards;
    rl->bytes = per_bytes * rl->nshards + sizeof(struct shard) * rl->nshards + sizeof *rl;
    for (unsigned k = 0; k < rl->nshards; k++) {
        struct shard *s = &rl->shards[k];
        memset(s, 0, sizeof *s);
        char *base = (char *)rl->mem + per_bytes * k;
        s->e = (struct entry *)(void *)base;
        s->heads = (uint32_t *)(void *)(base + (size_t)per * sizeof(struct entry));
        s->cap = per;
        s->nheads = nheads;
        for (uint32_t i = 0; i < nheads; i++)
            s->heads[i] = NIL;
        for (uint32_t i = 0; i < per; i++) {
            memset(&s->e[i], 0, sizeof s->e[i]);
            s->e[i].next = i + 1 < per ? i + 1 : NIL;
        }
        s->free = 0;
        pthread_mutex_init(&s->mu, NULL);
    }
    if (metrics_register_collector(collect, rl) != 0) goto err_mem;
    return rl;

err_mem:
    for (unsigned k = 0; k < rl->nshards; k++)
        pthread_mutex_destroy(&rl->shards[k].mu);
    free(rl->mem);
err_shards:
    free(rl->shards);
err:
    free(rl);
    errno = ENOMEM;
    return NULL;
}

void ratelimit_destroy(struct ratelimit *rl)
{
    if (!rl) return;
    metrics_unregister_collector(collect, rl);
    for (unsigned k = 0; k < rl->nshards; k++)
        pthread_mutex_destroy(&rl->shards[k].mu);
    free(rl->mem);
    free(rl->shards);
    free(rl);
}
