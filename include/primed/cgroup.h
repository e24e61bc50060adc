/* cgroup.h — the memory limit and usage of the cgroup this process lives in (v1 or v2).
 *
 * The memory cgroup is found the way the kernel describes it: /proc/self/cgroup names the
 * process's cgroup path per hierarchy, /proc/self/mountinfo where each hierarchy is mounted.
 * Every path is read under a filesystem prefix (`root`, "/" in production) so tests can point
 * the module at a fake tree. Readers only: no thread, no allocation after cgroup_open, no lock.
 */
#ifndef PRIMED_CGROUP_H
#define PRIMED_CGROUP_H

#include <stdbool.h>
#include <stdint.h>

enum cgroup_version { CGROUP_NONE = 0, CGROUP_V1 = 1, CGROUP_V2 = 2 };

/* Limits at or above this are "no limit": v1 writes PAGE_COUNTER_MAX pages (9223372036854771712
 * on 4 KiB pages) for an unlimited group, v2 writes "max". */
#define CGROUP_UNLIMITED (UINT64_C(1) << 62)

struct cgroup_mem {
    bool has_limit;         /* a limit below CGROUP_UNLIMITED is set (here or on an ancestor) */
    uint64_t limit;         /* bytes; the smallest limit on the path to the hierarchy root */
    bool has_usage;         /* usage was readable and well formed */
    uint64_t usage;         /* v2 memory.current, v1 memory.usage_in_bytes (page cache included) */
    uint64_t inactive_file; /* reclaimable page cache from memory.stat (0 if unreadable) */
    bool has_oom_kills;     /* the kernel exposes the count (v2 memory.events, v1 >= 4.13) */
    uint64_t oom_kills;     /* processes of the group killed by the OOM killer */
    bool has_limit_hits;    /* v2 memory.events "max", v1 memory.failcnt */
    uint64_t limit_hits;    /* times usage reached the limit (reclaim or OOM followed) */
};

struct cgroup;

/* Locate the memory cgroup of this process under root ("" or NULL = "/"). Returns 0 with *out
 * set (owned by the caller, cgroup_close), -ENOENT when the process has no memory cgroup (no
 * memory hierarchy mounted, not listed in /proc/self/cgroup, or its directory missing),
 * -EINVAL when /proc/self/cgroup or mountinfo is malformed, -ENOMEM, or -errno of reading them. */
int cgroup_open(const char *root, struct cgroup **out);

/* Read the current values. Never fails: what cannot be read or parsed is reported through the
 * has_* flags (an unreadable or garbage limit counts as no limit). Cheap: 3–5 small files. */
void cgroup_read(const struct cgroup *cg, struct cgroup_mem *out);

enum cgroup_version cgroup_version(const struct cgroup *cg);
/* The directory the values are read from (under root); valid until cgroup_close. */
const char *cgroup_dir(const struct cgroup *cg);

/* Accepts NULL. */
void cgroup_close(struct cgroup *cg);

/* Bytes that count towards the limit and cannot be reclaimed at once: usage minus the inactive
 * page cache (the "working set" the kubelet evicts on). */
uint64_t cgroup_working_set(const struct cgroup_mem *m);

#endif
