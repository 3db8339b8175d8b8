import { after } from 'node:test';
import { checkedKekProvider } from '../../src/keys/checked-provider.js';
import { createPkcs11Kek, openPkcs11KekProvider } from '../../src/keys/providers/pkcs11.js';
import { describeKekProvider } from '../../src/testing/key-provider-suite.js';
import { startSoftHsm } from '../harness/softhsm.js';

// One token with one KEK for the whole file, made on first use; each test opens and closes its own provider.
const hsm = startSoftHsm();
const token = hsm.then(async (softHsm) => {
  const made = await softHsm.createToken('phicache-conformance');
  await createPkcs11Kek(made.uri('phicache-cache'), { env: made.env });
  return made;
});
after(async () => (await hsm).stop());

const open = async () => {
  const made = await token;
  return openPkcs11KekProvider(made.uri('phicache-cache'), { domain: 'cache', env: made.env });
};

const pkcs11 = async () => {
  const provider = await open();
  // A peer is a second provider with a session of its own on the same token, as another instance would have.
  return { provider, openPeer: open, close: () => provider.close() };
};

describeKekProvider('pkcs11 on a SoftHSM2 token', pkcs11);
describeKekProvider('pkcs11 on a SoftHSM2 token, checked', async () => {
  const { provider, close } = await pkcs11();
  return {
    provider: checkedKekProvider(provider),
    openPeer: async () => checkedKekProvider(await open()),
    close,
  };
});
