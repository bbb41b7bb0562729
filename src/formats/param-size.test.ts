import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatParamCount } from './param-size.js';

test('parameter counts print with three significant digits and a unit', () => {
  assert.equal(formatParamCount(7_241_732_096), '7.24B');
  assert.equal(formatParamCount(494_032_768), '494M');
  assert.equal(formatParamCount(1_000_000_000n), '1B');
  assert.equal(formatParamCount(70_553_706_496), '70.6B');
  assert.equal(formatParamCount(999_600_000), '1B');
  assert.equal(formatParamCount(135_000), '135K');
  assert.equal(formatParamCount(812), '812');
  assert.equal(formatParamCount(1.2e12), '1.2T');
  assert.throws(() => formatParamCount(-1), RangeError);
});
