// Registers the operator's command groups: ca, keys, root, backup/restore, audit, cluster.
import type { Command } from 'commander';
import { registerCaCommands } from './ca-commands.js';
import { registerKeysCommands } from './keys-commands.js';
import { registerRootCommands } from './root-commands.js';
import { registerBackupCommands } from './backup-commands.js';
import { registerAuditCommands } from './audit-commands.js';
import { registerClusterCommands } from './cluster-commands.js';

export function registerOperatorCommands(program: Command): void {
  registerCaCommands(program);
  registerKeysCommands(program);
  registerRootCommands(program);
  registerBackupCommands(program);
  registerAuditCommands(program);
  registerClusterCommands(program);
}
