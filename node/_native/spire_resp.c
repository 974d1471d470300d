/*
 * The client port's native GET path: answers a run of pipelined GET commands
 * straight from RocksDB in one FFI call, parsing each request, reading its key
 * and writing its RESP reply into the caller's buffer.
 *
 * Why: a pipelined GET that goes through TypeScript pays for a parsed request,
 * a command lookup, a promise, a value cache lookup and a reply object, about
 * 10 us of the event loop here; RocksDB's own lookup is about 2 us of that.
 *
 * What it takes is deliberately narrow, so that everything it does not take is
 * answered by the TypeScript path with Redis's rules (errors, limits, other
 * commands): only the canonical frame
 *
 *   *2\r\n$3\r\nGET\r\n$<len>\r\n<key>\r\n     (GET in any case)
 *
 * with <len> in decimal without leading zeros and at most key_max. It stops
 * before the first request that is anything else or is cut short, before a key
 * whose read would touch a file (the read options given read only memory: the
 * engine's worker threads serve those), before a RocksDB error, before a stored
 * value it does not recognise, and before a reply that does not fit. The
 * caller re-reads from where it stopped.
 *
 * Stored values are the node's layout (node/commands/kv_model.ts):
 * [type 1] [flags, bit 0 = expiry] [expiry ms, int64 big-endian]? [bytes].
 * A value whose expiry is before `now` is answered as missing, as GET does.
 *
 * With a value cache (value_cache.c, the node's), a key is looked up there
 * first, and a value read from RocksDB is put there: the read and the fill are
 * one step of the JavaScript thread, so no write can begin or end between them
 * (node/value_cache.ts explains why that is the condition).
 *
 * Links to nothing but libc: the RocksDB functions come in `fns`, taken from
 * the librocksdb the engine loaded. Built by ./spire beside the engine's
 * helpers (engine/_native).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "value_cache.h"

/* Bumped whenever a signature or the meaning of a result changes (value_cache.c's too). */
#define SPIRE_RESP_ABI 4

typedef struct rocksdb_t rocksdb_t;
typedef struct rocksdb_readoptions_t rocksdb_readoptions_t;
typedef struct rocksdb_pinnableslice_t rocksdb_pinnableslice_t;

/* Why spire_resp_gets stopped (result[4]). */
enum {
  STOP_END = 0,        /* no more bytes, or the next request is not complete yet */
  STOP_OTHER = 1,      /* the next request is not a canonical GET */
  STOP_FULL = 2,       /* the next reply does not fit into the output */
  STOP_NOT_CACHED = 3, /* the next key is not in memory (RocksDB's Incomplete) */
  STOP_ERROR = 4,      /* RocksDB answered another status for the next key */
  STOP_BAD_VALUE = 5,  /* the next key's stored value is not a string of the node's layout */
  STOP_COUNT = 6,      /* commands_max answered */
};

#define KEY_BYTES_MAX 1024
#define USER_KEY_PREFIX 0x75
#define TYPE_STRING 1
#define FLAG_EXPIRY 1

typedef rocksdb_pinnableslice_t* (*get_pinned_fn)(rocksdb_t*, const rocksdb_readoptions_t*,
                                                  const char*, size_t, char**);
typedef const char* (*slice_value_fn)(const rocksdb_pinnableslice_t*, size_t*);
typedef void (*slice_destroy_fn)(rocksdb_pinnableslice_t*);
typedef void (*free_fn)(void*);

/* The ABI version, so that the caller refuses a library built from other sources. */
int32_t spire_resp_abi(void) { return SPIRE_RESP_ABI; }

/*
 * Parses "*<argc>\r\n$3\r\n<name>\r\n" (name in any case) at in[0..len): 0 when the bytes
 * are not that, 1 with *complete = 0 when they are a prefix of it, 1 with *complete = 1 when
 * it is there whole (13 bytes).
 */
static int parse_head(const uint8_t* in, size_t len, char argc, const char* name, int* complete) {
  const char head[8] = {'*', argc, '\r', '\n', '$', '3', '\r', '\n'};
  *complete = 0;
  size_t n = len < 8 ? len : 8;
  if (memcmp(in, head, n) != 0) return 0;
  for (size_t i = 8; i < 11 && i < len; i++) {
    if ((in[i] | 0x20) != name[i - 8]) return 0;
  }
  if (len > 11 && in[11] != '\r') return 0;
  if (len > 12 && in[12] != '\n') return 0;
  *complete = len >= 13;
  return 1;
}

/*
 * Parses a canonical bulk string "$<n>\r\n<bytes>\r\n" at in[i..len), with <n> in decimal
 * without leading zeros and at most max: 0 when the bytes are not one, 1 with *complete = 0
 * when they are a prefix of one, 1 with *complete = 1 and its bytes' offset and length and the
 * offset after it when it is there whole.
 */
static int parse_bulk(const uint8_t* in, size_t len, size_t i, uint32_t max, size_t* at,
                      size_t* n, size_t* next, int* complete) {
  *complete = 0;
  if (i == len) return 1;
  if (in[i] != '$') return 0;
  i++;
  uint64_t k = 0;
  size_t digits = 0;
  while (i < len && in[i] >= '0' && in[i] <= '9') {
    if (digits == 1 && k == 0) return 0; /* a leading zero */
    k = k * 10 + (uint64_t)(in[i] - '0');
    if (k > max) return 0;
    digits++;
    i++;
  }
  if (i == len) return 1;
  if (digits == 0 || in[i] != '\r') return 0;
  if (i + 1 == len) return 1;
  if (in[i + 1] != '\n') return 0;
  i += 2;
  if (len - i < k + 2) return 1;
  if (in[i + k] != '\r' || in[i + k + 1] != '\n') return 0;
  *at = i;
  *n = (size_t)k;
  *next = i + (size_t)k + 2;
  *complete = 1;
  return 1;
}

/* Parses the canonical GET frame at in[0..len); the key's offset and length. */
static int parse_get(const uint8_t* in, size_t len, uint32_t key_max, size_t* key_at,
                     size_t* key_len, size_t* frame_len, int* complete) {
  if (!parse_head(in, len, '2', "get", complete)) return 0;
  if (!*complete) return 1;
  return parse_bulk(in, len, 13, key_max, key_at, key_len, frame_len, complete);
}

/* The number of decimal digits of n. */
static size_t decimal_digits(size_t n) {
  size_t d = 1;
  while (n >= 10) {
    n /= 10;
    d++;
  }
  return d;
}

/* Writes "$<n>\r\n" at out; returns its length. */
static size_t bulk_header(uint8_t* out, size_t n) {
  char digits[20];
  size_t d = 0;
  do {
    digits[d++] = (char)('0' + n % 10);
    n /= 10;
  } while (n > 0);
  out[0] = '$';
  for (size_t j = 0; j < d; j++) out[1 + j] = (uint8_t)digits[d - 1 - j];
  out[1 + d] = '\r';
  out[2 + d] = '\n';
  return d + 3;
}

/*
 * Answers the GET requests at the start of in[in_offset..in_offset + in_len)
 * (cache: the node's value cache, or NULL),
 * at most commands_max of them, writing their replies to
 * out[out_offset..out_offset + out_cap) (a missing or expired key:
 * $-1 in RESP2, _ in RESP3). fns: rocksdb_get_pinned,
 * rocksdb_pinnableslice_value, rocksdb_pinnableslice_destroy, rocksdb_free.
 * result[0] receives the bytes of input consumed, result[1] the bytes of output
 * written, result[2] the hits, result[3] the misses (missing or expired) and
 * result[4] why it stopped (STOP_*). Returns the number of GETs answered.
 */
int32_t spire_resp_gets(void* const* fns, rocksdb_t* db, const rocksdb_readoptions_t* options,
                        spire_cache* cache, const uint8_t* in, uint32_t in_offset,
                        uint32_t in_len, uint8_t* out, uint32_t out_offset, uint32_t out_cap,
                        uint32_t key_max, uint32_t commands_max, int32_t resp3, double now,
                        uint32_t* result) {
  in += in_offset;
  out += out_offset;
  get_pinned_fn get_pinned = (get_pinned_fn)fns[0];
  slice_value_fn slice_value = (slice_value_fn)fns[1];
  slice_destroy_fn slice_destroy = (slice_destroy_fn)fns[2];
  free_fn rocks_free = (free_fn)fns[3];
  if (key_max > KEY_BYTES_MAX) key_max = KEY_BYTES_MAX;
  char key[KEY_BYTES_MAX + 1];
  key[0] = USER_KEY_PREFIX;
  size_t pos = 0, used = 0;
  uint32_t count = 0, hits = 0, misses = 0, stop = STOP_END;
  for (;;) {
    if (count == commands_max) {
      stop = STOP_COUNT;
      break;
    }
    if (pos == in_len) break;
    size_t key_at = 0, key_len = 0, frame_len = 0;
    int complete = 0;
    if (!parse_get(in + pos, in_len - pos, key_max, &key_at, &key_len, &frame_len, &complete)) {
      stop = STOP_OTHER;
      break;
    }
    if (!complete) break;
    memcpy(key + 1, in + pos + key_at, key_len);
    const uint8_t* v = NULL;
    size_t n = 0;
    rocksdb_pinnableslice_t* slice = NULL;
    uint32_t cached_len = 0;
    if (cache != NULL) v = spire_cache_peek(cache, (const uint8_t*)key, key_len + 1, &cached_len);
    int cache_hit = v != NULL;
    if (v != NULL) {
      n = cached_len;
    } else {
      char* err = NULL;
      slice = get_pinned(db, options, key, key_len + 1, &err);
      if (err != NULL) {
        /* Status::Incomplete: the read options read memory only, and the key is not there. */
        stop = strncmp(err, "Result incomplete", 17) == 0 ? STOP_NOT_CACHED : STOP_ERROR;
        rocks_free(err);
        break;
      }
      if (slice != NULL) v = (const uint8_t*)slice_value(slice, &n);
    }
    const uint8_t* payload = NULL;
    size_t payload_len = 0;
    int found = 0;
    if (v != NULL) {
      if (n < 2 || v[0] != TYPE_STRING || (v[1] & ~FLAG_EXPIRY) != 0 ||
          ((v[1] & FLAG_EXPIRY) != 0 && n < 10)) {
        if (slice != NULL) slice_destroy(slice);
        stop = STOP_BAD_VALUE;
        break;
      }
      if (slice != NULL && cache != NULL) {
        spire_cache_put(cache, (const uint8_t*)key, key_len + 1, v, n); /* a read fills it */
      }
      found = 1;
      payload = v + 2;
      payload_len = n - 2;
      if ((v[1] & FLAG_EXPIRY) != 0) {
        uint64_t raw = 0;
        for (int b = 0; b < 8; b++) raw = (raw << 8) | v[2 + b];
        found = !((double)(int64_t)raw < now);
        payload = v + 10;
        payload_len = n - 10;
      }
    }
    size_t need = found ? decimal_digits(payload_len) + payload_len + 5 : 5;
    if (need > (size_t)out_cap - used) {
      if (slice != NULL) slice_destroy(slice);
      stop = STOP_FULL;
      break;
    }
    /* Counted only now: a GET given up above is redone later and counted then. */
    if (cache != NULL) spire_cache_count(cache, cache_hit);
    if (found) {
      used += bulk_header(out + used, payload_len);
      memcpy(out + used, payload, payload_len);
      used += payload_len;
      out[used++] = '\r';
      out[used++] = '\n';
      hits++;
    } else if (resp3) {
      memcpy(out + used, "_\r\n", 3);
      used += 3;
      misses++;
    } else {
      memcpy(out + used, "$-1\r\n", 5);
      used += 5;
      misses++;
    }
    if (slice != NULL) slice_destroy(slice);
    pos += frame_len;
    count++;
  }
  result[0] = (uint32_t)pos;
  result[1] = (uint32_t)used;
  result[2] = hits;
  result[3] = misses;
  result[4] = stop;
  return (int32_t)count;
}

/* Why spire_resp_sets stopped (result[4]), besides STOP_END, STOP_OTHER, STOP_FULL, STOP_COUNT. */
enum { STOP_REGION = 7 }; /* the next SET's key lies outside [lo, hi) */

/* Bytes a SET takes in the plain-SETs layout: two 4-byte lengths, the key and the value. */
#define SET_OVERHEAD_BYTES 8

/* Byte order of keys, as the engine sorts them: memcmp, then the shorter first. */
static int compare_bytes(const uint8_t* a, size_t a_len, const uint8_t* b, size_t b_len) {
  int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
  if (c != 0) return c;
  return a_len < b_len ? -1 : a_len > b_len ? 1 : 0;
}

static void put_u32_be(uint8_t* p, uint32_t n) {
  p[0] = (uint8_t)(n >> 24);
  p[1] = (uint8_t)(n >> 16);
  p[2] = (uint8_t)(n >> 8);
  p[3] = (uint8_t)n;
}

/*
 * Takes the plain SET requests at the start of in[in_offset..in_offset + in_len): only the
 * canonical frame
 *
 *   *3\r\n$3\r\nSET\r\n$<klen>\r\n<key>\r\n$<vlen>\r\n<value>\r\n     (SET in any case)
 *
 * with lengths in decimal without leading zeros, klen <= key_max and vlen <= value_max, and a
 * key in [lo, hi) (hi_len 0: no upper bound). Each is appended to out[out_offset..out_end) in
 * the plain-SETs layout of a region's log ([key length u32 BE][key][value length u32 BE]
 * [value]); nothing is answered here: the caller answers each SET once its write is applied.
 * It stops before the first request that is anything else (STOP_OTHER) or cut short
 * (STOP_END), a key outside the range (STOP_REGION), a SET that does not fit (STOP_FULL), or
 * after commands_max (STOP_COUNT). result[0] receives the input bytes consumed, result[1] the
 * output bytes written, result[4] why it stopped; when it stopped before a whole canonical
 * SET (STOP_REGION, STOP_FULL, STOP_COUNT), result[2] and result[3] receive that SET's key
 * offset (from in_offset) and length, and result[5] the bytes it needs in the output;
 * otherwise result[3] is 0xFFFFFFFF. Returns the number of SETs taken.
 */
int32_t spire_resp_sets(const uint8_t* in, uint32_t in_offset, uint32_t in_len, uint8_t* out,
                        uint32_t out_offset, uint32_t out_end, uint32_t key_max,
                        uint32_t value_max, uint32_t commands_max, const uint8_t* lo,
                        uint32_t lo_len, const uint8_t* hi, uint32_t hi_len, uint32_t* result) {
  in += in_offset;
  size_t pos = 0, used = out_offset;
  uint32_t count = 0, stop = STOP_END;
  result[3] = 0xFFFFFFFFu;
  while (pos < in_len) {
    const uint8_t* f = in + pos;
    size_t len = in_len - pos, key_at = 0, key_len = 0, value_at = 0, value_len = 0, next = 0;
    int complete = 0;
    if (!parse_head(f, len, '3', "set", &complete) ||
        (complete && !parse_bulk(f, len, 13, key_max, &key_at, &key_len, &next, &complete)) ||
        (complete &&
         !parse_bulk(f, len, next, value_max, &value_at, &value_len, &next, &complete))) {
      stop = STOP_OTHER;
      break;
    }
    if (!complete) break;
    size_t need = SET_OVERHEAD_BYTES + key_len + value_len;
    const uint8_t* key = f + key_at;
    if (count == commands_max) stop = STOP_COUNT;
    else if (compare_bytes(key, key_len, lo, lo_len) < 0 ||
             (hi_len > 0 && compare_bytes(key, key_len, hi, hi_len) >= 0)) stop = STOP_REGION;
    else if (used > out_end || need > (size_t)out_end - used) stop = STOP_FULL;
    if (stop != STOP_END) {
      result[2] = (uint32_t)(pos + key_at);
      result[3] = (uint32_t)key_len;
      result[5] = (uint32_t)need;
      break;
    }
    put_u32_be(out + used, (uint32_t)key_len);
    memcpy(out + used + 4, key, key_len);
    used += 4 + key_len;
    put_u32_be(out + used, (uint32_t)value_len);
    memcpy(out + used + 4, f + value_at, value_len);
    used += 4 + value_len;
    pos += next;
    count++;
  }
  result[0] = (uint32_t)pos;
  result[1] = (uint32_t)(used - out_offset);
  result[4] = stop;
  return (int32_t)count;
}
