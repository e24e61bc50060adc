/* server.c — see server.h.
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
 * Suspend/resume ordering: libmicrohttpd forbids resuming a connection that is not suspended,
 * and a worker may finish before the I/O thread gets to suspend. So every suspend happens with
 * r->mu held and sets r->suspended; every resume happens after taking r->mu and clearing it
 * (req_wake). A stream reader suspends from inside stream_read's lock (park), so the producer's
 * wake, which follows its commit under that lock, always comes after the suspend.
 *
 * Clients that leave while their request is suspended: libmicrohttpd neither reads nor polls a
 * suspended connection, so a client that disconnects while its request waits for or runs on a
 * worker would only be noticed when the answer is written — after a π(1e17) that is minutes of
 * both cores. The hang-up watcher (watch_main) polls the sockets of suspended requests and
 * cancels their work (POOL_CANCEL_CLIENT); see "hang-up watcher" below.
 *
 * Request bodies: buffered in a struct reqbody (reqbody.c), every byte charged to the request
 * memory budget (reqmem.h) before it is held: a Content-Length whole before the body is read (503
 * at once, the connection closed as for 413, when it does not fit), a chunked body as its buffer
 * grows (the rest discarded and 503 at the end). Nothing reads the body on this thread; the API
 * parses it on a worker.
 *
 * Keep-alive: libmicrohttpd 0.9.75 closes the connection when a response is queued in the first
 * access-handler call (the body may be unread), so normal answers are queued only from the
 * second call on. The one exception is 413 from Content-Length, where closing is the point.
 */
#include "primed/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "admission.h"
#include "primed/errors.h"
#include "primed/http.h"
#include "primed/inflight.h"
#include "primed/log.h"
#include "primed/memwatch.h"
#include "primed/metrics.h"
#include "primed/reqmem.h"
#include "primed/router.h"
#include "primed/stream.h"
#include "handlers.h"
#include "netaddr.h"
#include "rawreq.h"
#include "reqbody.h"

/* Bytes libmicrohttpd asks the stream reader for at once (its write buffer per call). */
#define STREAM_READ_BLOCK (32u * 1024)
/* A stream buffer is split in blocks of at most this size (4 × 64 KiB by default). */
#define STREAM_BLOCK_BYTES (64u * 1024)
/* Connections the debug listener admits (profiles block their thread). */
#define DEBUG_MAX_CONNECTIONS 64
#define PATH_LOG_MAX 256
#define ADDR_MAX 64

struct server;

struct listener {
    struct server *srv;
    bool debug;
    struct MHD_Daemon *d;
    unsigned port;
};

enum phase {
    PH_NEW = 0, /* first access-handler call not seen yet */
    PH_BODY,    /* headers seen; reading the body (if any) */
    PH_WAIT,    /* handed to a worker; connection suspended until it resumes us */
    PH_TARPIT,  /* a 429 in r->resp, held: counted in watch.tarpitted until tarpit_release */
    PH_DONE,    /* a response was queued */
};

struct req {
    atomic_int refs;
    struct server *srv;
    struct listener *lis;
    struct MHD_Connection *conn;
    struct req *prev, *next; /* server's in-flight list, under srv->mu */

    /* Written by the I/O thread only; read (relaxed) by the /debug/requests snapshot too. */
    _Atomic(enum phase) phase;
    /* I/O thread only (the connection's daemon thread). */
    bool uri_too_long;
    bool too_many_args;  /* the query was cut off before libmicrohttpd parsed it: answer 400 */
    bool bad_bytes;      /* a control byte (NUL included) in the raw request target */
    const char *raw_uri; /* libmicrohttpd's buffer, valid until the first access-handler call */
    void **slot;         /* the connection's socket context (see on_connection) */
    bool started;        /* counted in server.nstarted; written under server.mu */
    bool body_too_large;
    bool over_budget; /* the body did not fit the request memory budget: 503 at the end */
    bool over_share;  /* … or its client's share of it (request_memory_per_client) */
    uint64_t client;  /* the client's tag (admission_client_of): request memory shares */
    /* A body in progress (see "request bodies" at the top): the I/O thread sets in_body when
     * the headers announce one and clears it when the body is complete or the request ends,
     * both under r->mu; while set the request is counted in server.nbody. body_deadline_ns is
     * pushed later by each arrival (relaxed: read by the watcher, which only compares). When
     * the watcher answers the request itself (408 past the deadline, 503 at a drain) it sets
     * `aborted` to the status under r->mu; the I/O thread then only closes the connection. */
    bool in_body;
    atomic_int aborted;
    atomic_uint_fast64_t body_deadline_ns;
    uint64_t body_t0_ns;
    uint64_t body_received; /* bytes that arrived, kept or discarded (I/O thread) */
    uint64_t t0_ns;
    size_t uri_len;
    /* path, client_addr and query are set before the request enters the in-flight list and
     * never change; method and request_id are set before `started` (under server.mu), so the
     * snapshot reads them under server.mu once it sees started. */
    char method[8];
    char path[PATH_LOG_MAX];
    char request_id[65];
    char client_addr[ADDR_MAX];
    char query_str[INFLIGHT_PARAMS_MAX]; /* the raw query string, cut: for /debug/requests */
    struct reqbody body;                 /* charged to the request memory budget; I/O thread only */
    const struct route *route;
    struct http_request hreq;
    int status;
    atomic_uint_fast64_t bytes; /* response bytes (the stream reader adds, the logger reads) */

    /* Written by the worker before `done`, read by the I/O thread after the resume (the
     * mutex/resume pair orders them). */
    struct http_response resp;
    struct api_query query;
    bool is_stream;
    struct stream *stream; /* owned; created on the I/O thread before submit */
    /* The same pointer, published (release) for server_cancel_all on the main thread. The
     * stream lives until the last unref, which follows removal from the in-flight list. */
    _Atomic(struct stream *) live_stream;
    struct pool_job job;
    /* Charged in handle (I/O thread), re-priced by a batch's worker (admission_batch_charge),
     * settled at the last unref, when the job's CPU is known (see admission.h). */
    struct admission_ticket adm;
    int final_status; /* what req_finish logged (I/O thread; read at the last unref) */
    bool answered;    /* libmicrohttpd completed the answer (req_finish) */

    pthread_mutex_t mu;       /* orders suspend before resume */
    bool suspended;           /* under mu */
    unsigned susp_gen;        /* under mu: +1 at every suspend (the hang-up watcher's fd check) */
    uint64_t tarpit_until_ns; /* PH_TARPIT: when the watcher resumes it (under mu) */
    int fd;                   /* the connection's socket (set at request start; libmicrohttpd's) */
    /* The hang-up watcher saw the client leave: no answer is queued (on_completed logs 499).
     * Set before the job's cancel, which the worker's resume orders before finish_wait reads it. */
    atomic_bool client_gone;
};

/* The hang-up watcher's state (see watch_main). Arrays sized once at start: cap requests. */
struct watched {
    struct req *r;
    unsigned gen;
};
struct hangup_watch {
    pthread_t thread;
    bool started;
    int wake_fd;                  /* eventfd: server_stop wakes the poll */
    atomic_bool stop;             /* written by server_stop, read by the watcher */
    unsigned cap;                 /* requests polled per round: both listeners' limits */
    struct watched *reqs;         /* [cap] */
    struct pollfd *pfd;           /* [cap + 1]: the wake fd first */
    atomic_uint_fast64_t cancels; /* requests cancelled because their client left */
    atomic_uint tarpitted;        /* 429s being held (rate_limit_delay_ms) */
};

struct server {
    const struct primed_config *cfg;
    struct pool *pool;
    struct api_ctx *api;
    struct listener main, debug;
    struct stream_budget *budget; /* borrowed (main.c's, shared with memwatch) */
    struct admission adm; /* per-client rate limits; read-only after create (internally locked) */
    /* /readyz. Written by the main thread (server_set_ready), read by I/O threads; relaxed:
     * a flag that publishes no other data, and a probe may see either side of a change. */
    atomic_bool ready;
    /* Connection: close on every response, /readyz 503. Written once by the main thread
     * (server_begin_drain), read relaxed by I/O threads, as `ready`. */
    atomic_bool draining;
    /* server_stop has begun: no request is handed to a worker any more (503 at once), so the
     * suspended connections can only decrease. Written by the main thread, read (relaxed) by
     * I/O threads; a request that misses it is counted in nsuspended, which server_stop waits
     * for. */
    atomic_bool stopping;
    /* Connections suspended by us (submit, req_park) and not resumed yet: libmicrohttpd aborts
     * when MHD_stop_daemon finds one. ++ under r->mu when suspending, -- in req_wake, which
     * then signals susp_cv (under susp_mu, so server_stop's check-then-wait cannot miss it). */
    atomic_uint nsuspended;
    /* Requests whose body is in progress (req.in_body): the hang-up watcher walks the list
     * while this or nsuspended is non-zero. ++/-- under r->mu by the I/O threads. */
    atomic_uint nbody;
    /* server_stop's last resort (abandon_suspended): work that did not stop within its bound
     * has its connection closed unanswered; no connection may be suspended any more. Written
     * once by the main thread (seq_cst, before the sweep), read by I/O threads. */
    atomic_bool abandon;
    pthread_mutex_t susp_mu;
    pthread_cond_t susp_cv;
    pthread_mutex_t mu;            /* the in-flight list */
    struct req *inflight, *oldest; /* newest first; oldest is the tail */
    unsigned ninflight;
    /* Of those, the ones whose headers are complete (the access handler has run): what a drain
     * waits for. A client that sent half its headers is not work in flight; the idle timeout or
     * the stop reaps it. Under mu. */
    unsigned nstarted;
    struct handlers handlers; /* the built-in endpoints; read-only after create */
    struct hangup_watch watch;
};

/* ---- request objects ----------------------------------------------------------------------- */

static void set_phase(struct req *r, enum phase ph)
{
    atomic_store_explicit(&r->phase, ph, memory_order_relaxed);
}

static enum phase phase_of(const struct req *r)
{
    return atomic_load_explicit(&r->phase, memory_order_relaxed);
}

static void req_unref(struct req *r)
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

static void req_ref(struct req *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

/* Suspend the connection (a worker, the stream or the watcher resumes it). r->mu held. */
static void req_suspend_locked(struct req *r)
{
    r->suspended = true;
    r->susp_gen++;
    atomic_fetch_add_explicit(&r->srv->nsuspended, 1, memory_order_relaxed);
    MHD_suspend_connection(r->conn);
}

/* Resume the connection if it is suspended. r->mu held. */
static void req_wake_locked(struct req *r)
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
static void req_wake(void *arg)
{
    struct req *r = arg;
    pthread_mutex_lock(&r->mu);
    req_wake_locked(r);
    pthread_mutex_unlock(&r->mu);
}

/* Stream producer resume (reader freed space, or cancel): run the parked job again. */
static void req_resume(void *arg)
{
    struct req *r = arg;
    pool_resume(r->srv->pool, &r->job);
}

/* Stream park: called by stream_read with the stream lock held (I/O thread). */
static void req_park(void *arg)
{
    struct req *r = arg;
    pthread_mutex_lock(&r->mu);
    /* Read under r->mu: either the sweep saw this request suspended, or this sees the flag.
     * Not suspending leaves stream_reader to be called again, and it then ends the answer. */
    if (atomic_load_explicit(&r->srv->abandon, memory_order_relaxed)) {
        pthread_mutex_unlock(&r->mu);
        return;
    }
    req_suspend_locked(r);
    pthread_mutex_unlock(&r->mu);
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
    size_t plen = strcspn(uri, "?");
    snprintf(r->path, sizeof r->path, "%.*s", (int)plen, uri);
    snprintf(r->query_str, sizeof r->query_str, "%s", uri[plen] ? uri + plen + 1 : "");
    client_addr(conn, r->client_addr, sizeof r->client_addr);
    const union MHD_ConnectionInfo *fi =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->fd = fi ? fi->connect_fd : -1;
    const char *q = strchr(uri, '?');
    if (q && !rawreq_query_fits(s->cfg->connection_memory_limit, r->uri_len, q + 1)) {
        r->too_many_args = true;
        /* This callback is the only hook before libmicrohttpd parses the query, and uri points
         * into its own writable read buffer (it NUL-splits the query there itself next): end
         * the query right after the '?' so that nothing is parsed. */
        ((char *)q)[1] = '\0';
    }
    /* The connection's socket context is a slot that names its unfinished request (see
     * on_connection), so a request libmicrohttpd abandons is still logged and freed. */
    const union MHD_ConnectionInfo *sc =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    r->slot = sc ? sc->socket_context : NULL;
    if (r->slot) *r->slot = r;
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

/* ---- responses ----------------------------------------------------------------------------- */

static void add_header(void *m, const char *name, const char *value)
{
    MHD_add_response_header(m, name, value);
}

static void add_common_headers(struct req *r, struct MHD_Response *m, const char *ctype)
{
    admission_headers(&r->adm, add_header, m);
    if (ctype) MHD_add_response_header(m, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(m, "X-Request-Id", r->request_id);
    MHD_add_response_header(m, "X-Content-Type-Options", "nosniff");
    if (atomic_load_explicit(&r->srv->draining, memory_order_relaxed))
        MHD_add_response_header(m, MHD_HTTP_HEADER_CONNECTION, "close");
}

/* Every 429 says when to come back. One built without a Retry-After (a metered request stopped
 * for using more CPU than its price, answered by the worker) gets one from the client's bucket
 * and what the request used, which settlement will charge. */
static void ensure_retry_after(struct req *r, struct http_response *hr)
{
    if (hr->status != 429) return;
    for (int i = 0; i < hr->nheaders; i++)
        if (strcasecmp(hr->headers[i].name, "Retry-After") == 0) return;
    char ra[24];
    snprintf(ra, sizeof ra, "%llu",
             (unsigned long long)admission_retry_after_s(&r->srv->adm, &r->adm,
                                                         pool_job_cpu_ns(&r->job)));
    http_response_header(hr, "Retry-After", ra);
}

/* Queue hr (its body moves to libmicrohttpd). */
static enum MHD_Result queue_http(struct req *r, struct http_response *hr)
{
    ensure_retry_after(r, hr);
    struct MHD_Response *m;
    if (hr->body == NULL || hr->body_len == 0) {
        m = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else if (hr->body_static) {
        m = MHD_create_response_from_buffer(hr->body_len, hr->body, MHD_RESPMEM_PERSISTENT);
    } else {
        m = MHD_create_response_from_buffer(hr->body_len, hr->body, MHD_RESPMEM_MUST_FREE);
        if (m) hr->body = NULL; /* libmicrohttpd frees it */
    }
    if (!m) return MHD_NO;
    add_common_headers(r, m, hr->content_type);
    for (int i = 0; i < hr->nheaders; i++)
        MHD_add_response_header(m, hr->headers[i].name, hr->headers[i].value);
    r->status = hr->status;
    /* Relaxed: a counter; the I/O thread (here, stream_reader) writes, req_finish on the same
     * thread and the /debug/requests snapshot read. */
    if (strcmp(r->method, "HEAD") != 0)
        atomic_store_explicit(&r->bytes, hr->body_len, memory_order_relaxed);
    set_phase(r, PH_DONE);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)hr->status, m);
    MHD_destroy_response(m);
    return ret;
}

static enum MHD_Result queue_error(struct req *r, enum primed_err e, const char *param,
                                   const char *allow, const char *msg)
{
    struct http_response hr;
    http_response_init(&hr);
    if (msg)
        errors_render(&hr, e, param, allow, "%s", msg);
    else
        errors_render(&hr, e, param, allow, NULL);
    enum MHD_Result ret = queue_http(r, &hr);
    http_response_fini(&hr);
    return ret;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct req *r = cls;
    size_t n = 0;
    if (atomic_load_explicit(&r->srv->abandon, memory_order_acquire))
        return MHD_CONTENT_READER_END_WITH_ERROR;
    switch (stream_read(r->stream, buf, max, &n, req_park, r)) {
    case STREAM_DATA:
        atomic_fetch_add_explicit(&r->bytes, n, memory_order_relaxed);
        return (ssize_t)n;
    case STREAM_EMPTY:
        return 0; /* suspended by req_park; the producer resumes us */
    case STREAM_EOF:
        return MHD_CONTENT_READER_END_OF_STREAM;
    default:
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

static void stream_reader_free(void *cls)
{
    req_unref(cls);
}

static enum MHD_Result queue_stream(struct req *r)
{
    struct MHD_Response *m = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, STREAM_READ_BLOCK, stream_reader, r, stream_reader_free);
    if (!m) return queue_error(r, PERR_INTERNAL, NULL, NULL, NULL);
    req_ref(r); /* the reader's reference, dropped by stream_reader_free */
    add_common_headers(r, m, api_stream_content_type(&r->query));
    r->status = 200;
    set_phase(r, PH_DONE);
    enum MHD_Result ret = MHD_queue_response(r->conn, MHD_HTTP_OK, m);
    MHD_destroy_response(m);
    return ret;
}

/* HEAD of a streamed list: the headers a GET would get, and no body, without creating a stream
 * or a job. A HEAD answer must never carry body bytes, yet libmicrohttpd 0.9.75 ends a chunked
 * (callback, unknown size) answer to HEAD with the terminator "0\r\n\r\n", which the next
 * response on a keep-alive connection then starts with (curl: "Received HTTP/0.9"; nginx with
 * upstream keep-alive: status "009"). A buffer answer has no such bytes; it says Content-Length:
 * 0, as the length of a list is not known before it is produced. */
static enum MHD_Result queue_stream_head(struct req *r)
{
    struct http_response *hr = &r->resp;
    http_response_static(hr, 200, api_stream_content_type(&r->query), "", 0);
    return queue_http(r, hr);
}

/* ---- jobs ---------------------------------------------------------------------------------- */

static enum pool_outcome req_job_run(struct pool_job *job, void *local)
{
    struct req *r = (struct req *)((char *)job - offsetof(struct req, job));
    const atomic_int *cancel = &job->cancel;
    if (r->is_stream) {
        /* The deadline covers the wait in the queue; once producing, the stream is paced by
         * its reader (and a stalled reader by the connection idle timeout). */
        if (local) pool_job_clear_deadline(r->srv->pool, job);
        return api_stream(r->srv->api, &r->query, local, r->stream, cancel);
    }
    return api_run(r->srv->api, &r->query, local, cancel, &r->resp);
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

/* At least 4 blocks (the producer fills one while the reader drains the others), at most
 * STREAM_BLOCK_BYTES each; the configuration allows buffers down to 4 KiB. */
static size_t stream_block_bytes(uint64_t capacity)
{
    uint64_t b = capacity / 4;
    return b > STREAM_BLOCK_BYTES ? STREAM_BLOCK_BYTES : (size_t)(b ? b : 1);
}

static enum MHD_Result submit(struct req *r, bool stream)
{
    struct server *s = r->srv;
    if (atomic_load_explicit(&s->stopping, memory_order_relaxed))
        return queue_error(r, PERR_UNAVAILABLE, NULL, NULL, "server is shutting down");
    if (memwatch_shedding() && api_query_expensive(&r->query)) {
        memwatch_note_shed();
        return queue_error(r, PERR_OVERLOADED, NULL, NULL,
                           "memory is above the high-water mark; retry later");
    }
    r->is_stream = stream;
    if (stream) {
        r->stream = stream_create(s->budget, s->cfg->stream_buffer_bytes,
                                  stream_block_bytes(s->cfg->stream_buffer_bytes), req_wake, r,
                                  req_resume, r);
        if (!r->stream)
            return queue_error(r, errno == EAGAIN ? PERR_OVERLOADED : PERR_INTERNAL, NULL, NULL,
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
    pthread_mutex_lock(&r->mu);
    int rc = pool_submit(s->pool, &r->job);
    if (rc == 0) {
        set_phase(r, PH_WAIT);
        req_suspend_locked(r);
    }
    pthread_mutex_unlock(&r->mu);
    if (rc == 0) return MHD_YES;
    atomic_fetch_sub_explicit(&r->refs, 1, memory_order_relaxed); /* never submitted */
    if (rc == -EAGAIN) return queue_error(r, PERR_OVERLOADED, NULL, NULL, "job queue is full");
    if (rc == -ENOMEM) return queue_error(r, PERR_OVERLOADED, NULL, NULL, "no memory to queue");
    return queue_error(r, PERR_UNAVAILABLE, NULL, NULL, "server is shutting down");
}

/* Over the rate limit: the 429 in r->resp is sent after rate_limit_delay_ms. A client that waits
 * for each answer (wrk, most scrapers, any keep-alive client) then sends a few requests per
 * connection per second, so a limited flood stops costing the I/O threads what serving it would
 * (~10 µs of CPU per 429), which was what the polite clients' latency paid for. The connection is
 * suspended and the hang-up watcher resumes it when due (its tick, WATCH_TICK_MS, is the
 * granularity) or when the client leaves. Bounded by the connection limits (a client's share:
 * max_connections_per_ip); gauge primed_ratelimit_delayed_answers. Draining or stopping: at once
 * (the watcher also releases those already held). */
static enum MHD_Result tarpit(struct req *r)
{
    struct server *s = r->srv;
    unsigned ms = s->cfg->rate_limit_delay_ms;
    if (ms == 0 || atomic_load_explicit(&s->stopping, memory_order_relaxed) ||
        atomic_load_explicit(&s->draining, memory_order_relaxed))
        return queue_http(r, &r->resp);
    reqbody_drop(&r->body, s->api->mem); /* a held 429 holds no body */
    atomic_fetch_add_explicit(&s->watch.tarpitted, 1, memory_order_relaxed);
    pthread_mutex_lock(&r->mu);
    r->tarpit_until_ns = pool_now_ns() + (uint64_t)ms * 1000000u;
    set_phase(r, PH_TARPIT);
    req_suspend_locked(r);
    pthread_mutex_unlock(&r->mu);
    return MHD_YES;
}

/* A held 429 is no longer held (about to be sent, or its connection ended first): leaves
 * PH_TARPIT, so it is counted out once. I/O thread (the only writer of the phase). */
static void tarpit_release(struct req *r)
{
    if (phase_of(r) != PH_TARPIT) return;
    set_phase(r, PH_DONE);
    atomic_fetch_sub_explicit(&r->srv->watch.tarpitted, 1, memory_order_relaxed);
}

/* After the watcher resumed a held 429. (A client that left may instead be seen by
 * libmicrohttpd first: then only on_completed runs, and req_finish releases it.) */
static enum MHD_Result finish_tarpit(struct req *r)
{
    tarpit_release(r);
    if (atomic_load_explicit(&r->client_gone, memory_order_relaxed)) return MHD_NO;
    return queue_http(r, &r->resp);
}

/* After the worker resumed us. */
static enum MHD_Result finish_wait(struct req *r)
{
    /* Nobody to answer: close the connection (on_completed logs 499). Abandoned at stop: the
     * worker may still be writing r->resp, so it is not read. */
    if (atomic_load_explicit(&r->client_gone, memory_order_relaxed) ||
        atomic_load_explicit(&r->srv->abandon, memory_order_acquire))
        return MHD_NO;
    if (!r->is_stream) {
        /* The worker is done with the body (a batch borrowed it): its memory goes back now,
         * not when the answer has been sent. */
        api_query_fini(&r->query);
        reqbody_drop(&r->body, r->srv->api->mem);
        return queue_http(r, &r->resp);
    }
    int reason = atomic_load_explicit(&r->job.cancel, memory_order_acquire);
    if (stream_state(r->stream) == STREAM_S_FAILED_EMPTY) {
        if (reason == POOL_CANCEL_DEADLINE)
            return queue_error(r, PERR_DEADLINE, NULL, NULL,
                               "request waited longer than request_timeout_ms");
        if (reason == POOL_CANCEL_SHUTDOWN || reason == POOL_CANCEL_CLIENT)
            return queue_error(r, PERR_UNAVAILABLE, NULL, NULL, "server is shutting down");
        if (reason == POOL_CANCEL_PRICE)
            return queue_error(r, PERR_RATE_LIMITED, NULL, NULL,
                               "the request used more worker CPU than its price allows");
        return queue_error(r, PERR_INTERNAL, NULL, NULL, "stream failed");
    }
    return queue_stream(r);
}

/* ---- handlers ------------------------------------------------------------------------------ */

/* Every X-Forwarded-For line joined with ", " (a proxy may append a line of its own rather than
 * extend the client's), keeping the rightmost bytes if they do not fit: that is the trusted end.
 * NULL when no proxy is trusted or there is no such header. */
#define XFF_MAX 1024
struct xff_buf {
    char s[XFF_MAX];
    size_t len;
};

static enum MHD_Result xff_it(void *cls, enum MHD_ValueKind kind, const char *key,
                              const char *value)
{
    struct xff_buf *x = cls;
    if (!value || strcasecmp(key, "X-Forwarded-For") != 0) return MHD_YES;
    size_t n = strlen(value), sep = x->len ? 2 : 0;
    if (n + sep >= XFF_MAX) { /* this line alone overflows: keep its tail */
        memcpy(x->s, value + n - (XFF_MAX - 1), XFF_MAX - 1);
        x->len = XFF_MAX - 1;
    } else {
        if (x->len + sep + n >= XFF_MAX) { /* drop the oldest (leftmost) bytes */
            size_t drop = x->len + sep + n - (XFF_MAX - 1);
            memmove(x->s, x->s + drop, x->len - drop);
            x->len -= drop;
        }
        if (sep) memcpy(x->s + x->len, ", ", 2);
        memcpy(x->s + x->len + sep, value, n);
        x->len += sep + n;
    }
    x->s[x->len] = '\0';
    return MHD_YES;
}

static const char *forwarded_for(struct req *r)
{
    static _Thread_local struct xff_buf x; /* I/O thread; used before the next request */
    if (!admission_wants_forwarded_for(&r->srv->adm)) return NULL;
    x.len = 0;
    x.s[0] = '\0';
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, xff_it, &x);
    return x.len ? x.s : NULL;
}

static enum MHD_Result handle(struct req *r, const char *url)
{
    struct server *s = r->srv;
    if (r->uri_too_long) return queue_error(r, PERR_URI_TOO_LONG, NULL, NULL, NULL);
    if (r->too_many_args) {
        char msg[128];
        snprintf(msg, sizeof msg,
                 "more than %d query parameters, or more than connection_memory_limit can parse",
                 RAWREQ_MAX_QUERY_ARGS);
        return queue_error(r, PERR_LIMIT_EXCEEDED, NULL, NULL, msg);
    }
    const struct route *rt = NULL;
    enum router_result rr = router_match(r->lis->debug, r->method, url, &rt);
    r->route = rt;
    if (rr == ROUTER_NOT_FOUND) return queue_error(r, PERR_NOT_FOUND, NULL, NULL, NULL);
    if (rr == ROUTER_METHOD_NOT_ALLOWED)
        return queue_error(r, PERR_METHOD_NOT_ALLOWED, NULL, router_allow(rt), NULL);
    if (r->body_too_large) return queue_error(r, PERR_BODY_TOO_LARGE, NULL, NULL, NULL);
    if (r->over_budget)
        return queue_error(r, PERR_OVERLOADED, NULL, NULL, "request memory budget exhausted");
    if (r->over_share)
        return queue_error(r, PERR_OVERLOADED, NULL, NULL,
                           "this client holds its share of the request memory budget "
                           "(request_memory_per_client); retry when its other requests end");

    struct http_response *hr = &r->resp;
    if (rt->kind == ROUTE_K_DEBUG) {
        handlers_debug(s->cfg->debug_token, rt->id, &r->hreq, hr);
        return queue_http(r, hr);
    }
    /* ready and draining are written by the main thread; relaxed: a probe may see either
     * side of a concurrent change. */
    const struct handlers_status st = {
        .ready = atomic_load_explicit(&s->ready, memory_order_relaxed),
        .draining = atomic_load_explicit(&s->draining, memory_order_relaxed)};
    if (handlers_builtin(&s->handlers, rt->id, &st, hr)) return queue_http(r, hr);
    enum api_plan plan = api_prepare(s->api, rt->id, &r->hreq, &r->query, hr);
    if (!admission_admit(&s->adm, s->api, rt, plan, &r->query, r->client_addr, forwarded_for(r),
                         pool_now_ns(), &r->adm, hr)) {
        api_query_fini(&r->query);
        return tarpit(r);
    }
    if (plan == API_ANSWERED) return queue_http(r, hr);
    if (plan == API_STREAM && strcmp(r->method, "HEAD") == 0) return queue_stream_head(r);
    return submit(r, plan == API_STREAM);
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

/* ---- request bodies ------------------------------------------------------------------------ */

/* Only POST takes a body, and only on a row that accepts POST: anything else with a body is
 * answered before a byte of it is read or charged (404, 405 or 413; libmicrohttpd then closes
 * the connection, the body unread). A body that is taken is charged as it arrives (reqbody.h)
 * to the budget and to the client's share, and must arrive by a deadline that each byte pushes
 * back (body_timeout_ms + 1 s per body_min_rate bytes, as Apache's mod_reqtimeout does): a
 * client trickling a byte at a time is answered 408 by the watcher, whatever it declared. */
static enum MHD_Result body_start(struct req *r, const char *method, const char *url)
{
    struct server *s = r->srv;
    struct MHD_Connection *conn = r->conn;
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
    unsigned long long n = 0;
    if (cl) {
        char *end;
        errno = 0;
        n = strtoull(cl, &end, 10);
        if (errno || *end || n > s->cfg->max_body_bytes)
            /* Early: the body is never read, so libmicrohttpd closes the connection. */
            return queue_error(r, PERR_BODY_TOO_LARGE, NULL, NULL,
                               "request body larger than max_body_bytes");
    }
    if (n == 0 && (cl || !te)) return MHD_YES; /* no body */
    const struct route *rt = NULL;
    enum router_result rr = router_match(r->lis->debug, method, url, &rt);
    r->route = rt;
    if (rr == ROUTER_NOT_FOUND) return queue_error(r, PERR_NOT_FOUND, NULL, NULL, NULL);
    if (rr == ROUTER_METHOD_NOT_ALLOWED)
        return queue_error(r, PERR_METHOD_NOT_ALLOWED, NULL, router_allow(rt), NULL);
    if (strcmp(method, "POST") != 0) {
        char msg[64];
        snprintf(msg, sizeof msg, "a %s request takes no body", r->method);
        return queue_error(r, PERR_BODY_TOO_LARGE, NULL, NULL, msg);
    }
    r->client = admission_client_of(&s->adm, r->client_addr, forwarded_for(r));
    reqbody_expect(&r->body, r->client, n);
    r->body_t0_ns = pool_now_ns();
    atomic_store_explicit(&r->body_deadline_ns,
                          r->body_t0_ns + (uint64_t)s->cfg->body_timeout_ms * 1000000u,
                          memory_order_relaxed);
    pthread_mutex_lock(&r->mu);
    r->in_body = true;
    atomic_fetch_add_explicit(&s->nbody, 1, memory_order_relaxed);
    pthread_mutex_unlock(&r->mu);
    return MHD_YES;
}

/* n more bytes arrived: push the deadline back by n / body_min_rate seconds. */
static void body_progress(struct req *r, size_t n)
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
static bool body_end(struct req *r)
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

/* The watcher answers a request whose body is in progress, on its own: libmicrohttpd 0.9.75
 * refuses to queue a response before the whole body is read (MHD_queue_response answers MHD_NO
 * in that state; tried), and a client that stopped sending never calls us again. So the answer
 * (from the error table, with the usual headers and Connection: close) is written to the socket
 * directly — libmicrohttpd writes nothing while it reads a body — and the socket is shut down
 * both ways, which its poll sees at once: it closes the connection and on_completed logs the
 * status. Best effort: a client whose receive window is closed gets only the close. The fd is
 * the connection's own: the request is in the in-flight list (under s->mu, held by the caller),
 * so on_completed has not run and libmicrohttpd has not closed the socket. r->mu held. */
static void body_abort_locked(struct req *r, enum primed_err e, const char *msg)
{
    struct http_response hr;
    http_response_init(&hr);
    errors_render(&hr, e, NULL, NULL, "%s", msg);
    char head[1024];
    size_t n = (size_t)snprintf(head, sizeof head,
                                "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                                "X-Request-Id: %s\r\nX-Content-Type-Options: nosniff\r\n"
                                "Connection: close\r\n",
                                hr.status, MHD_get_reason_phrase_for((unsigned)hr.status),
                                hr.content_type, hr.body_len, r->request_id);
    for (int i = 0; i < hr.nheaders && n < sizeof head; i++)
        n += (size_t)snprintf(head + n, sizeof head - n, "%s: %s\r\n", hr.headers[i].name,
                              hr.headers[i].value);
    if (n + 2 < sizeof head) {
        memcpy(head + n, "\r\n", 2);
        struct iovec iov[2] = {{head, n + 2}, {hr.body, hr.body_len}};
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
        ssize_t w = sendmsg(r->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) atomic_store_explicit(&r->bytes, hr.body_len, memory_order_relaxed);
    }
    shutdown(r->fd, SHUT_RDWR);
    atomic_store_explicit(&r->aborted, hr.status, memory_order_relaxed);
    http_response_fini(&hr);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    struct req *r = *con_cls;
    if (!r) return MHD_NO; /* out of memory at request start: drop the connection */
    struct server *s = r->srv;

    if (phase_of(r) == PH_NEW) {
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
            return queue_error(r, PERR_BAD_REQUEST, NULL, NULL,
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
            return queue_error(r, PERR_HEADERS_TOO_LARGE, NULL, NULL,
                               "request headers larger than connection_memory_limit/2");
        }
        const char *nul_key = NULL;
        MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, nul_arg_it, &nul_key);
        if (nul_key) {
            set_phase(r, PH_DONE);
            return queue_error(r, PERR_BAD_PARAM, nul_key, NULL,
                               "query parameter contains a NUL byte");
        }
        return body_start(r, method, url);
    }
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
        return handle(r, url);
    case PH_WAIT:
        return finish_wait(r);
    case PH_TARPIT:
        return finish_tarpit(r);
    default:
        return MHD_YES;
    }
}

/* The end of a request, answered or not: cancel its work, log it, count it, drop the
 * connection's reference. `unanswered` is the status logged when no response was queued. */
static void req_finish(struct req *r, int unanswered)
{
    struct server *s = r->srv;
    if (r->slot) *r->slot = r->slot; /* the connection has no unfinished request any more */
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

/* The socket context is a slot holding either its own address (no request in progress) or the
 * request the URI-log callback started and on_completed has not finished yet. libmicrohttpd
 * 0.9.75 skips the completion callback for a request it abandons while parsing the request line
 * (e.g. its pool ran out): that request is finished here, when the connection closes, as a 400
 * (libmicrohttpd answered it with its own error page, or not at all). No allocation: the slot is
 * libmicrohttpd's. Both callbacks run on the connection's I/O thread, completion first. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = socket_context;
        metrics_connections_add(1);
        return;
    }
    void *v = *socket_context;
    if (v != NULL && v != (void *)socket_context) req_finish(v, 400);
    *socket_context = NULL;
    metrics_connections_add(-1);
}

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
 * Rejected: watching all connections (races libmicrohttpd's own close; see start_listener), or
 * the worker peeking at the socket (the engine knows only its cancel flag). */
#define WATCH_TICK_MS 40

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
    w->pfd[0] = (struct pollfd){.fd = w->wake_fd, .events = POLLIN};
    while (!atomic_load_explicit(&w->stop, memory_order_acquire)) {
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

static void watch_stop(struct server *s)
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
static int watch_start(struct server *s)
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

/* ---- /debug/requests ----------------------------------------------------------------------- */

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
static int server_snapshot(void *arg, struct inflight_snapshot *snap)
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
    /* poll, not epoll, on the main listener: libmicrohttpd 0.9.75's epoll mode is edge-triggered
     * and drops a connection's read readiness after any short read, so a client whose last
     * bytes and FIN arrive together (send one byte, close) is never read again: its socket sat
     * in CLOSE-WAIT until the idle timeout, holding a connection slot and its address's share
     * of max_connections_per_ip. poll is level-triggered and sees the EOF on the next round.
     * Its cost is O(connections of the thread) per wake-up instead of O(ready ones): the same
     * CPU per request (~13 us) with a few connections, ~29 us instead of ~13 us with 500 idle
     * keep-alive connections open (docs/reliability.md). Rejected: epoll plus a short timeout
     * before the first request (misses a FIN that comes with the last bytes of a later
     * request), or a watcher thread of our own on the sockets (races libmicrohttpd's close
     * and fd reuse). */
    if (l->debug)
        flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL; /* profiles block */
    else
        flags |= MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME;
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
        unsigned t = netaddr_io_threads();
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
    if (handlers_init(&s->handlers) != 0) goto err;
    if (admission_init(&s->adm, cfg) != 0) goto err;
    if (metrics_register_collector(collect, s) != 0) goto err_adm;
    inflight_set_source(server_snapshot, s, cfg->workers);
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
err_metrics:
    inflight_set_source(NULL, NULL, 0);
    metrics_unregister_collector(collect, s);
err_adm:
    admission_fini(&s->adm);
err:
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
    admission_fini(&s->adm);
    pthread_cond_destroy(&s->susp_cv);
    pthread_mutex_destroy(&s->susp_mu);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
