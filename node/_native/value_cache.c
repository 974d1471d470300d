/*
 * The node's value cache in native memory; see value_cache.h and
 * node/value_cache.ts (NativeValueCache) for what it is for.
 *
 * Layout: keys and values are copied into slabs (1/16 of the capacity, at most
 * 1 MiB) that are only ever appended to; an entry of the hash table (open
 * addressing, linear probing, deletion by backward shift, so no tombstones)
 * names its slab by sequence number and its record's offset. When the slabs
 * plus SPIRE_CACHE_ENTRY_OVERHEAD_BYTES per entry pass the capacity, the
 * oldest slab is dropped with every entry still in it (FIFO by slab): its
 * records are walked and each key whose entry still points into it is removed.
 */
#include "value_cache.h"

#include <stdlib.h>
#include <string.h>

#define SLAB_BYTES_MAX (1024 * 1024)

typedef struct {
  uint32_t hash;
  uint32_t slab; /* sequence number */
  uint32_t offset;
  uint32_t value_len;
  uint16_t key_len;
  uint16_t used;
} entry;

typedef struct {
  uint8_t* bytes;
  uint32_t used;
  uint32_t seq;
  uint32_t* records; /* offset, key length, value length: three words per record */
  uint32_t record_count;
  uint32_t record_cap;
} slab;

struct spire_cache {
  double capacity;
  uint32_t slab_bytes;
  entry* table;
  uint32_t mask; /* table size - 1 */
  uint32_t entries;
  slab* slabs;   /* oldest first */
  uint32_t slab_count;
  uint32_t slab_cap;
  uint32_t next_seq;
  double hits, misses, evictions;
};

static uint32_t hash_key(const uint8_t* key, uint32_t len) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (uint32_t i = 0; i < len; i++) h = (h ^ key[i]) * 16777619u;
  return h;
}

static const uint8_t* key_of(const spire_cache* c, const entry* e) {
  return c->slabs[e->slab - c->slabs[0].seq].bytes + e->offset;
}

/* The slot holding key, or the empty slot where it would go. */
static uint32_t slot_of(const spire_cache* c, const uint8_t* key, uint32_t len, uint32_t h) {
  uint32_t i = h & c->mask;
  for (;;) {
    const entry* e = &c->table[i];
    if (!e->used) return i;
    if (e->hash == h && e->key_len == len && memcmp(key_of(c, e), key, len) == 0) return i;
    i = (i + 1) & c->mask;
  }
}

static void remove_slot(spire_cache* c, uint32_t i) {
  uint32_t j = i;
  for (;;) {
    j = (j + 1) & c->mask;
    if (!c->table[j].used) break;
    uint32_t k = c->table[j].hash & c->mask; /* where entry j would like to be */
    int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (stays) continue;
    c->table[i] = c->table[j];
    i = j;
  }
  c->table[i].used = 0;
  c->entries--;
}

static double held_bytes(const spire_cache* c) {
  return (double)c->slab_count * c->slab_bytes +
         (double)c->entries * SPIRE_CACHE_ENTRY_OVERHEAD_BYTES;
}

static void free_slab(slab* s) {
  free(s->bytes);
  free(s->records);
}

spire_cache* spire_cache_create(double capacity) {
  if (!(capacity >= 16)) return NULL;
  spire_cache* c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  c->capacity = capacity;
  double slab_bytes = capacity / 16;
  c->slab_bytes = slab_bytes > SLAB_BYTES_MAX ? SLAB_BYTES_MAX : (uint32_t)slab_bytes;
  c->mask = 1023;
  c->table = calloc(c->mask + 1, sizeof(entry));
  double slabs = capacity / c->slab_bytes + 2;
  c->slab_cap = (uint32_t)slabs;
  c->slabs = calloc(c->slab_cap, sizeof(slab));
  if (c->table == NULL || c->slabs == NULL) {
    free(c->table);
    free(c->slabs);
    free(c);
    return NULL;
  }
  return c;
}

void spire_cache_clear(spire_cache* c) {
  for (uint32_t i = 0; i < c->slab_count; i++) free_slab(&c->slabs[i]);
  c->slab_count = 0;
  memset(c->table, 0, (size_t)(c->mask + 1) * sizeof(entry));
  c->entries = 0;
}

void spire_cache_destroy(spire_cache* c) {
  if (c == NULL) return;
  spire_cache_clear(c);
  free(c->table);
  free(c->slabs);
  free(c);
}

uint32_t spire_cache_slab_bytes(const spire_cache* c) { return c->slab_bytes; }

static void drop_oldest(spire_cache* c) {
  slab* old = &c->slabs[0];
  for (uint32_t r = 0; r < old->record_count; r++) {
    uint32_t offset = old->records[3 * r], len = old->records[3 * r + 1];
    const uint8_t* key = old->bytes + offset;
    uint32_t i = slot_of(c, key, len, hash_key(key, len));
    entry* e = &c->table[i];
    if (e->used && e->slab == old->seq && e->offset == offset) {
      remove_slot(c, i);
      c->evictions += 1;
    }
  }
  free_slab(old);
  memmove(&c->slabs[0], &c->slabs[1], (size_t)(c->slab_count - 1) * sizeof(slab));
  c->slab_count--;
}

static int grow_table(spire_cache* c) {
  uint32_t old_size = c->mask + 1;
  entry* old = c->table;
  entry* next = calloc((size_t)old_size * 2, sizeof(entry));
  if (next == NULL) return 0;
  c->table = next;
  c->mask = old_size * 2 - 1;
  for (uint32_t i = 0; i < old_size; i++) {
    if (!old[i].used) continue;
    uint32_t j = old[i].hash & c->mask;
    while (c->table[j].used) j = (j + 1) & c->mask;
    c->table[j] = old[i];
  }
  free(old);
  return 1;
}

void spire_cache_delete(spire_cache* c, const uint8_t* key, uint32_t key_len) {
  if (key_len > SPIRE_CACHE_KEY_BYTES_MAX || c->entries == 0) return;
  uint32_t i = slot_of(c, key, key_len, hash_key(key, key_len));
  if (c->table[i].used) remove_slot(c, i);
}

/* A new newest slab; 0 when out of memory or out of slab slots. */
static int open_slab(spire_cache* c) {
  if (c->slab_count == c->slab_cap) return 0;
  slab* s = &c->slabs[c->slab_count];
  memset(s, 0, sizeof *s);
  s->bytes = malloc(c->slab_bytes);
  if (s->bytes == NULL) return 0;
  s->seq = c->next_seq++;
  c->slab_count++;
  return 1;
}

static int add_record(slab* s, uint32_t offset, uint32_t key_len, uint32_t value_len) {
  if (s->record_count == s->record_cap) {
    uint32_t cap = s->record_cap == 0 ? 64 : s->record_cap * 2;
    uint32_t* next = realloc(s->records, (size_t)cap * 3 * sizeof(uint32_t));
    if (next == NULL) return 0;
    s->records = next;
    s->record_cap = cap;
  }
  s->records[3 * s->record_count] = offset;
  s->records[3 * s->record_count + 1] = key_len;
  s->records[3 * s->record_count + 2] = value_len;
  s->record_count++;
  return 1;
}

void spire_cache_put(spire_cache* c, const uint8_t* key, uint32_t key_len, const uint8_t* value,
                     uint32_t value_len) {
  spire_cache_delete(c, key, key_len);
  if (key_len > SPIRE_CACHE_KEY_BYTES_MAX || (uint64_t)key_len + value_len > c->slab_bytes) {
    return; /* not cached; an older copy is gone */
  }
  slab* s = c->slab_count == 0 ? NULL : &c->slabs[c->slab_count - 1];
  if (s == NULL || (uint64_t)s->used + key_len + value_len > c->slab_bytes) {
    if (c->slab_count == c->slab_cap) drop_oldest(c);
    if (!open_slab(c)) return;
    s = &c->slabs[c->slab_count - 1];
  }
  if ((c->entries + 1) * 2 > c->mask + 1 && !grow_table(c)) return;
  uint32_t offset = s->used;
  if (!add_record(s, offset, key_len, value_len)) return;
  memcpy(s->bytes + offset, key, key_len);
  memcpy(s->bytes + offset + key_len, value, value_len);
  s->used += key_len + value_len;
  uint32_t h = hash_key(key, key_len);
  uint32_t i = slot_of(c, key, key_len, h);
  c->table[i] = (entry){h, s->seq, offset, value_len, (uint16_t)key_len, 1};
  c->entries++;
  while (held_bytes(c) > c->capacity && c->slab_count > 1) drop_oldest(c);
  if (held_bytes(c) > c->capacity) spire_cache_clear(c); /* one slab and its entries do not fit */
}

const uint8_t* spire_cache_peek(spire_cache* c, const uint8_t* key, uint32_t key_len,
                                uint32_t* value_len) {
  if (key_len > SPIRE_CACHE_KEY_BYTES_MAX || c->entries == 0) return NULL;
  uint32_t i = slot_of(c, key, key_len, hash_key(key, key_len));
  const entry* e = &c->table[i];
  if (!e->used) return NULL;
  *value_len = e->value_len;
  return key_of(c, e) + e->key_len;
}

void spire_cache_count(spire_cache* c, int hit) {
  if (hit) {
    c->hits += 1;
  } else {
    c->misses += 1;
  }
}

/*
 * Copies the value of key into out[0..out_cap): returns 1 (hit, *value_len
 * set), 0 (miss) or 2 (cached, but longer than out_cap: nothing copied, and
 * counted as a miss, since the caller reads RocksDB instead).
 */
int32_t spire_cache_get(spire_cache* c, const uint8_t* key, uint32_t key_len, uint8_t* out,
                        uint32_t out_cap, uint32_t* value_len) {
  const uint8_t* v = spire_cache_peek(c, key, key_len, value_len);
  int32_t found = v == NULL ? 0 : *value_len > out_cap ? 2 : 1;
  spire_cache_count(c, found == 1);
  if (found == 1) memcpy(out, v, *value_len);
  return found;
}

/* Reads a varint32 at rep[*at..len); 0 when it is cut or longer than 5 bytes. */
static int read_varint(const uint8_t* rep, uint32_t len, uint32_t* at, uint32_t* out) {
  uint32_t n = 0;
  for (int shift = 0; shift <= 28; shift += 7) {
    if (*at >= len) return 0;
    uint8_t b = rep[(*at)++];
    n |= (uint32_t)(b & 0x7f) << shift;
    if (b < 0x80) {
      *out = n;
      return 1;
    }
  }
  return 0;
}

/* Reads a varstring at rep[*at..len): its offset and length; 0 when it is cut. */
static int read_string(const uint8_t* rep, uint32_t len, uint32_t* at, uint32_t* offset,
                       uint32_t* n) {
  if (!read_varint(rep, len, at, n) || *n > len - *at) return 0;
  *offset = *at;
  *at += *n;
  return 1;
}

enum { TAG_DELETE = 0x00, TAG_PUT = 0x01, TAG_DELETE_RANGE = 0x0f, BATCH_HEADER_BYTES = 12 };

/*
 * Learns from a RocksDB WriteBatch representation (engine/write_batch.ts): for
 * each record whose key starts with the byte `prefix` (any key when prefix < 0),
 * a put caches its value (puts != 0) or forgets the key (puts == 0), a delete
 * forgets the key (unless deletes == 0), and a range delete empties the cache.
 * Returns the number of records read, or -1 when the bytes are not a batch (the
 * records before the bad one were applied).
 */
int32_t spire_cache_apply_batch(spire_cache* c, const uint8_t* rep, uint32_t len, int32_t prefix,
                                int32_t puts, int32_t deletes) {
  if (len < BATCH_HEADER_BYTES) return -1;
  uint32_t at = BATCH_HEADER_BYTES;
  int32_t n = 0;
  while (at < len) {
    uint8_t tag = rep[at++];
    uint32_t k = 0, key_len = 0, v = 0, value_len = 0;
    if (!read_string(rep, len, &at, &k, &key_len)) return -1;
    if (tag == TAG_PUT || tag == TAG_DELETE_RANGE) {
      if (!read_string(rep, len, &at, &v, &value_len)) return -1;
    } else if (tag != TAG_DELETE) {
      return -1;
    }
    n++;
    if (tag == TAG_DELETE_RANGE) {
      spire_cache_clear(c);
      continue;
    }
    if (prefix >= 0 && (key_len == 0 || rep[k] != (uint8_t)prefix)) continue;
    if (tag == TAG_PUT && puts) spire_cache_put(c, rep + k, key_len, rep + v, value_len);
    else if (tag == TAG_PUT || deletes) spire_cache_delete(c, rep + k, key_len);
  }
  return n;
}

/* out: bytes held, entries, hits, misses, evictions. */
void spire_cache_stats(const spire_cache* c, double* out) {
  out[0] = held_bytes(c);
  out[1] = c->entries;
  out[2] = c->hits;
  out[3] = c->misses;
  out[4] = c->evictions;
}
