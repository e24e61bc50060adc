/* inflight.h — /debug/requests: every request the service holds right now, and every worker.
 *
 * The server fills a snapshot (a bounded array the caller preallocates) under its in-flight list
 * lock and nothing else; this module parses the query, renders the snapshot as JSON or text
 * after the lock is gone, and never sees libmicrohttpd or the server's request objects. The
 * debug endpoint must stay cheap while the main listener is saturated: no allocation, no
 * formatting and no per-request lock beyond a stream's own while the list lock is held.
 */
#ifndef PRIMED_INFLIGHT_H
#define PRIMED_INFLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "primed/http.h"

#define INFLIGHT_DEFAULT_LIMIT 100
#define INFLIGHT_MAX_LIMIT 10000
#define INFLIGHT_ID_MAX 65
#define INFLIGHT_ADDR_MAX 64
#define INFLIGHT_PATH_MAX 256
#define INFLIGHT_PARAMS_MAX 160

/* What a request is waiting for. */
enum inflight_state {
    INFLIGHT_RECEIVING = 0, /* headers not complete yet */
    INFLIGHT_HANDLING,      /* headers read: reading the body or answered on the I/O thread */
    INFLIGHT_QUEUED,        /* handed to the pool, no worker has it yet */
    INFLIGHT_RUNNING,       /* a worker computes it (worker >= 0) */
    INFLIGHT_STREAMING,     /* a streamed list: see producer */
    INFLIGHT_DRAINING,      /* computed: the last bytes go to the client */
    INFLIGHT__STATES
};

/* The producer of a streamed list (INFLIGHT_STREAMING only). */
enum inflight_producer {
    INFLIGHT_P_NONE = 0,
    INFLIGHT_P_PRODUCING, /* on worker `worker` */
    INFLIGHT_P_PARKED,    /* buffer full: no worker, waits for the client to read */
    INFLIGHT_P_WAITING,   /* resumed (the client read), waits for a worker */
};

struct inflight_row {
    char request_id[INFLIGHT_ID_MAX]; /* "" until the headers are complete */
    char client[INFLIGHT_ADDR_MAX];
    char method[8];
    char path[INFLIGHT_PATH_MAX];
    char params[INFLIGHT_PARAMS_MAX]; /* the raw query string, cut at the bound */
    bool debug_listener;
    enum inflight_state state;
    enum inflight_producer producer;
    int worker; /* the worker running it (or its stream's producer), -1 when none */
    uint64_t age_ms, bytes_sent;
    uint64_t buffered;                  /* stream bytes produced, not yet sent */
    uint64_t chunks_done, chunks_total; /* a count split over workers; 0/0 otherwise */
};

struct inflight_worker {
    int state; /* enum pool_worker_state: 0 idle, 1 running, 2 helping */
    int row;   /* index of its request in rows[], -1 when idle or the request is not listed */
    uint64_t chunks_done, chunks_total;
};

/* Filled by the source. rows[0..cap) and workers[0..wcap) are the caller's (preallocated). */
struct inflight_snapshot {
    struct inflight_row *rows;
    size_t cap, n; /* n <= cap rows written, oldest request first */
    size_t total;  /* requests held (n < total: cut at the limit) */
    struct inflight_worker *workers;
    unsigned wcap, nworkers;
    unsigned queue_depth, queue_capacity, parked, resume_depth;
};

/* The server's snapshot function. Returns 0 or a negative errno. */
typedef int (*inflight_source_fn)(void *arg, struct inflight_snapshot *snap);
/* Register (or, with fn == NULL, drop) the one source. Called by server_create before the debug
 * listener starts and by server_destroy after it stopped, so no request races it. */
void inflight_set_source(inflight_source_fn fn, void *arg, unsigned workers);

/* Serve GET /debug/requests[?limit=N][&format=json|text]. Bad or unknown parameters → 400 from
 * the error table; no source → 503. Fills resp; returns 0 or -ENOMEM. */
int inflight_handle(const struct http_request *req, struct http_response *resp);

/* "running", "streaming", … (for tests and the text format). */
const char *inflight_state_name(enum inflight_state s);
const char *inflight_producer_name(enum inflight_producer p);

#endif
