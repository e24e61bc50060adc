/* pprof_threads.h — the debug listener's thread dump endpoint (/debug/pprof/threads, also at
 * /debug/pprof/goroutine): a threaddump rendered as a gzipped pprof profile, as Go-style grouped
 * text (?debug=1) or one stack per thread (?debug=2), or as gperftools' legacy CPU format for
 * google-pprof. Internal to the service; profiling.c routes to it.
 */
#ifndef PRIMED_PPROF_THREADS_H
#define PRIMED_PPROF_THREADS_H

#include <stdbool.h>

#include "primed/http.h"

/* Take a dump and render it into resp (or a JSON error: 400 for bad parameters, 409 while
 * another dump is being taken, 501 where dumps cannot work). legacy: gperftools' CPU profile
 * format (accepts and ignores `seconds`, which google-pprof always sends). Returns 0 or the
 * errors_render result. Blocks for at most about 100 ms plus the rendering. */
int pprof_threads_serve(const struct http_request *req, struct http_response *resp, bool legacy);

#endif
