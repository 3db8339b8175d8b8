import { findPhi, findPhiInValue, type PhiFinding } from '../detect/phi-detectors.js';
import { PhiCacheError } from '../errors.js';

/** What a job carries into the queue's store: its name, its data and a caller-chosen job id (part of Redis key names). */
export interface JobParts {
  readonly name: string;
  readonly data: unknown;
  readonly opts?: { readonly jobId?: string } | undefined;
}

/** Where PHI was seen in a job, by path and kind: never the value. */
export function findPhiInJob(job: JobParts): PhiFinding[] {
  const findings: PhiFinding[] = [];
  if (typeof job.name === 'string') {
    for (const kind of new Set(findPhi(job.name).map((match) => match.kind)))
      findings.push({ path: 'name', kind });
  }
  const jobId = job.opts?.jobId;
  if (typeof jobId === 'string') {
    for (const kind of new Set(findPhi(jobId).map((match) => match.kind)))
      findings.push({ path: 'opts.jobId', kind });
  }
  for (const finding of findPhiInValue(job.data))
    findings.push({ path: `data${finding.path.slice(1)}`, kind: finding.kind });
  return findings;
}

/** Throws `ERR_JOB_DATA_PHI` when the job holds PHI-looking fields or values (names, SSNs, dates of birth, ...). */
export function assertJobHasNoPhi(job: JobParts): void {
  const findings = findPhiInJob(job);
  if (findings.length === 0) return;
  const where = findings.map((finding) => `${finding.path} (${finding.kind})`).join(', ');
  throw new PhiCacheError(
    'ERR_JOB_DATA_PHI',
    `the job was refused before reaching the queue: PHI-looking ${where}`,
  );
}

/** The parts of a BullMQ `Queue` the guard wraps. */
export interface QueueLike {
  add(name: string, data: never, opts?: never): Promise<unknown>;
  addBulk(jobs: never[]): Promise<unknown>;
}

const GUARDED = Symbol.for('phicache.guardedQueue');

/**
 * Guards a BullMQ queue (or anything with its `add` and `addBulk`): a job whose name, data or job id looks like it
 * holds PHI is refused with `ERR_JOB_DATA_PHI` before anything is sent to Redis, and for `addBulk` no job of the
 * batch is sent. Job data should hold task ids and references; the worker reads patient data from the system of
 * record. Returns the same queue object, guarded in place, so workers, events and `close()` are untouched.
 */
export function guardQueue<Q extends QueueLike>(queue: Q): Q {
  const target = queue as Q & { [GUARDED]?: true };
  if (target[GUARDED]) return queue;
  const add = queue.add.bind(queue) as (name: string, data: unknown, opts?: unknown) => Promise<unknown>;
  const addBulk = queue.addBulk.bind(queue) as (jobs: unknown[]) => Promise<unknown>;
  Object.defineProperties(target, {
    add: {
      value: async (name: string, data: unknown, opts?: JobParts['opts']) => {
        assertJobHasNoPhi({ name, data, opts });
        return add(name, data, opts);
      },
    },
    addBulk: {
      value: async (jobs: JobParts[]) => {
        if (!Array.isArray(jobs)) throw new TypeError('addBulk takes an array of jobs');
        for (const job of jobs) assertJobHasNoPhi(job);
        return addBulk(jobs);
      },
    },
    [GUARDED]: { value: true },
  });
  return queue;
}
