import * as fs from 'node:fs';
import * as path from 'node:path';

/** swarmlet's version, from the package.json above this file (in source or in dist). */
export const VERSION: string = (() => {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (pkg.name === 'swarmlet') return String(pkg.version);
    }
  }
  return '0.0.0';
})();
