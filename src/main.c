/* main.c — primed's entry point: configuration, wiring, signals, drain and teardown.
 *
 * SIGTERM/SIGINT are blocked in every thread and read here from a signalfd, so no handler runs
 * in an arbitrary thread. First signal: drain (readyz 503, stop accepting, let in-flight
 * requests finish within shutdown_timeout, then cancel what is left), tear down in reverse order
 * of construction, exit 0. A second signal during the drain exits at once with status 3.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "primed/api.h"
#include "primed/config.h"
#include "primed/log.h"
#include "primed/memwatch.h"
#include "primed/metrics.h"
#include "primed/picache.h"
#include "primed/pool.h"
#include "primed/profiling.h"
#include "primed/reqmem.h"
#include "primed/router.h"
#include "primed/server.h"
#include "primed/sieve.h"
#include "primed/stream.h"
#include "primed/trace.h"

#define EXIT_FORCED 3 /* second signal during the drain */

_Static_assert(ROUTER_MAX_LABELS <= METRICS_MAX_HANDLERS, "route labels do not fit the metrics");

extern char **environ;

/* Wait up to ms for a signal on sfd; returns the signal number or 0. */
static int wait_signal(int sfd, int ms)
{
    struct pollfd pfd = {.fd = sfd, .events = POLLIN};
    int rc = poll(&pfd, 1, ms);
    if (rc <= 0) return 0;
    struct signalfd_siginfo si;
    if (read(sfd, &si, sizeof si) != (ssize_t)sizeof si) return 0;
    return (int)si.ssi_signo;
}

/* Wait until no request is in flight or ms pass; a second signal exits at once. */
static bool drain_wait(struct server *srv, int sfd, uint64_t ms)
{
    uint64_t deadline = pool_now_ns() + ms * 1000000u;
    while (server_inflight(srv) > 0) {
        if (pool_now_ns() >= deadline) return false;
        int sig = wait_signal(sfd, 20);
        if (sig) {
            log_event(LOG_WARN, "forced_exit", "second signal during drain", "signal",
                      strsignal(sig), NULL);
            _exit(EXIT_FORCED);
        }
    }
    return true;
}

/* One client's share of the request memory budget: the setting, or auto = 1/8 of the budget but
 * at least one whole largest body (so a client can always send one), never above the budget. */
static uint64_t request_memory_share(const struct primed_config *c)
{
    uint64_t share = c->request_memory_per_client;
    if (share == 0) {
        share = c->request_memory_budget / 8;
        if (share < c->max_body_bytes + 1) share = c->max_body_bytes + 1;
    }
    return share < c->request_memory_budget ? share : c->request_memory_budget;
}

/* Everything main builds. Static (in main): the pool's workers and the server borrow the config,
 * the budgets and the API context until teardown. */
struct app {
    struct primed_config cfg;
    int sfd; /* SIGTERM/SIGINT */
    struct reqmem reqmem;
    struct stream_budget streams;
    struct api_ctx api;
    struct pool *pool;
    struct server *srv;
    struct memwatch *mw;
};

/* How far start-up got, in order of construction; app_teardown undoes from there down. */
enum built {
    BUILT_SIGNALS, /* the signalfd (and the request memory budget, which needs no fini yet) */
    BUILT_METRICS, /* the registry and the request memory's collector */
    BUILT_STREAMS, /* the stream budget (also after a failed init, as stream.h asks) */
    BUILT_MEMWATCH,
    BUILT_POOL, /* the pool, and the server if it started */
    BUILT_ALL,  /* the server started: it is stopped first */
};

/* One "setting" line per row of the settings table, with the value in force (flag syntax), so a
 * log says what the process ran with whatever mix of file, environment and flags set it. */
static void log_setting(void *arg, const char *key, const char *value)
{
    (void)arg;
    log_event(LOG_INFO, "setting", NULL, "key", key, "value", value, NULL);
}

/* Flags, environment and file into a->cfg, then logging (the settings in force, one line each).
 * Returns the exit status when primed must exit now (--help, --version: 0; a bad setting: 2), else
 * -1. */
static int app_config(struct app *a, int argc, char *argv[])
{
    char err[512];
    switch (config_load(&a->cfg, argc, argv, environ, err, sizeof err)) {
    case CONFIG_OK:
        break;
    case CONFIG_EXIT_OK:
        return 0;
    default:
        fprintf(stderr, "primed: %s\n", err);
        return 2;
    }
    int prc = profiling_early_init(&a->cfg, argc, argv);

    log_init(a->cfg.log_level, a->cfg.log_format);
    if (prc != 0)
        log_event(LOG_WARN, "profiling", "heap sampling unavailable (re-exec failed)", NULL);
    log_event(LOG_INFO, "starting", "primed starting", "version", PRIMED_VERSION, NULL);
    config_each(&a->cfg, log_setting, NULL);
    return -1;
}

/* Block SIGTERM/SIGINT in this thread (and so in every thread started later) and return a
 * signalfd that reads them, or -1 (logged). SIGPIPE is ignored. */
static int block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    /* Before any thread exists, so every thread inherits the mask. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0)
        log_event(LOG_ERROR, "startup_failed", "signalfd failed", "error", strerror(errno), NULL);
    return sfd;
}

/* Build the service in order of construction. Returns BUILT_ALL, or (after logging why) how far
 * it got, for app_teardown. */
static enum built app_start(struct app *a)
{
    struct primed_config *cfg = &a->cfg; /* memwatch_create takes it writable */
    /* Request bodies and batch parses: charged by the server and the API, reported here. */
    reqmem_init(&a->reqmem, cfg->request_memory_budget);
    if (reqmem_set_shares(&a->reqmem, request_memory_share(cfg), cfg->max_connections) != 0) {
        log_event(LOG_ERROR, "startup_failed", "cannot allocate the request memory shares", NULL);
        return BUILT_SIGNALS;
    }
    a->api =
        (struct api_ctx){.cfg = cfg, .inline_small = cfg->inline_small_answers, .mem = &a->reqmem};
    /* The metric handler labels are the route table's (the registry knows no route). */
    if (metrics_init(router_label_count(), router_label_name) != 0) {
        log_event(LOG_ERROR, "startup_failed", "metrics_init failed", NULL);
        return BUILT_SIGNALS;
    }
    if (metrics_register_collector(reqmem_collect, &a->reqmem) != 0) {
        log_event(LOG_ERROR, "startup_failed", "cannot register the request memory metrics", NULL);
        return BUILT_METRICS;
    }
    /* /debug/pprof/trace: its buffer is charged to the request memory budget while it runs. */
    if (trace_init(cfg->trace_buffer_bytes, &a->reqmem) != 0) {
        log_event(LOG_ERROR, "startup_failed", "cannot register the trace metrics", NULL);
        return BUILT_METRICS;
    }
    /* The π cache: its arrays charged to the request memory budget as they grow (config.c keeps
     * its bound at most half of it); NULL when pi_cache_bytes is 0. Its metrics exist either way.
     */
    int prc = picache_create(cfg->pi_cache_bytes, &a->reqmem, &a->api.pic);
    if (prc != 0) {
        log_event(LOG_ERROR, "startup_failed", "cannot create the pi cache", "error",
                  strerror(-prc), NULL);
        return BUILT_METRICS;
    }
    if (metrics_register_collector(picache_collect, a->api.pic) != 0 ||
        metrics_register_collector(api_pi_collect, NULL) != 0) {
        log_event(LOG_ERROR, "startup_failed", "cannot register the pi cache metrics", NULL);
        return BUILT_METRICS;
    }
    /* Stream buffers: admitted against by the server, the limit set (and moved with the memory
     * limit) by memwatch, so it outlives both. */
    if (stream_budget_init(&a->streams, cfg->memory_budget) != 0) {
        log_event(LOG_ERROR, "startup_failed", "cannot register the stream budget's metrics", NULL);
        return BUILT_STREAMS;
    }
    /* The table's first block before the memory watch's first sample, which then counts it
     * (a scrape right after start read 10 MB less than the cgroup's own file otherwise). */
    if (sieve_warm() != 0)
        log_event(LOG_WARN, "sieve_warm",
                  "the sieving-prime table's first block was not built: "
                  "the first sieving request will build it",
                  NULL);
    /* Before the server: it sets the stream budget (auto resolved, clamped to the limit). */
    int rc = memwatch_create(cfg, &a->streams, &a->mw);
    if (rc != 0) {
        log_event(LOG_ERROR, "startup_failed", "cannot start the memory watch", "error",
                  strerror(-rc), NULL);
        return BUILT_STREAMS;
    }
    a->pool =
        pool_create(cfg->workers, cfg->queue_capacity, api_worker_init, api_worker_fini, &a->api);
    if (!a->pool) {
        log_event(LOG_ERROR, "startup_failed", "cannot start the worker pool", "error",
                  strerror(errno), NULL);
        return BUILT_MEMWATCH;
    }
    pool_set_client_cap(a->pool, cfg->max_inflight_per_client);
    if (trace_counters_wire(a->pool, &a->reqmem, &a->streams) != 0)
        log_event(LOG_WARN, "trace_counters", "some trace counter tracks are missing", NULL);
    a->api.pool = a->pool;
    a->srv = server_create(cfg, a->pool, &a->api, &a->streams);
    return a->srv ? BUILT_ALL : BUILT_POOL;
}

/* Ready until the first signal; then drain: /readyz 503, no new connections, in-flight requests
 * get shutdown_timeout, then what is left is cancelled. */
static void app_serve(struct app *a)
{
    unsigned mp, dp;
    server_ports(a->srv, &mp, &dp);
    char mps[8], dps[8];
    snprintf(mps, sizeof mps, "%u", mp);
    snprintf(dps, sizeof dps, "%u", dp);
    server_set_ready(a->srv, true);
    log_event(LOG_INFO, "listening", "ready", "port", mps, "debug_port",
              a->cfg.debug_enabled ? dps : NULL, NULL);

    int sig;
    while ((sig = wait_signal(a->sfd, -1)) == 0) {
    }
    log_event(LOG_INFO, "draining", "signal received, draining", "signal", strsignal(sig), NULL);
    server_begin_drain(a->srv);
    /* A CPU profile in flight (up to max_profile_seconds) ends now and answers with what it has,
     * instead of holding the debug listener's thread through the drain. */
    profiling_shutdown();
    trace_shutdown(); /* likewise a trace capture */
    if (!drain_wait(a->srv, a->sfd, (uint64_t)a->cfg.shutdown_timeout * 1000)) {
        log_event(LOG_WARN, "drain_timeout", "cancelling requests still in flight", NULL);
        server_cancel_all(a->srv);
        pool_cancel_all(a->pool, POOL_CANCEL_SHUTDOWN);
        drain_wait(a->srv, a->sfd, 2000);
    }
}

/* Undo start-up from `b` down. */
static void app_teardown(struct app *a, enum built b)
{
    switch (b) {
    case BUILT_ALL:
        /* Reverse order of construction, except that the pool (whose last jobs may still
         * reference requests and the server) is joined between stopping the server and
         * freeing it. */
        server_stop(a->srv);
        /* fall through */
    case BUILT_POOL:
        pool_destroy(a->pool);
        server_destroy(a->srv);
        /* fall through */
    case BUILT_MEMWATCH:
        memwatch_destroy(a->mw);
        /* fall through */
    case BUILT_STREAMS:
        stream_budget_destroy(&a->streams); /* also after a failed init, as stream.h asks */
        /* fall through */
    case BUILT_METRICS:
        trace_fini(); /* ends a capture, which holds request memory */
        metrics_unregister_collector(api_pi_collect, NULL);
        metrics_unregister_collector(picache_collect, a->api.pic);
        picache_destroy(a->api.pic);
        a->api.pic = NULL;
        metrics_unregister_collector(reqmem_collect, &a->reqmem);
        reqmem_fini(&a->reqmem);
        profiling_shutdown();
        metrics_fini();
        sieve_shutdown();
        /* fall through */
    case BUILT_SIGNALS:
        close(a->sfd);
    }
}

int main(int argc, char *argv[])
{
    static struct app a;
    int rc = app_config(&a, argc, argv);
    if (rc >= 0) return rc;
    if ((a.sfd = block_signals()) < 0) return 1;
    enum built b = app_start(&a);
    if (b != BUILT_ALL) {
        app_teardown(&a, b);
        return 1;
    }
    app_serve(&a);
    app_teardown(&a, BUILT_ALL);
    log_event(LOG_INFO, "stopped", "primed stopped", NULL);
    return 0;
}
