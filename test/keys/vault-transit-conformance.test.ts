import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkedKekProvider } from '../../src/keys/checked-provider.js';
import type { KekProvider } from '../../src/keys/key-provider.js';
import { openKekProvider } from '../../src/keys/providers/vault-transit.js';
import { describeKekProvider } from '../../src/testing/key-provider-suite.js';
import { startFakeVault } from '../harness/fake-vault.js';

const TRANSIT_PATHS = [
  'transit/datakey/plaintext/phicache-cache',
  'transit/decrypt/phicache-cache',
  'transit/rewrap/phicache-cache',
  'transit/keys/phicache-cache',
];

/** Over a static token from the environment, with the least-privilege policy of docs/providers/vault.md. */
describeKekProvider('hcvault (token)', async () => {
  const vault = await startFakeVault();
  vault.createKey('phicache-cache');
  // Another instance: the same key, its own token.
  const open = () =>
    openKekProvider('hcvault://vault.internal:8200/transit/keys/phicache-cache', {
      domain: 'cache',
      endpoint: vault.endpoint,
      env: { VAULT_TOKEN: vault.issueToken(TRANSIT_PATHS) },
    });
  return { provider: await open(), openPeer: open, close: () => vault.close() };
});

/** Over AppRole, role id from the environment and secret id from a file, behind the port's checked wrapper. */
describeKekProvider('hcvault (AppRole, checked)', async () => {
  const vault = await startFakeVault();
  vault.createKey('phicache-cache');
  vault.addAppRole('role-1', 'secret-1', TRANSIT_PATHS, 3600);
  const dir = await mkdtemp(join(tmpdir(), 'phicache-vault-'));
  await writeFile(join(dir, 'secret-id'), 'secret-1\n', { mode: 0o600 });
  const open = async (): Promise<KekProvider> =>
    checkedKekProvider(
      await openKekProvider(
        `hcvault://vault.internal:8200/transit/keys/phicache-cache?role-id-source=env:ROLE&secret-id-source=file:${join(dir, 'secret-id')}`,
        { domain: 'cache', endpoint: vault.endpoint, env: { ROLE: 'role-1' } },
      ),
    );
  return {
    provider: await open(),
    openPeer: open,
    close: async () => {
      await vault.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
