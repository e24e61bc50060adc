/* dispatch.c — a request between its headers and its answer: body intake (deadline, budget),
 * routing, admission, the hand-off to the pool, and the answer once the worker resumes it.
 *
 * Runs on the connection's I/O thread (the jobs' run/done on workers). It never touches
 * libmicrohttpd: answers go through respond.c, suspend/resume through server.c.
 *
 * A stream's producing job never holds a worker while its reader is slow. Its states:
 *   QUEUED  --worker takes it--> RUNNING (deadline cleared: it covers queue wait and first byte)
 *   RUNNING --buffer full: api_stream saves q->pos, returns POOL_PARKED--> PARKED (no worker, no
 *           list; the job's reference keeps the request alive; primed_stream_producers_parked)
 *   PARKED  --reader frees half the buffer, or stream_cancel (client gone, shutdown)--> the
 *           stream calls req_resume exactly once --> pool_resume --> RESUMED (the pool's second
 *           list, never full) --worker--> RUNNING again from q->pos
 *   RUNNING --end of range, or cancelled--> stream_finish, outcome counted once, `done` drops
 *           the job's reference.
 * So a cancelled parked stream is finished and freed by one more (short) run of its job: the
 * parked flag is cleared under the stream lock by whichever of reader and cancel comes first,
 * and only that one resumes, so there is no second path that could free it. A stalled reader
 * is ended by the connection idle timeout (on_completed cancels the stream).
 *
 * Request bodies: buffered in a struct reqbody (reqbody.c), every byte charged to the request
 * memory budget (reqmem.h) before it is held: a Content-Length whole before the body is read (503
 * at once, the connection closed as for 413, when it does not fit), a chunked body as its buffer
 * grows (the rest discarded and 503 at the end). Nothing reads the body on this thread; the API
 * parses it on a worker.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admission.h"
#include "primed/errors.h"
#include "primed/memwatch.h"
#include "primed/router.h"
#include "primed/stream.h"
#include "primed/trace.h"
#include "rawreq.h"
#include "reqbody.h"
#include "server_int.h"

/* ---- request bodies ------------------------------------------------------------------------ */

/* Only POST takes a body, and only on a row that accepts POST: anything else with a body is
 * answered before a byte of it is read or charged (404, 405 or 413; libmicrohttpd then closes
 * the connection, the body unread). A body that is taken is charged as it arrives (reqbody.h)
 * to the budget and to the client's share, and must arrive by a deadline that each byte pushes
 * back (body_timeout_ms + 1 s per body_min_rate bytes, as Apache's mod_reqtimeout does): a
 * client trickling a byte at a time is answered 408 by the watcher, whatever it declared. */
bool body_start(struct req *r, const char *method, const char *url)
{
    struct server *s = r->srv;
    const char *cl = r->hreq.get_header(&r->hreq, "Content-Length");
    const char *te = r->hreq.get_header(&r->hreq, "Transfer-Encoding");
    unsigned long long n = 0;
    if (cl) {
        char *end;
        errno = 0;
        n = strtoull(cl, &end, 10);
        if (errno || *end || n > s->cfg->max_body_bytes)
            /* Early: the body is never read, so libmicrohttpd closes the connection. */
            return req_queue_error(r, PERR_BODY_TOO_LARGE, NULL, NULL,
                                   "request body larger than max_body_bytes");
    }
    if (n == 0 && (cl || !te)) return true; /* no body */
    const struct route *rt = NULL;
    enum router_result rr = router_match(r->lis->debug, method, url, &rt);
    r->route = rt;
    if (rr == ROUTER_NOT_FOUND) return req_queue_error(r, PERR_NOT_FOUND, NULL, NULL, NULL);
    if (rr == ROUTER_METHOD_NOT_ALLOWED)
        return req_queue_error(r, PERR_METHOD_NOT_ALLOWED, NULL, router_allow(rt), NULL);
    if (strcmp(method, "POST") != 0) {
        char msg[64];
        snprintf(msg, sizeof msg, "a %s request takes no body", r->method);
        return req_queue_error(r, PERR_BODY_TOO_LARGE, NULL, NULL, msg);
    }
    r->client = admission_client_of(&s->adm, r->client_addr, req_forwarded_for(r));
    reqbody_expect(&r->body, r->client, n);
    r->body_t0_ns = pool_now_ns();
    atomic_store_explicit(&r->body_deadline_ns,
                          r->body_t0_ns + (uint64_t)s->cfg->body_timeout_ms * 1000000u,
                          memory_order_relaxed);
    pthread_mutex_lock(&r->mu);
    r->in_body = true;
    atomic_fetch_add_explicit(&s->nbody, 1, memory_order_relaxed);
    pthread_mutex_unlock(&r->mu);
    return true;
}

/* n more bytes arrived: push the deadline back by n / body_min_rate seconds. */
void body_progress(struct req *r, size_t n)
{
    const struct primed_config *c = r->srv->cfg;
    r->body_received += n;
    uint64_t extra_ms = r->body_received * 1000u / c->body_min_rate;
    atomic_store_explicit(&r->body_deadline_ns,
                          r->body_t0_ns + ((uint64_t)c->body_timeout_ms + extra_ms) * 1000000u,
                          memory_order_relaxed);
}

/* The body is complete (or the request ends): it no longer has a deadline. Returns false when
 * the watcher answered the request first (the caller closes the connection). */
bool body_end(struct req *r)
{
    pthread_mutex_lock(&r->mu);
    bool ok = atomic_load_explicit(&r->aborted, memory_order_relaxed) == 0;
    if (r->in_body) {
        r->in_body = false;
        atomic_fetch_sub_explicit(&r->srv->nbody, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&r->mu);
    return ok;
}

/* ---- the trace (trace.h): every site below costs one relaxed load when no capture runs ---- */

static const char *route_label(const struct req *r)
{
    return r->route ? r->route->label : "other";
}

static void trace_req_span(const struct req *r, const char *name, uint64_t t0)
{
    struct trace_ev e = TRACE_EV_INIT;
    e.name = name;
    e.route = route_label(r);
    e.rid = r->request_id;
    e.params = r->query_str;
    e.t0 = t0;
    e.t1 = trace_now_ns();
    trace_span(&e);
}

/* A run of the job on a worker: "running" the first time, "streaming" when a parked stream
 * resumes; the first run's start and end are the request's phases. */
static void trace_run_end(struct req *r, uint64_t t0)
{
    uint64_t zero = 0;
    bool first = atomic_compare_exchange_strong_explicit(
        &r->tr_started_ns, &zero, t0, memory_order_relaxed, memory_order_relaxed);
    trace_req_span(r, first ? "running" : "streaming", t0);
    if (first) {
        atomic_store_explicit(&r->tr_worker, trace_tid(), memory_order_relaxed);
        atomic_store_explicit(&r->tr_ran_ns, trace_now_ns(), memory_order_relaxed);
    }
}

void dispatch_trace_done(struct req *r, int status, uint64_t bytes)
{
    if (!trace_on()) return;
    static const int marked[] = {429, 499, 503, 504};
    static const char *const marks[] = {"429 rate_limited", "499 client gone", "503 unavailable",
                                        "504 deadline"};
    struct trace_ev e = TRACE_EV_INIT;
    e.route = route_label(r);
    e.rid = r->request_id;
    e.params = r->query_str;
    e.status = status;
    e.bytes = bytes;
    e.stream = r->is_stream;
    for (size_t i = 0; i < sizeof marked / sizeof marked[0]; i++)
        if (status == marked[i]) {
            e.name = marks[i];
            trace_instant(&e);
        }
    e.name = "request";
    uint64_t at[TRACE__PHASES] = {
        [TRACE_RECEIVED] = r->t0_ns,
        [TRACE_QUEUED] = r->tr_queued_ns,
        [TRACE_STARTED] = atomic_load_explicit(&r->tr_started_ns, memory_order_relaxed),
        [TRACE_RAN] = atomic_load_explicit(&r->tr_ran_ns, memory_order_relaxed),
        [TRACE_DONE] = trace_now_ns()};
    trace_request(&e, at, atomic_load_explicit(&r->tr_worker, memory_order_relaxed));
}

/* ---- jobs ---------------------------------------------------------------------------------- */

static enum pool_outcome req_job_run(struct pool_job *job, void *local)
{
    struct req *r = (struct req *)((char *)job - offsetof(struct req, job));
    const atomic_int *cancel = &job->cancel;
    uint64_t t0 = trace_on() ? trace_now_ns() : 0;
    enum pool_outcome o;
    if (r->is_stream) {
        /* The deadline covers the wait in the queue; once producing, the stream is paced by
         * its reader (and a stalled reader by the connection idle timeout). */
        if (local) pool_job_clear_deadline(r->srv->pool, job);
        o = api_stream(r->srv->api, &r->query, local, r->stream, cancel);
    } else {
        o = api_run(r->srv->api, &r->query, local, cancel, &r->resp);
    }
    if (t0) trace_run_end(r, t0);
    return o;
}

static void req_job_done(struct pool_job *job)
{
    struct req *r = (struct req *)((char *)job - offsetof(struct req, job));
    if (!r->is_stream) req_wake(r); /* streams wake through the stream */
    req_unref(r);                   /* the job's reference */
}

/* The CPU a metered request may use: rate_limit_cpu_factor × its price (1 token ≈ 1 ms) plus
 * METER_SLACK_MS for what no price models (a request's fixed costs, the meter's own tick). */
#define METER_SLACK_MS 20u
static void req_set_cpu_limit(struct req *r)
{
    uint64_t ms = r->adm.cost * r->srv->cfg->rate_limit_cpu_factor + METER_SLACK_MS;
    atomic_store_explicit(&r->job.cpu_limit_ns, ms * 1000000u, memory_order_relaxed);
}

/* api_query.charge: a batch's whole price, asked on its worker before any query runs. */
static bool req_batch_charge(void *arg, uint64_t tokens, struct http_response *resp)
{
    struct req *r = arg;
    if (!admission_batch_charge(&r->srv->adm, &r->adm, tokens, pool_now_ns(), resp)) return false;
    req_set_cpu_limit(r);
    return true;
}

static bool submit(struct req *r, bool stream)
{
    struct server *s = r->srv;
    if (atomic_load_explicit(&s->stopping, memory_order_relaxed))
        return req_queue_error(r, PERR_UNAVAILABLE, NULL, NULL, "server is shutting down");
    if (memwatch_shedding() && api_query_expensive(&r->query)) {
        memwatch_note_shed();
        return req_queue_error(r, PERR_OVERLOADED, NULL, NULL,
                               "memory is above the high-water mark; retry later");
    }
    r->is_stream = stream;
    if (stream) {
        r->stream = stream_create(s->budget, s->cfg->stream_buffer_bytes,
                                  stream_block_bytes(s->cfg->stream_buffer_bytes), req_wake, r,
                                  req_resume, r);
        if (!r->stream)
            return req_queue_error(r, errno == EAGAIN ? PERR_OVERLOADED : PERR_INTERNAL, NULL, NULL,
                                   errno == EAGAIN ? "stream memory budget exhausted" : NULL);
        atomic_store_explicit(&r->live_stream, r->stream, memory_order_release);
    }
    r->job.client = admission_client_tag(&r->adm); /* per-client fairness in the pool */
    if (r->adm.charged) {
        /* Metered: it pays for the CPU it uses, and stops at rate_limit_cpu_factor × its
         * price. A batch re-prices itself on its worker (req_batch_charge). */
        r->job.metered = true;
        req_set_cpu_limit(r);
        r->query.charge = req_batch_charge;
        r->query.charge_arg = r;
    }
    r->job.run = req_job_run;
    r->job.done = req_job_done;
    r->job.label = r->request_id;
    r->job.deadline_ns =
        s->cfg->request_timeout_ms ? r->t0_ns + (uint64_t)s->cfg->request_timeout_ms * 1000000u : 0;
    req_ref(r); /* the job's reference */
    if (trace_on()) r->tr_queued_ns = trace_now_ns();
    pthread_mutex_lock(&r->mu);
    int rc = pool_submit(s->pool, &r->job);
    if (rc == 0) {
        set_phase(r, PH_WAIT);
        req_suspend_locked(r);
    }
    pthread_mutex_unlock(&r->mu);
    if (rc == 0) return true;
    atomic_fetch_sub_explicit(&r->refs, 1, memory_order_relaxed); /* never submitted */
    if (rc == -EAGAIN) return req_queue_error(r, PERR_OVERLOADED, NULL, NULL, "job queue is full");
    if (rc == -ENOMEM) return req_queue_error(r, PERR_OVERLOADED, NULL, NULL, "no memory to queue");
    return req_queue_error(r, PERR_UNAVAILABLE, NULL, NULL, "server is shutting down");
}

/* After the worker resumed us. */
bool finish_wait(struct req *r)
{
    /* Nobody to answer: close the connection (on_completed logs 499). Abandoned at stop: the
     * worker may still be writing r->resp, so it is not read. */
    if (atomic_load_explicit(&r->client_gone, memory_order_relaxed) ||
        atomic_load_explicit(&r->srv->abandon, memory_order_acquire))
        return false;
    if (!r->is_stream) {
        /* The worker is done with the body (a batch borrowed it): its memory goes back now,
         * not when the answer has been sent. */
        api_query_fini(&r->query);
        reqbody_drop(&r->body, r->srv->api->mem);
        return req_queue_http(r, &r->resp);
    }
    int reason = atomic_load_explicit(&r->job.cancel, memory_order_acquire);
    if (stream_state(r->stream) == STREAM_S_FAILED_EMPTY) {
        if (reason == POOL_CANCEL_DEADLINE)
            return req_queue_error(r, PERR_DEADLINE, NULL, NULL,
                                   "request waited longer than request_timeout_ms");
        if (reason == POOL_CANCEL_SHUTDOWN || reason == POOL_CANCEL_CLIENT)
            return req_queue_error(r, PERR_UNAVAILABLE, NULL, NULL, "server is shutting down");
        if (reason == POOL_CANCEL_PRICE)
            return req_queue_error(r, PERR_RATE_LIMITED, NULL, NULL,
                                   "the request used more worker CPU than its price allows");
        return req_queue_error(r, PERR_INTERNAL, NULL, NULL, "stream failed");
    }
    return req_queue_stream(r);
}

/* The whole request (headers and body) is in: answer it here when that is cheap (errors, built-ins,
 * debug endpoints, API_ANSWERED), hold its 429 (tarpit), or hand it to a worker (submit). Returns
 * false when libmicrohttpd refused the answer (the connection is closed). */
static bool handle(struct req *r, const char *url)
{
    struct server *s = r->srv;
    if (r->uri_too_long) return req_queue_error(r, PERR_URI_TOO_LONG, NULL, NULL, NULL);
    if (r->too_many_args) {
        char msg[128];
        snprintf(msg, sizeof msg,
                 "more than %d query parameters, or more than connection_memory_limit can parse",
                 RAWREQ_MAX_QUERY_ARGS);
        return req_queue_error(r, PERR_LIMIT_EXCEEDED, NULL, NULL, msg);
    }
    const struct route *rt = NULL;
    enum router_result rr = router_match(r->lis->debug, r->method, url, &rt);
    r->route = rt;
    if (rr == ROUTER_NOT_FOUND) return req_queue_error(r, PERR_NOT_FOUND, NULL, NULL, NULL);
    if (rr == ROUTER_METHOD_NOT_ALLOWED)
        return req_queue_error(r, PERR_METHOD_NOT_ALLOWED, NULL, router_allow(rt), NULL);
    if (r->body_too_large) return req_queue_error(r, PERR_BODY_TOO_LARGE, NULL, NULL, NULL);
    if (r->over_budget)
        return req_queue_error(r, PERR_OVERLOADED, NULL, NULL, "request memory budget exhausted");
    if (r->over_share)
        return req_queue_error(r, PERR_OVERLOADED, NULL, NULL,
                               "this client holds its share of the request memory budget "
                               "(request_memory_per_client); retry when its other requests end");

    struct http_response *hr = &r->resp;
    if (rt->kind == ROUTE_K_DEBUG) {
        handlers_debug(s->cfg->debug_token, rt->id, &r->hreq, hr);
        return req_queue_http(r, hr);
    }
    /* ready and draining are written by the main thread; relaxed: a probe may see either
     * side of a concurrent change. */
    const struct handlers_status st = {
        .ready = atomic_load_explicit(&s->ready, memory_order_relaxed),
        .draining = atomic_load_explicit(&s->draining, memory_order_relaxed)};
    if (handlers_builtin(&s->handlers, rt->id, &st, hr)) return req_queue_http(r, hr);
    enum api_plan plan = api_prepare(s->api, rt->id, &r->hreq, &r->query, hr);
    if (!admission_admit(&s->adm, s->api, rt, plan, &r->query, r->client_addr, req_forwarded_for(r),
                         pool_now_ns(), &r->adm, hr)) {
        api_query_fini(&r->query);
        return tarpit(r);
    }
    if (plan == API_ANSWERED) return req_queue_http(r, hr);
    if (plan == API_STREAM && strcmp(r->method, "HEAD") == 0) return req_queue_stream_head(r);
    return submit(r, plan == API_STREAM);
}

/* The whole request is in: handle it, and during a capture show the I/O thread's part of it. */
bool dispatch_handle(struct req *r, const char *url)
{
    if (!trace_on()) return handle(r, url);
    uint64_t t0 = trace_now_ns();
    bool ok = handle(r, url);
    trace_req_span(r, "dispatch", t0);
    return ok;
}
