import { open } from 'node:fs/promises';
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { PhiCacheError, PolicyInvalidError, type PolicyIssue } from '../errors.js';
import { Policy } from './policy.js';
import { policyDocumentSchema } from './schema.js';

/** A policy is a page of YAML; anything near this size is a mistake (or an attack on the parser). */
const maxPolicyBytes = 1024 * 1024;

export type PolicyPath = readonly (string | number)[];

/** A problem in a policy file, and whether it was the YAML syntax or the schema that found it. */
export interface LocatedPolicyIssue extends PolicyIssue {
  readonly rule: 'POL-YAML-01' | 'POL-SCHEMA-01';
}

/** What reading a policy text found: the policy when it is valid, every issue otherwise, and a way to find lines. */
export interface PolicyAnalysis {
  readonly policy: Policy | undefined;
  readonly issues: readonly LocatedPolicyIssue[];
  /** The document as plain data, valid or not (undefined when the YAML itself is broken). */
  readonly data: unknown;
  lineOf(path: PolicyPath): number | undefined;
}

/** Parses a policy (YAML, or JSON, which YAML reads too). Throws PolicyInvalidError listing every issue. */
export function parsePolicy(text: string, source: string): Policy {
  const analysis = analyzePolicy(text);
  if (analysis.policy === undefined) {
    throw new PolicyInvalidError(
      source,
      analysis.issues.map(({ path, line, message }) => ({ path, line, message })),
    );
  }
  return analysis.policy;
}

export async function loadPolicyFile(path: string): Promise<Policy> {
  return parsePolicy(await readPolicyFile(path), path);
}

/** Reads a policy file as UTF-8. The error names the path and the system error code, never file contents. */
export async function readPolicyFile(path: string): Promise<string> {
  try {
    const handle = await open(path, 'r');
    try {
      const { size } = await handle.stat();
      if (size > maxPolicyBytes) {
        throw new PhiCacheError(
          'ERR_POLICY_INVALID',
          `policy ${path} is larger than ${maxPolicyBytes} bytes`,
        );
      }
      return await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof PhiCacheError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new PhiCacheError('ERR_POLICY_INVALID', `policy ${path} cannot be read (${code})`, {
      cause: error,
      hint: 'Check that the policy file exists and that this process may read it.',
    });
  }
}

/** Parses and validates without throwing; `lintPolicy` and `parsePolicy` share it. */
export function analyzePolicy(text: string): PolicyAnalysis {
  const lineCounter = new LineCounter();
  // prettyErrors off: its messages quote the surrounding source, and we place errors by line ourselves.
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  const lineAt = (offset: number | undefined): number | undefined =>
    offset === undefined ? undefined : Math.max(1, lineCounter.linePos(offset).line);
  const lineOf = (path: PolicyPath): number | undefined => lineAt(offsetOf(document.contents, path));

  if (document.errors.length > 0) {
    // The rest of a broken document parses into guesses; schema issues about guesses would mislead.
    const issues = document.errors.map(
      (error): LocatedPolicyIssue => ({
        rule: 'POL-YAML-01',
        path: formatPath([]),
        line: lineAt(error.pos[0]),
        message: `YAML ${error.code}: ${error.message}`,
      }),
    );
    return { policy: undefined, issues, data: undefined, lineOf };
  }

  let data: unknown;
  try {
    data = document.toJS();
  } catch (error) {
    // toJS refuses documents that expand aliases without bound (a "billion laughs" file).
    const issue: LocatedPolicyIssue = {
      rule: 'POL-YAML-01',
      path: formatPath([]),
      line: undefined,
      message: `YAML: ${(error as Error).message}`,
    };
    return { policy: undefined, issues: [issue], data: undefined, lineOf };
  }
  const result = policyDocumentSchema.safeParse(data, { error: describeMissing });
  if (result.success) return { policy: new Policy(result.data), issues: [], data, lineOf };

  const issues = result.error.issues
    .flatMap((issue) => expand(issue))
    .map(
      ({ path, message }): LocatedPolicyIssue => ({
        rule: 'POL-SCHEMA-01',
        path: formatPath(path),
        line: lineOf(path),
        message,
      }),
    )
    .sort((a, b) => (a.line ?? Number.POSITIVE_INFINITY) - (b.line ?? Number.POSITIVE_INFINITY));
  return { policy: undefined, issues, data, lineOf };
}

/** `classes.encrypted-phi.maxTtlSeconds`, `exceptions[0].expires`; the document itself is `(root)`. */
export function formatPath(path: PolicyPath): string {
  let out = '';
  for (const segment of path) {
    out += typeof segment === 'number' ? `[${segment}]` : out === '' ? segment : `.${segment}`;
  }
  return out === '' ? '(root)' : out;
}

function describeMissing(issue: z.core.$ZodRawIssue): string | undefined {
  return issue.code === 'invalid_type' && issue.input === undefined
    ? `required (${issue.expected})`
    : undefined;
}

/** One issue per unknown key, so each points at its own line. */
function expand(issue: z.core.$ZodIssue): { path: PolicyPath; message: string }[] {
  const path = issue.path.filter((segment): segment is string | number => typeof segment !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({ path: [...path, key], message: 'unknown key' }));
  }
  if (issue.code === 'invalid_key') {
    return [{ path, message: issue.issues[0]?.message ?? issue.message }];
  }
  return [{ path, message: issue.message }];
}

/**
 * Walks the YAML nodes along `path` and returns where the deepest node that exists starts. A map entry is placed
 * at its key, so a block value reports the line that names it, and a missing key reports its parent.
 */
function offsetOf(root: unknown, path: PolicyPath): number | undefined {
  let node = root;
  let offset = isNode(root) ? root.range?.[0] : undefined;
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find(
        (item) => isScalar(item.key) && String(item.key.value) === String(segment),
      );
      if (pair === undefined) break;
      offset = isNode(pair.key) ? (pair.key.range?.[0] ?? offset) : offset;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item: unknown = node.items[segment];
      if (!isNode(item)) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset;
}
