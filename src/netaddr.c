/* netaddr.c — see netaddr.h: listen addresses, fd-derived connection limits, the port file.
 *
 * Split from server.c so that the adapter holds only libmicrohttpd glue; nothing here knows
 * libmicrohttpd beyond the reason for the fd reserve.
 */
#include "netaddr.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
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

unsigned netaddr_io_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 4 ? 4 : (unsigned)n;
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
