/**
 * What the Dockerfile's final stage holds, built on this machine: the
 * compiled dist/ of this checkout (npm test builds it first) beside
 * package.json and the production dependencies alone (`npm ci --omit=dev`,
 * as `npm prune --omit=dev` leaves them). A runtime import of a dev
 * dependency fails here as it would in the image.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ImageDir {
  readonly dir: string;
  /** The image's entrypoint, dist/cli/specula.js. */
  readonly cli: string;
  remove(): void;
}

export function prepareImageDir(repoDir: string): ImageDir {
  const dist = join(repoDir, 'dist', 'cli', 'specula.js');
  if (!existsSync(dist)) throw new Error(`${dist} is missing: run npm run build (npm test does)`);
  const dir = mkdtempSync(join(tmpdir(), 'specula-image-'));
  for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(repoDir, f), join(dir, f));
  execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: dir, stdio: 'pipe', timeout: 180_000 });
  cpSync(join(repoDir, 'dist'), join(dir, 'dist'), { recursive: true });
  return { dir, cli: join(dir, 'dist', 'cli', 'specula.js'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}
