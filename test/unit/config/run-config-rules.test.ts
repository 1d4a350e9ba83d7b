import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../lib/config/parse.js';
import { runConfigSchema } from '../../../lib/config/run-config.js';
import { ConfigError } from '../../../lib/errors.js';

/** The ConfigError a configuration gets, or null when it is accepted. */
function refusal(input: unknown): ConfigError | null {
  try {
    parseConfig(runConfigSchema, input);
    return null;
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
}

describe('combinations the run configuration refuses, naming the option and its bound', () => {
  it.each([
    ['a lease shorter than three heartbeats', { failover: { heartbeatIntervalMs: 50, leaseDurationMs: 120 } }, /failover\.leaseDurationMs.*at least 3 × failover\.heartbeatIntervalMs \(150 ms\)/],
    ['a lease that the permit margin eats whole', { failover: { heartbeatIntervalMs: 10, leaseDurationMs: 30, leaseSafetyMs: 25, clockSkewMs: 5 } }, /failover\.leaseDurationMs.*exceed failover\.leaseSafetyMs \+ failover\.clockSkewMs \(30 ms\)/],
    ['a join bound shorter than two silences', { failover: { heartbeatIntervalMs: 50, missCount: 8, leaseDurationMs: 500, joinStallMs: 700 } }, /failover\.joinStallMs.*at least 2 × failover\.missCount × failover\.heartbeatIntervalMs \(800 ms\)/],
    ['a send buffer smaller than one segment', { tcp: { mssBytes: 9000, sndBufBytes: 4096 } }, /tcp\.sndBufBytes.*at least one segment of tcp\.mssBytes \(9000 B\)/],
    ['a receive buffer smaller than one segment', { tcp: { mssBytes: 9000, rcvBufBytes: 4096 } }, /tcp\.rcvBufBytes.*at least one segment/],
    ['a speculative buffer that a promotion could not hand over in 4096 chunks', { buffers: { specBufferBytes: 32 * 1024 * 1024, heldBytesMax: 32 * 1024 * 1024 }, checkpoint: { chunkBytes: 5000 } }, /buffers\.specBufferBytes.*needs 6712 chunks of checkpoint\.chunkBytes \(5000 B\)/],
    ['a mixed workload whose two speculative buffers a promotion could not hand over', { workload: { kind: 'mixed' }, buffers: { specBufferBytes: 16 * 1024 * 1024, heldBytesMax: 32 * 1024 * 1024 }, checkpoint: { chunkBytes: 5000 } }, /needs 6712 chunks .* \(2 connection\(s\) of this workload\)/],
    ['guest memory too small for its send rings', { guest: { memoryBytes: 8 * 1024 * 1024 }, tcp: { sndBufBytes: 4 * 1024 * 1024 }, workload: { kind: 'mixed' } }, /guest\.memoryBytes.*must exceed 8454144 B: 2 send ring\(s\)/],
    ['a mixed workload whose request does not fit the send buffer', { workload: { kind: 'mixed', requestBytes: 1 << 20 }, tcp: { sndBufBytes: 65536 } }, /workload\.requestBytes.*must not exceed tcp\.sndBufBytes/],
  ])('%s', (_what, input, message) => {
    const err = refusal(input);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.message).toMatch(message);
  });

  it('accepts the defaults, and the NATS timing of a loaded machine', () => {
    expect(refusal({})).toBeNull();
    expect(refusal({ failover: { heartbeatIntervalMs: 50, missCount: 8, serviceMissCount: 20, leaseDurationMs: 500, leaseSafetyMs: 50, clockSkewMs: 10 } })).toBeNull();
  });
});

describe('a field the configuration does not know (a misspelling would otherwise leave the default in place, unsaid)', () => {
  it.each([
    ['at the top', { epochMS: 50 }, /\(root\).*"epochMS"/],
    ['in a section', { link: { bandwidthMbps: 100 } }, /link.*"bandwidthMbps"/],
    ['in a list\'s entry', { faults: { clocks: [{ node: 'host-a', offsetUs: 0, driftPpm: 0, drift: 5 }] } }, /faults\.clocks\.0.*"drift"/],
    ['in a workload', { workload: { kind: 'rr', requestByte: 64 } }, /workload.*"requestByte"/],
    ['in the TCP options', { tcp: { cc: 'cubic' } }, /tcp.*"cc"/],
  ])('%s is refused, named', (_where, input, message) => {
    const err = refusal(input);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.message).toMatch(message);
  });

  it('accepts the shipped deployment configurations as they are', async () => {
    const { readFileSync } = await import('node:fs');
    for (const file of ['deploy/compose/run.json', 'deploy/k8s/base/run.json', 'deploy/k8s/overlays/dev/run.json']) expect(refusal(JSON.parse(readFileSync(file, 'utf8'))), file).toBeNull();
  });
});
