/* server.c — the HTTP front end (server.h) and the lifecycle half of its libmicrohttpd adapter:
 * the daemons, the request object from its start to its completion (references, suspend/resume),
 * the access handler, drain and stop. Answers are respond.c's; what happens to a request between
 * its headers and its answer is dispatch.c's; the hang-up watcher is watch.c's.
 *
 * Lifetime of a request (struct req), shared by up to three parties, each holding one reference:
 *   - the connection: from the URI-log callback (request start) until NOTIFY_COMPLETED, or for a
 *     request libmicrohttpd abandons without that callback, until the connection closes (its
 *     socket context names the unfinished request; on_connection);
 *   - the pool job: taken just before pool_submit, dropped in the job's `done` callback (after
 *     the pool has forgotten the job);
 *   - a streamed response's reader: taken when the callback response is created, dropped in the
 *     response's free callback (libmicrohttpd may destroy the response after NOTIFY_COMPLETED).
 * The last unref frees the request, its body, its response and its stream.
 *
 * Suspend/resume ordering: libmicrohttpd forbids resuming a connection that is not suspended,
 * and a worker may finish before the I/O thread gets to suspend. So every suspend happens with
 * r->mu held and sets r->suspended; every resume happens after taking r->mu and clearing it
 * (req_wake). A stream reader suspends from inside stream_read's lock (park), so the producer's
 * wake, which follows its commit under that lock, always comes after the suspend.
 *
 * Keep-alive: libmicrohttpd 0.9.75 closes the connection when a response is queued in the first
 * access-handler call (the body may be unread), so normal answers are queued only from the
 * second call on. The one exception is 413 from Content-Length, where closing is the point.
 */
#include "primed/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admission.h"
#include "connsweep.h"
#include "primed/errors.h"
#include "primed/http.h"
#include "primed/inflight.h"
#include "primed/log.h"
#include "primed/metrics.h"
#include "primed/router.h"
#include "primed/stream.h"
#include "handlers.h"
#include "netaddr.h"
#include "rawreq.h"
#include "reqbody.h"
#include "server_int.h"

/* ---- request objects ----------------------------------------------------------------------- */

void req_unref(struct req *r)
{
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1) return;
    /* Every party is done, the job included (its CPU is final): settle the client's price. */
    admission_settle(&r->srv->adm, &r->adm, r->final_status, r->answered, pool_job_cpu_ns(&r->job));
    stream_destroy(r->stream); /* accepts NULL */
    api_query_fini(&r->query);
    http_response_fini(&r->resp);
    pthread_mutex_destroy(&r->mu);
    reqbody_drop(&r->body, r->srv->api->mem);
    free(r);
}

void req_ref(struct req *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

/* Suspend the connection (a worker, the stream or the watcher resumes it). r->mu held. */
void req_suspend_locked(struct req *r)
{
    r->suspended = true;
    r->susp_gen++;
    atomic_fetch_add_explicit(&r->srv->nsuspended, 1, memory_order_relaxed);
    MHD_suspend_connection(r->conn);
}

/* Resume the connection if it is suspended. r->mu held. */
void req_wake_locked(struct req *r)
{
    bool was = r->suspended;
    r->suspended = false;
    if (was) {
        MHD_resume_connection(r->conn);
        if (atomic_fetch_sub_explicit(&r->srv->nsuspended, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&r->srv->susp_mu);
            pthread_cond_broadcast(&r->srv->susp_cv);
            pthread_mutex_unlock(&r->srv->susp_mu);
        }
    }
}

/* Resume the connection if it is suspended. Any thread. */
void req_wake(void *arg)
{
    struct req *r = arg;
    pthread_mutex_lock(&r->mu);
    req_wake_locked(r);
    pthread_mutex_unlock(&r->mu);
}

/* Stream producer resume (reader freed space, or cancel): run the parked job again. */
void req_resume(void *arg)
{
    struct req *r = arg;
    pool_resume(r->srv->pool, &r->job);
}

static const char *req_get_arg(const struct http_request *hr, const char *name)
{
    struct req *r = hr->impl;
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

static const char *req_get_header(const struct http_request *hr, const char *name)
{
    struct req *r = hr->impl;
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

struct each_ctx {
    void (*fn)(void *arg, const char *name, const char *value);
    void *arg;
};

static enum MHD_Result each_arg_it(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct each_ctx *e = cls;
    e->fn(e->arg, key, value);
    return MHD_YES;
}

static void req_each_arg(const struct http_request *hr,
                         void (*fn)(void *arg, const char *name, const char *value), void *arg)
{
    struct req *r = hr->impl;
    struct each_ctx e = {fn, arg};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, each_arg_it, &e);
}

/* MHD hands query values to us as C strings; a percent-encoded NUL (%00) would silently cut
 * "7%00junk" down to "7". The _n iterator gives the real lengths, so such a request is refused. */
static enum MHD_Result nul_arg_it(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
    const char **bad = cls;
    if (strlen(key) != key_size || (value && strlen(value) != value_size)) {
        *bad = key;
        return MHD_NO;
    }
    return MHD_YES;
}

/* The client's address as text (once per connection: its record keeps it). */
static void client_addr(struct MHD_Connection *c, char *out, size_t outlen)
{
    snprintf(out, outlen, "-");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr) return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)outlen);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)outlen);
}

/* URI-log callback: the start of every request; its result becomes *con_cls. */
static void *on_request_start(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct listener *l = cls;
    struct server *s = l->srv;
    struct req *r = calloc(1, sizeof *r);
    if (!r) return NULL;      /* the access handler answers 500 */
    atomic_init(&r->refs, 1); /* the connection's reference */
    atomic_init(&r->bytes, 0);
    atomic_init(&r->job.cancel, 0); /* before the list insert: server_cancel_all may set it */
    atomic_init(&r->job.cpu_ns, 0);
    atomic_init(&r->job.cpu_limit_ns, 0);
    atomic_init(&r->live_stream, NULL);
    atomic_init(&r->phase, PH_NEW);
    atomic_init(&r->client_gone, false);
    atomic_init(&r->aborted, 0);
    atomic_init(&r->body_deadline_ns, 0);
    atomic_init(&r->tr_started_ns, 0);
    atomic_init(&r->tr_ran_ns, 0);
    atomic_init(&r->tr_worker, 0);
    pthread_mutex_init(&r->mu, NULL);
    http_response_init(&r->resp);
    r->srv = s;
    r->lis = l;
    r->conn = conn;
    r->t0_ns = pool_now_ns();
    r->uri_len = strlen(uri);
    r->uri_too_long = r->uri_len > s->cfg->max_uri_bytes;
    r->raw_uri = uri;
    r->bad_bytes = rawreq_has_control_byte(uri);
    /* Cut copies (not snprintf: 0.1 us); the arrays' last bytes stay zero from calloc. */
    size_t plen = strcspn(uri, "?"), qlen = uri[plen] ? r->uri_len - plen - 1 : 0;
    memcpy(r->path, uri, plen < sizeof r->path ? plen : sizeof r->path - 1);
    memcpy(r->query_str, uri + plen + (qlen > 0),
           qlen < sizeof r->query_str ? qlen : sizeof r->query_str - 1);
    /* The connection's record (on_connection): its fd, address, and unfinished request. */
    const union MHD_ConnectionInfo *sc =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn *cn = sc ? sc->socket_context : NULL;
    snprintf(r->client_addr, sizeof r->client_addr, "%s", cn ? cn->addr : "-");
    r->fd = cn ? cn->fd : -1;
    r->slot = cn ? &cn->cur : NULL;
    if (r->slot) *r->slot = r;
    const char *q = strchr(uri, '?');
    if (q && !rawreq_query_fits(s->cfg->connection_memory_limit, r->uri_len, q + 1)) {
        r->too_many_args = true;
        /* This callback is the only hook before libmicrohttpd parses the query, and uri points
         * into its own writable read buffer (it NUL-splits the query there itself next): end
         * the query right after the '?' so that nothing is parsed. */
        ((char *)q)[1] = '\0';
    }
    pthread_mutex_lock(&s->mu);
    r->next = s->inflight;
    if (s->inflight)
        s->inflight->prev = r;
    else
        s->oldest = r;
    s->inflight = r;
    s->ninflight++;
    pthread_mutex_unlock(&s->mu);
    return r;
}

static enum MHD_Result header_bytes_it(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    *(size_t *)cls += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
    return MHD_YES;
}

static enum MHD_Result raw_header_it(void *cls, enum MHD_ValueKind kind, const char *key,
                                     size_t key_size, const char *value, size_t value_size)
{
    return rawreq_walk_header(cls, key, key_size, value, value_size) ? MHD_YES : MHD_NO;
}

/* Control bytes or a NUL in the request line or a header (rawreq.c says how and why). */
static bool raw_request_ok(struct req *r, const char *method, const char *version)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (!ci || !ci->header_size || !version || !*version) return true; /* nothing to compare */
    struct rawreq_walk w;
    if (!rawreq_walk_start(&w, method, ci->header_size, r->raw_uri, r->uri_len, version))
        return false;
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, raw_header_it, &w);
    return rawreq_walk_end(&w);
}

/* libmicrohttpd's result from ours: false closes the connection. */
static enum MHD_Result mhd_result(bool keep)
{
    return keep ? MHD_YES : MHD_NO;
}

/* The first access-handler call: the headers are in. Name the request, check the raw request
 * and the headers, and start reading the body (dispatch.c). Returns false to close. */
static bool req_headers(struct req *r, struct MHD_Connection *conn, const char *url,
                        const char *method, const char *version)
{
    struct server *s = r->srv;
    set_phase(r, PH_BODY);
    snprintf(r->method, sizeof r->method, "%s", method);
    const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (!rid || log_sanitize_request_id(rid, r->request_id, sizeof r->request_id) != 0)
        log_new_request_id(r->request_id);
    pthread_mutex_lock(&s->mu);
    r->started = true;
    s->nstarted++;
    pthread_mutex_unlock(&s->mu);
    r->hreq = (struct http_request){.method = r->method,
                                    .path = url,
                                    .request_id = r->request_id,
                                    .client_addr = r->client_addr,
                                    .get_arg = req_get_arg,
                                    .get_header = req_get_header,
                                    .each_arg = req_each_arg,
                                    .impl = r};
    if (r->bad_bytes || !raw_request_ok(r, method, version)) {
        set_phase(r, PH_DONE);
        return req_queue_error(r, PERR_BAD_REQUEST, NULL, NULL,
                               "control byte or NUL in the request target or a header");
    }
    r->raw_uri = NULL; /* libmicrohttpd's buffer, no longer needed */
    /* libmicrohttpd answers headers that overflow the connection's memory itself (431 with
     * an HTML body, or 414 when the request line alone does); headers above half of that
     * memory get our JSON 431 first. The other half is the read and write buffers. */
    size_t hbytes = 0;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, header_bytes_it, &hbytes);
    if (hbytes > s->cfg->connection_memory_limit / 2) {
        set_phase(r, PH_DONE);
        return req_queue_error(r, PERR_HEADERS_TOO_LARGE, NULL, NULL,
                               "request headers larger than connection_memory_limit/2");
    }
    const char *nul_key = NULL;
    MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, nul_arg_it, &nul_key);
    if (nul_key) {
        set_phase(r, PH_DONE);
        return req_queue_error(r, PERR_BAD_PARAM, nul_key, NULL,
                               "query parameter contains a NUL byte");
    }
    return body_start(r, method, url);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    struct req *r = *con_cls;
    if (!r) return MHD_NO; /* out of memory at request start: drop the connection */
    struct server *s = r->srv;

    if (phase_of(r) == PH_NEW) return mhd_result(req_headers(r, conn, url, method, version));
    if (atomic_load_explicit(&r->aborted, memory_order_relaxed))
        return MHD_NO; /* the watcher answered it (408, 503) and shut the socket: close */
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        body_progress(r, n);
        if (r->body_too_large || r->over_budget || r->over_share)
            return MHD_YES; /* discard, answer at the end */
        int rc = reqbody_append(&r->body, s->api->mem, s->cfg->max_body_bytes, upload_data, n);
        if (rc == -EFBIG) r->body_too_large = true; /* answered once the rest is read */
        if (rc == -EAGAIN) r->over_budget = true;
        if (rc == -EDQUOT) r->over_share = true;
        return rc == -ENOMEM ? MHD_NO : MHD_YES;
    }
    switch (phase_of(r)) {
    case PH_BODY:
        if (!body_end(r)) return MHD_NO; /* the watcher answered it first: close */
        r->hreq.body = r->body.buf;
        r->hreq.body_len = r->body.len;
        r->hreq.path = url;
        return mhd_result(dispatch_handle(r, url));
    case PH_WAIT:
        return mhd_result(finish_wait(r));
    case PH_TARPIT:
        return mhd_result(finish_tarpit(r));
    default:
        return MHD_YES;
    }
}

/* The end of a request, answered or not: cancel its work, log it, count it, drop the
 * connection's reference. `unanswered` is the status logged when no response was queued. */
static void req_finish(struct req *r, int unanswered)
{
    struct server *s = r->srv;
    if (r->slot) *r->slot = NULL; /* the connection has no unfinished request any more */
    tarpit_release(r);
    /* Whatever the reason, the answer is no longer wanted: a client that went away, a timeout.
     * Stops a producing worker within one segment. */
    if (phase_of(r) == PH_WAIT || r->is_stream) {
        pool_job_cancel(&r->job, POOL_CANCEL_CLIENT);
        if (r->stream) stream_cancel(r->stream);
    }
    body_end(r);
    int aborted = atomic_load_explicit(&r->aborted, memory_order_relaxed);
    if (aborted) unanswered = aborted;
    uint64_t dur_ns = pool_now_ns() - r->t0_ns;
    int status = r->status ? r->status : unanswered;
    uint64_t bytes = atomic_load_explicit(&r->bytes, memory_order_relaxed); /* same thread */
    struct log_request_rec rec = {.request_id = r->request_id[0] ? r->request_id : NULL,
                                  .method = r->method[0] ? r->method : "-",
                                  .path = r->path,
                                  .client_addr = r->client_addr,
                                  .status = status,
                                  .bytes = bytes,
                                  .duration_us = dur_ns / 1000};
    log_request(&rec);
    /* unanswered is 0 exactly when libmicrohttpd completed the answer (on_completed). The
     * price is settled at the last unref, once the job (which may still run) has stopped. */
    r->final_status = status;
    r->answered = unanswered == 0;
    metrics_observe_request(router_label_index(r->route), r->method, status, (double)dur_ns / 1e9,
                            bytes);
    dispatch_trace_done(r, status, bytes);

    pthread_mutex_lock(&s->mu);
    if (r->prev)
        r->prev->next = r->next;
    else
        s->inflight = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        s->oldest = r->prev;
    s->ninflight--;
    if (r->started) s->nstarted--;
    pthread_mutex_unlock(&s->mu);
    req_unref(r); /* the connection's reference */
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct req *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    /* Not answered by us: libmicrohttpd's own error page (e.g. 431 for headers that overflow
     * its pool) if it queued one, else 499: the client went away or timed out first. */
    int unanswered = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? 0 : 499;
    const union MHD_ConnectionInfo *ci =
        r->status ? NULL : MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
    if (ci && ci->http_status) unanswered = (int)ci->http_status;
    req_finish(r, unanswered);
}

/* The socket context is the connection's record (connsweep.h; the main listener's are swept).
 * Its `cur` names a request on_completed has not finished: libmicrohttpd 0.9.75 skips that
 * callback for a request it abandons while parsing the request line (its pool ran out), which is
 * finished here as a 400. Both run on the connection's I/O thread, completion first. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct listener *l = cls;
    struct connsweep *cs = l->debug ? NULL : &l->srv->sweep;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        char addr[CONN_ADDR_MAX];
        client_addr(conn, addr, sizeof addr);
        const union MHD_ConnectionInfo *fi =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = connsweep_add(cs, fi ? fi->connect_fd : -1, addr);
        metrics_connections_add(1);
        return;
    }
    struct conn *cn = *socket_context;
    if (cn && cn->cur) req_finish(cn->cur, 400);
    connsweep_remove(cs, cn);
    *socket_context = NULL;
    metrics_connections_add(-1);
}

/* ---- metrics ------------------------------------------------------------------------------- */

/* The server's own numbers; the pool and the stream budget register their own collectors. */
static void collect(void *arg, struct metrics_writer *w)
{
    metrics_write_one(w, "primed_inflight_requests", "gauge", "Requests in flight.",
                      server_inflight(arg));
    struct server *s = arg;
    metrics_write_one(w, "primed_client_hangups_total", "counter",
                      "Requests cancelled because their client left while they were queued or "
                      "running on a worker.",
                      (double)atomic_load_explicit(&s->watch.cancels, memory_order_relaxed));
    metrics_write_one(w, "primed_ratelimit_delayed_answers", "gauge",
                      "429 answers being held for rate_limit_delay_ms before they are sent.",
                      (double)atomic_load_explicit(&s->watch.tarpitted, memory_order_relaxed));
}

/* ---- daemons ------------------------------------------------------------------------------- */

static int start_listener(struct server *s, struct listener *l, const char *host, unsigned port)
{
    const struct primed_config *c = s->cfg;
    struct sockaddr_storage ss;
    socklen_t sl;
    if (netaddr_resolve(host, port, &ss, &sl) != 0) {
        log_event(LOG_ERROR, "listen_failed", "cannot resolve listen address", "host", host, NULL);
        return -1;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    /* epoll on the main listener: O(ready connections) per wake-up, so idle keep-alive
     * connections cost nothing. Its edge-triggered mode can miss a FIN that comes with the last
     * bytes; the half-close sweep makes up for it (connsweep.c; poll, the alternative, cost
     * twice the CPU per request with 500 idle connections open: docs/reliability.md). */
    if (l->debug)
        flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL; /* profiles block */
    else
        flags |= MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    struct MHD_OptionItem ops[16];
    int n = 0;
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_request_start, l};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, l};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, l};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, c->connection_timeout, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                       (intptr_t)c->connection_memory_limit, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL};
    if (!l->debug) {
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
                                           netaddr_connection_limit(c->max_connections), NULL};
        if (c->max_connections_per_ip)
            ops[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                               c->max_connections_per_ip, NULL};
        unsigned t = netaddr_io_threads(c->io_threads);
        if (t > 1) ops[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, t, NULL};
    } else {
        ops[n++] =
            (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, DEBUG_MAX_CONNECTIONS, NULL};
    }
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    l->d =
        MHD_start_daemon(flags, 0, NULL, NULL, on_access, l, MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
    if (!l->d) {
        char ps[8];
        snprintf(ps, sizeof ps, "%u", port);
        log_event(LOG_ERROR, "listen_failed", "cannot start listener", "host", host, "port", ps,
                  NULL);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_BIND_PORT);
    l->port = di ? di->port : port;
    return 0;
}

struct server *server_create(const struct primed_config *cfg, struct pool *pool,
                             struct api_ctx *api, struct stream_budget *budget)
{
    struct server *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->cfg = cfg;
    s->pool = pool;
    s->api = api;
    s->budget = budget;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->susp_mu, NULL);
    pthread_cond_init(&s->susp_cv, NULL);
    /* Idle buffers for reuse: two per worker (one finishing, one starting), and never more than
     * 1/16 of the budget in force now (clamped to the memory limit). */
    uint64_t cache_max = stream_budget_limit(budget) / 16 / cfg->stream_buffer_bytes;
    if (cache_max > 2 * (uint64_t)cfg->workers) cache_max = 2 * (uint64_t)cfg->workers;
    stream_budget_set_cache(budget, cfg->stream_buffer_bytes,
                            stream_block_bytes(cfg->stream_buffer_bytes), (size_t)cache_max);
    s->watch.wake_fd = -1;
    atomic_init(&s->watch.stop, false);
    atomic_init(&s->watch.cancels, 0);
    atomic_init(&s->watch.tarpitted, 0);
    atomic_init(&s->abandon, false);
    s->main = (struct listener){.srv = s, .debug = false};
    s->debug = (struct listener){.srv = s, .debug = true};
    if (handlers_init(&s->handlers, cfg) != 0) goto err_handlers;
    if (admission_init(&s->adm, cfg) != 0) goto err_handlers;
    if (metrics_register_collector(collect, s) != 0) goto err_adm;
    inflight_set_source(server_snapshot, s, cfg->workers);
    if (connsweep_init(&s->sweep, cfg->max_connections) != 0) goto err_metrics;
    if (watch_start(s) != 0) {
        log_event(LOG_ERROR, "start_failed", "cannot start the hang-up watcher", NULL);
        goto err_metrics;
    }
    if (start_listener(s, &s->main, cfg->listen_host, cfg->listen_port) != 0) goto err_watch;
    if (cfg->debug_enabled && start_listener(s, &s->debug, cfg->debug_host, cfg->debug_port) != 0)
        goto err_main;
    if (cfg->port_file[0] &&
        netaddr_write_port_file(cfg->port_file, s->main.port, s->debug.port) != 0) {
        log_event(LOG_ERROR, "port_file_failed", strerror(errno), "path", cfg->port_file, NULL);
        goto err_debug;
    }
    return s;

err_debug:
    if (s->debug.d) MHD_stop_daemon(s->debug.d);
err_main:
    MHD_stop_daemon(s->main.d);
err_watch:
    watch_stop(s);
    connsweep_fini(&s->sweep);
err_metrics:
    inflight_set_source(NULL, NULL, 0);
    metrics_unregister_collector(collect, s);
err_adm:
    admission_fini(&s->adm);
err_handlers:
    handlers_fini(&s->handlers);
    pthread_cond_destroy(&s->susp_cv);
    pthread_mutex_destroy(&s->susp_mu);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return NULL;
}

void server_set_ready(struct server *s, bool ready)
{
    atomic_store_explicit(&s->ready, ready, memory_order_relaxed);
}

void server_ports(const struct server *s, unsigned *main_port, unsigned *debug_port)
{
    *main_port = s->main.port;
    *debug_port = s->debug.port;
}

void server_begin_drain(struct server *s)
{
    atomic_store_explicit(&s->draining, true, memory_order_relaxed);
    MHD_socket fd = MHD_quiesce_daemon(s->main.d);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    /* Only work that has started is drained. Jobs still queued are answered now (503
     * unavailable, Connection: close); bodies still arriving are answered by the hang-up
     * watcher on its next tick, and held 429s are sent by it too. So a client that makes no
     * progress, or work behind a long queue, cannot hold the drain for shutdown_timeout. */
    unsigned n = pool_cancel_queued(s->pool, POOL_CANCEL_SHUTDOWN);
    if (n) {
        char ns[16];
        snprintf(ns, sizeof ns, "%u", n);
        log_event(LOG_INFO, "drain_queued_answered", "queued requests answered 503", "requests", ns,
                  NULL);
    }
}

unsigned server_inflight(struct server *s)
{
    pthread_mutex_lock(&s->mu);
    unsigned n = s->nstarted;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void server_cancel_all(struct server *s)
{
    pthread_mutex_lock(&s->mu);
    for (struct req *r = s->inflight; r; r = r->next) {
        pool_job_cancel(&r->job, POOL_CANCEL_SHUTDOWN);
        struct stream *st = atomic_load_explicit(&r->live_stream, memory_order_acquire);
        if (st) stream_cancel(st);
    }
    pthread_mutex_unlock(&s->mu);
}

/* Resume every suspended connection whose work has not ended (see `abandon`). The job keeps
 * its reference and frees the request when it finally ends. Returns how many. */
static unsigned abandon_suspended(struct server *s)
{
    unsigned n = 0;
    atomic_store_explicit(&s->abandon, true, memory_order_seq_cst);
    pthread_mutex_lock(&s->mu);
    for (struct req *r = s->inflight; r; r = r->next) {
        pthread_mutex_lock(&r->mu);
        n += r->suspended;
        req_wake_locked(r);
        pthread_mutex_unlock(&r->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

void server_stop(struct server *s)
{
    if (!s) return;
    /* A request may have reached a worker (or a stream reader may have parked) after the drain
     * saw nothing in flight: stop new hand-offs, cancel what is left, and wait (bounded) until
     * every connection we suspended has been resumed, or libmicrohttpd aborts the process. */
    /* seq_cst, not release: this store and the load of nsuspended below are a store-then-load
     * pair, which only seq_cst keeps in order (release/acquire would let the load move up). */
    atomic_store_explicit(&s->stopping, true, memory_order_seq_cst);
    server_cancel_all(s);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5; /* cancelled jobs stop within a segment; see below if one does not */
    pthread_mutex_lock(&s->susp_mu);
    while (atomic_load_explicit(&s->nsuspended, memory_order_acquire) > 0)
        if (pthread_cond_timedwait(&s->susp_cv, &s->susp_mu, &until) == ETIMEDOUT) break;
    pthread_mutex_unlock(&s->susp_mu);
    /* Work that ignores its cancel for 5 s (a bug; before the sieving-prime table's build polled
     * the flag, a sanitizer build's first table to 1e9 did): libmicrohttpd aborts the process if
     * it is stopped with a suspended connection, so those connections are closed unanswered. */
    if (atomic_load_explicit(&s->nsuspended, memory_order_acquire) > 0) {
        char ns[16];
        snprintf(ns, sizeof ns, "%u", abandon_suspended(s));
        log_event(LOG_WARN, "stop_abandoned", "closing connections whose work did not stop",
                  "requests", ns, NULL);
    }
    watch_stop(s); /* after the wait: it releases a 429 held by a request that missed `stopping` */
    if (s->debug.d) MHD_stop_daemon(s->debug.d);
    if (s->main.d) MHD_stop_daemon(s->main.d);
    s->debug.d = s->main.d = NULL;
    inflight_set_source(NULL, NULL, 0);
    metrics_unregister_collector(collect, s);
}

void server_destroy(struct server *s)
{
    if (!s) return;
    server_stop(s);
    connsweep_fini(&s->sweep); /* after the daemons: every connection has been removed */
    admission_fini(&s->adm);
    handlers_fini(&s->handlers);
    pthread_cond_destroy(&s->susp_cv);
    pthread_mutex_destroy(&s->susp_mu);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
