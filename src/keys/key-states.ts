import { PhiCacheError } from '../errors.js';

/**
 * The life of a cache KEK version as the fleet sees it (DESIGN.md §4). A fleet has no atomic switch, so a new
 * version is first `pending` (every instance may unwrap under it, none wraps), then `active` (new data keys are
 * wrapped under it) once every instance has had time to see it, then `decrypt-only` when another is promoted,
 * and `retired` when nothing live needs it any more. A retired version unwraps nothing on any instance.
 */
export type KeyState = 'pending' | 'active' | 'decrypt-only' | 'retired';

export interface KekVersionState {
  readonly kid: string;
  readonly state: KeyState;
  /** Every time in ms since the Unix epoch, by the clock of the instance that made the change. */
  readonly publishedAt: number;
  /** The earliest promotion: publication plus the bound within which every instance has seen the version. */
  readonly promotableAt: number;
  readonly activeAt?: number;
  readonly decryptOnlyAt?: number;
  readonly retiredAt?: number;
  /** Retired with `force` while something may still have needed it. */
  readonly forced?: boolean;
}

export interface KeyStates {
  /** Incremented by every change: an instance never goes back to a lower one (a restored or replayed record). */
  readonly seq: number;
  /**
   * The data key generation: new writes seal only under data keys of this generation, so moving it (a rekey, or a
   * promotion) moves every instance to new data keys at its next write, with no pause in traffic.
   */
  readonly generation: number;
  readonly changedAt: number;
  readonly keks: readonly KekVersionState[];
}

/** What a fleet that never rotated has: the provider's current version, active since always. */
export function initialKeyStates(currentKid: string): KeyStates {
  return {
    seq: 0,
    generation: 0,
    changedAt: 0,
    keks: [{ kid: currentKid, state: 'active', publishedAt: 0, promotableAt: 0, activeAt: 0 }],
  };
}

export function activeKid(states: KeyStates): string {
  const active = states.keks.find((k) => k.state === 'active');
  if (active === undefined) throw new PhiCacheError('ERR_INTERNAL', 'the key states have no active version');
  return active.kid;
}

export function versionOf(states: KeyStates, kid: string): KekVersionState | undefined {
  return states.keks.find((k) => k.kid === kid);
}

/** Publishes a new version as `pending`; it may be promoted `boundMs` later. */
export function publish(states: KeyStates, kid: string, now: number, boundMs: number): KeyStates {
  if (versionOf(states, kid) !== undefined) {
    throw refused(`KEK version ${kid} is already known (${versionOf(states, kid)!.state})`);
  }
  if (states.keks.some((k) => k.state === 'pending')) {
    throw refused('another KEK version is pending: promote it first, or retire it');
  }
  return changed(states, now, false, [
    ...states.keks,
    { kid, state: 'pending', publishedAt: now, promotableAt: now + boundMs },
  ]);
}

/** Makes a pending version active (and the active one decrypt-only), once every instance has had time to see it. */
export function promote(states: KeyStates, kid: string, now: number): KeyStates {
  const version = versionOf(states, kid);
  if (version?.state !== 'pending') {
    throw refused(
      `KEK version ${kid} is ${version?.state ?? 'not known'}; only a pending version is promoted`,
    );
  }
  if (now < version.promotableAt) {
    throw refused(
      `KEK version ${kid} was published at ${iso(version.publishedAt)}; instances may not all have seen it yet`,
      version.promotableAt,
    );
  }
  return changed(
    states,
    now,
    true,
    states.keks.map((k) => {
      if (k.kid === kid) return { ...k, state: 'active', activeAt: now };
      if (k.state === 'active') return { ...k, state: 'decrypt-only', decryptOnlyAt: now };
      return k;
    }),
  );
}

/** New data keys for new writes, under the same KEK version. */
export function rekey(states: KeyStates, now: number): KeyStates {
  return changed(states, now, true, states.keks);
}

/** Retires a decrypt-only version (or a pending one never promoted); the caller has checked nothing needs it. */
export function retire(states: KeyStates, kid: string, now: number, forced: boolean): KeyStates {
  const version = versionOf(states, kid);
  if (version === undefined) throw refused(`KEK version ${kid} is not known`);
  if (version.state === 'active') {
    throw refused(`KEK version ${kid} is active: promote another version first (phicache keys rotate)`);
  }
  if (version.state === 'retired') throw refused(`KEK version ${kid} is already retired`);
  return changed(
    states,
    now,
    false,
    states.keks.map((k) =>
      k.kid === kid ? { ...k, state: 'retired', retiredAt: now, ...(forced ? { forced: true } : {}) } : k,
    ),
  );
}

function changed(
  states: KeyStates,
  now: number,
  newGeneration: boolean,
  keks: readonly KekVersionState[],
): KeyStates {
  return {
    seq: states.seq + 1,
    generation: states.generation + (newGeneration ? 1 : 0),
    changedAt: now,
    keks,
  };
}

export function refused(message: string, earliest?: number): PhiCacheError {
  return new PhiCacheError(
    'ERR_KEY_STATE',
    earliest === undefined ? message : `${message}; the earliest safe time is ${iso(earliest)}`,
    earliest === undefined ? {} : { hint: `Run the command again at or after ${iso(earliest)}.` },
  );
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Checks a decoded document's shape: a record that does not parse is as good as none (and is reported). */
export function isKeyStates(value: unknown): value is KeyStates {
  const states = value as Partial<KeyStates> | null;
  const time = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  const optionalTime = (v: unknown) => v === undefined || time(v);
  return (
    typeof states === 'object' &&
    states !== null &&
    time(states.seq) &&
    time(states.generation) &&
    time(states.changedAt) &&
    Array.isArray(states.keks) &&
    states.keks.filter((k) => k?.state === 'active').length === 1 &&
    states.keks.every(
      (k) =>
        typeof k?.kid === 'string' &&
        k.kid.length > 0 &&
        ['pending', 'active', 'decrypt-only', 'retired'].includes(k.state) &&
        time(k.publishedAt) &&
        time(k.promotableAt) &&
        optionalTime(k.activeAt) &&
        optionalTime(k.decryptOnlyAt) &&
        optionalTime(k.retiredAt),
    )
  );
}
