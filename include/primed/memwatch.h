/* memwatch.h — primed inside its memory limit: the stream budget (auto, and clamped to the limit),
 * the high-water mark that sheds expensive new work, and sampled heap profiles kept on the way up.
 *
 * The limit is the cgroup's (cgroup.h) when it sets one, measured against the cgroup's working
 * set (usage minus inactive page cache, what the kubelet evicts on); otherwise physical memory,
 * measured against this process's RSS. One sampling thread, owned and joined by memwatch, reads
 * them every MEMWATCH_PERIOD_MS; a request only ever loads one atomic (memwatch_shedding). Heap
 * profiles are written by that thread: never from a signal handler, never on a request thread.
 */
#ifndef PRIMED_MEMWATCH_H
#define PRIMED_MEMWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "primed/config.h"

#define MEMWATCH_PERIOD_MS 200

/* `memory_budget auto`: the stream budget for a memory limit of `limit` bytes — 1/4 of it, at
 * least MEMWATCH_BUDGET_MIN, at most MEMWATCH_BUDGET_MAX (the fixed default before auto), and
 * never below one stream buffer. Writes a one-line reason into why[whylen]. */
#define MEMWATCH_BUDGET_MIN (16ULL << 20)
#define MEMWATCH_BUDGET_MAX (256ULL << 20)
uint64_t memwatch_auto_budget(uint64_t limit, uint64_t stream_buffer_bytes, char *why,
                              size_t whylen);

/* The stream buffers may hold at most this percent of the memory limit, whatever memory_budget
 * says: the rest is the process itself (sieve segments and tables, connections, request bodies
 * up to request_memory_budget, socket buffers charged to the cgroup) and the allocator's slack.
 * A budget above it would let a burst of streams, admitted before the next sample, pass the
 * limit (the high-water mark sheds only what comes after a sample). */
#define MEMWATCH_BUDGET_LIMIT_PCT 50
/* min(budget, MEMWATCH_BUDGET_LIMIT_PCT % of limit); limit 0 (unknown): budget. */
uint64_t memwatch_clamp_budget(uint64_t budget, uint64_t limit);

struct memwatch;
struct stream_budget;

/* Find the cgroup under cfg->cgroup_root (none is not an error), take a first sample, resolve
 * cfg->memory_budget when it is 0 (auto), set `budget`'s limit to it clamped to the limit
 * (memwatch_clamp_budget; a warning memory_budget_clamped when that lowers it), register the
 * metrics collector and start the sampling thread, which re-clamps (and, for auto, recomputes)
 * the budget whenever it finds the limit changed. `budget` is borrowed until memwatch_destroy
 * (NULL: none to set). Call after metrics_init, before the server starts. One per process
 * (memwatch_shedding is process-wide). Returns 0 with *out set, -ENOMEM, or -errno of
 * pthread_create. */
int memwatch_create(struct primed_config *cfg, struct stream_budget *budget, struct memwatch **out);

/* Stop and join the thread, unregister the collector, free. Accepts NULL. */
void memwatch_destroy(struct memwatch *mw);

/* Above the high-water mark (and not yet back below the low one)? Any thread; one acquire load. */
bool memwatch_shedding(void);

/* A request was refused because of it (counted in primed_memory_shed_requests_total). */
void memwatch_note_shed(void);

#endif
