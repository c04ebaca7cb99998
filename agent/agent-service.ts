import * as grpc from '@grpc/grpc-js';
import { Logger, componentLogger } from '../services/common/logger';
import { failCall, requireRoles } from '../services/api/tls';
import { unary } from '../services/api/handlers';
import { AgentServer, CheckOverlaysRequest, TaskLogsRequest } from '../services/gen/swarmlet/v1/dispatcher';
import { LogLine } from '../services/gen/swarmlet/v1/types';
import { Runtime } from './runtime/runtime';

/**
 * What the Agent service needs of the node's networks (network doctor): the differences between the
 * kernel and the request's overlays; with check_services also its DNS records, the running tasks'
 * VIP tables, the ingress sandbox and the host's published ports.
 */
export interface NetworkChecker {
  doctor(req: CheckOverlaysRequest): Promise<string[]>;
}

/** What managers ask of this node directly: its tasks' output, and whether its networks match. Manager certificates only. */
export function agentService(runtime: Runtime, networks: NetworkChecker, caCertPem: string, parentLog: Logger): AgentServer {
  const log = componentLogger(parentLog, 'agent-service');
  const service: AgentServer = {
    checkOverlays: unary(async (req: CheckOverlaysRequest) => ({ differences: await networks.doctor(req) })),

    taskLogs: (call: grpc.ServerWritableStream<TaskLogsRequest, LogLine>) => {
      const controller = new AbortController();
      call.on('cancelled', () => controller.abort());
      const known = runtime.list();
      Promise.resolve(known)
        .then(async (ids) => {
          const wanted = call.request.taskIds.filter((id) => ids.includes(id));
          await Promise.all(
            wanted.map(async (taskId) => {
              for await (const record of runtime.logs(taskId, { tail: Number(call.request.tail), follow: call.request.follow, signal: controller.signal })) {
                if (controller.signal.aborted) break;
                call.write({ taskId, nodeId: '', serviceName: '', slot: 0, line: record.text });
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
