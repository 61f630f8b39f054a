/* config.c: the settings table of `vectron serve` (config.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum kind { STR, INT, LONG };

struct setting {
	const char *name;  /* file key; the flag is --name with '-' for '_' */
	const char *env;
	enum kind kind;
	size_t off, size;  /* where in vt_serve_config */
	const char *def;
	long long lo, hi;  /* numbers: the allowed range */
	const char *help;
};

#define S(n, e, d, h)                                                          \
	{#n, e, STR, offsetof(vt_serve_config, n),                          \
	 sizeof(((vt_serve_config *)0)->n), d, 0, 0, h}
#define I(n, e, k, d, lo, hi, h)                                               \
	{#n, e, k, offsetof(vt_serve_config, n), 0, d, lo, hi, h}

static const struct setting table[] = {
	S(data_dir, "VECTRON_DATA_DIR", "./data",
	  "directory of the data (collections, shards)"),
	S(host, "VECTRON_HOST", "127.0.0.1",
	  "address both servers listen on (0.0.0.0: every interface)"),
	I(rest_port, "VECTRON_REST_PORT", INT, "8080", 0, 65535,
	  "REST (HTTP/1.1 + JSON) port; 0 picks a free one"),
	I(grpc_port, "VECTRON_GRPC_PORT", INT, "8081", 0, 65535,
	  "gRPC (HTTP/2) port; 0 picks a free one"),
	I(raft_port, "VECTRON_RAFT_PORT", INT, "0", 0, 65535,
	  "Raft port of every shard's group (one port; 8082 by convention); "
	  "0 picks a free one: fine while each group has one voter"),
	I(threads, "VECTRON_THREADS", INT, "0", 0, 1024,
	  "worker threads for requests and shard fan-out; 0 = CPUs"),
	I(request_spin_us, "VECTRON_REQUEST_SPIN_US", INT, "50", 0, 10000,
	  "an idle request worker polls its queue this long before sleeping"),
	I(loop_spin_us, "VECTRON_LOOP_SPIN_US", INT, "100", 0, 10000,
	  "with one request in flight, the loop polls this long before sleeping"),
	I(shards, "VECTRON_SHARDS", INT, "0", 0, 256,
	  "shards of a new collection that does not say; 0 = CPUs"),
	I(timeout_ms, "VECTRON_TIMEOUT_MS", INT, "30000", 1, 3600000,
	  "deadline of a request that sets none"),
	I(max_body_bytes, "VECTRON_MAX_BODY_BYTES", LONG, "33554432", 1024,
	  1ll << 31, "largest REST body; larger gets 413"),
	I(max_message_bytes, "VECTRON_MAX_MESSAGE_BYTES", LONG, "16777216",
	  1024, 1ll << 31,
	  "largest gRPC message; larger gets RESOURCE_EXHAUSTED"),
	S(log_level, "VECTRON_LOG_LEVEL", "info", "debug, info, warn, error"),
	S(cors_origin, "VECTRON_CORS_ORIGIN", "*",
	  "Access-Control-Allow-Origin for the console; empty disables CORS"),
	I(snapshot_entries, "VECTRON_SNAPSHOT_ENTRIES", LONG, "20000", 0,
	  1ll << 40, "index changes between a shard's index snapshots"),
	I(queue_max, "VECTRON_QUEUE_MAX", LONG, "100000", 1, 1ll << 40,
	  "async index: changes waiting before writes wait (then 429)"),
	I(queue_wait_ms, "VECTRON_QUEUE_WAIT_MS", INT, "1000", 0, 600000,
	  "async index: how long a write waits for room"),
	I(shutdown_grace_ms, "VECTRON_SHUTDOWN_GRACE_MS", INT, "10000", 0,
	  600000, "on SIGTERM, how long in-flight requests may finish"),
};

#define N (sizeof table / sizeof table[0])

static int set(vt_serve_config *c, const struct setting *s, const char *v,
	       const char *from)
{
	char *dst = (char *)c + s->off;
	if (s->kind == STR) {
		if (strlen(v) >= s->size) {
			fprintf(stderr, "vectron: %s (%s): longer than %zu bytes\n",
				s->name, from, s->size - 1);
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
			"vectron: %s (%s): \"%s\" is not a number in %lld..%lld\n",
			s->name, from, v, s->lo, s->hi);
		return -1;
	}
	if (s->kind == INT)
		*(int *)dst = (int)x;
	else
		*(long long *)dst = x;
	return 0;
}

static const struct setting *find(const char *name, size_t len)
{
	for (size_t i = 0; i < N; i++)
		if (strlen(table[i].name) == len &&
		    !strncmp(table[i].name, name, len))
			return &table[i];
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

static int load_file(vt_serve_config *c, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "vectron: config %s: %s\n", path, strerror(errno));
		return -1;
	}
	char line[2048];
	int ln = 0, rc = 0;
	while (!rc && fgets(line, sizeof line, f)) {
		ln++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *t = trim(line);
		if (!*t)
			continue;
		char *eq = strchr(t, '=');
		if (!eq) {
			fprintf(stderr, "vectron: %s:%d: expected name = value\n",
				path, ln);
			rc = -1;
			break;
		}
		*eq = '\0';
		char *k = trim(t), *v = trim(eq + 1);
		const struct setting *s = find(k, strlen(k));
		if (!s) {
			fprintf(stderr, "vectron: %s:%d: unknown setting \"%s\"\n",
				path, ln, k);
			rc = -1;
			break;
		}
		char from[1100];
		snprintf(from, sizeof from, "%s:%d", path, ln);
		rc = set(c, s, v, from);
	}
	fclose(f);
	return rc;
}

void vt_serve_config_print(const vt_serve_config *c, FILE *out)
{
	fprintf(out,
		"usage: vectron serve [--config FILE] [--<setting> VALUE]...\n\n"
		"Runs the whole database in one process: REST and gRPC on the "
		"ports below,\ndata in data_dir. Settings (file key, "
		"environment, flag; later sources win:\ndefaults < config "
		"file < environment < flags):\n\n");
	for (size_t i = 0; i < N; i++) {
		const struct setting *s = &table[i];
		char flag[64];
		snprintf(flag, sizeof flag, "--%s", s->name);
		for (char *p = flag + 2; *p; p++)
			if (*p == '_')
				*p = '-';
		const char *base = (const char *)c + s->off;
		char now[64];
		if (s->kind == STR)
			snprintf(now, sizeof now, "\"%.58s\"", base);
		else if (s->kind == INT)
			snprintf(now, sizeof now, "%d", *(const int *)base);
		else
			snprintf(now, sizeof now, "%lld",
				 *(const long long *)base);
		fprintf(out, "  %-22s %-28s %s\n      %s (default %s, now %s)\n",
			flag, s->env, s->name, s->help, s->def, now);
	}
}

int vt_serve_config_load(vt_serve_config *c, int argc, char **argv)
{
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < N; i++)
		if (set(c, &table[i], table[i].def, "default"))
			return -1;
	const char *file = getenv("VECTRON_CONFIG");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			file = argv[i + 1];
		else if (!strncmp(argv[i], "--config=", 9))
			file = argv[i] + 9;
	}
	if (file && *file && load_file(c, file))
		return -1;
	for (size_t i = 0; i < N; i++) {
		const char *v = getenv(table[i].env);
		if (v && set(c, &table[i], v, table[i].env))
			return -1;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			vt_serve_config_print(c, stdout);
			return 1;
		}
		if (strncmp(a, "--", 2)) {
			fprintf(stderr, "vectron serve: unexpected \"%s\"\n", a);
			return -1;
		}
		const char *name = a + 2, *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		char key[64];
		if (len >= sizeof key) {
			fprintf(stderr, "vectron serve: unknown flag %s\n", a);
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
		const struct setting *s = find(key, len);
		if (!s || !v) {
			fprintf(stderr,
				"vectron serve: %s flag %s (see --help)\n",
				s ? "no value for" : "unknown", a);
			return -1;
		}
		if (set(c, s, v, a))
			return -1;
	}
	return 0;
}
