/* jobq.c — per-client FIFOs served round-robin under a per-client cap (see jobq.h).
 *
 * Each client with an accepted job has a record: its FIFO, how many workers are busy for it, and
 * how many of its jobs are not done. A record is in exactly one state: IDLE (nothing queued),
 * READY (jobs queued, under its cap: on the ring) or BLOCKED (jobs queued, at its cap: off the
 * ring, counted in nblocked). Every change of `queued` or `busy` goes through update(), which
 * moves the record between states, so the ring holds exactly the clients a worker may serve and
 * a pop takes the ring's head job in O(1), however deep any client's backlog.
 *
 * Rejected: one FIFO scanned for the first job under its client's cap. That is O(queue) per pop
 * (the fixed 64-deep scan it replaced left a worker idle behind 64 jobs of one capped client);
 * per-client FIFOs make the scan O(clients), and the ring with READY/BLOCKED states O(1). Taking
 * the globally oldest eligible job instead of round-robin would need each client's head ordered
 * by age (a heap: O(log clients)); round-robin is what fairness asks for anyway. The one cost:
 * with a cap, submission order across clients is no longer kept (it still is with no cap).
 */
#include "jobq.h"

#include "primed/assert.h"

#include <errno.h>
#include <stdlib.h>

enum { JQ_IDLE, JQ_READY, JQ_BLOCKED };

struct jobq_client {
    uint64_t id;                       /* job->client; 0 for the anonymous record */
    struct pool_job *head, *tail;      /* its queued jobs, oldest first */
    unsigned queued;                   /* length of head…tail */
    unsigned busy;                     /* workers running its jobs or chunks (jobq_busy) */
    unsigned jobs;                     /* accepted and not released: the record lives while > 0 */
    int state;                         /* JQ_*, as update() last computed it */
    struct jobq_client *hnext;         /* hash chain */
    struct jobq_client *rprev, *rnext; /* the ring, while READY */
    struct jobq_client *aprev, *anext; /* every record (take_expired, cancel_all) */
};

struct jobq {
    struct jobq_client **ht; /* [1 << hbits] chains of named clients */
    unsigned hbits;
    /* Client 0 (untagged jobs) and, with no cap, every job: never capped, never freed. */
    struct jobq_client anon;
    struct jobq_client *ready; /* ring head: the client served next; NULL when none is READY */
    struct jobq_client *all;   /* list of every record, anon first */
    unsigned len;              /* queued jobs, all clients */
    unsigned cap;              /* 0 = none */
    unsigned nblocked;         /* records in JQ_BLOCKED */
    uint64_t skips;
};

struct jobq *jobq_create(unsigned clients_hint)
{
    struct jobq *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    /* ≥ the hint, within [16, 65536] chains: 512 KiB of table at most, however large the queue
     * bound; past that, chains grow (lookup is only on push). */
    q->hbits = 4;
    while (q->hbits < 16 && (1u << q->hbits) < clients_hint)
        q->hbits++;
    q->ht = calloc((size_t)1 << q->hbits, sizeof *q->ht);
    if (!q->ht) {
        free(q);
        errno = ENOMEM;
        return NULL;
    }
    q->all = &q->anon;
    return q;
}

void jobq_destroy(struct jobq *q)
{
    if (!q) return;
    struct jobq_client *c = q->all;
    while (c) {
        struct jobq_client *next = c->anext;
        if (c != &q->anon) free(c);
        c = next;
    }
    free(q->ht);
    free(q);
}

void jobq_set_cap(struct jobq *q, unsigned cap)
{
    q->cap = cap;
}

bool jobq_at_cap(const struct jobq *q, const struct jobq_client *qc)
{
    return qc && q->cap != 0 && qc != &q->anon && qc->busy >= q->cap;
}

static void ring_insert(struct jobq *q, struct jobq_client *c)
{
    if (!q->ready) {
        c->rprev = c->rnext = c;
        q->ready = c;
        return;
    }
    /* Last in turn: just before the head. */
    c->rnext = q->ready;
    c->rprev = q->ready->rprev;
    c->rprev->rnext = c;
    q->ready->rprev = c;
}

static void ring_remove(struct jobq *q, struct jobq_client *c)
{
    if (c->rnext == c) {
        q->ready = NULL;
    } else {
        c->rprev->rnext = c->rnext;
        c->rnext->rprev = c->rprev;
        if (q->ready == c) q->ready = c->rnext;
    }
    c->rprev = c->rnext = NULL;
}

/* Recompute c's state after its queued or busy count changed. Returns true when it became READY
 * (it has a job a worker may take that it did not have before). */
static bool update(struct jobq *q, struct jobq_client *c)
{
    int s = c->queued == 0 ? JQ_IDLE : jobq_at_cap(q, c) ? JQ_BLOCKED : JQ_READY;
    if (s == c->state) return false;
    if (c->state == JQ_READY) ring_remove(q, c);
    if (c->state == JQ_BLOCKED) q->nblocked--;
    if (s == JQ_READY) ring_insert(q, c);
    if (s == JQ_BLOCKED) q->nblocked++;
    c->state = s;
    return s == JQ_READY;
}

static unsigned slot(const struct jobq *q, uint64_t id)
{
    return (unsigned)((id * 0x9E3779B97F4A7C15ull) >> (64 - q->hbits));
}

/* The record of job's client, created on first use (NULL: out of memory). */
static struct jobq_client *client_of(struct jobq *q, const struct pool_job *job)
{
    if (q->cap == 0 || job->client == 0) return &q->anon;
    struct jobq_client **chain = &q->ht[slot(q, job->client)];
    for (struct jobq_client *c = *chain; c; c = c->hnext)
        if (c->id == job->client) return c;
    struct jobq_client *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->id = job->client;
    c->hnext = *chain;
    *chain = c;
    /* After anon, which stays first. */
    c->aprev = &q->anon;
    c->anext = q->anon.anext;
    if (c->anext) c->anext->aprev = c;
    q->anon.anext = c;
    return c;
}

int jobq_push(struct jobq *q, struct pool_job *job)
{
    struct jobq_client *c = client_of(q, job);
    if (!c) return -ENOMEM;
    job->qc = c;
    job->next = NULL;
    if (c->tail)
        c->tail->next = job;
    else
        c->head = job;
    c->tail = job;
    c->queued++;
    c->jobs++;
    q->len++;
    update(q, c);
    return c->state == JQ_READY;
}

struct pool_job *jobq_pop(struct jobq *q)
{
    struct jobq_client *c = q->ready;
    if (!c) return NULL;
    /* The ring holds exactly the READY clients: jobs queued and under the cap. */
    PRIMED_ASSERT(c->state == JQ_READY && c->queued > 0 && !jobq_at_cap(q, c));
    struct pool_job *j = c->head;
    c->head = j->next;
    if (!c->head) c->tail = NULL;
    j->next = NULL;
    c->queued--;
    q->len--;
    q->skips += q->nblocked;
    q->ready = c->rnext; /* its turn is over (itself again when it is alone) */
    update(q, c);
    return j;
}

bool jobq_busy(struct jobq *q, struct jobq_client *qc, int delta)
{
    if (!qc) return false;
    /* Every -1 pairs with an earlier +1 of the same client (run_job, chunk helpers). */
    PRIMED_ASSERT(delta == 1 || (delta == -1 && qc->busy > 0));
    qc->busy = delta > 0 ? qc->busy + 1 : qc->busy - 1;
    return update(q, qc);
}

void jobq_release(struct jobq *q, struct pool_job *job)
{
    struct jobq_client *c = job->qc;
    job->qc = NULL;
    if (--c->jobs > 0 || c == &q->anon) return;
    /* No job of the client is queued, running or parked: IDLE, busy 0, off the ring. */
    PRIMED_ASSERT(c->queued == 0 && c->busy == 0 && c->state == JQ_IDLE);
    struct jobq_client **pp = &q->ht[slot(q, c->id)];
    while (*pp != c)
        pp = &(*pp)->hnext;
    *pp = c->hnext;
    c->aprev->anext = c->anext;
    if (c->anext) c->anext->aprev = c->aprev;
    free(c);
}

/* Unlink the queued jobs whose deadline is at or before now (every one with `all`). */
static struct pool_job *take(struct jobq *q, uint64_t now, bool all, uint64_t *next_ns)
{
    struct pool_job *expired = NULL;
    for (struct jobq_client *c = q->all; c; c = c->anext) {
        struct pool_job **pp = &c->head, *prev = NULL;
        bool removed = false;
        while (*pp) {
            struct pool_job *j = *pp;
            if (all || (j->deadline_ns && j->deadline_ns <= now)) {
                *pp = j->next;
                if (c->tail == j) c->tail = prev;
                c->queued--;
                q->len--;
                j->next = expired;
                expired = j;
                removed = true;
                continue;
            }
            if (j->deadline_ns && j->deadline_ns < *next_ns) *next_ns = j->deadline_ns;
            prev = j;
            pp = &j->next;
        }
        if (removed) update(q, c); /* fewer queued never makes it READY */
    }
    return expired;
}

struct pool_job *jobq_take_expired(struct jobq *q, uint64_t now, uint64_t *next_ns)
{
    return take(q, now, false, next_ns);
}

struct pool_job *jobq_take_all(struct jobq *q)
{
    uint64_t next = UINT64_MAX;
    struct pool_job *list = take(q, 0, true, &next), *rev = NULL;
    while (list) { /* take() builds the list newest first: give it back in queue order */
        struct pool_job *j = list;
        list = j->next;
        j->next = rev;
        rev = j;
    }
    return rev;
}

void jobq_cancel_all(struct jobq *q, enum pool_cancel reason)
{
    for (struct jobq_client *c = q->all; c; c = c->anext)
        for (struct pool_job *j = c->head; j; j = j->next)
            pool_job_cancel(j, reason);
}

unsigned jobq_len(const struct jobq *q)
{
    return q->len;
}

uint64_t jobq_skips(const struct jobq *q)
{
    return q->skips;
}
