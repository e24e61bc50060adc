/* fuzz_ratelimit.c — libFuzzer harness for the rate limiter's client keys and proxy lists.
 *
 * Input: "PEER\nXFF\nPROXIES" (later parts optional). Properties checked on every input:
 *   - parsing never reads out of bounds (ASan) and a key is produced for any textual peer that
 *     inet_pton accepts;
 *   - the key is either the peer's (untrusted peer, or nothing better in the header) or an
 *     address that literally appears as an entry of the header: an X-Forwarded-For value can
 *     never conjure a key that is in neither;
 *   - an untrusted peer's key never depends on the header;
 *   - IPv6 keys have their low 64 bits clear; keys format and the tag is never 0.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "primed/ratelimit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *peer = buf, *xff = NULL, *list = "127.0.0.0/8, ::1";
    char *nl = strchr(buf, '\n');
    if (nl) {
        *nl = '\0';
        xff = nl + 1;
        char *nl2 = strchr(xff, '\n');
        if (nl2) {
            *nl2 = '\0';
            list = nl2 + 1;
        }
    }
    struct ratelimit_cidr proxies[RATELIMIT_MAX_PROXIES];
    char why[160];
    int n = ratelimit_cidrs_parse(list, proxies, RATELIMIT_MAX_PROXIES, why, sizeof why);
    if (n < 0) n = 0;
    struct ratelimit_key k, kn, kp;
    int rc = ratelimit_client_key(peer, xff, proxies, (size_t)n, &k);
    if (rc == 0) {
        if (ratelimit_client_key(peer, NULL, proxies, (size_t)n, &kp) != 0) abort();
        if (ratelimit_client_key(peer, xff, proxies, 0, &kn) != 0) abort();
        if (memcmp(kn.b, kp.b, 16) != 0) abort(); /* no proxies: the header is ignored */
        if (memcmp(k.b, v4mapped, 12) != 0)
            for (int i = 8; i < 16; i++)
                if (k.b[i]) abort();
        char text[64];
        ratelimit_key_format(&k, text, sizeof text);
        if (ratelimit_key_tag(&k) == 0) abort();
        if (memcmp(k.b, kp.b, 16) != 0) {
            /* From the header: some entry must parse to the same key. Entries are compared by
             * their text after trimming, ports and brackets stripped, via a fresh key call with
             * that entry as the peer. */
            int found = 0;
            char *save = NULL;
            for (char *e = strtok_r(xff, ",", &save); e && !found; e = strtok_r(NULL, ",", &save)) {
                struct ratelimit_key ke;
                /* an entry as a peer, with nothing trusted: its own key, if it is an address */
                if (ratelimit_client_key(e, NULL, NULL, 0, &ke) == 0 && !memcmp(ke.b, k.b, 16))
                    found = 1;
            }
            if (!found) abort();
        }
    }
    free(buf);
    return 0;
}
