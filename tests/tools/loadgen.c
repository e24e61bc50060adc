/* loadgen.c — an HTTP/1.1 keep-alive load client that binds a chosen source address, so one test
 * can play an abusive client (127.0.0.2, many connections, flat out) and a polite one
 * (127.0.0.3, paced) against the same server. wrk cannot bind a source address.
 *
 * One thread per connection, blocking sockets, bounded run time (--seconds). Counts answers by
 * class, checks that every 429 carries Retry-After and RateLimit-Limit/-Remaining/-Reset, and
 * (with --latency) records each request's latency to print p50/p99/max. Only fixed-length
 * (Content-Length) answers are supported: no streams. Prints one line of key=value.
 *
 *   loadgen --port P --src 127.0.0.2 --conns 32 --seconds 5 [--rate R] [--latency] PATH...
 *
 * --rate R paces each connection to R requests/s (0 = as fast as it can). PATHs are used in
 * turn. Exit 0 when it ran, 2 on bad arguments.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_PATHS 8
#define MAX_CONNS 512
#define MAX_SAMPLES 200000 /* per connection */
#define BUF 65536

static const char *src_addr = "127.0.0.1";
static int port, nconns = 1, seconds = 5, with_latency;
static double rate;
static const char *paths[MAX_PATHS];
static int npaths;
static atomic_uint_fast64_t n_req, n_2xx, n_429, n_other, n_bad429, n_err;

struct conn {
    pthread_t tid;
    double *lat; /* ms */
    size_t nlat;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, src_addr, &a.sin_addr);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) goto fail;
    struct sockaddr_in d = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &d.sin_addr);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&d, sizeof d) != 0) goto fail;
    return fd;
fail:
    close(fd);
    return -1;
}

static bool has_header(const char *h, size_t hlen, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = h; p + n + 1 < h + hlen; p++)
        if ((p == h || p[-1] == '\n') && strncasecmp(p, name, n) == 0 && p[n] == ':') return true;
    return false;
}

/* One request/response on fd. Returns the status, or -1 (connection unusable). */
static int exchange(int fd, const char *path, char *buf, bool *close_after)
{
    char req[1024];
    int rl = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (send(fd, req, (size_t)rl, MSG_NOSIGNAL) != rl) return -1;
    size_t len = 0;
    char *end = NULL;
    while (!end) {
        if (len == BUF - 1) return -1;
        ssize_t n = recv(fd, buf + len, BUF - 1 - len, 0);
        if (n <= 0) return -1;
        len += (size_t)n;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    size_t hlen = (size_t)(end - buf) + 4;
    int status = 0;
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1) return -1;
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    if (!cl || cl > end) return -1;
    size_t body = strtoul(cl + 17, NULL, 10);
    *close_after = strcasestr(buf, "\r\nConnection: close") != NULL &&
                   strcasestr(buf, "\r\nConnection: close") < end;
    if (status == 429 &&
        !(has_header(buf, hlen, "Retry-After") && has_header(buf, hlen, "RateLimit-Limit") &&
          has_header(buf, hlen, "RateLimit-Remaining") && has_header(buf, hlen, "RateLimit-Reset")))
        atomic_fetch_add(&n_bad429, 1);
    size_t have = len - hlen;
    while (have < body) {
        ssize_t n = recv(fd, buf, BUF - 1, 0);
        if (n <= 0) return -1;
        have += (size_t)n;
    }
    return status;
}

static void *run(void *arg)
{
    struct conn *c = arg;
    char *buf = malloc(BUF);
    double t_end = now_s() + seconds, next = now_s();
    int fd = -1;
    static atomic_uint start_at;
    unsigned k = atomic_fetch_add(&start_at, 1); /* connections start at different paths */
    while (buf && now_s() < t_end) {
        if (rate > 0) {
            double wait = next - now_s();
            if (wait > 0) usleep((useconds_t)(wait * 1e6));
            next += 1.0 / rate;
        }
        if (fd < 0 && (fd = dial()) < 0) {
            atomic_fetch_add(&n_err, 1);
            usleep(10000);
            continue;
        }
        bool close_after = false;
        double t0 = now_s();
        int st = exchange(fd, paths[k++ % (unsigned)npaths], buf, &close_after);
        double ms = (now_s() - t0) * 1e3;
        atomic_fetch_add(&n_req, 1);
        if (st < 0) {
            atomic_fetch_add(&n_err, 1);
            close(fd);
            fd = -1;
            continue;
        }
        if (st >= 200 && st < 300)
            atomic_fetch_add(&n_2xx, 1);
        else if (st == 429)
            atomic_fetch_add(&n_429, 1);
        else
            atomic_fetch_add(&n_other, 1);
        if (c->lat && c->nlat < MAX_SAMPLES) c->lat[c->nlat++] = ms;
        if (close_after) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0) close(fd);
    free(buf);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--port") && v)
            port = atoi(argv[++i]);
        else if (!strcmp(a, "--src") && v)
            src_addr = argv[++i];
        else if (!strcmp(a, "--conns") && v)
            nconns = atoi(argv[++i]);
        else if (!strcmp(a, "--seconds") && v)
            seconds = atoi(argv[++i]);
        else if (!strcmp(a, "--rate") && v)
            rate = atof(argv[++i]);
        else if (!strcmp(a, "--latency"))
            with_latency = 1;
        else if (a[0] == '/' && npaths < MAX_PATHS)
            paths[npaths++] = a;
        else {
            fprintf(stderr, "loadgen: bad argument '%s'\n", a);
            return 2;
        }
    }
    if (port <= 0 || nconns < 1 || nconns > MAX_CONNS || seconds < 1 || seconds > 600 ||
        npaths == 0) {
        fprintf(stderr, "usage: loadgen --port P [--src A] [--conns N] [--seconds S] [--rate R] "
                        "[--latency] PATH...\n");
        return 2;
    }
    struct conn *cs = calloc((size_t)nconns, sizeof *cs);
    for (int i = 0; i < nconns; i++) {
        if (with_latency) cs[i].lat = malloc(MAX_SAMPLES * sizeof(double));
        pthread_create(&cs[i].tid, NULL, run, &cs[i]);
    }
    size_t total = 0;
    for (int i = 0; i < nconns; i++) {
        pthread_join(cs[i].tid, NULL);
        total += cs[i].nlat;
    }
    double p50 = 0, p99 = 0, max = 0;
    if (with_latency && total > 0) {
        double *all = malloc(total * sizeof *all);
        size_t n = 0;
        for (int i = 0; i < nconns; i++) {
            memcpy(all + n, cs[i].lat, cs[i].nlat * sizeof *all);
            n += cs[i].nlat;
        }
        qsort(all, n, sizeof *all, cmp);
        p50 = all[n / 2];
        p99 = all[(size_t)((double)(n - 1) * 0.99)];
        max = all[n - 1];
        free(all);
    }
    printf("src=%s requests=%llu ok=%llu limited=%llu other=%llu bad429=%llu errors=%llu "
           "rps=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
           src_addr, (unsigned long long)n_req, (unsigned long long)n_2xx,
           (unsigned long long)n_429, (unsigned long long)n_other, (unsigned long long)n_bad429,
           (unsigned long long)n_err, (double)n_req / seconds, p50, p99, max);
    for (int i = 0; i < nconns; i++)
        free(cs[i].lat);
    free(cs);
    return 0;
}
