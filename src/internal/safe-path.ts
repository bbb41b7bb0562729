/**
 * Paths that come from outside (layer annotations, tar entries) must stay inside their target
 * directory: no absolute paths, no drive letters, no `..`, no NUL. Symlinks on the way are checked
 * when writing (see extract), this module checks the text.
 */
import { PackError } from '../errors.js';

/**
 * Normalises a relative POSIX path (`./a//b/` → `a/b`) and refuses anything that could leave
 * the directory it is joined to. `what` names the source in the error.
 */
export function safeRelativePath(p: unknown, what: string): string {
  const refuse = (why: string): never => {
    throw new PackError('UNSAFE_PATH', `${what}: unsafe path ${JSON.stringify(p)}: ${why}`, {
      hint: 'the artifact is malformed or malicious; nothing was written outside the target directory',
    });
  };
  if (typeof p !== 'string' || p.length === 0) return refuse('empty');
  if (p.length > 4096) refuse('longer than 4096 characters');
  if (p.includes('\0')) refuse('contains a NUL byte');
  if (p.includes('\\')) refuse('contains a backslash');
  if (p.startsWith('/')) refuse('absolute');
  if (/^[A-Za-z]:/.test(p)) refuse('has a drive letter');
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.length === 0) refuse('names the directory itself');
  if (parts.some((s) => s === '..')) refuse('contains ..');
  return parts.join('/');
}
