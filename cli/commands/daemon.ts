import type { Argv } from 'yargs';
import { loadDaemonConfig } from '../../services/config/config';
import { GlobalArgs } from './context';

export function daemonCommand(y: Argv<GlobalArgs>) {
  return y.command(
    'daemon',
    'Run the swarmlet node daemon (one per host)',
    (a) =>
      a
        .option('data-dir', { type: 'string', describe: 'Where the node keeps its state (default /var/lib/swarmlet)' })
        .option('log-level', { type: 'string', describe: 'fatal|error|warn|info|debug|trace (default info)' })
        .option('config', { type: 'string', describe: 'JSON config file (default /etc/swarmlet/daemon.json, if present)' })
        .option('metrics-addr', { type: 'string', describe: 'Serve Prometheus metrics at http://ADDR:PORT/metrics (:PORT: the advertise address; default off)' })
        .option('dashboard-addr', { type: 'string', describe: 'On a manager, serve the web dashboard at https://ADDR:PORT/ (:PORT: the advertise address; default off; see "swarmlet dashboard")' }),
    async (argv) => {
      const cfg = loadDaemonConfig({ dataDir: argv.dataDir, host: argv.host, logLevel: argv.logLevel, config: argv.config, metricsAddr: argv.metricsAddr, dashboardAddr: argv.dashboardAddr });
      // The daemon (etcd3, grpc-js, the agent and manager) and pino load only when a daemon starts, not for every CLI call.
      const [{ createRootLogger }, { Daemon }] = await Promise.all([import('../../services/common/logger'), import('../../node/daemon')]);
      const log = createRootLogger(cfg.logLevel);
      const daemon = new Daemon(cfg, log);
      await daemon.start();
      await new Promise<void>((resolve) => {
        const shutdown = (signal: string) => {
          log.info({ component: 'daemon', signal }, 'shutting down');
          daemon.stop().then(resolve, (err) => {
            log.error({ component: 'daemon', err }, 'shutdown failed');
            resolve();
          });
        };
        process.once('SIGTERM', () => shutdown('SIGTERM'));
        process.once('SIGINT', () => shutdown('SIGINT'));
      });
      process.exit(0);
    },
  );
}
