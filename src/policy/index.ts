export { defaultPolicyPath, loadDefaultPolicy } from './default.js';
export { type LintFinding, type LintReport, lintPolicy } from './lint.js';
export { loadPolicyFile, parsePolicy, readPolicyFile } from './load.js';
export type {
  AccessScope,
  DataClass,
  FailureMode,
  PolicyDecision,
  PolicyException,
  ReadRequest,
  ScopePart,
  WriteDecision,
  WriteRequest,
} from './policy.js';
export { Policy } from './policy.js';
export {
  type AllowRuleId,
  allowRules,
  type DenyRuleId,
  denyRules,
  type LintRuleId,
  lintRules,
  type RuleId,
} from './rules.js';
export { type PolicyDocument, policyDocumentSchema } from './schema.js';
