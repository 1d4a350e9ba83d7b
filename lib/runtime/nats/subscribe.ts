import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';

/**
 * A subscription whose errors (a subject the server refuses this user, a
 * slow consumer cut off) go to `onError` rather than vanish: what they
 * carried never arrives, and the subscriber must be able to say so.
 */
export function subscribeCounted(nc: NatsConnection, subject: string, onMessage: (m: Msg) => void, onError: (err: Error) => void): Subscription {
  return nc.subscribe(subject, {
    callback: (err, m) => {
      if (err === null) onMessage(m);
      else onError(err);
    },
  });
}
