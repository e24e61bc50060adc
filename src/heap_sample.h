/* heap_sample.h — the C face of the one C++ call primed needs from gperftools:
 * MallocExtension::GetHeapSample (tcmalloc's sampled heap in the legacy text format pprof reads).
 * Implemented in src/heap_sample.cc, compiled only in TCMALLOC=1 builds; it never throws across
 * the C boundary. Internal (memwatch.c and profiling.c only), so it lives beside the sources.
 */
#ifndef PRIMED_HEAP_SAMPLE_H
#define PRIMED_HEAP_SAMPLE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The current sampled heap profile, ending with the MAPPED_LIBRARIES section
 * (/proc/self/maps) pprof needs to symbolize. *out is malloc'd (owned by the caller,
 * NUL-terminated), *len its length. Returns 0 or -ENOMEM. */
int heap_sample_get(char **out, size_t *len);

#ifdef __cplusplus
}
#endif

#endif
