/* baseline_server.c — the HTTP-overhead yardstick for scripts/bench-http.sh: a minimal
 * libmicrohttpd server with the same daemon flags and I/O thread count as primed's main listener
 * that answers ?n=N with the same Miller–Rabin and JSON body as primed's isprime (queued on the
 * second access-handler call, as primed does for keep-alive). Listens on 127.0.0.1:0 and writes its
 * port to argv[1] (argv[2]: I/O threads); exits on SIGTERM/SIGINT. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "primed/primality.h"

static struct MHD_Response *bad;

/* The same work as primed's inline isprime: parse n, 64-bit Miller–Rabin, a small JSON body in a
 * response made for this request (issue 24 compares HTTP overheads, not the arithmetic). */
static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *data,
                                 size_t *data_size, void **con_cls)
{
    static int first;
    if (*con_cls == NULL) {
        *con_cls = &first;
        return MHD_YES;
    }
    *data_size = 0;
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "n");
    char *end = NULL;
    unsigned long long n = v ? strtoull(v, &end, 10) : 0;
    if (!v) return MHD_queue_response(c, MHD_HTTP_OK, bad); /* /readyz and the like */
    if (end == v || *end) return MHD_queue_response(c, MHD_HTTP_BAD_REQUEST, bad);
    char body[64];
    int len = snprintf(body, sizeof body, "{\"n\":%llu,\"prime\":%s}", n,
                       primality_is_prime(n) ? "true" : "false");
    struct MHD_Response *r =
        MHD_create_response_from_buffer((size_t)len, body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: baseline_server PORT_FILE [IO_THREADS]\n");
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    bad = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    /* As primed's io_threads: argv[2], else the CPUs this process may run on, at most 32
     * (netaddr_io_threads; the cgroup quota is not read here: benchmarks pass the count). */
    cpu_set_t cs;
    unsigned threads = sched_getaffinity(0, sizeof cs, &cs) == 0 ? (unsigned)CPU_COUNT(&cs) : 1;
    if (threads > 32) threads = 32;
    if (argc > 2 && atoi(argv[2]) > 0) threads = (unsigned)atoi(argv[2]);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME,
                         0, NULL, NULL, on_access, NULL, MHD_OPTION_SOCK_ADDR, &sa,
                         MHD_OPTION_THREAD_POOL_SIZE, threads > 1 ? threads : 1,
                         MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536, MHD_OPTION_END);
    if (!d) return 1;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    FILE *f = fopen(argv[1], "w");
    if (!f) return 1;
    fprintf(f, "%u\n", di->port);
    fclose(f);
    int sig;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    MHD_destroy_response(bad);
    return 0;
}
