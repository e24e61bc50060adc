/* cgroup.c — see cgroup.h. Finds the memory cgroup once (cgroup_open), then reads its few files
 * on demand (cgroup_read) with stack buffers only.
 *
 * In a hybrid layout (v1 controllers plus an empty cgroup2 mount at /sys/fs/cgroup/unified) the
 * memory controller lives in v1, so a v1 memory hierarchy wins over cgroup2; cgroup2 is used only
 * when its root lists "memory" in cgroup.controllers. Nothing read here is trusted: a value that
 * is not a plain decimal number (or "max") is treated as absent, never as a number.
 */
#include "primed/cgroup.h"

#include "primed/procstat.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct cgroup {
    enum cgroup_version version;
    char top[PATH_MAX]; /* root + the hierarchy's mount point: where ancestors stop */
    char dir[PATH_MAX]; /* root + mount point + the process's cgroup path */
};

/* ---- small readers --------------------------------------------------------------------- */

/* Strict decimal of s[0..len): digits only, no overflow. */
static bool parse_dec(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* A one-value file: "123\n" or, when allow_max, "max\n" (→ UINT64_MAX). */
static bool read_value(const char *dir, const char *name, bool allow_max, uint64_t *out)
{
    char path[PATH_MAX + 64], buf[64];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) return false;
    ssize_t n = procstat_read_small(path, buf, sizeof buf);
    if (n <= 0) return false;
    size_t len = (size_t)n;
    if (buf[len - 1] == '\n') len--;
    if (allow_max && len == 3 && memcmp(buf, "max", 3) == 0) {
        *out = UINT64_MAX;
        return true;
    }
    return parse_dec(buf, len, out);
}

/* The value of "key N" in a flat keyed file (memory.stat, memory.events, memory.oom_control).
 * Files larger than the buffer are cut: memory.stat is ~1.5 KiB on v2, ~1 KiB on v1. */
static bool read_key(const char *dir, const char *name, const char *key, uint64_t *out)
{
    char path[PATH_MAX + 64], buf[8192];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) return false;
    if (procstat_read_small(path, buf, sizeof buf) <= 0) return false;
    size_t kl = strlen(key);
    for (char *line = buf; *line != '\0';) {
        char *nl = strchr(line, '\n');
        size_t ll = nl ? (size_t)(nl - line) : strlen(line);
        if (ll > kl && memcmp(line, key, kl) == 0 && line[kl] == ' ')
            return parse_dec(line + kl + 1, ll - kl - 1, out);
        if (!nl) break;
        line = nl + 1;
    }
    return false;
}

/* ---- locating ---------------------------------------------------------------------------- */

/* mountinfo escapes space, tab, newline and backslash as \ooo; decode in place. */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r != '\0';) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

/* Is tok one of the comma-separated words of list? */
static bool has_word(const char *list, const char *tok)
{
    size_t tl = strlen(tok);
    for (const char *p = list; *p != '\0';) {
        size_t wl = strcspn(p, ",");
        if (wl == tl && memcmp(p, tok, tl) == 0) return true;
        p += wl;
        if (*p == ',') p++;
    }
    return false;
}

struct mount {
    bool found;
    char root[PATH_MAX];  /* the part of the hierarchy mounted (field 4) */
    char point[PATH_MAX]; /* where (field 5) */
};

/* One mountinfo line: "id parent maj:min root point opts [optional...] - fstype source super". */
static int parse_mount_line(char *line, struct mount *v1, struct mount *v2)
{
    char *f[6];
    char *save = NULL;
    char *tok = strtok_r(line, " ", &save);
    for (int i = 0; i < 6; i++) {
        if (tok == NULL) return -EINVAL;
        f[i] = tok;
        tok = strtok_r(NULL, " ", &save);
    }
    while (tok != NULL && strcmp(tok, "-") != 0) /* optional fields */
        tok = strtok_r(NULL, " ", &save);
    if (tok == NULL) return -EINVAL;
    char *fstype = strtok_r(NULL, " ", &save);
    char *source = strtok_r(NULL, " ", &save);
    char *super = strtok_r(NULL, " ", &save);
    if (fstype == NULL || source == NULL || super == NULL) return -EINVAL;
    struct mount *m = NULL;
    if (strcmp(fstype, "cgroup") == 0 && has_word(super, "memory"))
        m = v1;
    else if (strcmp(fstype, "cgroup2") == 0)
        m = v2;
    if (m == NULL || m->found) return 0; /* the first mount of a hierarchy wins */
    unescape(f[3]);
    unescape(f[4]);
    if (strlen(f[3]) >= sizeof m->root || strlen(f[4]) >= sizeof m->point) return -EINVAL;
    strcpy(m->root, f[3]);
    strcpy(m->point, f[4]);
    m->found = true;
    return 0;
}

static int parse_mountinfo(const char *path, struct mount *v1, struct mount *v2)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) return -errno;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n') line[n - 1] = '\0';
        if (line[0] == '\0') continue;
        rc = parse_mount_line(line, v1, v2);
    }
    free(line);
    fclose(f);
    return rc;
}

/* /proc/self/cgroup: "hier:controllers:path" per line; v2 is "0::path". */
static int parse_proc_cgroup(const char *path, char v1[PATH_MAX], char v2[PATH_MAX])
{
    FILE *f = fopen(path, "re");
    if (f == NULL) return -errno;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n') line[--n] = '\0';
        if (n == 0) continue;
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2 == NULL || c2[1] != '/' || strlen(c2 + 1) >= PATH_MAX) {
            rc = -EINVAL;
            break;
        }
        *c1 = *c2 = '\0';
        const char *ctrl = c1 + 1, *cpath = c2 + 1;
        if (strcmp(line, "0") == 0 && ctrl[0] == '\0')
            strcpy(v2, cpath);
        else if (has_word(ctrl, "memory"))
            strcpy(v1, cpath);
    }
    free(line);
    fclose(f);
    return rc;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* dir = root + m->point + (cgpath relative to m->root). When the process's cgroup directory is
 * not visible under the mount (a container that mounts only its own group), the mount point
 * itself is that group. */
static int join_dir(struct cgroup *cg, const char *root, const struct mount *m, const char *cgpath)
{
    const char *rel = cgpath;
    size_t rl = strlen(m->root);
    if (strcmp(m->root, "/") != 0 && strncmp(cgpath, m->root, rl) == 0 &&
        (cgpath[rl] == '/' || cgpath[rl] == '\0'))
        rel = cgpath + rl;
    if (strcmp(rel, "/") == 0) rel = "";
    const char *r = strcmp(root, "/") == 0 ? "" : root;
    if (snprintf(cg->top, sizeof cg->top, "%s%s", r, m->point) >= (int)sizeof cg->top ||
        snprintf(cg->dir, sizeof cg->dir, "%s%s%s", r, m->point, rel) >= (int)sizeof cg->dir)
        return -ENAMETOOLONG;
    size_t tl = strlen(cg->top); /* no trailing '/' on either, so the ancestor walk stops */
    while (tl > 1 && cg->top[tl - 1] == '/')
        cg->top[--tl] = '\0';
    size_t dl = strlen(cg->dir);
    while (dl > 1 && cg->dir[dl - 1] == '/')
        cg->dir[--dl] = '\0';
    if (!is_dir(cg->dir)) strcpy(cg->dir, cg->top);
    return is_dir(cg->dir) ? 0 : -ENOENT;
}

static bool v2_has_memory(const char *top)
{
    char path[PATH_MAX + 32], buf[512];
    snprintf(path, sizeof path, "%s/cgroup.controllers", top);
    if (procstat_read_small(path, buf, sizeof buf) <= 0) return false;
    for (char *save = NULL, *t = strtok_r(buf, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
        if (strcmp(t, "memory") == 0) return true;
    return false;
}

int cgroup_open(const char *root, struct cgroup **out)
{
    *out = NULL;
    if (root == NULL || root[0] == '\0') root = "/";
    const char *r = strcmp(root, "/") == 0 ? "" : root;
    char path[PATH_MAX];
    struct mount *mv1 = NULL, *mv2 = NULL;
    char *p1 = NULL, *p2 = NULL;
    struct cgroup *cg = NULL;
    int rc = -ENOMEM;
    mv1 = calloc(1, sizeof *mv1);
    mv2 = calloc(1, sizeof *mv2);
    p1 = calloc(1, PATH_MAX);
    p2 = calloc(1, PATH_MAX);
    cg = calloc(1, sizeof *cg);
    if (!mv1 || !mv2 || !p1 || !p2 || !cg) goto err;

    snprintf(path, sizeof path, "%s/proc/self/cgroup", r);
    if ((rc = parse_proc_cgroup(path, p1, p2)) != 0) goto err;
    snprintf(path, sizeof path, "%s/proc/self/mountinfo", r);
    if ((rc = parse_mountinfo(path, mv1, mv2)) != 0) goto err;

    rc = -ENOENT;
    if (p1[0] != '\0' && mv1->found) {
        cg->version = CGROUP_V1;
        rc = join_dir(cg, root, mv1, p1);
    } else if (p2[0] != '\0' && mv2->found) {
        cg->version = CGROUP_V2;
        rc = join_dir(cg, root, mv2, p2);
        if (rc == 0 && !v2_has_memory(cg->top)) rc = -ENOENT;
    }
    if (rc != 0) goto err;
    free(p2);
    free(p1);
    free(mv2);
    free(mv1);
    *out = cg;
    return 0;

err:
    free(cg);
    free(p2);
    free(p1);
    free(mv2);
    free(mv1);
    return rc;
}

void cgroup_close(struct cgroup *cg)
{
    free(cg);
}

enum cgroup_version cgroup_version(const struct cgroup *cg)
{
    return cg ? cg->version : CGROUP_NONE;
}

const char *cgroup_dir(const struct cgroup *cg)
{
    return cg ? cg->dir : "";
}

/* ---- reading ----------------------------------------------------------------------------- */

static void take_limit(struct cgroup_mem *m, uint64_t v)
{
    if (v >= CGROUP_UNLIMITED) return;
    if (!m->has_limit || v < m->limit) m->limit = v;
    m->has_limit = true;
}

static void read_v2(const struct cgroup *cg, struct cgroup_mem *m)
{
    /* A parent's memory.max binds its children too: the smallest on the way up is the limit.
     * The hierarchy root has no memory.max. */
    char walk[PATH_MAX];
    strcpy(walk, cg->dir);
    size_t tl = strlen(cg->top);
    for (int depth = 0; depth < 64; depth++) {
        uint64_t v;
        if (read_value(walk, "memory.max", true, &v)) take_limit(m, v);
        if (strlen(walk) <= tl) break;
        char *slash = strrchr(walk, '/');
        if (slash == NULL || (size_t)(slash - walk) < tl) break;
        *slash = '\0';
    }
    m->has_usage = read_value(cg->dir, "memory.current", false, &m->usage);
    if (!read_key(cg->dir, "memory.stat", "inactive_file", &m->inactive_file)) m->inactive_file = 0;
    m->has_oom_kills = read_key(cg->dir, "memory.events", "oom_kill", &m->oom_kills);
    m->has_limit_hits = read_key(cg->dir, "memory.events", "max", &m->limit_hits);
}

static void read_v1(const struct cgroup *cg, struct cgroup_mem *m)
{
    uint64_t v;
    if (read_value(cg->dir, "memory.limit_in_bytes", false, &v)) take_limit(m, v);
    /* v1 nests limits too (use_hierarchy): the kernel sums them up in memory.stat. */
    if (read_key(cg->dir, "memory.stat", "hierarchical_memory_limit", &v)) take_limit(m, v);
    m->has_usage = read_value(cg->dir, "memory.usage_in_bytes", false, &m->usage);
    if (!read_key(cg->dir, "memory.stat", "total_inactive_file", &m->inactive_file) &&
        !read_key(cg->dir, "memory.stat", "inactive_file", &m->inactive_file))
        m->inactive_file = 0;
    m->has_oom_kills = read_key(cg->dir, "memory.oom_control", "oom_kill", &m->oom_kills);
    m->has_limit_hits = read_value(cg->dir, "memory.failcnt", false, &m->limit_hits);
}

void cgroup_read(const struct cgroup *cg, struct cgroup_mem *out)
{
    memset(out, 0, sizeof *out);
    if (cg == NULL) return;
    if (cg->version == CGROUP_V2)
        read_v2(cg, out);
    else if (cg->version == CGROUP_V1)
        read_v1(cg, out);
}

uint64_t cgroup_working_set(const struct cgroup_mem *m)
{
    if (!m->has_usage) return 0;
    return m->usage > m->inactive_file ? m->usage - m->inactive_file : 0;
}
