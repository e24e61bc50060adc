/* heap_dumps.c — see heap_dumps.h.
 *
 * What the directory holds is never read back to decide what to delete: the list of profiles is
 * kept in memory (oldest first), and a name is unlinked only after fstatat shows it is still the
 * file remembered. Pruning by the names found in the directory (what this code did before) let
 * two empty files named heap-99999999991-1.prof, sorting as the newest, make primed delete the
 * profile it had just written; and a fixed temporary name let planted entries fail every dump.
 * The price: profiles of an earlier run are pruned only when they pass the adoption checks (a
 * profile another user or a copy left there stays until someone removes it).
 */
#include "heap_dumps.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "primed/config.h"
#include "primed/log.h"

#define NAME_TRIES 8          /* heap-T-M.prof, then heap-T-M-2.prof … heap-T-M-8.prof */
#define TMP_TRIES 16          /* random temporary names tried without O_TMPFILE */
#define ADOPT_SCAN_MAX 4096   /* directory entries looked at for an earlier run's profiles */
#define MAGIC "heap profile:" /* the first bytes of tcmalloc's legacy heap profile */

struct dump {
    char name[64];
    dev_t dev;
    ino_t ino;
    unsigned long long t, mib, k; /* from the name: the order of adopted profiles */
};

struct heap_dumps {
    char dir[CONFIG_PATH_MAX];
    unsigned keep;
    struct dump *v; /* oldest first */
    size_t n, cap;
};

const char *heap_dumps_dir_risk(uid_t owner, mode_t mode, uid_t euid)
{
    if (owner != euid && owner != 0) return "owned by another user";
    if ((mode & (S_IWGRP | S_IWOTH)) && !((mode & S_ISVTX) && owner == euid))
        return "writable by group or others: names in it can be planted";
    return NULL;
}

size_t heap_dumps_count(const struct heap_dumps *hd)
{
    return hd->n;
}

static int push(struct heap_dumps *hd, const struct dump *d)
{
    if (hd->n == hd->cap) {
        size_t nc = hd->cap ? hd->cap * 2 : hd->keep + 1;
        struct dump *nv = realloc(hd->v, nc * sizeof *nv);
        if (!nv) return -ENOMEM;
        hd->v = nv;
        hd->cap = nc;
    }
    hd->v[hd->n++] = *d;
    return 0;
}

/* heap-T-M.prof or heap-T-M-K.prof (K ≥ 2), nothing else; copied into d->name. */
static bool parse_name(const char *name, struct dump *d)
{
    int end = 0;
    d->k = 1;
    size_t len = strlen(name);
    if (len >= sizeof d->name) return false;
    memcpy(d->name, name, len + 1);
    if (sscanf(name, "heap-%llu-%llu.prof%n", &d->t, &d->mib, &end) == 2 && name[end] == '\0')
        return name[5] >= '0' && name[5] <= '9';
    end = 0;
    if (sscanf(name, "heap-%llu-%llu-%llu.prof%n", &d->t, &d->mib, &d->k, &end) == 3 &&
        name[end] == '\0' && d->k >= 2)
        return name[5] >= '0' && name[5] <= '9';
    return false;
}

static void make_name(char *out, size_t outlen, time_t t, uint64_t mib, unsigned k)
{
    if (k == 1)
        snprintf(out, outlen, "heap-%lld-%" PRIu64 ".prof", (long long)t, mib);
    else
        snprintf(out, outlen, "heap-%lld-%" PRIu64 "-%u.prof", (long long)t, mib, k);
}

static void join(char *out, size_t outlen, const char *dir, const char *name)
{
    snprintf(out, outlen, "%s/%s", dir, name);
}

static void warn_errno(const char *event, int err, const char *path)
{
    char e[16];
    snprintf(e, sizeof e, "%d", err);
    log_event(LOG_WARN, event, strerror(err), "path", path, "errno", e, NULL);
}

/* Is `name` (under dirfd) a profile this process remembers, and still that very file? */
static struct dump *find_own(struct heap_dumps *hd, int dirfd, const char *name)
{
    for (size_t i = 0; i < hd->n; i++) {
        if (strcmp(hd->v[i].name, name) != 0) continue;
        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            st.st_dev == hd->v[i].dev && st.st_ino == hd->v[i].ino)
            return &hd->v[i];
        return NULL;
    }
    return NULL;
}

/* An earlier run's profile: a regular file of this user's with one link whose contents begin
 * like a heap profile. Anything else is somebody else's business and is never deleted. */
static bool adoptable(int dirfd, const char *name, struct stat *st)
{
    if (fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) != 0) return false;
    if (!S_ISREG(st->st_mode) || st->st_uid != geteuid() || st->st_nlink != 1) return false;
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return false;
    char head[sizeof MAGIC - 1];
    struct stat fst;
    bool ok = fstat(fd, &fst) == 0 && fst.st_dev == st->st_dev && fst.st_ino == st->st_ino &&
              read(fd, head, sizeof head) == (ssize_t)sizeof head &&
              memcmp(head, MAGIC, sizeof head) == 0;
    close(fd);
    return ok;
}

static int dump_cmp(const void *a, const void *b)
{
    const struct dump *x = a, *y = b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    if (x->mib != y->mib) return x->mib < y->mib ? -1 : 1;
    if (x->k != y->k) return x->k < y->k ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void adopt(struct heap_dumps *hd)
{
    int dirfd = open(hd->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) return;
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return;
    }
    struct dirent *e;
    size_t seen = 0;
    while ((e = readdir(d)) != NULL && seen++ < ADOPT_SCAN_MAX) {
        struct dump dp;
        struct stat st;
        if (!parse_name(e->d_name, &dp) || !adoptable(dirfd, e->d_name, &st)) continue;
        dp.dev = st.st_dev;
        dp.ino = st.st_ino;
        if (push(hd, &dp) != 0) break;
    }
    closedir(d); /* closes dirfd */
    if (hd->n > 0) {
        qsort(hd->v, hd->n, sizeof *hd->v, dump_cmp);
        char n[24];
        snprintf(n, sizeof n, "%zu", hd->n);
        log_event(LOG_INFO, "heap_dump_adopted",
                  "heap profiles of an earlier run, pruned with ours", "dir", hd->dir, "count", n,
                  NULL);
    }
}

static void check_dir(const struct heap_dumps *hd)
{
    struct stat st;
    /* One level, only ours: a directory primed makes is safe by construction (the manifests
     * point at a subdirectory of an emptyDir, which nobody else creates). */
    if (stat(hd->dir, &st) != 0 && errno == ENOENT && mkdir(hd->dir, 0700) == 0)
        log_event(LOG_INFO, "heap_dump_dir_created", "created (mode 0700)", "dir", hd->dir, NULL);
    if (stat(hd->dir, &st) != 0) {
        log_event(LOG_WARN, "heap_dump_dir_unusable", strerror(errno), "dir", hd->dir, NULL);
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        log_event(LOG_WARN, "heap_dump_dir_unusable", strerror(ENOTDIR), "dir", hd->dir, NULL);
        return;
    }
    if (access(hd->dir, W_OK | X_OK) != 0)
        log_event(LOG_WARN, "heap_dump_dir_unusable", strerror(errno), "dir", hd->dir, NULL);
    const char *risk = heap_dumps_dir_risk(st.st_uid, st.st_mode, geteuid());
    if (risk) {
        char mode[8], uid[16];
        snprintf(mode, sizeof mode, "%04o", (unsigned)(st.st_mode & 07777));
        snprintf(uid, sizeof uid, "%u", (unsigned)st.st_uid);
        log_event(LOG_WARN, "heap_dump_dir_unsafe", risk, "dir", hd->dir, "mode", mode, "owner_uid",
                  uid, NULL);
    }
}

int heap_dumps_create(const char *dir, unsigned keep, struct heap_dumps **out)
{
    *out = NULL;
    if (!dir || dir[0] == '\0' || strlen(dir) >= CONFIG_PATH_MAX) return -EINVAL;
    struct heap_dumps *hd = calloc(1, sizeof *hd);
    if (!hd) return -ENOMEM;
    snprintf(hd->dir, sizeof hd->dir, "%s", dir);
    hd->keep = keep ? keep : 1;
    check_dir(hd);
    adopt(hd);
    *out = hd;
    return 0;
}

void heap_dumps_destroy(struct heap_dumps *hd)
{
    if (!hd) return;
    free(hd->v);
    free(hd);
}

/* Delete the oldest remembered profiles beyond keep, each only if its name still leads to it. */
static void prune(struct heap_dumps *hd, int dirfd)
{
    size_t drop = hd->n > hd->keep ? hd->n - hd->keep : 0;
    for (size_t i = 0; i < drop; i++) {
        const struct dump *d = &hd->v[i];
        char path[CONFIG_PATH_MAX + 80];
        join(path, sizeof path, hd->dir, d->name);
        struct stat st;
        if (fstatat(dirfd, d->name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT) warn_errno("heap_dump_prune_failed", errno, path);
            continue; /* gone already (removed by hand): nothing to do */
        }
        if (!S_ISREG(st.st_mode) || st.st_dev != d->dev || st.st_ino != d->ino) {
            log_event(LOG_WARN, "heap_dump_prune_skipped",
                      "the name no longer leads to the profile primed wrote: left alone", "path",
                      path, NULL);
            continue;
        }
        if (unlinkat(dirfd, d->name, 0) != 0) warn_errno("heap_dump_prune_failed", errno, path);
    }
    /* Forgotten either way: a profile that cannot be deleted now will not be later. */
    memmove(hd->v, hd->v + drop, (hd->n - drop) * sizeof *hd->v);
    hd->n -= drop;
}

/* Write all of buf and make it durable. Returns 0 or -errno. */
static int write_all(int fd, const char *buf, size_t len)
{
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? -errno : -EIO;
        off += (size_t)w;
    }
    return fsync(fd) == 0 ? 0 : -errno;
}

/* An unnamed file in dirfd, or (no O_TMPFILE on this filesystem) a new one at a random name
 * written into tmp[tmplen]. Returns the fd or -errno. */
static int open_temp(int dirfd, char *tmp, size_t tmplen)
{
    tmp[0] = '\0';
    int fd = openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)) {
        return fd >= 0 ? fd : -errno;
    }
    for (int i = 0; i < TMP_TRIES; i++) {
        uint64_t r;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) return -EIO;
        snprintf(tmp, tmplen, ".heap-%016" PRIx64 ".tmp", r);
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0) return fd;
        if (errno != EEXIST) break;
    }
    int rc = -errno;
    tmp[0] = '\0';
    return rc;
}

/* Give the written file `name` without replacing anything. Returns 0 or -errno (-EEXIST: taken). */
static int publish(int dirfd, int fd, const char *tmp, const char *name)
{
    if (tmp[0] != '\0')
        return renameat2(dirfd, tmp, dirfd, name, RENAME_NOREPLACE) == 0 ? 0 : -errno;
    /* linkat(fd, "", …, AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; /proc/self/fd does not */
    char self[40];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, self, dirfd, name, AT_SYMLINK_FOLLOW) == 0) return 0;
    int err = errno;
    if (err != ENOENT || access("/proc/self/fd", X_OK) == 0) return -err;
    return linkat(fd, "", dirfd, name, AT_EMPTY_PATH) == 0 ? 0 : -errno;
}

int heap_dumps_write(struct heap_dumps *hd, time_t t, uint64_t mib, const char *buf, size_t len,
                     char *path, size_t pathlen)
{
    snprintf(path, pathlen, "%s", hd->dir);
    int dirfd = open(hd->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) return -errno;
    char tmp[40];
    int rc, fd = open_temp(dirfd, tmp, sizeof tmp);
    if (fd < 0) {
        rc = fd;
        goto out_dir;
    }
    if ((rc = write_all(fd, buf, len)) != 0) {
        if (tmp[0]) join(path, pathlen, hd->dir, tmp);
        goto out_fd;
    }
    struct dump d = {0};
    unsigned k;
    for (k = 1; k <= NAME_TRIES; k++) {
        make_name(d.name, sizeof d.name, t, mib, k);
        join(path, pathlen, hd->dir, d.name);
        rc = publish(dirfd, fd, tmp, d.name);
        if (rc != -EEXIST) break;
        if (find_own(hd, dirfd, d.name)) {
            rc = HEAP_DUMPS_DUPLICATE;
            break;
        }
        log_event(LOG_WARN, "heap_dump_name_taken",
                  "a file primed did not write has the profile's name: trying the next", "path",
                  path, NULL);
    }
    if (rc == 0) {
        tmp[0] = '\0'; /* renamed: nothing to remove */
        struct stat st;
        if (fstat(fd, &st) == 0) {
            d.dev = st.st_dev;
            d.ino = st.st_ino;
            d.t = (unsigned long long)t;
            d.mib = mib;
            d.k = k;
            /* not remembered (no memory): never pruned, still written */
            if (push(hd, &d) == 0) prune(hd, dirfd);
        }
    }
out_fd:
    close(fd);
    if (tmp[0]) unlinkat(dirfd, tmp, 0);
out_dir:
    close(dirfd);
    return rc;
}
