/**
 * The CLI's entry point as tsc builds it. `npm run build` then puts the bundle's entry
 * (cli/bundle-entry.ts) at dist/cli/main.js; a plain `tsc` puts this file back, which runs the
 * modules tsc wrote, unbundled. Either way the CLI is cli/run.ts.
 */
import './run';
