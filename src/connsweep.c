/* connsweep.c — see connsweep.h: the registry of the main listener's connections and the sweep
 * that makes libmicrohttpd notice clients that half-closed.
 *
 * Why: libmicrohttpd 0.9.75's epoll mode is edge-triggered and forgets a connection's read
 * readiness after any short read, so a client whose last bytes and FIN arrive together (send one
 * byte, close) is never read again: its socket would sit in CLOSE-WAIT until the idle timeout,
 * holding a connection slot and its address's share of max_connections_per_ip. The poll mode is
 * level-triggered and sees the EOF, but costs O(connections of the thread) per wake-up: with 500
 * idle keep-alive connections open, the CPU per request doubled (docs/reliability.md). So the
 * listener runs epoll and the hang-up watcher calls connsweep_run every SWEEP_MS (watch.c): one
 * poll(2) over the registered sockets, zero timeout, and shutdown(SHUT_RD) on those whose peer
 * has sent its FIN. The shutdown changes nothing the peer could still send (it has sent
 * everything; bytes already queued stay readable), but it wakes every waiter on the socket, so
 * libmicrohttpd's epoll reports it again: it reads the EOF and closes the connection.
 * The fd is safe to touch under mu: libmicrohttpd notifies the close (connsweep_remove, which
 * takes mu) before it closes the socket, so a registered fd is never a reused number.
 * Cost: one lock per connection opened and closed; per sweep one poll over n sockets (~0.1 µs
 * each) under mu. Rejected: our own epoll set over the sockets (one more epoll_ctl per connection
 * and the same close race to solve), or a 2 s idle timeout (cuts slow but live clients).
 */
#include "connsweep.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int connsweep_init(struct connsweep *cs, unsigned cap)
{
    memset(cs, 0, sizeof *cs);
    pthread_mutex_init(&cs->mu, NULL);
    cs->cap = cap ? cap : 1;
    cs->v = calloc(cs->cap, sizeof *cs->v);
    cs->pfd = calloc(cs->cap, sizeof *cs->pfd);
    if (!cs->v || !cs->pfd) {
        connsweep_fini(cs);
        return -ENOMEM;
    }
    return 0;
}

void connsweep_fini(struct connsweep *cs)
{
    if (!cs->cap) return; /* zeroed: never initialised */
    free(cs->v);
    free(cs->pfd);
    pthread_mutex_destroy(&cs->mu);
    memset(cs, 0, sizeof *cs);
}

struct conn *connsweep_add(struct connsweep *cs, int fd, const char *addr)
{
    struct conn *c = malloc(sizeof *c);
    if (!c) return NULL;
    c->cur = NULL;
    c->fd = fd;
    c->idx = UINT32_MAX;
    c->swept = false;
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    if (!cs || fd < 0) return c;
    pthread_mutex_lock(&cs->mu);
    if (cs->n < cs->cap) {
        c->idx = cs->n;
        c->swept = true;
        cs->v[cs->n++] = c;
    }
    pthread_mutex_unlock(&cs->mu);
    return c;
}

void connsweep_remove(struct connsweep *cs, struct conn *c)
{
    if (!c) return;
    if (cs && c->swept) {
        pthread_mutex_lock(&cs->mu); /* idx moves when another connection leaves: read it here */
        struct conn *last = cs->v[--cs->n];
        cs->v[c->idx] = last;
        last->idx = c->idx;
        pthread_mutex_unlock(&cs->mu);
    }
    free(c);
}

unsigned connsweep_run(struct connsweep *cs)
{
    unsigned woken = 0;
    pthread_mutex_lock(&cs->mu);
    for (unsigned i = 0; i < cs->n; i++)
        cs->pfd[i] = (struct pollfd){.fd = cs->v[i]->fd, .events = POLLRDHUP};
    if (cs->n && poll(cs->pfd, cs->n, 0) > 0) {
        for (unsigned i = 0; i < cs->n; i++) {
            if (!(cs->pfd[i].revents & (POLLRDHUP | POLLHUP | POLLERR))) continue;
            /* ENOTCONN once libmicrohttpd has shut the socket itself: nothing left to wake. */
            if (shutdown(cs->pfd[i].fd, SHUT_RD) == 0) woken++;
        }
    }
    pthread_mutex_unlock(&cs->mu);
    return woken;
}
