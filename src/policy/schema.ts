import { z } from 'zod';
import { fieldPathProblem } from './field-paths.js';

/**
 * The policy document as it is written (`version: 1`). Strict everywhere: a misspelt key is an error, not a
 * silently ignored control. Refinements run even when other parts of the document are wrong (`when`), so one
 * lint run reports every problem instead of one layer at a time; they therefore read their input defensively.
 */

export const classNamePattern = /^[a-z][a-z0-9-]{0,62}$/;
export const scopeParts = ['tenant', 'user', 'session'] as const;
/**
 * A purpose of use: letters, digits, dots, underscores and dashes, starting with a letter, at most 64. Wide enough
 * for HL7's PurposeOfUse codes (`TREAT`, `ETREAT`, `HPAYMT`) as well as plain words; narrow enough that a purpose
 * in an audit record is always one token a reviewer can read and group by.
 */
export const purposePattern = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/;
/**
 * HIPAA's treatment, payment and health care operations (45 CFR 164.506): the uses a covered entity may make of PHI
 * without an authorization, and the purposes a policy that names none accepts.
 */
export const defaultPurposes = ['treatment', 'payment', 'operations'] as const;
export const failureModes = ['closed', 'miss', 'read-only'] as const;

/** The ceiling of any class TTL: nothing in a PHI application should live in a cache for more than a day. */
export const maxTtlSecondsLimit = 86_400;
/**
 * Encrypted PHI lives at most 5 minutes, as the Memorystore configuration guidance has it (sessions at most 1800 s,
 * encrypted PHI at most 300 s; HIPAA itself sets no cache TTLs); only a dated exception goes beyond.
 */
export const phiMaxTtlSeconds = 300;
/** An exception raises a cap to at most an hour: it is a stopgap, not a second policy. */
export const exceptionMaxTtlSecondsLimit = 3_600;

const always = { when: () => true };

const text = z.string().regex(/\S/, { error: 'must not be blank' });

const identifier = z.string().regex(classNamePattern, {
  error: 'use lowercase letters, digits and dashes, starting with a letter (at most 63)',
});

function uniqueList<T extends z.ZodType<string>>(item: T) {
  return z
    .array(item)
    .refine((list) => new Set(list).size === list.length, { error: 'must not repeat an entry' });
}

/** A dot path into the serialized value: `name`, `labs.code`, or `labs.*` for a whole subtree. */
const fieldPath = z.string().superRefine((path, ctx) => {
  const problem = fieldPathProblem(path);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

const ttlSeconds = z.int().min(1).max(maxTtlSecondsLimit);

const dataClassSchema = z
  .strictObject({
    description: text,
    phi: z.boolean(),
    cacheable: z.boolean(),
    maxTtlSeconds: ttlSeconds.optional(),
    defaultTtlSeconds: ttlSeconds.optional(),
    scope: uniqueList(z.enum(scopeParts))
      .refine((scope) => scope.includes('tenant'), {
        error: 'must include tenant: tenants never share entries',
      })
      .default(['tenant']),
    fields: z
      .strictObject({
        allow: uniqueList(fieldPath),
        others: z.enum(['strip', 'reject']),
      })
      .optional(),
    tags: uniqueList(identifier).default([]),
    failureMode: z.enum(failureModes).optional(),
  })
  .superRefine((value: unknown, ctx) => {
    if (!isRecord(value)) return;
    const max = value.maxTtlSeconds;
    const fallback = value.defaultTtlSeconds;
    if (value.cacheable === true && max === undefined) {
      ctx.addIssue({ code: 'custom', path: ['maxTtlSeconds'], message: 'required when cacheable is true' });
    }
    if (value.phi === true && typeof max === 'number' && max > phiMaxTtlSeconds) {
      ctx.addIssue({
        code: 'custom',
        path: ['maxTtlSeconds'],
        message: `a phi class is capped at ${phiMaxTtlSeconds} seconds; going beyond needs a dated exception`,
      });
    }
    if (typeof fallback === 'number') {
      if (max === undefined) {
        ctx.addIssue({ code: 'custom', path: ['defaultTtlSeconds'], message: 'needs maxTtlSeconds' });
      } else if (typeof max === 'number' && fallback > max) {
        ctx.addIssue({
          code: 'custom',
          path: ['defaultTtlSeconds'],
          message: 'must not exceed maxTtlSeconds',
        });
      }
    }
  }, always);

/** Date-only means midnight UTC at the start of that day; a date-time must name its zone, or it is ambiguous. */
export const expiresSchema = z.union([z.iso.date(), z.iso.datetime({ offset: true })], {
  error: 'expected an ISO date (2026-12-31) or a date-time with a zone (2026-12-31T00:00:00Z)',
});

const exceptionSchema = z.strictObject({
  id: text.max(128),
  class: z.string(),
  owner: text,
  reason: text,
  compensatingControl: text,
  expires: expiresSchema,
  allow: z
    .strictObject({
      cacheable: z.literal(true).optional(),
      maxTtlSeconds: z.int().min(1).max(exceptionMaxTtlSecondsLimit).optional(),
    })
    .refine((allow) => allow.cacheable !== undefined || allow.maxTtlSeconds !== undefined, {
      error: 'must allow something: cacheable, maxTtlSeconds or both',
    }),
});

const purposesSchema = uniqueList(
  z.string().regex(purposePattern, {
    error: 'use letters, digits, dots, underscores and dashes, starting with a letter (at most 64)',
  }),
)
  .min(1, { error: 'must declare at least one purpose: with none, every PHI access is refused' })
  .default([...defaultPurposes]);

export const policyDocumentSchema = z
  .strictObject({
    version: z.literal(1),
    purposes: purposesSchema,
    classes: z.record(identifier, dataClassSchema),
    exceptions: z.array(exceptionSchema).default([]),
  })
  .superRefine((value: unknown, ctx) => {
    if (!isRecord(value) || !Array.isArray(value.exceptions)) return;
    const classes = isRecord(value.classes) ? value.classes : {};
    const seen = new Set<string>();
    value.exceptions.forEach((exception: unknown, index) => {
      if (!isRecord(exception)) return;
      const { id, class: className, allow } = exception;
      if (typeof id === 'string') {
        if (seen.has(id)) {
          ctx.addIssue({
            code: 'custom',
            path: ['exceptions', index, 'id'],
            message: 'duplicate exception id',
          });
        }
        seen.add(id);
      }
      if (typeof className !== 'string') return;
      const target = Object.hasOwn(classes, className) ? classes[className] : undefined;
      if (target === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['exceptions', index, 'class'],
          message: 'names a class the policy does not declare',
        });
        return;
      }
      // A class that may not be cached has no cap of its own to fall back on.
      if (
        isRecord(target) &&
        target.maxTtlSeconds === undefined &&
        isRecord(allow) &&
        allow.cacheable === true &&
        allow.maxTtlSeconds === undefined
      ) {
        ctx.addIssue({
          code: 'custom',
          path: ['exceptions', index, 'allow', 'maxTtlSeconds'],
          message: 'required: the class has no maxTtlSeconds to fall back on',
        });
      }
    });
  }, always);

export type PolicyDocument = z.output<typeof policyDocumentSchema>;
export type DataClassDocument = z.output<typeof dataClassSchema>;
export type PolicyExceptionDocument = z.output<typeof exceptionSchema>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
