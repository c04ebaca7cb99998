import * as grpc from '@grpc/grpc-js';
import { ImageStore } from '../agent/images/image-store';
import { planBuildSpec } from '../agent/images/build-plans';
import { asSwarmletError, failedPrecondition, internal, invalidArgument } from '../services/common/errors';
import { isRegistryHost } from '../services/common/image-ref';
import { parseRegistryAuth } from '../services/common/registry-auth';
import { unary } from '../services/api/handlers';
import { failCall } from '../services/api/tls';
import {
  BuildImageOutput,
  BuildImageRequest,
  InspectImageRequest,
  LocalNodeServer,
  PruneImagesRequest,
  PullImageRequest,
  PushImageOutput,
  PushImageRequest,
  RegistryLoginRequest,
  RemoveImageRequest,
  TagImageRequest,
} from '../services/gen/swarmlet/v1/control';

export type ImageHandlers = Pick<
  LocalNodeServer,
  'listImages' | 'pullImage' | 'removeImage' | 'pruneImages' | 'buildImage' | 'tagImage' | 'pushImage' | 'inspectImage' | 'registryLogin'
>;

/** The daemon answered: an unreachable registry is not an unavailable daemon (which clients retry, or blame on the socket). */
function registryFailure(err: unknown): never {
  const e = asSwarmletError(err);
  throw e.kind === 'Unavailable' ? failedPrecondition(e.message, e) : e;
}

/** The LocalNode image calls: this node's images, over its ImageStore. */
export function imageService(images: ImageStore): ImageHandlers {
  return {
    listImages: unary(async () => ({ images: await images.list() })),
    pullImage: unary(async (req: PullImageRequest) => {
      if (!req.reference.trim()) throw invalidArgument('an image reference is required');
      const pulled = await images.pull(req.reference.trim(), req.registryAuth || undefined).catch(registryFailure);
      const listed = (await images.list()).find((i) => i.id === pulled.id);
      if (!listed) throw internal(`image ${pulled.id} was removed right after its pull`);
      return listed;
    }),
    removeImage: unary(async (req: RemoveImageRequest) => {
      if (!req.image.trim()) throw invalidArgument('an image reference or id is required');
      return { removed: await images.remove(req.image.trim(), req.force) };
    }),
    pruneImages: unary(async (req: PruneImagesRequest) => images.prune(req.all)),
    buildImage: (call: grpc.ServerWritableStream<BuildImageRequest, BuildImageOutput>) => {
      void (async () => {
        const spec = planBuildSpec(call.request);
        const auths = Object.fromEntries(Object.entries(call.request.registryAuths).map(([domain, auth]) => [domain, parseRegistryAuth(auth)]));
        const onOutput = (stream: 'stdout' | 'stderr', text: string) => {
          if (!call.cancelled) call.write({ text, stream, imageId: '' });
        };
        const img = await images.build(spec, { auths, onOutput: spec.quiet ? undefined : onOutput }).catch(registryFailure);
        call.write({ text: '', stream: '', imageId: img.id });
        call.end();
      })().catch((err) => failCall(call as grpc.ServerWritableStream<unknown, unknown>, undefined, err));
    },
    tagImage: unary(async (req: TagImageRequest) => {
      if (!req.source.trim() || !req.target.trim()) throw invalidArgument('image tag needs a source image and a target name');
      return images.tagImage(req.source.trim(), req.target.trim());
    }),
    pushImage: (call: grpc.ServerWritableStream<PushImageRequest, PushImageOutput>) => {
      void (async () => {
        if (!call.request.reference.trim()) throw invalidArgument('an image reference is required');
        const digest = await images
          .push(call.request.reference.trim(), call.request.registryAuth || undefined, (_stream, text) => {
            if (!call.cancelled) call.write({ text, digest: '' });
          })
          .catch(registryFailure);
        call.write({ text: '', digest });
        call.end();
      })().catch((err) => failCall(call as grpc.ServerWritableStream<unknown, unknown>, undefined, err));
    },
    inspectImage: unary(async (req: InspectImageRequest) => {
      if (!req.image.trim()) throw invalidArgument('an image reference or id is required');
      const d = images.inspect(req.image.trim());
      return { image: d.image, configJson: d.configJson, layers: d.layers, manifestDigest: d.manifestDigest };
    }),
    registryLogin: unary(async (req: RegistryLoginRequest) => {
      const server = req.server.trim();
      if (!isRegistryHost(server)) throw invalidArgument(`invalid registry address: ${JSON.stringify(req.server)}`);
      if (!req.username) throw invalidArgument('a username is required');
      if (!req.password) throw invalidArgument('a password is required');
      await images.login(server, { username: req.username, password: req.password }).catch(registryFailure);
      return { status: 'Login Succeeded' };
    }),
  };
}
