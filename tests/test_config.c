/* test_config.c — config_load: defaults, each precedence step (default < file < env < flag),
 * every rejection path with a message naming the key and the range, the example config, and
 * --help/--version. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "testutil.h"
#include "primed/config.h"

#define MAXARGS 32

/* argv/envp from NULL-terminated varargs lists. */
struct call {
    char *argv[MAXARGS];
    int argc;
    char *envp[MAXARGS];
    struct primed_config cfg;
    char err[512];
};

static enum config_result load(struct call *c)
{
    memset(c->err, 'Z', sizeof(c->err)); /* must be overwritten */
    c->err[sizeof(c->err) - 1] = '\0';
    enum config_result r = config_load(&c->cfg, c->argc, c->argv, c->envp, c->err, sizeof(c->err));
    if (r == CONFIG_ERROR) {
        ck_assert_msg(c->err[0] != '\0' && c->err[0] != 'Z', "no message");
        ck_assert_msg(strchr(c->err, '\n') == NULL, "message is not one line: %s", c->err);
    }
    return r;
}

static void set_args(struct call *c, ...)
{
    va_list ap;
    va_start(ap, c);
    c->argc = 0;
    c->argv[c->argc++] = (char *)"primed";
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        c->argv[c->argc++] = a;
    c->argv[c->argc] = NULL;
    va_end(ap);
}

static void set_env(struct call *c, ...)
{
    va_list ap;
    va_start(ap, c);
    int n = 0;
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        c->envp[n++] = a;
    c->envp[n] = NULL;
    va_end(ap);
}

static struct call *new_call(void)
{
    struct call *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    set_args(c, NULL);
    set_env(c, "HOME=/root", "PATH=/usr/bin", NULL);
    return c;
}

/* A temporary JSON file with the given contents; path into out[64]. */
static void write_file(char out[64], const char *contents)
{
    strcpy(out, "/tmp/primed-test-config-XXXXXX");
    int fd = mkstemp(out);
    ck_assert_int_ge(fd, 0);
    size_t n = strlen(contents);
    ck_assert_int_eq(write(fd, contents, n), (ssize_t)n);
    close(fd);
}

/* Expect CONFIG_ERROR with every needle in the message. */
static void expect_error(struct call *c, ...)
{
    ck_assert_int_eq(load(c), CONFIG_ERROR);
    va_list ap;
    va_start(ap, c);
    for (const char *needle; (needle = va_arg(ap, const char *)) != NULL;)
        ck_assert_msg(strstr(c->err, needle) != NULL, "'%s' not in message: %s", needle, c->err);
    va_end(ap);
}

START_TEST(defaults_are_those_of_config_h)
{
    struct call *c = new_call();
    ck_assert_int_eq(load(c), CONFIG_OK);
    struct primed_config *g = &c->cfg;
    ck_assert_str_eq(g->listen_host, "0.0.0.0");
    ck_assert_uint_eq(g->listen_port, 8080);
    ck_assert(g->debug_enabled);
    ck_assert_str_eq(g->debug_host, "127.0.0.1");
    ck_assert_uint_eq(g->debug_port, 6060);
    ck_assert_str_eq(g->debug_token, "");
    ck_assert_str_eq(g->port_file, "");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    ck_assert_uint_eq(g->workers, (unsigned)(cpus < 1 ? 1 : cpus > 1024 ? 1024 : cpus));
    ck_assert_uint_eq(g->queue_capacity, 256);
    ck_assert_uint_eq(g->memory_budget, 0); /* auto */
    ck_assert_uint_eq(g->stream_buffer_bytes, 256ULL << 10);
    ck_assert_uint_eq(g->sieve_segment_bytes, 0);
    ck_assert_uint_eq(g->max_connections, 1024);
    ck_assert_uint_eq(g->max_connections_per_ip, 256);
    ck_assert_uint_eq(g->connection_timeout, 30);
    ck_assert_uint_eq(g->connection_memory_limit, 64ULL << 10);
    ck_assert_uint_eq(g->request_timeout_ms, 30000);
    ck_assert_uint_eq(g->max_body_bytes, 1ULL << 20);
    ck_assert_uint_eq(g->max_uri_bytes, 8192);
    ck_assert_uint_eq(g->shutdown_timeout, 10);
    ck_assert_uint_eq(g->max_list_range, 1000000000000ULL);
    ck_assert_uint_eq(g->max_count_range, UINT64_MAX);
    ck_assert_uint_eq(g->max_nth, 425656284035217743ULL);
    ck_assert_uint_eq(g->max_batch_queries, 1000);
    ck_assert_uint_eq(g->pi_cache_bytes, 1ull << 20);
    ck_assert_int_eq(g->log_level, LOG_INFO);
    ck_assert_int_eq(g->log_format, LOG_FORMAT_JSON);
    ck_assert(g->heap_sampling);
    ck_assert_uint_eq(g->heap_sample_bytes, 524288);
    ck_assert_uint_eq(g->max_profile_seconds, 60);
    ck_assert_str_eq(g->cgroup_root, "");
    ck_assert_uint_eq(g->memory_high_water, 90);
    ck_assert_uint_eq(g->memory_low_water, 80);
    ck_assert_str_eq(g->heap_dump_dir, "");
    ck_assert_uint_eq(g->heap_dump_threshold, 0);
    ck_assert_uint_eq(g->heap_dump_keep, 5);
    free(c);
}
END_TEST

START_TEST(each_source_overrides_the_one_before)
{
    char path[64];
    write_file(path, "{\"queue_capacity\": 10, \"workers\": 3, \"log_level\": \"warn\"}");
    char flag_config[80];
    snprintf(flag_config, sizeof(flag_config), "--config=%s", path);
    struct call *c = new_call();

    /* default */
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert_uint_eq(c->cfg.queue_capacity, 256);
    /* default < file */
    set_args(c, flag_config, NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert_uint_eq(c->cfg.queue_capacity, 10);
    ck_assert_uint_eq(c->cfg.workers, 3);
    ck_assert_int_eq(c->cfg.log_level, LOG_WARN);
    /* file < env */
    set_env(c, "PRIMED_QUEUE_CAPACITY=20", "PRIMED_LOG_LEVEL=error", NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert_uint_eq(c->cfg.queue_capacity, 20);
    ck_assert_uint_eq(c->cfg.workers, 3); /* untouched by env: still the file's */
    ck_assert_int_eq(c->cfg.log_level, LOG_ERROR);
    /* env < flag, both flag spellings */
    set_args(c, flag_config, "--queue-capacity", "30", NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert_uint_eq(c->cfg.queue_capacity, 30);
    set_args(c, "--queue-capacity=40", flag_config, NULL); /* flags win wherever they stand */
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert_uint_eq(c->cfg.queue_capacity, 40);
    ck_assert_int_eq(c->cfg.log_level, LOG_ERROR);
    /* a repeated flag: the last one wins */
    set_args(c, "--queue-capacity=40", "--queue-capacity", "50", NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert_uint_eq(c->cfg.queue_capacity, 50);
    unlink(path);
    free(c);
}
END_TEST

START_TEST(config_file_comes_from_PRIMED_CONFIG_unless_flag_given)
{
    char a[64], b[64], env[96], flag[96];
    write_file(a, "{\"max_nth\": 5}");
    write_file(b, "{\"max_nth\": 7}");
    snprintf(env, sizeof(env), "PRIMED_CONFIG=%s", a);
    snprintf(flag, sizeof(flag), "--config=%s", b);
    struct call *c = new_call();
    set_env(c, env, NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert_uint_eq(c->cfg.max_nth, 5);
    set_args(c, flag, NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert_uint_eq(c->cfg.max_nth, 7);
    unlink(a);
    unlink(b);
    free(c);
}
END_TEST

START_TEST(numbers_take_exponents_and_byte_suffixes)
{
    struct call *c = new_call();
    set_args(c, "--max-list-range", "1e12", "--max-count-range", "18446744073709551615",
             "--memory-budget", "1GiB", "--stream-buffer-bytes=64K", "--connection-memory-limit",
             "8192", "--max-body-bytes", "2M", "--sieve-segment-bytes", "0", "--heap-sample-bytes",
             "1e6", NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert_uint_eq(c->cfg.max_list_range, 1000000000000ULL);
    ck_assert_uint_eq(c->cfg.max_count_range, UINT64_MAX);
    ck_assert_uint_eq(c->cfg.memory_budget, 1ULL << 30);
    ck_assert_uint_eq(c->cfg.stream_buffer_bytes, 64ULL << 10);
    ck_assert_uint_eq(c->cfg.connection_memory_limit, 8192);
    ck_assert_uint_eq(c->cfg.max_body_bytes, 2ULL << 20);
    ck_assert_uint_eq(c->cfg.sieve_segment_bytes, 0);
    ck_assert_uint_eq(c->cfg.heap_sample_bytes, 1000000);
    set_args(c, "--memory-budget", "1TiB", "--sieve-segment-bytes", "32KiB", NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert_uint_eq(c->cfg.memory_budget, 1ULL << 40);
    ck_assert_uint_eq(c->cfg.sieve_segment_bytes, 32ULL << 10);
    /* the word for 0 is accepted wherever 0 has one; a tiny stream buffer check is skipped
     * for auto (resolved at startup) */
    set_args(c, "--memory-budget", "1TiB", "--memory-budget", "auto", "--stream-buffer-bytes", "1G",
             "--heap-dump-threshold", "memory_high_water", NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert_uint_eq(c->cfg.memory_budget, 0);
    ck_assert_uint_eq(c->cfg.heap_dump_threshold, 0);
    free(c);
}
END_TEST

START_TEST(listen_addresses_parse_ipv4_ipv6_localhost_and_off)
{
    struct call *c = new_call();
    set_args(c, "--listen", "127.0.0.1:0", "--debug-listen", "[::1]:6061", NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert_str_eq(c->cfg.listen_host, "127.0.0.1");
    ck_assert_uint_eq(c->cfg.listen_port, 0);
    ck_assert(c->cfg.debug_enabled);
    ck_assert_str_eq(c->cfg.debug_host, "::1");
    ck_assert_uint_eq(c->cfg.debug_port, 6061);
    set_args(c, "--listen=localhost:65535", "--debug-listen=off", NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert_str_eq(c->cfg.listen_host, "127.0.0.1");
    ck_assert_uint_eq(c->cfg.listen_port, 65535);
    ck_assert(!c->cfg.debug_enabled);
    set_args(c, "--listen", "[::]:8080", NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert_str_eq(c->cfg.listen_host, "::");
    free(c);
}
END_TEST

START_TEST(bad_listen_addresses_are_rejected_naming_the_flag)
{
    static const char *const bad[] = {"8080",           ":8080",       "0.0.0.0:", "0.0.0.0:65536",
                                      "0.0.0.0:-1",     "0.0.0.0:80x", "1.2.3:80", "256.0.0.1:80",
                                      "::1:80",         "[::1]80",     "[::1]:",   "[zz]:80",
                                      "example.com:80", "0.0.0.0:1e3", "",         " 0.0.0.0:80",
                                      "0.0.0.0:8080 ",  "[]:80"};
    struct call *c = new_call();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        set_args(c, "--listen", bad[i], NULL);
        expect_error(c, "--listen: must be HOST:PORT", "65535", NULL);
    }
    set_args(c, NULL);
    set_env(c, "PRIMED_DEBUG_LISTEN=on", NULL);
    expect_error(c, "PRIMED_DEBUG_LISTEN: must be off or HOST:PORT", "got 'on'", NULL);
    free(c);
}
END_TEST

START_TEST(bad_numbers_name_the_flag_and_the_range)
{
    struct call *c = new_call();
    set_args(c, "--workers", "abc", NULL);
    ck_assert_int_eq(load(c), CONFIG_ERROR);
    ck_assert_str_eq(c->err, "--workers: must be an integer from 1 to 1024, got 'abc'");
    set_args(c, "--workers=0", NULL);
    expect_error(c, "--workers:", "from 1 to 1024", "got '0'", NULL);
    set_args(c, "--workers=1025", NULL);
    expect_error(c, "--workers:", "got '1025'", NULL);
    set_args(c, "--queue-capacity", "-1", NULL);
    expect_error(c, "--queue-capacity:", "from 1 to 1000000", NULL);
    set_args(c, "--queue-capacity", "1.5", NULL);
    expect_error(c, "--queue-capacity:", NULL);
    set_args(c, "--max-nth", "18446744073709551616", NULL);
    expect_error(c, "--max-nth:", "18446744073709551615", NULL);
    set_args(c, "--max-list-range", "0", NULL);
    expect_error(c, "--max-list-range:", "from 1 to", NULL);
    set_args(c, "--memory-budget", "1KB", NULL);
    expect_error(c, "--memory-budget:", "suffix K, M, G, T", "got '1KB'", NULL);
    set_args(c, "--memory-budget", "2TiB", NULL);
    expect_error(c, "--memory-budget:", "from 64KiB to 1TiB", NULL);
    set_args(c, "--memory-budget", "20000000000TiB", NULL); /* multiplication overflow */
    expect_error(c, "--memory-budget:", NULL);
    set_args(c, "--sieve-segment-bytes", "100", NULL);
    expect_error(c, "--sieve-segment-bytes:", "0 (auto) or", NULL);
    set_args(c, "--connection-timeout", "0", NULL);
    expect_error(c, "--connection-timeout:", NULL);
    set_args(c, "--max-connections-per-ip", "0", NULL); /* 0 = unlimited is accepted */
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert_uint_eq(c->cfg.max_connections_per_ip, 0);
    set_args(c, "--shutdown-timeout", "0", NULL); /* 0 = exit without draining */
    ck_assert_int_eq(load(c), CONFIG_OK);
    free(c);
}
END_TEST

START_TEST(rate_limit_settings_parse_and_proxies_are_validated)
{
    struct call *c = new_call();
    set_args(c, NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert_uint_eq(c->cfg.rate_limit, 0); /* off unless asked for */
    ck_assert_uint_eq(c->cfg.max_inflight_per_client, 0);
    ck_assert_str_eq(c->cfg.trusted_proxies, "");
    set_args(c, "--rate-limit", "1e3", "--rate-limit-burst", "5000", "--rate-limit-clients", "1024",
             "--trusted-proxies", "10.0.0.0/8, fd00::/8 192.0.2.1", "--max-inflight-per-client",
             "2", NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert_uint_eq(c->cfg.rate_limit, 1000);
    ck_assert_uint_eq(c->cfg.rate_limit_burst, 5000);
    ck_assert_uint_eq(c->cfg.rate_limit_clients, 1024);
    ck_assert_str_eq(c->cfg.trusted_proxies, "10.0.0.0/8, fd00::/8 192.0.2.1");
    ck_assert_uint_eq(c->cfg.max_inflight_per_client, 2);
    set_args(c, "--trusted-proxies", "10.0.0.0/33", NULL);
    expect_error(c, "--trusted-proxies:", "IPv4/IPv6", "got '10.0.0.0/33'", NULL);
    set_args(c, "--trusted-proxies", "proxy.example", NULL);
    expect_error(c, "--trusted-proxies:", NULL);
    set_args(c, "--rate-limit", "1000000001", NULL);
    expect_error(c, "--rate-limit:", "0 (off) or an integer from 1 to 1000000000", NULL);
    set_args(c, "--rate-limit-clients", "0", NULL);
    expect_error(c, "--rate-limit-clients:", NULL);
    set_args(c, "--max-inflight-per-client", "1025", NULL);
    expect_error(c, "--max-inflight-per-client:", NULL);
    free(c);
}
END_TEST

START_TEST(bad_enums_and_bools_are_rejected)
{
    struct call *c = new_call();
    set_args(c, "--log-level", "verbose", NULL);
    expect_error(c, "--log-level:", "debug, info, warn, error", "got 'verbose'", NULL);
    set_args(c, "--log-level", "INFO", NULL);
    expect_error(c, "--log-level:", NULL);
    set_args(c, "--log-format", "xml", NULL);
    expect_error(c, "--log-format:", "json, text", NULL);
    set_args(c, "--heap-sampling", "yes", NULL);
    expect_error(c, "--heap-sampling:", "true or false", NULL);
    set_args(c, "--heap-sampling", "false", "--log-format", "text", "--log-level", "debug", NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert(!c->cfg.heap_sampling);
    ck_assert_int_eq(c->cfg.log_format, LOG_FORMAT_TEXT);
    ck_assert_int_eq(c->cfg.log_level, LOG_DEBUG);
    set_env(c, "PRIMED_HEAP_SAMPLING=0", NULL);
    set_args(c, NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert(!c->cfg.heap_sampling);
    free(c);
}
END_TEST

START_TEST(unknown_flags_and_arguments_are_rejected)
{
    struct call *c = new_call();
    set_args(c, "--wokers", "4", NULL);
    expect_error(c, "--wokers: unknown flag", NULL);
    set_args(c, "--queue_capacity=4", NULL); /* the JSON spelling is not a flag */
    expect_error(c, "--queue_capacity: unknown flag", NULL);
    set_args(c, "workers", NULL);
    expect_error(c, "unexpected argument 'workers'", NULL);
    set_args(c, "-w", "4", NULL);
    expect_error(c, "unexpected argument '-w'", NULL);
    set_args(c, "--workers", NULL);
    expect_error(c, "--workers: missing value", NULL);
    set_args(c, "--help=1", NULL);
    expect_error(c, "--help takes no value", NULL);
    set_args(c, "--", NULL);
    expect_error(c, "unexpected argument '--'", NULL);
    free(c);
}
END_TEST

START_TEST(unknown_environment_variables_are_rejected_but_tooling_ones_ignored)
{
    struct call *c = new_call();
    set_env(c, "PRIMED_WOKERS=4", NULL);
    expect_error(c, "PRIMED_WOKERS: unknown PRIMED_ environment variable", NULL);
    set_env(c, "PRIMED_queue_capacity=4", NULL);
    expect_error(c, "PRIMED_queue_capacity: unknown", NULL);
    set_env(c, "PRIMED_WORKERS=lots", NULL);
    expect_error(c, "PRIMED_WORKERS: must be an integer from 1 to 1024", "got 'lots'", NULL);
    /* set by scripts/run-tests.sh and inherited by the servers the e2e tests start */
    set_env(c, "PRIMED_BIN=/x/primed", "PRIMED_BUILD=/x", "PRIMED_VARIANT=asan", "PRIMED_TSAN=1",
            "PRIMED_DEPS=all", "PRIMED_TEST_FOO=1", "PRIMEDX=1", NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    free(c);
}
END_TEST

START_TEST(json_file_errors_name_the_file_and_key)
{
    struct call *c = new_call();
    char path[64], flag[96];
    static const struct {
        const char *contents;
        const char *needle1, *needle2;
    } cases[] = {
        {"{\"wokers\": 4}", "unknown key \"wokers\"", NULL},
        {"{\"queue-capacity\": 4}", "unknown key \"queue-capacity\"", NULL},
        {"{\"config\": \"x\"}", "unknown key \"config\"", NULL},
        {"{\"workers\": 4,}", "line 1", NULL},
        {"{\"workers\": 4,\n \"x\": }", "line 2", NULL},
        {"[1, 2]", "must be a JSON object", NULL},
        {"", "--config", NULL},
        {"{\"workers\": 2000}", "\"workers\" in", "from 1 to 1024"},
        {"{\"workers\": -3}", "\"workers\" in", "got '-3'"},
        {"{\"workers\": 1.5}", "\"workers\" in", "got '1.5'"},
        {"{\"workers\": null}", "\"workers\" in", "got 'null'"},
        {"{\"workers\": [1]}", "\"workers\" in", "got 'an array'"},
        {"{\"heap_sampling\": \"maybe\"}", "\"heap_sampling\" in", "true or false"},
        {"{\"workers\": 2, \"workers\": 3}", "duplicate", NULL},
        {"{\"log_level\": 1}", "\"log_level\" in", "debug, info"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_file(path, cases[i].contents);
        snprintf(flag, sizeof(flag), "--config=%s", path);
        set_args(c, flag, NULL);
        ck_assert_int_eq(load(c), CONFIG_ERROR);
        ck_assert_msg(strstr(c->err, path) != NULL, "case %zu: no path in %s", i, c->err);
        ck_assert_msg(strstr(c->err, cases[i].needle1) != NULL, "case %zu: %s", i, c->err);
        if (cases[i].needle2 != NULL)
            ck_assert_msg(strstr(c->err, cases[i].needle2) != NULL, "case %zu: %s", i, c->err);
        unlink(path);
    }
    set_args(c, "--config", "/nonexistent/primed.json", NULL);
    expect_error(c, "/nonexistent/primed.json", NULL);
    set_args(c, "--config=", NULL);
    expect_error(c, "--config: must be a file path", NULL);
    set_args(c, NULL);
    set_env(c, "PRIMED_CONFIG=", NULL);
    expect_error(c, "PRIMED_CONFIG: must be a file path", NULL);
    free(c);
}
END_TEST

START_TEST(json_values_may_be_integers_reals_strings_and_bools)
{
    char path[64], flag[96];
    write_file(path, "{\"max_list_range\": 1e12, \"max_nth\": \"2e11\", \"max_count_range\": "
                     "\"18446744073709551615\", \"memory_budget\": \"512MiB\", "
                     "\"heap_sampling\": false, \"workers\": 7, \"debug_listen\": \"off\", "
                     "\"listen\": \"[::1]:9000\", \"debug_token\": \"s3cr3t\"}");
    snprintf(flag, sizeof(flag), "--config=%s", path);
    struct call *c = new_call();
    set_args(c, flag, NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert_uint_eq(c->cfg.max_list_range, 1000000000000ULL);
    ck_assert_uint_eq(c->cfg.max_nth, 200000000000ULL);
    ck_assert_uint_eq(c->cfg.max_count_range, UINT64_MAX);
    ck_assert_uint_eq(c->cfg.memory_budget, 512ULL << 20);
    ck_assert(!c->cfg.heap_sampling);
    ck_assert_uint_eq(c->cfg.workers, 7);
    ck_assert(!c->cfg.debug_enabled);
    ck_assert_str_eq(c->cfg.listen_host, "::1");
    ck_assert_uint_eq(c->cfg.listen_port, 9000);
    ck_assert_str_eq(c->cfg.debug_token, "s3cr3t");
    unlink(path);
    free(c);
}
END_TEST

START_TEST(cross_checks_name_both_settings)
{
    struct call *c = new_call();
    set_args(c, "--debug-listen", "0.0.0.0:6060", NULL);
    expect_error(c, "--debug-listen 0.0.0.0:6060", "--debug-token", NULL);
    set_args(c, "--debug-listen", "0.0.0.0:6060", "--debug-token", "tok", NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    set_args(c, "--debug-listen", "127.9.9.9:6060", NULL); /* all of 127/8 is loopback */
    ck_assert_int_eq(load(c), CONFIG_OK);
    set_args(c, "--debug-token", "has space", NULL);
    expect_error(c, "--debug-token:", "printable ASCII", NULL);
    set_args(c, "--memory-budget", "128K", "--stream-buffer-bytes", "256K", NULL);
    expect_error(c, "--stream-buffer-bytes (262144)", "--memory-budget (131072)", NULL);
    set_args(c, "--memory-high-water", "80", "--memory-low-water", "80", NULL);
    expect_error(c, "--memory-low-water (80)", "--memory-high-water (80)", NULL);
    set_args(c, "--memory-high-water", "101", NULL);
    expect_error(c, "--memory-high-water:", "from 10 to 100", NULL);
    /* the π cache is charged to the request memory budget: at most half of it */
    set_args(c, "--request-memory-budget", "1MiB", "--pi-cache-bytes", "600KiB", NULL);
    expect_error(c, "--pi-cache-bytes (614400)", "--request-memory-budget (1048576)", NULL);
    set_args(c, "--request-memory-budget", "1MiB", "--pi-cache-bytes", "512KiB", NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    set_args(c, "--pi-cache-bytes", "off", NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert_uint_eq(c->cfg.pi_cache_bytes, 0);
    set_args(c, "--pi-cache-bytes", "1000", NULL);
    expect_error(c, "--pi-cache-bytes:", "0 (off) or", NULL);
    set_args(c, "--heap-dump-threshold", "3", NULL);
    expect_error(c, "--heap-dump-threshold:", "0 (memory_high_water) or", NULL);
    set_args(c, "--listen", "0.0.0.0:7000", "--debug-listen", "127.0.0.1:7000", NULL);
    expect_error(c, "--listen 0.0.0.0:7000", "--debug-listen 127.0.0.1:7000", NULL);
    set_args(c, "--listen", "127.0.0.1:0", "--debug-listen", "127.0.0.1:0", NULL);
    ck_assert_int_eq(load(c), CONFIG_OK); /* two ephemeral ports never collide */
    set_args(c, "--listen", "0.0.0.0:7000", "--debug-listen", "off", NULL);
    set_env(c, "PRIMED_DEBUG_LISTEN=127.0.0.1:7000", NULL); /* flag off wins over env */
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert(!c->cfg.debug_enabled);
    free(c);
}
END_TEST

START_TEST(example_config_file_is_accepted)
{
    /* run-tests.sh runs from the repository root */
    ck_assert_int_eq(access("configs/primed.json", R_OK), 0);
    struct call *c = new_call();
    set_args(c, "--config", "configs/primed.json", NULL);
    ck_assert_int_eq(load(c), CONFIG_OK);
    ck_assert_uint_eq(c->cfg.listen_port, 8080);
    ck_assert_uint_eq(c->cfg.max_count_range, UINT64_MAX);
    ck_assert_uint_eq(c->cfg.max_list_range, 1000000000000ULL);
    free(c);
}
END_TEST

struct seen {
    char keys[64][32];
    int n;
    char token[32];
};

static void collect(void *arg, const char *key, const char *value)
{
    struct seen *s = arg;
    ck_assert_int_lt(s->n, 64);
    snprintf(s->keys[s->n++], sizeof(s->keys[0]), "%s", key);
    if (strcmp(key, "debug_token") == 0) snprintf(s->token, sizeof(s->token), "%s", value);
}

/* The example config, --help and config_each all cover every setting: the flags listed in
 * issue 2 (copied here, not derived from the table). */
static const char *const issue_flags[] = {"listen",
                                          "debug_listen",
                                          "debug_token",
                                          "port_file",
                                          "workers",
                                          "queue_capacity",
                                          "memory_budget",
                                          "stream_buffer_bytes",
                                          "sieve_segment_bytes",
                                          "max_connections",
                                          "max_connections_per_ip",
                                          "connection_timeout",
                                          "connection_memory_limit",
                                          "request_timeout_ms",
                                          "max_body_bytes",
                                          "request_memory_budget",
                                          "request_memory_per_client",
                                          "body_timeout_ms",
                                          "body_min_rate",
                                          "max_uri_bytes",
                                          "shutdown_timeout",
                                          "max_list_range",
                                          "max_count_range",
                                          "max_nth",
                                          "max_batch_queries",
                                          "refuse_hopeless",
                                          "inline_small_answers",
                                          "rate_limit",
                                          "rate_limit_burst",
                                          "rate_limit_clients",
                                          "rate_limit_delay_ms",
                                          "rate_limit_cpu_factor",
                                          "trusted_proxies",
                                          "max_inflight_per_client",
                                          "log_level",
                                          "log_format",
                                          "heap_sampling",
                                          "heap_sample_bytes",
                                          "max_profile_seconds"};
/* ... and those of issue 15 (memory limits), likewise copied from the issue. */
static const char *const issue15_flags[] = {"cgroup_root",         "memory_high_water",
                                            "memory_low_water",    "heap_dump_dir",
                                            "heap_dump_threshold", "heap_dump_keep"};
#define NISSUE15 (sizeof(issue15_flags) / sizeof(issue15_flags[0]))
/* ... and those of issues 25 (the π cache) and 27 (the execution trace). */
static const char *const later_flags[] = {"pi_cache_bytes", "trace_buffer_bytes", "io_threads"};
#define NLATER (sizeof(later_flags) / sizeof(later_flags[0]))
#define NISSUE (sizeof(issue_flags) / sizeof(issue_flags[0]))

START_TEST(help_and_example_and_each_cover_every_setting)
{
    char *help = NULL;
    size_t helplen = 0;
    FILE *f = open_memstream(&help, &helplen);
    config_usage(f);
    fclose(f);
    static char docs[65536];
    FILE *df = fopen("docs/configuration.md", "r");
    ck_assert_ptr_nonnull(df);
    docs[fread(docs, 1, sizeof(docs) - 1, df)] = '\0';
    fclose(df);
    FILE *ex = fopen("configs/primed.json", "r");
    ck_assert_ptr_nonnull(ex);
    char example[8192];
    size_t exn = fread(example, 1, sizeof(example) - 1, ex);
    example[exn] = '\0';
    fclose(ex);

    struct primed_config cfg;
    config_defaults(&cfg);
    strcpy(cfg.debug_token, "secret");
    struct seen s = {.n = 0};
    config_each(&cfg, collect, &s);
    ck_assert_int_eq(s.n, (int)(NISSUE + NISSUE15 + NLATER));
    ck_assert_str_eq(s.token, "(set)"); /* never the secret itself */

    const char *names[NISSUE + NISSUE15 + NLATER];
    for (size_t i = 0; i < NISSUE + NISSUE15 + NLATER; i++)
        names[i] = i < NISSUE              ? issue_flags[i]
                   : i < NISSUE + NISSUE15 ? issue15_flags[i - NISSUE]
                                           : later_flags[i - NISSUE - NISSUE15];
    for (size_t i = 0; i < NISSUE + NISSUE15 + NLATER; i++) {
        char flag[64], env[64], key[64];
        snprintf(flag, sizeof(flag), "--%s ", names[i]);
        snprintf(env, sizeof(env), "env PRIMED_%s;", names[i]);
        snprintf(key, sizeof(key), "\"%s\"", names[i]);
        for (char *p = flag; *p; p++)
            *p = *p == '_' ? '-' : *p;
        for (char *p = env + 4; *p; p++)
            *p = (*p >= 'a' && *p <= 'z') ? (char)(*p - 32) : *p;
        ck_assert_msg(strstr(help, flag) != NULL, "help lacks %s", flag);
        ck_assert_msg(strstr(help, env) != NULL, "help lacks %s", env);
        ck_assert_msg(strstr(example, key) != NULL, "example config lacks %s", key);
        /* the reference table names the key, the flag and the environment variable */
        char up[48], dkey[128], denv[128];
        size_t u = 0;
        for (; names[i][u] != '\0' && u < sizeof(up) - 1; u++)
            up[u] = (char)toupper((unsigned char)names[i][u]);
        up[u] = '\0';
        snprintf(dkey, sizeof(dkey), "| `%s` / `%.*s", names[i], (int)strlen(flag) - 1, flag);
        snprintf(denv, sizeof(denv), "| `PRIMED_%s` |", up);
        ck_assert_msg(strstr(docs, dkey) != NULL, "docs lack %s", dkey);
        ck_assert_msg(strstr(docs, denv) != NULL, "docs lack %s", denv);
        int found = 0;
        for (int k = 0; k < s.n; k++)
            found |= strcmp(s.keys[k], names[i]) == 0;
        ck_assert_msg(found, "config_each lacks %s", names[i]);
    }
    ck_assert_ptr_nonnull(strstr(help, "--config FILE"));
    ck_assert_ptr_nonnull(strstr(help, "--version"));
    free(help);
}
END_TEST

START_TEST(help_and_version_exit_ok_before_anything_else)
{
    struct call *c = new_call();
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    FILE *tmp = tmpfile();
    dup2(fileno(tmp), STDOUT_FILENO);
    set_args(c, "--help", "--workers=0", NULL); /* --help wins over a later bad flag */
    ck_assert_int_eq(load(c), CONFIG_EXIT_OK);
    set_args(c, "--version", NULL);
    set_env(c, "PRIMED_WORKERS=0", NULL); /* and is not blocked by a bad environment */
    ck_assert_int_eq(load(c), CONFIG_EXIT_OK);
    set_args(c, "-h", NULL);
    ck_assert_int_eq(load(c), CONFIG_EXIT_OK);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    rewind(tmp);
    char out[65536];
    size_t n = fread(out, 1, sizeof(out) - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
    ck_assert_ptr_nonnull(strstr(out, "Usage: primed"));
    /* "primed <VERSION> (<REVISION>)": the revision is whatever config.o was built with, so
     * only its shape is checked */
    char want[128];
    snprintf(want, sizeof(want), "\nprimed %s (", PRIMED_VERSION);
    char *v = strstr(out, want);
    ck_assert_msg(v != NULL, "no '%s' in output", want + 1);
    char *close = strchr(v, ')');
    ck_assert_ptr_nonnull(close);
    ck_assert(close > v + strlen(want) && close[1] == '\n');
    free(c);
}
END_TEST

/* Random flag/value soup: every outcome is CONFIG_OK or a one-line CONFIG_ERROR (load() checks
 * the message), never a crash or an overrun (the ASan build runs this too). */
START_TEST(random_values_for_every_flag_never_crash)
{
    static const char *const pieces[] = {"0",
                                         "1",
                                         "65535",
                                         "65536",
                                         "1e12",
                                         "1e999",
                                         "-1",
                                         "18446744073709551615",
                                         "18446744073709551616",
                                         "K",
                                         "KiB",
                                         "GiB",
                                         "x",
                                         ":",
                                         "[",
                                         "]",
                                         "::1",
                                         "127.0.0.1",
                                         "off",
                                         "true",
                                         "false",
                                         "json",
                                         "text",
                                         "debug",
                                         " ",
                                         "\"",
                                         "\xff",
                                         "e",
                                         "."};
    struct call *c = new_call();
    uint64_t x = 0x853c49e6748fea9bULL;
    char vals[2][64], flags[2][256]; /* room for "--" + longest flag + "=" + value: no truncation */
    int oks = 0, errs = 0;
    for (int iter = 0; iter < 3000; iter++) {
        for (int k = 0; k < 2; k++) {
            xorshift64(&x);
            vals[k][0] = '\0';
            int npieces = 1 + (int)(x % 2);
            for (int p = 0; p < npieces; p++)
                strncat(vals[k], pieces[(x >> (8 + 5 * p)) % (sizeof(pieces) / sizeof(pieces[0]))],
                        sizeof(vals[k]) - strlen(vals[k]) - 1);
            snprintf(flags[k], sizeof(flags[k]), "--%s=%s", issue_flags[(x >> 40) % NISSUE],
                     vals[k]);
            for (char *q = flags[k] + 2; *q && *q != '='; q++)
                *q = *q == '_' ? '-' : *q;
        }
        set_args(c, flags[0], flags[1], NULL);
        enum config_result r = load(c);
        ck_assert(r == CONFIG_OK || r == CONFIG_ERROR);
        oks += r == CONFIG_OK;
        errs += r == CONFIG_ERROR;
    }
    ck_assert_msg(oks > 0 && errs > 0, "ok %d, errors %d: the soup explores one side only", oks,
                  errs);
    free(c);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, defaults_are_those_of_config_h);
    tcase_add_test(tc, each_source_overrides_the_one_before);
    tcase_add_test(tc, config_file_comes_from_PRIMED_CONFIG_unless_flag_given);
    tcase_add_test(tc, numbers_take_exponents_and_byte_suffixes);
    tcase_add_test(tc, listen_addresses_parse_ipv4_ipv6_localhost_and_off);
    tcase_add_test(tc, bad_listen_addresses_are_rejected_naming_the_flag);
    tcase_add_test(tc, bad_numbers_name_the_flag_and_the_range);
    tcase_add_test(tc, bad_enums_and_bools_are_rejected);
    tcase_add_test(tc, unknown_flags_and_arguments_are_rejected);
    tcase_add_test(tc, unknown_environment_variables_are_rejected_but_tooling_ones_ignored);
    tcase_add_test(tc, json_file_errors_name_the_file_and_key);
    tcase_add_test(tc, json_values_may_be_integers_reals_strings_and_bools);
    tcase_add_test(tc, cross_checks_name_both_settings);
    tcase_add_test(tc, example_config_file_is_accepted);
    tcase_add_test(tc, help_and_example_and_each_cover_every_setting);
    tcase_add_test(tc, help_and_version_exit_ok_before_anything_else);
    tcase_add_test(tc, random_values_for_every_flag_never_crash);
    tcase_add_test(tc, rate_limit_settings_parse_and_proxies_are_validated);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(config_suite)
