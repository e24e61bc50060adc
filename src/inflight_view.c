/* inflight_view.c — the server's side of /debug/requests: one consistent copy of the in-flight
 * list and the pool's worker table into inflight.c's arrays (inflight_source_fn).
 *
 * Only copies under the locks: no allocation under s->mu, no formatting (inflight.c renders
 * after the snapshot, on the debug listener's thread). It never changes a request.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "primed/inflight.h"
#include "primed/pool.h"
#include "primed/stream.h"
#include "server_int.h"

struct job_slot {
    const struct pool_job *job;
    unsigned worker;
};

static int slot_cmp(const void *a, const void *b)
{
    const struct job_slot *x = a, *y = b;
    return x->job < y->job ? -1 : x->job > y->job;
}

/* The worker whose slot (running or helping) names job, or NULL. slots sorted by job. */
static const struct job_slot *slot_find(const struct job_slot *slots, unsigned n,
                                        const struct pool_job *job)
{
    const struct job_slot key = {job, 0};
    return bsearch(&key, slots, n, sizeof *slots, slot_cmp);
}

/* One row from a request in the in-flight list (called with s->mu held: r is alive). */
static void snap_row(const struct req *r, uint64_t now, struct inflight_row *row, int rowidx,
                     const struct pool_worker_info *wi, struct inflight_worker *wk,
                     const struct job_slot *slots, unsigned ns)
{
    *row = (struct inflight_row){.worker = -1, .debug_listener = r->lis->debug};
    snprintf(row->path, sizeof row->path, "%s", r->path);
    snprintf(row->client, sizeof row->client, "%s", r->client_addr);
    snprintf(row->params, sizeof row->params, "%s", r->query_str);
    if (r->started) { /* method and request_id were written before started, under s->mu */
        snprintf(row->method, sizeof row->method, "%s", r->method);
        snprintf(row->request_id, sizeof row->request_id, "%s", r->request_id);
    }
    row->age_ms = (now - r->t0_ns) / 1000000u;
    row->bytes_sent = atomic_load_explicit(&r->bytes, memory_order_relaxed);
    /* The job runs on at most one worker; helpers carry the same job and come next to it. */
    const struct job_slot *sl = slot_find(slots, ns, &r->job);
    while (sl && sl > slots && sl[-1].job == &r->job)
        sl--;
    for (; sl && sl < slots + ns && sl->job == &r->job; sl++) {
        const struct pool_worker_info *k = &wi[sl->worker];
        wk[sl->worker].row = rowidx;
        if (k->state == POOL_WORKER_RUNNING) row->worker = (int)sl->worker;
        if (k->chunks_total) {
            row->chunks_done = k->chunks_done;
            row->chunks_total = k->chunks_total;
        }
    }
    enum phase ph = phase_of(r);
    struct stream *st = atomic_load_explicit(&r->live_stream, memory_order_acquire);
    if (ph == PH_NEW) {
        row->state = INFLIGHT_RECEIVING;
    } else if (ph == PH_BODY) {
        row->state = INFLIGHT_HANDLING;
    } else if (st) {
        size_t buffered = 0;
        enum stream_producer sp = stream_producer_state(st, &buffered);
        row->buffered = buffered;
        row->state = INFLIGHT_STREAMING;
        if (sp == STREAM_P_FINISHED)
            row->state = INFLIGHT_DRAINING;
        else if (row->worker >= 0)
            row->producer = INFLIGHT_P_PRODUCING;
        else if (sp == STREAM_P_PARKED)
            row->producer = INFLIGHT_P_PARKED;
        else if (ph == PH_WAIT) /* first run not started: no response queued yet */
            row->state = INFLIGHT_QUEUED;
        else
            row->producer = INFLIGHT_P_WAITING;
    } else if (ph == PH_WAIT) {
        /* (Also, for the microseconds between the worker's end and the I/O thread's resume, a
         * finished job: shown as queued.) */
        row->state = row->worker >= 0 ? INFLIGHT_RUNNING : INFLIGHT_QUEUED;
    } else {
        row->state = INFLIGHT_DRAINING;
    }
    if (row->state != INFLIGHT_RUNNING && row->state != INFLIGHT_STREAMING) row->worker = -1;
}

/* inflight_source_fn. Consistency: the in-flight list is frozen under s->mu for the whole copy,
 * and the pool's worker table is one cut taken under the pool lock inside it (lock order
 * s->mu → pool, as in server_cancel_all). So every listed request is alive while it is copied,
 * and a worker's job pointer can only match the request it really belongs to (no listed
 * request can be freed and its address reused meanwhile). Each row's stream state is one cut
 * under that stream's own lock, microseconds apart from the others. Under s->mu: O(limit) row
 * copies plus O(workers) in the pool; no allocation, no formatting. */
int server_snapshot(void *arg, struct inflight_snapshot *snap)
{
    struct server *s = arg;
    unsigned wcap = snap->wcap;
    struct pool_worker_info *wi = calloc(wcap ? wcap : 1, sizeof *wi);
    struct job_slot *slots = calloc(wcap ? wcap : 1, sizeof *slots);
    if (!wi || !slots) {
        free(wi);
        free(slots);
        return -ENOMEM;
    }
    struct pool_stats ps;
    uint64_t now = pool_now_ns();
    pthread_mutex_lock(&s->mu);
    unsigned nw = pool_workers_get(s->pool, wi, wcap, &ps);
    unsigned ns = 0;
    for (unsigned i = 0; i < nw; i++)
        if (wi[i].job) slots[ns++] = (struct job_slot){wi[i].job, i};
    qsort(slots, ns, sizeof *slots, slot_cmp);
    for (unsigned i = 0; i < nw; i++)
        snap->workers[i] = (struct inflight_worker){.state = (int)wi[i].state,
                                                    .row = -1,
                                                    .chunks_done = wi[i].chunks_done,
                                                    .chunks_total = wi[i].chunks_total};
    snap->n = 0;
    snap->total = s->ninflight;
    for (struct req *r = s->oldest; r && snap->n < snap->cap; r = r->prev) {
        struct inflight_row *row = &snap->rows[snap->n];
        snap_row(r, now, row, (int)snap->n, wi, snap->workers, slots, ns);
        snap->n++;
    }
    pthread_mutex_unlock(&s->mu);
    snap->nworkers = nw;
    snap->queue_depth = ps.queue_depth;
    snap->queue_capacity = ps.queue_capacity;
    snap->parked = ps.parked;
    snap->resume_depth = ps.resume_depth;
    free(slots);
    free(wi);
    return 0;
}
