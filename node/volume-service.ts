import { VolumeStore, LOCAL_DRIVER } from '../agent/volumes/volume-store';
import { invalidArgument } from '../services/common/errors';
import { unary } from '../services/api/handlers';
import { CreateVolumeRequest, GetVolumeRequest, LocalNodeServer, RemoveVolumeRequest } from '../services/gen/swarmlet/v1/control';

export type VolumeHandlers = Pick<LocalNodeServer, 'createVolume' | 'listVolumes' | 'getVolume' | 'removeVolume' | 'pruneVolumes'>;

/** The LocalNode volume calls: this node's volumes, over its VolumeStore. */
export function volumeService(volumes: VolumeStore): VolumeHandlers {
  return {
    createVolume: unary(async (req: CreateVolumeRequest) => {
      if (req.driver && req.driver !== LOCAL_DRIVER) throw invalidArgument(`volume driver ${JSON.stringify(req.driver)} is not supported: use ${LOCAL_DRIVER}`);
      return volumes.create(req.name, req.labels);
    }),
    listVolumes: unary(async () => ({ volumes: await volumes.list() })),
    getVolume: unary((req: GetVolumeRequest) => volumes.get(req.name)),
    removeVolume: unary(async (req: RemoveVolumeRequest) => {
      await volumes.remove(req.name, req.force);
      return {};
    }),
    pruneVolumes: unary(async () => ({ removed: await volumes.prune() })),
  };
}
