/* netaddr.c — see netaddr.h: listen addresses, fd-derived connection limits, the port file.
 *
 * Split from server.c so that the adapter holds only libmicrohttpd glue; nothing here knows
 * libmicrohttpd beyond the reason for the fd reserve.
 */
#include "netaddr.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "primed/config.h"
#include "primed/log.h"

/* At the fd limit libmicrohttpd 0.9.75 retries accept4() in a hot loop (EMFILE) and reaps
 * closed clients only at their idle timeout. So: raise the soft RLIMIT_NOFILE to the hard one, and
 * cap the connection limit below it, keeping FD_RESERVE descriptors for listeners, epoll, logs,
 * /proc readers and profiles. */
#define FD_RESERVE 64u
unsigned netaddr_connection_limit(unsigned want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return want;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit up = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0) rl = up;
    }
    if (rl.rlim_cur == RLIM_INFINITY) return want;
    unsigned cap = rl.rlim_cur > 2 * FD_RESERVE ? (unsigned)(rl.rlim_cur - FD_RESERVE)
                                                : (unsigned)(rl.rlim_cur / 2);
    if (cap >= want) return want;
    char w[16], h[16];
    snprintf(w, sizeof w, "%u", want);
    snprintf(h, sizeof h, "%u", cap);
    log_event(LOG_WARN, "connection_limit_capped", "max_connections above the fd limit",
              "max_connections", w, "effective", h, NULL);
    return cap == 0 ? 1 : cap;
}

int netaddr_resolve(const char *host, unsigned port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_PASSIVE | AI_NUMERICSERV,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", port);
    int rc = getaddrinfo(host, ps, &hints, &ai);
    if (rc != 0 || !ai) {
        hints.ai_flags &= ~AI_NUMERICHOST;
        rc = getaddrinfo(host, ps, &hints, &ai);
        if (rc != 0 || !ai) return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

/* The CPUs this process may run on: its affinity mask, then a cgroup v2 cpu.max quota on its
 * cgroup or any ancestor (quota/period CPUs, rounded up). 0 when unknown. A cgroup v1 quota is
 * not read (cpu.cfs_quota_us): there the affinity alone counts. */
static unsigned cgroup_cpu_quota(void)
{
    char line[512], path[PATH_MAX + 32];
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f) return 0;
    char *dir = NULL;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "0::", 3) == 0) {
            line[strcspn(line, "\n")] = '\0';
            dir = line + 3;
            break;
        }
    fclose(f);
    unsigned best = 0;
    for (int depth = 0; dir && *dir && depth < 64; depth++) {
        snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max", dir);
        FILE *q = fopen(path, "re");
        unsigned long long quota, period;
        if (q && fscanf(q, "%llu %llu", &quota, &period) == 2 && period > 0) {
            unsigned long long n = (quota + period - 1) / period;
            unsigned cpus = n < 1 ? 1 : n > 65536 ? 65536 : (unsigned)n;
            if (best == 0 || cpus < best) best = cpus;
        }
        if (q) fclose(q);
        char *slash = strrchr(dir, '/');
        if (!slash) break;
        *slash = '\0'; /* the parent ("/a/b" -> "/a"; "/a" -> "", the root: no cpu.max) */
    }
    return best;
}

unsigned netaddr_allowed_cpus(void)
{
    cpu_set_t set;
    unsigned n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = (unsigned)CPU_COUNT(&set);
    if (n == 0) {
        long o = sysconf(_SC_NPROCESSORS_ONLN);
        n = o < 1 ? 1 : (unsigned)o;
    }
    unsigned q = cgroup_cpu_quota();
    return q && q < n ? q : n;
}

unsigned netaddr_io_threads(unsigned want)
{
    if (want) return want;
    unsigned n = netaddr_allowed_cpus();
    return n > NETADDR_IO_THREADS_AUTO_MAX ? NETADDR_IO_THREADS_AUTO_MAX : n;
}

/* "main debug\n" into path, atomically (readers see no file or the whole line). The temporary
 * file is a fresh one made by mkstemp in the same directory (O_CREAT|O_EXCL: a symlink or file
 * planted there by someone else is never followed or overwritten), mode 0644 whatever the umask;
 * rename replaces a symlink at path itself, never its target. Returns 0, or -1 with errno. */
int netaddr_write_port_file(const char *path, unsigned mp, unsigned dp)
{
    char tmp[CONFIG_PATH_MAX + 16];
    if (snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) return -1;
    char line[32];
    int n = snprintf(line, sizeof line, "%u %u\n", mp, dp);
    if (fchmod(fd, 0644) != 0 || write(fd, line, (size_t)n) != n) goto err;
    if (close(fd) != 0) {
        fd = -1;
        goto err;
    }
    if (rename(tmp, path) != 0) {
        fd = -1;
        goto err;
    }
    return 0;

err:;
    int e = errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
    errno = e;
    return -1;
}
