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
#include "primed/pool.h"
#include "primed/profiling.h"
#include "primed/reqmem.h"
#include "primed/server.h"
#include "primed/sieve.h"
#include "primed/stream.h"

#define EXIT_FORCED 3 /* second signal during the drain */

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

int main(int argc, char *argv[])
{
    static struct primed_config cfg;
    char err[512];
    switch (config_load(&cfg, argc, argv, environ, err, sizeof err)) {
    case CONFIG_OK:
        break;
    case CONFIG_EXIT_OK:
        return 0;
    default:
        fprintf(stderr, "primed: %s\n", err);
        return 2;
    }
    int prc = profiling_early_init(&cfg, argc, argv);

    log_init(cfg.log_level, cfg.log_format);
    if (prc != 0)
        log_event(LOG_WARN, "profiling", "heap sampling unavailable (re-exec failed)", NULL);
    log_event(LOG_INFO, "starting", "primed starting", "version", PRIMED_VERSION, NULL);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    /* Before any thread exists, so every thread inherits the mask. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) {
        log_event(LOG_ERROR, "startup_failed", "signalfd failed", "error", strerror(errno), NULL);
        return 1;
    }

    int rc = 1;
    /* Request bodies and batch parses: charged by the server and the API, reported here. */
    static struct reqmem reqmem;
    reqmem_init(&reqmem, cfg.request_memory_budget);
    if (reqmem_set_shares(&reqmem, request_memory_share(&cfg), cfg.max_connections) != 0) {
        log_event(LOG_ERROR, "startup_failed", "cannot allocate the request memory shares", NULL);
        goto out_sfd;
    }
    struct api_ctx api = {.cfg = &cfg, .inline_small = cfg.inline_small_answers, .mem = &reqmem};
    /* Stream buffers: admitted against by the server, the limit set (and moved with the memory
     * limit) by memwatch, so it outlives both. */
    static struct stream_budget streams;
    struct pool *pool = NULL;
    struct server *srv = NULL;
    struct memwatch *mw = NULL;
    if (metrics_init() != 0) {
        log_event(LOG_ERROR, "startup_failed", "metrics_init failed", NULL);
        goto out_sfd;
    }
    if (metrics_register_collector(reqmem_collect, &reqmem) != 0) {
        log_event(LOG_ERROR, "startup_failed", "cannot register the request memory metrics", NULL);
        goto out_metrics;
    }
    if (stream_budget_init(&streams, cfg.memory_budget) != 0) {
        log_event(LOG_ERROR, "startup_failed", "cannot register the stream budget's metrics", NULL);
        goto out_streams;
    }
    /* Before the server: it sets the stream budget (auto resolved, clamped to the limit). */
    if ((rc = memwatch_create(&cfg, &streams, &mw)) != 0) {
        log_event(LOG_ERROR, "startup_failed", "cannot start the memory watch", "error",
                  strerror(-rc), NULL);
        rc = 1;
        goto out_streams;
    }
    rc = 1;
    pool = pool_create(cfg.workers, cfg.queue_capacity, api_worker_init, api_worker_fini, &api);
    if (!pool) {
        log_event(LOG_ERROR, "startup_failed", "cannot start the worker pool", "error",
                  strerror(errno), NULL);
        goto out_memwatch;
    }
    pool_set_client_cap(pool, cfg.max_inflight_per_client);
    api.pool = pool;
    srv = server_create(&cfg, pool, &api, &streams);
    if (!srv) goto out_pool;
    unsigned mp, dp;
    server_ports(srv, &mp, &dp);
    char mps[8], dps[8];
    snprintf(mps, sizeof mps, "%u", mp);
    snprintf(dps, sizeof dps, "%u", dp);
    server_set_ready(srv, true);
    log_event(LOG_INFO, "listening", "ready", "port", mps, "debug_port",
              cfg.debug_enabled ? dps : NULL, NULL);

    int sig;
    while ((sig = wait_signal(sfd, -1)) == 0) {
    }
    log_event(LOG_INFO, "draining", "signal received, draining", "signal", strsignal(sig), NULL);
    server_begin_drain(srv);
    /* A CPU profile in flight (up to max_profile_seconds) ends now and answers with what it has,
     * instead of holding the debug listener's thread through the drain. */
    profiling_shutdown();
    if (!drain_wait(srv, sfd, (uint64_t)cfg.shutdown_timeout * 1000)) {
        log_event(LOG_WARN, "drain_timeout", "cancelling requests still in flight", NULL);
        server_cancel_all(srv);
        pool_cancel_all(pool, POOL_CANCEL_SHUTDOWN);
        drain_wait(srv, sfd, 2000);
    }
    rc = 0;

    /* Reverse order of construction, except that the pool (whose last jobs may still reference
     * requests and the server) is joined between stopping the server and freeing it. */
    server_stop(srv);
out_pool:
    pool_destroy(pool);
    server_destroy(srv);
out_memwatch:
    memwatch_destroy(mw);
out_streams:
    stream_budget_destroy(&streams); /* also after a failed init, as stream.h asks */
out_metrics:
    metrics_unregister_collector(reqmem_collect, &reqmem);
    reqmem_fini(&reqmem);
    profiling_shutdown();
    metrics_fini();
    sieve_shutdown();
out_sfd:
    close(sfd);
    if (rc == 0) log_event(LOG_INFO, "stopped", "primed stopped", NULL);
    return rc;
}
