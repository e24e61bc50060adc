/* connsweep.h — the main listener's open connections and the half-close sweep over them.
 *
 * Internal to the HTTP front end (server.c registers each connection, watch.c runs the sweep).
 * Never reads, writes or closes a connection's socket: the sweep only shuts its read side once
 * the peer has already sent its FIN (see connsweep.c). No libmicrohttpd type appears here.
 */
#ifndef PRIMED_CONNSWEEP_H
#define PRIMED_CONNSWEEP_H

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define CONN_ADDR_MAX 64

/* One connection, from libmicrohttpd's start notification to its close notification (its
 * socket context). Owned by the registry's caller; fd is libmicrohttpd's and stays open and the
 * same socket until connsweep_remove (libmicrohttpd notifies the close before closing it). */
struct conn {
    void *cur;                /* the request in progress, or NULL (server.c; I/O thread) */
    int fd;                   /* the socket, -1 if unknown */
    unsigned idx;             /* its place in connsweep.v (under connsweep.mu: moves on removals) */
    bool swept;               /* registered; set before the record is published, then constant */
    char addr[CONN_ADDR_MAX]; /* the client's address as text, formatted once per connection */
};

struct connsweep {
    pthread_mutex_t mu; /* v, n, pfd; held through a sweep's poll, so no fd closes meanwhile */
    struct conn **v;    /* [cap] registered connections, dense */
    struct pollfd *pfd; /* [cap] the sweep's poll set */
    unsigned n, cap;
};

/* Room for cap connections (the main listener's limit). 0 or -ENOMEM; fini accepts what a failed
 * init left (and a zeroed struct). */
int connsweep_init(struct connsweep *cs, unsigned cap);
void connsweep_fini(struct connsweep *cs);

/* A new connection on fd (addr: its client address as text, copied). cs NULL: not swept (the debug
 * listener). Returns the record (the caller owns it until connsweep_remove), or NULL when out of
 * memory. A full registry (more than the listener's limit: never) returns a record not swept. */
struct conn *connsweep_add(struct connsweep *cs, int fd, const char *addr);

/* The connection closes: unregister and free c (NULL accepted). Before its fd is closed. */
void connsweep_remove(struct connsweep *cs, struct conn *c);

/* One sweep: every registered socket whose peer has half-closed (POLLRDHUP, POLLHUP or POLLERR)
 * gets shutdown(SHUT_RD), which wakes libmicrohttpd's epoll for it. Returns how many. */
unsigned connsweep_run(struct connsweep *cs);

#endif
