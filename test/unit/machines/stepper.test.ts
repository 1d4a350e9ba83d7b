import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { initialTransition, transition } from 'xstate';
import { MachineStepper } from '../../../lib/machines/stepper.js';
import { epochMachine, type EpochEvent } from '../../../services/checkpointer/epoch.machine.js';
import { failoverMachine, type FailoverEvent } from '../../../services/failover/failover.machine.js';

const EPOCH_EVENTS: EpochEvent[] = [{ type: 'EPOCH_TIMER' }, { type: 'STAGED' }, { type: 'COMMITTED' }];

describe('MachineStepper', () => {
  it("steps the epoch machine exactly as XState's transition does, actions included, for any event sequence", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.array(fc.constantFrom(...EPOCH_EVENTS), { maxLength: 60 }), (maxInflight, events) => {
        const input = { maxInflight, firstEpoch: 7 };
        const stepper = new MachineStepper(epochMachine, input);
        let [ours] = initialTransition(epochMachine, input);
        let [theirs] = initialTransition(epochMachine, input);
        for (const event of events) {
          const [nextOurs, ourActions] = stepper.step(ours, event);
          const [nextTheirs, theirActions] = transition(epochMachine, theirs, event);
          expect(nextOurs.value).toEqual(nextTheirs.value);
          expect(nextOurs.context).toEqual(nextTheirs.context);
          expect(ourActions.map((a) => a.type)).toEqual(theirActions.map((a) => a.type));
          [ours, theirs] = [nextOurs, nextTheirs];
        }
      }),
      { numRuns: 200 },
    );
  });

  it('returns only the actions of the step just taken', () => {
    const input = { maxInflight: 1 };
    const stepper = new MachineStepper(epochMachine, input);
    const [start] = initialTransition(epochMachine, input);
    const [pausing, first] = stepper.step(start, { type: 'EPOCH_TIMER' });
    expect(first.map((a) => a.type)).toEqual(['sendBarrier']);
    const [running, second] = stepper.step(pausing, { type: 'STAGED' });
    // assign() actions are applied inside the step, as XState's transition does; the rest are the core's to perform.
    expect(second.map((a) => a.type)).toEqual(['startTransfer', 'armEpochTimer']);
    expect(running.context).toMatchObject({ epoch: 2, inflight: 1 });
    expect(first.map((a) => a.type)).toEqual(['sendBarrier']);
    // At capacity: the next timer throttles, with no action.
    const [throttled, third] = stepper.step(running, { type: 'EPOCH_TIMER' });
    expect(throttled.value).toBe('throttled');
    expect(third).toEqual([]);
  });

  it('does not change the snapshot it steps from', () => {
    const stepper = new MachineStepper(failoverMachine, { term: 1 });
    const [start] = initialTransition(failoverMachine, { term: 1 });
    const before = JSON.stringify(start);
    const events: FailoverEvent[] = [{ type: 'PRIMARY_LATE' }, { type: 'PRIMARY_SILENT' }, { type: 'LEASE_TAKEN', term: 2 }];
    let moved = 0;
    for (const event of events) if (stepper.step(start, event)[0] !== start) moved++;
    expect(moved).toBeGreaterThan(0);
    expect(JSON.stringify(start)).toBe(before);
  });
});
