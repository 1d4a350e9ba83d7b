import { z } from 'zod';

/** Host names become subject tokens (specula.<vm>.h.<host>.…, specula.<vm>.hb.<host>). */
export const hostNameSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a host name must be 1-64 characters of [A-Za-z0-9_-] (it is a subject token)');

/** The hosts of a protected VM when it is created: its first primary, its first backup and the spares re-protection draws on. */
export const hostsConfigSchema = z
  .strictObject({
    primary: hostNameSchema.default('host-a').describe('The host the VM starts on (its first primary).'),
    backup: hostNameSchema.default('host-b').describe('The host that backs it up from the start.'),
    spares: z.array(hostNameSchema).max(16).default(['host-c']).describe('Hosts that can become a new backup after a failure (re-protection).'),
  })
  .superRefine((h, ctx) => {
    const all = [h.primary, h.backup, ...h.spares];
    const seen = new Set<string>();
    for (const name of all) {
      if (seen.has(name)) ctx.addIssue({ code: 'custom', path: [], message: `host names must differ: ${name} appears twice in ${all.join(', ')}` });
      seen.add(name);
    }
  });
export type HostsConfig = z.infer<typeof hostsConfigSchema>;
