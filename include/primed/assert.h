/* assert.h — PRIMED_ASSERT(cond): a lifecycle invariant, checked in debug builds.
 *
 * On when the build defines PRIMED_DEBUG_ASSERTS (the Makefile does for VARIANT=asan, VARIANT=tsan
 * and the fuzzers; never in a release build): a false condition writes one line naming the file,
 * line, function and condition to stderr and aborts, so a sanitizer run or a test fails at the
 * broken transition instead of somewhere downstream. Off, the condition is not evaluated (it must
 * have no side effect) but still compiled, so it cannot rot.
 * Use it for state transitions that matter (request phases, pool job lifecycle, jobq client
 * states, stream parks), each with a comment saying the invariant — not for input validation,
 * which is an error returned to the caller.
 */
#ifndef PRIMED_ASSERT_H
#define PRIMED_ASSERT_H

/* Never returns: logs "primed: assertion failed: FILE:LINE: FUNC: COND" with one write(2), then
 * abort(). Async-signal-safe and allocation-free, so it may be called with any lock held. */
__attribute__((noreturn, cold)) void primed_assert_fail(const char *cond, const char *file,
                                                        int line, const char *func);

#ifdef PRIMED_DEBUG_ASSERTS
#define PRIMED_ASSERT(cond)                                                                        \
    ((cond) ? (void)0 : primed_assert_fail(#cond, __FILE__, __LINE__, __func__))
#else
#define PRIMED_ASSERT(cond) ((void)sizeof(!(cond)))
#endif

#endif
