/** `mpk login HOST`, `mpk logout HOST`, `mpk tags REPO`. */
import { PackError } from '../../errors.js';
import { login, logout } from '../../transfer/login.js';
import { listRemoteTags } from '../../transfer/tags.js';
import type { CommandSpec } from '../context.js';
import { isTerminal, readSecret } from '../prompt.js';
import { REGISTRY_OPTIONS, transferOptions } from '../registry-flags.js';

export const loginCommand: CommandSpec = {
  name: 'login',
  usage: 'mpk login HOST [-u USER] [--password-stdin | -p PASSWORD]',
  summary:
    "Check credentials with the registry and save them in docker's config.json (or its credential\n" +
    'helper), shared with docker, oras and skopeo. DOCKER_CONFIG chooses the directory. On a terminal,\n' +
    'without --password-stdin or -p, the password is asked for (not echoed).',
  help: [
    '-u, --username USER   user name',
    '--password-stdin      read the password (or token) from standard input',
    '-p, --password PASS   the password on the command line (visible to other users; prefer --password-stdin)',
    '--json                print the result as JSON',
    '--plain-http, --insecure, --ca-file FILE   as for push and pull',
  ],
  options: {
    username: { type: 'string', short: 'u' },
    password: { type: 'string', short: 'p' },
    'password-stdin': { type: 'boolean' },
    json: { type: 'boolean' },
    'plain-http': REGISTRY_OPTIONS['plain-http']!,
    insecure: REGISTRY_OPTIONS.insecure!,
    'ca-file': REGISTRY_OPTIONS['ca-file']!,
  },
  args: [1, 1],
  async run(ctx, v, [host]) {
    const username = typeof v.username === 'string' ? v.username : ctx.env.MPK_REGISTRY_USER;
    let password = typeof v.password === 'string' ? v.password : undefined;
    if (v['password-stdin']) {
      if (password !== undefined) throw new PackError('USAGE', '--password and --password-stdin both given', { hint: 'use one' });
      if (!ctx.readStdin) throw new PackError('USAGE', '--password-stdin: no standard input here');
      password = (await ctx.readStdin()).replace(/\r?\n$/, '');
    } else if (password !== undefined) {
      ctx.warn('a password on the command line is visible to other users; prefer --password-stdin');
    }
    if (!username) throw new PackError('USAGE', 'login: no user name', { hint: 'give -u USER' });
    if (password === undefined) {
      if (!isTerminal(ctx.stdin)) {
        throw new PackError('USAGE', 'login: no password, and no terminal to ask for one on', { hint: `use --password-stdin, e.g. cat token.txt | mpk login ${host} -u ${username} --password-stdin` });
      }
      password = await readSecret(ctx.stdin, ctx.stderr, `Password for ${username}@${host}: `, ctx.signal);
    }
    if (password === '') throw new PackError('USAGE', 'login: the password is empty', { hint: 'type it at the prompt, or pipe it in with --password-stdin' });
    const r = await login(host!, { username, password }, { ...transferOptions(ctx, v), env: ctx.env });
    const savedIn = r.storedIn === 'file' ? 'config.json' : `docker-credential-${r.storedIn}`;
    ctx.stdout.write(v.json ? `${JSON.stringify({ host: r.host, username, savedIn })}\n` : `Login succeeded: ${r.host} (saved in ${savedIn})\n`);
    return 0;
  },
};

export const logoutCommand: CommandSpec = {
  name: 'logout',
  usage: 'mpk logout HOST [--json]',
  summary: 'Remove the saved credentials for HOST.',
  help: ['--json   print the result as JSON'],
  options: { json: { type: 'boolean' } },
  args: [1, 1],
  async run(ctx, v, [host]) {
    const r = await logout(host!, { env: ctx.env });
    if (v.json) ctx.stdout.write(`${JSON.stringify({ host: r.host, removed: r.removed })}\n`);
    else ctx.stdout.write(r.removed ? `Removed login credentials for ${r.host}\n` : `Not logged in to ${r.host}\n`);
    return 0;
  },
};

export const tagsCommand: CommandSpec = {
  name: 'tags',
  usage: 'mpk tags HOST/NAME',
  summary: 'List the tags of a repository in a registry (all pages).',
  help: ['--json   a JSON array', '--plain-http, --insecure, --ca-file FILE   as for push and pull'],
  options: { json: { type: 'boolean' }, 'plain-http': REGISTRY_OPTIONS['plain-http']!, insecure: REGISTRY_OPTIONS.insecure!, 'ca-file': REGISTRY_OPTIONS['ca-file']! },
  args: [1, 1],
  async run(ctx, v, [repo]) {
    const tags = await listRemoteTags(repo!, transferOptions(ctx, v));
    ctx.stdout.write(v.json ? JSON.stringify(tags) + '\n' : tags.map((t) => `${t}\n`).join(''));
    return 0;
  },
};
