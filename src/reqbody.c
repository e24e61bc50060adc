/* reqbody.c — see reqbody.h: request bodies, grown by doubling and charged to the request
 * memory budget before they are held.
 *
 * Never parses the body (the API does, on a worker) and never holds a byte it has not charged.
 */
#include "reqbody.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void reqbody_init(struct reqbody *b)
{
    *b = (struct reqbody){0};
}

int reqbody_declare(struct reqbody *b, struct reqmem *mem, uint64_t n)
{
    if (!reqmem_charge(mem, n + 1)) return -EAGAIN;
    b->charged = (size_t)n + 1;
    return 0;
}

/* Room for `need` bytes of body (NUL included): the Content-Length charged up front when there
 * was one, else doubling from 4 KiB (at most max + 1), the growth charged to the request memory
 * budget. 0, -EAGAIN (over budget) or -ENOMEM. */
static int reserve(struct reqbody *b, struct reqmem *mem, uint64_t max, size_t need)
{
    if (need <= b->cap) return 0;
    size_t cap;
    if (b->charged >= need) {
        cap = b->charged;
    } else {
        size_t most = (size_t)max + 1;
        cap = b->cap ? b->cap : 4096;
        while (cap < need)
            cap *= 2;
        if (cap > most) cap = most > need ? most : need;
    }
    if (cap > b->charged) {
        if (!reqmem_charge(mem, cap - b->charged)) return -EAGAIN;
        b->charged = cap;
    }
    char *nb = realloc(b->buf, cap);
    if (!nb) return -ENOMEM;
    b->buf = nb;
    b->cap = cap;
    return 0;
}

int reqbody_append(struct reqbody *b, struct reqmem *mem, uint64_t max, const char *data, size_t n)
{
    if (b->len + n > max) {
        reqbody_drop(b, mem);
        return -EFBIG;
    }
    int rc = reserve(b, mem, max, b->len + n + 1);
    if (rc == -EAGAIN) reqbody_drop(b, mem);
    if (rc != 0) return rc;
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return 0;
}

void reqbody_drop(struct reqbody *b, struct reqmem *mem)
{
    free(b->buf);
    reqmem_release(mem, b->charged);
    reqbody_init(b);
}
