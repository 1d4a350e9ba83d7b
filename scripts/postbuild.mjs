// The CLI entry is run directly (npx specula, bin): make it executable after tsc.
import { chmodSync } from 'node:fs';
chmodSync('dist/cli/specula.js', 0o755);
