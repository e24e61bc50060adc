/* test_heap_dumps.c — heap_dump_dir as others may leave it: files planted under names that sort
 * as the newest or the oldest profile, symlinks (to a victim, or dangling) at the names of the
 * coming profiles, every name taken, a profile of ours replaced, a directory that is gone or is a
 * file, an earlier run's profiles next to lookalikes. Whatever is planted survives, no profile of
 * ours is lost to it, and every failure says so. (Through the server, with the counters and the
 * log lines: tests/test_memory_watch.sh.) */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/heap_dumps.h"
#include "check_main.h"

#define PROFILE "heap profile:    1:  1024 [  1: 1024] @ heap_v2/524288\n"

static char dir[128];

static void path_of(char *out, size_t outlen, const char *name)
{
    snprintf(out, outlen, "%s/%s", dir, name);
}

static void plant(const char *name, const char *content)
{
    char p[PATH_MAX];
    path_of(p, sizeof p, name);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(content, f);
    fclose(f);
}

static bool exists(const char *name)
{
    char p[PATH_MAX];
    struct stat st;
    path_of(p, sizeof p, name);
    return lstat(p, &st) == 0;
}

static char *slurp(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* Entries of dir, not counting . and .. */
static int entries(void)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/primed-heap-dumps-test.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[PATH_MAX];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.victim'", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
}

static int dump(struct heap_dumps *hd, time_t t, uint64_t mib, char *path, size_t pathlen)
{
    return heap_dumps_write(hd, t, mib, PROFILE, strlen(PROFILE), path, pathlen);
}

START_TEST(planted_names_sorting_newest_or_oldest_are_never_pruned)
{
    plant("heap-99999999991-1.prof", "");
    plant("heap-99999999992-1.prof", "");
    plant("heap-1-1.prof", "not a profile\n");
    struct heap_dumps *hd = NULL;
    ck_assert_int_eq(heap_dumps_create(dir, 1, &hd), 0);
    ck_assert_uint_eq(heap_dumps_count(hd), 0); /* nothing planted is taken for ours */
    char path[PATH_MAX];
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(dump(hd, 1000 + i, 7, path, sizeof path), 0);
        ck_assert_str_eq(slurp(path), PROFILE); /* the real profile survives its own prune */
    }
    ck_assert(!exists("heap-1000-7.prof"));
    ck_assert(!exists("heap-1001-7.prof"));
    ck_assert(exists("heap-1002-7.prof"));
    ck_assert(exists("heap-99999999991-1.prof"));
    ck_assert(exists("heap-99999999992-1.prof"));
    ck_assert(exists("heap-1-1.prof"));
    ck_assert_int_eq(entries(), 4); /* and no temporary file left behind */
    ck_assert_uint_eq(heap_dumps_count(hd), 1);
    heap_dumps_destroy(hd);
}
END_TEST

START_TEST(a_symlink_at_the_name_is_neither_followed_nor_replaced)
{
    char victim[PATH_MAX], link[PATH_MAX], path[PATH_MAX], dangling[PATH_MAX + 16];
    snprintf(victim, sizeof victim, "%s.victim", dir);
    FILE *f = fopen(victim, "w");
    ck_assert_ptr_nonnull(f);
    fputs("victim\n", f);
    fclose(f);
    path_of(link, sizeof link, "heap-1000-5.prof");
    ck_assert_int_eq(symlink(victim, link), 0);
    snprintf(dangling, sizeof dangling, "%s/created-through-the-link", dir);
    path_of(link, sizeof link, "heap-1001-5.prof");
    ck_assert_int_eq(symlink(dangling, link), 0);

    struct heap_dumps *hd = NULL;
    ck_assert_int_eq(heap_dumps_create(dir, 5, &hd), 0);
    ck_assert_int_eq(dump(hd, 1000, 5, path, sizeof path), 0);
    ck_assert_ptr_nonnull(strstr(path, "/heap-1000-5-2.prof"));
    ck_assert_str_eq(slurp(path), PROFILE);
    ck_assert_int_eq(dump(hd, 1001, 5, path, sizeof path), 0);
    ck_assert_ptr_nonnull(strstr(path, "/heap-1001-5-2.prof"));
    ck_assert_str_eq(slurp(victim), "victim\n");
    ck_assert(!exists("created-through-the-link"));
    struct stat st;
    path_of(link, sizeof link, "heap-1000-5.prof");
    ck_assert_int_eq(lstat(link, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    heap_dumps_destroy(hd);
}
END_TEST

START_TEST(every_name_taken_is_a_failure_not_a_duplicate)
{
    plant("heap-1000-5.prof", "");
    for (int k = 2; k <= 8; k++) {
        char name[64];
        snprintf(name, sizeof name, "heap-1000-5-%d.prof", k);
        plant(name, "");
    }
    struct heap_dumps *hd = NULL;
    ck_assert_int_eq(heap_dumps_create(dir, 5, &hd), 0);
    char path[PATH_MAX];
    ck_assert_int_eq(dump(hd, 1000, 5, path, sizeof path), -EEXIST);
    ck_assert_ptr_nonnull(strstr(path, "/heap-1000-5-8.prof"));
    ck_assert_int_eq(entries(), 8); /* nothing added, nothing left behind */
    heap_dumps_destroy(hd);
}
END_TEST

START_TEST(our_own_name_again_is_a_duplicate)
{
    struct heap_dumps *hd = NULL;
    ck_assert_int_eq(heap_dumps_create(dir, 5, &hd), 0);
    char path[PATH_MAX];
    ck_assert_int_eq(dump(hd, 1000, 5, path, sizeof path), 0);
    ck_assert_int_eq(dump(hd, 1000, 5, path, sizeof path), HEAP_DUMPS_DUPLICATE);
    ck_assert_ptr_nonnull(strstr(path, "/heap-1000-5.prof"));
    ck_assert_int_eq(entries(), 1);
    heap_dumps_destroy(hd);
}
END_TEST

START_TEST(a_profile_replaced_by_another_file_is_left_alone)
{
    struct heap_dumps *hd = NULL;
    ck_assert_int_eq(heap_dumps_create(dir, 1, &hd), 0);
    char path[PATH_MAX], other[PATH_MAX];
    ck_assert_int_eq(dump(hd, 1000, 5, path, sizeof path), 0);
    plant("someone-elses", "theirs\n");
    path_of(other, sizeof other, "someone-elses");
    ck_assert_int_eq(rename(other, path), 0); /* the name of our profile, another file */
    ck_assert_int_eq(dump(hd, 1001, 5, other, sizeof other), 0);
    ck_assert_str_eq(slurp(path), "theirs\n"); /* not pruned: not the file we wrote */
    ck_assert_int_eq(dump(hd, 1002, 5, other, sizeof other), 0);
    ck_assert(!exists("heap-1001-5.prof")); /* ours are */
    ck_assert_int_eq(entries(), 2);
    heap_dumps_destroy(hd);
}
END_TEST

START_TEST(a_missing_directory_or_a_file_fails_with_its_path)
{
    struct heap_dumps *hd = NULL;
    char gone[PATH_MAX], path[PATH_MAX], parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s/not-yet", dir);
    snprintf(gone, sizeof gone, "%s/not-yet/deeper", dir);
    ck_assert_int_eq(heap_dumps_create(gone, 1, &hd), 0); /* logged, not fatal */
    ck_assert_int_eq(dump(hd, 1000, 5, path, sizeof path), -ENOENT);
    ck_assert_str_eq(path, gone);
    ck_assert_int_eq(mkdir(parent, 0755), 0); /* created later: dumps work from then on */
    ck_assert_int_eq(mkdir(gone, 0755), 0);
    ck_assert_int_eq(dump(hd, 1000, 5, path, sizeof path), 0);
    heap_dumps_destroy(hd);

    plant("a-file", "x");
    path_of(gone, sizeof gone, "a-file");
    ck_assert_int_eq(heap_dumps_create(gone, 1, &hd), 0);
    ck_assert_int_eq(dump(hd, 1000, 5, path, sizeof path), -ENOTDIR);
    ck_assert_str_eq(path, gone);
    heap_dumps_destroy(hd);
    ck_assert_int_eq(heap_dumps_create("", 1, &hd), -EINVAL);
}
END_TEST

START_TEST(an_earlier_runs_profiles_are_adopted_and_lookalikes_are_not)
{
    plant("heap-10-1.prof", PROFILE);
    plant("heap-11-1.prof", PROFILE);
    plant("heap-12-1-2.prof", PROFILE);
    plant("heap-13-1.prof", "");                   /* empty */
    plant("heap-14-1.prof", "not a heap profile"); /* another format */
    plant("heap-15-1.prof", PROFILE);
    char a[PATH_MAX], b[PATH_MAX];
    path_of(a, sizeof a, "heap-15-1.prof");
    path_of(b, sizeof b, "hard-link");
    ck_assert_int_eq(link(a, b), 0); /* two links: maybe somebody else's file */
    plant("heap-16-1.prof.bak", PROFILE);

    struct heap_dumps *hd = NULL;
    ck_assert_int_eq(heap_dumps_create(dir, 2, &hd), 0);
    ck_assert_uint_eq(heap_dumps_count(hd), 3);
    char path[PATH_MAX];
    ck_assert_int_eq(dump(hd, 1000, 5, path, sizeof path), 0);
    /* keep 2: the newest adopted one and ours; the two older adopted ones are pruned */
    ck_assert(!exists("heap-10-1.prof"));
    ck_assert(!exists("heap-11-1.prof"));
    ck_assert(exists("heap-12-1-2.prof"));
    ck_assert(exists("heap-1000-5.prof"));
    ck_assert(exists("heap-13-1.prof"));
    ck_assert(exists("heap-14-1.prof"));
    ck_assert(exists("heap-15-1.prof"));
    ck_assert(exists("heap-16-1.prof.bak"));
    heap_dumps_destroy(hd);
}
END_TEST

START_TEST(a_missing_last_component_is_created_ours_alone)
{
    struct heap_dumps *hd = NULL;
    char made[PATH_MAX], path[PATH_MAX];
    path_of(made, sizeof made, "dumps");
    ck_assert_int_eq(heap_dumps_create(made, 1, &hd), 0);
    struct stat st;
    ck_assert_int_eq(stat(made, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_uint_eq(st.st_mode & 07777, 0700);
    ck_assert_uint_eq(st.st_uid, geteuid());
    ck_assert_ptr_null(heap_dumps_dir_risk(st.st_uid, st.st_mode, geteuid()));
    ck_assert_int_eq(dump(hd, 1000, 5, path, sizeof path), 0);
    heap_dumps_destroy(hd);
}
END_TEST

START_TEST(directory_risk_by_owner_and_mode)
{
    uid_t me = 1000;
    ck_assert_ptr_null(heap_dumps_dir_risk(me, S_IFDIR | 0755, me));
    ck_assert_ptr_null(heap_dumps_dir_risk(me, S_IFDIR | 0700, me));
    ck_assert_ptr_null(heap_dumps_dir_risk(me, S_IFDIR | 01777, me)); /* sticky and ours */
    ck_assert_ptr_null(heap_dumps_dir_risk(0, S_IFDIR | 0755, me));   /* root's, not writable */
    ck_assert_ptr_nonnull(heap_dumps_dir_risk(me, S_IFDIR | 0777, me));
    ck_assert_ptr_nonnull(heap_dumps_dir_risk(me, S_IFDIR | 0775, me));
    ck_assert_ptr_nonnull(heap_dumps_dir_risk(0, S_IFDIR | 01777, me)); /* /tmp */
    ck_assert_ptr_nonnull(strstr(heap_dumps_dir_risk(1234, S_IFDIR | 0755, me), "another user"));
    ck_assert_ptr_null(heap_dumps_dir_risk(0, S_IFDIR | 0755, 0));
}
END_TEST

static Suite *heap_dumps_suite(void)
{
    Suite *s = suite_create("heap_dumps");
    TCase *tc = tcase_create("heap_dumps");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, planted_names_sorting_newest_or_oldest_are_never_pruned);
    tcase_add_test(tc, a_symlink_at_the_name_is_neither_followed_nor_replaced);
    tcase_add_test(tc, every_name_taken_is_a_failure_not_a_duplicate);
    tcase_add_test(tc, our_own_name_again_is_a_duplicate);
    tcase_add_test(tc, a_profile_replaced_by_another_file_is_left_alone);
    tcase_add_test(tc, a_missing_directory_or_a_file_fails_with_its_path);
    tcase_add_test(tc, an_earlier_runs_profiles_are_adopted_and_lookalikes_are_not);
    tcase_add_test(tc, a_missing_last_component_is_created_ours_alone);
    tcase_add_test(tc, directory_risk_by_owner_and_mode);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(heap_dumps_suite)
