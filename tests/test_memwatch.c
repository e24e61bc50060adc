/* test_memwatch.c — the auto budget's arithmetic and its clamp to the limit, the stream budget
 * following a changing limit, and the sampling thread's marks and hysteresis in-process against a
 * fake cgroup v2 tree whose memory.max and memory.current the test writes (the HTTP side is
 * tests/test_memory_watch.sh; a real cgroup is tests/test_cgroup_limit.sh). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "primed/config.h"
#include "primed/memwatch.h"
#include "primed/metrics.h"
#include "primed/router.h"
#include "primed/stream.h"

#define MIB (1024ULL * 1024)

START_TEST(auto_budget_is_a_quarter_floored_and_capped)
{
    char why[160];
    ck_assert_uint_eq(memwatch_auto_budget(512 * MIB, 256 * 1024, why, sizeof why), 128 * MIB);
    ck_assert_str_eq(why, "1/4 of 512 MiB");
    ck_assert_uint_eq(memwatch_auto_budget(32 * MIB, 256 * 1024, why, sizeof why), 16 * MIB);
    ck_assert_ptr_nonnull(strstr(why, "16 MiB floor"));
    ck_assert_uint_eq(memwatch_auto_budget(64ULL << 30, 256 * 1024, why, sizeof why), 256 * MIB);
    ck_assert_ptr_nonnull(strstr(why, "capped at 256 MiB"));
    /* never below one stream buffer, whatever the limit */
    ck_assert_uint_eq(memwatch_auto_budget(512 * MIB, 1ULL << 30, why, sizeof why), 1ULL << 30);
    ck_assert_ptr_nonnull(strstr(why, "one stream_buffer_bytes"));
    ck_assert_uint_eq(memwatch_auto_budget(0, 4096, why, sizeof why), 16 * MIB);
}
END_TEST

static char root[256];

static void put(const char *rel, const char *content)
{
    char path[PATH_MAX * 2], tmp[PATH_MAX * 2 + 8];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fputs(content, f);
    fclose(f);
    ck_assert_int_eq(rename(tmp, path), 0); /* the sampler sees old or new, never half */
}

static void set_current(unsigned mib)
{
    char v[32];
    snprintf(v, sizeof v, "%llu\n", (unsigned long long)(mib * MIB));
    put("cg/app/memory.current", v);
}

static void set_max(unsigned mib)
{
    char v[32];
    snprintf(v, sizeof v, "%llu\n", (unsigned long long)(mib * MIB));
    put("cg/app/memory.max", v);
}

/* A fake cgroup v2 tree under a new root: the process in /app, limit max_mib, 20 MiB used. */
static void make_tree(unsigned max_mib)
{
    snprintf(root, sizeof root, "/tmp/primed-memwatch-test.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
    const char *dirs[] = {"proc", "proc/self", "cg", "cg/app"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char d[PATH_MAX + 32];
        snprintf(d, sizeof d, "%s/%s", root, dirs[i]);
        ck_assert_int_eq(mkdir(d, 0755), 0);
    }
    put("proc/self/cgroup", "0::/app\n");
    put("proc/self/mountinfo", "30 22 0:26 / /cg rw - cgroup2 cgroup2 rw\n");
    put("cg/cgroup.controllers", "memory\n");
    set_max(max_mib);
    set_current(20);
}

static void remove_tree(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    ck_assert_int_eq(system(cmd), 0);
}

/* Wait up to 3 s (15 sampling periods) for memwatch_shedding() == want. */
static bool wait_shedding(bool want)
{
    for (int i = 0; i < 300; i++) {
        if (memwatch_shedding() == want) return true;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    return false;
}

START_TEST(marks_and_hysteresis_follow_the_cgroup)
{
    make_tree(200);
    ck_assert_int_eq(metrics_init(router_label_count(), router_label_name), 0);
    struct primed_config cfg;
    config_defaults(&cfg);
    snprintf(cfg.cgroup_root, sizeof cfg.cgroup_root, "%s", root);
    struct memwatch *mw = NULL;
    ck_assert_int_eq(memwatch_create(&cfg, NULL, &mw), 0);
    ck_assert_uint_eq(cfg.memory_budget, 50 * MIB); /* auto resolved: 1/4 of 200 MiB */
    ck_assert(!memwatch_shedding());

    set_current(181); /* 90.5 % */
    ck_assert_msg(wait_shedding(true), "not shedding at 90.5 %%");
    set_current(170); /* 85 %: between the marks, stays */
    nanosleep(&(struct timespec){0, 600 * 1000 * 1000}, NULL);
    ck_assert(memwatch_shedding());
    set_current(159); /* 79.5 % */
    ck_assert_msg(wait_shedding(false), "still shedding at 79.5 %%");
    set_current(175); /* 87.5 %: below high water, no new crossing */
    nanosleep(&(struct timespec){0, 600 * 1000 * 1000}, NULL);
    ck_assert(!memwatch_shedding());

    char *text = NULL;
    size_t len = 0;
    ck_assert_int_eq(metrics_render(&text, &len), 0);
    ck_assert_ptr_nonnull(strstr(text, "\nprimed_cgroup_memory_limit_bytes 209715200\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nprimed_memory_high_water_crossings_total 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nprimed_memory_high_water_bytes 188743680\n"));
    free(text);

    set_current(190);
    ck_assert(wait_shedding(true));
    memwatch_destroy(mw); /* joins the thread; the flag does not outlive its owner */
    ck_assert(!memwatch_shedding());
    metrics_fini();
    remove_tree();
}
END_TEST

START_TEST(budget_is_clamped_to_half_the_limit)
{
    ck_assert_uint_eq(memwatch_clamp_budget(1024 * MIB, 128 * MIB), 64 * MIB);
    ck_assert_uint_eq(memwatch_clamp_budget(64 * MIB, 128 * MIB), 64 * MIB);
    ck_assert_uint_eq(memwatch_clamp_budget(10 * MIB, 128 * MIB), 10 * MIB);
    ck_assert_uint_eq(memwatch_clamp_budget(1024 * MIB, 0), 1024 * MIB); /* limit unknown */
    ck_assert_uint_eq(memwatch_clamp_budget(UINT64_MAX, UINT64_MAX), UINT64_MAX / 2);
}
END_TEST

/* Wait up to 3 s for the stream budget's limit to become want. */
static bool wait_budget(const struct stream_budget *b, uint64_t want)
{
    for (int i = 0; i < 300; i++) {
        if (stream_budget_limit(b) == want) return true;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    return false;
}

/* Admit 1 MiB streams until the budget refuses one; returns how many were admitted. */
static size_t admit_all(struct stream_budget *b, struct stream **v, size_t max)
{
    size_t n = 0;
    while (n < max && (v[n] = stream_create(b, MIB, 256 * 1024, NULL, NULL, NULL, NULL)) != NULL)
        n++;
    return n;
}

static bool metric_is(const char *series, uint64_t want)
{
    char *text = NULL, line[128];
    size_t len = 0;
    ck_assert_int_eq(metrics_render(&text, &len), 0);
    snprintf(line, sizeof line, "\n%s %llu\n", series, (unsigned long long)want);
    bool ok = strstr(text, line) != NULL;
    free(text);
    return ok;
}

START_TEST(stream_budget_follows_a_changing_limit)
{
    /* memory_budget 1 GiB in a 200 MiB limit: admitted against 100 MiB from the start, before
     * the sampling thread has looked at anything */
    make_tree(200);
    ck_assert_int_eq(metrics_init(router_label_count(), router_label_name), 0);
    struct primed_config cfg;
    config_defaults(&cfg);
    snprintf(cfg.cgroup_root, sizeof cfg.cgroup_root, "%s", root);
    cfg.memory_budget = 1024 * MIB;
    cfg.stream_buffer_bytes = MIB;
    static struct stream_budget b;
    ck_assert_int_eq(stream_budget_init(&b, cfg.memory_budget), 0);
    struct memwatch *mw = NULL;
    ck_assert_int_eq(memwatch_create(&cfg, &b, &mw), 0);
    ck_assert_uint_eq(stream_budget_limit(&b), 100 * MIB);
    ck_assert_uint_eq(cfg.memory_budget, 1024 * MIB); /* the setting itself is not rewritten */
    static struct stream *v[300];
    size_t n = admit_all(&b, v, 300);
    ck_assert_uint_eq(n, 100);
    ck_assert(metric_is("primed_memory_budget_bytes", 100 * MIB));
    ck_assert(metric_is("primed_memory_budget_configured_bytes", 1024 * MIB));

    /* the limit shrinks under 100 admitted streams: nothing more until they leave */
    set_max(64);
    ck_assert_msg(wait_budget(&b, 32 * MIB), "budget %llu, want 32 MiB",
                  (unsigned long long)stream_budget_limit(&b));
    ck_assert_ptr_null(stream_create(&b, MIB, 256 * 1024, NULL, NULL, NULL, NULL));
    while (n > 20)
        stream_destroy(v[--n]);
    n += admit_all(&b, v + n, 300 - n);
    ck_assert_uint_eq(n, 32);

    /* it grows: so does the budget, up to memory_budget's half of the limit */
    set_max(400);
    ck_assert(wait_budget(&b, 200 * MIB));
    n += admit_all(&b, v + n, 300 - n);
    ck_assert_uint_eq(n, 200);
    ck_assert(metric_is("primed_memory_budget_bytes", 200 * MIB));

    /* no cgroup limit any more: physical memory is the limit */
    put("cg/app/memory.max", "max\n");
    uint64_t phys = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
    ck_assert(wait_budget(&b, memwatch_clamp_budget(1024 * MIB, phys)));

    while (n > 0)
        stream_destroy(v[--n]);
    memwatch_destroy(mw);
    stream_budget_destroy(&b);
    metrics_fini();
    remove_tree();
}
END_TEST

START_TEST(auto_budget_follows_the_limit_too)
{
    make_tree(200);
    ck_assert_int_eq(metrics_init(router_label_count(), router_label_name), 0);
    struct primed_config cfg;
    config_defaults(&cfg); /* memory_budget auto */
    snprintf(cfg.cgroup_root, sizeof cfg.cgroup_root, "%s", root);
    static struct stream_budget b;
    ck_assert_int_eq(stream_budget_init(&b, cfg.memory_budget), 0);
    struct memwatch *mw = NULL;
    ck_assert_int_eq(memwatch_create(&cfg, &b, &mw), 0);
    ck_assert_uint_eq(stream_budget_limit(&b), 50 * MIB); /* 1/4 of 200 MiB */
    set_max(400);
    ck_assert(wait_budget(&b, 100 * MIB));
    ck_assert(metric_is("primed_memory_budget_configured_bytes", 100 * MIB));
    set_max(20); /* auto's 16 MiB floor is more than half of 20 MiB: clamped to 10 MiB */
    ck_assert(wait_budget(&b, 10 * MIB));
    memwatch_destroy(mw);
    stream_budget_destroy(&b);
    metrics_fini();
    remove_tree();
}
END_TEST

START_TEST(no_cgroup_falls_back_to_physical_memory)
{
    ck_assert_int_eq(metrics_init(router_label_count(), router_label_name), 0);
    struct primed_config cfg;
    config_defaults(&cfg);
    snprintf(cfg.cgroup_root, sizeof cfg.cgroup_root, "/nonexistent-primed-root");
    struct memwatch *mw = NULL;
    ck_assert_int_eq(memwatch_create(&cfg, NULL, &mw), 0);
    uint64_t phys = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
    char why[160];
    ck_assert_uint_eq(cfg.memory_budget,
                      memwatch_auto_budget(phys, cfg.stream_buffer_bytes, why, sizeof why));
    char *text = NULL;
    size_t len = 0;
    ck_assert_int_eq(metrics_render(&text, &len), 0);
    ck_assert_ptr_null(strstr(text, "primed_cgroup_")); /* no cgroup, no cgroup families */
    char want[64];
    snprintf(want, sizeof want, "\nprimed_memory_limit_bytes %llu\n", (unsigned long long)phys);
    ck_assert_ptr_nonnull(strstr(text, want));
    free(text);
    memwatch_destroy(mw);
    memwatch_destroy(NULL);
    metrics_fini();
}
END_TEST

static Suite *memwatch_suite(void)
{
    Suite *s = suite_create("memwatch");
    TCase *tc = tcase_create("memwatch");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, auto_budget_is_a_quarter_floored_and_capped);
    tcase_add_test(tc, marks_and_hysteresis_follow_the_cgroup);
    tcase_add_test(tc, no_cgroup_falls_back_to_physical_memory);
    tcase_add_test(tc, budget_is_clamped_to_half_the_limit);
    tcase_add_test(tc, stream_budget_follows_a_changing_limit);
    tcase_add_test(tc, auto_budget_follows_the_limit_too);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(memwatch_suite)
