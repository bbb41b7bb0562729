/**
 * node-llama-cpp for tests: imported, or the test skipped with the reason (a failure under CI,
 * where the engine must be there), and a direct greedy chat with it — the reference that mpk's
 * answers are compared with, token for token.
 */
import type { TestContext } from 'node:test';

type Lib = typeof import('node-llama-cpp');

export async function importLlamaCpp(t: TestContext): Promise<Lib | undefined> {
  try {
    return await import('node-llama-cpp');
  } catch (err) {
    if (process.env.CI === 'true') throw err;
    t.skip('node-llama-cpp not installed: npm install node-llama-cpp@3.21.1');
    return undefined;
  }
}

export interface DirectTurn {
  user: string;
  /** The answer of an earlier turn (history); the last turn has none. */
  model?: string;
}

/**
 * What node-llama-cpp itself answers for a conversation, loading `path` directly: greedy, the
 * model's own chat template, 1 thread, `maxTokens` at most.
 */
export async function directChat(lib: Lib, path: string, turns: DirectTurn[], maxTokens: number, contextSize = 2048): Promise<string> {
  const llama = await lib.getLlama({ gpu: false, build: 'never', skipDownload: true, maxThreads: 1, logLevel: lib.LlamaLogLevel.error });
  try {
    const model = await llama.loadModel({ modelPath: path, useMmap: true });
    const context = await model.createContext({ contextSize, threads: 1 });
    const chat = new lib.LlamaChat({ contextSequence: context.getSequence(), chatWrapper: lib.resolveChatWrapper(model) ?? new lib.GeneralChatWrapper() });
    const history: import('node-llama-cpp').ChatHistoryItem[] = [];
    for (const t of turns) {
      history.push({ type: 'user', text: t.user });
      history.push({ type: 'model', response: t.model === undefined ? [] : [t.model] });
    }
    const r = await chat.generateResponse(history, { temperature: 0, maxTokens });
    return r.response;
  } finally {
    await llama.dispose();
  }
}
