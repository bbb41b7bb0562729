/**
 * llama.cpp through node-llama-cpp (an optional peer dependency, imported here only, on demand).
 * Offline: prebuilt binaries only, no build, no download. The model file is memory-mapped where it
 * is (the store's blob), so loading copies nothing. A context holds `parallel` sequences; each
 * chat or completion takes one for its duration (others wait), so requests to a model are
 * evaluated by llama.cpp's batching side by side.
 */
import type * as Nlc from 'node-llama-cpp';
import { PackError } from '../errors.js';
import type { ChatFormat, ChatMessage, Embedding, Engine, EngineModel, EngineOptions, FinishReason, GenerateOptions, Generation, LoadOptions } from './engine.js';
import { engineMissing, isEngineMissing } from './engines.js';
import { SlotPool } from './slot-pool.js';

type Lib = typeof Nlc;

/** Without a context size given: the model's, at most this (a KV cache of 128k tokens is GiBs). */
export const DEFAULT_CONTEXT_CAP = 4096;

export async function openLlamaCpp(opts: EngineOptions): Promise<Engine> {
  let lib: Lib;
  try {
    lib = await import('node-llama-cpp');
  } catch (e) {
    if (isEngineMissing(e)) throw engineMissing(e);
    throw e;
  }
  const log = opts.log;
  let llama: Nlc.Llama;
  try {
    llama = await lib.getLlama({
      gpu: (process.env.MPK_GPU ?? 'auto') === 'none' ? false : 'auto',
      build: 'never',
      skipDownload: true,
      usePrebuiltBinaries: true,
      progressLogs: false,
      ...(opts.maxThreads ? { maxThreads: opts.maxThreads } : {}),
      // warnings only for who reads them (--verbose); node-llama-cpp's own logger would print
      // them on the user's terminal, in the middle of a chat
      logLevel: log ? lib.LlamaLogLevel.warn : lib.LlamaLogLevel.error,
      logger: (level: Nlc.LlamaLogLevel, message: string) => {
        const text = message.trim();
        if (log && text) log(`llama.cpp ${level}: ${text}`);
      },
    });
  } catch (e) {
    if (e instanceof lib.NoBinaryFoundError) throw engineMissing(e, ` (no prebuilt llama.cpp binary for ${process.platform}-${process.arch})`);
    throw new PackError('ENGINE', `llama.cpp could not start: ${(e as Error).message}`, { cause: e, hint: 'reinstall node-llama-cpp@3.21.1' });
  }
  return {
    name: 'llama.cpp',
    load: (lo) => loadModel(lib, llama, lo),
    close: () => llama.dispose(),
  };
}

async function loadModel(lib: Lib, llama: Nlc.Llama, o: LoadOptions): Promise<EngineModel> {
  let model: Nlc.LlamaModel;
  try {
    model = await llama.loadModel({ modelPath: o.path, useMmap: true, ...(o.signal ? { loadSignal: o.signal } : {}) });
  } catch (e) {
    if (o.signal?.aborted) throw e;
    throw new PackError('ENGINE', `llama.cpp could not load ${o.path}: ${(e as Error).message}`, { cause: e, hint: 'check the model with mpk verify; it may need a newer llama.cpp' });
  }
  let wrapper: Nlc.ChatWrapper;
  try {
    wrapper = chatWrapper(lib, model, o.chatFormat);
  } catch (e) {
    await model.dispose();
    throw new PackError('ENGINE', `the chat template of ${o.path} cannot be used: ${(e as Error).message}`, {
      cause: e,
      hint: "the model's chat template is not valid; report it to whoever published the model",
    });
  }
  try {
    const parallel = Math.max(1, o.parallel ?? 1);
    const contextSize = o.contextSize ?? Math.min(model.trainContextSize || DEFAULT_CONTEXT_CAP, DEFAULT_CONTEXT_CAP);
    const context = await model.createContext({
      contextSize,
      sequences: parallel,
      threads: o.threads,
      ...(o.adapters?.length ? { lora: { adapters: o.adapters.map((a) => ({ filePath: a.path, scale: a.scale ?? 1 })) } } : {}),
      ...(o.signal ? { createSignal: o.signal } : {}),
    });
    const warnings: string[] = [];
    if (o.projector) warnings.push('this model has a multimodal projector; llama.cpp through node-llama-cpp runs it as text only (images are not accepted)');
    return new LlamaCppModel(lib, model, context, o, wrapper, warnings);
  } catch (e) {
    await model.dispose();
    if (o.signal?.aborted) throw e;
    throw new PackError('ENGINE', `llama.cpp could not create a context for ${o.path}: ${(e as Error).message}`, {
      cause: e,
      hint: 'try a smaller --ctx-size, or free memory',
    });
  }
}

class LlamaCppModel implements EngineModel {
  readonly contextSize: number;
  readonly trainContextSize: number;
  private readonly sequences: SlotPool<Nlc.LlamaContextSequence>;
  private readonly wrapper: Nlc.ChatWrapper;
  private embedding: Promise<Nlc.LlamaEmbeddingContext> | undefined;

  constructor(
    private readonly lib: Lib,
    private readonly model: Nlc.LlamaModel,
    private readonly context: Nlc.LlamaContext,
    private readonly opts: LoadOptions,
    wrapper: Nlc.ChatWrapper,
    readonly warnings: readonly string[],
  ) {
    this.contextSize = context.contextSize;
    this.trainContextSize = model.trainContextSize;
    const seqs: Nlc.LlamaContextSequence[] = [];
    while (context.sequencesLeft > 0) seqs.push(context.getSequence());
    this.sequences = new SlotPool(seqs);
    this.wrapper = wrapper;
  }

  async chat(messages: ChatMessage[], g: GenerateOptions = {}): Promise<Generation> {
    const history: Nlc.ChatHistoryItem[] = messages.map((m) =>
      m.role === 'system' ? { type: 'system', text: m.content } : m.role === 'user' ? { type: 'user', text: m.content } : { type: 'model', response: [m.content] },
    );
    history.push({ type: 'model', response: [] });
    const promptTokens = this.wrapper.generateContextState({ chatHistory: history }).contextText.tokenize(this.model.tokenizer).length;
    const maxTokens = this.budget(promptTokens, g.maxTokens);
    return this.generate(g, promptTokens, async (seq, onToken) => {
      const chat = new this.lib.LlamaChat({ contextSequence: seq, chatWrapper: this.wrapper, autoDisposeSequence: false });
      try {
        return await chat.generateResponse(history, { ...sampling(g), maxTokens, onToken, ...(g.onText ? { onTextChunk: g.onText } : {}) });
      } finally {
        chat.dispose({ disposeSequence: false });
      }
    });
  }

  async complete(prompt: string, g: GenerateOptions = {}): Promise<Generation> {
    const promptTokens = this.model.tokenize(prompt).length + (this.model.tokens.shouldPrependBosToken ? 1 : 0);
    const maxTokens = this.budget(promptTokens, g.maxTokens);
    return this.generate(g, promptTokens, async (seq, onToken) => {
      const completion = new this.lib.LlamaCompletion({ contextSequence: seq, autoDisposeSequence: false });
      try {
        return await completion.generateCompletionWithMeta(prompt, { ...sampling(g), maxTokens, onToken, ...(g.onText ? { onTextChunk: g.onText } : {}) });
      } finally {
        completion.dispose({ disposeSequence: false });
      }
    });
  }

  /**
   * One generation on a free sequence. Tokens are counted by the sequence's meter (it also counts
   * the tokens a stop text swallowed). node-llama-cpp throws when aborted before the first token:
   * that is an answer stopped at nothing, not an error.
   */
  private generate(
    g: GenerateOptions,
    promptTokens: number,
    fn: (seq: Nlc.LlamaContextSequence, onToken: (t: Nlc.Token[]) => void) => Promise<{ response: string; metadata: { stopReason: string } }>,
  ): Promise<Generation> {
    return this.sequences.use(g.signal, async (seq) => {
      const before = seq.tokenMeter.usedOutputTokens;
      let seen = 0;
      const onToken = (t: Nlc.Token[]) => void (seen += t.length);
      const count = () => Math.max(seen, seq.tokenMeter.usedOutputTokens - before);
      try {
        const r = await fn(seq, onToken);
        return { text: r.response, finishReason: finish(r.metadata.stopReason), promptTokens, completionTokens: count() };
      } catch (e) {
        if (g.signal?.aborted) return { text: '', finishReason: 'abort', promptTokens, completionTokens: count() };
        throw e;
      }
    });
  }

  async embed(text: string): Promise<Embedding> {
    const tokens = this.model.tokenize(text).length + (this.model.tokens.shouldPrependBosToken ? 1 : 0);
    // node-llama-cpp refuses an input that fills the context
    if (tokens >= this.contextSize) throw overflow(tokens, this.contextSize - 1, 'input');
    if (!this.embedding) {
      this.embedding = this.model.createEmbeddingContext({ contextSize: this.contextSize, threads: this.opts.threads });
      this.embedding.catch(() => (this.embedding = undefined)); // a failed creation is tried again next time
    }
    const e = await (await this.embedding).getEmbeddingFor(text);
    return { vector: [...e.vector], tokens };
  }

  tokenize(text: string): number[] {
    return this.model.tokenize(text).map(Number);
  }

  async unload(): Promise<void> {
    this.sequences.close();
    if (this.embedding) await (await this.embedding.catch(() => undefined))?.dispose();
    await this.context.dispose();
    await this.model.dispose();
  }

  /** Tokens left for the answer; CONTEXT_OVERFLOW when the prompt leaves none. */
  private budget(promptTokens: number, maxTokens: number | undefined): number {
    const room = this.contextSize - promptTokens;
    if (room < 1) throw overflow(promptTokens, this.contextSize, 'prompt');
    return Math.min(room, maxTokens ?? room);
  }
}

function overflow(tokens: number, contextSize: number, what: string): PackError {
  return new PackError('CONTEXT_OVERFLOW', `the ${what} is ${tokens} tokens; the context holds ${contextSize}`, {
    hint: 'shorten it, or load the model with a larger context (--ctx-size)',
  });
}

function sampling(g: GenerateOptions): Nlc.LLamaChatGenerateResponseOptions {
  return {
    temperature: g.temperature ?? 0,
    ...(g.topP !== undefined ? { topP: g.topP } : {}),
    ...(g.seed !== undefined ? { seed: g.seed } : {}),
    ...(g.stop?.length ? { customStopTriggers: g.stop } : {}),
    ...(g.signal ? { signal: g.signal, stopOnAbortSignal: true } : {}),
  };
}

function finish(reason: string): FinishReason {
  return reason === 'maxTokens' ? 'length' : reason === 'abort' ? 'abort' : 'stop';
}

/** The chat format: given, else the GGUF's own (node-llama-cpp resolves its template). */
function chatWrapper(lib: Lib, model: Nlc.LlamaModel, f: ChatFormat | undefined): Nlc.ChatWrapper {
  if (f && 'jinja' in f) return new lib.JinjaTemplateChatWrapper({ template: f.jinja, tokenizer: model.tokenizer });
  if (f) {
    switch (f.family) {
      case 'chatml':
        return new lib.ChatMLChatWrapper();
      case 'llama3':
        return new lib.Llama3ChatWrapper();
      case 'llama2':
        return new lib.Llama2ChatWrapper();
      case 'mistral':
        return new lib.MistralChatWrapper();
      case 'gemma':
        return new lib.GemmaChatWrapper();
    }
  }
  return lib.resolveChatWrapper(model) ?? new lib.GeneralChatWrapper();
}
