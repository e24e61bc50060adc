/* reqmem.c — see reqmem.h. One atomic counter and a compare-and-swap for the budget: a charge is
 * a few nanoseconds, taken once per body growth (a doubling) and once per 64 KiB of a batch's
 * parse, so a lock-free counter is plenty; per-thread shards would only blur the limit.
 *
 * The per-client shares are a small open-addressing table under one mutex: a client charge is
 * taken at most once per body doubling (≤ 9 times for a 1 MiB body), so the lock is cold. A
 * client's slot is deleted (backward shift) when its bytes return to 0, so the table holds only
 * clients with a body in hand. Rejected: a share computed from the number of active clients
 * (budget / clients): it shrinks everyone's share when an attacker opens addresses, and a fixed
 * share is what an operator can reason about.
 */
#include "primed/reqmem.h"

#include <errno.h>
#include <stdlib.h>

#include "primed/metrics.h"

void reqmem_init(struct reqmem *m, uint64_t limit)
{
    atomic_init(&m->used, 0);
    atomic_init(&m->rejections, 0);
    atomic_init(&m->share_rejections, 0);
    m->limit = limit;
    m->share = 0;
    m->clients = NULL;
    m->nslots = m->nclients = 0;
    m->mu_init = false;
}

int reqmem_set_shares(struct reqmem *m, uint64_t share, unsigned max_clients)
{
    unsigned n = 2u * (max_clients ? max_clients : 1) + 1;
    m->clients = calloc(n, sizeof *m->clients);
    if (!m->clients) return -ENOMEM;
    pthread_mutex_init(&m->mu, NULL);
    m->mu_init = true;
    m->nslots = n;
    m->share = share ? share : 1;
    return 0;
}

void reqmem_fini(struct reqmem *m)
{
    if (m->mu_init) pthread_mutex_destroy(&m->mu);
    free(m->clients);
    m->clients = NULL;
    m->nslots = m->nclients = 0;
    m->share = 0;
    m->mu_init = false;
}

static bool charge(struct reqmem *m, uint64_t n, bool count_refusal)
{
    if (!m) return true;
    uint_fast64_t cur = atomic_load_explicit(&m->used, memory_order_relaxed);
    do {
        if (n > m->limit || cur > m->limit - n) {
            if (count_refusal) atomic_fetch_add_explicit(&m->rejections, 1, memory_order_relaxed);
            return false;
        }
    } while (!atomic_compare_exchange_weak_explicit(&m->used, &cur, cur + n, memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}

bool reqmem_charge(struct reqmem *m, uint64_t n)
{
    return charge(m, n, true);
}

bool reqmem_try_charge(struct reqmem *m, uint64_t n)
{
    return charge(m, n, false);
}

void reqmem_release(struct reqmem *m, uint64_t n)
{
    if (m && n) atomic_fetch_sub_explicit(&m->used, n, memory_order_relaxed);
}

/* ---- per-client shares (m->mu held) -----------------------------------------------------------
 */

static unsigned home(const struct reqmem *m, uint64_t tag)
{
    return (unsigned)((tag * 0x9e3779b97f4a7c15ull) >> 32) % m->nslots;
}

/* The slot of tag, or of the empty slot where it would go (NULL when the table is full). */
static struct reqmem_client *slot_of(struct reqmem *m, uint64_t tag)
{
    unsigned i = home(m, tag);
    for (unsigned k = 0; k < m->nslots; k++, i = i + 1 == m->nslots ? 0 : i + 1)
        if (m->clients[i].tag == tag || m->clients[i].tag == 0) return &m->clients[i];
    return NULL;
}

/* Empty slot i and shift back the entries of its cluster that probed past it. */
static void slot_delete(struct reqmem *m, unsigned i)
{
    unsigned j = i;
    for (;;) {
        m->clients[i].tag = 0;
        m->clients[i].bytes = 0;
        for (;;) {
            j = j + 1 == m->nslots ? 0 : j + 1;
            if (m->clients[j].tag == 0) return;
            unsigned h = home(m, m->clients[j].tag);
            /* j's entry may move to i only if its home is not in (i, j] (cyclically). */
            bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
            if (!stays) break;
        }
        m->clients[i] = m->clients[j];
        i = j;
    }
}

enum reqmem_refusal reqmem_charge_client(struct reqmem *m, uint64_t tag, uint64_t n)
{
    if (!m) return REQMEM_OK;
    if (tag == 0 || m->share == 0) return reqmem_charge(m, n) ? REQMEM_OK : REQMEM_BUDGET;
    enum reqmem_refusal r = REQMEM_OK;
    pthread_mutex_lock(&m->mu);
    struct reqmem_client *c = slot_of(m, tag);
    bool over_share = !c || n > m->share || (c->tag == tag && c->bytes > m->share - n);
    /* The budget is asked first: when both refuse, the reason is the budget (everyone's). */
    if (!reqmem_charge(m, n)) {
        r = REQMEM_BUDGET;
    } else if (over_share) {
        reqmem_release(m, n);
        atomic_fetch_add_explicit(&m->share_rejections, 1, memory_order_relaxed);
        r = REQMEM_SHARE;
    } else {
        if (c->tag == 0) {
            c->tag = tag;
            m->nclients++;
        }
        c->bytes += n;
    }
    pthread_mutex_unlock(&m->mu);
    return r;
}

void reqmem_release_client(struct reqmem *m, uint64_t tag, uint64_t n)
{
    if (!m || n == 0) return;
    if (tag != 0 && m->share != 0) {
        pthread_mutex_lock(&m->mu);
        struct reqmem_client *c = slot_of(m, tag);
        if (c && c->tag == tag) {
            c->bytes = c->bytes > n ? c->bytes - n : 0;
            if (c->bytes == 0) {
                slot_delete(m, (unsigned)(c - m->clients));
                m->nclients--;
            }
        }
        pthread_mutex_unlock(&m->mu);
    }
    reqmem_release(m, n);
}

uint64_t reqmem_client_bytes(struct reqmem *m, uint64_t tag)
{
    if (!m || tag == 0 || m->share == 0) return 0;
    pthread_mutex_lock(&m->mu);
    struct reqmem_client *c = slot_of(m, tag);
    uint64_t b = c && c->tag == tag ? c->bytes : 0;
    pthread_mutex_unlock(&m->mu);
    return b;
}

void reqmem_collect(void *arg, struct metrics_writer *w)
{
    struct reqmem *m = arg;
    metrics_write_one(w, "primed_request_memory_bytes", "gauge",
                      "Bytes of request bodies, batch parses and pi cache arrays held (charged "
                      "to the budget).",
                      atomic_load_explicit(&m->used, memory_order_relaxed));
    metrics_write_one(w, "primed_request_memory_budget_bytes", "gauge",
                      "The request memory budget (request_memory_budget).", m->limit);
    metrics_write_one(w, "primed_request_memory_rejections_total", "counter",
                      "Requests refused (503 overloaded) because the request memory budget was "
                      "spent.",
                      atomic_load_explicit(&m->rejections, memory_order_relaxed));
    unsigned nclients = 0;
    if (m->share) {
        pthread_mutex_lock(&m->mu);
        nclients = m->nclients;
        pthread_mutex_unlock(&m->mu);
    }
    metrics_write_one(w, "primed_request_memory_client_share_bytes", "gauge",
                      "The most request memory one client may hold (request_memory_per_client; "
                      "0 = no shares).",
                      m->share);
    metrics_write_one(w, "primed_request_memory_clients", "gauge",
                      "Clients holding request memory now.", nclients);
    metrics_write_one(w, "primed_request_memory_share_rejections_total", "counter",
                      "Requests refused (503 overloaded) because their client held its share of "
                      "the request memory budget.",
                      atomic_load_explicit(&m->share_rejections, memory_order_relaxed));
}
