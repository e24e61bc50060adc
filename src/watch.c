/* watch.c — the hang-up watcher thread (primed-hangup) and what it enforces on requests the
 * I/O threads cannot see: clients that leave while suspended, held 429s (tarpit) that are due,
 * and request bodies past their deadline or caught by a drain.
 *
 * It never answers through libmicrohttpd (a suspended connection, or one reading a body, cannot
 * be answered there): it resumes through server.c and writes a body's abort through respond.c.
 *
 * Clients that leave while their request is suspended: libmicrohttpd neither reads nor polls a
 * suspended connection, so a client that disconnects while its request waits for or runs on a
 * worker would only be noticed when the answer is written — after a π(1e17) that is minutes of
 * both cores. The hang-up watcher (watch_main) polls the sockets of suspended requests and
 * cancels their work (POOL_CANCEL_CLIENT); see "hang-up watcher" below.
 */
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "primed/errors.h"
#include "primed/stream.h"
#include "primed/trace.h"
#include "reqbody.h"
#include "server_int.h"

/* ---- hang-up watcher ----------------------------------------------------------------------- */

/* libmicrohttpd does not watch suspended connections (see the top of this file). One thread polls
 * the sockets of suspended requests for a hang-up — POLLRDHUP, POLLHUP or POLLERR, never POLLIN:
 * a pipelined next request is data, not a departure — and cancels the request's work
 * (POOL_CANCEL_CLIENT; a job stops within one segment); the worker then resumes the connection,
 * and finish_wait closes it without an answer (logged 499). As on the poll listener, a client
 * that half-closes after sending its request counts as gone.
 * The fd is libmicrohttpd's: it neither reads nor closes a suspended connection's socket, so if a
 * request is still suspended with the same generation after the poll (checked under r->mu), the
 * descriptor polled was its own throughout; one resumed meanwhile (its fd may have been closed
 * and reused) is left to the next round. Each round holds a reference on the requests it polls.
 * Cost: while requests are suspended, a walk of the in-flight list under s->mu and one poll per
 * WATCH_TICK_MS; otherwise one atomic load per tick. A request suspended after a round's walk is
 * watched from the next round on. Held 429s (tarpit) are released by the same walk: when due,
 * and all at once when a drain or stop begins (server_cancel_all needs no case of its own).
 * Rejected: watching all connections (races libmicrohttpd's own close; see start_listener in
 * server.c), or the worker peeking at the socket (the engine knows only its cancel flag). */
#define WATCH_TICK_MS 40
/* The half-close sweep (connsweep.c) every this many ticks: a half-closed socket leaves
 * CLOSE-WAIT within ~0.3 s. */
#define SWEEP_TICKS 6

/* The suspended requests whose work is not cancelled yet, each with a reference and its suspend
 * generation, into w->reqs / w->pfd[1…]. Lock order s->mu → r->mu (nothing takes s->mu under
 * r->mu). */
static unsigned watch_snapshot(struct server *s)
{
    struct hangup_watch *w = &s->watch;
    unsigned n = 0;
    /* Nothing suspended (the usual idle state): no walk, no lock. One suspended after this
     * load is seen on the next round, as one suspended after the walk would be. */
    if (atomic_load_explicit(&s->nsuspended, memory_order_relaxed) == 0 &&
        atomic_load_explicit(&s->nbody, memory_order_relaxed) == 0)
        return 0;
    uint64_t now = pool_now_ns();
    /* Draining or stopping: held 429s go out now (a drain waits for every request). */
    bool stopping = atomic_load_explicit(&s->stopping, memory_order_relaxed) ||
                    atomic_load_explicit(&s->draining, memory_order_relaxed);
    pthread_mutex_lock(&s->mu);
    /* Every request is visited (a due 429 must never wait for room in the arrays); at most cap
     * are polled per round, the list's newest first. */
    for (struct req *r = s->inflight; r; r = r->next) {
        if (r->fd < 0) continue;
        pthread_mutex_lock(&r->mu);
        if (r->in_body && !atomic_load_explicit(&r->aborted, memory_order_relaxed)) {
            /* A body in progress: past its deadline 408; at a drain 503, at once (it has not
             * started any work, and a client that stopped sending must not hold the drain). */
            if (stopping)
                body_abort_locked(r, PERR_UNAVAILABLE, "server is shutting down");
            else if (now >= atomic_load_explicit(&r->body_deadline_ns, memory_order_relaxed))
                body_abort_locked(r, PERR_REQUEST_TIMEOUT,
                                  "request body did not arrive within body_timeout_ms (plus 1 s "
                                  "per body_min_rate bytes received)");
        } else if (r->suspended && phase_of(r) == PH_TARPIT &&
                   (now >= r->tarpit_until_ns || stopping)) {
            req_wake_locked(r); /* a held 429 is due, or the server is stopping */
        } else if (r->suspended && n < w->cap &&
                   !atomic_load_explicit(&r->job.cancel, memory_order_relaxed)) {
            req_ref(r);
            w->reqs[n] = (struct watched){r, r->susp_gen};
            w->pfd[n + 1] = (struct pollfd){.fd = r->fd, .events = POLLRDHUP};
            n++;
        }
        pthread_mutex_unlock(&r->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void watch_hangup(struct server *s, struct req *r, unsigned gen)
{
    pthread_mutex_lock(&r->mu);
    bool same = r->suspended && r->susp_gen == gen; /* suspended throughout: the fd was its own */
    pthread_mutex_unlock(&r->mu);
    if (!same) return;
    atomic_store_explicit(&r->client_gone, true, memory_order_relaxed);
    if (phase_of(r) == PH_TARPIT) { /* a held 429 nobody waits for: close it now */
        req_wake(r);
        return;
    }
    if (!pool_job_cancel(&r->job, POOL_CANCEL_CLIENT)) return; /* a deadline or stop came first */
    atomic_fetch_add_explicit(&s->watch.cancels, 1, memory_order_relaxed);
    /* A parked producer or reader is woken by its stream (not under r->mu: it takes it). */
    struct stream *st = atomic_load_explicit(&r->live_stream, memory_order_acquire);
    if (st) stream_cancel(st);
}

static void *watch_main(void *arg)
{
    struct server *s = arg;
    struct hangup_watch *w = &s->watch;
    pthread_setname_np(pthread_self(), "primed-hangup");
    trace_thread_name("primed-hangup");
    w->pfd[0] = (struct pollfd){.fd = w->wake_fd, .events = POLLIN};
    for (unsigned tick = 0; !atomic_load_explicit(&w->stop, memory_order_acquire); tick++) {
        if (tick % SWEEP_TICKS == 0) connsweep_run(&s->sweep);
        unsigned n = watch_snapshot(s);
        int k = poll(w->pfd, n + 1, WATCH_TICK_MS);
        for (unsigned i = 0; i < n; i++) {
            if (k > 0 && (w->pfd[i + 1].revents & (POLLRDHUP | POLLHUP | POLLERR)))
                watch_hangup(s, w->reqs[i].r, w->reqs[i].gen);
            req_unref(w->reqs[i].r);
        }
    }
    return NULL;
}

void watch_stop(struct server *s)
{
    struct hangup_watch *w = &s->watch;
    if (w->started) {
        atomic_store_explicit(&w->stop, true, memory_order_release);
        uint64_t one = 1;
        if (write(w->wake_fd, &one, sizeof one) < 0) { /* the tick ends the poll anyway */
        }
        pthread_join(w->thread, NULL);
        w->started = false;
    }
    if (w->wake_fd >= 0) close(w->wake_fd);
    w->wake_fd = -1;
    free(w->reqs);
    free(w->pfd);
    w->reqs = NULL;
    w->pfd = NULL;
}

/* Arrays for every connection the listeners admit (24 bytes each), allocated once. */
int watch_start(struct server *s)
{
    struct hangup_watch *w = &s->watch;
    w->cap = s->cfg->max_connections + DEBUG_MAX_CONNECTIONS; /* every request can be polled */
    w->reqs = calloc(w->cap, sizeof *w->reqs);
    w->pfd = calloc((size_t)w->cap + 1, sizeof *w->pfd);
    w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->reqs && w->pfd && w->wake_fd >= 0 &&
        pthread_create(&w->thread, NULL, watch_main, s) == 0) {
        w->started = true;
        return 0;
    }
    watch_stop(s);
    return -1;
}

/* ---- held 429s ---------------------------------------------------------------------------- */

/* Over the rate limit: the 429 in r->resp is sent after rate_limit_delay_ms. A client that waits
 * for each answer (wrk, most scrapers, any keep-alive client) then sends a few requests per
 * connection per second, so a limited flood stops costing the I/O threads what serving it would
 * (~10 µs of CPU per 429), which was what the polite clients' latency paid for. The connection is
 * suspended and the hang-up watcher resumes it when due (its tick, WATCH_TICK_MS, is the
 * granularity) or when the client leaves. Bounded by the connection limits (a client's share:
 * max_connections_per_ip); gauge primed_ratelimit_delayed_answers. Draining or stopping: at once
 * (the watcher also releases those already held). */
bool tarpit(struct req *r)
{
    struct server *s = r->srv;
    unsigned ms = s->cfg->rate_limit_delay_ms;
    if (ms == 0 || atomic_load_explicit(&s->stopping, memory_order_relaxed) ||
        atomic_load_explicit(&s->draining, memory_order_relaxed))
        return req_queue_http(r, &r->resp);
    reqbody_drop(&r->body, s->api->mem); /* a held 429 holds no body */
    atomic_fetch_add_explicit(&s->watch.tarpitted, 1, memory_order_relaxed);
    pthread_mutex_lock(&r->mu);
    r->tarpit_until_ns = pool_now_ns() + (uint64_t)ms * 1000000u;
    set_phase(r, PH_TARPIT);
    req_suspend_locked(r);
    pthread_mutex_unlock(&r->mu);
    return true;
}

/* A held 429 is no longer held (about to be sent, or its connection ended first): leaves
 * PH_TARPIT, so it is counted out once. I/O thread (the only writer of the phase). */
void tarpit_release(struct req *r)
{
    if (phase_of(r) != PH_TARPIT) return;
    set_phase(r, PH_DONE);
    atomic_fetch_sub_explicit(&r->srv->watch.tarpitted, 1, memory_order_relaxed);
}

/* After the watcher resumed a held 429. (A client that left may instead be seen by
 * libmicrohttpd first: then only on_completed runs, and req_finish releases it.) */
bool finish_tarpit(struct req *r)
{
    tarpit_release(r);
    if (atomic_load_explicit(&r->client_gone, memory_order_relaxed)) return false;
    return req_queue_http(r, &r->resp);
}
