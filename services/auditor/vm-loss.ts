import type { FailoverStateName, WireMessage } from '../../lib/codec/messages.js';
import { parseHostSubject } from '../../lib/codec/subjects.js';
import type { LeaseRecord } from '../../lib/lease/types.js';

/**
 * Tells a double failure that the design does not survive (no live host
 * holds the VM any more, so liveness is not owed) from a liveness bug, from
 * what is observable: the failover service's messages and views, the
 * agents' assignments, the guests' reports, lease writes and hosts going
 * down. Safety is checked either way. The VM is lost when:
 * - the primary's host is down and the backup the failover service would
 *   promote is down too or holds no complete image, or loses it later (its
 *   guest restarts); a primary's host that came back empty counts as down;
 * - the failover service promotes a host that is down or holds no image (it
 *   crashed or its guest restarted after it was chosen: a false suspicion
 *   of the primary, from lost heartbeats, and the backup dying meanwhile),
 *   or whose guest restarts empty before it takes the promotion (the role
 *   change late, the failover service cut off from the bus);
 * - it drops or replaces the backup of a primary that is already down (the
 *   backup's heartbeats were lost and the primary died after its own last
 *   one), or came back empty: no host it may promote then holds the VM;
 * - the lease was taken for a host that goes down (or reboots) before it
 *   runs as primary: the old primary is fenced for good.
 * - a host reboots (its image is gone) while the primary's host is down, or
 *   came back empty, or is that host, and no backup with a complete image is
 *   left.
 * A backup the failover service joins again (re-protection) holds no image
 * from then on, even while its guest still reports the old one. A host
 * whose agent restarts alone (a new process in its heartbeats, the host
 * neither down nor rebooted) counts as rebooted: by the design the host's
 * part of the VM ends with its agent (a primary's checkpointer ends its
 * side at the new agent's assignment; the failover service takes a new
 * agent for a restarted host, failing a primary over and giving a backup
 * up).
 */
export class VmLossClassifier {
  lostAtUs: number | null = null;
  reason: string | null = null;
  readonly #down = new Set<string>();
  #primaryHost: string;
  /** The term the primary host runs under: a host that came back in the role the VM was created with names an older one. */
  #primaryTerm = 0;
  #failoverBackup: string;
  /** Hosts whose guest holds a complete image of the VM (running it, or a synced backup). */
  readonly #image = new Set<string>();
  /**
   * Backups the failover service is joining again (re-protection), whose
   * guest has not yet reported taking the join: its image is being replaced
   * by an empty one, and its reports of the old one no longer count.
   */
  readonly #joining = new Set<string>();
  /** Hosts that rebooted and were not joined since: what their guests report is an empty image. */
  readonly #rebooted = new Set<string>();
  #failoverState: FailoverStateName | null = null;
  #leaseHolder: string | null = null;
  /** A host the failover service promoted whose guest has not yet reported taking the promotion: its image must last until it does. */
  #promotedNotTaken: string | null = null;
  /** The VM's hosts: heartbeats in the name of any other are not followed (bounds #agents). */
  readonly #hosts: ReadonlySet<string>;
  /** Each host's agent process, as its heartbeats name it; forgotten when the host goes down or reboots, whose next agent is no restart alone. */
  readonly #agents = new Map<string, number>();

  constructor(initial: { readonly primaryHost: string; readonly backupHost: string; readonly hosts?: readonly string[] }) {
    this.#primaryHost = initial.primaryHost;
    this.#failoverBackup = initial.backupHost;
    this.#hosts = new Set(initial.hosts ?? [initial.primaryHost, initial.backupHost]);
    this.#image.add(initial.primaryHost);
    this.#image.add(initial.backupHost); // the first backup starts with its guest, both empty
  }

  get lost(): boolean {
    return this.lostAtUs !== null;
  }

  #lose(atUs: number, reason: string): void {
    if (this.lostAtUs !== null) return;
    this.lostAtUs = atUs;
    this.reason = reason;
  }

  observe(subject: string, msg: WireMessage, atUs: number): void {
    switch (msg.type) {
      case 'roleChange': {
        const promotion = msg.role === 'primary' && msg.host !== this.#primaryHost;
        if (promotion && this.#down.has(msg.host)) this.#lose(atUs, `${msg.host} was promoted after it went down`);
        else if (promotion && !this.#image.has(msg.host)) this.#lose(atUs, `${msg.host} was promoted without an image (its guest restarted)`);
        // A primary's host that came back empty runs a VM made anew: it counts as down here too (vopr seeds 1205, 1383:
        // the backup's agent restarted, which the failover service cannot tell from a reboot, and gave it up).
        else if (!promotion && !this.#primaryRuns()) this.#lose(atUs, `the backup of ${this.#primaryHost} was dropped or replaced after the primary ${this.#down.has(this.#primaryHost) ? 'went down' : 'started over empty'}`);
        // From the promotion on, the VM lives on the promoted host: the old primary going down no longer matters.
        else if (promotion) {
          this.#primaryHost = msg.host;
          this.#primaryTerm = msg.term;
          this.#promotedNotTaken = msg.host;
        }
        return;
      }
      case 'assignment':
        if (parseHostSubject(subject)?.kind !== 'assign.guest') return;
        // A revived host's agent starts as the VM's first primary, under term 1: fenced, it runs nothing.
        if (msg.role === 'primary' && msg.term >= this.#primaryTerm) {
          this.#primaryHost = msg.host;
          this.#primaryTerm = msg.term;
        }
        else if (msg.role === 'stopped') this.hostDown(msg.host, atUs);
        return;
      case 'failoverStatus': {
        const joins = msg.state === 'reprotecting' && msg.backupHost !== '' && (this.#failoverState !== 'reprotecting' || this.#failoverBackup !== msg.backupHost);
        if (joins) {
          // A backup joining again starts from an empty image, whatever it held and still reports until it takes the join.
          this.#image.delete(msg.backupHost);
          this.#joining.add(msg.backupHost);
          this.#rebooted.delete(msg.backupHost);
        }
        this.#failoverBackup = msg.backupHost;
        this.#failoverState = msg.state;
        return;
      }
      case 'heartbeat': {
        if (!this.#hosts.has(msg.host)) return;
        // An incarnation is the process's start on its host's clock: a later process has a higher one, and a lower
        // one is an earlier process's heartbeat, late.
        const known = this.#agents.get(msg.host);
        if (known !== undefined && msg.incarnation <= known) return;
        if (known !== undefined) this.hostRebooted(msg.host, atUs); // which forgets the earlier process
        this.#agents.set(msg.host, msg.incarnation);
        return;
      }
      case 'serviceStatus': {
        if (msg.service !== 'guest') return;
        if (this.#rebooted.has(msg.host)) return;
        if (this.#joining.has(msg.host)) {
          // Its first report without a complete image says the join was taken; reports before it are of the old image.
          if (msg.role === 'backup' && msg.synced) return;
          this.#joining.delete(msg.host);
        }
        if ((msg.role === 'backup' && msg.synced) || msg.role === 'promoting' || msg.role === 'primary') {
          this.#image.add(msg.host);
          if (msg.host === this.#promotedNotTaken && msg.role !== 'backup') this.#promotedNotTaken = null;
          return;
        }
        const hadImage = this.#image.delete(msg.host);
        // Its role change may have been late (the failover service cut off): the promoted guest restarted empty before it took it.
        if (msg.host === this.#promotedNotTaken) this.#lose(atUs, `${msg.host} was promoted, and its guest restarted empty before it took the promotion`);
        // The backup the failover service would promote lost its image (its guest restarted) after the primary's host went down.
        else if (hadImage && msg.host === this.#failoverBackup && !this.#primaryRuns()) this.#lose(atUs, `${this.#primaryGone()} and ${msg.host}'s guest reports no complete image: no backup with a complete image is left`);
        return;
      }
      default:
        return;
    }
  }

  leaseWritten(record: LeaseRecord): void {
    this.#leaseHolder = record.primaryHost;
  }

  /**
   * The primary's host runs the VM: up, and not since restarted empty (a
   * revived host comes back as at the VM's creation, and its guest runs a VM
   * made anew, not this one: vopr seed 65935).
   */
  #primaryRuns(): boolean {
    return !this.#down.has(this.#primaryHost) && !this.#rebooted.has(this.#primaryHost);
  }

  /** Why the primary's host does not run the VM (for a loss's reason). */
  #primaryGone(): string {
    return `${this.#primaryHost} ${this.#down.has(this.#primaryHost) ? 'is down' : 'started over empty'}`;
  }

  /** The backup the failover service would promote is up and holds a complete image. */
  #backupUp(): boolean {
    const backup = this.#failoverBackup;
    return backup !== '' && !this.#down.has(backup) && this.#image.has(backup);
  }

  /**
   * A host rebooted at once: everything on it is gone, and it is up again,
   * empty. The VM is lost if it ran on it (or was being promoted to it), or
   * the primary's host is down, and no backup with a complete image is left.
   */
  hostRebooted(host: string, atUs: number): void {
    this.#agents.delete(host);
    this.#image.delete(host);
    // Its guest comes back as at the VM's creation, calling an empty image complete: only a join makes it a backup again.
    this.#rebooted.add(host);
    const primaryRuns = host !== this.#primaryHost && this.#primaryRuns();
    if (!primaryRuns && !this.#backupUp()) this.#lose(atUs, `${host} rebooted while ${this.#primaryHost === host ? 'running the VM' : this.#primaryGone()}, and no backup with a complete image is left`);
    // As for a host that went down (vopr seed 118505: the old primary, falsely suspected, runs on fenced for good).
    if (this.#leaseHolder === host && host !== this.#primaryHost) this.#lose(atUs, `the lease was taken for ${host}, which rebooted before it ran as primary`);
  }

  /** A host that was down starts again, empty: its guest calls an empty image complete until it joins. */
  hostRevived(host: string): void {
    this.#agents.delete(host);
    this.#down.delete(host);
    this.#image.delete(host);
    this.#rebooted.add(host);
  }

  /** A host crashed, or its agent took it down: everything on it is gone. */
  hostDown(host: string, atUs: number): void {
    this.#agents.delete(host);
    this.#down.add(host);
    this.#image.delete(host);
    if (!this.#primaryRuns() && !this.#backupUp()) this.#lose(atUs, `${this.#primaryGone()} and no backup with a complete image is left`);
    if (this.#leaseHolder === host && host !== this.#primaryHost) this.#lose(atUs, `the lease was taken for ${host}, which went down before it ran as primary`);
  }
}
