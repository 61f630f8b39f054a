/* json_int.h: internals shared by the JSON reader (json.c) and writer
 * (json_write.c). Not part of the API. */
#ifndef VT_RPC_JSON_INT_H
#define VT_RPC_JSON_INT_H

#include <stdint.h>

/* strtod in the "C" locale, whatever the process locale is. */
double vt__json_strtod(const char *s, char **end);

/* 10^0..10^22, all exact in a double. */
extern const double vt__json_pow10[23];

/* Length of the valid UTF-8 sequence at s (1..4; never reads at or past
 * `end`), or 0 if it is invalid (overlong, surrogate, > U+10FFFF,
 * truncated). */
int vt__json_utf8_len(const unsigned char *s, const unsigned char *end);

/* Scans a JSON number token at s (which must be followed by a byte that
 * cannot continue a number, e.g. the NUL of a copy) into *out exactly as
 * strtod would. 0, or VT_EINVAL / VT_ERANGE with *err_at and *reason. */
int vt__json_scan_number(const char *s, const char **end_out, double *out, int *is_int,
			 const char **err_at, const char **reason);

#endif
