/*
 * Spire's native helpers: a few loops over RocksDB's C API that would
 * otherwise cross the FFI boundary several times per row.
 *
 * Why: under Deno's FFI a call that returns a pointer (rocksdb_get,
 * rocksdb_iter_key, rocksdb_iter_value) takes the slow path, about 250 ns
 * against 40 ns for a call returning an int (measured with Deno 2.9). A scan
 * made three such calls and three more per row. Here one call copies a whole
 * batch of rows, or one value, straight into the caller's buffer.
 *
 * The helpers link to nothing but libc: spire_init receives the addresses of
 * the C API functions from the librocksdb that the engine loaded, so both
 * always use the same library. Only RocksDB's C API is called; no C++.
 *
 * Built by ./spire (cc -O2 -shared -fPIC) into .build/; without it the engine
 * makes the same calls from TypeScript (engine/engine.ts), slower.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Bumped whenever a signature below changes; the engine refuses other versions. */
#define SPIRE_HELPERS_ABI 6

typedef struct rocksdb_t rocksdb_t;
typedef struct rocksdb_readoptions_t rocksdb_readoptions_t;
typedef struct rocksdb_iterator_t rocksdb_iterator_t;
typedef struct rocksdb_pinnableslice_t rocksdb_pinnableslice_t;
typedef struct rocksdb_perfcontext_t rocksdb_perfcontext_t;

#define FUNCTION_COUNT 10
/* RocksDB's rocksdb_enable_count and rocksdb_block_read_count (rocksdb/c.h). */
#define PERF_LEVEL_ENABLE_COUNT 2
#define PERF_BLOCK_READ_COUNT 2

static rocksdb_pinnableslice_t* (*get_pinned)(rocksdb_t*, const rocksdb_readoptions_t*,
                                              const char*, size_t, char**);
static const char* (*pinnableslice_value)(const rocksdb_pinnableslice_t*, size_t*);
static void (*pinnableslice_destroy)(rocksdb_pinnableslice_t*);
static unsigned char (*iter_valid)(const rocksdb_iterator_t*);
static const char* (*iter_key)(const rocksdb_iterator_t*, size_t*);
static const char* (*iter_value)(const rocksdb_iterator_t*, size_t*);
static void (*iter_next)(rocksdb_iterator_t*);
static void (*iter_prev)(rocksdb_iterator_t*);
static void (*set_perf_level)(int);
static uint64_t (*perfcontext_metric)(rocksdb_perfcontext_t*, int);

/*
 * Takes the C API's functions, in this order: rocksdb_get_pinned,
 * rocksdb_pinnableslice_value, rocksdb_pinnableslice_destroy,
 * rocksdb_iter_valid, rocksdb_iter_key, rocksdb_iter_value, rocksdb_iter_next,
 * rocksdb_iter_prev, rocksdb_set_perf_level, rocksdb_perfcontext_metric.
 * Returns SPIRE_HELPERS_ABI, or 0 if a function is missing, count is not
 * FUNCTION_COUNT, or the helpers already serve another librocksdb in this
 * process (an engine opened on that one then makes the calls itself).
 */
int32_t spire_init(void* const* fns, int32_t count) {
  if (count != FUNCTION_COUNT) return 0;
  for (int i = 0; i < FUNCTION_COUNT; i++) {
    if (fns[i] == NULL) return 0;
  }
  if (get_pinned != NULL && (void*)get_pinned != fns[0]) return 0;
  get_pinned = fns[0];
  pinnableslice_value = fns[1];
  pinnableslice_destroy = fns[2];
  iter_valid = fns[3];
  iter_key = fns[4];
  iter_value = fns[5];
  iter_next = fns[6];
  iter_prev = fns[7];
  set_perf_level = fns[8];
  perfcontext_metric = fns[9];
  return SPIRE_HELPERS_ABI;
}

/*
 * Point read into the caller's buffer at out + offset. Returns 1 (found: the
 * value is in out[offset..offset + *value_len)), 0 (not found), 2 (found, but
 * longer than capacity: nothing copied), or -1 (RocksDB's status is in
 * *errptr, malloc'ed). Lengths are 32-bit so that every argument is one that
 * Deno passes on its fast path.
 */
static int32_t spire_get(rocksdb_t* db, const rocksdb_readoptions_t* options, const char* key,
                         uint32_t key_len, char* out, uint32_t offset, uint32_t capacity,
                         uint32_t* value_len, char** errptr) {
  rocksdb_pinnableslice_t* slice = get_pinned(db, options, key, key_len, errptr);
  if (*errptr != NULL) return -1;
  if (slice == NULL) return 0;
  size_t length = 0;
  const char* value = pinnableslice_value(slice, &length);
  int32_t result = 2;
  if (length <= capacity) {
    memcpy(out + offset, value, length);
    *value_len = (uint32_t)length;
    result = 1;
  }
  pinnableslice_destroy(slice);
  return result;
}

/*
 * spire_get with the calling thread's perf context counting on (counters only,
 * no timers): *blocks_read receives how many blocks the read took from files,
 * 0 when the block cache and memtables served it (perf NULL: not counted). Two perf context reads
 * from JavaScript cost more than the rest of a cached read (their 64-bit
 * results leave Deno's fast path).
 */
int32_t spire_get_counted(rocksdb_t* db, const rocksdb_readoptions_t* options,
                          const char* key, uint32_t key_len, char* out, uint32_t offset,
                          uint32_t capacity, uint32_t* value_len, char** errptr,
                          rocksdb_perfcontext_t* perf, uint32_t* blocks_read) {
  if (perf == NULL) {  /* not counted: a plain spire_get */
    return spire_get(db, options, key, key_len, out, offset, capacity, value_len, errptr);
  }
  set_perf_level(PERF_LEVEL_ENABLE_COUNT);
  uint64_t before = perfcontext_metric(perf, PERF_BLOCK_READ_COUNT);
  int32_t result = spire_get(db, options, key, key_len, out, offset, capacity, value_len, errptr);
  *blocks_read = (uint32_t)(perfcontext_metric(perf, PERF_BLOCK_READ_COUNT) - before);
  return result;
}

/*
 * Copies up to `rows` rows from the iterator's position into
 * out[offset..offset + capacity),
 * each key followed by its value (no value when keys_only), and moves the
 * iterator past them (backwards when reverse). lengths[2i] and lengths[2i+1]
 * receive row i's key and value lengths. Stops early when the iterator is no
 * longer valid (the caller checks rocksdb_iter_get_error) or when the next row
 * does not fit. Returns the number of rows copied; when not even the first row
 * fits, returns -1 with its lengths in lengths[0] and lengths[1] and the
 * iterator where it was.
 */
int32_t spire_iter_read(rocksdb_iterator_t* it, int32_t rows, int32_t keys_only,
                        int32_t reverse, char* out, uint32_t offset, uint32_t capacity,
                        uint32_t* lengths) {
  size_t used = 0;
  out += offset;
  int32_t count = 0;
  while (count < rows && iter_valid(it)) {
    size_t key_len = 0;
    size_t value_len = 0;
    const char* key = iter_key(it, &key_len);
    const char* value = keys_only ? NULL : iter_value(it, &value_len);
    if (key_len + value_len > capacity - used) {
      if (count > 0) break;
      lengths[0] = (uint32_t)key_len;
      lengths[1] = (uint32_t)value_len;
      return -1;
    }
    memcpy(out + used, key, key_len);
    used += key_len;
    if (value_len > 0) memcpy(out + used, value, value_len);
    used += value_len;
    lengths[2 * count] = (uint32_t)key_len;
    lengths[2 * count + 1] = (uint32_t)value_len;
    count++;
    if (reverse) iter_prev(it);
    else iter_next(it);
  }
  return count;
}

/*
 * Walks at most `rows` rows forward from the iterator's position and copies
 * into out the keys of the rows whose value carries a deadline that has passed:
 * value[flag_offset] & flag_mask is set and the big-endian int64 at
 * deadline_offset is below `now` (a double: Deno passes it on its fast path,
 * and milliseconds since the epoch are exact in it). lengths[i] receives match
 * i's key length, at most lengths_cap matches. Stops early, before a row it
 * has not examined, when the next match would not fit. *examined receives the
 * rows walked past. Returns the number of matches. The caller checks
 * rocksdb_iter_valid (and its error) afterwards.
 */
int32_t spire_iter_expired(rocksdb_iterator_t* it, int32_t rows, uint32_t flag_offset,
                           uint32_t flag_mask, uint32_t deadline_offset, double now,
                           char* out, uint32_t capacity, uint32_t* lengths,
                           uint32_t lengths_cap, uint32_t* examined) {
  size_t used = 0;
  int32_t walked = 0;
  uint32_t count = 0;
  while (walked < rows && iter_valid(it)) {
    size_t value_len = 0;
    const unsigned char* value = (const unsigned char*)iter_value(it, &value_len);
    if (value_len > flag_offset && (value[flag_offset] & flag_mask) != 0 &&
        value_len >= (size_t)deadline_offset + 8) {
      uint64_t raw = 0;
      for (int b = 0; b < 8; b++) raw = (raw << 8) | value[deadline_offset + b];
      if ((double)(int64_t)raw < now) {
        size_t key_len = 0;
        const char* key = iter_key(it, &key_len);
        if (count == lengths_cap || key_len > capacity - used) break;
        memcpy(out + used, key, key_len);
        used += key_len;
        lengths[count++] = (uint32_t)key_len;
      }
    }
    walked++;
    iter_next(it);
  }
  *examined = (uint32_t)walked;
  return (int32_t)count;
}

/*
 * Walks at most `rows` rows forward from the iterator's position without
 * copying anything. out[0] += the rows' key and value lengths. When flag_mask
 * is not 0, rows whose value holds a deadline (as in spire_iter_expired) are
 * counted in out[1]; those whose deadline is not below `now` in out[2], and
 * out[3] += their deadline - now. Doubles: exact up to 2^53. Returns the number
 * of rows walked. The caller checks rocksdb_iter_valid (and its error) afterwards.
 */
int32_t spire_iter_measure(rocksdb_iterator_t* it, int32_t rows, uint32_t flag_offset,
                           uint32_t flag_mask, uint32_t deadline_offset, double now,
                           double* out) {
  int32_t walked = 0;
  double bytes = 0, deadlines = 0, pending = 0, pending_sum = 0;
  while (walked < rows && iter_valid(it)) {
    size_t key_len = 0;
    size_t value_len = 0;
    iter_key(it, &key_len);
    const unsigned char* value = (const unsigned char*)iter_value(it, &value_len);
    bytes += (double)(key_len + value_len);
    if (flag_mask != 0 && value_len > flag_offset && (value[flag_offset] & flag_mask) != 0 &&
        value_len >= (size_t)deadline_offset + 8) {
      uint64_t raw = 0;
      for (int b = 0; b < 8; b++) raw = (raw << 8) | value[deadline_offset + b];
      double deadline = (double)(int64_t)raw;
      deadlines += 1;
      if (!(deadline < now)) {
        pending += 1;
        pending_sum += deadline - now;
      }
    }
    walked++;
    iter_next(it);
  }
  out[0] += bytes;
  out[1] += deadlines;
  out[2] += pending;
  out[3] += pending_sum;
  return walked;
}
