/* symbolize.h — run-time address → function name, for the debug listener's profiles (the
 * /debug/pprof/symbol service and the thread dump's text). Internal to the service: used by
 * profiling.c and threads.c only.
 *
 * The table is built on first use from the executable's own .symtab (static functions too) and
 * falls back to dladdr() for shared libraries. Never call it from a signal handler.
 */
#ifndef PRIMED_SYMBOLIZE_H
#define PRIMED_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>

/* Take the table's lock (loading the table on first use; a failed load leaves it empty and
 * lookups fall back to dladdr). Every other call below needs it held. */
void symbolize_lock(void);
void symbolize_unlock(void);

/* The name of the function containing run-time address addr, or NULL; *start (may be NULL)
 * gets the function's run-time start address (0 when unknown). The name is valid until
 * symbolize_unlock. */
const char *symbolize_addr(uint64_t addr, uint64_t *start);

/* Drop the table (shutdown). Takes the lock itself. */
void symbolize_unload(void);

#endif
