/* procstat.c — reads this process's CPU time, memory, fds, threads and start time from /proc.
 *
 * Called at every /metrics scrape, so it must be cheap and bounded: fixed stack buffers, one
 * read(2) per small file, and /proc/stat (whose "intr" line can be many KiB long) is scanned
 * in chunks for its btime line, once per process (boot time does not change).
 * It must never allocate in proportion to anything the process does, nor hold a lock.
 */
#include "primed/procstat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

ssize_t procstat_read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            return -e;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

/* The "btime N" line of /proc/stat: boot time in seconds since the epoch. Scans in 4 KiB
 * chunks, remembering only whether we are at a line start and the first bytes of the line. */
static long long read_btime(void)
{
    int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char chunk[4096];
    char line[64]; /* prefix of the current line; btime lines are short */
    size_t ll = 0;
    bool overflow = false;
    long long result = -1;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        for (ssize_t i = 0; i < n && result < 0; i++) {
            if (chunk[i] == '\n') {
                line[ll] = '\0';
                if (!overflow && strncmp(line, "btime ", 6) == 0)
                    result = strtoll(line + 6, NULL, 10);
                ll = 0;
                overflow = false;
            } else if (ll + 1 < sizeof line) {
                line[ll++] = chunk[i];
            } else {
                overflow = true;
            }
        }
        if (result >= 0) break;
    }
    close(fd);
    return result;
}

static long long boot_time = -1; /* written once under boot_once, then read-only */
static pthread_once_t boot_once = PTHREAD_ONCE_INIT;
static void boot_time_init(void)
{
    boot_time = read_btime();
}

/* Entries of /proc/self/fd, not counting the descriptor opendir() itself holds. */
static uint64_t count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return 0;
    uint64_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n > 0 ? n - 1 : 0;
}

int procstat_read(struct procstat *out)
{
    /* /proc/self/stat is one line well under 1 KiB; comm (field 2) may contain spaces and
     * parentheses, so fields are counted from the LAST ')'. */
    char buf[2048];
    ssize_t len = procstat_read_small("/proc/self/stat", buf, sizeof buf);
    if (len < 0) return (int)len;
    char *p = strrchr(buf, ')');
    if (!p) return -EINVAL;
    p++;
    /* Fields after comm, 1-based from field 3 (state). */
    unsigned long long f[24] = {0}; /* f[k] = field k+3, up to field 26 */
    int field = 3;
    while (*p && field <= 26) {
        while (*p == ' ')
            p++;
        if (!*p) break;
        char *end;
        if (field == 3) { /* state: a letter */
            while (*p && *p != ' ')
                p++;
        } else {
            f[field - 3] = strtoull(p, &end, 10);
            if (end == p) return -EINVAL;
            p = end;
        }
        field++;
    }
    if (field <= 24) return -EINVAL; /* need through rss (field 24) */

    long tck = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    if (tck <= 0) tck = 100;
    if (page <= 0) page = 4096;
    pthread_once(&boot_once, boot_time_init);

    struct procstat s;
    s.cpu_seconds = (double)(f[14 - 3] + f[15 - 3]) / (double)tck; /* utime + stime */
    s.threads = f[20 - 3];
    s.start_time_seconds =
        boot_time >= 0 ? (double)boot_time + (double)f[22 - 3] / (double)tck : 0.0;
    s.virtual_bytes = f[23 - 3];
    s.resident_bytes = f[24 - 3] * (unsigned long long)page;
    s.open_fds = count_fds();
    /* getrlimit gives the same soft limit /proc/self/limits prints as "Max open files",
     * without parsing text. */
    struct rlimit rl;
    s.max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (uint64_t)rl.rlim_cur : 0;
    *out = s;
    return 0;
}
