import assert from "node:assert/strict";
import { formatSize, parseSize } from "./units.ts";

Deno.test("parseSize reads bytes and binary units, case-insensitively, with fractions", () => {
  const cases: [string, number][] = [
    ["0", 0],
    ["4096", 4096],
    ["512B", 512],
    ["64KiB", 65536],
    ["64kib", 65536],
    ["512MiB", 536870912],
    ["2GiB", 2147483648],
    ["1TiB", 1099511627776],
    ["1.5GiB", 1610612736],
    [" 8 MiB ", 8388608],
  ];
  for (const [text, bytes] of cases) assert.equal(parseSize(text), bytes, text);
});

Deno.test("parseSize refuses decimal, ambiguous and unknown units, fractions of a byte and junk", () => {
  const cases: [string, RegExp][] = [
    ["64KB", /ambiguous unit "KB": write 64KiB/],
    ["1G", /ambiguous unit "G": write 1GiB/],
    ["10mb", /ambiguous unit "mb"/],
    ["3PiB", /unknown unit "PiB"/],
    ["0.3KiB", /not a whole number of bytes/],
    ["-5", /is negative/],
    ["", /is empty/],
    ["1e9", /"1e9" is not a size/],
    ["12 34", /is not a size/],
    ["99999999999TiB", /is too large/],
  ];
  for (const [text, pattern] of cases) {
    assert.throws(() => parseSize(text), (e) => e instanceof RangeError && pattern.test(e.message));
  }
});

Deno.test("formatSize picks the largest exact binary unit and round-trips through parseSize", () => {
  assert.equal(formatSize(0), "0B");
  assert.equal(formatSize(1000), "1000B");
  assert.equal(formatSize(1536), "1536B");
  assert.equal(formatSize(65536), "64KiB");
  assert.equal(formatSize(2560 * 1024 ** 2), "2560MiB");
  assert.equal(formatSize(2 * 1024 ** 3), "2GiB");
  for (const n of [0, 1, 1023, 1024, 3 * 1024 ** 2, 7 * 1024 ** 4]) {
    assert.equal(parseSize(formatSize(n)), n);
  }
  assert.throws(() => formatSize(-1), RangeError);
  assert.throws(() => formatSize(1.5), RangeError);
});
