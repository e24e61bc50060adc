/* config_int.h — the settings table's row type and the value codec, shared by config.c (the
 * table, the four sources, --help) and config_value.c (a value's text <-> its field). Internal to
 * those two files: the public contract is include/primed/config.h.
 */
#ifndef PRIMED_CONFIG_INT_H
#define PRIMED_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "primed/config.h"

#define KIB 1024ULL
#define MIB (1024ULL * KIB)
#define GIB (1024ULL * MIB)
#define TIB (1024ULL * GIB)

enum setting_type {
    T_UINT,         /* unsigned, decimal or DeK */
    T_U64,          /* uint64_t, decimal or DeK */
    T_BYTES,        /* uint64_t, optionally with a K/M/G/T (KiB…TiB) suffix */
    T_BOOL,         /* true|false|1|0 */
    T_LEVEL,        /* debug|info|warn|error */
    T_FORMAT,       /* json|text */
    T_LISTEN,       /* HOST:PORT → listen_host, listen_port */
    T_DEBUG_LISTEN, /* HOST:PORT|off → debug_enabled, debug_host, debug_port */
    T_STRING,       /* char[size]; T_STRING values may be empty (= unset) */
    T_CIDRS,        /* char[size]: comma-separated networks (ratelimit_cidrs_parse) */
};

struct setting {
    const char *name; /* JSON key; flag = "--" + name with '_' → '-'; env = PRIMED_ + upper */
    enum setting_type type;
    size_t off;   /* offsetof(struct primed_config, field) (unused by the listen types) */
    size_t size;  /* T_STRING: size of the char array */
    uint64_t min; /* numbers: accepted range; a value of 0 is also accepted when zero != NULL */
    uint64_t max;
    const char *zero; /* what 0 means when it is accepted outside min…max ("auto") */
    const char *meta; /* placeholder in --help: N, BYTES, S, HOST:PORT … */
    const char *help;
};

#define F(field) offsetof(struct primed_config, field)

/* ---- config_value.c: every function below only formats or parses; none allocates or fails
 * other than by returning an error into err[errlen] (always NUL-terminated when errlen > 0). */

/* printf into err[errlen], newlines flattened so the message stays one line. */
__attribute__((format(printf, 3, 4))) void config_set_err(char *err, size_t errlen, const char *fmt,
                                                          ...);
/* A value as shown back in an error: at most 64 bytes, non-printables as '?'. */
void config_show_value(const char *v, char *out, size_t outlen);
/* What s accepts, in words ("an integer from 1 to 1024"). */
void config_range_text(const struct setting *s, char *out, size_t outlen);
/* "SRC: must be RANGE, got 'VALUE'" into err. */
void config_bad_value(const struct setting *s, const char *src, const char *value, char *err,
                      size_t errlen);
/* The one setter every source goes through. `src` names the source in messages ("--workers",
 * "PRIMED_WORKERS", "workers in primed.json"). Returns 0, or -1 with err set and cfg unchanged
 * for that setting. */
int config_set_value(struct primed_config *cfg, const struct setting *s, const char *src,
                     const char *v, char *err, size_t errlen);
/* The value of a setting as a flag would take it (parses back through config_set_value). */
void config_format_setting(const struct primed_config *cfg, const struct setting *s, char *out,
                           size_t outlen);
/* HOST:PORT, with brackets around an IPv6 host. */
void config_format_hostport(const char *host, uint16_t port, char *out, size_t outlen);
/* IPv4 127.0.0.0/8, ::1 and IPv4-mapped 127.x. */
bool config_host_is_loopback(const char *host);
/* 0.0.0.0 or :: */
bool config_host_is_any(const char *host);

#endif
