/**
 * Reads a Compose file the way `docker compose` does for what the runner
 * needs: YAML with merge keys, `${VAR}`, `${VAR:-default}`, `${VAR-default}`
 * and `$$` interpolated from an environment, environment maps and lists,
 * short-syntax volumes, and depends_on.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export interface ComposeVolume {
  /** A path on the machine (bind mount) or a named volume. */
  readonly source: string;
  readonly target: string;
  readonly bind: boolean;
}

export interface ComposeService {
  readonly name: string;
  readonly image: string | null;
  readonly command: readonly string[];
  readonly environment: Readonly<Record<string, string>>;
  readonly volumes: readonly ComposeVolume[];
  readonly dependsOn: readonly string[];
  readonly profiles: readonly string[];
  readonly healthcheck: readonly string[] | null;
  /** Container ports the service publishes. */
  readonly ports: readonly number[];
}

export interface ComposeFile {
  /** The file as parsed and interpolated. */
  readonly raw: Record<string, unknown>;
  readonly services: ReadonlyMap<string, ComposeService>;
}

const VAR = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

/** Compose's interpolation of one string. */
export function interpolate(text: string, env: Readonly<Record<string, string | undefined>>): string {
  return text.replace(VAR, (match, braced: string | undefined, op: string | undefined, fallback: string | undefined, bare: string | undefined) => {
    if (match === '$$') return '$';
    const name = braced ?? bare!;
    const value = env[name];
    if (op === ':-') return value === undefined || value === '' ? fallback! : value;
    if (op === '-') return value === undefined ? fallback! : value;
    return value ?? '';
  });
}

function interpolateAll(value: unknown, env: Readonly<Record<string, string | undefined>>): unknown {
  if (typeof value === 'string') return interpolate(value, env);
  if (Array.isArray(value)) return value.map((v) => interpolateAll(v, env));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateAll(v, env)]));
  return value;
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : typeof v === 'string' ? v.split(' ').filter((s) => s !== '') : []);

function environmentOf(v: unknown): Record<string, string> {
  if (Array.isArray(v)) return Object.fromEntries(v.map(String).map((e) => [e.split('=')[0]!, e.slice(e.indexOf('=') + 1)]));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x === null ? '' : String(x)]));
  return {};
}

function volumeOf(v: unknown): ComposeVolume {
  const [source, target] = String(v).split(':');
  return { source: source!, target: target!, bind: source!.startsWith('.') || source!.startsWith('/') };
}

function healthcheckOf(v: unknown): string[] | null {
  if (v === null || typeof v !== 'object') return null;
  const h = v as { test?: unknown; disable?: boolean };
  if (h.disable === true) return null;
  const test = strings(h.test);
  return test[0] === 'CMD' ? test.slice(1) : null;
}

export function loadCompose(path: string, env: Readonly<Record<string, string | undefined>> = process.env): ComposeFile {
  const parsed = parse(readFileSync(path, 'utf8'), { merge: true }) as Record<string, unknown>;
  const raw = interpolateAll(parsed, env) as Record<string, unknown>;
  const services = new Map<string, ComposeService>();
  for (const [name, value] of Object.entries((raw.services ?? {}) as Record<string, Record<string, unknown>>)) {
    const deps = value.depends_on;
    services.set(name, {
      name,
      image: typeof value.image === 'string' ? value.image : null,
      command: strings(value.command),
      environment: environmentOf(value.environment),
      volumes: (Array.isArray(value.volumes) ? value.volumes : []).map(volumeOf),
      dependsOn: Array.isArray(deps) ? deps.map(String) : deps !== null && typeof deps === 'object' ? Object.keys(deps) : [],
      profiles: strings(value.profiles),
      healthcheck: healthcheckOf(value.healthcheck),
      ports: (Array.isArray(value.ports) ? value.ports : []).map((p) => Number(String(p).split(':').at(-1))),
    });
  }
  return { raw, services };
}
