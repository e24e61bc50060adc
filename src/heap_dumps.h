/* heap_dumps.h — the heap profiles primed keeps in heap_dump_dir, a directory that others may be
 * able to write too (a shared volume, /tmp). Nothing found there is trusted:
 *  - a profile appears whole under its final name or not at all, and never replaces or follows
 *    what is there: it is written to an unnamed file (O_TMPFILE) and linked in, or, where the
 *    filesystem has no O_TMPFILE, to a random name (O_EXCL|O_NOFOLLOW) renamed with
 *    RENAME_NOREPLACE. A name that is taken (a planted file or symlink) is skipped for the next;
 *  - only profiles this process wrote, or verified at start as an earlier run's (owned by this
 *    user, one link, a heap profile inside), are ever deleted: oldest first beyond `keep`, and
 *    only while the name still leads to the very file (device and inode) remembered;
 *  - every failure comes back with the path it concerns and -errno, for the caller to count and
 *    log; what is only suspicious (a name taken, a file replaced) is logged here as a warning.
 * Internal to memwatch.c (and its tests). Knows nothing of tcmalloc: the bytes are the caller's.
 * One thread at a time (memwatch's sampling thread).
 */
#ifndef PRIMED_HEAP_DUMPS_H
#define PRIMED_HEAP_DUMPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct heap_dumps;

/* For the directory `dir` (copied), keeping the newest `keep` (≥ 1) profiles. Creates it (mode
 * 0700, the last component only) when it does not exist, then checks it and logs
 * heap_dump_dir_unusable or heap_dump_dir_unsafe (heap_dumps_dir_risk) when it should be fixed,
 * and adopts the profiles an earlier run left there that pass the checks above, so restarts do
 * not pile them up. Returns 0 with *out set, -EINVAL (empty or over-long dir) or -ENOMEM. */
int heap_dumps_create(const char *dir, unsigned keep, struct heap_dumps **out);
void heap_dumps_destroy(struct heap_dumps *hd); /* accepts NULL; deletes nothing */

#define HEAP_DUMPS_DUPLICATE 1
/* Write buf[len] as DIR/heap-<t>-<mib>.prof (or heap-<t>-<mib>-<k>.prof, k = 2…, when that name
 * is taken by a file this process did not write), then prune beyond `keep`. Returns 0 (written;
 * path[pathlen] names the file), HEAP_DUMPS_DUPLICATE (a profile this process wrote already has
 * the name: the same evidence, this one is dropped; path names it), or -errno of the step that
 * failed, with path naming the file or directory it failed on. */
int heap_dumps_write(struct heap_dumps *hd, time_t t, uint64_t mib, const char *buf, size_t len,
                     char *path, size_t pathlen);

/* Profiles remembered (written or adopted, not yet pruned). */
size_t heap_dumps_count(const struct heap_dumps *hd);

/* Why a directory owned by `owner` with `mode` is unsafe for the profiles of a process running
 * as `euid`, or NULL: owned by another user (root excepted), or writable by group or others
 * unless it is sticky and ours (then others cannot remove or rename what we write). */
const char *heap_dumps_dir_risk(uid_t owner, mode_t mode, uid_t euid);

#endif
