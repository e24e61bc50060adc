/* netaddr.h — what the listeners need from the OS, kept apart from libmicrohttpd: resolving a
 * listen address, the connection limit the fd limit allows, the I/O thread count, the port file.
 *
 * Internal to the server (server.c is the only user), so it lives beside the sources. Never
 * touches a socket of its own or an HTTP type.
 */
#ifndef PRIMED_NETADDR_H
#define PRIMED_NETADDR_H

#include <sys/socket.h>

/* host (numeric first, then a name lookup) and port into *ss, *len. Returns 0 or -1. */
int netaddr_resolve(const char *host, unsigned port, struct sockaddr_storage *ss, socklen_t *len);

/* Raise the soft RLIMIT_NOFILE to the hard one and return want, capped below that limit (a
 * reserve of descriptors kept for listeners, logs, /proc readers, profiles; a warning logged
 * when capped). Never 0. */
unsigned netaddr_connection_limit(unsigned want);

/* The CPUs this process may use: its affinity mask, capped by a cgroup v2 cpu.max quota. ≥ 1. */
unsigned netaddr_allowed_cpus(void);

/* Auto I/O threads stop here (docs/benchmarks.md: more threads than cores only add switches). */
#define NETADDR_IO_THREADS_AUTO_MAX 32u

/* I/O threads for the main listener: want (the io_threads setting), or for 0 (auto) the CPUs the
 * process may use, 1 … NETADDR_IO_THREADS_AUTO_MAX. */
unsigned netaddr_io_threads(unsigned want);

/* "main debug\n" into path, atomically (readers see no file or the whole line), mode 0644.
 * Returns 0, or -1 with errno. */
int netaddr_write_port_file(const char *path, unsigned main_port, unsigned debug_port);

#endif
