/**
 * The network namespaces of this node's containers, by container id: what the network controller
 * plugs a container's network attachments into (as the worker's runningNetns() for tasks). The
 * container code registers a container's namespace before it asks for its networks, and removes
 * it when the container is gone; the dispatcher session lists these ids when it opens, so the
 * managers drop the attachments of containers the node no longer has.
 */
import { EventEmitter } from 'node:events';

export class ContainerNetnsRegistry extends EventEmitter {
  private readonly netns = new Map<string, string>();

  /** The container's namespace is at `path` from now on; emits 'change'. */
  set(containerId: string, path: string): void {
    if (this.netns.get(containerId) === path) return;
    this.netns.set(containerId, path);
    this.emit('change');
  }

  /** The container is gone; emits 'change'. */
  delete(containerId: string): void {
    if (this.netns.delete(containerId)) this.emit('change');
  }

  get(containerId: string): string | undefined {
    return this.netns.get(containerId);
  }

  /** A copy: container id -> namespace path. */
  entries(): Map<string, string> {
    return new Map(this.netns);
  }

  ids(): string[] {
    return [...this.netns.keys()].sort();
  }
}
