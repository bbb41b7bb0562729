/**
 * The inference engine seen by `mpk run` and `mpk api`: load a model file with options, then
 * chat / complete / embed / tokenize, then unload. The artifact carries no engine (the ModelPack
 * idea); an engine is picked for the model's format on this machine. llama.cpp through
 * node-llama-cpp is the first (llama-cpp.ts); another (llama-server, vLLM) implements the same
 * two interfaces and is registered in engines.ts, with no change to the CLI or the API.
 */

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/** A chat format: a Jinja template (a GGUF's, or a model's own), or a well-known family. */
export type ChatFormat = { jinja: string } | { family: 'chatml' | 'llama3' | 'llama2' | 'mistral' | 'gemma' };

export interface GenerateOptions {
  /** Tokens to generate at most (default: until the end of text or the context is full). */
  maxTokens?: number;
  /** 0 = greedy. */
  temperature?: number;
  topP?: number;
  seed?: number;
  /** Texts that end the answer (not included in it). */
  stop?: string[];
  /** Aborting stops the generation; what was generated so far is returned (finishReason 'abort'). */
  signal?: AbortSignal;
  /** Called with each piece of text as it is generated. */
  onText?: (text: string) => void;
}

export type FinishReason = 'stop' | 'length' | 'abort';

export interface Generation {
  text: string;
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
}

export interface Embedding {
  vector: number[];
  tokens: number;
}

export interface LoadOptions {
  /** The weight file (the first of a shard set), mapped in place: never copied. */
  path: string;
  /** LoRA adapters applied on top. */
  adapters?: { path: string; scale?: number }[];
  /** A multimodal projector (engines that cannot use one say so through `warnings`). */
  projector?: string;
  /** Context size in tokens (default: the model's, bounded by memory). */
  contextSize?: number;
  /** CPU threads for this model. */
  threads: number;
  /** Sequences that can generate at once (the API's parallel requests; default 1). */
  parallel?: number;
  /** Overrides the chat format the model file declares. */
  chatFormat?: ChatFormat;
  signal?: AbortSignal;
}

export interface EngineModel {
  /** Context size in tokens, per sequence. */
  readonly contextSize: number;
  /** The context length the model was trained with (its GGUF says). */
  readonly trainContextSize: number;
  /** Things the engine could not honour (e.g. a projector it cannot use). */
  readonly warnings: readonly string[];
  /** Answers the last user message of a conversation. CONTEXT_OVERFLOW if the prompt does not fit. */
  chat(messages: ChatMessage[], opts?: GenerateOptions): Promise<Generation>;
  /** Continues a text. CONTEXT_OVERFLOW if the prompt does not fit. */
  complete(prompt: string, opts?: GenerateOptions): Promise<Generation>;
  embed(text: string): Promise<Embedding>;
  tokenize(text: string): number[];
  /** Frees the model; later calls fail. */
  unload(): Promise<void>;
}

export interface Engine {
  /** e.g. 'llama.cpp' */
  readonly name: string;
  load(opts: LoadOptions): Promise<EngineModel>;
  /** Releases the engine itself (after every model it loaded is unloaded). */
  close(): Promise<void>;
}

export interface EngineOptions {
  /** Threads the engine may use in all (default: the cores really there). */
  maxThreads?: number;
  /** Engine log lines (warnings and errors) go here; default: dropped. */
  log?: (line: string) => void;
}
