/** `mpk run REF [PROMPT]`: pull if missing, map the weights from the store, answer or chat. */
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { findPackError, hasErrorCode, PackError } from '../../errors.js';
import { defaultThreads, loadEngine } from '../../engine/engines.js';
import type { Selection } from '../../graph/select.js';
import { parseReference } from '../../oci/reference.js';
import { chatRepl } from '../../run/chat-repl.js';
import { Conversation } from '../../run/conversation.js';
import { openModel, type OpenedModel } from '../../run/open-model.js';
import { DEFAULT_TEMPERATURE, type RunSettings } from '../../run/settings.js';
import type { LocalStore } from '../../store/store.js';
import { pullModel } from '../../transfer/transfer.js';
import { requireSignature } from '../../sign/require-signature.js';
import type { CommandSpec, Ctx } from '../context.js';
import { parseSize, REGISTRY_HELP, REGISTRY_OPTIONS, transferDisplay, transferOptions } from '../registry-flags.js';
import { numberIn, wholeNumber } from '../flag-values.js';
import { withStore } from '../store.js';

export const runCommand: CommandSpec = {
  name: 'run',
  usage: 'mpk run REF [PROMPT] [--ctx-size N] [--temperature T] [--system TEXT] [--json]',
  summary:
    'Run a model from the store with llama.cpp; pull it first if it is not there. With PROMPT (or text\non standard input) print one answer, streamed; on a terminal without one, chat (/bye or Ctrl-D to\nleave, Ctrl-C stops an answer). The weights are mapped from the store: nothing is copied.',
  help: [
    '--ctx-size N         context size in tokens (default: the model\'s, at most 4096)',
    '--temperature T      sampling temperature; 0 = greedy (default: the model\'s, else 0.8)',
    '--top-p P            nucleus sampling',
    '--seed N             random seed (same seed, same answer)',
    '--max-tokens N       answer length limit in tokens',
    '--system TEXT        system prompt (default: the model\'s)',
    '--threads N          CPU threads (default: the cores really available)',
    '--variant V          from an index: the variant to run (as mpk pull)',
    '--platform OS/ARCH   from an index: the platform to run',
    '--memory SIZE        from an index without --variant: the best variant whose weights fit this (default: free memory)',
    '--weight PATH        of several GGUF models in one artifact, the file to run',
    '--require-signature PUB.pem  run only a model signed by this key (mpk sign); checked before any pull',
    '-i, --interactive    chat even when standard input is not a terminal',
    '--verbose            show the engine\'s warnings and timings',
    '--json               print the answer, usage and timings as one JSON object',
    ...REGISTRY_HELP.filter((l) => !l.startsWith('--json')),
  ],
  options: {
    ...REGISTRY_OPTIONS,
    'ctx-size': { type: 'string' },
    temperature: { type: 'string' },
    'top-p': { type: 'string' },
    seed: { type: 'string' },
    'max-tokens': { type: 'string' },
    system: { type: 'string' },
    threads: { type: 'string' },
    variant: { type: 'string' },
    platform: { type: 'string' },
    memory: { type: 'string' },
    weight: { type: 'string' },
    'require-signature': { type: 'string' },
    interactive: { type: 'boolean', short: 'i' },
    verbose: { type: 'boolean' },
  },
  args: [1, 2],
  async run(ctx, v, [ref, promptArg]) {
    const settings = flagSettings(v);
    const threads = v.threads === undefined ? undefined : wholeNumber('threads', v.threads, 1, '2');
    const log = v.verbose ? (l: string) => void ctx.stderr.write(`${l}\n`) : undefined;
    // the engine starts first: its start-up (~0.6 s: it tests its binary) overlaps everything else
    const engine = loadEngine({ maxThreads: threads ?? defaultThreads(), ...(log ? { log } : {}) });
    engine.catch(() => undefined); // awaited by openModel; an earlier failure must not go unhandled
    let handedOver = false; // openModel owns the engine from its call on (and closes it)
    try {
      return await withStore(ctx, async (store) => {
        if (typeof v['require-signature'] === 'string') await checkSigned(ctx, v, store, ref!, resolve(ctx.cwd, v['require-signature']));
        else await pullIfMissing(ctx, v, store, ref!);
        const stdinText = !v.interactive && ctx.stdin && !ctx.stdin.isTTY && ctx.readStdin ? await ctx.readStdin() : undefined;
        handedOver = true;
        const opened = await openModel(store, ref!, {
          settings,
          engine,
          ...(threads ? { threads } : {}),
          select: selection(v),
          ...(typeof v.weight === 'string' ? { weight: v.weight } : {}),
          ...(log ? { log } : {}),
          ...(ctx.signal ? { signal: ctx.signal } : {}),
        });
        try {
          for (const w of [...opened.runnable.notes, ...opened.model.warnings]) ctx.warn(w);
          if (opened.settings.temperature === undefined) opened.settings.temperature = DEFAULT_TEMPERATURE;
          const conv = new Conversation(opened.model, opened.settings);
          const prompt = promptArg !== undefined && stdinText ? `${promptArg}\n\n${stdinText}` : (promptArg ?? stdinText);
          if (prompt !== undefined && prompt.trim() === '') throw new PackError('USAGE', 'mpk run: the prompt is empty', { hint: 'give a PROMPT, pipe some text, or run on a terminal to chat' });
          if (prompt !== undefined) return await answerOnce(ctx, v, opened, conv, prompt);
          if (!ctx.stdin) throw new PackError('USAGE', 'mpk run: no prompt given and no terminal to chat on', { hint: 'give a PROMPT, or pipe text to mpk run' });
          await chatRepl(conv, {
            input: ctx.stdin as NodeJS.ReadableStream as Readable,
            output: ctx.stdout,
            terminal: !!ctx.stdin.isTTY && !!ctx.stdout.isTTY,
            ...(ctx.signal ? { signal: ctx.signal } : {}),
            onError: (e) => {
              const pe = findPackError(e);
              if (!pe) throw e;
              ctx.stderr.write(`mpk: ${pe.message}${pe.hint ? `. Hint: ${pe.hint}` : ''}\n`);
            },
          });
          return 0;
        } finally {
          await opened.close();
        }
      });
    } finally {
      if (!handedOver) await engine.then((e) => e.close()).catch(() => undefined);
    }
  },
};

async function answerOnce(ctx: Ctx, v: Record<string, unknown>, opened: OpenedModel, conv: Conversation, prompt: string): Promise<number> {
  const started = performance.now();
  let firstMs: number | undefined;
  const g = await conv.ask(prompt, {
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    onText: (t) => {
      firstMs ??= performance.now() - started;
      if (!v.json) ctx.stdout.write(t);
    },
  });
  if (ctx.signal?.aborted) throw new PackError('ABORTED', 'interrupted');
  const genMs = performance.now() - started;
  const timings = {
    load_ms: round(opened.loadMs),
    first_token_ms: firstMs === undefined ? null : round(firstMs),
    total_ms: round(genMs),
    tokens_per_second: g.completionTokens && firstMs !== undefined && genMs > firstMs ? round(((g.completionTokens - 1) * 1000) / (genMs - firstMs)) : null,
  };
  if (v.json) {
    const usage = { prompt_tokens: g.promptTokens, completion_tokens: g.completionTokens, total_tokens: g.promptTokens + g.completionTokens };
    ctx.stdout.write(`${JSON.stringify({ model: opened.runnable.reference, digest: opened.runnable.digest, answer: g.text, finish_reason: g.finishReason, usage, timings })}\n`);
  } else {
    ctx.stdout.write('\n');
    if (v.verbose) ctx.stderr.write(`load ${timings.load_ms} ms, first token ${timings.first_token_ms} ms, ${g.completionTokens} tokens, ${timings.tokens_per_second} tokens/s\n`);
  }
  return 0;
}

/** A remote reference not yet in the store is pulled, with the same progress as `mpk pull`. */
async function pullIfMissing(ctx: Ctx, v: Record<string, unknown>, store: LocalStore, ref: string): Promise<void> {
  try {
    await store.resolve(ref);
    return;
  } catch (e) {
    if (!hasErrorCode(e, 'NOT_FOUND') || !parseReference(ref).registry) throw e;
  }
  await pullWithProgress(ctx, v, store, ref, undefined, selection(v));
}

async function pullWithProgress(ctx: Ctx, v: Record<string, unknown>, store: LocalStore, ref: string, destination: string | undefined, select: Selection): Promise<void> {
  const o = transferOptions(ctx, v);
  o.select = select;
  o.onSelect = (c) => {
    if (c.reason) ctx.stderr.write(`mpk: ${c.reason}\n`); // which variant of an index is pulled, and why
  };
  const display = transferDisplay(ctx, { ...v, json: false }, o, `Pulling ${ref}`);
  try {
    await pullModel(store, ref, destination, o);
    display.finish({ ok: true });
  } catch (e) {
    display.finish({ ok: false });
    throw e;
  }
}

/** --require-signature: the model (stored, or in the registry before it is pulled by digest) must be signed by the key. */
async function checkSigned(ctx: Ctx, v: Record<string, unknown>, store: LocalStore, ref: string, keyPath: string): Promise<void> {
  const o = transferOptions(ctx, v);
  o.select = selection(v);
  o.onSelect = (c) => {
    if (c.reason) ctx.stderr.write(`mpk: ${c.reason}\n`);
  };
  const r = await requireSignature(store, ref, keyPath, o, (pinned, destination, select) => pullWithProgress(ctx, v, store, pinned, destination, select));
  if (v.verbose) ctx.stderr.write(`mpk: signature ${r.signature} (in ${r.source}) by key ${r.keyId.slice(0, 16)}… verified\n`);
}

/** --variant, --platform, --memory: which manifest of an index (as mpk pull chooses). */
function selection(v: Record<string, unknown>): Selection {
  const sel: Selection = {};
  if (typeof v.variant === 'string') sel.variant = v.variant;
  if (typeof v.platform === 'string') sel.platform = v.platform;
  if (typeof v.memory === 'string') sel.memory = parseSize('memory', v.memory);
  return sel;
}

function flagSettings(v: Record<string, unknown>): RunSettings {
  const s: RunSettings = {};
  if (v['ctx-size'] !== undefined) s.contextSize = wholeNumber('ctx-size', v['ctx-size'], 16, '4096');
  if (v.temperature !== undefined) s.temperature = numberIn('temperature', v.temperature, 0, 100, '0.7');
  if (v['top-p'] !== undefined) s.topP = numberIn('top-p', v['top-p'], 0, 1, '0.9');
  if (v.seed !== undefined) s.seed = wholeNumber('seed', v.seed, 0, '42');
  if (v['max-tokens'] !== undefined) s.maxTokens = wholeNumber('max-tokens', v['max-tokens'], 1, '256');
  if (typeof v.system === 'string') s.system = v.system;
  return s;
}

const round = (n: number) => Math.round(n * 10) / 10;
