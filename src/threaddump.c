/* threaddump.c — every thread's current stack, by signal: list /proc/self/task, send each
 * thread SIGRTMIN+3 with tgkill, and let the handler on that thread unwind its own stack with
 * libunwind into its slot of a buffer allocated before the first signal; the capturer waits on
 * a semaphore the handlers post, for at most THREADDUMP_WAIT_MS.
 *
 * The handler must stay async-signal-safe: no allocation, no lock, errno restored. libunwind's
 * local unwinder qualifies (its caches are preallocated or mmap'd and the locks it takes block
 * every signal while held — gperftools' CPU profiler unwinds from SIGPROF the same way); it is
 * warmed up on the capturing thread before the first signal. glibc's backtrace() would do too
 * once pre-warmed (its first call dlopens libgcc_s), but libunwind is already in the product
 * through gperftools and states its signal safety. ptrace-style capture (stop each thread, read
 * its registers from outside) was rejected: a process may not ptrace itself.
 *
 * Lifetime of the buffer: `cur` points at the capture in progress. A handler counts itself in
 * `in_handler` before it loads `cur` and out after its last write; the capturer clears `cur`
 * and then waits for `in_handler` to reach 0 before freeing anything (both sequentially
 * consistent, so either the handler sees NULL or the capturer sees it inside). A signal that
 * arrives late — during a later capture — only fills its own thread's slot of that capture,
 * once (the slot's WAITING→WRITING compare-exchange), with a stack that is current anyway.
 */
#include "threaddump.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "primed/pool.h"

#if defined(__SANITIZE_THREAD__)
#define THREADDUMP_WORKS 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define THREADDUMP_WORKS 0
#endif
#endif
#ifndef THREADDUMP_WORKS
/* ThreadSanitizer defers asynchronous signals to the thread's next intercepted call: a busy
 * worker would not answer in time and the stack would be the interceptor's, not the one the
 * signal interrupted. There the capture answers -ENOSYS (the endpoint 501). */
#define THREADDUMP_WORKS 1
#endif

#if THREADDUMP_WORKS
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#endif

int threaddump_signal(void)
{
    return THREADDUMP_WORKS ? SIGRTMIN + 3 : 0;
}

void threaddump_free(struct threaddump *d)
{
    free(d);
}

const char *threaddump_role(const struct threaddump_thread *t)
{
    static const struct {
        const char *prefix, *role;
    } roles[] = {{"primed-wrk-", "worker"},
                 {"primed-watchdog", "watchdog"},
                 {"primed-hangup", "watcher"},
                 {"MHD-", "http"}};
    if (t->tid == (int)getpid()) return "main";
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (strncmp(t->name, roles[i].prefix, strlen(roles[i].prefix)) == 0) return roles[i].role;
    return "other";
}

#if THREADDUMP_WORKS

/* The capture in flight and the one-capture-at-a-time flag; see the header comment. */
struct capture {
    sem_t answers; /* posted once per slot that reaches THREADDUMP_OK */
    struct threaddump *d;
};
static _Atomic(struct capture *) cur; /* written by the capturer; read by handlers */
static atomic_int in_handler;         /* handlers between their load of cur and their exit */
static atomic_bool busy;              /* set by the capturer that owns cur, cleared by it */
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_err; /* written once inside install_once */

/* Unwind the interrupted stack into t: frames up to the kernel's signal frame are the handler's
 * own and are dropped; if no signal frame is recognised, the handler's frames are kept. */
static void unwind_into(struct threaddump_thread *t)
{
    unw_context_t uc;
    unw_cursor_t c;
    unsigned n = 0;
    if (unw_getcontext(&uc) != 0 || unw_init_local(&c, &uc) != 0) {
        t->nframes = 0;
        return;
    }
    while (unw_step(&c) > 0) {
        if (unw_is_signal_frame(&c) > 0) {
            n = 0; /* everything so far was the handler: start again below the trampoline */
            continue;
        }
        unw_word_t ip;
        if (unw_get_reg(&c, UNW_REG_IP, &ip) != 0 || ip == 0) break;
        if (n < THREADDUMP_MAX_FRAMES)
            t->pc[n++] = (uint64_t)ip;
        else
            break;
    }
    t->nframes = n;
}

static void on_signal(int sig, siginfo_t *si, void *ucontext)
{
    (void)sig;
    (void)ucontext;
    int saved = errno;
    /* Only our own tgkill (SI_TKILL from this process): a stray `kill -RTMIN+3` is ignored. */
    if (si->si_code != SI_TKILL || si->si_pid != getpid()) goto out;
    atomic_fetch_add_explicit(&in_handler, 1, memory_order_seq_cst);
    struct capture *c = atomic_load_explicit(&cur, memory_order_seq_cst);
    if (c) {
        int me = (int)syscall(SYS_gettid);
        struct threaddump *d = c->d;
        for (unsigned i = 0; i < d->nthreads; i++) {
            struct threaddump_thread *t = &d->t[i];
            if (t->tid != me) continue;
            int expected = THREADDUMP_WAITING;
            if (atomic_compare_exchange_strong_explicit(&t->state, &expected, THREADDUMP_WRITING,
                                                        memory_order_acq_rel,
                                                        memory_order_relaxed)) {
                unwind_into(t);
                const char *l = pool_current_label();
                size_t k = 0;
                for (; l && l[k] && k + 1 < sizeof t->label; k++)
                    t->label[k] = l[k];
                t->label[k] = '\0';
                atomic_store_explicit(&t->state, THREADDUMP_OK, memory_order_release);
                sem_post(&c->answers);
            }
            break;
        }
    }
    atomic_fetch_sub_explicit(&in_handler, 1, memory_order_seq_cst);
out:
    errno = saved;
}

static void install(void)
{
    /* Warm the unwinder up here, where allocating is fine: its first use initialises caches. */
    struct threaddump_thread warm;
    unwind_into(&warm);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask); /* nothing else runs on top of a half-written slot */
    install_err = sigaction(SIGRTMIN + 3, &sa, NULL) == 0 ? 0 : -errno;
}

static void read_name(int tid, char name[16])
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", tid);
    name[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, name, 15);
    close(fd);
    if (n < 0) n = 0;
    name[n] = '\0';
    char *nl = strchr(name, '\n');
    if (nl) *nl = '\0';
}

/* List the process's threads into a new dump (states WAITING). */
static int list_threads(struct threaddump **out)
{
    DIR *dir = opendir("/proc/self/task");
    if (!dir) return -errno;
    struct threaddump *d =
        calloc(1, sizeof *d + THREADDUMP_MAX_THREADS * sizeof(struct threaddump_thread));
    if (!d) {
        closedir(dir);
        return -ENOMEM;
    }
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        char *end;
        long tid = strtol(e->d_name, &end, 10);
        if (*end || end == e->d_name || tid <= 0) continue;
        if (d->nthreads == THREADDUMP_MAX_THREADS) {
            d->truncated++;
            continue;
        }
        struct threaddump_thread *t = &d->t[d->nthreads++];
        t->tid = (int)tid;
        read_name(t->tid, t->name);
    }
    closedir(dir);
    struct threaddump *shrunk =
        realloc(d, sizeof *d + (d->nthreads ? d->nthreads : 1) * sizeof(struct threaddump_thread));
    *out = shrunk ? shrunk : d;
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int threaddump_capture(struct threaddump **out)
{
    *out = NULL;
    pthread_once(&install_once, install);
    if (install_err) return install_err;
    bool expected = false;
    if (!atomic_compare_exchange_strong_explicit(&busy, &expected, true, memory_order_acq_rel,
                                                 memory_order_acquire))
        return -EBUSY;
    struct capture *c = malloc(sizeof *c); /* on the heap: a stuck handler may outlive us */
    int rc = c ? list_threads(&c->d) : -ENOMEM;
    if (rc != 0) {
        free(c);
        goto out_busy;
    }
    sem_init(&c->answers, 0, 0);
    atomic_store_explicit(&cur, c, memory_order_seq_cst);

    uint64_t t0 = now_ns();
    unsigned sent = 0;
    pid_t pid = getpid();
    for (unsigned i = 0; i < c->d->nthreads; i++) {
        struct threaddump_thread *t = &c->d->t[i];
        if (syscall(SYS_tgkill, pid, t->tid, SIGRTMIN + 3) == 0)
            sent++;
        else
            atomic_store_explicit(&t->state, THREADDUMP_GONE, memory_order_relaxed);
    }
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += THREADDUMP_WAIT_MS * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    unsigned got = 0;
    while (got < sent) {
        if (sem_clockwait(&c->answers, CLOCK_MONOTONIC, &until) == 0)
            got++;
        else if (errno != EINTR)
            break; /* ETIMEDOUT: the rest are reported as not answering */
    }
    c->d->took_ns = now_ns() - t0;

    /* No handler may touch c after this: unpublish, then wait for those already inside. They
     * run a bounded unwind, so 1 s is generous; if one is stuck anyway, leak the buffer rather
     * than free it under it. */
    atomic_store_explicit(&cur, NULL, memory_order_seq_cst);
    for (int i = 0; i < 1000 && atomic_load_explicit(&in_handler, memory_order_seq_cst); i++)
        usleep(1000);
    if (atomic_load_explicit(&in_handler, memory_order_seq_cst)) {
        rc = -EDEADLK;
        goto out_busy; /* c, c->d and the semaphore leak on purpose */
    }
    sem_destroy(&c->answers);
    for (unsigned i = 0; i < c->d->nthreads; i++)
        c->d->answered +=
            atomic_load_explicit(&c->d->t[i].state, memory_order_acquire) == THREADDUMP_OK;
    *out = c->d;
    free(c);
    rc = 0;
out_busy:
    atomic_store_explicit(&busy, false, memory_order_release);
    return rc;
}

#else /* !THREADDUMP_WORKS */

int threaddump_capture(struct threaddump **out)
{
    *out = NULL;
    return -ENOSYS;
}

#endif
