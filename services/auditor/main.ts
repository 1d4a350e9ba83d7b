import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { decodeBatch } from '../../lib/codec/batch.js';
import { decode } from '../../lib/codec/codec.js';
import { messageTypeOf, parseHostSubject, subjects } from '../../lib/codec/subjects.js';
import type { RunConfig } from '../../lib/config/run-config.js';
import { wallClock } from '../../lib/runtime/nats/clock.js';
import { topologyOf } from '../../lib/topology/index.js';
import { HEADER_BATCH, HEADER_CLOCK_US, HEADER_HOST } from '../../lib/runtime/nats/shell.js';
import { Auditor } from './auditor.js';
import type { Violation } from './violations.js';

/** What the auditor needs of a VM's traffic: never the checkpoint data itself. */
const AUDITED_HOST_KINDS = ['tx', 'tx.data', 'epoch', 'commit', 'assign.checkpointer', 'permit', 'status'] as const;

export interface BusAuditorCounters {
  messages: number;
  /** Messages that did not decode (counted, not audited). */
  undecodable: number;
}

/**
 * The auditor as a subscriber to one VM's subjects over NATS. It must
 * subscribe before the VM's services start: it learns which host holds which
 * term from their first assignments, and each byte's epoch from its first
 * emission. Each message is observed as it arrives, which on one server is the
 * order the server received them in: a cause before its effect. Output on
 * wire.out carries its publisher's host and clock in headers (the release
 * permit is checked on that clock); other subjects name their host.
 */
export class BusAuditor {
  readonly auditor: Auditor;
  readonly counters: BusAuditorCounters = { messages: 0, undecodable: 0 };
  readonly #subs: Subscription[] = [];
  readonly #wall = wallClock();

  /**
   * The auditor of a VM, or null when its mode has no output commit to audit
   * (native: the guest talks to the client directly), as in the simulator.
   */
  static forVm(nc: NatsConnection, config: RunConfig, onViolation: (v: Violation) => void): BusAuditor | null {
    return topologyOf(config).replicated ? new BusAuditor(nc, config.vmId, onViolation) : null;
  }

  constructor(
    readonly nc: NatsConnection,
    readonly vmId: string,
    onViolation: (v: Violation) => void,
  ) {
    this.auditor = new Auditor(vmId, onViolation);
    const s = subjects(vmId);
    const subscribe = (subject: string) => this.#subs.push(nc.subscribe(subject, { callback: (err, m) => void (err === null && this.#onMessage(m)) }));
    subscribe(s.wireOut);
    subscribe(s.ckptAck);
    for (const kind of AUDITED_HOST_KINDS) subscribe(`specula.${vmId}.h.*.${kind}`);
  }

  get violations(): readonly Violation[] {
    return this.auditor.violations;
  }

  #onMessage(m: Msg): void {
    const nowUs = this.#wall.nowUs();
    let parts: Uint8Array[];
    let type;
    try {
      type = messageTypeOf(m.subject);
      parts = m.headers?.get(HEADER_BATCH) ? decodeBatch(m.data) : [m.data];
    } catch {
      this.counters.undecodable++;
      return;
    }
    const stampedHost = m.headers?.get(HEADER_HOST) ?? '';
    const stampedClock = Number(m.headers?.get(HEADER_CLOCK_US) ?? '');
    const host = stampedHost !== '' ? stampedHost : (parseHostSubject(m.subject)?.host ?? null);
    const localUs = Number.isSafeInteger(stampedClock) && stampedClock > 0 ? stampedClock : nowUs;
    for (const part of parts) {
      let msg;
      try {
        msg = decode(type, part);
      } catch {
        this.counters.undecodable++;
        continue;
      }
      this.counters.messages++;
      this.auditor.observe(m.subject, msg, { atUs: nowUs, host, localUs });
    }
  }

  close(): void {
    for (const s of this.#subs) s.unsubscribe();
    this.#subs.length = 0;
  }
}
