/* test_memwatch.c — the auto budget's arithmetic, and the sampling thread's marks and hysteresis
 * in-process against a fake cgroup v2 tree whose memory.current the test writes (the HTTP side of
 * shedding is tests/test_memory_watch.sh; a real cgroup is tests/test_cgroup_limit.sh). */
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
    snprintf(root, sizeof root, "/tmp/primed-memwatch-test.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
    char d[PATH_MAX + 32];
    snprintf(d, sizeof d, "%s/proc", root);
    mkdir(d, 0755);
    snprintf(d, sizeof d, "%s/proc/self", root);
    mkdir(d, 0755);
    snprintf(d, sizeof d, "%s/cg", root);
    mkdir(d, 0755);
    snprintf(d, sizeof d, "%s/cg/app", root);
    mkdir(d, 0755);
    put("proc/self/cgroup", "0::/app\n");
    put("proc/self/mountinfo", "30 22 0:26 / /cg rw - cgroup2 cgroup2 rw\n");
    put("cg/cgroup.controllers", "memory\n");
    put("cg/app/memory.max", "209715200\n"); /* 200 MiB */
    set_current(20);

    ck_assert_int_eq(metrics_init(), 0);
    struct primed_config cfg;
    config_defaults(&cfg);
    snprintf(cfg.cgroup_root, sizeof cfg.cgroup_root, "%s", root);
    struct memwatch *mw = NULL;
    ck_assert_int_eq(memwatch_create(&cfg, &mw), 0);
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
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(no_cgroup_falls_back_to_physical_memory)
{
    ck_assert_int_eq(metrics_init(), 0);
    struct primed_config cfg;
    config_defaults(&cfg);
    snprintf(cfg.cgroup_root, sizeof cfg.cgroup_root, "/nonexistent-primed-root");
    struct memwatch *mw = NULL;
    ck_assert_int_eq(memwatch_create(&cfg, &mw), 0);
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
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(memwatch_suite)
