/*
 * The node's value cache in native memory (value_cache.c): the stored bytes of
 * recently written and read user keys, bounded in bytes, oldest slab out
 * first. node/value_cache.ts documents the rules that keep it from serving
 * what the engine no longer holds; this is its storage, shared by the
 * TypeScript side (through FFI) and the native GET path (spire_resp.c).
 */
#ifndef SPIRE_VALUE_CACHE_H
#define SPIRE_VALUE_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct spire_cache spire_cache;

/* Keys longer than this are not cached. */
#define SPIRE_CACHE_KEY_BYTES_MAX 256
/* Bytes counted per entry on top of its key and value's room in a slab. */
#define SPIRE_CACHE_ENTRY_OVERHEAD_BYTES 96

/*
 * The value of `key`, or NULL when it is not cached; not counted, so that a
 * lookup whose command is given up and redone later counts once. The bytes
 * stay valid until the next call that changes the cache.
 */
const uint8_t* spire_cache_peek(spire_cache* cache, const uint8_t* key, uint32_t key_len,
                                uint32_t* value_len);

/* Counts one answered lookup as a hit (hit != 0) or a miss. */
void spire_cache_count(spire_cache* cache, int hit);

/* Caches key -> value (both copied); one too large for a slab is dropped instead. */
void spire_cache_put(spire_cache* cache, const uint8_t* key, uint32_t key_len,
                     const uint8_t* value, uint32_t value_len);

#endif
