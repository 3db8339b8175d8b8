import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, test } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import { fastifyPhiResponses, phiResponse } from '../../src/http/no-store.js';
import { loadDefaultPolicy } from '../../src/policy/default.js';
import { listen } from '../session/http-client.js';

describe('no-store headers for responses carrying PHI', () => {
  test('Express: a PHI class route is no-store (errors too); a non-PHI class route is left alone', async () => {
    const policy = await loadDefaultPolicy();
    const app = express();
    app.get('/summary', phiResponse(policy, 'encrypted-phi'), (_req, res) => void res.json({ a1c: 6.1 }));
    app.get('/fails', phiResponse(policy, 'encrypted-phi'), () => {
      throw new Error('boom');
    });
    app.get('/unknown', phiResponse(policy, 'not-in-policy'), (_req, res) => void res.json({}));
    app.get('/flags', phiResponse(policy, 'feature-flag'), (_req, res) => void res.json({ beta: true }));
    const server = createServer(app);
    const base = await listen(server);
    for (const path of ['/summary', '/fails', '/unknown']) {
      const response = await fetch(`${base}${path}`);
      assert.equal(response.headers.get('cache-control'), 'no-store', path);
      assert.equal(response.headers.get('pragma'), 'no-cache', path);
    }
    const flags = await fetch(`${base}/flags`);
    assert.equal(flags.headers.get('cache-control'), null);
    server.close();
  });

  test('Fastify: routes declare their class in config', async () => {
    const policy = await loadDefaultPolicy();
    const app = Fastify();
    app.addHook('onRequest', fastifyPhiResponses(policy));
    app.get('/summary', { config: { phiClass: 'encrypted-phi' } }, async () => ({ a1c: 6.1 }));
    app.get('/health', async () => ({ ok: true }));
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const summary = await fetch(`${base}/summary`);
    assert.equal(summary.headers.get('cache-control'), 'no-store');
    assert.equal(summary.headers.get('pragma'), 'no-cache');
    assert.equal((await fetch(`${base}/health`)).headers.get('cache-control'), null);
    await app.close();
  });
});
