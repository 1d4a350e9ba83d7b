/**
 * The Dockerfile's promises, read from the file: a pinned Node base that
 * satisfies package.json's engines, a multi-stage build, a non-root user,
 * `specula` as the entrypoint, a healthcheck. test/deploy/compose-runner
 * builds it step by step and runs what it makes.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DockerfileParser } from 'dockerfile-ast';
import { describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const doc = DockerfileParser.parse(readFileSync(`${REPO}/Dockerfile`, 'utf8'));
const pkg = JSON.parse(readFileSync(`${REPO}/package.json`, 'utf8')) as { version: string; engines: { node: string } };
const instructions = doc.getInstructions().map((i) => ({ keyword: i.getKeyword(), args: i.getArgumentsContent() ?? '' }));
const lastStage = instructions.slice(instructions.map((i) => i.keyword).lastIndexOf('FROM'));

describe('Dockerfile', () => {
  it('builds in one stage and runs from another, both on the same pinned Node release, one that package.json\'s engines allow', () => {
    const froms = doc.getFROMs();
    expect(froms.length).toBeGreaterThanOrEqual(2);
    const tags = new Set(froms.map((f) => `${f.getImageName()}:${f.getImageTag()}`));
    expect(tags.size).toBe(1);
    const [tag] = [...tags];
    const m = /^node:(\d+)\.(\d+)\.(\d+)-/.exec(tag!);
    expect(m, `${tag}: a full Node version`).not.toBeNull();
    const min = /^>=(\d+)\.(\d+)$/.exec(pkg.engines.node)!;
    expect(Number(m![1])).toBe(Number(min[1]));
    expect(Number(m![2])).toBeGreaterThanOrEqual(Number(min[2]));
  });

  it('runs as an unprivileged user with specula as its entrypoint and a healthcheck', () => {
    const user = lastStage.filter((i) => i.keyword === 'USER').at(-1)?.args;
    expect(user).toBeDefined();
    // USER takes user[:group], each a name or a numeric id: root by either, for the user or the group, is privileged.
    const isRoot = (id: string) => id === 'root' || /^0+$/.test(id);
    const [name, group, ...rest] = user!.trim().split(':');
    expect(rest, user).toEqual([]);
    expect(name, user).not.toBe('');
    expect(isRoot(name!), `${user}: root user`).toBe(false);
    if (group !== undefined) expect(isRoot(group), `${user}: root group`).toBe(false);
    expect(JSON.parse(lastStage.find((i) => i.keyword === 'ENTRYPOINT')!.args)).toEqual(['specula']);
    expect(lastStage.find((i) => i.keyword === 'HEALTHCHECK')?.args).toMatch(/CMD \["specula", "health"\]/);
  });

  it('installs nothing in the final stage: it only copies from the build', () => {
    expect(lastStage.filter((i) => i.keyword === 'RUN')).toEqual([]);
  });

  it('and the Kubernetes base deploys this version of the image', () => {
    expect(readFileSync(`${REPO}/deploy/k8s/base/kustomization.yaml`, 'utf8')).toMatch(new RegExp(`newTag: ${pkg.version.replace(/\./g, '\\.')}\\n`));
  });
});
