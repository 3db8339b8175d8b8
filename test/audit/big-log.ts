import { sign } from 'node:crypto';
import { type FileHandle, mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditStream } from '../../src/audit/audit-event.js';
import { type AuditKeys, macEpochOf } from '../../src/audit/audit-keys.js';
import { canonicalRecordBody } from '../../src/audit/canonical-record.js';
import {
  type Checkpoint,
  checkpointHash,
  checkpointSigningInput,
  genesisHash,
  recordMac,
  sealRecordBody,
  sha256Hex,
} from '../../src/audit/record.js';

const NO_MAC = '0'.repeat(64);

export interface BigLogOptions {
  readonly keys: AuditKeys;
  /** Total size of the access records files to write, in bytes. */
  readonly bytes: number;
  /** Rotate records files past this size. Default 64 MiB, the file sink's default. */
  readonly fileBytes?: number;
  /** A checkpoint every this many records. Default 1,000, the trail's default. */
  readonly checkpointEvery?: number;
  /** Leave the MACs out (zeros), which the public key alone never checks: twice as fast to write. */
  readonly withoutMacs?: boolean;
  /** The first record's time, ms since the epoch; each record is 1 ms after the one before. */
  readonly start: number;
}

/**
 * Writes a large, valid audit chain fast, without a trail or fsync: records sealed and checkpoints signed exactly
 * as the trail does it (same record format and functions), for measuring the verifier on archives of any size.
 */
export async function writeBigLog(
  dir: string,
  options: BigLogOptions,
): Promise<{ chain: string; records: number; bytes: number; endedAt: number }> {
  const chain = 'big-chain';
  const folder = join(dir, chain);
  await mkdir(folder, { recursive: true });
  const everyRecords = options.checkpointEvery ?? 1000;
  const fileBytes = options.fileBytes ?? 64 * 1024 * 1024;
  let ts = options.start;
  const writer = (stream: AuditStream) => ({
    seq: 0,
    head: genesisHash(chain, stream, 'records'),
    checkpoint: genesisHash(chain, stream, 'checkpoints'),
    checkpoints: [] as string[],
  });
  const state = { access: writer('access'), admin: writer('admin') };
  const seal = (stream: AuditStream, event: Record<string, unknown>) => {
    const s = state[stream];
    const mk = macEpochOf(ts);
    const body = {
      ...event,
      stream,
      ts: new Date(ts).toISOString(),
      chain,
      seq: s.seq + 1,
      mk,
      prev: s.head,
    };
    const sealed = sealRecordBody(body as never, (hash) =>
      options.withoutMacs ? NO_MAC : recordMac(options.keys.streamKey(mk), hash),
    );
    s.seq += 1;
    s.head = sealed.hash;
    return sealed.line;
  };
  const checkpoint = (stream: AuditStream, final: boolean) => {
    const s = state[stream];
    const unsigned: Omit<Checkpoint, 'sig'> = {
      v: 1,
      type: 'checkpoint',
      chain,
      stream,
      seq: s.seq,
      head: s.head,
      ts: new Date(ts).toISOString(),
      everyMs: 3_600_000,
      everyRecords,
      prevCheckpoint: s.checkpoint,
      final,
      kid: options.keys.signingKid,
    };
    const signed: Checkpoint = {
      ...unsigned,
      sig: sign(null, checkpointSigningInput(unsigned), options.keys.signingKey).toString('base64'),
    };
    s.checkpoint = checkpointHash(signed);
    s.checkpoints.push(JSON.stringify(signed));
  };
  const common = {
    v: 1,
    kid: 'local:cache:v1',
    dek: null,
    decision: { effect: 'allow', rule: 'POL-ALLOW-01' },
  };
  const admin = [
    seal('admin', {
      ...common,
      actor: { service: 'phicache', principal: null },
      purpose: 'audit-configuration',
      tenant: '*',
      class: null,
      action: 'audit.open',
      key: null,
      decision: null,
      outcome: { result: 'ok' },
      detail: {
        streams: 'access,admin',
        sinks: 'file',
        checkpointEveryRecords: everyRecords,
        checkpointEveryMs: 3_600_000,
      },
    }),
  ];

  let written = 0;
  let fileIndex = 0;
  let file: FileHandle | undefined;
  let fileSize = 0;
  let pending: string[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    if (pending.length === 0) return;
    if (file === undefined || fileSize >= fileBytes) {
      await file?.close();
      fileIndex += 1;
      file = await open(join(folder, `access-${String(fileIndex).padStart(6, '0')}.jsonl`), 'w');
      fileSize = 0;
    }
    await file.write(pending.join(''));
    fileSize += pendingBytes;
    pending = [];
    pendingBytes = 0;
  };
  const canonicalAccess = (n: number, prev: string) => {
    const mk = macEpochOf(ts);
    // The canonical body written by hand: a template is several times faster than building and serializing an
    // object, and the first record is checked against the writer's own serializer below.
    return `{"action":"${n % 2 ? 'get' : 'set'}","actor":{"principal":"clinician-${n % 97}","service":"patient-portal"},"chain":"${chain}","class":"encrypted-phi","decision":{"effect":"allow","rule":"POL-ALLOW-01"},"dek":null,"key":"hmac-sha256:${n.toString(36).padStart(43, 'x')}","kid":"local:cache:v1","mk":${mk},"outcome":{"result":"${n % 3 ? 'hit' : 'miss'}"},"prev":"${prev}","purpose":"treatment","seq":${n},"stream":"access","tenant":"st-marys","ts":"${new Date(ts).toISOString()}","v":1}`;
  };
  while (written < options.bytes) {
    ts += 1;
    const s = state.access;
    const n = s.seq + 1;
    const body = canonicalAccess(n, s.head);
    if (n === 1 && body !== canonicalRecordBody(JSON.parse(body)))
      throw new Error('the template is not canonical');
    const hash = sha256Hex(body);
    const mac = options.withoutMacs ? NO_MAC : recordMac(options.keys.streamKey(macEpochOf(ts)), hash);
    const line = `${body.slice(0, -1)},"hash":"${hash}","mac":"${mac}"}\n`;
    s.seq = n;
    s.head = hash;
    pending.push(line);
    pendingBytes += line.length;
    written += line.length;
    if (n % everyRecords === 0) checkpoint('access', false);
    // Whole lines per file, and files rotated by size, as the file sink does.
    if (pendingBytes >= 1024 * 1024 || fileSize + pendingBytes >= fileBytes) await flush();
  }
  await flush();
  await file?.close();
  checkpoint('access', true);
  checkpoint('admin', true);
  const write = async (name: string, lines: readonly string[]) => {
    const handle = await open(join(folder, name), 'w');
    await handle.write(lines.map((l) => `${l}\n`).join(''));
    await handle.close();
  };
  await write('access-checkpoints.jsonl', state.access.checkpoints);
  await write('admin-000001.jsonl', admin);
  await write('admin-checkpoints.jsonl', state.admin.checkpoints);
  return { chain, records: state.access.seq + state.admin.seq, bytes: written, endedAt: ts };
}
