/**
 * The catalog's static assets, served from the program itself (no CDN) under names that carry a
 * hash of their content, so they are cached for a year and a new version is a new name.
 */
import { createHash } from 'node:crypto';
import { JS } from './script.js';
import { CSS } from './style.js';

export interface Asset {
  path: string;
  type: string;
  body: Buffer;
}

function asset(name: string, ext: string, type: string, text: string): Asset {
  const body = Buffer.from(text);
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 12);
  return { path: `/-/assets/${name}-${hash}.${ext}`, type, body };
}

export const STYLE = asset('catalog', 'css', 'text/css; charset=utf-8', CSS);
export const SCRIPT = asset('catalog', 'js', 'text/javascript; charset=utf-8', JS);
export const ASSETS = new Map([STYLE, SCRIPT].map((a) => [a.path, a]));
