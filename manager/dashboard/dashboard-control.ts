import { unary } from '../../services/api/handlers';
import { Logger, componentLogger } from '../../services/common/logger';
import { ControlServer, GetDashboardTokenRequest } from '../../services/gen/swarmlet/v1/control';
import { DashboardTokens } from '../store/dashboard-token';

export interface DashboardControlDeps {
  tokens: DashboardTokens;
  /** https://IP:PORT/ of this manager's dashboard, when its daemon serves one. */
  url?: string;
  log: Logger;
}

/** The Control API's GetDashboardToken: the swarm's token (made on first use, or replaced), and where this manager serves the page. */
export function dashboardControl(deps: DashboardControlDeps): Pick<ControlServer, 'getDashboardToken'> {
  const log = componentLogger(deps.log, 'control');
  return {
    getDashboardToken: unary(async (req: GetDashboardTokenRequest) => {
      const token = req.rotate ? await deps.tokens.rotate() : await deps.tokens.ensure();
      if (req.rotate) log.info('dashboard token rotated');
      return { token, url: deps.url ?? '' };
    }),
  };
}
