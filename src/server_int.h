/* server_int.h — the HTTP front end's internals, shared by its files: the request object
 * (struct req), the server (struct server), the listeners and the hang-up watcher's state.
 *
 * server.c and respond.c are the libmicrohttpd adapter (the only users of <microhttpd.h>);
 * dispatch.c, watch.c and inflight_view.c see the connection only as the opaque pointers below
 * and act on it through the adapter's functions declared here. Internal, so beside the sources.
 */
#ifndef PRIMED_SERVER_INT_H
#define PRIMED_SERVER_INT_H

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admission.h"
#include "connsweep.h"
#include "handlers.h"
#include "primed/api.h"
#include "primed/assert.h"
#include "primed/config.h"
#include "primed/errors.h"
#include "primed/http.h"
#include "primed/inflight.h"
#include "primed/pool.h"
#include "primed/stream.h"
#include "reqbody.h"

/* libmicrohttpd's handles, opaque outside the adapter (server.c, respond.c). */
struct MHD_Daemon;
struct MHD_Connection;

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
    /* A body in progress (see "request bodies" at the top of dispatch.c): the I/O thread sets
     * in_body when the headers announce one and clears it when the body is complete or the request
     * ends, both under r->mu; while set the request is counted in server.nbody. body_deadline_ns is
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
    /* Its trace (trace.h), while a capture runs: when the I/O thread handed it to the pool (I/O
     * thread; the worker reads it after pool_submit's lock), when a worker first began and ended
     * a run, and which (written by the worker, read relaxed by the I/O thread at the end: a
     * stream may end while its producer still runs). 0 = not seen during a capture. */
    uint64_t tr_queued_ns;
    atomic_uint_fast64_t tr_started_ns, tr_ran_ns;
    atomic_int tr_worker;
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
    struct connsweep sweep; /* the main listener's connections (internally locked) */
};
/* The phase is written by the I/O thread only and read (relaxed) by the /debug/requests
 * snapshot and the hang-up watcher too. */
static inline void set_phase(struct req *r, enum phase ph)
{
    /* The phases move one way: NEW -> BODY once (the first access-handler call), BODY -> WAIT
     * (handed to the pool) or BODY -> TARPIT (a held 429), and DONE from any phase, again after
     * DONE too (an error queued, or a tarpit released, then its answer queued). A request that
     * goes back (WAIT after DONE, BODY twice) would be answered or counted twice. */
    enum phase old = atomic_load_explicit(&r->phase, memory_order_relaxed);
    PRIMED_ASSERT(ph == PH_DONE || (ph == PH_BODY && old == PH_NEW) ||
                  ((ph == PH_WAIT || ph == PH_TARPIT) && old == PH_BODY));
    (void)old;
    atomic_store_explicit(&r->phase, ph, memory_order_relaxed);
}

static inline enum phase phase_of(const struct req *r)
{
    return atomic_load_explicit(&r->phase, memory_order_relaxed);
}

/* At least 4 blocks (the producer fills one while the reader drains the others), at most
 * STREAM_BLOCK_BYTES each; the configuration allows buffers down to 4 KiB. */
static inline size_t stream_block_bytes(uint64_t capacity)
{
    uint64_t b = capacity / 4;
    return b > STREAM_BLOCK_BYTES ? STREAM_BLOCK_BYTES : (size_t)(b ? b : 1);
}

/* ---- server.c: request objects and suspend/resume (the adapter) ---------------------------- */

void req_ref(struct req *r);
/* Drop one reference; the last frees the request (see the top of server.c). */
void req_unref(struct req *r);
/* Suspend the connection (a worker, the stream or the watcher resumes it). r->mu held. */
void req_suspend_locked(struct req *r);
/* Resume the connection if it is suspended. r->mu held. */
void req_wake_locked(struct req *r);
/* Resume the connection if it is suspended. Any thread. */
void req_wake(void *arg);
/* Stream producer resume (reader freed space, or cancel): run the parked job again. */
void req_resume(void *arg);

/* ---- respond.c: answers (the adapter) --------------------------------------------------------
 * Each returns false when libmicrohttpd refused the answer: the connection is then closed. */

/* Queue hr (its body moves to libmicrohttpd). */
bool req_queue_http(struct req *r, struct http_response *hr);
/* Queue an answer from the error table (msg: NULL for the table's default message). */
bool req_queue_error(struct req *r, enum primed_err e, const char *param, const char *allow,
                     const char *msg);
/* Queue the streamed answer of r->stream (takes the reader's reference). */
bool req_queue_stream(struct req *r);
/* HEAD of a streamed list: the headers a GET would get and no body (see respond.c). */
bool req_queue_stream_head(struct req *r);
/* Answer a request whose body is still arriving straight on its socket and shut it (see
 * respond.c). s->mu and r->mu held. */
void body_abort_locked(struct req *r, enum primed_err e, const char *msg);
/* Every X-Forwarded-For line of the request joined (see respond.c), or NULL. I/O thread; valid
 * until its next call on that thread. */
const char *req_forwarded_for(struct req *r);

/* ---- dispatch.c: from headers to a worker and back ------------------------------------------ */

/* The headers are in: check the announced body and start reading it (see dispatch.c). */
bool body_start(struct req *r, const char *method, const char *url);
/* n more bytes arrived: push the deadline back by n / body_min_rate seconds. */
void body_progress(struct req *r, size_t n);
/* The body is complete (or the request ends): it no longer has a deadline. Returns false when
 * the watcher answered the request first (the caller closes the connection). */
bool body_end(struct req *r);
/* The whole request is in: answer it, hold its 429, or hand it to a worker. */
bool dispatch_handle(struct req *r, const char *url);
/* After the worker resumed us. */
bool finish_wait(struct req *r);
/* The request ends (req_finish): its life into a capture in flight, if one runs (trace.h). */
void dispatch_trace_done(struct req *r, int status, uint64_t bytes);

/* ---- watch.c: held 429s and the hang-up watcher --------------------------------------------- */

/* Hold the 429 in r->resp for rate_limit_delay_ms (see watch.c). */
bool tarpit(struct req *r);
/* A held 429 is no longer held: counted out once. I/O thread. */
void tarpit_release(struct req *r);
/* After the watcher resumed a held 429. */
bool finish_tarpit(struct req *r);
/* Start the watcher thread; 0 or -1. watch_stop accepts what a failed watch_start left. */
int watch_start(struct server *s);
void watch_stop(struct server *s);

/* ---- inflight_view.c: /debug/requests ------------------------------------------------------- */

/* inflight_source_fn over the server's in-flight list and the pool's workers. */
int server_snapshot(void *arg, struct inflight_snapshot *snap);

#endif
