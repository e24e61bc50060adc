/* assert.c — the failure path of PRIMED_ASSERT (assert.h). It must work wherever an invariant
 * can break: under any lock, on any thread, with the heap in any state; so it formats into a
 * stack buffer by hand (no stdio, no malloc, no log.c, whose own locks could be the ones held)
 * and writes one line to stderr before abort().
 */
#include "primed/assert.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t put(char *buf, size_t at, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n > cap - at) n = cap - at;
    memcpy(buf + at, s, n);
    return at + n;
}

void primed_assert_fail(const char *cond, const char *file, int line, const char *func)
{
    char buf[512], num[12];
    size_t at = 0, cap = sizeof buf - 1; /* room for the newline */
    unsigned v = line > 0 ? (unsigned)line : 0;
    char *d = num + sizeof num - 1;
    *d = '\0';
    do {
        *--d = (char)('0' + v % 10);
        v /= 10;
    } while (v && d > num);
    const char *parts[] = {"primed: assertion failed: ", file, ":", d, ": ", func, ": ", cond};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        at = put(buf, at, cap, parts[i]);
    buf[at++] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, at);
    (void)w;
    abort();
}
