/** What is cached: a data class from the policy and a reference within it. `id` may be a patient id: it is never stored raw. */
export interface EntryRef {
  readonly class: string;
  readonly resource: string;
  readonly id: string;
}

/** Who asks, why, and within which scope. PHI classes require `principal` and `purpose`. */
export interface AccessContext {
  readonly tenant: string;
  readonly user?: string;
  readonly session?: string;
  readonly principal?: string;
  readonly purpose?: string;
}

export function checkRef(ref: EntryRef): void {
  if (
    typeof ref !== 'object' ||
    ref === null ||
    typeof ref.class !== 'string' ||
    typeof ref.resource !== 'string' ||
    typeof ref.id !== 'string' ||
    ref.id.length === 0
  ) {
    throw new TypeError(
      'an entry reference is { class, resource, id } with string fields and a non-empty id',
    );
  }
}

export function checkContext(ctx: AccessContext): void {
  if (typeof ctx !== 'object' || ctx === null || typeof ctx.tenant !== 'string' || ctx.tenant.length === 0) {
    throw new TypeError('an access context needs a non-empty string `tenant`');
  }
  for (const field of ['user', 'session', 'principal', 'purpose'] as const) {
    if (ctx[field] !== undefined && typeof ctx[field] !== 'string') {
      throw new TypeError(`access context field ${field} must be a string when given`);
    }
  }
}

/** The context with its purpose left out: what a record of a refused purpose shows, since the purpose is caller input. */
export function withoutPurpose(ctx: AccessContext): AccessContext {
  const { purpose: _refused, ...rest } = ctx;
  return rest;
}
