import assert from 'node:assert/strict';
import { PackError, type ErrorCode } from '../errors.js';

/** Asserts a PackError with this code whose message starts with `subject` and matches `re`, with a hint. */
export async function rejectsWith(p: Promise<unknown>, code: ErrorCode, subject: string, re?: RegExp): Promise<PackError> {
  let caught: unknown;
  await assert.rejects(p, (e) => {
    caught = e;
    return true;
  });
  assert.ok(caught instanceof PackError, `a PackError, not ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.ok(caught.message.startsWith(`${subject}: `), caught.message);
  if (re) assert.match(caught.message, re);
  assert.ok(caught.hint && caught.hint.length > 10, `a hint for: ${caught.message}`);
  return caught;
}

