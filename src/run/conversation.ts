/**
 * A chat kept across turns: the system prompt (flag or the model's), every question and answer.
 * An answer stopped by the user (Ctrl-C) is kept as far as it went, as Ollama does.
 */
import type { ChatMessage, EngineModel, GenerateOptions, Generation } from '../engine/engine.js';
import { hasErrorCode } from '../errors.js';
import type { RunSettings } from './settings.js';

export interface TurnOptions {
  signal?: AbortSignal;
  onText?: (text: string) => void;
}

export class Conversation {
  readonly messages: ChatMessage[] = [];

  constructor(
    private readonly model: EngineModel,
    private readonly settings: RunSettings,
  ) {
    this.clear();
  }

  /** Forgets the questions and answers; the system prompt stays. */
  clear(): void {
    this.messages.length = 0;
    if (this.settings.system) this.messages.push({ role: 'system', content: this.settings.system });
  }

  /**
   * Answers with the history; when the history no longer fits the context, the oldest turns are
   * forgotten (the system prompt stays), as Ollama and llama.cpp do. `forgotten` counts them.
   */
  async ask(question: string, o: TurnOptions = {}): Promise<Generation & { forgotten: number }> {
    let forgotten = 0;
    for (;;) {
      const turn: ChatMessage[] = [...this.messages, { role: 'user', content: question }];
      try {
        const g = await this.model.chat(turn, { ...generateOptions(this.settings), ...o });
        this.messages.push({ role: 'user', content: question }, { role: 'assistant', content: g.text });
        return { ...g, forgotten };
      } catch (e) {
        if (!hasErrorCode(e, 'CONTEXT_OVERFLOW') || !this.forgetOldest()) throw e;
        forgotten++;
      }
    }
  }

  /** Drops the oldest question and its answer; false when there is none left to drop. */
  private forgetOldest(): boolean {
    const first = this.messages.findIndex((m) => m.role !== 'system');
    if (first < 0) return false;
    const next = this.messages.findIndex((m, i) => i > first && m.role === 'user');
    this.messages.splice(first, (next < 0 ? this.messages.length : next) - first);
    return true;
  }
}

export function generateOptions(s: RunSettings): GenerateOptions {
  const g: GenerateOptions = {};
  if (s.maxTokens !== undefined) g.maxTokens = s.maxTokens;
  if (s.temperature !== undefined) g.temperature = s.temperature;
  if (s.topP !== undefined) g.topP = s.topP;
  if (s.seed !== undefined) g.seed = s.seed;
  if (s.stop?.length) g.stop = s.stop;
  return g;
}
