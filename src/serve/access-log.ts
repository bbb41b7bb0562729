/** One access-log line per request, as text or JSON; control characters never reach the log. */
export interface AccessEntry {
  time: Date;
  remote: string;
  user: string;
  method: string;
  url: string;
  status: number;
  /** Request body bytes (Content-Length, else what arrived), and bytes written (headers included). */
  bytesIn: number;
  bytesOut: number;
  ms: number;
}

export type LogFormat = 'text' | 'json';

const clean = (s: string): string => s.replace(/[\u0000-\u001f\u007f-\u009f"\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

export function formatAccess(e: AccessEntry, format: LogFormat): string {
  const url = e.url.length > 1024 ? `${e.url.slice(0, 1024)}…` : e.url;
  if (format === 'json') {
    return JSON.stringify({
      time: e.time.toISOString(),
      remote: e.remote,
      user: e.user || null,
      method: e.method,
      url,
      status: e.status,
      in: e.bytesIn,
      out: e.bytesOut,
      ms: Math.round(e.ms * 10) / 10,
    });
  }
  return `${e.time.toISOString()} ${e.remote} ${e.user ? clean(e.user) : '-'} "${clean(e.method)} ${clean(url)}" ${e.status} in=${e.bytesIn} out=${e.bytesOut} ${e.ms.toFixed(1)}ms`;
}
