/* config.c — defaults < JSON file < PRIMED_* environment < command-line flags, into one struct.
 *
 * One table (`settings`) names every setting once: its JSON key, from which the flag
 * (--queue-capacity) and the environment name (PRIMED_QUEUE_CAPACITY) are derived, its type,
 * accepted range, field and help. All four sources reduce a value to a string and go through the
 * same setter, so a setting cannot be accepted by one source and refused by another. Nothing is
 * clamped: an unknown name or a bad value is a CONFIG_ERROR naming the key and the range. This
 * module only reads and validates; it never opens sockets or starts anything. A value's text ↔
 * field (parsing, ranges, formatting, the error line) is config_value.c's.
 */
#include "primed/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "primed/numparse.h"
#include "primed/ratelimit.h"

#include "config_int.h"

#ifndef PRIMED_VERSION
#define PRIMED_VERSION "0.0.0"
#endif
#ifndef PRIMED_REVISION
#define PRIMED_REVISION "unknown"
#endif

static const struct setting settings[] = {
    {"listen", T_LISTEN, 0, 0, 0, 65535, NULL, "HOST:PORT",
     "Address of the API listener. HOST is an IPv4 address, [IPv6] or localhost; port 0 picks "
     "a free port (see --port-file)."},
    {"debug_listen", T_DEBUG_LISTEN, 0, 0, 0, 65535, NULL, "HOST:PORT|off",
     "Address of the debug listener (/debug/pprof, /debug/heap), or off. A non-loopback HOST "
     "requires --debug-token."},
    {"debug_token", T_STRING, F(debug_token), CONFIG_TOKEN_MAX, 0, 0, NULL, "TOKEN",
     "Bearer token the debug listener requires (printable ASCII, no spaces); empty = none."},
    {"port_file", T_STRING, F(port_file), CONFIG_PATH_MAX, 0, 0, NULL, "PATH",
     "Once listening, write \"API_PORT DEBUG_PORT\\n\" here (DEBUG_PORT 0 when off)."},
    {"workers", T_UINT, F(workers), 0, 1, 1024, NULL, "N", "Sieve worker threads."},
    {"queue_capacity", T_UINT, F(queue_capacity), 0, 1, 1000000, NULL, "N",
     "Jobs that may wait for a worker; beyond it requests get 503 overloaded."},
    {"memory_budget", T_BYTES, F(memory_budget), 0, 64 * KIB, TIB, "auto", "BYTES|auto",
     "Total bytes of stream buffers across all responses being streamed; auto (or 0) = 1/4 of "
     "the memory limit (cgroup, else physical memory), at least 16MiB, at most 256MiB. Never "
     "more than half the limit: a larger value is clamped, with a warning, at start and when "
     "the limit changes."},
    {"stream_buffer_bytes", T_BYTES, F(stream_buffer_bytes), 0, 4 * KIB, GIB, NULL, "BYTES",
     "Buffer bytes per streamed response (at most --memory-budget)."},
    {"sieve_segment_bytes", T_BYTES, F(sieve_segment_bytes), 0, 4 * KIB, GIB, "auto", "BYTES",
     "Sieve segment size per worker; 0 sizes it from the CPU cache."},
    {"max_connections", T_UINT, F(max_connections), 0, 1, 1000000, NULL, "N",
     "Concurrent client connections."},
    {"io_threads", T_UINT, F(io_threads), 0, 1, 256, "auto", "N|auto",
     "Threads serving the main listener's connections; auto (or 0) = the CPUs the process may "
     "use (affinity and cgroup cpu.max), at most 32."},
    {"max_connections_per_ip", T_UINT, F(max_connections_per_ip), 0, 1, 1000000, "unlimited", "N",
     "Concurrent connections from one client address."},
    {"connection_timeout", T_UINT, F(connection_timeout), 0, 1, 86400, NULL, "S",
     "Seconds an idle connection is kept open."},
    {"connection_memory_limit", T_BYTES, F(connection_memory_limit), 0, 4 * KIB, GIB, NULL, "BYTES",
     "Memory per connection for request headers and buffers."},
    {"request_timeout_ms", T_UINT, F(request_timeout_ms), 0, 1, 3600000, NULL, "MS",
     "Deadline of one request; beyond it the answer is 504 deadline_exceeded."},
    {"max_body_bytes", T_BYTES, F(max_body_bytes), 0, 1, GIB, NULL, "BYTES",
     "Largest request body (batch queries); beyond it 413 body_too_large."},
    {"request_memory_budget", T_BYTES, F(request_memory_budget), 0, 64 * KIB, TIB, NULL, "BYTES",
     "Total bytes of request bodies and batch parses held at once; beyond it 503 overloaded."},
    {"request_memory_per_client", T_BYTES, F(request_memory_per_client), 0, 4 * KIB, TIB, "auto",
     "BYTES|auto",
     "Most request-body bytes one client may hold at once (its share of request_memory_budget); "
     "auto = 1/8 of the budget, at least max_body_bytes + 1. Beyond it 503 overloaded."},
    {"body_timeout_ms", T_UINT, F(body_timeout_ms), 0, 100, 3600000, NULL, "MS",
     "A request body must arrive within this, plus 1 s per body_min_rate bytes received; "
     "beyond it 408 request_timeout and the connection closes."},
    {"body_min_rate", T_UINT, F(body_min_rate), 0, 1, 1000000000, NULL, "BYTES/S",
     "Bytes of body that earn 1 s more of body_timeout_ms."},
    {"max_uri_bytes", T_UINT, F(max_uri_bytes), 0, 64, 1048576, NULL, "N",
     "Longest request URI; beyond it 414 uri_too_long."},
    {"shutdown_timeout", T_UINT, F(shutdown_timeout), 0, 0, 3600, NULL, "S",
     "Seconds to drain in-flight requests after SIGTERM/SIGINT before exiting."},
    {"max_list_range", T_U64, F(max_list_range), 0, 1, UINT64_MAX, NULL, "N",
     "Widest hi-lo range of /v1/primes."},
    {"max_count_range", T_U64, F(max_count_range), 0, 1, UINT64_MAX, NULL, "N",
     "Widest hi-lo range of /v1/count."},
    {"max_nth", T_U64, F(max_nth), 0, 1, UINT64_MAX, NULL, "N", "Largest k of /v1/nth."},
    {"max_batch_queries", T_UINT, F(max_batch_queries), 0, 1, 1000000, NULL, "N",
     "Queries in one batch request."},
    {"refuse_hopeless", T_BOOL, F(refuse_hopeless), 0, 0, 0, NULL, "true|false",
     "Answer 400 limit_exceeded at once when a count/nth/pi's estimated cost on the workers it "
     "may use exceeds twice request_timeout_ms; false attempts it and lets the deadline end it."},
    {"pi_cache_bytes", T_BYTES, F(pi_cache_bytes), 0, 4 * KIB, TIB, "off", "BYTES|off",
     "Bound of the cache of pi(x) values shared by pi, count and nth (least recently used values "
     "go first); charged to request_memory_budget as it fills, so at most half of it; 0 = off."},
    {"inline_small_answers", T_BOOL, F(inline_small_answers), 0, 0, 0, NULL, "true|false",
     "Answer isprime/next/prev on the I/O thread; false hands them to a worker (benchmarks)."},
    {"rate_limit", T_U64, F(rate_limit), 0, 1, 1000000000, "off", "TOKENS/S",
     "Tokens per second each client earns; a request costs 1 token, a sieving one its estimated "
     "CPU milliseconds. Over the limit: 429 rate_limited."},
    {"rate_limit_burst", T_U64, F(rate_limit_burst), 0, 1, 1000000000, "auto = rate_limit",
     "TOKENS", "Tokens a client may spend at once (its bucket size)."},
    {"rate_limit_clients", T_UINT, F(rate_limit_clients), 0, 1, 10000000, NULL, "N",
     "Clients the rate limiter remembers (memory fixed at start, ~44 bytes each); beyond it the "
     "coldest are evicted."},
    {"rate_limit_cpu_factor", T_UINT, F(rate_limit_cpu_factor), 0, 1, 1000, NULL, "N",
     "A rate-limited request is stopped (429 rate_limited) once its worker CPU passes N times "
     "its price in ms, plus 20 ms: a price that underestimates the work cannot be exploited."},
    {"rate_limit_delay_ms", T_UINT, F(rate_limit_delay_ms), 0, 0, 10000, NULL, "MS",
     "Hold a 429 this long before sending it (0 = at once): a client that waits for each "
     "answer then sends a few requests per connection per second, not thousands."},
    {"trusted_proxies", T_CIDRS, F(trusted_proxies), CONFIG_PATH_MAX, 0, 0, NULL, "CIDR,...",
     "Peers whose X-Forwarded-For names the client (balancers); empty = believe no header."},
    {"max_inflight_per_client", T_UINT, F(max_inflight_per_client), 0, 1, 1024, "no cap", "N",
     "Jobs of one client running on workers at once while others wait; 0 = no cap."},
    {"log_level", T_LEVEL, F(log_level), 0, 0, 0, NULL, "debug|info|warn|error",
     "Least severe log level written."},
    {"log_format", T_FORMAT, F(log_format), 0, 0, 0, NULL, "json|text",
     "Log line format on stderr."},
    {"heap_sampling", T_BOOL, F(heap_sampling), 0, 0, 0, NULL, "true|false",
     "tcmalloc heap sampling for /debug/heap (release builds)."},
    {"heap_sample_bytes", T_BYTES, F(heap_sample_bytes), 0, 1024, GIB, NULL, "BYTES",
     "Average bytes between heap samples (TCMALLOC_SAMPLE_PARAMETER)."},
    {"max_profile_seconds", T_UINT, F(max_profile_seconds), 0, 1, 3600, NULL, "S",
     "Upper bound of /debug/pprof/profile?seconds=."},
    {"trace_buffer_bytes", T_BYTES, F(trace_buffer_bytes), 0, 64 * KIB, GIB, NULL, "BYTES",
     "Ring buffers of one /debug/pprof/trace capture, all threads together (charged to "
     "request_memory_budget while it runs); when full the oldest events are dropped."},
    {"cgroup_root", T_STRING, F(cgroup_root), CONFIG_PATH_MAX, 0, 0, NULL, "PATH",
     "Filesystem prefix under which /proc/self/cgroup, /proc/self/mountinfo and the cgroup "
     "mounts are read (tests point it at a fake tree); empty = /."},
    {"memory_high_water", T_UINT, F(memory_high_water), 0, 10, 100, NULL, "PERCENT",
     "Percent of the memory limit (cgroup, else physical memory) above which new streams, large "
     "counts and batches get 503 overloaded and /readyz 503; 100 = never."},
    {"memory_low_water", T_UINT, F(memory_low_water), 0, 5, 99, NULL, "PERCENT",
     "Percent of the memory limit below which shedding stops (below memory_high_water)."},
    {"heap_dump_dir", T_STRING, F(heap_dump_dir), CONFIG_PATH_MAX, 0, 0, NULL, "PATH",
     "Directory for heap-<unix time>-<rss MiB>.prof heap profiles written as memory rises "
     "(release builds; created 0700 if missing; a warning if others can write it); empty = "
     "off."},
    {"heap_dump_threshold", T_UINT, F(heap_dump_threshold), 0, 5, 100, "memory_high_water",
     "PERCENT",
     "Percent of the memory limit at which the first heap profile is written; another every "
     "further 10 %."},
    {"heap_dump_keep", T_UINT, F(heap_dump_keep), 0, 1, 1000, NULL, "N",
     "Heap profiles kept in heap_dump_dir; the oldest that primed wrote are deleted, nothing "
     "else."},
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* PRIMED_* variables that belong to the build and test tooling (scripts/run-tests.sh,
 * scripts/install-deps.sh), not to the server: the server inherits them in tests, so they are
 * ignored rather than rejected. Everything else under PRIMED_ must be a setting. */
static const char *const tooling_env[] = {"PRIMED_BIN", "PRIMED_BUILD", "PRIMED_VARIANT",
                                          "PRIMED_TSAN", "PRIMED_DEPS"};
#define TOOLING_ENV_PREFIX "PRIMED_TEST_"

static unsigned online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) return 1;
    return n > 1024 ? 1024 : (unsigned)n;
}

void config_defaults(struct primed_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    strcpy(cfg->listen_host, "0.0.0.0");
    cfg->listen_port = 8080;
    cfg->debug_enabled = true;
    strcpy(cfg->debug_host, "127.0.0.1");
    cfg->debug_port = 6060;
    cfg->workers = online_cpus();
    cfg->queue_capacity = 256;
    cfg->memory_budget = 0; /* auto: memwatch_auto_budget, at start and when the limit moves */
    cfg->stream_buffer_bytes = 256 * KIB;
    cfg->sieve_segment_bytes = 0;
    cfg->max_connections = 1024;
    cfg->max_connections_per_ip = 256;
    cfg->io_threads = 0; /* auto */
    cfg->connection_timeout = 30;
    cfg->connection_memory_limit = 64 * KIB;
    cfg->request_timeout_ms = 30000;
    cfg->max_body_bytes = 1 * MIB;
    cfg->request_memory_budget = 64 * MIB;
    cfg->request_memory_per_client = 0; /* auto: request_memory_share in main.c */
    cfg->body_timeout_ms = 10000;
    cfg->body_min_rate = 1000;
    cfg->max_uri_bytes = 8192;
    cfg->shutdown_timeout = 10;
    cfg->max_list_range = 1000000000000ULL;
    cfg->max_count_range = UINT64_MAX;
    /* p(1e10) ≈ 2.5e11: π(x) by Meissel in ~0.1 s; up to ~1.4e11 stays under a second */
    cfg->max_nth = 425656284035217743ULL; /* π(2^64-1): every prime */
    cfg->max_batch_queries = 1000;
    cfg->rate_limit = 0; /* off: see docs/configuration.md for why */
    cfg->rate_limit_burst = 0;
    cfg->rate_limit_clients = 65536;
    cfg->rate_limit_delay_ms = 250;
    cfg->rate_limit_cpu_factor = 2;
    cfg->max_inflight_per_client = 0;
    cfg->log_level = LOG_INFO;
    cfg->log_format = LOG_FORMAT_JSON;
    cfg->heap_sampling = true;
    cfg->inline_small_answers = true;
    cfg->refuse_hopeless = true;
    cfg->pi_cache_bytes = 1 * MIB;
    cfg->heap_sample_bytes = 524288;
    cfg->max_profile_seconds = 60;
    cfg->trace_buffer_bytes = 8 * MIB;
    cfg->memory_high_water = 90;
    cfg->memory_low_water = 80;
    cfg->heap_dump_threshold = 0;
    cfg->heap_dump_keep = 5;
}

/* ---- names ---------------------------------------------------------------------------- */

static void flag_name(const struct setting *s, char *out, size_t outlen)
{
    size_t n = strlen(s->name);
    if (n + 3 > outlen) n = outlen - 3;
    out[0] = out[1] = '-';
    for (size_t i = 0; i < n; i++)
        out[2 + i] = s->name[i] == '_' ? '-' : s->name[i];
    out[2 + n] = '\0';
}

static void env_name(const struct setting *s, char *out, size_t outlen)
{
    size_t n = strlen(s->name);
    if (n + 8 > outlen) n = outlen - 8;
    memcpy(out, "PRIMED_", 7);
    for (size_t i = 0; i < n; i++) {
        char c = s->name[i];
        out[7 + i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    out[7 + n] = '\0';
}

static const struct setting *find_by_flag(const char *name, size_t len)
{
    char buf[64];
    for (size_t i = 0; i < NSETTINGS; i++) {
        flag_name(&settings[i], buf, sizeof(buf));
        if (strlen(buf) == len && memcmp(buf, name, len) == 0) return &settings[i];
    }
    return NULL;
}

static const struct setting *find_by_env(const char *name, size_t len)
{
    char buf[64];
    for (size_t i = 0; i < NSETTINGS; i++) {
        env_name(&settings[i], buf, sizeof(buf));
        if (strlen(buf) == len && memcmp(buf, name, len) == 0) return &settings[i];
    }
    return NULL;
}

static const struct setting *find_by_key(const char *key)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].name, key) == 0) return &settings[i];
    return NULL;
}

/* ---- command line --------------------------------------------------------------------- */

/* One flag of argv at *i: sets *name and *namelen (without "--"), *value (NULL for --help and
 * --version) and advances *i. Returns 0, or -1 with err set for a positional argument or a
 * missing value. */
static int next_flag(int argc, char *const argv[], int *i, const char **name, size_t *namelen,
                     const char **value, char *err, size_t errlen)
{
    const char *a = argv[*i];
    if (strcmp(a, "-h") == 0)
        a = "--help";
    else if (strcmp(a, "-V") == 0)
        a = "--version";
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
        char shown[80];
        config_show_value(a, shown, sizeof(shown));
        config_set_err(err, errlen, "unexpected argument '%s' (flags start with --; see --help)",
                       shown);
        return -1;
    }
    a += 2;
    const char *eq = strchr(a, '=');
    *name = a;
    *namelen = eq != NULL ? (size_t)(eq - a) : strlen(a);
    (*i)++;
    bool valueless = (*namelen == 4 && memcmp(a, "help", 4) == 0) ||
                     (*namelen == 7 && memcmp(a, "version", 7) == 0);
    if (valueless) {
        if (eq != NULL) {
            config_set_err(err, errlen, "--%.*s takes no value", (int)*namelen, a);
            return -1;
        }
        *value = NULL;
        return 0;
    }
    if (eq != NULL) {
        *value = eq + 1;
        return 0;
    }
    if (*i >= argc) {
        config_set_err(err, errlen, "--%.*s: missing value (see --help)", (int)*namelen, a);
        return -1;
    }
    *value = argv[(*i)++];
    return 0;
}

static bool is_config_flag(const char *name, size_t len)
{
    return len == 6 && memcmp(name, "config", 6) == 0;
}

/* ---- JSON file ------------------------------------------------------------------------ */

static int load_file(struct primed_config *cfg, const char *path, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        if (jerr.line < 1)
            config_set_err(err, errlen, "--config %s: %s", path, jerr.text);
        else
            config_set_err(err, errlen, "--config %s: line %d column %d: %s", path, jerr.line,
                           jerr.column, jerr.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root)) {
        config_set_err(err, errlen, "--config %s: must be a JSON object of settings", path);
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        const struct setting *s = find_by_key(key);
        char src[CONFIG_PATH_MAX + 80], buf[64];
        char kshown[80];
        config_show_value(key, kshown, sizeof(kshown));
        snprintf(src, sizeof(src), "\"%s\" in %s", kshown, path);
        if (s == NULL) {
            config_set_err(err, errlen, "--config %s: unknown key \"%s\" (see --help for the keys)",
                           path, kshown);
            goto out;
        }
        const char *v;
        if (json_is_string(val)) {
            v = json_string_value(val);
            if (strlen(v) != json_string_length(val)) {
                config_bad_value(s, src, "string with a NUL byte", err, errlen);
                goto out;
            }
        } else if (json_is_integer(val)) {
            snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(val));
            v = buf;
        } else if (json_is_real(val)) {
            /* 1e12 in JSON is a real to jansson; accept it when it is a whole number. */
            double d = json_real_value(val);
            if (d >= 0 && d < 18446744073709551616.0 && d == floor(d))
                snprintf(buf, sizeof(buf), "%.0f", d);
            else
                snprintf(buf, sizeof(buf), "%g", d);
            v = buf;
        } else if (json_is_boolean(val)) {
            v = json_is_true(val) ? "true" : "false";
        } else {
            v = json_is_null(val) ? "null" : json_is_array(val) ? "an array" : "an object";
        }
        if (config_set_value(cfg, s, src, v, err, errlen) != 0) goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* ---- environment ---------------------------------------------------------------------- */

static bool is_tooling_env(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(tooling_env) / sizeof(tooling_env[0]); i++)
        if (strlen(tooling_env[i]) == len && memcmp(tooling_env[i], name, len) == 0) return true;
    return len >= strlen(TOOLING_ENV_PREFIX) &&
           memcmp(name, TOOLING_ENV_PREFIX, strlen(TOOLING_ENV_PREFIX)) == 0;
}

static int load_env(struct primed_config *cfg, char *const envp[], char *err, size_t errlen)
{
    if (envp == NULL) return 0;
    for (size_t i = 0; envp[i] != NULL; i++) {
        const char *e = envp[i];
        if (strncmp(e, "PRIMED_", 7) != 0) continue;
        const char *eq = strchr(e, '=');
        if (eq == NULL) continue;
        size_t nlen = (size_t)(eq - e);
        if ((nlen == 13 && memcmp(e, "PRIMED_CONFIG", 13) == 0) || is_tooling_env(e, nlen))
            continue;
        const struct setting *s = find_by_env(e, nlen);
        if (s == NULL) {
            char shown[80];
            char name[128];
            snprintf(name, sizeof(name), "%.*s", (int)(nlen < 100 ? nlen : 100), e);
            config_show_value(name, shown, sizeof(shown));
            config_set_err(err, errlen, "%s: unknown PRIMED_ environment variable (see --help)",
                           shown);
            return -1;
        }
        char src[64];
        env_name(s, src, sizeof(src));
        if (config_set_value(cfg, s, src, eq + 1, err, errlen) != 0) return -1;
    }
    return 0;
}

static const char *env_config(char *const envp[])
{
    const char *path = NULL;
    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
        if (strncmp(envp[i], "PRIMED_CONFIG=", 14) == 0) path = envp[i] + 14;
    return path;
}

/* ---- cross-checks --------------------------------------------------------------------- */

static int cross_check(const struct primed_config *cfg, char *err, size_t errlen)
{
    char a[CONFIG_HOST_MAX + 8], b[CONFIG_HOST_MAX + 8];
    if (cfg->debug_enabled && cfg->debug_token[0] == '\0' &&
        !config_host_is_loopback(cfg->debug_host)) {
        config_format_hostport(cfg->debug_host, cfg->debug_port, a, sizeof(a));
        config_set_err(err, errlen,
                       "--debug-listen %s is not a loopback address: it requires --debug-token "
                       "(PRIMED_DEBUG_TOKEN), or listen on 127.0.0.1",
                       a);
        return -1;
    }
    if (cfg->memory_budget != 0 && cfg->stream_buffer_bytes > cfg->memory_budget) {
        config_set_err(err, errlen,
                       "--stream-buffer-bytes (%" PRIu64
                       ") must not exceed --memory-budget (%" PRIu64 ")",
                       cfg->stream_buffer_bytes, cfg->memory_budget);
        return -1;
    }
    if (cfg->pi_cache_bytes > cfg->request_memory_budget / 2) {
        config_set_err(err, errlen,
                       "--pi-cache-bytes (%" PRIu64
                       ") must be at most half of --request-memory-budget (%" PRIu64
                       "): a full cache holds that much of it",
                       cfg->pi_cache_bytes, cfg->request_memory_budget);
        return -1;
    }
    if (cfg->memory_low_water >= cfg->memory_high_water) {
        config_set_err(err, errlen,
                       "--memory-low-water (%u) must be below --memory-high-water (%u)",
                       cfg->memory_low_water, cfg->memory_high_water);
        return -1;
    }
    if (cfg->debug_enabled && cfg->listen_port != 0 && cfg->listen_port == cfg->debug_port &&
        (strcmp(cfg->listen_host, cfg->debug_host) == 0 || config_host_is_any(cfg->listen_host) ||
         config_host_is_any(cfg->debug_host))) {
        config_format_hostport(cfg->listen_host, cfg->listen_port, a, sizeof(a));
        config_format_hostport(cfg->debug_host, cfg->debug_port, b, sizeof(b));
        config_set_err(err, errlen, "--listen %s and --debug-listen %s would use the same port", a,
                       b);
        return -1;
    }
    return 0;
}

/* ---- entry points --------------------------------------------------------------------- */

enum config_result config_load(struct primed_config *cfg, int argc, char *const argv[],
                               char *const envp[], char *err, size_t errlen)
{
    const char *name, *value;
    size_t nlen;
    if (err != NULL && errlen > 0) err[0] = '\0';
    config_defaults(cfg);

    /* Pass 1 over argv: --help/--version win at once; find --config; reject unknown flags
     * before reading any file. */
    const char *file = env_config(envp);
    const char *file_src = "PRIMED_CONFIG";
    for (int i = 1; i < argc;) {
        if (next_flag(argc, argv, &i, &name, &nlen, &value, err, errlen) != 0) return CONFIG_ERROR;
        if (value == NULL && nlen == 4) {
            config_usage(stdout);
            return CONFIG_EXIT_OK;
        }
        if (value == NULL) {
            printf("primed %s (%s)\n", PRIMED_VERSION, PRIMED_REVISION);
            return CONFIG_EXIT_OK;
        }
        if (is_config_flag(name, nlen)) {
            file = value;
            file_src = "--config";
            continue;
        }
        if (find_by_flag(name - 2, nlen + 2) == NULL) {
            char flag[80];
            snprintf(flag, sizeof(flag), "--%.*s", (int)(nlen < 64 ? nlen : 64), name);
            char shown[96];
            config_show_value(flag, shown, sizeof(shown));
            config_set_err(err, errlen, "%s: unknown flag (see --help)", shown);
            return CONFIG_ERROR;
        }
    }

    if (file != NULL) {
        if (file[0] == '\0') {
            config_set_err(err, errlen, "%s: must be a file path, got ''", file_src);
            return CONFIG_ERROR;
        }
        if (load_file(cfg, file, err, errlen) != 0) return CONFIG_ERROR;
    }
    if (load_env(cfg, envp, err, errlen) != 0) return CONFIG_ERROR;

    /* Pass 2: apply the flags, in order (a later repeat wins). */
    for (int i = 1; i < argc;) {
        if (next_flag(argc, argv, &i, &name, &nlen, &value, err, errlen) != 0) return CONFIG_ERROR;
        if (is_config_flag(name, nlen)) continue;
        const struct setting *s = find_by_flag(name - 2, nlen + 2);
        char src[64];
        flag_name(s, src, sizeof(src));
        if (config_set_value(cfg, s, src, value, err, errlen) != 0) return CONFIG_ERROR;
    }

    if (cross_check(cfg, err, errlen) != 0) return CONFIG_ERROR;
    return CONFIG_OK;
}

void config_each(const struct primed_config *cfg,
                 void (*fn)(void *arg, const char *key, const char *value), void *arg)
{
    char v[CONFIG_PATH_MAX + 16];
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *s = &settings[i];
        if (s->type == T_STRING && s->off == F(debug_token))
            snprintf(v, sizeof(v), "%s", cfg->debug_token[0] ? "(set)" : "");
        else
            config_format_setting(cfg, s, v, sizeof(v));
        fn(arg, s->name, v);
    }
}

/* Word-wrap text to 78 columns with a 6-space indent. */
static void print_wrapped(FILE *out, const char *text)
{
    const size_t indent = 6, width = 78;
    size_t col = 0;
    const char *p = text;
    while (*p != '\0') {
        while (*p == ' ')
            p++;
        size_t w = strcspn(p, " ");
        if (w == 0) break;
        if (col == 0) {
            fprintf(out, "%*s", (int)indent, "");
            col = indent;
        } else if (col + 1 + w > width) {
            fprintf(out, "\n%*s", (int)indent, "");
            col = indent;
        } else {
            fputc(' ', out);
            col++;
        }
        fwrite(p, 1, w, out);
        col += w;
        p += w;
    }
    if (col > 0) fputc('\n', out);
}

void config_usage(FILE *out)
{
    struct primed_config d;
    config_defaults(&d);
    fprintf(out,
            "Usage: primed [--config FILE] [--FLAG VALUE | --FLAG=VALUE]...\n"
            "\n"
            "primed %s: an HTTP service for primes in 0 ... 2^64-1.\n"
            "Every setting can come from a JSON file (key as below with '_': \"queue_capacity\"),\n"
            "the environment (PRIMED_QUEUE_CAPACITY) or a flag (--queue-capacity); later sources\n"
            "win: defaults < file < environment < flags. Numbers accept the form 1e12.\n"
            "\n"
            "  --config FILE            env PRIMED_CONFIG. JSON object of settings.\n"
            "  --help, -h               Print this help and exit.\n"
            "  --version, -V            Print the version and exit.\n",
            PRIMED_VERSION);
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *s = &settings[i];
        char flag[64], env[64], def[CONFIG_PATH_MAX + 16], range[192], left[128];
        flag_name(s, flag, sizeof(flag));
        env_name(s, env, sizeof(env));
        config_format_setting(&d, s, def, sizeof(def));
        config_range_text(s, range, sizeof(range));
        snprintf(left, sizeof(left), "%s %s", flag, s->meta);
        if (strcmp(s->name, "workers") == 0)
            snprintf(def, sizeof(def), "online CPUs (%u here)", d.workers);
        else if (def[0] == '\0')
            snprintf(def, sizeof(def), "none");
        else if (s->zero != NULL && strcmp(def, "0") == 0)
            snprintf(def, sizeof(def), "0 (%s)", s->zero);
        char rest[CONFIG_PATH_MAX + 1024];
        snprintf(rest, sizeof(rest), "env %s; default %s; %s.", env, def, range);
        fprintf(out, "\n  %s\n", left);
        print_wrapped(out, s->help);
        print_wrapped(out, rest);
    }
}
