/* reqmem.c — see reqmem.h. One atomic counter and a compare-and-swap: a charge is a few
 * nanoseconds, taken once per body growth (a doubling) and once per 64 KiB of a batch's parse,
 * so a lock-free counter is plenty; per-thread shards would only blur the limit.
 */
#include "primed/reqmem.h"

#include "primed/metrics.h"

void reqmem_init(struct reqmem *m, uint64_t limit)
{
    atomic_init(&m->used, 0);
    atomic_init(&m->rejections, 0);
    m->limit = limit;
}

bool reqmem_charge(struct reqmem *m, uint64_t n)
{
    if (!m) return true;
    uint_fast64_t cur = atomic_load_explicit(&m->used, memory_order_relaxed);
    do {
        if (n > m->limit || cur > m->limit - n) {
            atomic_fetch_add_explicit(&m->rejections, 1, memory_order_relaxed);
            return false;
        }
    } while (!atomic_compare_exchange_weak_explicit(&m->used, &cur, cur + n, memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}

void reqmem_release(struct reqmem *m, uint64_t n)
{
    if (m && n) atomic_fetch_sub_explicit(&m->used, n, memory_order_relaxed);
}

void reqmem_collect(void *arg, struct metrics_writer *w)
{
    struct reqmem *m = arg;
    metrics_write_one(w, "primed_request_memory_bytes", "gauge",
                      "Bytes of request bodies and batch parses held (charged to the budget).",
                      atomic_load_explicit(&m->used, memory_order_relaxed));
    metrics_write_one(w, "primed_request_memory_budget_bytes", "gauge",
                      "The request memory budget (request_memory_budget).", m->limit);
    metrics_write_one(w, "primed_request_memory_rejections_total", "counter",
                      "Requests refused (503 overloaded) because the request memory budget was "
                      "spent.",
                      atomic_load_explicit(&m->rejections, memory_order_relaxed));
}
