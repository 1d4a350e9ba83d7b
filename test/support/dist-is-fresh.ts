/**
 * Global setup of the test projects that run the compiled CLI (dist/): child
 * processes, workers and `specula` commands. `npm test` builds first; a run
 * of one project alone after an edit would otherwise test the code as it
 * was, and pass or fail for the wrong reason.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SOURCES = ['lib', 'services', 'sim', 'cli', 'bench'];
const BUILT = join(ROOT, 'dist/cli/specula.js');
/** Files looked at at most: the tree has a few hundred. Declarations (the generated protobuf types, rewritten by every lint) compile to nothing. */
const MAX_FILES = 10_000;

function newestSource(): { path: string; mtimeMs: number } {
  let newest = { path: '', mtimeMs: 0 };
  let seen = 0;
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (++seen > MAX_FILES) throw new Error(`more than ${MAX_FILES} files under ${SOURCES.join(', ')}`);
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const { mtimeMs } = statSync(path);
        if (mtimeMs > newest.mtimeMs) newest = { path, mtimeMs };
      }
    }
  };
  for (const dir of SOURCES) walk(join(ROOT, dir));
  return newest;
}

export default function distIsFresh(): void {
  let builtMs: number;
  try {
    builtMs = statSync(BUILT).mtimeMs;
  } catch {
    throw new Error(`${BUILT} is missing: run npm run build (npm test does)`);
  }
  const newest = newestSource();
  if (newest.mtimeMs > builtMs) throw new Error(`${newest.path.slice(ROOT.length)} is newer than dist/: run npm run build (npm test does) so that these tests run the code as it is`);
}
