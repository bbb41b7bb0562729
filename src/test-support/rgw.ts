/**
 * A real S3-compatible store for the tests of `mpk serve --storage s3://`: Ceph's RADOS Gateway
 * (Debian's ceph-mon, ceph-osd, radosgw) started by scripts/peers/ceph-rgw-up.sh (the team's ../shared/peers script, kept in the
 * repository so that a clean checkout has it) in a temp dir on
 * free ports, once per test file (~6-8 s), and stopped by its PIDs (ceph-rgw-down.sh) when the file
 * ends. Each test takes its own bucket. Where radosgw is missing the tests skip with the reason,
 * except under CI=true, where that is a failure.
 */
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeS3Client } from '../serve/s3/s3-client.js';
import { hasCommand, runCommand } from './peers.js';

export interface Rgw {
  endpoint: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  client: S3Client;
  /** A new empty bucket: `s3://NAME`. */
  bucket(): Promise<string>;
  stop(): Promise<void>;
}

const PEERS = new URL('../../scripts/peers/', import.meta.url).pathname;

/** Why RGW cannot run here, or undefined. */
export function rgwMissing(): string | undefined {
  for (const cmd of ['radosgw', 'ceph-mon', 'ceph-osd']) if (!hasCommand(cmd)) return `${cmd} is not installed (apt-get install --no-install-recommends ceph-mon ceph-osd radosgw, or run .ci/run)`;
  if (!existsSync(join(PEERS, 'ceph-rgw-up.sh'))) return `${PEERS}ceph-rgw-up.sh is missing`;
  return undefined;
}

/** Starts RGW, or returns the reason it cannot (an Error under CI=true). */
export async function startRgw(): Promise<Rgw | string> {
  const given = process.env.MPK_TEST_RGW; // endpoint=… access=… secret=… (an RGW already running: faster runs while developing)
  if (given) return connect(given, async () => undefined);
  const missing = rgwMissing();
  if (missing) {
    if (process.env.CI === 'true') throw new Error(`CI: ${missing}`);
    return missing;
  }
  let last = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), 'mpk-rgw-'));
    // Two ports (RGW, the monitor) outside the OSD's 6800-7300 and the ephemeral range.
    const port = 20000 + 2 * Math.floor(Math.random() * 5000);
    const up = await runCommand('bash', [join(PEERS, 'ceph-rgw-up.sh'), join(dir, 'c'), String(port)], { env: { ...process.env, STORE_GB: '4' } });
    if (up.code !== 0) {
      last = up.stderr.slice(-2000);
      await runCommand('bash', [join(PEERS, 'ceph-rgw-down.sh'), join(dir, 'c')]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
      continue;
    }
    return connect(await readFile(join(dir, 'c', 'env'), 'utf8'), async () => {
      await runCommand('bash', [join(PEERS, 'ceph-rgw-down.sh'), join(dir, 'c'), '--purge']);
      await rm(dir, { recursive: true, force: true });
    });
  }
  throw new Error(`RGW did not start: ${last}`);
}

function connect(env: string, down: () => Promise<void>): Rgw {
  const get = (k: string): string => new RegExp(`${k}=(\\S+)`).exec(env)![1]!;
  const endpoint = get('endpoint');
  const credentials = { accessKeyId: get('access'), secretAccessKey: get('secret') };
  const client = makeS3Client({ endpoint, credentials });
  let stopped: Promise<void> | undefined;
  return {
    endpoint,
    credentials,
    client,
    async bucket() {
      const name = `t-${randomBytes(6).toString('hex')}`;
      await client.send(new CreateBucketCommand({ Bucket: name }));
      return `s3://${name}`;
    },
    stop() {
      stopped ??= (async () => {
        client.destroy();
        await down();
      })();
      return stopped;
    },
  };
}
