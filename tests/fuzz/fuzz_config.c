/* fuzz_config.c — libFuzzer harness for config_load: JSON config files, argv and environment.
 *
 * The first input byte picks the source (0: the rest is a --config JSON file, served from a
 * memfd; 1: newline-separated argv; 2: newline-separated environment). Properties checked:
 * errors are one NUL-terminated line; an accepted configuration is inside every documented range
 * and cross-check; and it round-trips: feeding config_each's values back as --flags gives the
 * same struct (so what is logged at startup is what runs).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "primed/config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ITEMS 64

static int file_fd = -1;
static char file_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* --help and --version print to stdout; keep libFuzzer's output readable. */
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
        dup2(devnull, STDOUT_FILENO);
        close(devnull);
    }
    file_fd = memfd_create("fuzz_config.json", 0);
    if (file_fd < 0) abort();
    snprintf(file_path, sizeof(file_path), "/proc/self/fd/%d", file_fd);
    return 0;
}

static void check_error_line(const char *err, size_t errlen)
{
    size_t n = strnlen(err, errlen);
    if (n == 0 || n >= errlen) abort(); /* empty or unterminated */
    if (strchr(err, '\n') != NULL || strchr(err, '\r') != NULL) abort();
}

static bool host_ok(const char *h, size_t cap)
{
    if (strnlen(h, cap) >= cap) return false;
    unsigned char a[16];
    return inet_pton(AF_INET, h, a) == 1 || inet_pton(AF_INET6, h, a) == 1;
}

static void check_ranges(const struct primed_config *c)
{
    bool ok = c->workers >= 1 && c->workers <= 1024 && c->queue_capacity >= 1 &&
              c->queue_capacity <= 1000000 &&
              /* memory_budget 0 = auto, resolved at startup (memwatch) */
              (c->memory_budget == 0 || c->memory_budget >= 64 * 1024) &&
              c->stream_buffer_bytes >= 4096 &&
              (c->memory_budget == 0 || c->stream_buffer_bytes <= c->memory_budget) &&
              c->memory_high_water >= 10 && c->memory_high_water <= 100 &&
              c->memory_low_water >= 5 && c->memory_low_water < c->memory_high_water &&
              (c->heap_dump_threshold == 0 ||
               (c->heap_dump_threshold >= 5 && c->heap_dump_threshold <= 100)) &&
              c->heap_dump_keep >= 1 && c->heap_dump_keep <= 1000 &&
              strnlen(c->cgroup_root, sizeof(c->cgroup_root)) < sizeof(c->cgroup_root) &&
              strnlen(c->heap_dump_dir, sizeof(c->heap_dump_dir)) < sizeof(c->heap_dump_dir) &&
              (c->sieve_segment_bytes == 0 || c->sieve_segment_bytes >= 4096) &&
              c->max_connections >= 1 && c->connection_timeout >= 1 &&
              c->connection_timeout <= 86400 && c->connection_memory_limit >= 4096 &&
              c->request_timeout_ms >= 1 && c->max_body_bytes >= 1 && c->max_uri_bytes >= 64 &&
              c->max_uri_bytes <= 1048576 && c->shutdown_timeout <= 3600 &&
              c->max_list_range >= 1 && c->max_count_range >= 1 && c->max_nth >= 1 &&
              c->max_batch_queries >= 1 && (unsigned)c->log_level <= LOG_ERROR &&
              (c->log_format == LOG_FORMAT_JSON || c->log_format == LOG_FORMAT_TEXT) &&
              host_ok(c->listen_host, sizeof(c->listen_host)) &&
              host_ok(c->debug_host, sizeof(c->debug_host)) &&
              strnlen(c->port_file, sizeof(c->port_file)) < sizeof(c->port_file) &&
              strnlen(c->debug_token, sizeof(c->debug_token)) < sizeof(c->debug_token);
    if (!ok) abort();
    for (const char *p = c->debug_token; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f) abort();
}

struct rebuild {
    const struct primed_config *src;
    char *argv[64];
    int argc;
};

static void add_flag(void *arg, const char *key, const char *value)
{
    struct rebuild *rb = arg;
    if (rb->argc >= 63) abort(); /* more settings than this harness expects: raise the bound */
    if (strcmp(key, "debug_token") == 0) value = rb->src->debug_token; /* logged as "(set)" */
    size_t n = strlen(key) + strlen(value) + 4;
    char *a = malloc(n);
    if (a == NULL) abort();
    snprintf(a, n, "--%s=%s", key, value);
    for (char *p = a + 2; *p != '='; p++)
        if (*p == '_') *p = '-';
    rb->argv[rb->argc++] = a;
}

/* Strings may hold stale bytes past their NUL; debug_host/port mean nothing while off. */
static void normalise(struct primed_config *c)
{
    size_t n;
#define CLEAR_TAIL(f) n = strnlen(c->f, sizeof(c->f)), memset(c->f + n, 0, sizeof(c->f) - n)
    CLEAR_TAIL(listen_host);
    CLEAR_TAIL(debug_host);
    CLEAR_TAIL(debug_token);
    CLEAR_TAIL(port_file);
    CLEAR_TAIL(cgroup_root);
    CLEAR_TAIL(heap_dump_dir);
#undef CLEAR_TAIL
    if (!c->debug_enabled) {
        memset(c->debug_host, 0, sizeof(c->debug_host));
        c->debug_port = 0;
    }
}

static void check_round_trip(const struct primed_config *c)
{
    struct rebuild rb = {.src = c, .argc = 1};
    rb.argv[0] = strdup("primed");
    config_each(c, add_flag, &rb);
    rb.argv[rb.argc] = NULL;
    static struct primed_config again, want;
    char err[512];
    enum config_result r = config_load(&again, rb.argc, rb.argv, NULL, err, sizeof(err));
    if (r != CONFIG_OK) {
        fprintf(stderr, "round trip refused: %s\n", err);
        abort();
    }
    want = *c;
    normalise(&want);
    normalise(&again);
    if (memcmp(&want, &again, sizeof(want)) != 0) {
        fprintf(stderr, "round trip changed the configuration\n");
        abort();
    }
    for (int i = 0; i < rb.argc; i++)
        free(rb.argv[i]);
}

/* Split data on '\n' into NUL-terminated items inside buf; drops --config/PRIMED_CONFIG so the
 * fuzzer cannot make the harness read arbitrary files (or block on a FIFO). */
static int split(char *buf, size_t size, char **items, int max)
{
    int n = 0;
    char *p = buf, *end = buf + size;
    while (p <= end && n < max) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL) nl = end;
        *nl = '\0';
        if (strstr(p, "config") == NULL && strstr(p, "CONFIG") == NULL) items[n++] = p;
        p = nl + 1;
    }
    items[n] = NULL;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192) return -1;
    unsigned mode = data[0] % 3;
    data++, size--;
    char *buf = malloc(size + 1); /* +1: split() writes a NUL at buf[size] */
    if (buf == NULL) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';

    char *items[MAX_ITEMS + 2];
    char *argv[MAX_ITEMS + 2];
    char *const *envp = NULL;
    int argc = 1;
    argv[0] = "primed";
    if (mode == 0) {
        if (ftruncate(file_fd, 0) != 0 || pwrite(file_fd, data, size, 0) != (ssize_t)size) abort();
        argv[argc++] = "--config";
        argv[argc++] = file_path;
    } else if (mode == 1) {
        argc += split(buf, size, argv + 1, MAX_ITEMS);
    } else {
        split(buf, size, items, MAX_ITEMS);
        envp = items;
    }
    argv[argc] = NULL;

    static struct primed_config cfg;
    char err[256];
    memset(err, 'x', sizeof(err));
    enum config_result r = config_load(&cfg, argc, argv, envp, err, sizeof(err));
    switch (r) {
    case CONFIG_OK:
        check_ranges(&cfg);
        check_round_trip(&cfg);
        break;
    case CONFIG_ERROR:
        check_error_line(err, sizeof(err));
        break;
    case CONFIG_EXIT_OK:
        if (mode != 1) abort(); /* only --help/--version exit early */
        break;
    default:
        abort();
    }
    free(buf);
    return 0;
}
