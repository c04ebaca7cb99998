import { randomBytes } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { unavailable } from '../../services/common/errors';
import { keys } from './keys';

/** A new dashboard token: 32 random bytes, URL-safe (it travels in the page's URL fragment). */
const newToken = () => `swldash-${randomBytes(32).toString('base64url')}`;

/**
 * The web dashboard's access token, one for the swarm, in etcd: made on first use
 * (create-if-absent, so two managers asked at once agree on one), replaced on rotation. Every
 * manager's dashboard checks a request against it as it is now.
 */
export class DashboardTokens {
  constructor(private readonly etcd: Etcd3) {}

  /** The token now, if one was made. */
  async current(): Promise<string | undefined> {
    try {
      return (await this.etcd.get(keys.dashboardToken).string()) ?? undefined;
    } catch (err) {
      throw unavailable('could not read the dashboard token from the cluster store', err);
    }
  }

  /** The token, made now if there is none yet. */
  async ensure(): Promise<string> {
    const key = keys.dashboardToken;
    try {
      const token = newToken();
      const res = await this.etcd.if(key, 'Create', '==', 0).then(this.etcd.put(key).value(token)).else(this.etcd.get(key)).commit();
      return res.succeeded ? token : res.responses[0].response_range.kvs[0].value.toString();
    } catch (err) {
      throw unavailable('could not read or make the dashboard token in the cluster store', err);
    }
  }

  /** Calls `onChange` after the token is made or replaced; resolves to the unwatch. */
  async watch(onChange: () => void): Promise<() => Promise<void>> {
    let watcher;
    try {
      watcher = await this.etcd.watch().key(keys.dashboardToken).create();
    } catch (err) {
      throw unavailable('could not watch the dashboard token in the cluster store', err);
    }
    watcher.on('put', onChange).on('delete', onChange).on('connected', onChange).on('error', () => undefined);
    return async () => {
      await watcher.cancel().catch(() => undefined);
    };
  }

  /** A new token; the old one stops working on every manager at once. */
  async rotate(): Promise<string> {
    const token = newToken();
    try {
      await this.etcd.put(keys.dashboardToken).value(token).exec();
    } catch (err) {
      throw unavailable('could not write the dashboard token to the cluster store', err);
    }
    return token;
  }
}
