/* harness.h — end-to-end test helpers: start the real build/primed on 127.0.0.1 with ephemeral
 * ports, talk HTTP to it with libcurl, stop it with a signal and collect its exit status.
 *
 * The binary is $PRIMED_BIN (set by scripts/run-tests.sh), else build/primed. Servers listen on
 * 127.0.0.1 only; every wait is bounded.
 */
#ifndef PRIMED_TEST_HARNESS_H
#define PRIMED_TEST_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

struct primed_proc {
    pid_t pid;
    int port;       /* main listener */
    int debug_port; /* debug listener, 0 when off */
    char port_file[128];
    char log_file[128]; /* the server's stderr */
};

/* Start primed with extra flags (NULL-terminated, may be NULL). Adds --listen 127.0.0.1:0,
 * --debug-listen 127.0.0.1:0 (unless extra args give them) and --port-file; stdout and stderr go
 * to log_file. Ready when the port file names the ports and GET /readyz answers 200, within
 * PRIMED_TEST_START_TIMEOUT seconds (default 10 × 3 for asan, × 5 for tsan) — the contract of
 * docs/testing.md, shared with scripts/lib.sh and tests/rawhttp.py. Returns 0, or -1 after
 * printing the log's tail (the server exited while starting, or was not ready and was killed). */
int primed_start(struct primed_proc *p, const char *const *extra_args);
/* Send sig, wait ≤ timeout_ms for exit. Returns the exit status (0…255), 128+signal if it died of
 * a signal, or -1 on timeout (then it is SIGKILLed). */
int primed_stop(struct primed_proc *p, int sig, int timeout_ms);

struct http_result {
    long status;
    char *body; /* NUL-terminated, malloc'd */
    size_t body_len;
    char *headers; /* raw response headers, NUL-terminated, malloc'd */
    double seconds;
};
/* One request to http://127.0.0.1:port<path>. method "GET", "POST", …; body may be NULL;
 * extra_headers is a NULL-terminated list of "Name: value" (may be NULL). Returns 0 when an
 * HTTP response was received, -1 otherwise. Free with http_result_free. */
int http_do(int port, const char *method, const char *path, const char *body,
            const char *const *extra_headers, struct http_result *r);
int http_get(int port, const char *path, struct http_result *r);
void http_result_free(struct http_result *r);
/* Value of a response header (case-insensitive name) copied into out; 0 when found. */
int http_header_value(const struct http_result *r, const char *name, char *out, size_t outlen);
/* One sample of GET /metrics on port: `sample` is the series exactly as exposed ("name" or
 * "name{labels}"); its value, or -1 when the scrape fails or the sample is absent. */
long http_metric(int port, const char *sample);
/* A client on 127.0.0.1:port that sends `bytes` (one or more raw requests) and reads nothing
 * yet; reads on the returned socket time out after 30 s. The caller closes it. */
int http_send_raw(int port, const char *bytes);
/* Poll http_metric every 10 ms, at most ms milliseconds, until it equals want; the last value. */
long http_wait_metric(int port, const char *sample, long want, int ms);

#endif
