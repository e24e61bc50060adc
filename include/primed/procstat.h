/* procstat.h — this process's own resource usage, read from /proc for the process collector.
 *
 * The values and meanings are those of the official Prometheus client libraries' process
 * collector (process_cpu_seconds_total, process_resident_memory_bytes, …) plus the OS thread
 * count. Reading never allocates on the heap beyond what opendir() needs for /proc/self/fd,
 * and never blocks on anything but the /proc reads themselves (Linux only).
 */
#ifndef PRIMED_PROCSTAT_H
#define PRIMED_PROCSTAT_H

#include <stdint.h>
#include <sys/types.h>

struct procstat {
    double cpu_seconds;        /* user + system CPU time */
    uint64_t resident_bytes;   /* RSS */
    uint64_t virtual_bytes;    /* VSZ */
    uint64_t open_fds;         /* entries of /proc/self/fd, minus the one used to list it */
    uint64_t max_fds;          /* soft RLIMIT_NOFILE ("Max open files" of /proc/self/limits) */
    double start_time_seconds; /* since the Unix epoch */
    uint64_t threads;          /* OS threads (num_threads of /proc/self/stat) */
};

/* Fill out. Returns 0, or -errno when /proc/self/stat cannot be read or parsed (then out is
 * untouched). A failure to count fds or read the limit leaves those fields 0. */
int procstat_read(struct procstat *out);

/* Read a whole small file (a /proc or cgroup file) into buf[cap], NUL-terminated. Returns the
 * length or -errno. */
ssize_t procstat_read_small(const char *path, char *buf, size_t cap);

#endif
