/**
 * `docker build` without a Docker engine, for the Dockerfile this project
 * ships: each stage is a folder, its FROM image's own files stand in for
 * themselves (node and npm of this machine, which run the same major
 * version), COPY takes from the build context as .dockerignore filters it
 * or from an earlier stage, RUN runs the command with sh in the stage's
 * working folder, ENV, USER, HEALTHCHECK, ENTRYPOINT and CMD are recorded.
 * A RUN may only touch its stage's folder (relative paths): the test would
 * otherwise write outside it.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import dockerignoreModule from '@balena/dockerignore';
import { DockerfileParser } from 'dockerfile-ast';

export interface BuiltImage {
  /** The final stage's file system. */
  readonly root: string;
  readonly workdir: string;
  readonly env: Readonly<Record<string, string>>;
  readonly user: string | null;
  readonly entrypoint: readonly string[];
  readonly cmd: readonly string[];
  readonly healthcheck: readonly string[] | null;
  /** A command name as the image's PATH finds it, as a path on this machine. */
  which(command: string): string;
  remove(): void;
}

interface Stage {
  readonly name: string | null;
  readonly root: string;
  workdir: string;
  env: Record<string, string>;
  user: string | null;
  entrypoint: string[];
  cmd: string[];
  healthcheck: string[] | null;
}

interface IgnoreRules {
  add(rules: string): IgnoreRules;
  ignores(path: string): boolean;
}
// A CommonJS module whose typings declare an ES default export: take the function whichever way it comes.
const dockerignore = ((dockerignoreModule as unknown as { default?: unknown }).default ?? dockerignoreModule) as (options: { ignorecase: boolean }) => IgnoreRules;

const execForm = (text: string): string[] => (text.trim().startsWith('[') ? (JSON.parse(text) as string[]) : ['sh', '-c', text]);

/** Every file of the context that .dockerignore lets through, relative to it. */
function contextFiles(contextDir: string): Set<string> {
  const ignorePath = join(contextDir, '.dockerignore');
  const ig = dockerignore({ ignorecase: false }).add(existsSync(ignorePath) ? readFileSync(ignorePath, 'utf8') : '');
  const files = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      const rel = relative(contextDir, full);
      if (entry.isDirectory()) {
        if (entry.name === '.git' || entry.name === 'node_modules') continue;
        walk(full);
      } else if (!ig.ignores(rel)) files.add(rel);
    }
  };
  walk(contextDir);
  return files;
}

function expand(text: string, env: Readonly<Record<string, string>>): string {
  return text.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_m, name: string) => env[name] ?? process.env[name] ?? '');
}

/** ENV a=b c=d (and ENV a b): the pairs. */
function envPairs(text: string): [string, string][] {
  const t = text.replace(/\\\n/g, ' ').trim();
  if (!t.includes('=')) {
    const [k, ...v] = t.split(/\s+/);
    return [[k!, v.join(' ')]];
  }
  return t.split(/\s+/).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as [string, string]);
}

export function dockerBuild(contextDir: string, dockerfile = 'Dockerfile'): BuiltImage {
  const doc = DockerfileParser.parse(readFileSync(join(contextDir, dockerfile), 'utf8'));
  const tmp = mkdtempSync(join(tmpdir(), 'specula-docker-build-'));
  const files = contextFiles(contextDir);
  const stages: Stage[] = [];
  let stage: Stage | null = null;
  const inStage = (p: string, s: Stage) => join(s.root, p.startsWith('/') ? p : join(s.workdir, p));
  for (const ins of doc.getInstructions()) {
    const keyword = ins.getKeyword();
    const args = ins.getArgumentsContent() ?? '';
    if (keyword === 'FROM') {
      const from = (ins as unknown as { getBuildStage(): string | null }).getBuildStage();
      stage = { name: from, root: join(tmp, `stage-${stages.length}`), workdir: '/', env: {}, user: null, entrypoint: [], cmd: [], healthcheck: null };
      mkdirSync(stage.root, { recursive: true });
      stages.push(stage);
      continue;
    }
    if (stage === null) throw new Error(`${keyword} before FROM`);
    const s: Stage = stage;
    switch (keyword) {
      case 'WORKDIR':
        s.workdir = args.startsWith('/') ? args : join(s.workdir, args);
        mkdirSync(join(s.root, s.workdir), { recursive: true });
        break;
      case 'ENV':
        for (const [k, v] of envPairs(args)) s.env[k] = expand(v, s.env);
        break;
      case 'COPY': {
        const flags = Object.fromEntries((ins as unknown as { getFlags(): { getName(): string; getValue(): string | null }[] }).getFlags().map((f) => [f.getName(), f.getValue() ?? '']));
        const parts = (ins.getArguments() ?? []).map((a) => a.getValue()).filter((a) => !a.startsWith('--'));
        const dest = parts.pop()!;
        const destPath = inStage(dest, s);
        for (const src of parts) {
          if (flags.from !== undefined) {
            const source = stages.find((x) => x.name === flags.from);
            if (source === undefined) throw new Error(`COPY --from=${flags.from}: no such stage`);
            const from = join(source.root, src);
            if (!existsSync(from)) throw new Error(`COPY --from=${flags.from} ${src}: not in that stage`);
            const target = dest.endsWith('/') && !statSync(from).isDirectory() ? join(destPath, src.split('/').pop()!) : destPath;
            mkdirSync(dirname(target), { recursive: true });
            cpSync(from, target, { recursive: true, verbatimSymlinks: true });
            continue;
          }
          const matched = [...files].filter((f) => f === src || f.startsWith(`${src}/`));
          if (matched.length === 0) throw new Error(`COPY ${src}: nothing in the build context (missing, or excluded by .dockerignore)`);
          for (const f of matched) {
            const target = f === src ? (dest.endsWith('/') ? join(destPath, f.split('/').pop()!) : destPath) : join(destPath, relative(src, f));
            mkdirSync(dirname(target), { recursive: true });
            cpSync(join(contextDir, f), target);
          }
        }
        break;
      }
      case 'RUN': {
        const command = args.replace(/\\\n/g, ' ');
        if (/(^|\s)\/(?!dev\/null)/.test(command)) throw new Error(`RUN ${command}: writes outside its stage (an absolute path); this emulation runs only relative commands`);
        execFileSync('sh', ['-c', command], { cwd: join(s.root, s.workdir), stdio: 'pipe', timeout: 300_000, env: { ...process.env, ...s.env, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' } });
        break;
      }
      case 'USER':
        s.user = args;
        break;
      case 'ENTRYPOINT':
        s.entrypoint = execForm(args);
        break;
      case 'CMD':
        s.cmd = execForm(args);
        break;
      case 'HEALTHCHECK': {
        const m = /CMD\s+(.*)$/s.exec(args);
        s.healthcheck = m === null ? null : execForm(m[1]!);
        break;
      }
      default:
        break;
    }
  }
  const last = stages.at(-1);
  if (last === undefined) throw new Error(`${dockerfile} has no FROM`);
  const path = (last.env.PATH ?? process.env.PATH ?? '').split(':');
  return {
    root: last.root,
    workdir: last.workdir,
    env: last.env,
    user: last.user,
    entrypoint: last.entrypoint,
    cmd: last.cmd,
    healthcheck: last.healthcheck,
    which(command: string): string {
      for (const dir of path) {
        // The image's own folders are in its root; the rest (node, sh) are this machine's.
        const inImage = join(last.root, dir, command);
        if (existsSync(inImage)) return inImage;
      }
      for (const dir of path) if (existsSync(join(dir, command))) return join(dir, command);
      throw new Error(`${command}: not on the image's PATH (${path.join(':')})`);
    },
    remove: () => rmSync(tmp, { recursive: true, force: true }),
  };
}
