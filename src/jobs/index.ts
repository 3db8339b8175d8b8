export { assertJobHasNoPhi, findPhiInJob, guardQueue, type JobParts, type QueueLike } from './job-guard.js';
