/* openapi.h — the service's OpenAPI 3.1 description (/openapi.json), generated from the route,
 * op and error tables and the configuration in force. Internal to the server (handlers.c).
 */
#ifndef PRIMED_OPENAPI_H
#define PRIMED_OPENAPI_H

#include <stddef.h>

#include "primed/config.h"

/* The description as compact JSON into *out (malloc'd, the caller frees) and its length.
 * Returns 0, -EINVAL when a table row names an unknown setting or has a malformed answer spec
 * (a programming error, caught at start), or -ENOMEM. */
int openapi_render(const struct primed_config *cfg, char **out, size_t *len);

#endif
