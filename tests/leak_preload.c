/* leak_preload.c — a planted leak for tests/test_compare_instances.sh, loaded with LD_PRELOAD
 * into one of two otherwise identical primed processes: it wraps libmicrohttpd's
 * MHD_queue_response and loses 1 KiB (written, so it is resident) per queued response.
 *
 * Test-only and outside the product: the test builds it into its temporary directory; nothing in
 * src/ knows it exists. It stands in for the leak-check issue's build switch (make LEAK_PLANT=1),
 * which the test uses instead when build/leak/primed exists.
 */
#include <dlfcn.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

typedef enum MHD_Result (*queue_fn)(struct MHD_Connection *, unsigned int, struct MHD_Response *);

static void *volatile leak_sink; /* the previous block is lost on every store */

enum MHD_Result MHD_queue_response(struct MHD_Connection *c, unsigned int status,
                                   struct MHD_Response *r);
enum MHD_Result MHD_queue_response(struct MHD_Connection *c, unsigned int status,
                                   struct MHD_Response *r)
{
    static queue_fn real; /* every thread resolves the same address: a benign race */
    queue_fn f = __atomic_load_n(&real, __ATOMIC_ACQUIRE);
    if (f == NULL) {
        f = (queue_fn)dlsym(RTLD_NEXT, "MHD_queue_response");
        __atomic_store_n(&real, f, __ATOMIC_RELEASE);
    }
    char *p = malloc(1024);
    if (p != NULL) memset(p, 0xa5, 1024);
    leak_sink = p;
    return f(c, status, r);
}
