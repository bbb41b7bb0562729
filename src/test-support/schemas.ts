/**
 * Validators for what mpk writes, from the specs' own JSON Schemas in spec/ (copied from
 * ../shared/spec): the OCI image-spec v1.1.1 manifest and index (draft-04), and the ModelPack
 * config at v0.0.7 (draft-04) and main (draft 2020-12).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type { ValidateFunction } from 'ajv';

const require = createRequire(import.meta.url);
const Ajv04 = require('ajv-draft-04') as typeof import('ajv-draft-04').default;
const Ajv2020 = require('ajv/dist/2020') as typeof import('ajv/dist/2020.js').default;
const addFormats = require('ajv-formats') as typeof import('ajv-formats').default;

const SPEC = new URL('../../spec/', import.meta.url).pathname;
const OCI = join(SPEC, 'oci-image-spec-v1.1.1');

/** Drops nested `id`s (they rebase relative $refs) and names each file by its own file URL. */
function rebase(file: string): Record<string, unknown> {
  const strip = (v: unknown, top: boolean): unknown => {
    if (Array.isArray(v)) return v.map((x) => strip(x, false));
    if (v && typeof v === 'object') {
      const o: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) if (!(k === 'id' && typeof x === 'string') || top) o[k] = strip(x, false);
      return o;
    }
    return v;
  };
  const s = strip(JSON.parse(readFileSync(file, 'utf8')), true) as Record<string, unknown>;
  s.id = `file://${file}`;
  delete s.$schema;
  return s;
}

let cache: { manifest: ValidateFunction; index: ValidateFunction; configV007: ValidateFunction; configMain: ValidateFunction } | undefined;

export function validators() {
  if (cache) return cache;
  const oci = new Ajv04({ allErrors: true, strict: false });
  addFormats(oci);
  for (const f of readdirSync(OCI)) oci.addSchema(rebase(join(OCI, f)));
  const v007 = new Ajv04({ allErrors: true, strict: false });
  addFormats(v007);
  const main = new Ajv2020({ allErrors: true, strict: false });
  addFormats(main);
  cache = {
    manifest: oci.getSchema(`file://${join(OCI, 'image-manifest-schema.json')}`)!,
    index: oci.getSchema(`file://${join(OCI, 'image-index-schema.json')}`)!,
    configV007: v007.compile(JSON.parse(readFileSync(join(SPEC, 'modelpack-config-schema.v0.0.7.json'), 'utf8'))),
    configMain: main.compile(JSON.parse(readFileSync(join(SPEC, 'modelpack-config-schema.main.json'), 'utf8'))),
  };
  return cache;
}

/** Throws with the schema's errors when doc does not validate. */
export function assertValid(v: ValidateFunction, doc: unknown, what: string): void {
  if (!v(doc)) throw new Error(`${what} does not validate: ${JSON.stringify(v.errors, null, 1)}`);
}
