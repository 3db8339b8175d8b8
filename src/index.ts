export type { PhiCacheErrorCode, PhiCacheErrorOptions, PolicyIssue } from './errors.js';
export {
  errorCodes,
  errorHints,
  isPhiCacheError,
  PhiCacheError,
  PolicyDeniedError,
  PolicyInvalidError,
} from './errors.js';
