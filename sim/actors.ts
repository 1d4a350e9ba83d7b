/** The service an actor of the simulated world runs: actors are named `<service>.<host>` (acker.host-a) or `<service>` (client, failover). */
export function serviceOfActor(actor: string): string {
  const dot = actor.indexOf('.');
  return dot < 0 ? actor : actor.slice(0, dot);
}
