import { auditExportCommand } from './audit-export.js';
import { auditHashCommand } from './audit-hash.js';
import { auditVerifyCommand } from './audit-verify.js';
import type { Command } from './command.js';
import { drillRotationCommand } from './drill-rotation.js';
import { keysInitCommand } from './keys-init.js';
import { policyLintCommand } from './policy-lint.js';
import { ttlAuditCommand } from './ttl-audit.js';
import { verifyCommand } from './verify.js';

export type { Command, CommandOptions, CommandResult, CommandValues } from './command.js';

/** Every command the CLI offers; a new command is one line here. */
export const commands: readonly Command[] = [
  policyLintCommand,
  auditVerifyCommand,
  auditHashCommand,
  auditExportCommand,
  ttlAuditCommand,
  verifyCommand,
  keysInitCommand,
  drillRotationCommand,
];
