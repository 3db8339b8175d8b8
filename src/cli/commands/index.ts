import { auditExportCommand } from './audit-export.js';
import { auditHashCommand } from './audit-hash.js';
import { auditVerifyCommand } from './audit-verify.js';
import type { Command } from './command.js';
import { drillRotationCommand } from './drill-rotation.js';
import { keysInitCommand } from './keys-init.js';
import { keysListCommand } from './keys-list.js';
import { keysReencryptCommand } from './keys-reencrypt.js';
import { keysRetireCommand } from './keys-retire.js';
import { keysRewrapCommand } from './keys-rewrap.js';
import { keysRotateCommand } from './keys-rotate.js';
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
  keysListCommand,
  keysRotateCommand,
  keysRewrapCommand,
  keysReencryptCommand,
  keysRetireCommand,
  drillRotationCommand,
];
