/* pprofenc.h — writes profiles in pprof's format (profile.proto, gzipped), the one
 * `go tool pprof` reads natively. Internal to the service (the thread dump in profiling.c).
 *
 * A builder interns strings, functions and locations, takes samples as they come and
 * produces the whole gzipped message at the end. Every call that can fail returns 0 or -ENOMEM
 * and leaves the builder usable only for pprofenc_destroy.
 */
#ifndef PRIMED_PPROFENC_H
#define PRIMED_PPROFENC_H

#include <stddef.h>
#include <stdint.h>

struct pprofenc;

struct pprofenc_label {
    const char *key;
    const char *str; /* a string label */
};

/* A profile of one sample type (e.g. "threads", "count"), period 1 of the same type. NULL on
 * out-of-memory. */
struct pprofenc *pprofenc_create(const char *type, const char *unit);
void pprofenc_destroy(struct pprofenc *b); /* accepts NULL */

/* Add the mapping of an object file ([start, limit) at file offset `offset`). Locations whose
 * address falls in it refer to it; pprof then symbolizes them (remotely through the symbol
 * endpoint, or from the file). Returns 0 or -ENOMEM. */
int pprofenc_mapping(struct pprofenc *b, uint64_t start, uint64_t limit, uint64_t offset,
                     const char *filename);
/* The id of the location at run-time address addr (the same address gives the same id), left
 * for pprof to symbolize; 0 on out-of-memory. */
uint64_t pprofenc_location_addr(struct pprofenc *b, uint64_t addr);
/* The id of a location that is only a name (e.g. "<no answer in 100 ms>"), already
 * symbolized; 0 on out-of-memory. */
uint64_t pprofenc_location_name(struct pprofenc *b, const char *name);
/* One sample: locations leaf first, its value, and labels (a key may repeat). */
int pprofenc_sample(struct pprofenc *b, const uint64_t *locs, size_t nlocs, int64_t value,
                    const struct pprofenc_label *labels, size_t nlabels);
/* Optional comments, shown by `pprof -comments`. */
int pprofenc_comment(struct pprofenc *b, const char *text);
/* Encode and gzip. On success *out (malloc'd, caller frees) holds *len bytes. Returns 0 or
 * -ENOMEM. */
int pprofenc_finish(struct pprofenc *b, int64_t time_nanos, char **out, size_t *len);

#endif
