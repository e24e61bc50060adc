/* config.h — every setting of primed in one struct.
 *
 * Filled, in increasing precedence, from built-in defaults, a JSON file (--config FILE), the
 * environment (PRIMED_<KEY>, key upper-cased with '-' → '_') and command-line flags (--key).
 * Each setting has one name used in all four places (JSON key "queue_capacity" == env
 * PRIMED_QUEUE_CAPACITY == flag --queue-capacity). Unknown keys and bad values are rejected with
 * a message naming the key and the accepted range; nothing is silently clamped.
 */
#ifndef PRIMED_CONFIG_H
#define PRIMED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

enum log_format { LOG_FORMAT_JSON = 0, LOG_FORMAT_TEXT = 1 };
enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

#define CONFIG_HOST_MAX 256
#define CONFIG_TOKEN_MAX 256
#define CONFIG_PATH_MAX 1024

struct primed_config {
    /* listeners */
    char listen_host[CONFIG_HOST_MAX];  /* default "0.0.0.0" */
    uint16_t listen_port;               /* default 8080; 0 = ephemeral (tests) */
    bool debug_enabled;                 /* false when --debug-listen off */
    char debug_host[CONFIG_HOST_MAX];   /* default "127.0.0.1" */
    uint16_t debug_port;                /* default 6060; 0 = ephemeral */
    char debug_token[CONFIG_TOKEN_MAX]; /* required when debug_host is not loopback */
    char port_file[CONFIG_PATH_MAX];    /* if set, "main_port debug_port\n" is written here once
                                           listening (tests use ephemeral ports) */

    /* work */
    unsigned workers;             /* default: online CPUs; 1 … 1024 */
    unsigned queue_capacity;      /* default 256; 1 … 1,000,000 */
    uint64_t memory_budget;       /* bytes for stream buffers; 0 = auto (memwatch.h) */
    uint64_t stream_buffer_bytes; /* per stream, default 256 KiB (4 × 64 KiB) */
    uint64_t sieve_segment_bytes; /* 0 = auto */

    /* HTTP limits */
    unsigned max_connections;           /* default 1024 */
    unsigned max_connections_per_ip;    /* default 256; 0 = unlimited */
    unsigned io_threads;                /* main listener's I/O threads; 0 = auto (netaddr.h) */
    unsigned connection_timeout;        /* idle seconds, default 30 */
    uint64_t connection_memory_limit;   /* bytes per connection, default 64 KiB */
    unsigned request_timeout_ms;        /* default 30000 */
    uint64_t max_body_bytes;            /* default 1 MiB */
    uint64_t request_memory_budget;     /* bodies + batch parses held at once, default 64 MiB */
    uint64_t request_memory_per_client; /* one client's share of it, 0 = auto (budget / 8) */
    unsigned body_timeout_ms;           /* a body must arrive within this, default 10000 */
    unsigned body_min_rate;             /* … plus 1 s per this many bytes, default 1000 */
    unsigned max_uri_bytes;             /* default 8192 */
    unsigned shutdown_timeout;          /* seconds, default 10 */

    /* API limits */
    uint64_t max_list_range;    /* widest /v1/primes range (hi-lo), default 1e12 */
    uint64_t max_count_range;   /* widest /v1/count range, default 2^64-1 (no limit) */
    uint64_t max_nth;           /* largest k for /v1/nth, default 1e10 */
    unsigned max_batch_queries; /* default 1000 */
    bool inline_small_answers;  /* default true: isprime/next/prev on the I/O thread (api.c) */
    bool refuse_hopeless;       /* default true: refuse at once what cannot fit its deadline */
    uint64_t pi_cache_bytes; /* bound of the π value cache (picache.h), default 1 MiB; 0 = off */

    /* per-client limits (ratelimit.c, pool.c); off by default: see docs/configuration.md */
    uint64_t rate_limit;                   /* tokens per second per client, 0 = off */
    uint64_t rate_limit_burst;             /* tokens, 0 = auto (= rate_limit) */
    unsigned rate_limit_clients;           /* buckets in the client table, default 65536 */
    unsigned rate_limit_delay_ms;          /* a 429 is held this long (tarpit), default 250 */
    unsigned rate_limit_cpu_factor;        /* metered: stop at N × price ms of CPU, default 2 */
    char trusted_proxies[CONFIG_PATH_MAX]; /* CIDR list whose X-Forwarded-For is believed */
    unsigned max_inflight_per_client;      /* a client's jobs running at once, 0 = no cap */

    /* logging and profiling */
    enum log_level log_level;     /* default info */
    enum log_format log_format;   /* default json */
    bool heap_sampling;           /* default true: tcmalloc sampled heap for /debug/heap */
    uint64_t heap_sample_bytes;   /* TCMALLOC_SAMPLE_PARAMETER, default 524288 */
    unsigned max_profile_seconds; /* /debug/pprof/profile?seconds= upper bound, default 60 */
    uint64_t trace_buffer_bytes;  /* one /debug/pprof/trace capture's rings, default 8 MiB */

    /* living inside a memory limit (memwatch.h) */
    char cgroup_root[CONFIG_PATH_MAX];   /* prefix of /proc and the cgroup mounts; "" = "/" */
    unsigned memory_high_water;          /* percent of the limit: shed above, default 90 */
    unsigned memory_low_water;           /* percent: back to normal below, default 80 */
    char heap_dump_dir[CONFIG_PATH_MAX]; /* "" = no heap dumps */
    unsigned heap_dump_threshold;        /* percent; 0 = memory_high_water */
    unsigned heap_dump_keep;             /* newest dumps kept, default 5 */
};

/* Built-in defaults (workers = online CPUs). */
void config_defaults(struct primed_config *cfg);

enum config_result {
    CONFIG_OK = 0,      /* run the server */
    CONFIG_EXIT_OK = 1, /* --help or --version was printed to stdout: exit 0 */
    CONFIG_ERROR = 2,   /* `err` says what is wrong (key and accepted range): exit 2 */
};

/* Fill cfg from defaults, --config FILE, environ (envp, NULL-terminated, PRIMED_* only) and
 * argv, in that precedence. On CONFIG_ERROR writes one line (no newline) into err[errlen]. */
enum config_result config_load(struct primed_config *cfg, int argc, char *const argv[],
                               char *const envp[], char *err, size_t errlen);

/* The --help text (flags, env names, defaults, ranges). */
void config_usage(FILE *out);

/* Calls fn(arg, key, value) for every setting, in table order, with the value formatted as a
 * flag would take it (listen as HOST:PORT, debug_token shown only as "(set)" or ""). For
 * logging the effective configuration at startup. */
void config_each(const struct primed_config *cfg,
                 void (*fn)(void *arg, const char *key, const char *value), void *arg);

#endif
