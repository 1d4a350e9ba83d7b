import { describe, expect, it } from 'vitest';
import { CpuWindow, MAX_PROCESSES_KEPT, type CpuReading } from '../../../cli/launcher/cpu-window.js';

const reading = (processKey: string, atUs: number, cpuUs: number, service = processKey.split('/')[1]!): CpuReading => ({ processKey, service, atUs, cpuUs });

describe('CpuWindow', () => {
  it('counts each process from its newest reading at the start to its newest since, summed per service', () => {
    const w = new CpuWindow();
    w.observe(reading('a/guest/1', 100, 5_000_000)); // start-up: not the run's
    w.observe(reading('b/guest/1', 100, 1_000_000));
    w.start();
    w.observe(reading('a/guest/1', 200, 6_500_000));
    w.observe(reading('b/guest/1', 200, 1_250_000));
    expect(w.secondsByService()).toEqual({ guest: 1.75 });
  });

  it('counts a process that starts during the run from its first reading, and one that dies with its last', () => {
    const w = new CpuWindow();
    w.observe(reading('a/checkpointer/1', 100, 2_000_000));
    w.start();
    w.observe(reading('a/checkpointer/1', 200, 2_400_000)); // then SIGKILLed: no more reports
    w.observe(reading('/client/7', 150, 900_000)); // started with the run, its start-up already in
    w.observe(reading('/client/7', 400, 1_900_000));
    w.observe(reading('c/checkpointer/2', 300, 700_000)); // a spare's process, started after a failover
    w.observe(reading('c/checkpointer/2', 500, 1_000_000));
    expect(w.secondsByService()).toEqual({ checkpointer: 0.7, client: 1 });
  });

  it('ignores a reading the bus delivered late, and counts one whose CPU time went backwards or is no number', () => {
    const w = new CpuWindow();
    w.start();
    w.observe(reading('a/acker/1', 100, 1_000_000));
    w.observe(reading('a/acker/1', 300, 3_000_000));
    w.observe(reading('a/acker/1', 200, 2_000_000)); // older than the newest: overtaken
    w.observe(reading('a/acker/1', 400, 2_500_000)); // backwards: not this process's clock
    w.observe(reading('a/acker/1', 500, Number.NaN));
    expect(w.malformed).toBe(2);
    expect(w.secondsByService()).toEqual({ acker: 2 });
  });

  it('keeps at most MAX_PROCESSES_KEPT processes, dropping (counted) readings of new ones past it', () => {
    const w = new CpuWindow();
    w.start();
    for (let i = 0; i < MAX_PROCESSES_KEPT + 3; i++) w.observe(reading(`h/guest/${i}`, 1, 1_000_000));
    expect(w.dropped).toBe(3);
    // A kept process goes on: its newer readings count.
    w.observe(reading('h/guest/0', 2, 3_000_000));
    expect(w.secondsByService()).toEqual({ guest: 2 });
  });
});
