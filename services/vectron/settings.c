/* settings.c: the settings table loader (settings.h). */
#include "settings.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>


static int set(const vt_settings *t, void *c, const vt_setting *s,
	       const char *v, const char *from)
{
	char *dst = (char *)c + s->off;
	if (s->kind == VT_SET_STR) {
		if (strlen(v) >= s->size) {
			fprintf(stderr, "vectron %s: %s (%s): longer than %zu bytes\n",
				t->command, s->name, from, s->size - 1);
			return -1;
		}
		strcpy(dst, v);
		return 0;
	}
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || end == v || *end || x < s->lo || x > s->hi) {
		fprintf(stderr,
			"vectron %s: %s (%s): \"%s\" is not a number in %lld..%lld\n",
			t->command, s->name, from, v, s->lo, s->hi);
		return -1;
	}
	if (s->kind == VT_SET_INT)
		*(int *)dst = (int)x;
	else
		*(long long *)dst = x;
	return 0;
}

static const vt_setting *find(const vt_settings *t, const char *name,
			      size_t len)
{
	for (size_t i = 0; i < t->n; i++)
		if (strlen(t->table[i].name) == len &&
		    !strncmp(t->table[i].name, name, len))
			return &t->table[i];
	return NULL;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int load_file(const vt_settings *t, void *c, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "vectron %s: config %s: %s\n", t->command,
			path, strerror(errno));
		return -1;
	}
	char line[2048];
	int ln = 0, rc = 0;
	while (!rc && fgets(line, sizeof line, f)) {
		ln++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *ln_s = trim(line);
		if (!*ln_s)
			continue;
		char *eq = strchr(ln_s, '=');
		if (!eq) {
			fprintf(stderr, "vectron %s: %s:%d: expected name = value\n",
				t->command, path, ln);
			rc = -1;
			break;
		}
		*eq = '\0';
		char *k = trim(ln_s), *v = trim(eq + 1);
		const vt_setting *s = find(t, k, strlen(k));
		if (!s) {
			fprintf(stderr, "vectron %s: %s:%d: unknown setting \"%s\"\n",
				t->command, path, ln, k);
			rc = -1;
			break;
		}
		char from[1100];
		snprintf(from, sizeof from, "%s:%d", path, ln);
		rc = set(t, c, s, v, from);
	}
	fclose(f);
	return rc;
}

void vt_settings_print(const vt_settings *t, const void *c, FILE *out)
{
	fprintf(out,
		"usage: vectron %s [--config FILE] [--<setting> VALUE]...\n\n"
		"%s\n\nSettings (file key, environment, flag; later sources "
		"win: defaults <\nconfig file (or %s) < environment < "
		"flags):\n\n",
		t->command, t->intro, t->config_env);
	for (size_t i = 0; i < t->n; i++) {
		const vt_setting *s = &t->table[i];
		char flag[64];
		snprintf(flag, sizeof flag, "--%s", s->name);
		for (char *p = flag + 2; *p; p++)
			if (*p == '_')
				*p = '-';
		const char *base = (const char *)c + s->off;
		char now[64];
		if (s->kind == VT_SET_STR)
			snprintf(now, sizeof now, "\"%.58s\"", base);
		else if (s->kind == VT_SET_INT)
			snprintf(now, sizeof now, "%d", *(const int *)base);
		else
			snprintf(now, sizeof now, "%lld",
				 *(const long long *)base);
		fprintf(out, "  %-22s %-28s %s\n      %s (default %s, now %s)\n",
			flag, s->env, s->name, s->help, s->def, now);
	}
}

int vt_settings_defaults(const vt_settings *t, void *c)
{
	for (size_t i = 0; i < t->n; i++)
		if (set(t, c, &t->table[i], t->table[i].def, "default"))
			return -1;
	return 0;
}

int vt_settings_load(const vt_settings *t, void *c, int argc, char **argv)
{
	if (vt_settings_defaults(t, c))
		return -1;
	const char *file = getenv(t->config_env);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			file = argv[i + 1];
		else if (!strncmp(argv[i], "--config=", 9))
			file = argv[i] + 9;
	}
	if (file && *file && load_file(t, c, file))
		return -1;
	for (size_t i = 0; i < t->n; i++) {
		const char *v = getenv(t->table[i].env);
		if (v && set(t, c, &t->table[i], v, t->table[i].env))
			return -1;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			vt_settings_print(t, c, stdout);
			return 1;
		}
		if (strncmp(a, "--", 2)) {
			fprintf(stderr, "vectron %s: unexpected \"%s\"\n", t->command,
				a);
			return -1;
		}
		const char *name = a + 2, *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		char key[64];
		if (len >= sizeof key) {
			fprintf(stderr, "vectron %s: unknown flag %s\n",
				t->command, a);
			return -1;
		}
		for (size_t k = 0; k < len; k++)
			key[k] = name[k] == '-' ? '_' : name[k];
		key[len] = '\0';
		const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
		if (!eq)
			i++;
		if (!strcmp(key, "config"))
			continue;
		const vt_setting *s = find(t, key, len);
		if (!s || !v) {
			fprintf(stderr,
				"vectron %s: %s flag %s (see --help)\n",
				t->command, s ? "no value for" : "unknown", a);
			return -1;
		}
		if (set(t, c, s, v, a))
			return -1;
	}
	return 0;
}
