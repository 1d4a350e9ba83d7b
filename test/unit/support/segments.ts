import type { Segment } from '../../../lib/codec/messages.js';

/** A valid Segment with every field set to something plain; override what a test is about. */
export const segment = (overrides: Partial<Segment> = {}): Segment => ({
  type: 'segment',
  vmId: 'vm1',
  term: 0,
  epoch: 0,
  connId: 1,
  seq: 0,
  ack: 0,
  window: 0,
  flags: 0,
  payload: new Uint8Array(0),
  mss: 0,
  wscale: undefined,
  sackPermitted: false,
  sackBlocks: [],
  tsValUs: 0,
  tsEcrUs: 0,
  speculative: false,
  ...overrides,
});
