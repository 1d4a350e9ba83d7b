/** The users of a NATS authorization block as the shipped auth.conf writes them: `user: X` then `password: $VAR`. */
import { readFileSync } from 'node:fs';

const USER_THEN_PASSWORD = /user:\s*([\w-]+)\s+password:\s*\$(\w+)/g;

/** user → the environment variable its password comes from. */
export function passwordVariables(path: string): Map<string, string> {
  const text = readFileSync(path, 'utf8').replace(/#.*$/gm, '');
  return new Map([...text.matchAll(USER_THEN_PASSWORD)].map((m) => [m[1]!, m[2]!]));
}

export function natsUsers(path: string): string[] {
  return [...passwordVariables(path).keys()];
}
