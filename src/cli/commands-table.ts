/**
 * Every command: its one-line summary and how to load its spec. Commands are loaded on demand, so
 * `mpk --version` loads almost nothing; `mpk completion` loads them all to list their options.
 */
import type { CommandSpec } from './context.js';

export interface CommandEntry {
  summary: string;
  load: () => Promise<CommandSpec>;
}

export const COMMANDS: Record<string, CommandEntry> = {
  build: { summary: 'Build a model from a directory (and a Modelfile) into the store', load: async () => (await import('./commands/build.js')).build },
  modelfile: { summary: 'Generate a Modelfile from a model directory (modelfile generate DIR)', load: async () => (await import('./commands/modelfile.js')).modelfileGenerate },
  ls: { summary: 'List the models in the store', load: async () => (await import('./commands/ls.js')).ls },
  inspect: { summary: 'Show a model: manifest, config and files', load: async () => (await import('./commands/inspect.js')).inspect },
  index: { summary: "Make or change an index of a model's variants (index create|add|rm REF VARIANT...)", load: async () => (await import('./commands/index-cmd.js')).indexCommand },
  tag: { summary: 'Give a model another name', load: async () => (await import('./commands/tag.js')).tag },
  rm: { summary: 'Remove model references (blobs go with prune)', load: async () => (await import('./commands/rm.js')).rm },
  prune: { summary: 'Delete blobs that no model references', load: async () => (await import('./commands/prune.js')).prune },
  verify: { summary: 'Rehash stored blobs and report corruption', load: async () => (await import('./commands/verify.js')).verify },
  attach: { summary: 'Attach files (SBOM, eval results, model card) to a model as an OCI referrer', load: async () => (await import('./commands/attach.js')).attachCommand },
  referrers: { summary: 'List the artifacts attached to a model, as a tree', load: async () => (await import('./commands/attach.js')).referrersCommand },
  sign: { summary: 'Sign a model with a key (a Sigstore bundle over its manifest and files, as a referrer)', load: async () => (await import('./commands/sign.js')).signCommand },
  'verify-signature': { summary: "Check a model's signature against a public key (manifest and every file)", load: async () => (await import('./commands/sign.js')).verifySignatureCommand },
  push: { summary: 'Push a model to a registry', load: async () => (await import('./commands/push.js')).push },
  pull: { summary: 'Pull a model from a registry into the store (resumable)', load: async () => (await import('./commands/push.js')).pull },
  copy: { summary: 'Copy a model between registries or repositories', load: async () => (await import('./commands/push.js')).copyCommand },
  tags: { summary: 'List the tags of a repository in a registry', load: async () => (await import('./commands/login.js')).tagsCommand },
  login: { summary: 'Save credentials for a registry (docker config.json)', load: async () => (await import('./commands/login.js')).loginCommand },
  logout: { summary: 'Remove saved credentials for a registry', load: async () => (await import('./commands/login.js')).logoutCommand },
  extract: { summary: "Restore a model's files into a directory", load: async () => (await import('./commands/extract.js')).extract },
  serve: { summary: 'Run an OCI registry (push/pull models with nothing else installed); serve gc, serve verify', load: async () => (await import('./commands/serve.js')).serveCommand },
  import: { summary: "Import a model from Ollama's models directory (hard links, verified)", load: async () => (await import('./commands/interop.js')).importCommand },
  export: { summary: "Export a model to Ollama's models directory for `ollama run`", load: async () => (await import('./commands/interop.js')).exportCommand },
  run: { summary: 'Run a model with llama.cpp: one answer, or a chat (pulls it first if needed)', load: async () => (await import('./commands/run.js')).runCommand },
  api: { summary: "Serve the store's models over an OpenAI-compatible HTTP API (like Docker Model Runner)", load: async () => (await import('./commands/api.js')).apiCommand },
  convert: { summary: 'Convert a model to Docker Model Runner or ModelPack form (same blobs)', load: async () => (await import('./commands/interop.js')).convertCommand },
  completion: { summary: 'Print a shell completion script (completion bash|zsh|fish)', load: async () => (await import('./commands/completion.js')).completionCommand },
};

/** The options `mpk` itself takes before the command. */
export const GLOBAL_FLAGS = ['--store', '-q', '--quiet', '-h', '--help', '-v', '--version'];
