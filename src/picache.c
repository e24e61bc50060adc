/* picache.c — see picache.h. Per shard: a slot array of entries (x, π, LRU links), compact (slots
 * 0 … n−1 are in use: an entry only ever leaves by giving its slot to the one that evicts it), and
 * an index of slot numbers sorted by x. Both grow together by doubling up to the shard's share of
 * the bound. A lookup is a binary search of the index; an insert into a full shard takes the
 * least recently used slot, moves its index entry out and the new one in (one memmove each, at
 * most 4 bytes × the shard's entries: ~9 KiB at the default 1 MiB).
 */
#include "primed/picache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "primed/metrics.h"
#include "primed/reqmem.h"

#define MAX_SHARDS 16
#define MIN_SHARD_ENTRIES 64u
#define FIRST_ALLOC 64u
#define NIL UINT32_MAX

struct pce {
    uint64_t x, pi;
    uint32_t prev, next; /* LRU: prev towards the most recent (head), next towards the tail */
};
_Static_assert(sizeof(struct pce) + sizeof(uint32_t) == PICACHE_ENTRY_BYTES,
               "PICACHE_ENTRY_BYTES is the bytes of one entry");

struct shard {
    pthread_mutex_t mu;
    /* Under mu. */
    struct pce *e;  /* [alloc]; slots 0 … n−1 in use */
    uint32_t *ord;  /* [alloc]; ord[0 … n−1]: slots in increasing x */
    uint32_t n;     /* entries */
    uint32_t alloc; /* slots allocated (alloc ≤ cap) */
    uint32_t cap;   /* this shard's share of the bound, in entries (set at create) */
    uint32_t head;  /* most recently used, NIL when empty */
    uint32_t tail;  /* least recently used */
    uint64_t hits, misses, evictions;
    struct reqmem *mem; /* the arrays are charged here as they grow (set at create) */
} __attribute__((aligned(64)));

struct picache {
    struct shard *sh; /* [nshards] */
    unsigned nshards;
    unsigned bits; /* nshards = 1 << bits */
    uint64_t bound;
    uint64_t fixed; /* bytes of this struct and the shard table */
    struct reqmem *mem;
};

/* Fibonacci hashing: the top bits of x·2^64/φ, so that consecutive x (a walking client) spread
 * over every shard. */
static struct shard *shard_of(struct picache *c, uint64_t x)
{
    if (c->bits == 0) return &c->sh[0];
    return &c->sh[(x * 0x9e3779b97f4a7c15ull) >> (64 - c->bits)];
}

static uint64_t fixed_bytes(unsigned nshards)
{
    return sizeof(struct picache) + (uint64_t)nshards * sizeof(struct shard);
}

int picache_create(uint64_t bytes, struct reqmem *mem, struct picache **out)
{
    *out = NULL;
    if (bytes == 0) return 0;
    if (bytes < PICACHE_BYTES_MIN) return -EINVAL;
    unsigned bits = 0;
    while ((1u << (bits + 1)) <= MAX_SHARDS &&
           fixed_bytes(1u << (bits + 1)) +
                   (uint64_t)(1u << (bits + 1)) * MIN_SHARD_ENTRIES * PICACHE_ENTRY_BYTES <=
               bytes)
        bits++;
    unsigned n = 1u << bits;
    uint64_t fixed = fixed_bytes(n);
    if (fixed + (uint64_t)MIN_SHARD_ENTRIES * PICACHE_ENTRY_BYTES > bytes) return -EINVAL;
    uint64_t per = (bytes - fixed) / n / PICACHE_ENTRY_BYTES;
    if (per > UINT32_MAX - 1) per = UINT32_MAX - 1;
    struct picache *c = calloc(1, sizeof *c);
    struct shard *sh = aligned_alloc(64, n * sizeof *sh);
    if (!c || !sh) {
        free(c);
        free(sh);
        return -ENOMEM;
    }
    memset(sh, 0, n * sizeof *sh);
    for (unsigned i = 0; i < n; i++) {
        pthread_mutex_init(&sh[i].mu, NULL);
        sh[i].cap = (uint32_t)per;
        sh[i].head = sh[i].tail = NIL;
        sh[i].mem = mem;
    }
    *c = (struct picache){
        .sh = sh, .nshards = n, .bits = bits, .bound = bytes, .fixed = fixed, .mem = mem};
    *out = c;
    return 0;
}

void picache_destroy(struct picache *c)
{
    if (!c) return;
    for (unsigned i = 0; i < c->nshards; i++) {
        pthread_mutex_destroy(&c->sh[i].mu);
        free(c->sh[i].e);
        free(c->sh[i].ord);
        reqmem_release(c->mem, (uint64_t)c->sh[i].alloc * PICACHE_ENTRY_BYTES);
    }
    free(c->sh);
    free(c);
}

/* ---- one shard (mu held) --------------------------------------------------------------------- */

/* The first index position whose x is >= x (n when none). */
static uint32_t lower_bound_x(const struct shard *s, uint64_t x)
{
    uint32_t lo = 0, hi = s->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->e[s->ord[mid]].x < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The first index position whose π is >= k (π is non-decreasing along the index). */
static uint32_t lower_bound_pi(const struct shard *s, uint64_t k)
{
    uint32_t lo = 0, hi = s->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->e[s->ord[mid]].pi < k)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void lru_unlink(struct shard *s, uint32_t i)
{
    struct pce *e = &s->e[i];
    if (e->prev != NIL)
        s->e[e->prev].next = e->next;
    else
        s->head = e->next;
    if (e->next != NIL)
        s->e[e->next].prev = e->prev;
    else
        s->tail = e->prev;
    e->prev = e->next = NIL;
}

static void lru_push_front(struct shard *s, uint32_t i)
{
    struct pce *e = &s->e[i];
    e->prev = NIL;
    e->next = s->head;
    if (s->head != NIL) s->e[s->head].prev = i;
    s->head = i;
    if (s->tail == NIL) s->tail = i;
}

static void lru_touch(struct shard *s, uint32_t i)
{
    if (s->head == i) return;
    lru_unlink(s, i);
    lru_push_front(s, i);
}

/* Double the arrays (at most to cap), charging the growth first. False when at cap, when the
 * budget cannot hold the growth or out of memory (nothing changed: the shard evicts instead). */
static bool shard_grow(struct shard *s)
{
    if (s->alloc >= s->cap) return false;
    uint32_t want = s->alloc ? (s->alloc > s->cap / 2 ? s->cap : s->alloc * 2) : FIRST_ALLOC;
    if (want > s->cap) want = s->cap;
    uint64_t more = (uint64_t)(want - s->alloc) * PICACHE_ENTRY_BYTES;
    if (!reqmem_try_charge(s->mem, more)) return false;
    struct pce *e = malloc((size_t)want * sizeof *e);
    uint32_t *ord = malloc((size_t)want * sizeof *ord);
    if (!e || !ord) {
        free(e);
        free(ord);
        reqmem_release(s->mem, more);
        return false;
    }
    if (s->n) {
        memcpy(e, s->e, (size_t)s->n * sizeof *e);
        memcpy(ord, s->ord, (size_t)s->n * sizeof *ord);
    }
    free(s->e);
    free(s->ord);
    s->e = e;
    s->ord = ord;
    s->alloc = want;
    return true;
}

/* ---- lookups and inserts --------------------------------------------------------------------- */

bool picache_get(struct picache *c, uint64_t x, uint64_t *pi)
{
    if (!c) return false;
    struct shard *s = shard_of(c, x);
    pthread_mutex_lock(&s->mu);
    uint32_t i = lower_bound_x(s, x);
    bool hit = i < s->n && s->e[s->ord[i]].x == x;
    if (hit) {
        uint32_t slot = s->ord[i];
        *pi = s->e[slot].pi;
        lru_touch(s, slot);
        s->hits++;
    } else {
        s->misses++;
    }
    pthread_mutex_unlock(&s->mu);
    return hit;
}

bool picache_peek(struct picache *c, uint64_t x, uint64_t *pi)
{
    if (!c) return false;
    struct shard *s = shard_of(c, x);
    pthread_mutex_lock(&s->mu);
    uint32_t i = lower_bound_x(s, x);
    bool hit = i < s->n && s->e[s->ord[i]].x == x;
    if (hit) *pi = s->e[s->ord[i]].pi;
    pthread_mutex_unlock(&s->mu);
    return hit;
}

void picache_put(struct picache *c, uint64_t x, uint64_t pi)
{
    if (!c) return;
    struct shard *s = shard_of(c, x);
    pthread_mutex_lock(&s->mu);
    uint32_t i = lower_bound_x(s, x);
    if (i < s->n && s->e[s->ord[i]].x == x) { /* known: refresh */
        uint32_t slot = s->ord[i];
        s->e[slot].pi = pi;
        lru_touch(s, slot);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    if (s->n == s->alloc) shard_grow(s);
    uint32_t slot;
    if (s->n < s->alloc) {
        slot = s->n;
    } else if (s->n > 0) { /* full: the least recently used slot goes to x */
        slot = s->tail;
        uint32_t j = lower_bound_x(s, s->e[slot].x);
        memmove(&s->ord[j], &s->ord[j + 1], (size_t)(s->n - j - 1) * sizeof *s->ord);
        if (j < i) i--;
        lru_unlink(s, slot);
        s->n--;
        s->evictions++;
    } else { /* no room at all (no memory for the first arrays) */
        pthread_mutex_unlock(&s->mu);
        return;
    }
    memmove(&s->ord[i + 1], &s->ord[i], (size_t)(s->n - i) * sizeof *s->ord);
    s->ord[i] = slot;
    s->e[slot].x = x;
    s->e[slot].pi = pi;
    lru_push_front(s, slot);
    s->n++;
    pthread_mutex_unlock(&s->mu);
}

static void take_below(struct picache_point *best, const struct pce *e)
{
    if (!best->ok || e->pi > best->pi || (e->pi == best->pi && e->x > best->x))
        *best = (struct picache_point){.ok = true, .x = e->x, .pi = e->pi};
}

static void take_above(struct picache_point *best, const struct pce *e)
{
    if (!best->ok || e->pi < best->pi || (e->pi == best->pi && e->x < best->x))
        *best = (struct picache_point){.ok = true, .x = e->x, .pi = e->pi};
}

void picache_near_x(struct picache *c, uint64_t x, struct picache_point *below,
                    struct picache_point *above)
{
    *below = *above = (struct picache_point){0};
    if (!c) return;
    for (unsigned k = 0; k < c->nshards; k++) {
        struct shard *s = &c->sh[k];
        pthread_mutex_lock(&s->mu);
        uint32_t i = lower_bound_x(s, x);
        if (i > 0) { /* x0 < x; among shards the largest x0 (so also the largest π) */
            const struct pce *e = &s->e[s->ord[i - 1]];
            if (!below->ok || e->x > below->x)
                *below = (struct picache_point){.ok = true, .x = e->x, .pi = e->pi};
        }
        if (i < s->n && s->e[s->ord[i]].x == x) i++;
        if (i < s->n) {
            const struct pce *e = &s->e[s->ord[i]];
            if (!above->ok || e->x < above->x)
                *above = (struct picache_point){.ok = true, .x = e->x, .pi = e->pi};
        }
        pthread_mutex_unlock(&s->mu);
    }
}

void picache_near_pi(struct picache *c, uint64_t k, struct picache_point *below,
                     struct picache_point *above)
{
    *below = *above = (struct picache_point){0};
    if (!c) return;
    for (unsigned n = 0; n < c->nshards; n++) {
        struct shard *s = &c->sh[n];
        pthread_mutex_lock(&s->mu);
        uint32_t i = lower_bound_pi(s, k);
        if (i > 0) take_below(below, &s->e[s->ord[i - 1]]);
        if (i < s->n) take_above(above, &s->e[s->ord[i]]);
        pthread_mutex_unlock(&s->mu);
    }
}

/* ---- numbers --------------------------------------------------------------------------------- */

void picache_stats_get(struct picache *c, struct picache_stats *out)
{
    *out = (struct picache_stats){0};
    if (!c) return;
    out->bound = c->bound;
    out->bytes = c->fixed;
    out->shards = c->nshards;
    for (unsigned k = 0; k < c->nshards; k++) {
        struct shard *s = &c->sh[k];
        pthread_mutex_lock(&s->mu);
        out->hits += s->hits;
        out->misses += s->misses;
        out->evictions += s->evictions;
        out->entries += s->n;
        out->capacity += s->cap;
        out->bytes += (uint64_t)s->alloc * PICACHE_ENTRY_BYTES;
        pthread_mutex_unlock(&s->mu);
    }
}

void picache_collect(void *arg, struct metrics_writer *w)
{
    struct picache_stats st;
    picache_stats_get(arg, &st);
    metrics_write_one(w, "primed_pi_cache_hits_total", "counter",
                      "pi(x) lookups answered from the pi cache.", st.hits);
    metrics_write_one(w, "primed_pi_cache_misses_total", "counter",
                      "pi(x) lookups not in the pi cache (then reused from a neighbour, joined to "
                      "a computation in flight, or computed).",
                      st.misses);
    metrics_write_one(w, "primed_pi_cache_evictions_total", "counter",
                      "pi cache entries dropped (least recently used) to make room.", st.evictions);
    metrics_write_one(w, "primed_pi_cache_entries", "gauge", "Values in the pi cache.", st.entries);
    metrics_write_one(w, "primed_pi_cache_bytes", "gauge",
                      "Bytes the pi cache holds (never above pi_cache_bytes).", st.bytes);
    metrics_write_one(w, "primed_pi_cache_bound_bytes", "gauge",
                      "The pi cache's bound, pi_cache_bytes (0 = off); charged to the request "
                      "memory budget.",
                      st.bound);
}
