/* metrics.h — the metric registry and its Prometheus text exposition (version 0.0.4).
 *
 * Hot-path updates are relaxed atomics (no locks); everything that is a "current value" (pool
 * depth, tcmalloc, /proc) is pulled at scrape time by collectors. Label values are bounded: the
 * handler label takes one of the label set handed to metrics_init (main.c hands it the route
 * table's), the code label one of the statuses primed sends, the method label GET/POST/HEAD/OTHER.
 * It knows no route: the handler label set comes in, so the registry depends on no HTTP module.
 */
#ifndef PRIMED_METRICS_H
#define PRIMED_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* The most `handler` label values metrics_init accepts (the size of the per-handler arrays). */
#define METRICS_MAX_HANDLERS 32

/* Process-wide registry. The `handler` label set is nhandlers values, handler_name(i) for
 * i < nhandlers (static strings, called at render time), the last being the catch-all ("other")
 * that an out-of-range index is counted under; main.c passes router_label_count and
 * router_label_name (router.h: the labels derived from the route table, plus "other"). The code
 * label is one of the statuses of the error table (errors.h), 200, or "other". Idempotent; call
 * once from main before threads. Returns 0, or -EINVAL when nhandlers is 0 or above
 * METRICS_MAX_HANDLERS. */
int metrics_init(size_t nhandlers, const char *(*handler_name)(size_t i));
void metrics_fini(void);

/* Hot path: one finished request (any thread). label: an index into the handler label set. */
void metrics_observe_request(size_t label, const char *method, int status, double seconds,
                             uint64_t response_bytes);
/* Open-connection gauge (server notify-connection callback). */
void metrics_connections_add(int delta);
/* Open connections now (the gauge's value; the trace's counter track reads it too). */
int64_t metrics_connections(void);

/* Collectors write families at scrape time through a writer. */
struct metrics_writer;
typedef void (*metrics_collect_fn)(void *arg, struct metrics_writer *w);
/* Register a collector (arg borrowed until metrics_unregister_collector). At most 16. */
int metrics_register_collector(metrics_collect_fn fn, void *arg);
void metrics_unregister_collector(metrics_collect_fn fn, void *arg);

/* Writer helpers: a family header (HELP + TYPE: "counter", "gauge", "histogram"), then its
 * samples. labels is the already-formatted inside of {…} (e.g. "outcome=\"done\"") or NULL. */
void metrics_write_family(struct metrics_writer *w, const char *name, const char *type,
                          const char *help);
void metrics_write_sample(struct metrics_writer *w, const char *name, const char *labels,
                          double value);
void metrics_write_sample_u64(struct metrics_writer *w, const char *name, const char *labels,
                              uint64_t value);

/* A family of one unlabelled sample: HELP, TYPE and the value in one call. */
void metrics_write_one(struct metrics_writer *w, const char *name, const char *type,
                       const char *help, uint64_t value);
void metrics_write_one_f(struct metrics_writer *w, const char *name, const char *type,
                         const char *help, double value);

/* The whole exposition into a malloc'd buffer (owned by the caller). Returns 0 or -ENOMEM. */
int metrics_render(char **out, size_t *len);

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
