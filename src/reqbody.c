/* reqbody.c — see reqbody.h: request bodies, grown by doubling and charged to the request
 * memory budget and the client's share before they are held.
 *
 * Never parses the body (the API does, on a worker) and never holds a byte it has not charged.
 */
#include "reqbody.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_CAP 4096u

void reqbody_init(struct reqbody *b)
{
    *b = (struct reqbody){0};
}

void reqbody_expect(struct reqbody *b, uint64_t client, uint64_t declared)
{
    b->client = client;
    b->declared = declared;
}

/* Room for `need` bytes of body (NUL included): doubling from 4 KiB, at most max + 1 (and at
 * most the declared length + 1 when there is one), the growth charged first. 0, -EAGAIN (over
 * budget), -EDQUOT (over the client's share) or -ENOMEM. */
static int reserve(struct reqbody *b, struct reqmem *mem, uint64_t max, size_t need)
{
    if (need <= b->cap) return 0;
    size_t most = (size_t)max + 1;
    if (b->declared && b->declared < max) most = (size_t)b->declared + 1;
    size_t cap = b->cap ? b->cap : FIRST_CAP;
    while (cap < need)
        cap *= 2;
    if (cap > most) cap = most > need ? most : need;
    if (cap > b->charged) {
        switch (reqmem_charge_client(mem, b->client, cap - b->charged)) {
        case REQMEM_OK:
            break;
        case REQMEM_SHARE:
            return -EDQUOT;
        default:
            return -EAGAIN;
        }
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
    if (rc == -EAGAIN || rc == -EDQUOT) reqbody_drop(b, mem);
    if (rc != 0) return rc;
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return 0;
}

void reqbody_drop(struct reqbody *b, struct reqmem *mem)
{
    free(b->buf);
    reqmem_release_client(mem, b->client, b->charged);
    b->buf = NULL;
    b->len = b->cap = b->charged = 0;
}
