import { describe, expect, it } from 'vitest';
import type { FailoverStatus, Heartbeat, ServiceReport } from '../../../lib/codec/messages.js';
import { renderStatus, StatusBoard, VM_FORGOTTEN_AFTER_MS } from '../../../cli/commands/status.js';

const heartbeat = (host: string, role: Heartbeat['role'], term: number, epoch: number, synced: boolean): Heartbeat => ({ type: 'heartbeat', vmId: 'vm1', host, role, term, epoch, synced, controlSeq: 0, incarnation: 1, chunksStaged: 0, followedAgentIncarnation: 0 });
const view = (state: FailoverStatus['state'], term: number, recovering: boolean): FailoverStatus => ({ type: 'failoverStatus', vmId: 'vm1', term, state, primaryHost: 'host-b', backupHost: '', recovering });
const report = (host: string, service: ServiceReport['service'], atUs: number, stats: Record<string, unknown>): ServiceReport => ({ type: 'serviceReport', vmId: 'vm1', host, service, incarnation: 1, atUs, final: false, statsJson: JSON.stringify(stats) });

describe('specula status: what the bus says of each VM', () => {
  it('shows each host\'s role, term, epoch and what its services hold, and the goodput from two reports of bytes sent', () => {
    const board = new StatusBoard();
    board.heartbeat(heartbeat('host-b', 'primary', 2, 40, true));
    board.heartbeat(heartbeat('host-a', 'spare', 1, 0, false));
    board.view(view('unprotected', 2, false));
    board.report(report('host-b', 'acker', 1_000_000, { clientAckSeq: 1_000_000, specBufferBytes: 4096 }));
    board.report(report('host-b', 'acker', 2_000_000, { clientAckSeq: 13_500_000, specBufferBytes: 8192 }));
    board.report(report('host-b', 'netbuffer', 2_000_000, { heldBytes: 0 }));
    board.report(report('host-a', 'guest', 2_000_000, { stagedBytes: 524_288 }));
    const [vm] = board.vms();
    expect(vm!.failover).toEqual({ state: 'unprotected', term: 2, primaryHost: 'host-b', backupHost: '', recovering: false });
    expect(vm!.hosts.map((h) => h.host)).toEqual(['host-a', 'host-b']);
    // 12.5 MB in one second.
    expect(vm!.hosts[1]).toEqual({ host: 'host-b', role: 'primary', term: 2, epoch: 40, synced: true, heldBytes: 0, specBytes: 8192, stagedBytes: null, goodputBitsPerSec: 100e6, cpuPercent: null });
    expect(vm!.hosts[0]!.stagedBytes).toBe(524_288);
    expect(vm!.hosts[0]!.goodputBitsPerSec).toBeNull();
    const table = renderStatus(board.vms());
    expect(table).toContain('unprotected (term 2)');
    expect(table).toContain('100.0');
    expect(table).toContain('staged B');
    expect(table).toContain('524288');
  });

  it('says the failover service is still learning the roles, from its view or from its report, rather than show a state it has not acted on', () => {
    const board = new StatusBoard();
    board.heartbeat(heartbeat('host-a', 'primary', 1, 3, true));
    board.view(view('protected', 1, true));
    expect(renderStatus(board.vms())).toContain('learning the roles (term 1)');
    board.view(view('protected', 1, false));
    expect(renderStatus(board.vms())).toContain('protected (term 1)');
    // A watcher that came after the last view learns it from the failover service's report.
    const late = new StatusBoard();
    late.report(report('', 'failover', 1, { state: 'protected', term: 3, primaryHost: 'host-c', backupHost: 'host-a', recovering: true }));
    expect(late.vms()[0]!.failover).toMatchObject({ state: 'protected', term: 3, recovering: true });
  });

  it("shows the CPU a host's service processes use, summed over them, from each one's two last reports", () => {
    const board = new StatusBoard();
    board.heartbeat(heartbeat('host-a', 'primary', 1, 3, true));
    board.heartbeat(heartbeat('host-b', 'backup', 1, 3, true));
    board.report(report('host-a', 'guest', 1_000_000, { process: { cpuUs: 4_000_000 } }));
    board.report(report('host-a', 'guest', 2_000_000, { process: { cpuUs: 4_600_000 } })); // 60% of a core
    board.report(report('host-a', 'acker', 1_000_000, { process: { cpuUs: 100_000 } }));
    board.report(report('host-a', 'acker', 1_500_000, { process: { cpuUs: 200_000 } })); // 20%
    board.report(report('host-b', 'guest', 1_000_000, { process: { cpuUs: 1_000 } })); // one report: no rate yet
    const [vm] = board.vms();
    expect(vm!.hosts.map((h) => [h.host, h.cpuPercent])).toEqual([
      ['host-a', 80],
      ['host-b', null],
    ]);
    expect(renderStatus(board.vms())).toContain('CPU %');
  });

  it('counts a process that runs several services once, whichever of its services reported', () => {
    const board = new StatusBoard();
    board.heartbeat(heartbeat('host-a', 'primary', 1, 3, true));
    const grouped = (service: ServiceReport['service'], atUs: number, cpuUs: number) => report('host-a', service, atUs, { process: { cpuUs, processId: '41@1', services: ['guest', 'checkpointer', 'netbuffer', 'acker'] } });
    for (const service of ['guest', 'checkpointer', 'netbuffer', 'acker'] as const) board.report(grouped(service, 1_000_000, 3_000_000));
    // A second round a second later, each service's reading a little later than the one before it: 50% of a core.
    (['guest', 'checkpointer', 'netbuffer', 'acker'] as const).forEach((service, i) => board.report(grouped(service, 2_000_000 + i, 3_500_000 + i)));
    board.report(report('host-a', 'host-agent', 1_000_000, { process: { cpuUs: 10_000, processId: '42@1', services: ['host-agent'] } }));
    board.report(report('host-a', 'host-agent', 2_000_000, { process: { cpuUs: 110_000, processId: '42@1', services: ['host-agent'] } })); // 10%
    expect(board.vms()[0]!.hosts[0]!.cpuPercent).toBeCloseTo(60, 3);
  });

  it('says so when no VM reported yet', () => {
    expect(renderStatus([])).toBe('no VM reports on this bus yet');
  });

  it('forgets a VM silent for VM_FORGOTTEN_AFTER_MS, and counts reports it cannot read', () => {
    let nowMs = 0;
    const board = new StatusBoard(() => nowMs);
    board.heartbeat(heartbeat('host-a', 'primary', 1, 3, true));
    board.report(report('host-a', 'acker', 1_000_000, { clientAckSeq: 0 }));
    board.report({ ...report('host-a', 'acker', 1, {}), statsJson: '{not json' });
    expect(board.unreadable).toBe(1);
    expect(renderStatus(board.vms(), board.unreadable)).toContain('1 messages on the bus did not decode');
    nowMs = VM_FORGOTTEN_AFTER_MS;
    expect(board.vms()).toHaveLength(1);
    nowMs = VM_FORGOTTEN_AFTER_MS + 1;
    expect(board.vms()).toEqual([]);
    // Heard from again, it is back, with nothing of before: no rate from a sample of 30 s ago.
    board.heartbeat(heartbeat('host-a', 'primary', 1, 4, true));
    board.report(report('host-a', 'acker', 40_000_000, { clientAckSeq: 5 }));
    expect(board.vms()[0]!.hosts[0]).toMatchObject({ epoch: 4, goodputBitsPerSec: null });
  });
});
