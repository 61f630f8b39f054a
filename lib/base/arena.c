/* arena.c: bump allocation in growing chunks (see arena.h). */
#include "arena.h"

#include <stdint.h>
#include <string.h>

#include "alloc.h"

#define CHUNK 16384u
#define ALIGN 16u

struct chunk {
	struct chunk *next;
	size_t size, used;
	_Alignas(16) unsigned char data[];
};

struct defer {
	struct defer *next;
	void (*fn)(void *);
	void *p;
};

struct vt_arena {
	struct chunk *head;
	struct defer *defers;
	size_t used, max;
};

vt_arena *vt_arena_create(size_t max)
{
	vt_arena *a = vt_calloc(1, sizeof *a);
	if (a)
		a->max = max;
	return a;
}

void vt_arena_destroy(vt_arena *a)
{
	if (!a)
		return;
	struct defer *d = a->defers;
	while (d) {
		struct defer *n = d->next;
		d->fn(d->p);
		vt_free(d);
		d = n;
	}
	struct chunk *c = a->head;
	while (c) {
		struct chunk *n = c->next;
		vt_free(c);
		c = n;
	}
	vt_free(a);
}

void *vt_arena_alloc(vt_arena *a, size_t n)
{
	size_t need = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	if (need < n || (a->max && a->used + need > a->max))
		return NULL;
	struct chunk *c = a->head;
	if (!c || c->size - c->used < need) {
		size_t size = need > CHUNK / 2 ? need : CHUNK;
		c = vt_malloc(sizeof *c + size);
		if (!c)
			return NULL;
		c->size = size;
		c->used = 0;
		if (size > CHUNK / 2 && a->head) {
			/* a big one: keep filling the current chunk */
			c->next = a->head->next;
			a->head->next = c;
		} else {
			c->next = a->head;
			a->head = c;
		}
	}
	void *p = c->data + c->used;
	c->used += need;
	a->used += need;
	return p;
}

void *vt_arena_calloc(vt_arena *a, size_t count, size_t size)
{
	if (size && count > SIZE_MAX / size)
		return NULL;
	void *p = vt_arena_alloc(a, count * size);
	if (p)
		memset(p, 0, count * size);
	return p;
}

char *vt_arena_strndup(vt_arena *a, const char *s, size_t n)
{
	char *p = vt_arena_alloc(a, n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

int vt_arena_defer(vt_arena *a, void (*fn)(void *), void *p)
{
	struct defer *d = vt_malloc(sizeof *d);
	if (!d) {
		fn(p);
		return VT_ENOMEM;
	}
	d->fn = fn;
	d->p = p;
	d->next = a->defers;
	a->defers = d;
	return 0;
}

size_t vt_arena_used(const vt_arena *a)
{
	return a->used;
}
