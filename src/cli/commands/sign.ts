/** `mpk sign REF --key KEY.pem [--generate-key]` and `mpk verify-signature REF --key PUB.pem`. */
import { resolve } from 'node:path';
import { PackError } from '../../errors.js';
import { signModel } from '../../sign/sign.js';
import { verifyModelSignature } from '../../sign/verify-signature.js';
import type { CommandSpec, Ctx } from '../context.js';
import { plural } from '../format.js';
import { transferOptions } from '../registry-flags.js';
import { maybeStore, TRANSPORT, TRANSPORT_HELP } from './attach.js';

function keyFlag(ctx: Ctx, cmd: string, v: Record<string, unknown>, what: string): string {
  if (typeof v.key !== 'string' || v.key === '') throw new PackError('USAGE', `${cmd}: --key is required`, { hint: `give ${what}` });
  return resolve(ctx.cwd, v.key);
}

export const signCommand: CommandSpec = {
  name: 'sign',
  usage: 'mpk sign REF --key KEY.pem [--generate-key] [--json]',
  summary:
    'Sign a model with an ECDSA P-256 key: a Sigstore bundle (v0.3, DSSE over an in-toto statement\n' +
    'naming the manifest digest and every file with its digest) attached as a referrer of the\n' +
    'manifest REF resolves to. A local REF signs in the store; HOST/NAME:TAG pushes the signature to\n' +
    'the registry. Several signatures per model may exist. Prints the signature artifact\'s digest.',
  help: [
    '--key KEY.pem      the private key (PEM: PKCS#8, or openssl ecparam -name prime256v1 -genkey)',
    '--generate-key     first make a new key pair: KEY.pem (mode 0600) and KEY.pub; never overwrites',
    '--json             print the signature as JSON',
    ...TRANSPORT_HELP,
  ],
  options: { key: { type: 'string' }, 'generate-key': { type: 'boolean' }, ...TRANSPORT },
  args: [1, 1],
  async run(ctx, v, [ref]) {
    const key = keyFlag(ctx, 'sign', v, 'the private key to sign with (or --generate-key to make one)');
    const r = await maybeStore(ctx, ref!, (store) => signModel(store, ref!, key, { ...transferOptions(ctx, v), generateKey: !!v['generate-key'] }));
    if (v.json) {
      ctx.stdout.write(`${JSON.stringify({ reference: r.reference, subject: r.subject.digest, digest: r.signature.digest, mediaType: r.signature.mediaType, size: r.signature.size, artifactType: r.signature.artifactType, keyId: r.keyId, files: r.files, ...(r.publicKey ? { publicKey: r.publicKey } : {}) })}\n`);
      return 0;
    }
    if (r.publicKey) ctx.stderr.write(`mpk: wrote a new key pair: ${key} (private, 0600) and ${r.publicKey} (public)\n`);
    ctx.stdout.write(`${r.signature.digest}\n`);
    return 0;
  },
};

export const verifySignatureCommand: CommandSpec = {
  name: 'verify-signature',
  usage: 'mpk verify-signature REF --key PUB.pem [--json]',
  summary:
    "Check that a model is signed by a key: one of its signatures (mpk sign) verifies with the key,\n" +
    'speaks of exactly this manifest, and lists exactly its files with their digests (for a stored\n' +
    "model the files' bytes are checked too). Says which signature verified. Exit 4 when a signature\n" +
    'fails (altered, another key, another model, a changed manifest or file), 12 when there is none.\n' +
    '(mpk verify rehashes the store.)',
  help: ['--key PUB.pem      the signer\'s public key (PEM)', '--json             print the result as JSON', ...TRANSPORT_HELP],
  options: { key: { type: 'string' }, ...TRANSPORT },
  args: [1, 1],
  async run(ctx, v, [ref]) {
    const key = keyFlag(ctx, 'verify-signature', v, "the signer's public key, e.g. --key KEY.pub");
    const r = await maybeStore(ctx, ref!, (store) => verifyModelSignature(store, ref!, key, transferOptions(ctx, v)));
    if (v.json) {
      ctx.stdout.write(`${JSON.stringify({ ok: true, ...r })}\n`);
      return 0;
    }
    ctx.stdout.write(
      `Verified ${r.reference.replace(/@sha256:[0-9a-f]+$/, '')}@${r.digest}: signature ${r.signature} (in ${r.source}) by key ${r.keyId.slice(0, 16)}… covers the manifest and ${plural(r.files, 'file')}` +
        `${r.found > 1 ? ` (${r.found} signatures found)` : ''}\n`,
    );
    return 0;
  },
};
