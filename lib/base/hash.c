/* hash.c: thin wrappers over libxxhash's XXH3. */
#include "hash.h"

#include <xxhash.h>

uint64_t vt_hash64(const void *data, size_t len, uint64_t seed)
{
	return XXH3_64bits_withSeed(data, len, seed);
}

int vt_hasher_init(vt_hasher *h, uint64_t seed)
{
	XXH3_state_t *st = XXH3_createState();
	if (!st)
		return VT_ENOMEM;
	XXH3_64bits_reset_withSeed(st, seed);
	h->state = st;
	return 0;
}

void vt_hasher_update(vt_hasher *h, const void *data, size_t len)
{
	XXH3_64bits_update(h->state, data, len);
}

uint64_t vt_hasher_digest(const vt_hasher *h)
{
	return XXH3_64bits_digest(h->state);
}

void vt_hasher_free(vt_hasher *h)
{
	if (h->state)
		XXH3_freeState(h->state);
	h->state = 0;
}

uint32_t vt_hash_range(uint64_t key, uint32_t n)
{
	if (n <= 1)
		return 0;
	return (uint32_t)(((unsigned __int128)key * n) >> 64);
}
