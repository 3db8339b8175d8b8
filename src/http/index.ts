export {
  cacheHeadersFor,
  type FastifyLikeHeaders,
  type FastifyLikeRoute,
  fastifyPhiResponses,
  type HeaderTarget,
  markResponseClass,
  NO_STORE_HEADERS,
  phiResponse,
  setNoStore,
} from './no-store.js';
