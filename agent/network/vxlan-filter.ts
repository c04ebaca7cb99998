/**
 * The host's VXLAN filter applied to the kernel (the table is rendered by
 * plans/vxlan-filter-nft.ts): one atomic `nft -f -` in this process's network namespace, where the
 * overlays' VXLAN sockets are. Applied only when the node list changed, unless `verify` (the
 * periodic pass) reads the kernel first: a table deleted or edited by hand comes back.
 */
import { Logger, componentLogger } from '../../services/common/logger';
import { NftTables, listNftTable } from './lb-driver';
import { diffNftTable } from './plans/lb-nft';
import { VXLAN_NFT_TABLE, renderVxlanFilterNft } from './plans/vxlan-filter-nft';

const KEY = 'vxlan-filter';

export interface VxlanFilterOptions {
  log: Logger;
}

export class VxlanFilter {
  private readonly log: Logger;
  private readonly tables: NftTables;

  constructor(opts: VxlanFilterOptions) {
    this.log = componentLogger(opts.log, 'vxlan-filter');
    this.tables = new NftTables({ log: opts.log });
  }

  /** Admits VXLAN from these VTEPs alone ([]: no filter, the table goes). */
  async ensure(vteps: string[], verify: boolean): Promise<void> {
    const body = renderVxlanFilterNft(vteps);
    if (await this.tables.ensure(KEY, undefined, VXLAN_NFT_TABLE, body, verify)) {
      this.log.info({ vteps: body ? vteps.length : 0 }, body ? 'VXLAN accepted from the swarm\'s nodes alone' : 'VXLAN filter removed');
    }
  }

  /** What differs from the filter these VTEPs want (network doctor): [] or one sentence. */
  async check(vteps: string[]): Promise<string[]> {
    const diff = diffNftTable(`VXLAN filter ${VXLAN_NFT_TABLE}`, await listNftTable(undefined, VXLAN_NFT_TABLE), renderVxlanFilterNft(vteps));
    return diff ? [diff] : [];
  }
}
