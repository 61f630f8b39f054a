/* text.h: small text helpers shared by the HTTP and gRPC layers: hex
 * digits and strict percent-decoding. Not a string library. */
#ifndef VT_BASE_TEXT_H
#define VT_BASE_TEXT_H

#include <stddef.h>

#include "error.h"

/* The value of a hex digit, or -1. */
static inline int vt_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes `n` bytes of `s` into out (cap bytes, NUL-terminated);
 * with `plus_space`, '+' becomes ' ' (query strings). Strict: a '%' not
 * followed by two hex digits, an encoded NUL, or an output that does not
 * fit gives VT_EINVAL (out is then unspecified). */
VT_API int vt_pct_decode(const char *s, size_t n, char *out, size_t cap,
			 int plus_space);

#endif
