/* threaddump.h — the current stack of every thread of the process, taken by signalling each
 * one. Internal to the service (the debug listener's /debug/pprof/threads, in profiling.c).
 *
 * Contract: one capture at a time; a thread that does not answer within THREADDUMP_WAIT_MS is
 * reported as such, never waited for longer; the signal handler allocates nothing and takes no
 * lock. In builds where the capture cannot work (ThreadSanitizer) every capture is -ENOSYS.
 */
#ifndef PRIMED_THREADDUMP_H
#define PRIMED_THREADDUMP_H

#include <stdatomic.h>
#include <stdint.h>

#define THREADDUMP_MAX_THREADS 1024 /* threads beyond this are counted in `truncated` */
#define THREADDUMP_MAX_FRAMES 64    /* deeper stacks are cut (the outermost frames are lost) */
#define THREADDUMP_LABEL_MAX 65     /* a request id (64 chars at most) and its NUL */
#define THREADDUMP_WAIT_MS 100

enum threaddump_state {
    THREADDUMP_WAITING = 0, /* signalled, no answer (yet): "no answer in 100 ms" */
    THREADDUMP_WRITING,     /* the handler is filling the slot */
    THREADDUMP_OK,          /* pc[] and label hold the stack at the signal */
    THREADDUMP_GONE,        /* exited between the listing and the signal */
};

struct threaddump_thread {
    int tid;
    char name[16];                    /* /proc/self/task/TID/comm, the pthread name */
    char label[THREADDUMP_LABEL_MAX]; /* pool_current_label() at the signal, "" for none */
    _Atomic int state;                /* enum threaddump_state; the handler writes WRITING then
                                       * OK (release), the capturer reads it (acquire) */
    unsigned nframes;
    uint64_t pc[THREADDUMP_MAX_FRAMES]; /* [0] the interrupted pc, then return addresses */
};

struct threaddump {
    unsigned nthreads;  /* entries in t[] */
    unsigned truncated; /* threads not listed (beyond THREADDUMP_MAX_THREADS) */
    unsigned answered;  /* t[i].state == THREADDUMP_OK */
    uint64_t took_ns;   /* from the first signal to the last answer (or the timeout) */
    struct threaddump_thread t[];
};

/* Capture every thread's stack. On success *out is the dump (caller frees it with
 * threaddump_free). Returns 0, -EBUSY (another capture is running), -ENOSYS (not in this build),
 * -ENOMEM, or -errno from listing /proc/self/task. Blocks the caller for at most about
 * THREADDUMP_WAIT_MS (plus a bounded wait for late handlers to leave). */
int threaddump_capture(struct threaddump **out);
void threaddump_free(struct threaddump *d); /* accepts NULL */

/* The signal taken (SIGRTMIN+3), for logs and the index; 0 when the build has no capture. */
int threaddump_signal(void);

/* The role of a thread, from its name: "worker", "watchdog", "http" (libmicrohttpd), "main" or
 * "other". Never NULL. */
const char *threaddump_role(const struct threaddump_thread *t);

#endif
