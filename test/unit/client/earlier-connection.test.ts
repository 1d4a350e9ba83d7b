import { describe, expect, it } from 'vitest';
import { TcpFlag, type Segment } from '../../../lib/codec/messages.js';
import { START } from '../../../lib/runtime/types.js';
import { ClientCore } from '../../../services/client/core.js';
import { clientOptionsFromConfig } from '../../../services/client/options-from-config.js';
import { whyNotConnected } from '../../../cli/commands/service.js';
import { config } from '../../support/run.js';

const answer = (flags: number, seq: number, payloadBytes = 0): Segment => ({ type: 'segment', vmId: 'vm1', term: 1, epoch: 0, connId: 1, seq, ack: 1, window: 1000, flags, payload: new Uint8Array(payloadBytes), mss: 0, wscale: undefined, sackPermitted: false, sackBlocks: [], tsValUs: 0, tsEcrUs: 0, speculative: false });

describe('a client whose SYN meets a connection already established', () => {
  it('counts the ACKs and data that answer its SYN, stays unconnected, and says why', () => {
    const options = clientOptionsFromConfig(config({ mode: 'spec' }));
    const client = new ClientCore(options);
    client.handle(START, 0);
    expect(client.tcp.state).toBe('syn-sent');
    // The guest's challenge ACK for its old connection, and a retransmission of that connection's data.
    client.handle({ kind: 'message', subject: options.rxSubject, msg: answer(TcpFlag.ACK, 54_607_617) }, 100);
    client.handle({ kind: 'message', subject: options.rxSubject, msg: answer(TcpFlag.ACK, 37_830_449, 1448) }, 200);
    expect(client.stats.segmentsOfAnEarlierConnection).toBe(2);
    expect(client.stats.connectedAtUs).toBeNull();
    expect(whyNotConnected({ segmentsOfAnEarlierConnection: 2 })).toContain('earlier client');
    expect(whyNotConnected({ segmentsOfAnEarlierConnection: 0 })).toContain('nothing answered');
  });

  it('counts nothing on a connection that opens as it should', () => {
    const options = clientOptionsFromConfig(config({ mode: 'spec' }));
    const client = new ClientCore(options);
    client.handle(START, 0);
    client.handle({ kind: 'message', subject: options.rxSubject, msg: { ...answer(TcpFlag.SYN | TcpFlag.ACK, 5000), mss: 1448 } }, 100);
    expect(client.tcp.state).toBe('established');
    expect(client.stats.segmentsOfAnEarlierConnection).toBe(0);
  });
});
