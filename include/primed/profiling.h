/* profiling.h — pprof-compatible heap and CPU profiles from gperftools, served on the debug
 * listener only.
 *
 * In builds without tcmalloc (TCMALLOC=0: the sanitizer builds) every profiling endpoint answers
 * 501 not_implemented (the index, /debug/requests, which inflight.c renders, the thread dump and
 * the execution trace, trace.c's, need no tcmalloc and answer in every build); nothing here may
 * crash or allocate without bound in either build.
 */
#ifndef PRIMED_PROFILING_H
#define PRIMED_PROFILING_H

#include "primed/config.h"
#include "primed/http.h"
#include "primed/router.h"

/* Call first thing in main() after config_load. When heap sampling is enabled and
 * TCMALLOC_SAMPLE_PARAMETER is not yet in the environment, sets it and re-execs /proc/self/exe
 * with the same argv (tcmalloc reads it only at start-up). Returns 0 to go on, or -errno when
 * the re-exec failed (the caller logs it and goes on without sampling). */
int profiling_early_init(const struct primed_config *cfg, int argc, char *argv[]);

/* Serve one debug-listener request routed to `id` (a ROUTE_DEBUG_* row of the route table; the
 * caller has matched the method and checked the debug token). Fills resp; an id that is not a
 * debug endpoint → 404 JSON error. May block the calling thread for the duration of a CPU profile
 * or a trace capture (bounded by cfg->max_profile_seconds). */
int profiling_handle(enum route_id id, const struct http_request *req, struct http_response *resp);

/* Stops a running CPU profile, if any, and frees what profiling holds. */
void profiling_shutdown(void);

#endif
