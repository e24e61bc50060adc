/* reqmem.h — the budget of memory that requests make the server hold before and while they run.
 *
 * Every byte a request brings or builds outside the stream buffers (its body as it arrives, the
 * parse of a batch body on its worker) is charged here first, against one process-wide limit
 * (cfg.request_memory_budget). A charge that does not fit is refused, counted, and the request
 * answered 503 overloaded at once: so the memory of queued requests is bounded by the budget,
 * not by queue_capacity × what one request may cost. Knows nothing of HTTP or JSON.
 */
#ifndef PRIMED_REQMEM_H
#define PRIMED_REQMEM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct metrics_writer;

struct reqmem {
    /* Charged bytes: a CAS loop in reqmem_charge, fetch_sub in reqmem_release, by any thread.
     * Relaxed: a counter that orders nothing else; the CAS keeps it ≤ limit. */
    atomic_uint_fast64_t used;
    atomic_uint_fast64_t rejections; /* refused charges (relaxed counter) */
    uint64_t limit;                  /* set once by reqmem_init, before any thread uses it */
};

void reqmem_init(struct reqmem *m, uint64_t limit);
/* Charge n bytes. Returns true, or false (nothing charged, a rejection counted) when the budget
 * would go above its limit. m == NULL: an unbounded budget (unit tests), always true. */
bool reqmem_charge(struct reqmem *m, uint64_t n);
/* Give back n bytes charged earlier. Accepts m == NULL. */
void reqmem_release(struct reqmem *m, uint64_t n);
/* A metrics collector (metrics_register_collector with arg = the reqmem): bytes charged, the
 * limit, rejections. */
void reqmem_collect(void *arg, struct metrics_writer *w);

#endif
