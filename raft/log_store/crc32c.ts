/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of the
 * region log's records. Slicing-by-8 tables are built per instance, so there
 * is no module-level mutable state.
 *
 * @module
 */

/**
 * Computes CRC-32C checksums.
 *
 * @example
 * ```ts
 * import { Crc32c } from "./crc32c.ts";
 * const crc = new Crc32c();
 * // The standard check value of CRC-32C.
 * if (crc.compute(new TextEncoder().encode("123456789")) !== 0xe3069283) throw new Error("bad crc");
 * ```
 */
export class Crc32c {
  readonly #tables: Uint32Array[];

  constructor() {
    const t0 = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      t0[i] = c >>> 0;
    }
    const tables = [t0];
    for (let t = 1; t < 8; t++) {
      const prev = tables[t - 1]!;
      const cur = new Uint32Array(256);
      for (let i = 0; i < 256; i++) cur[i] = (prev[i]! >>> 8) ^ t0[prev[i]! & 0xff]!;
      tables.push(cur);
    }
    this.#tables = tables;
  }

  /**
   * Checksums a range of bytes.
   * @param data bytes to checksum
   * @param start first byte (default 0)
   * @param end one past the last byte (default `data.length`)
   * @returns the CRC-32C of `data[start, end)` as an unsigned 32-bit integer
   */
  compute(data: Uint8Array, start = 0, end = data.length): number {
    const [t0, t1, t2, t3, t4, t5, t6, t7] = this.#tables as [
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
      Uint32Array,
    ];
    let c = 0xffffffff;
    let i = start;
    for (; i + 8 <= end; i += 8) {
      const lo = c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
      c = t7[lo & 0xff]! ^ t6[(lo >>> 8) & 0xff]! ^ t5[(lo >>> 16) & 0xff]! ^ t4[lo >>> 24]! ^
        t3[data[i + 4]!]! ^ t2[data[i + 5]!]! ^ t1[data[i + 6]!]! ^ t0[data[i + 7]!]!;
    }
    for (; i < end; i++) c = (c >>> 8) ^ t0[(c ^ data[i]!) & 0xff]!;
    return (c ^ 0xffffffff) >>> 0;
  }
}
