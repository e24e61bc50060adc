/* test_cgroup.c — the cgroup reader on fake trees (v1, v2, hybrid, unlimited, missing, malformed,
 * a container that mounts only its own group) and on this machine's real cgroup, whose files are
 * read a second time here by hand and compared. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "primed/cgroup.h"

static char root[PATH_MAX];

/* Write root/rel (creating its directories) with content. */
static void put(const char *rel, const char *content)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(content, f);
    fclose(f);
}

static void mkdirs(const char *rel)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s/", root, rel);
    for (char *p = path + strlen(root) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
}

static void setup(void)
{
    snprintf(root, sizeof root, "/tmp/primed-cgroup-test.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    ck_assert_int_eq(system(cmd), 0);
}

#define V2_MOUNTINFO                                                                               \
    "22 1 0:21 / / rw,relatime - ext4 /dev/vda rw\n"                                               \
    "30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "      \
    "rw,nsdelegate,memory_recursiveprot\n"

#define HYBRID_MOUNTINFO                                                                           \
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"                          \
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"         \
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory\n"          \
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"

START_TEST(v2_reads_smallest_limit_on_path_usage_and_events)
{
    put("proc/self/cgroup", "0::/kubepods/pod1/c1\n");
    put("proc/self/mountinfo", V2_MOUNTINFO);
    put("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n");
    put("sys/fs/cgroup/kubepods/memory.max", "max\n");
    put("sys/fs/cgroup/kubepods/pod1/memory.max", "134217728\n"); /* the pod's limit binds */
    put("sys/fs/cgroup/kubepods/pod1/c1/memory.max", "268435456\n");
    put("sys/fs/cgroup/kubepods/pod1/c1/memory.current", "104857600\n");
    put("sys/fs/cgroup/kubepods/pod1/c1/memory.stat",
        "anon 90000000\nfile 14857600\nactive_file 4857600\ninactive_file 10000000\n");
    put("sys/fs/cgroup/kubepods/pod1/c1/memory.events",
        "low 0\nhigh 0\nmax 7\noom 4\noom_kill 3\noom_group_kill 0\n");
    struct cgroup *cg;
    ck_assert_int_eq(cgroup_open(root, &cg), 0);
    ck_assert_int_eq(cgroup_version(cg), CGROUP_V2);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/sys/fs/cgroup/kubepods/pod1/c1", root);
    ck_assert_str_eq(cgroup_dir(cg), want);
    struct cgroup_mem m;
    cgroup_read(cg, &m);
    ck_assert(m.has_limit);
    ck_assert_uint_eq(m.limit, 134217728);
    ck_assert(m.has_usage);
    ck_assert_uint_eq(m.usage, 104857600);
    ck_assert_uint_eq(m.inactive_file, 10000000);
    ck_assert_uint_eq(cgroup_working_set(&m), 94857600);
    ck_assert(m.has_oom_kills);
    ck_assert_uint_eq(m.oom_kills, 3); /* oom_kill, not oom (4) nor oom_group_kill */
    ck_assert(m.has_limit_hits);
    ck_assert_uint_eq(m.limit_hits, 7);
    /* values are read again on every call */
    put("sys/fs/cgroup/kubepods/pod1/c1/memory.current", "120000000\n");
    cgroup_read(cg, &m);
    ck_assert_uint_eq(m.usage, 120000000);
    cgroup_close(cg);
}
END_TEST

START_TEST(v2_max_everywhere_is_no_limit)
{
    put("proc/self/cgroup", "0::/app\n");
    put("proc/self/mountinfo", V2_MOUNTINFO);
    put("sys/fs/cgroup/cgroup.controllers", "memory\n");
    put("sys/fs/cgroup/app/memory.max", "max\n");
    put("sys/fs/cgroup/app/memory.current", "4096\n");
    struct cgroup *cg;
    ck_assert_int_eq(cgroup_open(root, &cg), 0);
    struct cgroup_mem m;
    cgroup_read(cg, &m);
    ck_assert(!m.has_limit);
    ck_assert(m.has_usage);
    ck_assert_uint_eq(m.usage, 4096);
    ck_assert(!m.has_oom_kills); /* no memory.events */
    cgroup_close(cg);
}
END_TEST

START_TEST(v2_without_memory_controller_is_not_found)
{
    put("proc/self/cgroup", "0::/app\n");
    put("proc/self/mountinfo", V2_MOUNTINFO);
    put("sys/fs/cgroup/cgroup.controllers", "cpu io pids\n");
    mkdirs("sys/fs/cgroup/app");
    struct cgroup *cg = (struct cgroup *)1;
    ck_assert_int_eq(cgroup_open(root, &cg), -ENOENT);
    ck_assert_ptr_null(cg);
}
END_TEST

START_TEST(v1_hybrid_reads_memory_hierarchy_not_unified)
{
    put("proc/self/cgroup", "9:name=systemd:/\n4:memory:/process_api/abc\n3:cpu,cpuacct:/\n0::/\n");
    put("proc/self/mountinfo", HYBRID_MOUNTINFO);
    put("sys/fs/cgroup/unified/cgroup.controllers", "hugetlb\n");
    put("sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes", "268435456\n");
    put("sys/fs/cgroup/memory/process_api/abc/memory.usage_in_bytes", "52428800\n");
    put("sys/fs/cgroup/memory/process_api/abc/memory.failcnt", "12\n");
    put("sys/fs/cgroup/memory/process_api/abc/memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
    put("sys/fs/cgroup/memory/process_api/abc/memory.stat",
        "cache 100\nrss 200\ninactive_file 100\nhierarchical_memory_limit 201326592\n"
        "total_inactive_file 2428800\n");
    struct cgroup *cg;
    ck_assert_int_eq(cgroup_open(root, &cg), 0);
    ck_assert_int_eq(cgroup_version(cg), CGROUP_V1);
    struct cgroup_mem m;
    cgroup_read(cg, &m);
    ck_assert(m.has_limit);
    ck_assert_uint_eq(m.limit, 201326592); /* the parent's, through hierarchical_memory_limit */
    ck_assert_uint_eq(m.usage, 52428800);
    ck_assert_uint_eq(m.inactive_file, 2428800); /* the hierarchical total */
    ck_assert_uint_eq(cgroup_working_set(&m), 50000000);
    ck_assert(m.has_limit_hits);
    ck_assert_uint_eq(m.limit_hits, 12);
    ck_assert(m.has_oom_kills);
    ck_assert_uint_eq(m.oom_kills, 2);
    cgroup_close(cg);
}
END_TEST

START_TEST(v1_page_counter_max_is_no_limit)
{
    put("proc/self/cgroup", "4:memory:/\n");
    put("proc/self/mountinfo", HYBRID_MOUNTINFO);
    put("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
    put("sys/fs/cgroup/memory/memory.usage_in_bytes", "1000\n");
    put("sys/fs/cgroup/memory/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n");
    struct cgroup *cg;
    ck_assert_int_eq(cgroup_open(root, &cg), 0);
    struct cgroup_mem m;
    cgroup_read(cg, &m);
    ck_assert(!m.has_limit);
    ck_assert_uint_eq(m.usage, 1000);
    ck_assert(!m.has_oom_kills); /* a kernel before 4.13 has no oom_kill line */
    cgroup_close(cg);
}
END_TEST

START_TEST(v1_container_mounting_only_its_group_uses_the_mount_point)
{
    /* docker without a cgroup namespace: /proc/self/cgroup names the host path, the mount's
     * root is that same path, mounted at /sys/fs/cgroup/memory */
    put("proc/self/cgroup", "5:memory:/docker/0123abcd\n");
    put("proc/self/mountinfo", "700 690 0:32 /docker/0123abcd /sys/fs/cgroup/memory ro,nosuid - "
                               "cgroup cgroup rw,memory\n");
    put("sys/fs/cgroup/memory/memory.limit_in_bytes", "536870912\n");
    struct cgroup *cg;
    ck_assert_int_eq(cgroup_open(root, &cg), 0);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/sys/fs/cgroup/memory", root);
    ck_assert_str_eq(cgroup_dir(cg), want);
    struct cgroup_mem m;
    cgroup_read(cg, &m);
    ck_assert(m.has_limit);
    ck_assert_uint_eq(m.limit, 536870912);
    ck_assert(!m.has_usage); /* missing file */
    cgroup_close(cg);
}
END_TEST

START_TEST(escaped_mount_point_is_decoded)
{
    put("proc/self/cgroup", "0::/g\n");
    put("proc/self/mountinfo", "30 22 0:26 / /cg\\040root rw - cgroup2 none rw\n");
    put("cg root/cgroup.controllers", "memory\n");
    put("cg root/g/memory.max", "1048576\n");
    struct cgroup *cg;
    ck_assert_int_eq(cgroup_open(root, &cg), 0);
    struct cgroup_mem m;
    cgroup_read(cg, &m);
    ck_assert_uint_eq(m.limit, 1048576);
    cgroup_close(cg);
}
END_TEST

START_TEST(missing_files_and_mounts_are_not_found)
{
    struct cgroup *cg;
    ck_assert_int_eq(cgroup_open(root, &cg), -ENOENT); /* no /proc/self/cgroup at all */
    put("proc/self/cgroup", "4:memory:/x\n");
    ck_assert_int_eq(cgroup_open(root, &cg), -ENOENT); /* no mountinfo */
    put("proc/self/mountinfo", "22 1 0:21 / / rw,relatime - ext4 /dev/vda rw\n");
    ck_assert_int_eq(cgroup_open(root, &cg), -ENOENT); /* no memory hierarchy mounted */
    put("proc/self/mountinfo", HYBRID_MOUNTINFO);
    ck_assert_int_eq(cgroup_open(root, &cg), -ENOENT); /* mounted, but the directory is gone */
    put("proc/self/cgroup", "3:cpu:/x\n");
    ck_assert_int_eq(cgroup_open(root, &cg), -ENOENT); /* not in a memory cgroup */
    ck_assert_ptr_null(cg);
    cgroup_read(NULL, &(struct cgroup_mem){0}); /* a NULL group reads as nothing */
    cgroup_close(NULL);
}
END_TEST

START_TEST(malformed_proc_files_are_einval)
{
    struct cgroup *cg;
    put("proc/self/mountinfo", HYBRID_MOUNTINFO);
    put("proc/self/cgroup", "garbage without colons\n");
    ck_assert_int_eq(cgroup_open(root, &cg), -EINVAL);
    put("proc/self/cgroup", "4:memory:relative/path\n");
    ck_assert_int_eq(cgroup_open(root, &cg), -EINVAL);
    put("proc/self/cgroup", "4:memory:/\n");
    put("proc/self/mountinfo", "35 31 0:32 / /sys/fs/cgroup/memory rw\n"); /* no " - " part */
    ck_assert_int_eq(cgroup_open(root, &cg), -EINVAL);
    put("proc/self/mountinfo", "35 31 0:32\n");
    ck_assert_int_eq(cgroup_open(root, &cg), -EINVAL);
}
END_TEST

START_TEST(garbage_values_read_as_absent_never_as_numbers)
{
    put("proc/self/cgroup", "0::/g\n");
    put("proc/self/mountinfo", V2_MOUNTINFO);
    put("sys/fs/cgroup/cgroup.controllers", "memory\n");
    static const char *const bad[] = {
        "12abc\n",   "-5\n", "\n", "", "1 2\n", "0x100\n", "99999999999999999999999\n",
        "maximum\n", " 5\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put("sys/fs/cgroup/g/memory.max", bad[i]);
        put("sys/fs/cgroup/g/memory.current", bad[i]);
        put("sys/fs/cgroup/g/memory.events", bad[i]);
        put("sys/fs/cgroup/g/memory.stat", "inactive_file nope\n");
        struct cgroup *cg;
        ck_assert_int_eq(cgroup_open(root, &cg), 0);
        struct cgroup_mem m;
        cgroup_read(cg, &m);
        ck_assert_msg(!m.has_limit, "limit from '%s'", bad[i]);
        ck_assert_msg(!m.has_usage, "usage from '%s'", bad[i]);
        ck_assert_msg(!m.has_oom_kills, "oom kills from '%s'", bad[i]);
        ck_assert_uint_eq(m.inactive_file, 0);
        ck_assert_uint_eq(cgroup_working_set(&m), 0);
        cgroup_close(cg);
    }
}
END_TEST

/* ---- this machine ------------------------------------------------------------------------ */

static int read_u64_file(const char *dir, const char *name, unsigned long long *v)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char word[32];
    int ok = fscanf(f, "%31s", word) == 1;
    fclose(f);
    if (!ok) return -1;
    if (strcmp(word, "max") == 0) {
        *v = ~0ULL;
        return 0;
    }
    return sscanf(word, "%llu", v) == 1 ? 0 : -1;
}

START_TEST(real_cgroup_matches_its_files)
{
    struct cgroup *cg;
    int rc = cgroup_open("/", &cg);
    FILE *pc = fopen("/proc/self/cgroup", "r");
    ck_assert_ptr_nonnull(pc);
    char line[4096];
    int has_memory_line = 0, has_v2_line = 0;
    while (fgets(line, sizeof line, pc)) {
        has_memory_line |= strstr(line, ":memory:") != NULL;
        has_v2_line |= strncmp(line, "0::", 3) == 0;
    }
    fclose(pc);
    if (rc == -ENOENT) {
        /* only acceptable when neither a v1 memory line nor a v2 line with a memory root exists */
        ck_assert_msg(!has_memory_line, "a memory line in /proc/self/cgroup but -ENOENT");
        printf("real cgroup: none with a memory controller here\n");
        return;
    }
    ck_assert_int_eq(rc, 0);
    struct cgroup_mem m;
    cgroup_read(cg, &m);
    const char *dir = cgroup_dir(cg);
    unsigned long long lim, use1, use2, kills = 0;
    int v1 = cgroup_version(cg) == CGROUP_V1;
    ck_assert_int_eq(v1, has_memory_line);
    ck_assert_int_eq(read_u64_file(dir, v1 ? "memory.usage_in_bytes" : "memory.current", &use1), 0);
    cgroup_read(cg, &m);
    ck_assert_int_eq(read_u64_file(dir, v1 ? "memory.usage_in_bytes" : "memory.current", &use2), 0);
    ck_assert(m.has_usage);
    /* read between two hand readings: within their range, give or take 8 MiB of other tasks */
    unsigned long long lo = (use1 < use2 ? use1 : use2), hi = (use1 < use2 ? use2 : use1);
    ck_assert_msg(m.usage + (8 << 20) >= lo && m.usage <= hi + (8 << 20),
                  "usage %llu vs files %llu, %llu", (unsigned long long)m.usage, use1, use2);
    if (read_u64_file(dir, v1 ? "memory.limit_in_bytes" : "memory.max", &lim) == 0) {
        if (lim >= CGROUP_UNLIMITED)
            ck_assert(!m.has_limit || m.limit < lim); /* unlimited here; maybe an ancestor */
        else
            ck_assert(m.has_limit && m.limit <= lim);
    }
    if (m.has_oom_kills) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", dir, v1 ? "memory.oom_control" : "memory.events");
        FILE *f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "oom_kill %llu", &kills) == 1) break;
        fclose(f);
        ck_assert_uint_eq(m.oom_kills, kills);
    }
    printf("real cgroup: v%d %s limit %s%llu usage %llu oom_kills %llu\n", v1 ? 1 : 2, dir,
           m.has_limit ? "" : "none ", (unsigned long long)m.limit, (unsigned long long)m.usage,
           (unsigned long long)m.oom_kills);
    cgroup_close(cg);
    (void)has_v2_line;
}
END_TEST

static Suite *cgroup_suite(void)
{
    Suite *s = suite_create("cgroup");
    TCase *tc = tcase_create("fake");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, v2_reads_smallest_limit_on_path_usage_and_events);
    tcase_add_test(tc, v2_max_everywhere_is_no_limit);
    tcase_add_test(tc, v2_without_memory_controller_is_not_found);
    tcase_add_test(tc, v1_hybrid_reads_memory_hierarchy_not_unified);
    tcase_add_test(tc, v1_page_counter_max_is_no_limit);
    tcase_add_test(tc, v1_container_mounting_only_its_group_uses_the_mount_point);
    tcase_add_test(tc, escaped_mount_point_is_decoded);
    tcase_add_test(tc, missing_files_and_mounts_are_not_found);
    tcase_add_test(tc, malformed_proc_files_are_einval);
    tcase_add_test(tc, garbage_values_read_as_absent_never_as_numbers);
    suite_add_tcase(s, tc);
    TCase *real = tcase_create("real");
    tcase_add_test(real, real_cgroup_matches_its_files);
    suite_add_tcase(s, real);
    return s;
}

PRIMED_CHECK_MAIN(cgroup_suite)
