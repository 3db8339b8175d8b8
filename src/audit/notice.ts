/**
 * What the verifier reports that is no fault (docs/audit-log.md, "What the verifier reports"): the writer said so
 * itself, in a signed or chained line, or left bytes aside as evidence. Notices never make a log fail.
 */
export type NoticeKind = 'outage' | 'crash' | 'restart' | 'torn-bytes';

export interface Notice {
  readonly kind: NoticeKind;
  readonly chain: string;
  readonly stream: string;
  /** The outage record's seq, or the seq the restart checkpoint seals. */
  readonly seq?: number;
  readonly file?: string;
  readonly line?: number;
  /** When it began and ended (ISO): an outage's `from` and `to`, a restart's last record before it and its time. */
  readonly from?: string;
  readonly to?: string;
  /**
   * outage: `records` refused, `operations` refused, `ms` it lasted; crash and restart: `checked` records and
   * `tornBytes` set aside; torn-bytes: `bytes` in the file.
   */
  readonly counts: Readonly<Record<string, number>>;
  readonly message: string;
}
