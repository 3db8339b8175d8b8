import type { FailureMode } from './policy.js';

/** What failed under a cache operation. `key-service-down`: known down, so the key service is not called at all. */
export type Failure = 'key-service-down' | 'key-service' | 'store' | 'audit';

/**
 * What the operation does about it: `throw` the typed error, serve a `miss`, `drop` the write, or go on with
 * data keys already unwrapped (`use-held-keys`), which may still fail and then becomes a miss.
 */
export type FailureResponse = 'throw' | 'miss' | 'drop' | 'use-held-keys';

/**
 * The failure table of DESIGN.md §5 as one pure function (PHI-FAIL-01). Audit failures throw in every mode
 * (fail-closed audit); store failures never throw a read or write, they miss or drop; the key service follows the
 * class's mode, and writes always wait for it.
 */
export function failureResponse(
  mode: FailureMode,
  failure: Failure,
  operation: 'read' | 'write',
): FailureResponse {
  if (failure === 'audit') return 'throw';
  if (failure === 'store') return operation === 'read' ? 'miss' : 'drop';
  if (mode === 'closed') return 'throw';
  if (operation === 'write') return 'drop';
  return mode === 'read-only' && failure === 'key-service-down' ? 'use-held-keys' : 'miss';
}
