/**
 * The one table of librocksdb C API symbols that Spire calls (RocksDB 7.8,
 * `rocksdb/c.h`). Each entry carries its C signature as a comment. Slow calls
 * (synced writes, flush, compaction, checkpoint, open, close, reads that miss
 * the block cache) have a `_nb` twin with `nonblocking: true`, which runs on a
 * worker thread and returns a promise.
 *
 * Conventions: `char** errptr` and other out-parameters are passed as
 * `"buffer"` (a reused 8-byte typed array); C strings are NUL-terminated
 * `Uint8Array`s; handles are `"pointer"`.
 *
 * @module
 */

/** The symbol table for `Deno.dlopen`. */
export const SYMBOLS = {
  // void rocksdb_free(void* ptr);
  rocksdb_free: { parameters: ["pointer"], result: "void" },
  // void* memcpy(void* dest, const void* src, size_t n);
  // libc's, found through librocksdb's dependencies. Declared with a void result (the
  // returned dest is not needed): as a fast call it copies native memory into a typed
  // array 3-4x faster than Deno.UnsafePointerView.copyInto.
  memcpy: { parameters: ["buffer", "pointer", "usize"], result: "void" },
  // (same, with the source as a plain address: for arrays of char* filled by MultiGet)
  memcpy_from_address: { name: "memcpy", parameters: ["buffer", "usize", "usize"], result: "void" },
  // void rocksdb_free(void* ptr);   (same, with the pointer as a plain address)
  rocksdb_free_address: { name: "rocksdb_free", parameters: ["usize"], result: "void" },

  // --- options -------------------------------------------------------------
  // rocksdb_options_t* rocksdb_options_create(void);
  rocksdb_options_create: { parameters: [], result: "pointer" },
  // void rocksdb_options_destroy(rocksdb_options_t*);
  rocksdb_options_destroy: { parameters: ["pointer"], result: "void" },
  // void rocksdb_options_set_create_if_missing(rocksdb_options_t*, unsigned char);
  rocksdb_options_set_create_if_missing: { parameters: ["pointer", "u8"], result: "void" },
  // void rocksdb_options_set_compression(rocksdb_options_t*, int);
  rocksdb_options_set_compression: { parameters: ["pointer", "i32"], result: "void" },
  // void rocksdb_options_set_bottommost_compression(rocksdb_options_t*, int);
  rocksdb_options_set_bottommost_compression: { parameters: ["pointer", "i32"], result: "void" },
  // void rocksdb_options_set_write_buffer_size(rocksdb_options_t*, size_t);
  rocksdb_options_set_write_buffer_size: { parameters: ["pointer", "usize"], result: "void" },
  // void rocksdb_options_set_max_write_buffer_number(rocksdb_options_t*, int);
  rocksdb_options_set_max_write_buffer_number: { parameters: ["pointer", "i32"], result: "void" },
  // void rocksdb_options_set_max_background_jobs(rocksdb_options_t*, int);
  rocksdb_options_set_max_background_jobs: { parameters: ["pointer", "i32"], result: "void" },
  // void rocksdb_options_set_ratelimiter(rocksdb_options_t*, rocksdb_ratelimiter_t*);
  rocksdb_options_set_ratelimiter: { parameters: ["pointer", "pointer"], result: "void" },
  // void rocksdb_options_enable_statistics(rocksdb_options_t*);
  rocksdb_options_enable_statistics: { parameters: ["pointer"], result: "void" },
  // char* rocksdb_options_statistics_get_string(rocksdb_options_t* opt);
  rocksdb_options_statistics_get_string: { parameters: ["pointer"], result: "pointer" },
  // void rocksdb_options_set_info_log_level(rocksdb_options_t*, int);
  rocksdb_options_set_info_log_level: { parameters: ["pointer", "i32"], result: "void" },
  // void rocksdb_options_set_keep_log_file_num(rocksdb_options_t*, size_t);
  rocksdb_options_set_keep_log_file_num: { parameters: ["pointer", "usize"], result: "void" },
  // void rocksdb_options_set_compaction_style(rocksdb_options_t*, int);
  rocksdb_options_set_compaction_style: { parameters: ["pointer", "i32"], result: "void" },
  // void rocksdb_options_set_level0_file_num_compaction_trigger(rocksdb_options_t*, int);
  rocksdb_options_set_level0_file_num_compaction_trigger: {
    parameters: ["pointer", "i32"],
    result: "void",
  },
  // void rocksdb_options_set_max_bytes_for_level_base(rocksdb_options_t*, uint64_t);
  rocksdb_options_set_max_bytes_for_level_base: { parameters: ["pointer", "u64"], result: "void" },
  // void rocksdb_options_set_max_bytes_for_level_multiplier(rocksdb_options_t*, double);
  rocksdb_options_set_max_bytes_for_level_multiplier: {
    parameters: ["pointer", "f64"],
    result: "void",
  },
  // void rocksdb_options_set_block_based_table_factory(rocksdb_options_t*,
  //     rocksdb_block_based_table_options_t*);
  rocksdb_options_set_block_based_table_factory: {
    parameters: ["pointer", "pointer"],
    result: "void",
  },

  // --- block-based table, cache, filter, rate limiter ------------------------
  // rocksdb_block_based_table_options_t* rocksdb_block_based_options_create(void);
  rocksdb_block_based_options_create: { parameters: [], result: "pointer" },
  // void rocksdb_block_based_options_destroy(rocksdb_block_based_table_options_t*);
  rocksdb_block_based_options_destroy: { parameters: ["pointer"], result: "void" },
  // void rocksdb_block_based_options_set_block_cache(rocksdb_block_based_table_options_t*,
  //     rocksdb_cache_t*);
  rocksdb_block_based_options_set_block_cache: {
    parameters: ["pointer", "pointer"],
    result: "void",
  },
  // void rocksdb_block_based_options_set_filter_policy(rocksdb_block_based_table_options_t*,
  //     rocksdb_filterpolicy_t*);   (takes ownership of the policy)
  rocksdb_block_based_options_set_filter_policy: {
    parameters: ["pointer", "pointer"],
    result: "void",
  },
  // rocksdb_filterpolicy_t* rocksdb_filterpolicy_create_bloom_full(double bits_per_key);
  rocksdb_filterpolicy_create_bloom_full: { parameters: ["f64"], result: "pointer" },
  // rocksdb_cache_t* rocksdb_cache_create_lru(size_t capacity);
  rocksdb_cache_create_lru: { parameters: ["usize"], result: "pointer" },
  // void rocksdb_cache_destroy(rocksdb_cache_t* cache);
  rocksdb_cache_destroy: { parameters: ["pointer"], result: "void" },
  // void rocksdb_set_perf_level(int);   (per thread: the JavaScript thread's level)
  rocksdb_set_perf_level: { parameters: ["i32"], result: "void" },
  // rocksdb_perfcontext_t* rocksdb_perfcontext_create(void);   (the calling thread's context)
  rocksdb_perfcontext_create: { parameters: [], result: "pointer" },
  // uint64_t rocksdb_perfcontext_metric(rocksdb_perfcontext_t* context, int metric);
  rocksdb_perfcontext_metric: { parameters: ["pointer", "i32"], result: "u64" },
  // void rocksdb_perfcontext_destroy(rocksdb_perfcontext_t* context);
  rocksdb_perfcontext_destroy: { parameters: ["pointer"], result: "void" },
  // size_t rocksdb_cache_get_capacity(rocksdb_cache_t* cache);
  rocksdb_cache_get_capacity: { parameters: ["pointer"], result: "usize" },
  // size_t rocksdb_cache_get_usage(rocksdb_cache_t* cache);
  rocksdb_cache_get_usage: { parameters: ["pointer"], result: "usize" },
  // size_t rocksdb_cache_get_pinned_usage(rocksdb_cache_t* cache);
  rocksdb_cache_get_pinned_usage: { parameters: ["pointer"], result: "usize" },
  // rocksdb_ratelimiter_t* rocksdb_ratelimiter_create(int64_t rate_bytes_per_sec,
  //     int64_t refill_period_us, int32_t fairness);
  rocksdb_ratelimiter_create: { parameters: ["i64", "i64", "i32"], result: "pointer" },
  // void rocksdb_ratelimiter_destroy(rocksdb_ratelimiter_t*);
  rocksdb_ratelimiter_destroy: { parameters: ["pointer"], result: "void" },

  // --- database ----------------------------------------------------------------
  // rocksdb_t* rocksdb_open(const rocksdb_options_t* options, const char* name, char** errptr);
  rocksdb_open_nb: {
    name: "rocksdb_open",
    parameters: ["pointer", "buffer", "buffer"],
    result: "pointer",
    nonblocking: true,
  },
  // void rocksdb_close(rocksdb_t* db);
  rocksdb_close_nb: {
    name: "rocksdb_close",
    parameters: ["pointer"],
    result: "void",
    nonblocking: true,
  },
  // void rocksdb_close(rocksdb_t* db);   (the synchronous form, for the finalizer backstop)
  rocksdb_close: { parameters: ["pointer"], result: "void" },
  // void rocksdb_put(rocksdb_t* db, const rocksdb_writeoptions_t* options, const char* key,
  //     size_t keylen, const char* val, size_t vallen, char** errptr);
  rocksdb_put: {
    parameters: ["pointer", "pointer", "buffer", "usize", "buffer", "usize", "buffer"],
    result: "void",
  },
  // void rocksdb_delete(rocksdb_t* db, const rocksdb_writeoptions_t* options, const char* key,
  //     size_t keylen, char** errptr);
  rocksdb_delete: {
    parameters: ["pointer", "pointer", "buffer", "usize", "buffer"],
    result: "void",
  },
  // void rocksdb_write(rocksdb_t* db, const rocksdb_writeoptions_t* options,
  //     rocksdb_writebatch_t* batch, char** errptr);
  rocksdb_write: { parameters: ["pointer", "pointer", "pointer", "buffer"], result: "void" },
  // (same, on a worker thread: used for synced writes)
  rocksdb_write_nb: {
    name: "rocksdb_write",
    parameters: ["pointer", "pointer", "pointer", "buffer"],
    result: "void",
    nonblocking: true,
  },
  // char* rocksdb_get(rocksdb_t* db, const rocksdb_readoptions_t* options, const char* key,
  //     size_t keylen, size_t* vallen, char** errptr);
  rocksdb_get: {
    parameters: ["pointer", "pointer", "buffer", "usize", "buffer", "buffer"],
    result: "pointer",
  },
  // (same, on a worker thread: used when the block-cache-only read answers Incomplete)
  rocksdb_get_nb: {
    name: "rocksdb_get",
    parameters: ["pointer", "pointer", "buffer", "usize", "buffer", "buffer"],
    result: "pointer",
    nonblocking: true,
  },
  // void rocksdb_multi_get(rocksdb_t* db, const rocksdb_readoptions_t* options,
  //     size_t num_keys, const char* const* keys_list, const size_t* keys_list_sizes,
  //     char** values_list, size_t* values_list_sizes, char** errs);
  rocksdb_multi_get: {
    parameters: ["pointer", "pointer", "usize", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "void",
  },
  // (same, on a worker thread)
  rocksdb_multi_get_nb: {
    name: "rocksdb_multi_get",
    parameters: ["pointer", "pointer", "usize", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "void",
    nonblocking: true,
  },
  // void rocksdb_flush(rocksdb_t* db, const rocksdb_flushoptions_t* options, char** errptr);
  rocksdb_flush_nb: {
    name: "rocksdb_flush",
    parameters: ["pointer", "pointer", "buffer"],
    result: "void",
    nonblocking: true,
  },
  // void rocksdb_compact_range_opt(rocksdb_t* db, rocksdb_compactoptions_t* opt,
  //     const char* start_key, size_t start_key_len, const char* limit_key, size_t limit_key_len);
  rocksdb_compact_range_opt_nb: {
    name: "rocksdb_compact_range_opt",
    parameters: ["pointer", "pointer", "buffer", "usize", "buffer", "usize"],
    result: "void",
    nonblocking: true,
  },
  // rocksdb_compactoptions_t* rocksdb_compactoptions_create(void);
  rocksdb_compactoptions_create: { parameters: [], result: "pointer" },
  // void rocksdb_compactoptions_destroy(rocksdb_compactoptions_t*);
  rocksdb_compactoptions_destroy: { parameters: ["pointer"], result: "void" },
  // void rocksdb_compactoptions_set_bottommost_level_compaction(rocksdb_compactoptions_t*,
  //     unsigned char);  (0 skip, 1 if a compaction filter, 2 force, 3 force optimized)
  rocksdb_compactoptions_set_bottommost_level_compaction: {
    parameters: ["pointer", "u8"],
    result: "void",
  },
  // int rocksdb_property_int(rocksdb_t* db, const char* propname, uint64_t* out_val);
  rocksdb_property_int: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  // char* rocksdb_property_value(rocksdb_t* db, const char* propname);
  rocksdb_property_value: { parameters: ["pointer", "buffer"], result: "pointer" },
  // const rocksdb_livefiles_t* rocksdb_livefiles(rocksdb_t* db);
  rocksdb_livefiles: { parameters: ["pointer"], result: "pointer" },
  // int rocksdb_livefiles_count(const rocksdb_livefiles_t*);
  rocksdb_livefiles_count: { parameters: ["pointer"], result: "i32" },
  // int rocksdb_livefiles_level(const rocksdb_livefiles_t*, int index);
  rocksdb_livefiles_level: { parameters: ["pointer", "i32"], result: "i32" },
  // size_t rocksdb_livefiles_size(const rocksdb_livefiles_t*, int index);
  rocksdb_livefiles_size: { parameters: ["pointer", "i32"], result: "usize" },
  // void rocksdb_livefiles_destroy(const rocksdb_livefiles_t*);
  rocksdb_livefiles_destroy: { parameters: ["pointer"], result: "void" },

  // --- read, write and flush options ----------------------------------------------
  // rocksdb_readoptions_t* rocksdb_readoptions_create(void);
  rocksdb_readoptions_create: { parameters: [], result: "pointer" },
  // void rocksdb_readoptions_destroy(rocksdb_readoptions_t*);
  rocksdb_readoptions_destroy: { parameters: ["pointer"], result: "void" },
  // void rocksdb_readoptions_set_read_tier(rocksdb_readoptions_t*, int);  (1 = kBlockCacheTier)
  rocksdb_readoptions_set_read_tier: { parameters: ["pointer", "i32"], result: "void" },
  // void rocksdb_readoptions_set_snapshot(rocksdb_readoptions_t*, const rocksdb_snapshot_t*);
  rocksdb_readoptions_set_snapshot: { parameters: ["pointer", "pointer"], result: "void" },
  // void rocksdb_readoptions_set_iterate_upper_bound(rocksdb_readoptions_t*, const char* key,
  //     size_t keylen);   (the key must outlive the iterator)
  rocksdb_readoptions_set_iterate_upper_bound: {
    parameters: ["pointer", "pointer", "usize"],
    result: "void",
  },
  // void rocksdb_readoptions_set_iterate_lower_bound(rocksdb_readoptions_t*, const char* key,
  //     size_t keylen);   (the key must outlive the iterator)
  rocksdb_readoptions_set_iterate_lower_bound: {
    parameters: ["pointer", "pointer", "usize"],
    result: "void",
  },
  // rocksdb_writeoptions_t* rocksdb_writeoptions_create(void);
  rocksdb_writeoptions_create: { parameters: [], result: "pointer" },
  // void rocksdb_writeoptions_destroy(rocksdb_writeoptions_t*);
  rocksdb_writeoptions_destroy: { parameters: ["pointer"], result: "void" },
  // void rocksdb_writeoptions_set_sync(rocksdb_writeoptions_t*, unsigned char);
  rocksdb_writeoptions_set_sync: { parameters: ["pointer", "u8"], result: "void" },
  // void rocksdb_writeoptions_set_no_slowdown(rocksdb_writeoptions_t*, unsigned char);
  rocksdb_writeoptions_set_no_slowdown: { parameters: ["pointer", "u8"], result: "void" },
  // rocksdb_flushoptions_t* rocksdb_flushoptions_create(void);
  rocksdb_flushoptions_create: { parameters: [], result: "pointer" },
  // void rocksdb_flushoptions_destroy(rocksdb_flushoptions_t*);
  rocksdb_flushoptions_destroy: { parameters: ["pointer"], result: "void" },
  // void rocksdb_flushoptions_set_wait(rocksdb_flushoptions_t*, unsigned char);
  rocksdb_flushoptions_set_wait: { parameters: ["pointer", "u8"], result: "void" },

  // --- write batch ----------------------------------------------------------------
  // rocksdb_writebatch_t* rocksdb_writebatch_create(void);
  rocksdb_writebatch_create: { parameters: [], result: "pointer" },
  // rocksdb_writebatch_t* rocksdb_writebatch_create_from(const char* rep, size_t size);
  rocksdb_writebatch_create_from: { parameters: ["buffer", "usize"], result: "pointer" },
  // const char* rocksdb_writebatch_data(rocksdb_writebatch_t*, size_t* size);
  rocksdb_writebatch_data: { parameters: ["pointer", "buffer"], result: "pointer" },
  // void rocksdb_writebatch_destroy(rocksdb_writebatch_t*);
  rocksdb_writebatch_destroy: { parameters: ["pointer"], result: "void" },
  // void rocksdb_writebatch_clear(rocksdb_writebatch_t*);
  rocksdb_writebatch_clear: { parameters: ["pointer"], result: "void" },
  // int rocksdb_writebatch_count(rocksdb_writebatch_t*);
  rocksdb_writebatch_count: { parameters: ["pointer"], result: "i32" },
  // void rocksdb_writebatch_put(rocksdb_writebatch_t*, const char* key, size_t klen,
  //     const char* val, size_t vlen);
  rocksdb_writebatch_put: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize"],
    result: "void",
  },
  // void rocksdb_writebatch_delete(rocksdb_writebatch_t*, const char* key, size_t klen);
  rocksdb_writebatch_delete: { parameters: ["pointer", "buffer", "usize"], result: "void" },
  // void rocksdb_writebatch_delete_range(rocksdb_writebatch_t* b, const char* start_key,
  //     size_t start_key_len, const char* end_key, size_t end_key_len);
  rocksdb_writebatch_delete_range: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize"],
    result: "void",
  },

  // --- iterator ---------------------------------------------------------------------
  // rocksdb_iterator_t* rocksdb_create_iterator(rocksdb_t* db, const rocksdb_readoptions_t*);
  rocksdb_create_iterator: { parameters: ["pointer", "pointer"], result: "pointer" },
  // void rocksdb_iter_destroy(rocksdb_iterator_t*);
  rocksdb_iter_destroy: { parameters: ["pointer"], result: "void" },
  // unsigned char rocksdb_iter_valid(const rocksdb_iterator_t*);
  rocksdb_iter_valid: { parameters: ["pointer"], result: "u8" },
  // void rocksdb_iter_seek(rocksdb_iterator_t*, const char* k, size_t klen);
  rocksdb_iter_seek: { parameters: ["pointer", "buffer", "usize"], result: "void" },
  // void rocksdb_iter_seek_to_first(rocksdb_iterator_t*);
  rocksdb_iter_seek_to_first: { parameters: ["pointer"], result: "void" },
  // void rocksdb_iter_seek_to_last(rocksdb_iterator_t*);
  rocksdb_iter_seek_to_last: { parameters: ["pointer"], result: "void" },
  // void rocksdb_iter_next(rocksdb_iterator_t*);
  rocksdb_iter_next: { parameters: ["pointer"], result: "void" },
  // void rocksdb_iter_prev(rocksdb_iterator_t*);
  rocksdb_iter_prev: { parameters: ["pointer"], result: "void" },
  // const char* rocksdb_iter_key(const rocksdb_iterator_t*, size_t* klen);
  rocksdb_iter_key: { parameters: ["pointer", "buffer"], result: "pointer" },
  // const char* rocksdb_iter_value(const rocksdb_iterator_t*, size_t* vlen);
  rocksdb_iter_value: { parameters: ["pointer", "buffer"], result: "pointer" },
  // void rocksdb_iter_get_error(const rocksdb_iterator_t*, char** errptr);
  rocksdb_iter_get_error: { parameters: ["pointer", "buffer"], result: "void" },

  // --- snapshot and checkpoint ------------------------------------------------------------
  // const rocksdb_snapshot_t* rocksdb_create_snapshot(rocksdb_t* db);
  rocksdb_create_snapshot: { parameters: ["pointer"], result: "pointer" },
  // void rocksdb_release_snapshot(rocksdb_t* db, const rocksdb_snapshot_t* snapshot);
  rocksdb_release_snapshot: { parameters: ["pointer", "pointer"], result: "void" },
  // rocksdb_checkpoint_t* rocksdb_checkpoint_object_create(rocksdb_t* db, char** errptr);
  rocksdb_checkpoint_object_create: { parameters: ["pointer", "buffer"], result: "pointer" },
  // void rocksdb_checkpoint_create(rocksdb_checkpoint_t* checkpoint, const char* checkpoint_dir,
  //     uint64_t log_size_for_flush, char** errptr);
  rocksdb_checkpoint_create_nb: {
    name: "rocksdb_checkpoint_create",
    parameters: ["pointer", "buffer", "u64", "buffer"],
    result: "void",
    nonblocking: true,
  },
  // void rocksdb_checkpoint_object_destroy(rocksdb_checkpoint_t* checkpoint);
  rocksdb_checkpoint_object_destroy: { parameters: ["pointer"], result: "void" },

  // void rocksdb_options_set_memtable_prefix_bloom_size_ratio(rocksdb_options_t*, double ratio);
  rocksdb_options_set_memtable_prefix_bloom_size_ratio: {
    parameters: ["pointer", "f64"],
    result: "void",
  },
  // void rocksdb_options_set_memtable_whole_key_filtering(rocksdb_options_t*, unsigned char);
  rocksdb_options_set_memtable_whole_key_filtering: {
    parameters: ["pointer", "u8"],
    result: "void",
  },

  // --- function addresses, handed to Spire's native helpers (./helpers.ts) ----
  // rocksdb_pinnableslice_t* rocksdb_get_pinned(rocksdb_t*, const rocksdb_readoptions_t*,
  //     const char* key, size_t keylen, char** errptr);
  rocksdb_get_pinned_fn: { name: "rocksdb_get_pinned", type: "pointer" },
  // const char* rocksdb_pinnableslice_value(const rocksdb_pinnableslice_t*, size_t* vlen);
  rocksdb_pinnableslice_value_fn: { name: "rocksdb_pinnableslice_value", type: "pointer" },
  // void rocksdb_pinnableslice_destroy(rocksdb_pinnableslice_t*);
  rocksdb_pinnableslice_destroy_fn: { name: "rocksdb_pinnableslice_destroy", type: "pointer" },
  // (the iterator functions above)
  rocksdb_iter_valid_fn: { name: "rocksdb_iter_valid", type: "pointer" },
  rocksdb_iter_key_fn: { name: "rocksdb_iter_key", type: "pointer" },
  rocksdb_iter_value_fn: { name: "rocksdb_iter_value", type: "pointer" },
  rocksdb_iter_next_fn: { name: "rocksdb_iter_next", type: "pointer" },
  rocksdb_iter_prev_fn: { name: "rocksdb_iter_prev", type: "pointer" },
  rocksdb_set_perf_level_fn: { name: "rocksdb_set_perf_level", type: "pointer" },
  rocksdb_perfcontext_metric_fn: { name: "rocksdb_perfcontext_metric", type: "pointer" },
  // void rocksdb_free(void* ptr);   (for native code that frees RocksDB's error strings)
  rocksdb_free_fn: { name: "rocksdb_free", type: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded library's callable symbols. */
export type RocksDbSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
