/* text.c: see text.h. */
#include "text.h"

int vt_pct_decode(const char *s, size_t n, char *out, size_t cap,
		  int plus_space)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '+' && plus_space) {
			c = ' ';
		} else if (c == '%') {
			int h, l;
			if (i + 2 >= n || (h = vt_hexval(s[i + 1])) < 0 ||
			    (l = vt_hexval(s[i + 2])) < 0 || (h | l) == 0)
				return VT_EINVAL;
			c = (char)(h * 16 + l);
			i += 2;
		}
		if (o + 1 >= cap)
			return VT_EINVAL;
		out[o++] = c;
	}
	if (cap == 0)
		return VT_EINVAL;
	out[o] = '\0';
	return 0;
}
