import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bitsPerWeight, chooseByMemory, formatBytes, precisionName } from './precision.js';

test('precision order: F32 > BF16 = F16 > Q8_0 > Q6_K > Q5_K_M > Q4_K_M > Q3_K_M > Q2_K > IQ1_S', () => {
  const order = ['F32', 'BF16', 'F16', 'Q8_0', 'Q6_K', 'Q5_K_M', 'Q4_K_M', 'Q3_K_M', 'Q2_K', 'IQ1_S'];
  const bits = order.map((q) => bitsPerWeight(q)!);
  for (let i = 1; i < bits.length; i++) assert.ok(bits[i - 1]! >= bits[i]!, `${order[i - 1]} ≥ ${order[i]}`);
  assert.equal(bitsPerWeight('BF16'), bitsPerWeight('F16'));
  assert.equal(bitsPerWeight('q4_k_m'), bitsPerWeight('Q4_K_M'), 'case does not matter');
  assert.equal(bitsPerWeight('float16'), 16);
  assert.equal(bitsPerWeight('bfloat16'), 16);
  assert.equal(bitsPerWeight('int8'), 8);
  assert.equal(bitsPerWeight('FP8'), 8);
  // not in the table: derived from the name
  const q5x = bitsPerWeight('Q5_K_X')!;
  assert.ok(q5x > bitsPerWeight('Q4_K_M')! && q5x < bitsPerWeight('Q6_K')!);
  assert.equal(bitsPerWeight('gguf'), undefined);
  assert.equal(bitsPerWeight(undefined), undefined);
  assert.equal(precisionName('float16'), 'F16');
  assert.equal(precisionName('bfloat16'), 'BF16');
  assert.equal(precisionName('int4'), undefined);
});

test('chooseByMemory: the highest precision whose weights fit 80% of the memory, and why', () => {
  const GiB = 1024 ** 3;
  const c = [
    { item: 'f16', name: 'F16', weightBytes: 14.4 * GiB },
    { item: 'q8', name: 'Q8_0', weightBytes: 7.2 * GiB },
    { item: 'q4', name: 'Q4_K_M', weightBytes: 4.1 * GiB },
  ];
  const r = chooseByMemory(c, 16 * GiB);
  assert.equal(r.choice?.chosen.item, 'q8');
  assert.equal(r.choice?.reason, 'chose Q8_0 (7.2 GiB of weights; 16.0 GiB available); F16 needs 18.0 GiB (14.4 GiB of weights)');
  assert.equal(chooseByMemory(c, 18 * GiB).choice?.chosen.item, 'f16', '14.4 ≤ 0.8 × 18');
  assert.equal(chooseByMemory(c, 6 * GiB).choice?.chosen.item, 'q4');
  const none = chooseByMemory(c, 4 * GiB);
  assert.equal(none.choice, undefined);
  assert.match(none.reason, /no variant fits 4\.0 GiB available: the smallest, Q4_K_M needs 5\.1 GiB/);
  // order given breaks ties; unknown precisions are not ranked
  const ties = chooseByMemory([{ item: 'a', name: 'F16', weightBytes: 10 }, { item: 'b', name: 'BF16', weightBytes: 10 }, { item: 'x', name: 'mystery', weightBytes: 1 }], 100);
  assert.equal(ties.choice?.chosen.item, 'a');
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
});
