import { ImageStore } from '../agent/images/image-store';
import { asSwarmletError, failedPrecondition, internal, invalidArgument } from '../services/common/errors';
import { unary } from '../services/api/handlers';
import { LocalNodeServer, PruneImagesRequest, PullImageRequest, RemoveImageRequest } from '../services/gen/swarmlet/v1/control';

export type ImageHandlers = Pick<LocalNodeServer, 'listImages' | 'pullImage' | 'removeImage' | 'pruneImages'>;

/** The LocalNode image calls: this node's images, over its ImageStore. */
export function imageService(images: ImageStore): ImageHandlers {
  return {
    listImages: unary(async () => ({ images: await images.list() })),
    pullImage: unary(async (req: PullImageRequest) => {
      if (!req.reference.trim()) throw invalidArgument('an image reference is required');
      const pulled = await images.pull(req.reference.trim(), req.registryAuth || undefined).catch((err) => {
        // The daemon answered: an unreachable registry is not an unavailable daemon (which clients retry, or blame on the socket).
        const e = asSwarmletError(err);
        throw e.kind === 'Unavailable' ? failedPrecondition(e.message, e) : e;
      });
      const listed = (await images.list()).find((i) => i.id === pulled.id);
      if (!listed) throw internal(`image ${pulled.id} was removed right after its pull`);
      return listed;
    }),
    removeImage: unary(async (req: RemoveImageRequest) => {
      if (!req.image.trim()) throw invalidArgument('an image reference or id is required');
      return { removed: await images.remove(req.image.trim(), req.force) };
    }),
    pruneImages: unary(async (req: PruneImagesRequest) => images.prune(req.all)),
  };
}
