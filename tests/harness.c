/* harness.c — see harness.h. Shared by every test binary; only e2e tests call into it.
 * Starts primed the way scripts/lib.sh and tests/rawhttp.py do (docs/testing.md, "Starting
 * primed"): same flags, port file, /readyz probe, died-detection and start timeout. */
#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static const char *bin_path(void)
{
    const char *b = getenv("PRIMED_BIN");
    return b && *b ? b : "build/primed";
}

/* Sanitizer builds run several times slower: waits scale like scripts/lib.sh's LIB_SLOW. */
static int slow_factor(void)
{
    const char *v = getenv("PRIMED_VARIANT");
    const char *b = bin_path();
    if (v && *v) return strcmp(v, "asan") == 0 ? 3 : strcmp(v, "tsan") == 0 ? 5 : 1;
    return strstr(b, "/asan/") ? 3 : strstr(b, "/tsan/") ? 5 : 1;
}

static long start_timeout_ms(void)
{
    const char *t = getenv("PRIMED_TEST_START_TIMEOUT");
    long s = t && *t ? strtol(t, NULL, 10) : 0;
    return (s > 0 ? s : 10L * slow_factor()) * 1000L;
}

/* The last lines of the server's log on stderr, so a failed start says why. */
static void log_tail(const struct primed_proc *p, const char *why)
{
    fprintf(stderr, "harness: primed %s; last lines of %s:\n", why, p->log_file);
    FILE *f = fopen(p->log_file, "r");
    if (!f) return;
    char buf[4096];
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : 0;
    fseek(f, size > (long)sizeof buf - 1 ? size - (long)sizeof buf + 1 : 0, SEEK_SET);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    fprintf(stderr, "%s\n---\n", buf);
}

/* GET /readyz answers 200 (Connection: close, so the probe holds no connection slot). */
static int ready(int port)
{
    struct http_result r;
    static const char *const hdrs[] = {"Connection: close", NULL};
    int ok = http_do(port, "GET", "/readyz", NULL, hdrs, &r) == 0 && r.status == 200;
    http_result_free(&r);
    return ok;
}

int primed_start(struct primed_proc *p, const char *const *extra_args)
{
    static unsigned seq;
    memset(p, 0, sizeof *p);
    snprintf(p->port_file, sizeof p->port_file, "/tmp/primed-test-%d-%u.port", (int)getpid(), seq);
    snprintf(p->log_file, sizeof p->log_file, "/tmp/primed-test-%d-%u.log", (int)getpid(), seq++);
    unlink(p->port_file);

    const char *argv[64];
    int n = 0;
    int has_debug = 0, has_listen = 0;
    argv[n++] = bin_path();
    for (const char *const *a = extra_args; a && *a && n < 56; a++) {
        if (strncmp(*a, "--debug-listen", 14) == 0) has_debug = 1;
        if (strncmp(*a, "--listen", 8) == 0) has_listen = 1;
        argv[n++] = *a;
    }
    if (!has_listen) {
        argv[n++] = "--listen";
        argv[n++] = "127.0.0.1:0";
    }
    if (!has_debug) {
        argv[n++] = "--debug-listen";
        argv[n++] = "127.0.0.1:0";
    }
    argv[n++] = "--port-file";
    argv[n++] = p->port_file;
    argv[n] = NULL;

    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int fd = open(p->log_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    p->pid = pid;
    long deadline = now_ms() + start_timeout_ms();
    while (now_ms() < deadline) {
        if (p->port <= 0) {
            FILE *f = fopen(p->port_file, "r"); /* written by rename: complete when present */
            if (f) {
                if (fscanf(f, "%d %d", &p->port, &p->debug_port) < 1) p->port = 0;
                fclose(f);
            }
        }
        if (p->port > 0 && ready(p->port)) return 0;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            p->pid = 0;
            char why[64];
            snprintf(why, sizeof why, "exited with status %d while starting",
                     WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
            log_tail(p, why);
            return -1;
        }
        usleep(10000);
    }
    log_tail(p, "was not ready (port file + /readyz 200) in time; killed");
    primed_stop(p, SIGKILL, 2000);
    return -1;
}

int primed_stop(struct primed_proc *p, int sig, int timeout_ms)
{
    if (p->pid <= 0) return -1;
    kill(p->pid, sig);
    long deadline = now_ms() + timeout_ms;
    int st = 0;
    for (;;) {
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) break;
        if (now_ms() >= deadline) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
            p->pid = 0;
            unlink(p->port_file);
            return -1;
        }
        usleep(5000);
    }
    p->pid = 0;
    unlink(p->port_file);
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

struct growbuf {
    char *p;
    size_t len, cap;
};

static size_t grow_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct growbuf *g = ud;
    size_t n = size * nmemb;
    if (g->len + n + 1 > g->cap) {
        size_t cap = g->cap ? g->cap : 4096;
        while (cap < g->len + n + 1)
            cap *= 2;
        char *np = realloc(g->p, cap);
        if (!np) return 0;
        g->p = np;
        g->cap = cap;
    }
    memcpy(g->p + g->len, ptr, n);
    g->len += n;
    g->p[g->len] = '\0';
    return n;
}

int http_do(int port, const char *method, const char *path, const char *body,
            const char *const *extra_headers, struct http_result *r)
{
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    if (!c) return -1;
    char url[4096];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    struct growbuf b = {0}, h = {0};
    struct curl_slist *hl = NULL;
    for (const char *const *x = extra_headers; x && *x; x++)
        hl = curl_slist_append(hl, *x);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (hl) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, grow_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, grow_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r->seconds);
    }
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    r->body = b.p ? b.p : strdup("");
    r->body_len = b.len;
    r->headers = h.p ? h.p : strdup("");
    return rc == CURLE_OK ? 0 : -1;
}

int http_get(int port, const char *path, struct http_result *r)
{
    return http_do(port, "GET", path, NULL, NULL, r);
}

void http_result_free(struct http_result *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof *r);
}

int http_header_value(const struct http_result *r, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t ll = eol ? (size_t)(eol - line) : strlen(line);
        if (ll > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = (size_t)(line + ll - v);
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
                vl--;
            if (vl >= outlen) vl = outlen - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 0;
        }
        line = eol ? eol + 1 : NULL;
    }
    return -1;
}

long http_metric(int port, const char *sample)
{
    struct http_result m;
    long v = -1;
    if (http_get(port, "/metrics", &m) == 0 && m.body) {
        char key[256];
        snprintf(key, sizeof key, "\n%s ", sample);
        const char *p = strstr(m.body, key);
        if (p) v = strtol(p + strlen(key), NULL, 10);
    }
    http_result_free(&m);
    return v;
}

long http_wait_metric(int port, const char *sample, long want, int ms)
{
    long v = -1;
    for (int i = 0; i <= ms / 10; i++) {
        if ((v = http_metric(port, sample)) == want) break;
        usleep(10000);
    }
    return v;
}

int http_send_raw(int port, const char *bytes)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    size_t n = strlen(bytes);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || write(fd, bytes, n) != (ssize_t)n) {
        close(fd);
        return -1;
    }
    return fd;
}
