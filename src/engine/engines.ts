/**
 * Which engine runs which model format, and how many threads it gets. Engines are loaded on
 * demand (a dynamic import), so the library and every other command never load them, and a user
 * who never runs a model need not install one.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { PackError } from '../errors.js';
import type { Engine, EngineOptions } from './engine.js';

/** The exact version mpk is tested with (package.json's peer and dev dependency). */
export const LLAMA_CPP_PACKAGE = 'node-llama-cpp@3.21.1';

/** What to install for the llama.cpp engine on this machine: the package and its CPU binary only. */
export function engineInstallHint(platform = process.platform, arch = process.arch): string {
  const os = platform === 'darwin' ? 'mac' : platform === 'win32' ? 'win' : platform;
  const binary = platform === 'darwin' && arch === 'arm64' ? 'mac-arm64-metal' : `${os}-${arch}`;
  return `npm install --omit=optional --ignore-scripts ${LLAMA_CPP_PACKAGE} @node-llama-cpp/${binary}@3.21.1 beside mpk (the CPU build, ~85 MB; without --omit=optional its CUDA and Vulkan builds come too, ~730 MB)`;
}

/** The llama.cpp engine (GGUF models). ENGINE_MISSING when node-llama-cpp is not installed. */
export async function loadEngine(opts: EngineOptions = {}): Promise<Engine> {
  const { openLlamaCpp } = await import('./llama-cpp.js');
  return openLlamaCpp({ maxThreads: opts.maxThreads ?? defaultThreads(), ...opts });
}

/** Engines by model weight format, for the error that names what runs a model mpk cannot. */
export const ENGINES_FOR_FORMAT: Record<string, string> = {
  safetensors: 'vLLM, Hugging Face transformers or text-generation-inference',
  onnx: 'ONNX Runtime (onnxruntime-genai)',
};

/**
 * Threads for generation: the cores really there — the process's CPU affinity and a cgroup
 * quota (containers), not the host's core count. On 2 cores, 4 threads are 30x slower than 2.
 */
export function defaultThreads(): number {
  const cores = availableParallelism();
  const quota = cgroupCpuQuota();
  return Math.max(1, quota === undefined ? cores : Math.min(cores, quota));
}

/** cgroup v2 `cpu.max` ("max 100000" or "200000 100000"), rounded up; undefined when unlimited. */
export function cgroupCpuQuota(text?: string): number | undefined {
  let s = text;
  if (s === undefined) {
    try {
      s = readFileSync('/sys/fs/cgroup/cpu.max', 'utf8');
    } catch {
      return undefined;
    }
  }
  const [max, period] = s.trim().split(/\s+/);
  if (!max || max === 'max' || !period) return undefined;
  const q = Number(max) / Number(period);
  return Number.isFinite(q) && q > 0 ? Math.ceil(q) : undefined;
}

export function isEngineMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

export function engineMissing(cause: unknown, detail = ''): PackError {
  return new PackError('ENGINE_MISSING', `running a model needs the llama.cpp engine (node-llama-cpp), which is not installed${detail}`, {
    cause,
    hint: engineInstallHint(),
  });
}
