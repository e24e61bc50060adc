/* jobq.h — the pool's job queue: one FIFO per client, served round-robin, skipping clients that
 * have `cap` workers busy for them (pool_set_client_cap).
 *
 * A plain data structure for pool.c, which calls every function under its lock: no locks, no
 * threads, no clock. Finding the next eligible job never depends on how many jobs are queued:
 * jobq_pop is O(1), a client at its cap is off the round-robin ring rather than skipped job by
 * job. It never runs, cancels or frees a job; it only links them (job->next, job->qc).
 */
#ifndef PRIMED_JOBQ_H
#define PRIMED_JOBQ_H

#include <stdbool.h>
#include <stdint.h>

#include "primed/pool.h"

struct jobq;

/* An empty queue. `clients_hint` (the queue bound plus the workers) sizes the client table;
 * more clients still fit (longer hash chains). Returns NULL (errno ENOMEM) on failure. */
struct jobq *jobq_create(unsigned clients_hint);
/* Frees the queue and every client record. Accepts NULL. Queued jobs are not touched. */
void jobq_destroy(struct jobq *q);

/* At most `cap` workers busy for one non-zero client at once (0 = no cap, the default: every job
 * then goes to one FIFO, the order of submission). Set before the first push. */
void jobq_set_cap(struct jobq *q, unsigned cap);

/* Append job (job->client, job->next is overwritten) to its client's FIFO and take a reference
 * on the client's record for it, held until jobq_release: the record lives while its client has
 * an accepted job that is not done (queued, running, parked or resumed), so records are bounded
 * by those jobs. Returns 1 when the job's client may be served now (a worker may take it), 0
 * when the client is at its cap (it waits for jobq_busy to free a slot), or -ENOMEM (a new
 * client's record; nothing changed). O(1) expected (one hash lookup). */
int jobq_push(struct jobq *q, struct pool_job *job);

/* Take the next job: the oldest of the next client in turn whose busy count is under the cap;
 * NULL when no client is (or nothing is queued). O(1). Counts the clients passed over for being
 * at their cap (jobq_skips). The job keeps its record reference. */
struct pool_job *jobq_pop(struct jobq *q);

/* A worker starts (delta +1) or stops (-1) running a job of the client `qc` (job->qc) or a chunk
 * of its parallel task. Returns true when this made the client's queued jobs eligible again: the
 * caller wakes a worker. qc may be NULL (nothing to count). */
bool jobq_busy(struct jobq *q, struct jobq_client *qc, int delta);
/* qc has cap workers busy (never for NULL, the client 0 or with no cap). */
bool jobq_at_cap(const struct jobq *q, const struct jobq_client *qc);

/* job is done (never to run again): drop its record reference (freeing the record with the
 * last). The job must not be queued. */
void jobq_release(struct jobq *q, struct pool_job *job);

/* Unlink every queued job whose deadline is at or before now and return them as a list through
 * job->next (they keep their references). *next_ns is lowered to the earliest deadline of the
 * jobs left. O(queued jobs + clients). */
struct pool_job *jobq_take_expired(struct jobq *q, uint64_t now, uint64_t *next_ns);

/* Unlink every queued job and return them as a list through job->next, oldest of each client
 * first (they keep their references). O(queued jobs + clients). */
struct pool_job *jobq_take_all(struct jobq *q);

/* pool_job_cancel(job, reason) for every queued job. */
void jobq_cancel_all(struct jobq *q, enum pool_cancel reason);

unsigned jobq_len(const struct jobq *q); /* queued jobs */
/* Clients passed over by jobq_pop: at every pop, the number of clients that had jobs queued but
 * were at their cap. */
uint64_t jobq_skips(const struct jobq *q);

#endif
