/**
 * deploy/k8s, checked without a cluster: `kubectl kustomize` renders each
 * overlay, every object validates against the Kubernetes API schemas
 * (kubernetes-models), and the objects agree with each other and with the
 * tree: hosts named in run.json are the StatefulSet's pods, each container
 * logs in as a NATS user that exists with the password the server gets,
 * probes ask the port the process serves on, the lease bucket has no more
 * replicas than NATS has servers.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { NATS_TIMING } from '../../lib/config/nats-profile.js';
import { parseConfig } from '../../lib/config/parse.js';
import { runConfigSchema } from '../../lib/config/run-config.js';
import { HOST_PROCESSES } from '../../lib/topology/index.js';
import { isCi } from '../integration/support/nats.js';
import { passwordVariables } from './support/nats-auth.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const K8S = `${REPO}/deploy/k8s`;
const OVERLAYS = readdirSync(`${K8S}/overlays`);
const AUTH = passwordVariables(`${K8S}/base/nats/auth.conf`);

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  envFrom?: { configMapRef?: { name: string } }[];
  volumeMounts?: { name: string; mountPath: string }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  livenessProbe?: { httpGet?: { port: number | string; path: string } };
  readinessProbe?: { httpGet?: { port: number | string; path: string } };
  ports?: { name?: string; containerPort: number }[];
  securityContext?: { allowPrivilegeEscalation?: boolean };
}
interface PodSpec {
  containers: Container[];
  volumes?: { name: string; secret?: { secretName: string; items?: { key: string; path: string }[] }; configMap?: { name: string } }[];
}

function kubectl(): boolean {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
    return true;
  } catch {
    if (isCi()) throw new Error('kubectl is not installed: the Kubernetes manifests cannot be rendered (apt-get install kubectl, or https://kubernetes.io/docs/tasks/tools/)');
    console.warn(`\n${'!'.repeat(100)}\ndeploy/k8s checks SKIPPED: kubectl is not installed\n${'!'.repeat(100)}\n`);
    return false;
  }
}

const render = (dir: string): K8sObject[] =>
  parseAllDocuments(execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' }))
    .map((d) => d.toJS() as K8sObject)
    .filter((o) => o !== null);

/** The kubernetes-models class of an object's apiVersion and kind. */
async function modelOf(o: K8sObject): Promise<new (data: unknown) => { validate(): void }> {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  const specifier = `kubernetes-models/${group === '' ? '' : `${group}/`}${version}`;
  // Resolved by Node at run time; the bundler need not look into it.
  const module = (await import(/* @vite-ignore */ specifier)) as Record<string, new (data: unknown) => { validate(): void }>;
  const model = module[o.kind];
  if (model === undefined) throw new Error(`no model for ${o.apiVersion} ${o.kind}`);
  return model;
}

const podSpecOf = (o: K8sObject): PodSpec | null => {
  const template = (o.spec as { template?: { spec: PodSpec } } | undefined)?.template;
  return ['Deployment', 'StatefulSet', 'Job'].includes(o.kind) && template ? template.spec : null;
};
const find = (objects: K8sObject[], kind: string, name: string) => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name.startsWith(name));
  if (o === undefined) throw new Error(`no ${kind} ${name}`);
  return o;
};
const envValue = (c: Container, name: string, objects: K8sObject[]): string | undefined => {
  const direct = c.env?.find((e) => e.name === name)?.value;
  if (direct !== undefined) return direct;
  for (const ref of c.envFrom ?? []) {
    const cm = objects.find((x) => x.kind === 'ConfigMap' && x.metadata.name === ref.configMapRef?.name);
    if (cm?.data?.[name] !== undefined) return cm.data[name];
  }
  return undefined;
};

describe.skipIf(!kubectl())('deploy/k8s', () => {
  it('has a dev and a three-host overlay', () => {
    expect(OVERLAYS.sort()).toEqual(['dev', 'three-host']);
  });

  describe.each(OVERLAYS)('overlay %s', (overlay) => {
    const objects = render(`${K8S}/overlays/${overlay}`);
    const workloads = objects.filter((o) => podSpecOf(o) !== null);
    const natsSet = find(objects, 'StatefulSet', 'nats');
    const hostSet = find(objects, 'StatefulSet', 'specula-host');
    const natsReplicas = (natsSet.spec as { replicas: number }).replicas;
    const hostReplicas = (hostSet.spec as { replicas: number }).replicas;

    it('renders objects that validate against the Kubernetes API schemas', async () => {
      expect(objects.length).toBeGreaterThan(5);
      for (const o of objects) {
        const Model = await modelOf(o);
        expect(() => new Model(o).validate(), `${o.kind} ${o.metadata.name}`).not.toThrow();
      }
    });

    it('gives every container resource requests and limits, a pinned image and no privilege escalation; long-running ones probes', () => {
      for (const w of workloads) {
        for (const c of podSpecOf(w)!.containers) {
          const where = `${w.kind} ${w.metadata.name} / ${c.name}`;
          expect(c.resources?.requests?.cpu, where).toBeTruthy();
          expect(c.resources?.requests?.memory, where).toBeTruthy();
          expect(c.resources?.limits?.memory, where).toBeTruthy();
          expect(c.image, where).toMatch(/:[0-9][\w.-]*$/);
          expect(c.securityContext?.allowPrivilegeEscalation, where).toBe(false);
          if (w.kind === 'Job') continue;
          expect(c.livenessProbe, where).toBeDefined();
          expect(c.readinessProbe, where).toBeDefined();
        }
      }
    });

    it('probes each specula process on the port it serves health on', () => {
      for (const w of workloads) {
        for (const c of podSpecOf(w)!.containers.filter((x) => x.image.startsWith('specula:') && x.readinessProbe)) {
          const port = Number(envValue(c, 'SPECULA_HEALTH_PORT', objects));
          const resolve = (p: number | string) => (typeof p === 'number' ? p : c.ports?.find((x) => x.name === p)?.containerPort);
          expect(resolve(c.readinessProbe!.httpGet!.port), `${w.metadata.name} / ${c.name}`).toBe(port);
          expect(resolve(c.livenessProbe!.httpGet!.port), `${w.metadata.name} / ${c.name}`).toBe(port);
          expect(c.readinessProbe!.httpGet!.path).toBe('/readyz');
        }
      }
    });

    it('logs every specula container in as a NATS user of auth.conf, from a mounted secret file holding that user\'s password alone', () => {
      const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name.startsWith('specula-nats-credentials'))!;
      for (const w of workloads) {
        const pod = podSpecOf(w)!;
        for (const c of pod.containers.filter((x) => x.image.startsWith('specula:'))) {
          const where = `${w.metadata.name} / ${c.name}`;
          const user = envValue(c, 'NATS_USER', objects)!;
          expect([...AUTH.keys()], where).toContain(user);
          const file = envValue(c, 'NATS_PASSWORD_FILE', objects)!;
          const mount = c.volumeMounts!.find((m) => file.startsWith(`${m.mountPath}/`))!;
          const volume = pod.volumes!.find((v) => v.name === mount.name)!;
          expect(volume.secret?.secretName, where).toBe(secret.metadata.name);
          expect(volume.secret?.items, `${where}: only its own password`).toEqual([{ key: user, path: file.slice(mount.mountPath.length + 1) }]);
        }
      }
      // The server gets every password its users need, from the same secret.
      const nats = podSpecOf(natsSet)!.containers[0]!;
      for (const [user, variable] of AUTH) {
        expect(nats.env?.find((e) => e.name === variable)?.valueFrom?.secretKeyRef, variable).toEqual({ name: secret.metadata.name, key: user });
        expect(secret.data?.[user], `secret key ${user}`).toBeTruthy();
      }
    });

    it('runs every host process on each host pod, and run.json names exactly those pods as the hosts', () => {
      const containers = podSpecOf(hostSet)!.containers;
      expect(containers.map((c) => c.args?.[1]).sort()).toEqual([...HOST_PROCESSES].sort());
      for (const c of containers) expect(c.args?.slice(2), c.name).toEqual(['--host', '$(POD_NAME)']);
      const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('specula-run-config'))!;
      const config = parseConfig(runConfigSchema, JSON.parse(cm.data!['run.json']!));
      const pods = Array.from({ length: hostReplicas }, (_, i) => `${hostSet.metadata.name}-${i}`);
      expect([config.hosts.primary, config.hosts.backup, ...config.hosts.spares]).toEqual(pods);
      expect(config.failover).toMatchObject(NATS_TIMING.failover);
      expect(config.bus).toMatchObject(NATS_TIMING.bus);
      expect(config.epochPolicy).toMatchObject(NATS_TIMING.epochPolicy);
    });

    it('points every service at each NATS server, with no more lease replicas than servers, and clusters the servers only when there are several', () => {
      const env = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('specula-env'))!.data!;
      const servers = env.NATS_URL!.split(',');
      expect(servers).toEqual(Array.from({ length: natsReplicas }, (_, i) => `nats://nats-${i}.nats:4222`));
      expect(Number(env.SPECULA_LEASE_REPLICAS)).toBeLessThanOrEqual(natsReplicas);
      expect([1, 3, 5]).toContain(Number(env.SPECULA_LEASE_REPLICAS));
      const conf = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('nats-config'))!.data!['nats.conf']!;
      if (natsReplicas === 1) expect(conf).not.toMatch(/cluster\s*{/);
      else for (let i = 0; i < natsReplicas; i++) expect(conf).toContain(`nats://nats-${i}.nats:6222`);
    });

    it('keeps a disruption budget of one pod for NATS and for the hosts', () => {
      for (const target of ['nats', 'specula-host']) {
        const pdb = objects.find((o) => o.kind === 'PodDisruptionBudget' && o.metadata.name === target)!;
        expect((pdb.spec as { maxUnavailable: number }).maxUnavailable, target).toBe(1);
        expect((pdb.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels).toEqual(((objects.find((o) => o.kind === 'StatefulSet' && o.metadata.name === target)!.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels));
      }
    });
  });

  it('the schema check catches a wrong type (it can fail)', async () => {
    const hostSet = render(`${K8S}/overlays/dev`).find((o) => o.kind === 'StatefulSet')!;
    const broken = JSON.parse(JSON.stringify(hostSet)) as { spec: { replicas: unknown } };
    broken.spec.replicas = 'three';
    const Model = await modelOf(hostSet);
    expect(() => new Model(broken).validate()).toThrow();
  });
});
