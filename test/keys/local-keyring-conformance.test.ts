import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkedKeyProvider } from '../../src/keys/checked-provider.js';
import { LocalKeyring } from '../../src/keys/providers/local-keyring.js';
import { describeKekProvider } from '../../src/testing/key-provider-suite.js';

const local = async () => {
  const home = await mkdtemp(join(tmpdir(), 'phicache-kek-'));
  return {
    provider: await LocalKeyring.open({ home, env: {} }),
    // Another process's keyring: the same file, opened on its own.
    openPeer: () => LocalKeyring.open({ home, env: {} }),
    close: () => rm(home, { recursive: true, force: true }),
  };
};

describeKekProvider('local keyring', local);
describeKekProvider('local keyring, checked', async () => {
  const made = await local();
  return {
    ...made,
    provider: checkedKeyProvider(made.provider),
    openPeer: async () => checkedKeyProvider(await made.openPeer()),
  };
});
