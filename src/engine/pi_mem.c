/* pi_mem.c — the one process-wide memory budget every π(x) table and scratch buffer is charged to.
 *
 * A plan or chunk that would pass the limit gets NULL (the caller returns -ENOMEM and frees what
 * it holds); nothing here aborts, and nothing is allocated outside it by the π units.
 */
#include <stdlib.h>

#include "pi_int.h"

/* Written by every allocation and free below, on any thread (relaxed: a counter, it orders
 * nothing; the CAS makes the limit check and the add one step). */
static atomic_uint_fast64_t mem_used;
static atomic_uint_fast64_t mem_peak;
static atomic_uint_fast64_t mem_limit = PI_MEM_LIMIT_DEFAULT;

bool pi_mem_charge(size_t n)
{
    uint64_t cur = atomic_load_explicit(&mem_used, memory_order_relaxed);
    uint64_t lim = atomic_load_explicit(&mem_limit, memory_order_relaxed);
    do {
        if (n > lim || cur > lim - n) return false;
    } while (!atomic_compare_exchange_weak_explicit(&mem_used, &cur, cur + n, memory_order_relaxed,
                                                    memory_order_relaxed));
    uint64_t now = cur + n, pk = atomic_load_explicit(&mem_peak, memory_order_relaxed);
    while (pk < now && !atomic_compare_exchange_weak_explicit(
                           &mem_peak, &pk, now, memory_order_relaxed, memory_order_relaxed)) {
    }
    return true;
}

void pi_mem_uncharge(size_t n)
{
    atomic_fetch_sub_explicit(&mem_used, n, memory_order_relaxed);
}

void *pi_mem_get(size_t n)
{
    if (n == 0) n = 1;
    if (!pi_mem_charge(n)) return NULL;
    void *p = calloc(1, n);
    if (!p) pi_mem_uncharge(n);
    return p;
}

void pi_mem_put(void *p, size_t n)
{
    if (!p) return;
    if (n == 0) n = 1;
    free(p);
    atomic_fetch_sub_explicit(&mem_used, n, memory_order_relaxed);
}

void pi_mem_stats_get(struct pi_mem_stats *out)
{
    out->in_use = atomic_load_explicit(&mem_used, memory_order_relaxed);
    out->peak = atomic_load_explicit(&mem_peak, memory_order_relaxed);
    out->limit = atomic_load_explicit(&mem_limit, memory_order_relaxed);
}

void pi_mem_set_limit(uint64_t bytes)
{
    atomic_store_explicit(&mem_limit, bytes, memory_order_relaxed);
}
