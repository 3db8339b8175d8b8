/**
 * Options for an official Google Cloud client (`@google-cloud/kms`, `@google-cloud/secret-manager`) on the REST
 * transport (`fallback: true`) in every case, so that what the tests run against a local server is the transport
 * production uses. Without an endpoint: Google's default host with Application Default Credentials. With
 * `https://host[:port]` (a regional or Private Service Connect endpoint): that host, same credentials. With
 * `http://` (a local emulator or the test server): loopback only and no credentials at all, because a bearer
 * token must never travel unencrypted.
 */
export function gcpRestClientOptions(
  endpoint: string | undefined,
  service: { readonly name: string; readonly host: string },
): Record<string, unknown> {
  if (endpoint === undefined) return { fallback: true };
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new TypeError(`the ${service.name} endpoint must be a URL such as https://${service.host}`);
  }
  const port = url.port === '' ? undefined : Number(url.port);
  if (url.protocol === 'https:') {
    return { fallback: true, apiEndpoint: url.hostname, ...(port === undefined ? {} : { port }) };
  }
  if (url.protocol === 'http:' && LOOPBACK.has(url.hostname)) {
    return {
      fallback: true,
      protocol: 'http',
      apiEndpoint: url.hostname,
      port: port ?? 80,
      authClient: anonymousAuthClient,
    };
  }
  throw new RangeError(`a ${service.name} endpoint must be https, or plain http on a loopback address only`);
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * What the REST transport asks of an auth client (`getRequestHeaders` to be recognised, `fetch` to send), with
 * no token: for a local emulator only.
 */
const anonymousAuthClient = {
  getRequestHeaders: async () => new Headers(),
  fetch: (url: string, init: RequestInit) => fetch(url, init),
};
