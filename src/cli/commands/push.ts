/** `mpk push REF` / `mpk push SRC DST`, `mpk pull REF`, `mpk copy SRC DST`: one transfer each. */
import { resolve } from 'node:path';
import { PackError } from '../../errors.js';
import { transfer, pullModel, pushModel, type TransferResult } from '../../transfer/transfer.js';
import type { PullPlan } from '../../transfer/remote-inspect.js';
import { pullSigned } from '../../sign/require-signature.js';
import type { SignatureReport } from '../../sign/verify-signature.js';
import type { CommandSpec, Ctx } from '../context.js';
import { humanBytes, plural, table } from '../format.js';
import { REGISTRY_HELP, REGISTRY_OPTIONS, parseSize, transferDisplay, transferOptions } from '../registry-flags.js';
import { withStore } from '../store.js';

const REFERRERS_HELP = '--referrers          also copy the artifacts that refer to it (SBOMs, eval results, signatures), and theirs (8 levels)';
const WITH_REFERRERS = { ...REGISTRY_OPTIONS, referrers: { type: 'boolean' } } as const;

function report(ctx: Ctx, v: Record<string, unknown>, verb: string, r: TransferResult, extra: Record<string, unknown> = {}): number {
  if (v.json) {
    ctx.stdout.write(
      JSON.stringify({ event: 'result', source: r.source, destination: r.destination, digest: r.root.digest, mediaType: r.root.mediaType, size: r.root.size, ...r.stats, ...(r.referrers === undefined ? {} : { referrers: r.referrers }), seconds: r.seconds, ...extra }) + '\n',
    );
  } else if (!ctx.quiet && !v.quiet) {
    const moved = r.stats.transferred ? `${plural(r.stats.transferred, 'blob')}, ${humanBytes(r.stats.bytes)}` : 'no blobs moved';
    ctx.stdout.write(`${verb} ${r.destination}@${r.root.digest} (${moved}; ${r.stats.skipped} already there${r.stats.mounted ? `, ${r.stats.mounted} mounted` : ''}${r.referrers === undefined ? '' : `; ${plural(r.referrers, 'referrer')}`}) in ${r.seconds.toFixed(1)} s\n`);
  }
  return 0;
}

async function run(ctx: Ctx, v: Record<string, unknown>, label: string, fn: (o: ReturnType<typeof transferOptions>) => Promise<TransferResult>): Promise<TransferResult> {
  const o = transferOptions(ctx, v);
  const display = transferDisplay(ctx, v, o, label);
  try {
    const r = await fn(o);
    display.finish({ ok: true });
    return r;
  } catch (e) {
    display.finish({ ok: false }); // the error itself is printed once, by the CLI
    throw e;
  }
}

export const push: CommandSpec = {
  name: 'push',
  usage: 'mpk push REF | mpk push SOURCE TARGET [--referrers]',
  summary: 'Push a model from the store to a registry. REF names both (HOST[:PORT]/NAME:TAG); with two\nreferences the local SOURCE is pushed as TARGET. Blobs the registry has are skipped.',
  help: [REFERRERS_HELP, ...REGISTRY_HELP],
  options: WITH_REFERRERS,
  args: [1, 2],
  async run(ctx, v, [src, dst]) {
    const r = await withStore(ctx, (store) => run(ctx, v, `Pushing ${dst ?? src}`, (o) => pushModel(store, src!, dst ?? src!, o)));
    return report(ctx, v, 'Pushed', r);
  },
};

export const pull: CommandSpec = {
  name: 'pull',
  usage: 'mpk pull REF [--extract DIR | --dry-run] [--variant V | --platform OS/ARCH] [--referrers] [--require-signature PUB.pem]',
  summary: 'Pull a model from a registry into the store, verifying every byte. An interrupted pull\nresumes where it stopped. A model already in the store moves no blob.',
  help: [
    '--extract DIR        then restore its files under DIR (as mpk extract)',
    '--dry-run            only say what would be fetched and what the store has (reads manifests, writes nothing)',
    '--variant V          from an index: the manifest with an annotation equal to V (e.g. Q4_K_M, or KEY=VALUE)',
    '--platform OS/ARCH   from an index: the manifest for this platform',
    '--memory SIZE        from an index, with neither: the best variant whose weights fit 80% of SIZE (default: free memory)',
    REFERRERS_HELP,
    '--require-signature PUB.pem  refuse, storing nothing, a model not signed by this key (mpk sign); pulls the verified digest',
    ...REGISTRY_HELP,
  ],
  options: { ...WITH_REFERRERS, extract: { type: 'string' }, variant: { type: 'string' }, platform: { type: 'string' }, memory: { type: 'string' }, 'dry-run': { type: 'boolean' }, 'require-signature': { type: 'string' } },
  args: [1, 1],
  async run(ctx, v, [src]) {
    if (v['dry-run']) {
      if (typeof v.extract === 'string') throw new PackError('USAGE', 'pull: --dry-run and --extract exclude each other', { hint: 'drop --extract to see what a pull would fetch' });
      if (typeof v['require-signature'] === 'string') throw new PackError('USAGE', 'pull: --dry-run does not check signatures', { hint: 'mpk verify-signature REF --key PUB.pem checks one without pulling' });
      const o = transferOptions(ctx, v);
      if (typeof v.variant === 'string' || typeof v.platform === 'string') {
        o.select = {};
        if (typeof v.variant === 'string') o.select.variant = v.variant;
        if (typeof v.platform === 'string') o.select.platform = v.platform;
      }
      if (typeof v.memory === 'string') (o.select ??= {}).memory = parseSize('memory', v.memory);
      const { planPull } = await import('../../transfer/remote-inspect.js'); // only for --dry-run
      const plan = await withStore(ctx, (store) => planPull(store, src!, o));
      printPlan(ctx, v, plan);
      return 0;
    }
    const extractDir = typeof v.extract === 'string' ? resolve(ctx.cwd, v.extract) : undefined;
    let files: number | undefined;
    const keyPath = typeof v['require-signature'] === 'string' ? resolve(ctx.cwd, v['require-signature']) : undefined;
    let signature: SignatureReport | undefined;
    const r = await withStore(ctx, async (store) => {
      const res = await run(ctx, v, `Pulling ${src}`, (o) => {
        if (typeof v.variant === 'string' || typeof v.platform === 'string') {
          o.select = {};
          if (typeof v.variant === 'string') o.select.variant = v.variant;
          if (typeof v.platform === 'string') o.select.platform = v.platform;
        }
        if (typeof v.memory === 'string') (o.select ??= {}).memory = parseSize('memory', v.memory);
        o.onSelect = (c) => {
          if (c.reason) ctx.stderr.write(`mpk: ${c.reason}\n`); // even with -q: it says what was stored
        };
        if (!keyPath) return pullModel(store, src!, undefined, o);
        return pullSigned(store, src!, keyPath, o).then((p) => ((signature = p.report), p.result));
      });
      if (extractDir) {
        // Loaded only for --extract: tar, zstd and glob modules cost every push and pull ~40 ms of start-up.
        const { extractModel } = await import('../../extract/extract.js');
        files = (await extractModel(store, `${res.destination}`, extractDir, ctx.signal ? { signal: ctx.signal } : {})).files.length;
      }
      return res;
    });
    const sig = signature && { signature: { digest: signature.signature, keyId: signature.keyId, source: signature.source } };
    report(ctx, v, 'Pulled', r, { ...(extractDir ? { extracted: extractDir, files } : {}), ...sig });
    if (signature && !v.json && !ctx.quiet && !v.quiet) ctx.stdout.write(`Signature ${signature.signature} by key ${signature.keyId.slice(0, 16)}… verified\n`);
    if (extractDir && !v.json) ctx.stdout.write(`Extracted ${plural(files ?? 0, 'file')} to ${extractDir}\n`);
    return 0;
  },
};

/** `pull --dry-run`: one row per blob (fetch or present) and the totals; --json gives the plan. */
function printPlan(ctx: Ctx, v: Record<string, unknown>, plan: PullPlan): void {
  if (v.json) {
    ctx.stdout.write(JSON.stringify({ event: 'plan', ...plan }) + '\n');
    return;
  }
  const rows = plan.entries.map((e) => [
    e.action + (e.changed ? ' (changed)' : e.partialBytes ? ` (resume at ${humanBytes(e.partialBytes)})` : ''),
    humanBytes(e.size),
    e.digest.slice(0, 19),
    e.kind,
    e.path ?? '',
  ]);
  ctx.stdout.write(`Pull ${plan.source}@${plan.root.digest} as ${plan.destination}${plan.tag === 'same' ? ' (already tagged so)' : plan.tag === 'other' ? ' (the name now points at another manifest)' : ''}\n`);
  ctx.stdout.write(table(['ACTION', 'SIZE', 'DIGEST', 'KIND', 'PATH'], rows));
  const t = plan.totals;
  ctx.stdout.write(
    `would fetch ${plural(t.fetch, 'blob')}, ${humanBytes(t.fetchBytes)}; ${t.present} already in the store (${humanBytes(t.presentBytes)})${plan.referrers === undefined ? '' : `; ${plural(plan.referrers, 'referrer')} with it`}; dry run: read ${humanBytes(plan.fetchedBytes)} of manifests, wrote nothing\n`,
  );
}

export const copyCommand: CommandSpec = {
  name: 'copy',
  usage: 'mpk copy SOURCE TARGET [--referrers]',
  summary: 'Copy a model between registries, repositories or the store (a name without HOST is local).\nWithin one registry, blobs are mounted rather than sent again. An index is copied whole.',
  help: [REFERRERS_HELP, ...REGISTRY_HELP],
  options: WITH_REFERRERS,
  args: [2, 2],
  async run(ctx, v, [src, dst]) {
    const r = await withStore(ctx, (store) => run(ctx, v, `Copying ${src} to ${dst}`, (o) => transfer(store, src!, dst!, o)));
    return report(ctx, v, 'Copied', r);
  },
};
