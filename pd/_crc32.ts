/**
 * CRC-32 (IEEE 802.3, as in zlib) for PD metadata files. Private to pd/.
 *
 * @module
 */

function makeTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

const TABLE: Readonly<Uint32Array> = makeTable();

/** CRC-32 of `data` (crc32("123456789") === 0xcbf43926). */
export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) c = TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
