/* pprof_threads.c — renders a thread dump (threaddump.c) for the debug listener.
 *
 * Three shapes of one capture: pprof's gzipped protobuf (sample type threads/count; threads with
 * the same frames and the same labels — role, request id, thread name — merged into one sample
 * with their count, as Go merges goroutines; one value per label key, so `pprof -tags` totals
 * add up), Go's goroutine?debug=1 text (grouped by stack alone, threads named), and
 * ?debug=2 (one stack per thread). Addresses past the first frame are return addresses: the
 * profile stores them minus 1 so pprof names the call, not the instruction after it; the text
 * names that same instruction but prints the address as captured. Cold path: allocates freely,
 * never holds the symbol table's lock while capturing.
 */
#include "pprof_threads.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <link.h>
#include <assert.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pprofenc.h"
#include "primed/buf.h"
#include "primed/errors.h"
#include "symbolize.h"
#include "threaddump.h"

#define NO_ANSWER "<no answer in 100 ms>"

/* ---- parameters ----------------------------------------------------------------------------- */

/* ---- grouping ------------------------------------------------------------------------------- */

struct sort_ctx {
    const struct threaddump *d;
    bool by_label;
};

static int cmp_stack(const void *x, const void *y, void *arg)
{
    const struct sort_ctx *ctx = arg;
    const struct threaddump_thread *a = &ctx->d->t[*(const unsigned *)x];
    const struct threaddump_thread *b = &ctx->d->t[*(const unsigned *)y];
    int sa = atomic_load_explicit(&a->state, memory_order_relaxed) == THREADDUMP_OK;
    int sb = atomic_load_explicit(&b->state, memory_order_relaxed) == THREADDUMP_OK;
    if (sa != sb) return sb - sa; /* answered first */
    if (a->nframes != b->nframes) return a->nframes < b->nframes ? -1 : 1;
    int c = memcmp(a->pc, b->pc, a->nframes * sizeof a->pc[0]);
    if (c) return c;
    if (ctx->by_label) {
        c = strcmp(threaddump_role(a), threaddump_role(b));
        if (!c) c = strcmp(a->label, b->label);
        if (!c) c = strcmp(a->name, b->name);
        if (c) return c;
    }
    return a->tid - b->tid;
}

static bool same_group(const struct threaddump *d, unsigned i, unsigned j, bool by_label)
{
    const struct threaddump_thread *a = &d->t[i], *b = &d->t[j];
    bool oa = atomic_load_explicit(&a->state, memory_order_relaxed) == THREADDUMP_OK;
    bool ob = atomic_load_explicit(&b->state, memory_order_relaxed) == THREADDUMP_OK;
    if (oa != ob || a->nframes != b->nframes ||
        memcmp(a->pc, b->pc, a->nframes * sizeof a->pc[0]) != 0)
        return false;
    return !by_label || (strcmp(threaddump_role(a), threaddump_role(b)) == 0 &&
                         strcmp(a->label, b->label) == 0 && strcmp(a->name, b->name) == 0);
}

/* Thread indices sorted so that groups are runs; NULL on out-of-memory. The threads that
 * exited before their signal are left out. */
static unsigned *sorted(const struct threaddump *d, bool by_label, unsigned *n)
{
    unsigned *ix = malloc((d->nthreads ? d->nthreads : 1) * sizeof *ix);
    if (!ix) return NULL;
    *n = 0;
    for (unsigned i = 0; i < d->nthreads; i++)
        if (atomic_load_explicit(&d->t[i].state, memory_order_relaxed) != THREADDUMP_GONE)
            ix[(*n)++] = i;
    struct sort_ctx ctx = {d, by_label};
    qsort_r(ix, *n, sizeof *ix, cmp_stack, &ctx);
    return ix;
}

static bool answered(const struct threaddump_thread *t)
{
    return atomic_load_explicit(&t->state, memory_order_relaxed) == THREADDUMP_OK;
}

/* ---- text ----------------------------------------------------------------------------------- */

/* The text and legacy shapes are built in a buf; TEXT_MAX bounds a dump (a thread's stack is at
 * most THREADDUMP_MAX_FRAMES lines of ~100 bytes; a few hundred threads need a few MiB). */
#define TEXT_MAX (64u << 20)

/* A static function of a shared library has no name dladdr can give: name its object. */
static void text_unnamed(struct buf *out, uint64_t pc)
{
    Dl_info info;
    if (dladdr((void *)(uintptr_t)pc, &info) && info.dli_fname) {
        const char *base = strrchr(info.dli_fname, '/');
        buf_printf(out, "#\t0x%" PRIx64 "\t?(%s+0x%" PRIx64 ")\n", pc,
                   base ? base + 1 : info.dli_fname, pc - (uint64_t)(uintptr_t)info.dli_fbase);
    } else {
        buf_printf(out, "#\t0x%" PRIx64 "\t?\n", pc);
    }
}

static void text_frames(struct buf *out, const struct threaddump_thread *t)
{
    for (unsigned f = 0; f < t->nframes; f++) {
        uint64_t pc = t->pc[f], start = 0;
        const char *name = symbolize_addr(f ? pc - 1 : pc, &start);
        if (name)
            buf_printf(out, "#\t0x%" PRIx64 "\t%s+0x%" PRIx64 "\n", pc, name, pc - start);
        else
            text_unnamed(out, pc);
    }
    if (t->nframes == THREADDUMP_MAX_FRAMES)
        buf_printf(out, "#\t...\t(stack cut at %d frames)\n", THREADDUMP_MAX_FRAMES);
}

static void text_who(struct buf *out, const struct threaddump_thread *t)
{
    buf_printf(out, " %s[%s", t->name[0] ? t->name : "?", threaddump_role(t));
    if (t->label[0]) buf_printf(out, " request_id=%s", t->label);
    buf_printf(out, " tid=%d]", t->tid);
}

static int render_text(const struct threaddump *d, int level, struct buf *out)
{
    unsigned n;
    unsigned *ix = sorted(d, false, &n);
    if (!ix) return -ENOMEM;
    buf_printf(out,
               "threads profile: total %u\n# answered %u, no answer in %d ms %u, not listed %u; "
               "signal SIGRTMIN+%d; took %.3f ms\n",
               n, d->answered, THREADDUMP_WAIT_MS, n - d->answered, d->truncated,
               threaddump_signal() - SIGRTMIN, (double)d->took_ns / 1e6);
    symbolize_lock();
    for (unsigned g = 0; g < n;) {
        unsigned e = g + 1;
        if (level == 1)
            while (e < n && same_group(d, ix[g], ix[e], false))
                e++;
        const struct threaddump_thread *t = &d->t[ix[g]];
        buf_printf(out, "\n");
        if (level == 1) {
            buf_printf(out, "%u @", e - g);
            if (!answered(t)) buf_printf(out, " %s", NO_ANSWER);
            for (unsigned f = 0; f < t->nframes; f++)
                buf_printf(out, " 0x%" PRIx64, t->pc[f]);
            buf_printf(out, "\n# threads:");
            for (unsigned k = g; k < e; k++)
                text_who(out, &d->t[ix[k]]);
            buf_printf(out, "\n");
        } else {
            buf_printf(out, "thread %d \"%s\" [%s%s%s]:%s\n", t->tid, t->name, threaddump_role(t),
                       t->label[0] ? " request_id=" : "", t->label,
                       answered(t) ? "" : " " NO_ANSWER);
        }
        text_frames(out, t);
        g = e;
    }
    symbolize_unlock();
    free(ix);
    return buf_error(out) != 0 ? -ENOMEM : 0;
}

/* ---- pprof protobuf ------------------------------------------------------------------------- */

struct mapping_ctx {
    struct pprofenc *b;
    char exe_path[4096];
};

/* One mapping per object: its executable segment, page-aligned the way /proc/self/maps shows
 * it (pprof assumes mappings are such lines when it relates addresses to the file; one mapping
 * spanning all segments misleads it wherever a segment's offset differs from its address). */
static int add_mapping(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct mapping_ctx *ctx = arg;
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        uint64_t a = info->dlpi_addr + ph->p_vaddr;
        /* The first object is the executable (empty name): pprof takes the first mapping as
         * the main binary. */
        const char *name = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : ctx->exe_path;
        if (pprofenc_mapping(ctx->b, a & ~(page - 1), a + ph->p_memsz, ph->p_offset & ~(page - 1),
                             name) != 0)
            return -1;
    }
    return 0;
}

static int render_proto(const struct threaddump *d, char **out, size_t *len)
{
    unsigned n;
    unsigned *ix = sorted(d, true, &n);
    struct pprofenc *b = pprofenc_create("threads", "count");
    struct pprofenc_label labels[3];
    int rc = -ENOMEM;
    if (!ix || !b) goto out;
    static_assert(sizeof(struct mapping_ctx) < 8192, "on the stack");
    struct mapping_ctx mctx = {.b = b};
    ssize_t pl = readlink("/proc/self/exe", mctx.exe_path, sizeof mctx.exe_path - 1);
    mctx.exe_path[pl > 0 ? (size_t)pl : 0] = '\0';
    rc = dl_iterate_phdr(add_mapping, &mctx) == 0 ? 0 : -ENOMEM;
    if (rc != 0) goto out;
    char comment[128];
    snprintf(comment, sizeof comment, "primed thread dump: %u threads, %u answered, took %.3f ms",
             n, d->answered, (double)d->took_ns / 1e6);
    if (pprofenc_comment(b, comment) != 0) goto oom;
    for (unsigned g = 0; g < n;) {
        unsigned e = g + 1;
        while (e < n && same_group(d, ix[g], ix[e], true))
            e++;
        const struct threaddump_thread *t = &d->t[ix[g]];
        uint64_t locs[THREADDUMP_MAX_FRAMES];
        size_t nl = 0;
        if (!answered(t)) {
            if (!(locs[nl++] = pprofenc_location_name(b, NO_ANSWER))) goto oom;
        }
        for (unsigned f = 0; f < t->nframes; f++)
            if (!(locs[nl++] = pprofenc_location_addr(b, f ? t->pc[f] - 1 : t->pc[f]))) goto oom;
        size_t nlab = 0;
        labels[nlab++] = (struct pprofenc_label){"role", threaddump_role(t)};
        if (t->label[0]) labels[nlab++] = (struct pprofenc_label){"request_id", t->label};
        labels[nlab++] = (struct pprofenc_label){"thread", t->name};
        if (pprofenc_sample(b, locs, nl, (int64_t)(e - g), labels, nlab) != 0) goto oom;
        g = e;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    rc = pprofenc_finish(b, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec, out, len);
    goto out;
oom:
    rc = -ENOMEM;
out:
    pprofenc_destroy(b);
    free(ix);
    return rc;
}

/* ---- gperftools' legacy CPU profile (for google-pprof) ----------------------------------------
 * Words of the pointer size: header {0, 3, 0, period_us, 0}, then per stack {count, depth,
 * pc…}, trailer {0, 1, 0}, then the text of /proc/self/maps. google-pprof subtracts 1 from
 * every pc but the first itself. Threads that did not answer have no stack to show here. */
static int render_legacy(const struct threaddump *d, struct buf *out)
{
    unsigned n;
    unsigned *ix = sorted(d, false, &n);
    if (!ix) return -ENOMEM;
    uintptr_t w[THREADDUMP_MAX_FRAMES + 2] = {0, 3, 0, 1, 0};
    buf_append(out, w, 5 * sizeof w[0]);
    for (unsigned g = 0; g < n;) {
        unsigned e = g + 1;
        while (e < n && same_group(d, ix[g], ix[e], false))
            e++;
        const struct threaddump_thread *t = &d->t[ix[g]];
        if (answered(t) && t->nframes) {
            w[0] = e - g;
            w[1] = t->nframes;
            buf_append(out, w, 2 * sizeof w[0]);
            for (unsigned f = 0; f < t->nframes; f++)
                w[f] = (uintptr_t)t->pc[f];
            buf_append(out, w, t->nframes * sizeof w[0]);
        }
        g = e;
    }
    uintptr_t trailer[3] = {0, 1, 0};
    buf_append(out, trailer, sizeof trailer);
    free(ix);
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char chunk[4096];
        ssize_t r;
        while ((r = read(fd, chunk, sizeof chunk)) > 0 || (r < 0 && errno == EINTR))
            if (r > 0) buf_append(out, chunk, (size_t)r);
        close(fd);
    }
    return buf_error(out) != 0 ? -ENOMEM : 0;
}

/* ---- endpoint ------------------------------------------------------------------------------- */

int pprof_threads_serve(const struct http_request *req, struct http_response *resp, bool legacy)
{
    /* google-pprof's legacy path asks every profile for ?seconds=N (a dump is instantaneous,
     * so it is accepted and ignored); the pprof path takes ?debug=. */
    struct http_params p = {.names = {legacy ? "seconds" : "debug"}};
    if (http_params_check(req, &p, resp) != 0) return 0;
    const char *debug = legacy ? NULL : p.vals[0];
    int level = 0;
    if (debug) {
        if (strcmp(debug, "0") == 0)
            level = 0;
        else if (strcmp(debug, "1") == 0)
            level = 1;
        else if (strcmp(debug, "2") == 0)
            level = 2;
        else
            return errors_render(resp, PERR_BAD_PARAM, "debug", NULL,
                                 "debug must be 0 (pprof profile), 1 (grouped text) or 2 "
                                 "(one stack per thread)");
    }
    struct threaddump *d;
    int rc = threaddump_capture(&d);
    if (rc == -EBUSY)
        return errors_render(resp, PERR_CONFLICT, NULL, NULL, "a thread dump is already running");
    if (rc == -ENOSYS)
        return errors_render(resp, PERR_NOT_IMPLEMENTED, NULL, NULL,
                             "thread dumps do not work under ThreadSanitizer");
    if (rc != 0)
        return errors_render(resp, PERR_INTERNAL, NULL, NULL, "thread dump failed: %s",
                             strerror(-rc));
    if (level == 0 && !legacy) {
        char *body = NULL;
        size_t len = 0;
        rc = render_proto(d, &body, &len);
        threaddump_free(d);
        if (rc != 0) return errors_render(resp, PERR_INTERNAL, NULL, NULL, "out of memory");
        http_response_body_owned(resp, 200, "application/octet-stream", body, len);
        http_response_header(resp, "Content-Disposition", "attachment; filename=\"threads\"");
        return 0;
    }
    struct buf out;
    buf_init(&out, TEXT_MAX);
    rc = legacy ? render_legacy(d, &out) : render_text(d, level, &out);
    threaddump_free(d);
    size_t len;
    char *body = buf_steal(&out, &len); /* NULL after any failure above */
    if (rc != 0 || body == NULL) {
        free(body);
        return errors_render(resp, PERR_INTERNAL, NULL, NULL, "out of memory");
    }
    http_response_body_owned(resp, 200, legacy ? "application/octet-stream" : HTTP_TEXT, body, len);
    return 0;
}
