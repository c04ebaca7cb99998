import * as grpc from '@grpc/grpc-js';
import { Containers } from '../agent/containers/containers';
import { planLogSince } from '../agent/runtime/log-plans';
import { unary } from '../services/api/handlers';
import { failCall } from '../services/api/tls';
import {
  ContainerLogLine,
  ContainerLogsRequest,
  ConnectContainerNetworkRequest,
  ContainerRequest,
  CreateContainerRequest,
  DisconnectContainerNetworkRequest,
  KillContainerRequest,
  ListContainersRequest,
  LocalNodeServer,
  RemoveContainerRequest,
  StopContainerRequest,
} from '../services/gen/swarmlet/v1/control';

export type ContainerHandlers = Pick<
  LocalNodeServer,
  | 'createContainer'
  | 'startContainer'
  | 'stopContainer'
  | 'restartContainer'
  | 'killContainer'
  | 'removeContainer'
  | 'listContainers'
  | 'inspectContainer'
  | 'waitContainer'
  | 'containerLogs'
  | 'containerStats'
  | 'containerTop'
  | 'connectContainerNetwork'
  | 'disconnectContainerNetwork'
>;

const timeoutMs = (req: StopContainerRequest) => (req.timeoutSeconds === undefined ? undefined : Math.max(0, Number(req.timeoutSeconds)) * 1000);

/** The LocalNode container calls: this node's containers, over Containers. */
export function containerService(containers: Containers): ContainerHandlers {
  return {
    createContainer: unary((req: CreateContainerRequest) => {
      const pull = { registryAuth: req.registryAuth || undefined };
      return req.start ? containers.run(req.config!, pull) : containers.create(req.config!, pull);
    }),
    startContainer: unary((req: ContainerRequest) => containers.start(req.container)),
    stopContainer: unary((req: StopContainerRequest) => containers.stop(req.container, timeoutMs(req))),
    restartContainer: unary((req: StopContainerRequest) => containers.restart(req.container, timeoutMs(req))),
    killContainer: unary((req: KillContainerRequest) => containers.kill(req.container, req.signal)),
    removeContainer: unary(async (req: RemoveContainerRequest) => {
      await containers.remove(req.container, req.force);
      return {};
    }),
    connectContainerNetwork: unary((req: ConnectContainerNetworkRequest) => containers.connect(req.container, req.network, { aliases: req.aliases, ipv4: req.ipv4 })),
    disconnectContainerNetwork: unary((req: DisconnectContainerNetworkRequest) => containers.disconnect(req.container, req.network, req.force)),
    listContainers: unary(async (req: ListContainersRequest) => ({ containers: containers.list(req.all) })),
    inspectContainer: unary(async (req: ContainerRequest) => containers.get(req.container)),
    containerStats: unary((req: ContainerRequest) => containers.stats(req.container)),
    containerTop: unary((req: ContainerRequest) => containers.top(req.container)),
    waitContainer: unary(async (req: ContainerRequest, call) => {
      const controller = new AbortController();
      call.on('cancelled', () => controller.abort());
      return { statusCode: await containers.wait(req.container, controller.signal) };
    }),
    containerLogs: (call: grpc.ServerWritableStream<ContainerLogsRequest, ContainerLogLine>) => {
      const controller = new AbortController();
      call.on('cancelled', () => controller.abort());
      void (async () => {
        const req = call.request;
        const since = req.since ? planLogSince(req.since, new Date()) : undefined;
        for await (const r of containers.logs(req.container, { tail: Number(req.tail), follow: req.follow, signal: controller.signal, since })) {
          if (controller.signal.aborted) return;
          call.write({ line: r.text, stream: r.stream, time: r.time, partial: r.partial });
        }
        call.end();
      })().catch((err) => failCall(call, undefined, err));
    },
  };
}
