import type { AuditEvent, AuditStream } from './audit-event.js';
import { canonicalJson } from './canonical-json.js';

/**
 * The canonical text of record bodies of one chain and stream, written from prebuilt fragments: the keys are in
 * sorted order once and for all, the chain and stream are quoted once, hex hashes, the ISO time and integers need
 * no quoting work, and only the event's own strings go through `JSON.stringify`. The result is byte for byte what
 * `canonicalJson` writes for the same body (the canonical-record tests hold both to it); a body off the common
 * shape (a `detail`, a value of an unexpected type) is written by `canonicalJson` itself, which also refuses what
 * canonical JSON cannot hold.
 */
export class RecordLineWriter {
  readonly #chain: string;
  readonly #stream: AuditStream;
  readonly #chainField: string;
  readonly #streamField: string;
  /** The quoted text of strings that recur record after record (service, principal, tenant, class, kid, ...). */
  readonly #quoted = new Map<string, string>();

  constructor(chain: string, stream: AuditStream) {
    this.#chain = chain;
    this.#stream = stream;
    this.#chainField = `,"chain":${JSON.stringify(chain)}`;
    this.#streamField = `,"stream":${JSON.stringify(stream)},"tenant":`;
  }

  /** The canonical body of `event` placed at `seq` after `prev`, stamped `ts` (ISO) in MAC epoch `mk`. */
  body(event: AuditEvent, seq: number, mk: number, prev: string, ts: string): string {
    if (event.detail === undefined && event.v === 1) {
      const actor = event.actor;
      const decision = event.decision;
      const outcome = event.outcome as { code?: unknown; count?: unknown; result: unknown };
      const code = outcome.code;
      const count = outcome.count;
      const texts = [
        event.action,
        actor.principal,
        actor.service,
        event.class,
        event.dek,
        event.key,
        event.kid,
        event.purpose,
        event.tenant,
        outcome.result,
      ];
      let ok =
        (code === undefined || typeof code === 'string') &&
        (count === undefined || Number.isSafeInteger(count)) &&
        typeof outcome.result === 'string' &&
        typeof event.action === 'string' &&
        typeof event.tenant === 'string';
      for (let i = 0; ok && i < texts.length; i++) {
        const text = texts[i];
        ok = typeof text === 'string' || text === null;
      }
      if (ok && decision !== null) {
        ok =
          typeof decision === 'object' &&
          typeof decision.effect === 'string' &&
          typeof decision.rule === 'string';
      }
      if (ok) {
        const decisionText =
          decision === null
            ? 'null'
            : `{"effect":${this.#quote(decision.effect)},"rule":${this.#quote(decision.rule)}}`;
        const outcomeText =
          `{${code === undefined ? '' : `"code":${JSON.stringify(code)},`}` +
          `${count === undefined ? '' : `"count":${count as number},`}"result":${this.#quote(outcome.result as string)}}`;
        return (
          `{"action":${this.#quote(event.action)},"actor":{"principal":${this.#quote(actor.principal)},` +
          `"service":${this.#quote(actor.service)}}${this.#chainField},"class":${this.#quote(event.class)},` +
          `"decision":${decisionText},"dek":${this.#quote(event.dek)},"key":${quote(event.key)},` +
          `"kid":${this.#quote(event.kid)},"mk":${mk},"outcome":${outcomeText},"prev":"${prev}",` +
          `"purpose":${this.#quote(event.purpose)},"seq":${seq}${this.#streamField}${this.#quote(event.tenant)},` +
          `"ts":"${ts}","v":1}`
        );
      }
    }
    return canonicalJson(this.#bodyObject(event, seq, mk, prev, ts));
  }

  /**
   * A string as JSON text, remembered: most fields take a few values over and over, and a map lookup costs less
   * than serializing. The map is emptied when it holds 1,024, so names that never recur cannot make it grow.
   */
  #quote(text: string | null): string {
    if (text === null) return 'null';
    let quoted = this.#quoted.get(text);
    if (quoted === undefined) {
      if (this.#quoted.size >= 1024) this.#quoted.clear();
      quoted = JSON.stringify(text);
      this.#quoted.set(text, quoted);
    }
    return quoted;
  }

  /** The body as an object, for the generic serializer: the same fields the fast path writes, and `detail`. */
  #bodyObject(event: AuditEvent, seq: number, mk: number, prev: string, ts: string) {
    const outcome = event.outcome as { code?: unknown; count?: unknown; result: unknown };
    return {
      action: event.action,
      actor: { principal: event.actor?.principal, service: event.actor?.service },
      chain: this.#chain,
      class: event.class,
      decision:
        event.decision === null || event.decision === undefined
          ? event.decision
          : { effect: event.decision.effect, rule: event.decision.rule },
      dek: event.dek,
      detail: event.detail,
      key: event.key,
      kid: event.kid,
      mk,
      outcome: { code: outcome?.code, count: outcome?.count, result: outcome?.result },
      prev,
      purpose: event.purpose,
      seq,
      stream: this.#stream,
      tenant: event.tenant,
      ts,
      v: event.v,
    };
  }
}

function quote(text: string | null): string {
  return text === null ? 'null' : JSON.stringify(text);
}
