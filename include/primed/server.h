/* server.h — the HTTP front end: libmicrohttpd daemons, limits, request lifecycle, drain.
 *
 * The main listener serves the API; its I/O threads only parse, validate, answer what is cheap
 * and hand everything that sieves to the pool, suspending the connection until the worker
 * resumes it. The debug listener (thread per connection: profiles block) serves /metrics,
 * /healthz, /readyz and the profiling endpoints behind the bearer token. The server never
 * computes primes and never blocks an I/O thread on a worker.
 */
#ifndef PRIMED_SERVER_H
#define PRIMED_SERVER_H

#include <stdbool.h>

#include "primed/api.h"
#include "primed/config.h"
#include "primed/pool.h"

struct server;
struct stream_budget;

/* Start both listeners and write cfg->port_file. cfg, pool, api and budget (the stream budget
 * every streamed response is admitted against; its cache is configured here, so no stream of it
 * may exist yet) are borrowed until server_destroy. Returns NULL (after logging why) on failure.
 * Not ready until server_set_ready. */
struct server *server_create(const struct primed_config *cfg, struct pool *pool,
                             struct api_ctx *api, struct stream_budget *budget);
void server_set_ready(struct server *s, bool ready);
void server_ports(const struct server *s, unsigned *main_port, unsigned *debug_port);

/* Drain: /readyz answers 503, the main listener stops accepting (new connections are refused),
 * responses carry Connection: close. In-flight requests go on. */
void server_begin_drain(struct server *s);
/* Number of requests in flight (including suspended ones and streams). */
unsigned server_inflight(struct server *s);
/* Cancel every in-flight job and stream (shutdown timeout passed). */
void server_cancel_all(struct server *s);
/* Stop both daemons (all connections closed; every completion callback has run). Call once
 * server_inflight is 0 or after server_cancel_all and a grace period. */
void server_stop(struct server *s);
/* Free the server. A job whose client went away may still be running after server_stop and
 * still points at its request and at the server (budget, counters), so destroy the pool
 * (which joins every worker) between server_stop and server_destroy. Accepts NULL. */
void server_destroy(struct server *s);

#endif
