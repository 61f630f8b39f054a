/* replay.c: runs a fuzz target without libFuzzer, so every build (gcc,
 * ASan, UBSan) exercises it in CTest:
 *   replay                 seeds + 20,000 deterministic mutations of them
 *   replay FILE...         the given inputs (crash reproducers)
 *   replay --seeds DIR     writes the seeds into DIR (a campaign corpus) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "fuzz.h"

struct seeds {
	uint8_t **data;
	size_t *len;
	size_t n;
	const char *dir;
};

static int keep(void *ud, const uint8_t *data, size_t len)
{
	struct seeds *s = ud;
	if (s->dir) {
		char path[4096];
		snprintf(path, sizeof path, "%s/seed-%zu", s->dir, s->n);
		FILE *f = fopen(path, "wb");
		if (!f || fwrite(data, 1, len, f) != len) {
			perror(path);
			return -1;
		}
		fclose(f);
	}
	s->data = realloc(s->data, (s->n + 1) * sizeof *s->data);
	s->len = realloc(s->len, (s->n + 1) * sizeof *s->len);
	s->data[s->n] = malloc(len ? len : 1);
	memcpy(s->data[s->n], data, len);
	s->len[s->n++] = len;
	return 0;
}

static void free_seeds(struct seeds *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->data[i]);
	free(s->data);
	free(s->len);
}

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return 1;
	}
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
	size_t got = fread(buf, 1, (size_t)len, f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, got);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	struct seeds s = {0};
	if (argc == 3 && !strcmp(argv[1], "--seeds")) {
		s.dir = argv[2];
		int rc = vt_fuzz_seeds(keep, &s) ? 1 : 0;
		free_seeds(&s);
		return rc;
	}
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			if (run_file(argv[i]))
				return 1;
		printf("replayed %d inputs\n", argc - 1);
		return 0;
	}
	if (vt_fuzz_seeds(keep, &s))
		return 1;
	vt_rng r;
	vt_rng_seed(&r, 20261122);
	size_t runs = 0;
	for (size_t i = 0; i < s.n; i++, runs++)
		LLVMFuzzerTestOneInput(s.data[i], s.len[i]);
	/* Mutations: flips, byte sets, truncations, splices, with and without
	 * fixing nothing: most die at a checksum, which is the point; the
	 * loader must refuse them all cleanly. */
	for (int it = 0; it < 20000; it++, runs++) {
		size_t k = vt_rng_next(&r) % s.n;
		size_t len = s.len[k];
		uint8_t *b = malloc(len + 64);
		memcpy(b, s.data[k], len);
		int muts = 1 + (int)(vt_rng_next(&r) % 4);
		for (int m = 0; m < muts && len; m++) {
			size_t off = vt_rng_next(&r) % len;
			switch (vt_rng_next(&r) % 5) {
			case 0:
				b[off] ^= (uint8_t)(1u << (vt_rng_next(&r) % 8));
				break;
			case 1:
				b[off] = (uint8_t)vt_rng_next(&r);
				break;
			case 2:
				len = off;
				break;
			case 3:
				memset(b + off, 0xff, len - off < 8 ? len - off : 8);
				break;
			default: {
				size_t o = vt_rng_next(&r) % s.n;
				size_t n = s.len[o] < len - off ? s.len[o] : len - off;
				memcpy(b + off, s.data[o], n);
			}
			}
		}
		LLVMFuzzerTestOneInput(b, len);
		free(b);
	}
	free_seeds(&s);
	printf("%zu passed, 0 failed\n", runs);
	return 0;
}
