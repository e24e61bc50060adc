/* reqmem.h — the budget of memory that requests make the server hold before and while they run.
 *
 * Every byte a request brings or builds outside the stream buffers (its body as it arrives, the
 * parse of a batch body on its worker; the π cache's arrays as answers fill it) is charged here
 * first, against one process-wide limit
 * (cfg.request_memory_budget). A charge that does not fit is refused, counted, and the request
 * answered 503 overloaded: so the memory of queued requests is bounded by the budget, not by
 * queue_capacity × what one request may cost.
 *
 * Fairness: bodies are also charged to their client (a 64-bit tag of its address, as the rate
 * limiter keys it), and no client may hold more than its share (request_memory_per_client), so
 * one address with many connections cannot spend the whole budget while others wait. Knows
 * nothing of HTTP or JSON.
 */
#ifndef PRIMED_REQMEM_H
#define PRIMED_REQMEM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct metrics_writer;

/* One client holding request memory (open addressing, linear probing; tag 0 = empty). */
struct reqmem_client {
    uint64_t tag;
    uint64_t bytes;
};

struct reqmem {
    /* Charged bytes: a CAS loop in reqmem_charge, fetch_sub in reqmem_release, by any thread.
     * Relaxed: a counter that orders nothing else; the CAS keeps it ≤ limit. */
    atomic_uint_fast64_t used;
    atomic_uint_fast64_t rejections;       /* refused charges: budget spent (relaxed counter) */
    atomic_uint_fast64_t share_rejections; /* refused charges: the client's share spent */
    uint64_t limit;                        /* set once by reqmem_init, before any thread uses it */

    /* Per-client shares (reqmem_set_shares; none until then). The table has room for every
     * client that can hold a body at once (one per connection), twice over, so it never fills
     * in practice; a charge that finds it full is refused like one over the share. */
    uint64_t share;                /* most bytes one client may hold; 0 = no shares */
    pthread_mutex_t mu;            /* the table (held for O(1) expected work) */
    struct reqmem_client *clients; /* [nslots], under mu */
    unsigned nslots, nclients;     /* nclients under mu */
    bool mu_init;
};

void reqmem_init(struct reqmem *m, uint64_t limit);
/* Turn on per-client shares: at most `share` bytes per client (≥ 1), a table for `max_clients`
 * clients holding memory at once. Returns 0 or -ENOMEM. Before any thread charges. */
int reqmem_set_shares(struct reqmem *m, uint64_t share, unsigned max_clients);
/* Frees the share table. Accepts a reqmem without one. */
void reqmem_fini(struct reqmem *m);

/* Charge n bytes. Returns true, or false (nothing charged, a rejection counted) when the budget
 * would go above its limit. m == NULL: an unbounded budget (unit tests), always true. */
bool reqmem_charge(struct reqmem *m, uint64_t n);
/* The same for memory the server can do without (the π cache's growth, picache.h): a charge
 * that does not fit is refused without counting a rejection, since no request was refused. */
bool reqmem_try_charge(struct reqmem *m, uint64_t n);
/* Give back n bytes charged earlier. Accepts m == NULL. */
void reqmem_release(struct reqmem *m, uint64_t n);

/* Why a client charge was refused. */
enum reqmem_refusal { REQMEM_OK = 0, REQMEM_BUDGET, REQMEM_SHARE };
/* Charge n bytes to the budget and to client `tag` (0 = no client: the budget only). Refused
 * (nothing charged, counted) when the budget or the client's share cannot hold them. */
enum reqmem_refusal reqmem_charge_client(struct reqmem *m, uint64_t tag, uint64_t n);
/* Give back n bytes charged by reqmem_charge_client with the same tag. */
void reqmem_release_client(struct reqmem *m, uint64_t tag, uint64_t n);
/* Bytes client `tag` holds now (tests, diagnostics). */
uint64_t reqmem_client_bytes(struct reqmem *m, uint64_t tag);

/* A metrics collector (metrics_register_collector with arg = the reqmem): bytes charged, the
 * limit, the share, clients holding memory, rejections. */
void reqmem_collect(void *arg, struct metrics_writer *w);

#endif
