/** What the orchestrator plans return. */
import { Node, Service, Task, TaskState, UpdateStatus } from '../../services/gen/swarmlet/v1/types';

export type OrchestratorAction =
  /** A new task: state NEW, desired RUNNING, spec and spec version from the service. */
  | { kind: 'create'; task: Task }
  /** Raise a task's desired state (never lowers it). */
  | { kind: 'setDesired'; taskId: string; desired: TaskState; message: string }
  /** Forget an old task (history cleanup). */
  | { kind: 'delete'; taskId: string };

export interface OrchestratorPlan {
  actions: OrchestratorAction[];
  /** The earliest time the plan wants to run again (restart delays, update delays, monitor periods). */
  wakeAt?: Date;
  /** The service's new update status, when it changes. */
  updateStatus?: UpdateStatus;
}

export interface OrchestratorInput {
  service: Service;
  /** Every task of the service, in any state. */
  tasks: Task[];
  nodes: Node[];
  /** The same nodes by id, when the caller has them: a pass that plans every service builds this once, not once per service (a thousand nodes made it most of what planning allocated). */
  nodeById?: ReadonlyMap<string, Node>;
  now: Date;
  newId: () => string;
}
