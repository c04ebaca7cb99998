import * as grpc from '@grpc/grpc-js';
import { Logger, componentLogger } from '../services/common/logger';
import { failCall, requireRoles } from '../services/api/tls';
import { unary } from '../services/api/handlers';
import { AgentServer, CheckOverlaysRequest, OverlayNetwork, TaskLogsRequest } from '../services/gen/swarmlet/v1/dispatcher';
import { LogLine } from '../services/gen/swarmlet/v1/types';
import { Runtime } from './runtime/runtime';

/** What managers ask of this node directly: its tasks' output, and whether its overlays match. Manager certificates only. */
/** What the Agent service needs of the node's overlay driver. */
export interface OverlayChecker {
  doctor(overlays: OverlayNetwork[]): Promise<string[]>;
}

export function agentService(runtime: Runtime, overlays: OverlayChecker, caCertPem: string, parentLog: Logger): AgentServer {
  const log = componentLogger(parentLog, 'agent-service');
  const service: AgentServer = {
    checkOverlays: unary(async (req: CheckOverlaysRequest) => ({ differences: await overlays.doctor(req.overlays) })),

    taskLogs: (call: grpc.ServerWritableStream<TaskLogsRequest, LogLine>) => {
      const controller = new AbortController();
      call.on('cancelled', () => controller.abort());
      const known = runtime.list();
      Promise.resolve(known)
        .then(async (ids) => {
          const wanted = call.request.taskIds.filter((id) => ids.includes(id));
          await Promise.all(
            wanted.map(async (taskId) => {
              for await (const line of runtime.logs(taskId, { tail: Number(call.request.tail), follow: call.request.follow, signal: controller.signal })) {
                if (controller.signal.aborted) break;
                call.write({ taskId, nodeId: '', serviceName: '', slot: 0, line });
              }
            }),
          );
          call.end();
        })
        .catch((err) => {
          log.warn({ err: (err as Error).message }, 'task logs failed');
          failCall(call, undefined, err);
        });
    },
  };
  return requireRoles(service, caCertPem, ['manager']);
}
