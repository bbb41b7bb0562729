/**
 * Errors carry a machine-readable code; callers branch on `hasErrorCode`, never on message text.
 * Messages start with their subject (a digest, a path, a reference); `hint` says what to do instead.
 */

export type ErrorCode =
  | 'USAGE' // bad command-line arguments
  | 'INVALID_REFERENCE' // a reference that the distribution grammar refuses
  | 'INVALID_DIGEST' // a digest that is not algorithm:hex of the right length
  | 'INVALID_MANIFEST' // a manifest, index or config that does not validate
  | 'INVALID_MEDIA_TYPE'
  | 'MODELFILE_SYNTAX' // a Modelfile that does not parse
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'DIGEST_MISMATCH' // bytes whose digest is not the one expected
  | 'SIZE_MISMATCH' // bytes whose count is not the one expected
  | 'SIZE_EXCEEDS_LIMIT'
  | 'CORRUPT' // stored content that failed verification
  | 'UNSAFE_PATH' // a path that would escape its directory
  | 'EMPTY_BUILD'
  | 'UNSUPPORTED'
  | 'LOCKED' // a lock that could not be taken in time
  | 'IO' // the file system refused (permissions, disk full, unreadable file)
  | 'UNAUTHORIZED' // a registry wants credentials, or refused the ones given (401)
  | 'DENIED' // a registry refused access with valid credentials (403)
  | 'NETWORK' // a connection failed, stalled or was cut, after retries
  | 'REGISTRY' // a registry answered with an error or something the protocol does not allow
  | 'ABORTED'
  | 'ENGINE_MISSING' // the inference engine a command needs is not installed
  | 'ENGINE' // the engine could not load or run the model
  | 'CONTEXT_OVERFLOW' // a prompt longer than the model's context
  | 'BUSY' // a bounded queue is full (try again later)
  | 'SIGNATURE_MISSING' // no signature by the given key where one is required
  | 'SIGNATURE_INVALID' // a signature that does not verify over its statement (altered)
  | 'SIGNATURE_WRONG_KEY' // signed, but by another key than the one given
  | 'SIGNATURE_OTHER_MODEL' // a valid signature whose statement is about another model (copied)
  | 'SIGNATURE_MANIFEST_CHANGED' // the same files under another manifest than the one signed
  | 'SIGNATURE_FILE_CHANGED' // files that differ from those signed
  | 'BUNDLE_INVALID'; // a signature bundle that does not parse (truncated, malformed)

export interface PackErrorOptions {
  cause?: unknown;
  /** What the user should do instead; printed after the message. */
  hint?: string;
}

export class PackError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  constructor(code: ErrorCode, message: string, opts: PackErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'PackError';
    this.code = code;
    this.hint = opts.hint;
  }
}

/** A Modelfile error with its position (1-based line and column). */
export class ModelfileSyntaxError extends PackError {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    message: string,
    hint?: string,
  ) {
    super('MODELFILE_SYNTAX', `${file}:${line}:${column}: ${message}`, { hint });
    this.name = 'ModelfileSyntaxError';
  }
}

/** True when err, or any error in its `cause` chain, has the code. */
export function hasErrorCode(err: unknown, code: ErrorCode): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 16; depth++) {
    if (e instanceof PackError && e.code === code) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * A fault worth retrying: the network (NETWORK) or a server that failed or throttled (an error
 * carrying an HTTP `status` of 5xx or 429), or an error marked `retryable` (a token that expired
 * while a streamed body was on its way). Auth refusals and bad content are not.
 */
export function isTransient(err: unknown): boolean {
  if (hasErrorCode(err, 'NETWORK') || (err as { retryable?: unknown })?.retryable === true) return true;
  const status = (err as { status?: unknown })?.status;
  // 501 Not Implemented and 507 Insufficient Storage do not pass by themselves
  return typeof status === 'number' && ((status >= 500 && status !== 501 && status !== 507) || status === 429);
}

/** The first PackError in err's cause chain, if any. */
export function findPackError(err: unknown): PackError | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 16; depth++) {
    if (e instanceof PackError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

const FS_HINTS: Record<string, [string, string]> = {
  ENOENT: ['no such file or directory', 'check the path'],
  EACCES: ['permission denied', 'check the file permissions'],
  EPERM: ['operation not permitted', 'check the file permissions'],
  ENOSPC: ['no space left on device', 'free disk space, then run the command again'],
  EISDIR: ['is a directory', 'give a file'],
  ENOTDIR: ['not a directory', 'check the path'],
  EROFS: ['read-only file system', 'choose a writable location'],
  EMFILE: ['too many open files', 'raise the open-file limit (ulimit -n)'],
  ELOOP: ['too many levels of symbolic links', 'fix the symbolic link loop'],
};

/** Turns a Node fs error into a PackError naming the path; passes PackErrors through. */
export function fsError(err: unknown, path: string, what = ''): PackError {
  if (err instanceof PackError) return err;
  const code = (err as NodeJS.ErrnoException)?.code ?? '';
  const known = FS_HINTS[code];
  const prefix = what ? `${what} ${path}` : path;
  if (code === 'ENOENT') {
    return new PackError('NOT_FOUND', `${prefix}: ${known![0]}`, { cause: err, hint: known![1] });
  }
  const reason = known ? known[0] : (err as Error)?.message ?? String(err);
  return new PackError('IO', `${prefix}: ${reason}`, { cause: err, hint: known?.[1] });
}
