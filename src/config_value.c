/* config_value.c — one setting's value between its text (flag, environment, JSON file) and its
 * field in struct primed_config: parsing with range checks, formatting back (--help defaults, the
 * startup log), and the one-line error that names the source and the accepted range.
 * It knows the row type (config_int.h) but not the table, and never reads a source itself.
 */
#include "config_int.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "primed/numparse.h"
#include "primed/ratelimit.h"

/* ---- errors --------------------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) void config_set_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
    if (err == NULL || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    for (char *p = err; *p; p++) /* one line, whatever the value contained */
        if (*p == '\n' || *p == '\r') *p = ' ';
}

/* A value as shown back in an error: at most 64 bytes, non-printables as '?'. */
void config_show_value(const char *v, char *out, size_t outlen)
{
    size_t i = 0;
    for (; v[i] != '\0' && i + 4 < outlen && i < 64; i++) {
        unsigned char c = (unsigned char)v[i];
        out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (v[i] != '\0' && i + 4 <= outlen) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

/* 262144 → "256KiB"; sizes that are not a whole number of KiB stay plain bytes. Parses back
 * through parse_bytes. */
static void format_bytes(uint64_t v, char *out, size_t outlen)
{
    static const char *const units[] = {"TiB", "GiB", "MiB", "KiB"};
    static const uint64_t mults[] = {TIB, GIB, MIB, KIB};
    for (int i = 0; i < 4; i++)
        if (v != 0 && v % mults[i] == 0) {
            snprintf(out, outlen, "%" PRIu64 "%s", v / mults[i], units[i]);
            return;
        }
    snprintf(out, outlen, "%" PRIu64, v);
}

/* "an integer from 1 to 1024", "0 (auto) or a size from 4096 to 1073741824 bytes …" */
void config_range_text(const struct setting *s, char *out, size_t outlen)
{
    char zero[32] = "";
    if (s->zero != NULL) snprintf(zero, sizeof(zero), "0 (%s) or ", s->zero);
    switch (s->type) {
    case T_UINT:
    case T_U64:
        snprintf(out, outlen, "%san integer from %" PRIu64 " to %" PRIu64, zero, s->min, s->max);
        break;
    case T_BYTES: {
        char lo[32], hi[32];
        format_bytes(s->min, lo, sizeof(lo));
        format_bytes(s->max, hi, sizeof(hi));
        snprintf(out, outlen,
                 "%sa byte count from %s to %s (suffix K, M, G, T = KiB, MiB, GiB, TiB)", zero, lo,
                 hi);
        break;
    }
    case T_BOOL:
        snprintf(out, outlen, "true or false (or 1 or 0)");
        break;
    case T_LEVEL:
        snprintf(out, outlen, "one of debug, info, warn, error");
        break;
    case T_FORMAT:
        snprintf(out, outlen, "one of json, text");
        break;
    case T_LISTEN:
        snprintf(out, outlen,
                 "HOST:PORT with HOST an IPv4 address, [IPv6 address] or localhost and PORT "
                 "from 0 to 65535");
        break;
    case T_DEBUG_LISTEN:
        snprintf(out, outlen,
                 "off or HOST:PORT with HOST an IPv4 address, [IPv6 address] or localhost and "
                 "PORT from 0 to 65535");
        break;
    case T_CIDRS:
        snprintf(out, outlen,
                 "a list of IPv4/IPv6 addresses or networks (10.0.0.0/8, fd00::/8), at most %d, "
                 "%zu bytes",
                 RATELIMIT_MAX_PROXIES, s->size - 1);
        break;
    case T_STRING:
        if (s->off == F(debug_token))
            snprintf(out, outlen, "printable ASCII without spaces, at most %zu bytes", s->size - 1);
        else
            snprintf(out, outlen, "a path of at most %zu bytes", s->size - 1);
        break;
    }
}

void config_bad_value(const struct setting *s, const char *src, const char *value, char *err,
                      size_t errlen)
{
    char range[192], shown[80];
    config_range_text(s, range, sizeof(range));
    config_show_value(value, shown, sizeof(shown));
    config_set_err(err, errlen, "%s: must be %s, got '%s'", src, range, shown);
}

/* ---- value parsers -------------------------------------------------------------------- */

static bool parse_bytes(const char *v, uint64_t *out)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } suffixes[] = {{"KiB", KIB}, {"MiB", MIB}, {"GiB", GIB}, {"TiB", TIB},
                    {"K", KIB},   {"M", MIB},   {"G", GIB},   {"T", TIB}};
    size_t n = strlen(v);
    uint64_t mult = 1;
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t sl = strlen(suffixes[i].suffix);
        if (n > sl && strcmp(v + n - sl, suffixes[i].suffix) == 0) {
            mult = suffixes[i].mult;
            n -= sl;
            break;
        }
    }
    uint64_t x;
    if (numparse_u64n(v, n, &x) != NUMPARSE_OK || x > UINT64_MAX / mult) return false;
    *out = x * mult;
    return true;
}

/* IPv4 127.0.0.0/8, ::1 and IPv4-mapped 127.x. */
bool config_host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6)) return true;
        return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
    }
    return false;
}

bool config_host_is_any(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

/* "1.2.3.4:80", "[::1]:80", "localhost:80" → host (numeric, no brackets) and port. */
static bool parse_hostport(const char *v, char host[CONFIG_HOST_MAX], uint16_t *port)
{
    const char *colon;
    char h[CONFIG_HOST_MAX];
    size_t hlen;
    int family;
    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (close == NULL || close[1] != ':') return false;
        hlen = (size_t)(close - v - 1);
        if (hlen == 0 || hlen >= sizeof(h)) return false;
        memcpy(h, v + 1, hlen);
        colon = close + 1;
        family = AF_INET6;
    } else {
        colon = strrchr(v, ':');
        if (colon == NULL) return false;
        hlen = (size_t)(colon - v);
        if (hlen == 0 || hlen >= sizeof(h) || memchr(v, ':', hlen) != NULL)
            return false; /* an IPv6 address needs brackets */
        memcpy(h, v, hlen);
        family = AF_INET;
    }
    h[hlen] = '\0';
    const char *p = colon + 1;
    size_t plen = strlen(p);
    if (plen == 0 || plen > 5 || strspn(p, "0123456789") != plen) return false;
    uint64_t pv;
    if (numparse_u64n(p, plen, &pv) != NUMPARSE_OK || pv > 65535) return false;
    if (family == AF_INET && strcmp(h, "localhost") == 0) strcpy(h, "127.0.0.1");
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(family, h, addr) != 1) return false;
    memcpy(host, h, strlen(h) + 1);
    *port = (uint16_t)pv;
    return true;
}

/* The one setter every source goes through. `src` names the source in messages ("--workers",
 * "PRIMED_WORKERS", "workers in primed.json"). Returns 0 or -1 with err set. */
int config_set_value(struct primed_config *cfg, const struct setting *s, const char *src,
                     const char *v, char *err, size_t errlen)
{
    char *base = (char *)cfg;
    uint64_t x = 0;
    switch (s->type) {
    case T_UINT:
    case T_U64:
    case T_BYTES: {
        /* the word for 0 ("auto", "unlimited") is accepted as well as 0 itself */
        bool ok = s->zero != NULL && strcmp(v, s->zero) == 0 ? (x = 0, true)
                  : s->type == T_BYTES                       ? parse_bytes(v, &x)
                                                             : numparse_u64(v, &x) == NUMPARSE_OK;
        if (!ok || !((x >= s->min && x <= s->max) || (x == 0 && s->zero != NULL))) goto bad;
        if (s->type == T_UINT)
            *(unsigned *)(base + s->off) = (unsigned)x; /* max <= UINT_MAX in the table */
        else
            *(uint64_t *)(base + s->off) = x;
        return 0;
    }
    case T_BOOL:
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
            *(bool *)(base + s->off) = true;
        else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
            *(bool *)(base + s->off) = false;
        else
            goto bad;
        return 0;
    case T_LEVEL: {
        static const char *const names[] = {"debug", "info", "warn", "error"};
        for (int i = 0; i < 4; i++)
            if (strcmp(v, names[i]) == 0) {
                cfg->log_level = (enum log_level)i;
                return 0;
            }
        goto bad;
    }
    case T_FORMAT:
        if (strcmp(v, "json") == 0)
            cfg->log_format = LOG_FORMAT_JSON;
        else if (strcmp(v, "text") == 0)
            cfg->log_format = LOG_FORMAT_TEXT;
        else
            goto bad;
        return 0;
    case T_LISTEN:
        if (!parse_hostport(v, cfg->listen_host, &cfg->listen_port)) goto bad;
        return 0;
    case T_DEBUG_LISTEN:
        if (strcmp(v, "off") == 0) {
            cfg->debug_enabled = false;
            return 0;
        }
        if (!parse_hostport(v, cfg->debug_host, &cfg->debug_port)) goto bad;
        cfg->debug_enabled = true;
        return 0;
    case T_CIDRS: {
        struct ratelimit_cidr c[RATELIMIT_MAX_PROXIES];
        char why[128];
        if (strlen(v) >= s->size ||
            ratelimit_cidrs_parse(v, c, RATELIMIT_MAX_PROXIES, why, sizeof why) < 0)
            goto bad;
        memcpy(base + s->off, v, strlen(v) + 1);
        return 0;
    }
    case T_STRING: {
        size_t n = strlen(v);
        if (n >= s->size) goto bad;
        if (s->off == F(debug_token))
            for (size_t i = 0; i < n; i++)
                if ((unsigned char)v[i] <= ' ' || (unsigned char)v[i] >= 0x7f) goto bad;
        memcpy(base + s->off, v, n + 1);
        return 0;
    }
    }
bad:
    config_bad_value(s, src, v, err, errlen);
    return -1;
}

void config_format_hostport(const char *host, uint16_t port, char *out, size_t outlen)
{
    if (strchr(host, ':') != NULL)
        snprintf(out, outlen, "[%s]:%u", host, port);
    else
        snprintf(out, outlen, "%s:%u", host, port);
}

/* The value of a setting as it would be written in a flag. */
void config_format_setting(const struct primed_config *cfg, const struct setting *s, char *out,
                           size_t outlen)
{
    const char *base = (const char *)cfg;
    switch (s->type) {
    case T_UINT:
        snprintf(out, outlen, "%u", *(const unsigned *)(base + s->off));
        break;
    case T_U64:
        snprintf(out, outlen, "%" PRIu64, *(const uint64_t *)(base + s->off));
        break;
    case T_BYTES:
        format_bytes(*(const uint64_t *)(base + s->off), out, outlen);
        break;
    case T_BOOL:
        snprintf(out, outlen, "%s", *(const bool *)(base + s->off) ? "true" : "false");
        break;
    case T_LEVEL: {
        static const char *const names[] = {"debug", "info", "warn", "error"};
        unsigned l = (unsigned)cfg->log_level;
        snprintf(out, outlen, "%s", l < 4 ? names[l] : "info");
        break;
    }
    case T_FORMAT:
        snprintf(out, outlen, "%s", cfg->log_format == LOG_FORMAT_TEXT ? "text" : "json");
        break;
    case T_LISTEN:
        config_format_hostport(cfg->listen_host, cfg->listen_port, out, outlen);
        break;
    case T_DEBUG_LISTEN:
        if (!cfg->debug_enabled)
            snprintf(out, outlen, "off");
        else
            config_format_hostport(cfg->debug_host, cfg->debug_port, out, outlen);
        break;
    case T_STRING:
    case T_CIDRS:
        snprintf(out, outlen, "%s", base + s->off);
        break;
    }
}
