/**
 * The port every network driver of the node implements (libnetwork's driverapi.Driver, in the
 * shape swarmlet needs): the network controller (network-controller.ts) loops over the drivers,
 * and each one does its own kind of network and leaves the others alone.
 */
import type { OverlayNetwork } from '../../services/gen/swarmlet/v1/dispatcher';
import type { NetworkAttachment, Task } from '../../services/gen/swarmlet/v1/types';

/** A task running on this node with its network namespace, as the drivers plug it in. */
export interface RunningTask {
  taskId: string;
  /** Path of the task's network namespace. */
  netns: string;
  attachments: Task['networks'];
  /**
   * A container's gateway bridge interface (`eth<gatewayIndex>`), placed by its layout
   * (plans/container-layout.ts); undefined: a task's, after its attachments when it needs one.
   * A container's free slots are attachments of driver `none`.
   */
  gatewayIndex?: number;
}

/** Where a container's gateway bridge interface goes (attachTask); no gateway: none. */
export interface ContainerGateway {
  gateway?: number;
}

/** What this node's networks should be, as the controller hands it to every driver. */
export interface WantedNetworks {
  /** The overlays wanted on this node (VNI, subnet, peers). */
  overlays: OverlayNetwork[];
  /** The tasks assigned to this node. */
  tasks: Task[];
  /** The tasks running here with their namespaces, and the ingress sandbox when there is one. */
  running: RunningTask[];
  /** Whether the gateway bridge is wanted (a task on overlays alone, or the ingress sandbox). */
  gateway: boolean;
}

export interface NetworkDriver {
  /** What the controller's log lines call it ("overlay networks"). */
  readonly label: string;
  /** Reads the kernel, then makes this driver's part of it what `wanted` says. Idempotent. */
  reconcileNetworks(wanted: WantedNetworks): Promise<void>;
  /**
   * Plugs a task's attachments of this driver's kind into its namespace (the others are left
   * alone). With `layout` (a container), its gateway bridge interface goes where it says.
   */
  attachTask(task: Task, netns: string, wanted: WantedNetworks, layout?: ContainerGateway): Promise<void>;
  /** Unplugs the task; a task this driver never plugged in is fine. */
  detachTask(taskId: string): Promise<void>;
  /**
   * Unplugs one interface, `eth<index>` of attachment `a` (when of this driver's kind), and leaves
   * the task's other interfaces alone: a container's `network disconnect`.
   */
  detachInterface(task: { taskId: string; netns: string }, index: number, a: NetworkAttachment, wanted: WantedNetworks): Promise<void>;
  /** What differs between the kernel and `wanted`, one sentence a line. Changes nothing. */
  doctorNetworks(wanted: WantedNetworks): Promise<string[]>;
  /** Lets go of handles and helpers; the kernel objects stay. */
  close(): Promise<void>;
}
