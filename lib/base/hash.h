/* hash.h: fast non-cryptographic hashing (XXH3 from libxxhash) and a
 * seedable PRNG. Not for secrets: use libsodium for those. */
#ifndef VT_BASE_HASH_H
#define VT_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* 64-bit XXH3 of `len` bytes at `data` with `seed`. Stable across runs and
 * machines: it is used in file checksums and shard routing. */
VT_API uint64_t vt_hash64(const void *data, size_t len, uint64_t seed);

/* The range of `n` equal ranges of the 64-bit hash space that holds `key`:
 * floor(key * n / 2^64), 0 when n <= 1. How ids map to shards (the PD's key
 * ranges and lib/coll's routing): ranges, unlike `key % n`, can be split. */
VT_API uint32_t vt_hash_range(uint64_t key, uint32_t n);

/* Streaming checksum for file sections. */
typedef struct vt_hasher {
	void *state; /* private */
} vt_hasher;
VT_API int vt_hasher_init(vt_hasher *h, uint64_t seed);
VT_API void vt_hasher_update(vt_hasher *h, const void *data, size_t len);
VT_API uint64_t vt_hasher_digest(const vt_hasher *h);
VT_API void vt_hasher_free(vt_hasher *h);

/* Mixes a 64-bit integer (splitmix64 finaliser); a bijection. */
static inline uint64_t vt_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/* A small, fast, seedable PRNG (splitmix64 stream). Not thread-safe: keep
 * one per thread. */
typedef struct vt_rng {
	uint64_t s;
} vt_rng;

static inline void vt_rng_seed(vt_rng *r, uint64_t seed)
{
	r->s = seed;
}

static inline uint64_t vt_rng_next(vt_rng *r)
{
	r->s += 0x9e3779b97f4a7c15ull;
	return vt_mix64(r->s);
}

/* Uniform double in [0, 1). */
static inline double vt_rng_double(vt_rng *r)
{
	return (double)(vt_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

#endif
