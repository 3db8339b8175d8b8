export type { ProbeTarget, ProbeTls } from './probe-connection.js';
export type { CheckResult, PostureReport, PostureSummary, Verdict } from './report.js';
export { sentinelMaster } from './sentinel-master.js';
export { type VerifyOptions, verifyPosture } from './verify.js';
