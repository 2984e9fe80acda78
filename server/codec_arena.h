/* A bump allocator for one decoded request (codec_unpack.c).
 *
 * A decoded request is many small objects (the chains, their certificate
 * arrays, bytes and strings) that all go together. An arena carves them
 * from one block malloc'd once, sized from the wire length;
 * when the block is used up it falls back to malloc, in chunks that grow
 * geometrically. Freeing one allocation does nothing: everything goes at
 * once with codec_arena_free. Not thread-safe while it allocates; the
 * memory it handed out may be read from any thread.
 *
 * Conventions: pointer or NULL (allocation failure, also recorded in the
 * arena: codec_arena_failed). */
#ifndef CERTVAL_CODEC_ARENA_H
#define CERTVAL_CODEC_ARENA_H

#include <stdbool.h>
#include <stddef.h>

struct codec_arena;

/* codec_arena_new returns an arena whose first block holds |cap| bytes (one
 * malloc for the arena and the block) and that takes at most |max_bytes|
 * in all, fallback chunks included (SIZE_MAX: no bound but malloc's).
 * NULL when that malloc fails. Free with codec_arena_free. */
struct codec_arena *codec_arena_new(size_t cap, size_t max_bytes);

/* codec_arena_free frees every allocation of |a| and |a| itself; NULL is
 * accepted. */
void codec_arena_free(struct codec_arena *a);

/* codec_arena_alloc returns |size| bytes aligned like malloc's
 * (alignof(max_align_t)), from the block while it lasts, then from a
 * fallback chunk. NULL when malloc fails or |max_bytes| would be passed;
 * the arena then stays usable and codec_arena_failed reports it. */
void *codec_arena_alloc(struct codec_arena *a, size_t size);

/* codec_arena_failed is whether an allocation from |a| has failed. */
bool codec_arena_failed(const struct codec_arena *a);

/* codec_arena_used returns the bytes handed out from |a| so far, alignment
 * padding included (for sizing and tests). */
size_t codec_arena_used(const struct codec_arena *a);

#endif
