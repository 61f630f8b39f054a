/* dataset.c: loads Fashion-MNIST (gzip'd IDX), derives the cosine and
 * synthetic sets, and computes or loads the cached exact ground truth. Not
 * timed code: nothing here runs while a benchmark measures. */
#include "dataset.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "base/progress.h"

#define FMNIST_DIM 784u
#define FMNIST_TRAIN 60000u
#define FMNIST_TEST 10000u

#define SYNTH_DIM 128u
#define SYNTH_BASE 200000u
#define SYNTH_QUERIES 10000u
#define SYNTH_CENTRES 64u
#define SYNTH_SEED 0x5eed2026ull

/* Float candidates kept per query before the exact re-ranking. */
#define GT_SCREEN 32u
/* Bound on |float distance - exact distance| relative to max(|d|, 1) for
 * cosine and |d| for L2. The float kernels below add dim/16 terms per lane
 * and then 16 lanes, so their error is below (dim/16 + 20) * 2^-24 of the
 * sum of absolute terms, about 4e-6 at dim 784: 1e-4 leaves a wide
 * margin. */
#define GT_FLOAT_EPS 1e-4

#define GT_MAGIC "VTBGT001"
#define GT_VERSION 1u

/* ---- small helpers ---------------------------------------------------- */

static int mkdir_p(const char *path, vt_errmsg *err)
{
	char buf[4096];
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof buf)
		return vt_errmsg_set(err, VT_EINVAL, "cache dir path '%s' is empty or too long", path);
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char c = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return vt_errmsg_set(err, vt_err_from_errno(errno),
					     "mkdir %s: %s", buf, strerror(errno));
		buf[i] = c;
	}
	return 0;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Reads the first `keep` images of an IDX3 unsigned-byte file (gzip'd) into
 * out[keep * 784] as floats 0..255. `expect` is the image count the header
 * must state. */
static int idx_read(const char *path, uint32_t expect, size_t keep,
		    float *out, vt_errmsg *err)
{
	unsigned char hdr[16];
	unsigned char *row = NULL;
	int rc = 0;
	gzFile f = gzopen(path, "rb");
	if (!f)
		return vt_errmsg_set(err, VT_EIO,
				     "open %s: %s (install Debian's dataset-fashion-mnist: make deps)",
				     path, strerror(errno ? errno : ENOENT));
	gzbuffer(f, 1u << 17);
	if (gzread(f, hdr, sizeof hdr) != (int)sizeof hdr) {
		rc = vt_errmsg_set(err, VT_ECORRUPT, "%s: truncated IDX header", path);
		goto out;
	}
	/* IDX: two zero bytes, type 0x08 (unsigned byte), 3 dimensions, then
	 * big-endian sizes: count, rows, columns. */
	if (be32(hdr) != 0x00000803u) {
		rc = vt_errmsg_set(err, VT_ECORRUPT,
				   "%s: IDX magic 0x%08x, expected 0x00000803 (ubyte, 3-d)",
				   path, be32(hdr));
		goto out;
	}
	if (be32(hdr + 4) != expect || be32(hdr + 8) != 28 || be32(hdr + 12) != 28) {
		rc = vt_errmsg_set(err, VT_ECORRUPT, "%s: IDX shape %ux%ux%u, expected %ux28x28",
				   path, be32(hdr + 4), be32(hdr + 8), be32(hdr + 12), expect);
		goto out;
	}
	if (keep > expect) {
		rc = vt_errmsg_set(err, VT_EINVAL, "%s: %zu images asked, file has %u",
				   path, keep, expect);
		goto out;
	}
	row = vt_malloc(FMNIST_DIM);
	if (!row) {
		rc = VT_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < keep; i++) {
		if (gzread(f, row, FMNIST_DIM) != (int)FMNIST_DIM) {
			int zerr;
			const char *zmsg = gzerror(f, &zerr);
			rc = vt_errmsg_set(err, VT_ECORRUPT, "%s: truncated at image %zu (%s)",
					   path, i, zerr ? zmsg : "end of file");
			goto out;
		}
		for (uint32_t j = 0; j < FMNIST_DIM; j++)
			out[i * FMNIST_DIM + j] = (float)row[j];
	}
	if (keep == expect) {
		/* The whole file was asked for: it must end exactly here. */
		unsigned char extra;
		if (gzread(f, &extra, 1) != 0) {
			rc = vt_errmsg_set(err, VT_ECORRUPT, "%s: trailing bytes after %u images",
					   path, expect);
			goto out;
		}
	}
out:
	vt_free(row);
	gzclose(f);
	return rc;
}

static int normalize_rows(float *v, size_t n, uint32_t dim, const char *what,
			  vt_errmsg *err)
{
	for (size_t i = 0; i < n; i++) {
		float *x = v + i * dim;
		double s = 0;
		for (uint32_t j = 0; j < dim; j++)
			s += (double)x[j] * x[j];
		if (s == 0)
			return vt_errmsg_set(err, VT_EINVAL, "%s row %zu is a zero vector", what, i);
		double inv = 1.0 / sqrt(s);
		for (uint32_t j = 0; j < dim; j++)
			x[j] = (float)(x[j] * inv);
	}
	return 0;
}

/* ---- synthetic clustered set ------------------------------------------ */

static double gauss(vt_rng *r)
{
	/* Box-Muller; u1 in (0, 1] so the log is finite. */
	double u1 = 1.0 - vt_rng_double(r);
	double u2 = vt_rng_double(r);
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* A random orthogonal matrix (Gram-Schmidt on a Gaussian one), so the
 * per-dimension spread is not aligned with the axes: a quantizer cannot
 * profit from a few high-variance coordinates the way it could on raw
 * decaying data. */
static void random_rotation(double *q, uint32_t d, vt_rng *r)
{
	for (uint32_t i = 0; i < d; i++) {
		double *qi = q + (size_t)i * d;
		for (;;) {
			for (uint32_t j = 0; j < d; j++)
				qi[j] = gauss(r);
			for (int pass = 0; pass < 2; pass++) {
				for (uint32_t k = 0; k < i; k++) {
					const double *qk = q + (size_t)k * d;
					double dot = 0;
					for (uint32_t j = 0; j < d; j++)
						dot += qi[j] * qk[j];
					for (uint32_t j = 0; j < d; j++)
						qi[j] -= dot * qk[j];
				}
			}
			double nn = 0;
			for (uint32_t j = 0; j < d; j++)
				nn += qi[j] * qi[j];
			if (nn > 1e-6) {
				double inv = 1.0 / sqrt(nn);
				for (uint32_t j = 0; j < d; j++)
					qi[j] *= inv;
				break;
			}
		}
	}
}

/* Gaussian mixture: SYNTH_CENTRES centres ~ N(0, I); a point is its centre
 * plus noise with a decaying spectrum (sigma_j = 0.9 * 0.965^j, so a few
 * dozen directions carry most of the spread, as in real embeddings),
 * rotated by a fixed random orthogonal matrix and normalised to unit
 * length. Base and queries are drawn from the same mixture with separate
 * streams. Deterministic: same seed, same bytes on every machine with
 * IEEE doubles and a correctly rounded libm sqrt/log/cos. */
static void synth_fill(float *out, size_t n, uint64_t stream, const double *centres,
		       const double *rot, const double *sigma)
{
	uint32_t d = SYNTH_DIM;
	double z[SYNTH_DIM], y[SYNTH_DIM];
	vt_rng r;
	vt_rng_seed(&r, vt_mix64(SYNTH_SEED ^ stream));
	for (size_t i = 0; i < n; i++) {
		uint32_t c = (uint32_t)(vt_rng_next(&r) % SYNTH_CENTRES);
		for (uint32_t j = 0; j < d; j++)
			z[j] = sigma[j] * gauss(&r);
		double nn = 0;
		for (uint32_t j = 0; j < d; j++) {
			const double *row = rot + (size_t)j * d;
			double s = centres[(size_t)c * d + j];
			for (uint32_t k = 0; k < d; k++)
				s += row[k] * z[k];
			y[j] = s;
			nn += s * s;
		}
		double inv = 1.0 / sqrt(nn);
		for (uint32_t j = 0; j < d; j++)
			out[i * d + j] = (float)(y[j] * inv);
	}
}

static int synth_make(vt_bench_data *d, vt_errmsg *err)
{
	uint32_t dim = SYNTH_DIM;
	double *centres = vt_malloc(sizeof(double) * SYNTH_CENTRES * dim);
	double *rot = vt_malloc(sizeof(double) * dim * dim);
	double sigma[SYNTH_DIM];
	if (!centres || !rot) {
		vt_free(centres);
		vt_free(rot);
		return vt_errmsg_set(err, VT_ENOMEM, "synth: out of memory");
	}
	vt_rng r;
	vt_rng_seed(&r, SYNTH_SEED);
	for (size_t i = 0; i < (size_t)SYNTH_CENTRES * dim; i++)
		centres[i] = gauss(&r);
	random_rotation(rot, dim, &r);
	for (uint32_t j = 0; j < dim; j++)
		sigma[j] = 0.9 * pow(0.965, (double)j);
	synth_fill(d->base, d->n, 1, centres, rot, sigma);
	synth_fill(d->queries, d->nq, 2, centres, rot, sigma);
	vt_free(centres);
	vt_free(rot);
	return 0;
}

/* ---- loading ---------------------------------------------------------- */

static uint64_t data_checksum(const vt_bench_data *d)
{
	vt_hasher h;
	if (vt_hasher_init(&h, 0x76656374726f6e31ull) != 0) {
		/* Without a streaming hasher fall back to one-shot hashes. */
		uint64_t a = vt_hash64(d->base, d->n * d->dim * sizeof(float), d->n);
		uint64_t b = vt_hash64(d->queries, d->nq * d->dim * sizeof(float), d->nq);
		return vt_mix64(a ^ vt_mix64(b ^ d->dim));
	}
	uint64_t hdr[3] = {d->dim, d->n, d->nq};
	vt_hasher_update(&h, d->name, strlen(d->name));
	vt_hasher_update(&h, hdr, sizeof hdr);
	vt_hasher_update(&h, d->base, d->n * d->dim * sizeof(float));
	vt_hasher_update(&h, d->queries, d->nq * d->dim * sizeof(float));
	uint64_t sum = vt_hasher_digest(&h);
	vt_hasher_free(&h);
	return sum;
}

int vt_bench_data_load(const char *name, size_t n_base, size_t n_queries,
		       vt_bench_data *d, vt_errmsg *err)
{
	int rc;
	memset(d, 0, sizeof *d);
	int fm = strcmp(name, "fmnist") == 0, fmc = strcmp(name, "fmnist-cos") == 0;
	int syn = strcmp(name, "synth") == 0;
	if (!fm && !fmc && !syn)
		return vt_errmsg_set(err, VT_EINVAL,
				     "unknown data set '%s' (known: fmnist, fmnist-cos, synth)", name);
	snprintf(d->name, sizeof d->name, "%s", name);
	d->dist = fm ? VT_BENCH_L2 : VT_BENCH_COS;
	d->dim = syn ? SYNTH_DIM : FMNIST_DIM;
	size_t full_n = syn ? SYNTH_BASE : FMNIST_TRAIN;
	size_t full_q = syn ? SYNTH_QUERIES : FMNIST_TEST;
	d->n = n_base ? n_base : full_n;
	d->nq = n_queries ? n_queries : full_q;
	if (d->n > full_n || d->nq > full_q || d->n < VT_BENCH_GT_K + 1)
		return vt_errmsg_set(err, VT_EINVAL,
				     "%s: sizes %zu base / %zu queries out of range (%zu..%zu / 1..%zu)",
				     name, d->n, d->nq, (size_t)VT_BENCH_GT_K + 1, full_n, full_q);
	d->base = vt_malloc_aligned(64, d->n * d->dim * sizeof(float));
	d->queries = vt_malloc_aligned(64, d->nq * d->dim * sizeof(float));
	if (!d->base || !d->queries)
		return vt_errmsg_set(err, VT_ENOMEM, "%s: out of memory for vectors", name);

	if (syn) {
		rc = synth_make(d, err);
		if (rc)
			return rc;
	} else {
		rc = idx_read(VT_BENCH_FMNIST_DIR "/train-images-idx3-ubyte.gz",
			      FMNIST_TRAIN, d->n, d->base, err);
		if (rc == 0)
			rc = idx_read(VT_BENCH_FMNIST_DIR "/t10k-images-idx3-ubyte.gz",
				      FMNIST_TEST, d->nq, d->queries, err);
		if (rc == 0 && fmc) {
			rc = normalize_rows(d->base, d->n, d->dim, "fmnist-cos base", err);
			if (rc == 0)
				rc = normalize_rows(d->queries, d->nq, d->dim,
						    "fmnist-cos query", err);
		}
		if (rc)
			return rc;
	}
	d->checksum = data_checksum(d);
	return 0;
}

void vt_bench_data_free(vt_bench_data *d)
{
	vt_free_aligned(d->base);
	vt_free_aligned(d->queries);
	vt_free(d->gt_ids);
	vt_free(d->gt_dist);
	memset(d, 0, sizeof *d);
}

/* ---- exact distances -------------------------------------------------- */

double vt_bench_exact_dist(const vt_bench_data *d, size_t qi, size_t id)
{
	const float *a = d->queries + qi * d->dim, *b = d->base + id * d->dim;
	double s = 0;
	if (d->dist == VT_BENCH_L2) {
		for (uint32_t j = 0; j < d->dim; j++) {
			double t = (double)a[j] - (double)b[j];
			s += t * t;
		}
		return s;
	}
	for (uint32_t j = 0; j < d->dim; j++)
		s += (double)a[j] * (double)b[j];
	return 1.0 - s;
}

/* Screening kernels: one base vector against four queries at once, so
 * the four accumulator chains run in parallel and share the loads of the
 * base vector. GCC vector types: one zmm (or two ymm) per 16 floats with
 * bench/'s -march=native, plain SSE otherwise. */
typedef float v16f __attribute__((vector_size(64)));

/* Vectors never cross a function boundary by value (that would tie the
 * calling convention to the ISA, -Wpsabi), so this also builds without
 * -march=native, as services/vectron's demo does. */
#define LOAD16(dst, p) memcpy(&(dst), (p), sizeof(v16f))

static inline float hsum16(const v16f *v)
{
	float s = 0;
	for (int l = 0; l < 16; l++)
		s += (*v)[l];
	return s;
}

static void screen4(int dist, const float *b, const float *const q[4], uint32_t dim,
		    float out[4])
{
	v16f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
	uint32_t i = 0;
	v16f x, y0, y1, y2, y3;
	if (dist == VT_BENCH_L2) {
		for (; i + 16 <= dim; i += 16) {
			LOAD16(x, b + i);
			LOAD16(y0, q[0] + i);
			LOAD16(y1, q[1] + i);
			LOAD16(y2, q[2] + i);
			LOAD16(y3, q[3] + i);
			y0 -= x;
			y1 -= x;
			y2 -= x;
			y3 -= x;
			a0 += y0 * y0;
			a1 += y1 * y1;
			a2 += y2 * y2;
			a3 += y3 * y3;
		}
	} else {
		for (; i + 16 <= dim; i += 16) {
			LOAD16(x, b + i);
			LOAD16(y0, q[0] + i);
			LOAD16(y1, q[1] + i);
			LOAD16(y2, q[2] + i);
			LOAD16(y3, q[3] + i);
			a0 += y0 * x;
			a1 += y1 * x;
			a2 += y2 * x;
			a3 += y3 * x;
		}
	}
	out[0] = hsum16(&a0);
	out[1] = hsum16(&a1);
	out[2] = hsum16(&a2);
	out[3] = hsum16(&a3);
	for (int k = 0; k < 4; k++) {
		float s = 0;
		for (uint32_t j = i; j < dim; j++) {
			if (dist == VT_BENCH_L2) {
				float t = q[k][j] - b[j];
				s += t * t;
			} else {
				s += q[k][j] * b[j];
			}
		}
		out[k] += s;
		if (dist != VT_BENCH_L2)
			out[k] = 1.0f - out[k];
	}
}

/* ---- ground truth ----------------------------------------------------- */

/* A bounded max-heap of (distance, id): keeps the `cap` smallest. */
typedef struct cand {
	double d;
	uint32_t id;
} cand;

static int cand_less(const cand *a, const cand *b)
{
	return a->d < b->d || (a->d == b->d && a->id < b->id);
}

static void heap_push(cand *h, uint32_t *len, uint32_t cap, double dist, uint32_t id)
{
	cand c = {dist, id};
	uint32_t i;
	if (*len < cap) {
		i = (*len)++;
		while (i > 0) {
			uint32_t p = (i - 1) / 2;
			if (!cand_less(&h[p], &c))
				break;
			h[i] = h[p];
			i = p;
		}
		h[i] = c;
		return;
	}
	if (!cand_less(&c, &h[0]))
		return;
	i = 0;
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		const cand *mc = &c;
		if (l < *len && cand_less(mc, &h[l])) {
			m = l;
			mc = &h[l];
		}
		if (r < *len && cand_less(mc, &h[r]))
			m = r;
		if (m == i)
			break;
		h[i] = h[m];
		i = m;
	}
	h[i] = c;
}

static int cand_cmp(const void *pa, const void *pb)
{
	const cand *a = pa, *b = pb;
	return cand_less(a, b) ? -1 : cand_less(b, a) ? 1 : 0;
}

typedef struct gt_job {
	vt_bench_data *d;
	atomic_size_t next;   /* next query block */
	atomic_size_t done;   /* queries finished */
	atomic_uint rescans;
	atomic_uint ties;
	atomic_int failed;
} gt_job;

#define GT_QBLOCK 32u

/* Exact top-(K+1) of query qi by a full double scan, into out[K+1]. */
static void gt_full_scan(const vt_bench_data *d, size_t qi, cand *out)
{
	uint32_t len = 0;
	for (size_t id = 0; id < d->n; id++)
		heap_push(out, &len, VT_BENCH_GT_K + 1, vt_bench_exact_dist(d, qi, id),
			  (uint32_t)id);
	qsort(out, len, sizeof *out, cand_cmp);
}

static void *gt_worker(void *arg)
{
	gt_job *job = arg;
	vt_bench_data *d = job->d;
	uint32_t dim = d->dim, screen = d->n < GT_SCREEN ? (uint32_t)d->n : GT_SCREEN;
	cand *heaps = vt_malloc(sizeof(cand) * GT_QBLOCK * GT_SCREEN);
	cand exact[GT_SCREEN];
	uint32_t lens[GT_QBLOCK];
	if (!heaps) {
		atomic_store(&job->failed, VT_ENOMEM);
		return NULL;
	}
	for (;;) {
		size_t q0 = atomic_fetch_add(&job->next, 1) * GT_QBLOCK;
		if (q0 >= d->nq || atomic_load(&job->failed))
			break;
		size_t qn = d->nq - q0 < GT_QBLOCK ? d->nq - q0 : GT_QBLOCK;
		memset(lens, 0, sizeof lens);
		for (size_t id = 0; id < d->n; id++) {
			const float *b = d->base + id * dim;
			for (size_t k0 = 0; k0 < qn; k0 += 4) {
				/* A short last group repeats its last query. */
				const float *q[4];
				float f[4];
				for (size_t j = 0; j < 4; j++) {
					size_t k = k0 + j < qn ? k0 + j : qn - 1;
					q[j] = d->queries + (q0 + k) * dim;
				}
				screen4(d->dist, b, q, dim, f);
				for (size_t j = 0; j < 4 && k0 + j < qn; j++) {
					size_t k = k0 + j;
					cand *h = heaps + k * GT_SCREEN;
					if (lens[k] < screen || f[j] < h[0].d)
						heap_push(h, &lens[k], screen, f[j], (uint32_t)id);
				}
			}
		}
		for (size_t k = 0; k < qn; k++) {
			size_t qi = q0 + k;
			cand *h = heaps + k * GT_SCREEN;
			/* h[0] holds the worst screened float distance: every
			 * point not screened in is at least that far in float. */
			double fworst = h[0].d;
			for (uint32_t i = 0; i < lens[k]; i++) {
				exact[i].id = h[i].id;
				exact[i].d = vt_bench_exact_dist(d, qi, h[i].id);
			}
			qsort(exact, lens[k], sizeof *exact, cand_cmp);
			double tenth = exact[VT_BENCH_GT_K - 1].d;
			double slack = GT_FLOAT_EPS *
				       (d->dist == VT_BENCH_L2 ? fabs(fworst) : fmax(fabs(fworst), 1.0));
			int certified = lens[k] == d->n || fworst - slack > tenth;
			/* A certified screen also needs rank K+1 to be among
			 * the screened ones to see ties; it is, as K+1 <= 32. */
			if (!certified) {
				gt_full_scan(d, qi, exact);
				atomic_fetch_add(&job->rescans, 1);
			}
			if (exact[VT_BENCH_GT_K].d == exact[VT_BENCH_GT_K - 1].d)
				atomic_fetch_add(&job->ties, 1);
			for (uint32_t i = 0; i < VT_BENCH_GT_K; i++) {
				d->gt_ids[qi * VT_BENCH_GT_K + i] = exact[i].id;
				d->gt_dist[qi * VT_BENCH_GT_K + i] = exact[i].d;
			}
		}
		atomic_fetch_add(&job->done, qn);
	}
	vt_free(heaps);
	return NULL;
}

static void gt_path(const vt_bench_data *d, const char *dir, char *out, size_t cap)
{
	snprintf(out, cap, "%s/gt-%s-%zux%u-q%zu-k%u-%016llx.bin", dir, d->name, d->n, d->dim,
		 d->nq, VT_BENCH_GT_K, (unsigned long long)d->checksum);
}

typedef struct gt_header {
	char magic[8];
	uint32_t version, k, dim, dist;
	uint64_t n, nq, checksum;
	char name[32];
	uint32_t ties, rescans;
} gt_header;

static void gt_header_fill(const vt_bench_data *d, gt_header *h)
{
	memset(h, 0, sizeof *h);
	memcpy(h->magic, GT_MAGIC, 8);
	h->version = GT_VERSION;
	h->k = VT_BENCH_GT_K;
	h->dim = d->dim;
	h->dist = (uint32_t)d->dist;
	h->n = d->n;
	h->nq = d->nq;
	h->checksum = d->checksum;
	snprintf(h->name, sizeof h->name, "%s", d->name);
	h->ties = d->gt_ties;
	h->rescans = d->gt_rescans;
}

static uint64_t gt_payload_sum(const gt_header *h, const vt_bench_data *d)
{
	size_t cnt = d->nq * VT_BENCH_GT_K;
	uint64_t a = vt_hash64(h, sizeof *h, 1);
	uint64_t b = vt_hash64(d->gt_ids, cnt * sizeof(uint32_t), a);
	return vt_hash64(d->gt_dist, cnt * sizeof(double), b);
}

/* Returns 0 if a valid cache file was loaded, 1 if there is none usable
 * (missing or stale: the caller recomputes), or an error. */
static int gt_load(vt_bench_data *d, const char *path)
{
	gt_header want, got;
	uint64_t sum;
	size_t cnt = d->nq * VT_BENCH_GT_K;
	int rc = 1;
	FILE *f = fopen(path, "rb");
	if (!f)
		return 1;
	gt_header_fill(d, &want);
	if (fread(&got, sizeof got, 1, f) != 1)
		goto out;
	/* ties/rescans are results, not part of the key. */
	want.ties = got.ties;
	want.rescans = got.rescans;
	if (memcmp(&want, &got, sizeof got) != 0)
		goto out;
	if (fread(d->gt_ids, sizeof(uint32_t), cnt, f) != cnt ||
	    fread(d->gt_dist, sizeof(double), cnt, f) != cnt ||
	    fread(&sum, sizeof sum, 1, f) != 1)
		goto out;
	if (sum != gt_payload_sum(&got, d))
		goto out;
	for (size_t i = 0; i < cnt; i++)
		if (d->gt_ids[i] >= d->n)
			goto out;
	d->gt_ties = got.ties;
	d->gt_rescans = got.rescans;
	rc = 0;
out:
	fclose(f);
	return rc;
}

static int gt_save(const vt_bench_data *d, const char *path, vt_errmsg *err)
{
	char tmp[4200];
	gt_header h;
	size_t cnt = d->nq * VT_BENCH_GT_K;
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "wb");
	if (!f)
		return vt_errmsg_set(err, vt_err_from_errno(errno), "create %s: %s", tmp,
				     strerror(errno));
	gt_header_fill(d, &h);
	uint64_t sum = gt_payload_sum(&h, d);
	int ok = fwrite(&h, sizeof h, 1, f) == 1 &&
		 fwrite(d->gt_ids, sizeof(uint32_t), cnt, f) == cnt &&
		 fwrite(d->gt_dist, sizeof(double), cnt, f) == cnt &&
		 fwrite(&sum, sizeof sum, 1, f) == 1;
	ok = (fclose(f) == 0) && ok;
	if (!ok || rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		return vt_errmsg_set(err, VT_EIO, "write %s: %s", path, strerror(e));
	}
	return 0;
}

int vt_bench_gt_get(vt_bench_data *d, const char *cache_dir, int threads,
		    vt_errmsg *err)
{
	char path[4096];
	pthread_t tid[64];
	int started = 0, rc;
	gt_job job;
	size_t cnt = d->nq * VT_BENCH_GT_K;

	vt_free(d->gt_ids);
	vt_free(d->gt_dist);
	d->gt_ids = vt_malloc(cnt * sizeof(uint32_t));
	d->gt_dist = vt_malloc(cnt * sizeof(double));
	if (!d->gt_ids || !d->gt_dist)
		return vt_errmsg_set(err, VT_ENOMEM, "ground truth: out of memory");
	rc = mkdir_p(cache_dir, err);
	if (rc)
		return rc;
	gt_path(d, cache_dir, path, sizeof path);
	if (gt_load(d, path) == 0) {
		d->gt_from_cache = 1;
		return 0;
	}

	if (threads < 1)
		threads = 1;
	if (threads > 64)
		threads = 64;
	memset(&job, 0, sizeof job);
	job.d = d;
	d->gt_ties = d->gt_rescans = 0;
	char what[64];
	snprintf(what, sizeof what, "ground truth %s", d->name);
	vt_progress pr;
	vt_progress_start(&pr, NULL, what, d->nq);
	for (; started < threads; started++) {
		int e = pthread_create(&tid[started], NULL, gt_worker, &job);
		if (e) {
			atomic_store(&job.failed, VT_EINTERNAL);
			rc = vt_errmsg_set(err, VT_EINTERNAL, "ground truth: pthread_create: %s",
					   strerror(e));
			break;
		}
	}
	while (started > 0 && atomic_load(&job.done) < d->nq && !atomic_load(&job.failed)) {
		vt_progress_update(&pr, atomic_load(&job.done));
		usleep(100000);
	}
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	if (rc)
		return rc;
	if (atomic_load(&job.failed))
		return vt_errmsg_set(err, atomic_load(&job.failed), "ground truth: worker failed");
	vt_progress_done(&pr, d->nq);
	d->gt_ties = atomic_load(&job.ties);
	d->gt_rescans = atomic_load(&job.rescans);
	d->gt_from_cache = 0;
	return gt_save(d, path, err);
}

int vt_bench_gt_verify(const vt_bench_data *d, size_t samples, vt_errmsg *err)
{
	cand exact[VT_BENCH_GT_K + 1];
	if (samples > d->nq)
		samples = d->nq;
	for (size_t s = 0; s < samples; s++) {
		size_t qi = samples > 1 ? s * (d->nq - 1) / (samples - 1) : 0;
		gt_full_scan(d, qi, exact);
		for (uint32_t i = 0; i < VT_BENCH_GT_K; i++) {
			const double gd = d->gt_dist[qi * VT_BENCH_GT_K + i];
			const uint32_t gid = d->gt_ids[qi * VT_BENCH_GT_K + i];
			/* Ids may differ only between equal distances. */
			if (gd != exact[i].d ||
			    (gid != exact[i].id && vt_bench_exact_dist(d, qi, gid) != gd))
				return vt_errmsg_set(err, VT_ECORRUPT,
						     "%s ground truth: query %zu rank %u is id %u at %.9g, a full scan says id %u at %.9g (delete the cache file)",
						     d->name, qi, i, gid, gd, exact[i].id, exact[i].d);
		}
	}
	return 0;
}
