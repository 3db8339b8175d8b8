import { checkedKeyProvider } from '../../src/keys/checked-provider.js';
import type { KekProvider, KeyProvider } from '../../src/keys/key-provider.js';
import { openKekProvider } from '../../src/keys/providers/gcp-kms.js';
import { describeKekProvider } from '../../src/testing/key-provider-suite.js';
import { startFakeGcpKms } from '../harness/fake-gcp-kms.js';

const gcp = async () => {
  const kms = await startFakeGcpKms();
  const provider = await openKekProvider(kms.keyUri(), { domain: 'cache', endpoint: kms.endpoint });
  return { provider, close: () => kms.close() };
};

describeKekProvider('Cloud KMS (official client, REST, local server)', gcp);
describeKekProvider('Cloud KMS, checked', async () => {
  const made = await gcp();
  return {
    ...made,
    provider: checkedKeyProvider(withNameSecret(made.provider)),
  };
});

/** checkedKeyProvider takes a whole KeyProvider; the name secret plays no part in these tests. */
function withNameSecret(provider: KekProvider): KeyProvider {
  return {
    name: provider.name,
    currentKid: () => provider.currentKid(),
    generateDataKey: (context, options) => provider.generateDataKey(context, options),
    unwrapDataKey: (key, context, options) => provider.unwrapDataKey(key, context, options),
    rewrapDataKey: (key, context, options) => provider.rewrapDataKey(key, context, options),
    describeKek: (options) => provider.describeKek(options),
    nameSecret: async () => Buffer.alloc(32, 7),
  };
}
