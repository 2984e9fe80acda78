#include "codec_arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>

#define ALIGN alignof(max_align_t)
/* The smallest fallback chunk: a request that outgrows its block by a few
 * bytes (many empty sub-messages) should not cost one malloc each. */
#define MIN_CHUNK 4096

/* A fallback chunk, malloc'd when the block is used up. */
struct chunk {
    struct chunk *next;
    alignas(max_align_t) unsigned char data[];
};

struct codec_arena {
    unsigned char *next, *end; /* the free part of the current block or chunk */
    struct chunk *chunks;      /* fallback chunks, newest first */
    size_t next_chunk;         /* size of the next fallback chunk */
    size_t left;               /* bytes that fallback chunks may still take */
    size_t used;
    bool failed;
    alignas(max_align_t) unsigned char block[];
};

struct codec_arena *codec_arena_new(size_t cap, size_t max_bytes)
{
    struct codec_arena *a;

    cap = (cap + ALIGN - 1) & ~(ALIGN - 1);
    if (cap < ALIGN || cap > SIZE_MAX - sizeof(*a) || cap > max_bytes)
        return NULL;
    a = malloc(sizeof(*a) + cap);
    if (a == NULL)
        return NULL;
    a->next = a->block;
    a->end = a->block + cap;
    a->chunks = NULL;
    a->next_chunk = cap > MIN_CHUNK ? cap : MIN_CHUNK;
    a->left = max_bytes - cap;
    a->used = 0;
    a->failed = false;
    return a;
}

void codec_arena_free(struct codec_arena *a)
{
    struct chunk *c, *next;

    if (a == NULL)
        return;
    for (c = a->chunks; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    free(a);
}

/* Starts a fallback chunk of at least |n| bytes (a multiple of ALIGN);
 * false when malloc fails or the arena's bound would be passed. */
static bool chunk_add(struct codec_arena *a, size_t n)
{
    size_t size = n > a->next_chunk ? n : a->next_chunk;
    struct chunk *c;

    if (size > a->left && n <= a->left)
        size = a->left; /* the last chunk the bound allows */
    if (size > a->left || size > SIZE_MAX - sizeof(*c))
        return false;
    c = malloc(sizeof(*c) + size);
    if (c == NULL)
        return false;
    c->next = a->chunks;
    a->chunks = c;
    a->left -= size;
    if (a->next_chunk <= SIZE_MAX / 2)
        a->next_chunk *= 2;
    a->next = c->data;
    a->end = c->data + size;
    return true;
}

void *codec_arena_alloc(struct codec_arena *a, size_t size)
{
    size_t n = (size + ALIGN - 1) & ~(ALIGN - 1);
    void *p;

    if (n < size) {
        a->failed = true; /* size + ALIGN overflowed */
        return NULL;
    }
    if (n > (size_t)(a->end - a->next) && !chunk_add(a, n)) {
        a->failed = true;
        return NULL;
    }
    p = a->next;
    a->next += n;
    a->used += n;
    return p;
}

bool codec_arena_failed(const struct codec_arena *a)
{
    return a->failed;
}

size_t codec_arena_used(const struct codec_arena *a)
{
    return a->used;
}
