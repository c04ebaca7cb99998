import { Mutex } from 'async-mutex';
import { phaseTimer } from '../services/common/phase-timer';
import { Etcd3 } from 'etcd3';
import { DesiredNode, roleName } from '../agent/agent';
import { readClusterView, votingManagers } from '../manager/cluster-view';
import { peerUrl } from '../manager/embedded-etcd';
import { Manager } from '../manager/manager';
import { retireManager, retireThroughPeer } from '../manager/members-service';
import { DEFAULT_CLUSTER_SPEC, planClusterSpec, planManagerRemoval } from '../manager/node-plans';
import { EtcdStore } from '../manager/store/etcd-store';
import { EtcdDataCorruptError } from '../manager/store/etcd-errors';
import { DEFAULT_API_PORT, formatHostPort, isIPv4, parseHostPort } from '../services/common/addr';
import { exponentialBackoff, sleep } from '../services/common/backoff';
import { asSwarmletError, failedPrecondition, internal, invalidArgument, NoLeaderError, unavailable } from '../services/common/errors';
import { Logger } from '../services/common/logger';
import { fromServiceError } from '../services/api/grpc-errors';
import { callUnary } from '../services/api/handlers';
import { managerChannelOptions, managerClientCredentials, TlsMaterial } from '../services/api/tls';
import { BackupResponse, InitRequest, InitResponse, JoinRequest, JoinResponse, RestoreRequest } from '../services/gen/swarmlet/v1/control';
import { CAClient, IssueNodeCertificateResponse, MembersClient } from '../services/gen/swarmlet/v1/dispatcher';
import { Cluster, Node, NodeAvailability, NodeDescription, NodeRole, NodeState as NodeStatusState } from '../services/gen/swarmlet/v1/types';
import { caDigest, certificateInfo, createKeyAndCSR, createRootCA, newRandomId, newTokenSecret, RootCAMaterial, signCertificate } from '../services/pki/ca';
import { checkPassphrase, openBackup, sealBackup } from '../services/pki/backup-seal';
import { parseBackupContent, planBackupContent } from '../manager/backup-plans';
import { dumpKeyspace, loadKeyspace } from '../manager/store/etcd-backup';
import { planCertRenewal, renewalFraction } from '../services/pki/renewal';
import { newSealKey } from '../services/pki/seal';
import { formatJoinToken, parseJoinToken } from '../services/pki/tokens';
import { isLocalAddress, pickAdvertiseAddr } from './advertise';
import { managersChanged, planForcedRetirements, planRoleTransition } from './membership-plans';
import { NodeState, NodeStateDir } from './node-state';
import { fetchPinnedRootCA } from './remote-ca';


export const NOT_IN_SWARM = 'this node is not part of a swarm; run "swarmlet init" or "swarmlet join" first';
const ALREADY_IN_SWARM = 'this node is already part of a swarm; use "swarmlet swarm leave" to leave it first';

/** How often the node certificate is checked for renewal. */
const RENEWAL_CHECK_MS = 10 * 60 * 1000;
/** A role change that failed is tried again after this long, unless the cluster said something newer. */
const ROLE_RETRY_MS = 2000;

/** How an etcd member is started: as the first of a new cluster, or to join an existing one. */
export interface EtcdStart {
  initialCluster: string;
  state: 'new' | 'existing';
  /** Start the member as a one-member cluster from its data dir (etcd's --force-new-cluster). */
  forceNewCluster?: boolean;
}

/** What membership drives: the parts that run on this node for its role (the composition, node/daemon.ts). */
export interface NodeRoles {
  readonly description: NodeDescription;
  /** The manager running on this node, if any. */
  readonly manager?: Manager;
  /** Whether the agent (and so the whole role) is running. */
  readonly agentRunning: boolean;
  /** The etcd client of this node's manager, while it runs. */
  readonly storeClient?: Etcd3;
  /** Starts this node's etcd member (embedded etcd) and its client; returns the client. */
  startEtcd(state: NodeState, opts: EtcdStart): Promise<Etcd3>;
  /** Starts what the role needs: etcd client and manager on managers; agent and TCP server everywhere. */
  startRole(state: NodeState): Promise<void>;
  /** Stops what startRole started. Tasks keep running. */
  stopRole(): Promise<void>;
  /** The TCP server presents this certificate from now on. */
  presentCertificate(tls: TlsMaterial): void;
  /** On leaving: the cluster is told, so the node shows down at once (best effort: no manager may answer). */
  announceLeave(): Promise<void>;
  /** On leaving: this node's tasks stop and are forgotten, and its network sandboxes go. */
  removeAllTasks(state: NodeState): Promise<void>;
}

/**
 * This node's membership of a swarm, as one state machine: init, join and leave; promotion and
 * demotion when the cluster wants another role for it; certificate renewal; and its etcd
 * membership. Transitions run one at a time, and each either completes or leaves the node as it
 * found it. The node's state is kept in the data dir; `state.json` is the commit point.
 */
export class Membership {
  private current?: NodeState;
  private readonly mutex = new Mutex();
  private desired?: DesiredNode;
  private renewalTimer?: NodeJS.Timeout;
  /** Where in its life this node renews its certificate, drawn once. */
  private readonly renewAt = renewalFraction(Math.random());

  constructor(
    private readonly dir: NodeStateDir,
    private readonly roles: NodeRoles,
    private readonly log: Logger,
    private readonly signal: AbortSignal,
  ) {}

  /** Why this node's role could not start and will not be tried again (a corrupt etcd data dir), for `info`. */
  startFailure?: string;

  /** This node's swarm state; undefined when it is in none. */
  get state(): NodeState | undefined {
    return this.current;
  }

  /** Reads the state the data dir remembers. */
  load(): NodeState | undefined {
    this.current = this.dir.readState();
    return this.current;
  }

  /** Runs `fn` once no other transition is under way. */
  serialize<T>(fn: () => Promise<T>): Promise<T> {
    return this.mutex.runExclusive(fn);
  }

  /** After a restart: starts the remembered role, again and again with backoff until it starts or the node stops. */
  async activate(state: NodeState): Promise<void> {
    const backoff = exponentialBackoff(500, 10000);
    while (!this.signal.aborted) {
      try {
        // A transition made meanwhile (swarm init --force-new-cluster) may have started the role already.
        await this.serialize(async () => {
          if (!this.roles.agentRunning) await this.startRole(state);
        });
        return;
      } catch (err) {
        if (err instanceof EtcdDataCorruptError) {
          // Starting again would fail the same way: say so once (in the log and in `info`), and wait for the user.
          this.log.error({ dataDir: err.dataDir }, err.message);
          this.startFailure = err.message;
          await this.serialize(() => this.stopRole());
          return;
        }
        const delay = backoff.next();
        this.log.error({ err: asSwarmletError(err).message, delayMs: delay }, 'could not start this node; retrying');
        await this.serialize(() => this.stopRole());
        await sleep(delay, this.signal);
      }
    }
  }

  async init(req: InitRequest): Promise<InitResponse> {
    if (req.forceNewCluster) return this.forceNewCluster();
    if (this.current) throw failedPrecondition(ALREADY_IN_SWARM);
    const advertiseAddr = req.advertiseAddr || pickAdvertiseAddr();
    checkAdvertiseAddr(advertiseAddr);
    const listen = parseHostPort(req.listenAddr || `0.0.0.0:${DEFAULT_API_PORT}`, DEFAULT_API_PORT, '--listen-addr');
    const external = req.etcdEndpoints.map((e) => e.trim()).filter(Boolean);
    for (const e of external) if (!/^https?:\/\/[^/\s]+$/.test(e)) throw invalidArgument(`invalid etcd endpoint ${JSON.stringify(e)}: expected http://HOST:PORT`);

    const spec = planClusterSpec(DEFAULT_CLUSTER_SPEC, { heartbeatPeriodMs: req.heartbeatPeriodMs, nodeDownAfterMs: req.nodeDownAfterMs });
    // Where an init's time goes, in its log line: the CA and the node's certificate, etcd, the cluster's records, the role.
    const { phasesMs, phase } = phaseTimer();
    const clusterId = newRandomId();
    const nodeId = newRandomId();
    // The node's key pair does not depend on the CA: both are made at once (webcrypto works off the event loop).
    const [ca, { keyPem, csrPem }] = await Promise.all([createRootCA(clusterId), createKeyAndCSR(nodeId)]);
    const certPem = await signCertificate(ca, csrPem, { nodeId, clusterId, role: 'manager', ipAddresses: [advertiseAddr] });
    phase('certificates');
    const apiAddr = formatHostPort(advertiseAddr, listen.port);
    const cluster: Cluster = {
      id: clusterId,
      spec,
      joinTokens: { worker: formatJoinToken(ca.digest, newTokenSecret()), manager: formatJoinToken(ca.digest, newTokenSecret()) },
      rootCa: { certPem: ca.certPem, keyPem: ca.keyPem, digest: ca.digest },
      etcd: { embedded: external.length === 0, endpoints: external },
    };
    const node = this.firstManagerNode(nodeId, advertiseAddr, apiAddr);
    const state = firstManagerState(nodeId, clusterId, advertiseAddr, formatHostPort(listen.host, listen.port), apiAddr, cluster.etcd!);
    const log = this.log.child({ nodeId, clusterId });
    try {
      this.dir.writeTls({ caCertPem: ca.certPem, certPem, keyPem });
      this.dir.writeSealKey(newSealKey());
      const etcd = await this.roles.startEtcd(state, { initialCluster: `${nodeId}=${peerUrl(advertiseAddr)}`, state: 'new' });
      phase('etcd');
      await new EtcdStore(etcd, undefined, () => this.dir.readSealKey()).createCluster(cluster, node);
      phase('store');
      this.current = state;
      await this.startRole(state);
      this.dir.writeState(state);
      phase('role');
      log.info({ advertiseAddr, apiAddr, etcd: cluster.etcd, phasesMs }, 'swarm initialized');
      return { nodeId, clusterId, workerToken: cluster.joinTokens!.worker, managerAddr: apiAddr };
    } catch (err) {
      log.error({ err: asSwarmletError(err).message }, 'init failed; undoing');
      await this.undo();
      throw err;
    }
  }

  /**
   * `swarm init --force-new-cluster` on a manager of a swarm that lost quorum: its etcd member
   * becomes a one-member cluster from its own data (etcd's --force-new-cluster), so every service,
   * network, secret and node stays; the other managers are retired as a demotion would retire them.
   * Workers keep their certificates and reconnect to this manager; managers can join again.
   */
  private async forceNewCluster(): Promise<InitResponse> {
    const state = this.current;
    if (!state) throw failedPrecondition(`${NOT_IN_SWARM.split(';')[0]}: --force-new-cluster remakes a swarm from a manager's own copy of it`);
    if (state.role !== 'manager') throw failedPrecondition('this node is not a manager: --force-new-cluster works only on a manager, from its copy of the swarm\'s state');
    if (!state.etcd.embedded) throw failedPrecondition("this swarm keeps its state in an external etcd cluster: recover that cluster with etcd's own tools");
    // Forcing while the others still have quorum would split the swarm in two: never without a verdict.
    const quorum = await this.roles.manager?.quorum?.check(true);
    if (!quorum) throw failedPrecondition('this manager is not running (see "swarmlet info"), so whether the swarm lost its quorum cannot be checked');
    if (!quorum.lost) throw failedPrecondition('the swarm has a leader (its managers have quorum): --force-new-cluster is only for a swarm that lost its quorum');
    const log = this.log.child({ nodeId: state.nodeId, clusterId: state.clusterId });
    log.warn('forcing a new one-manager cluster from this manager\'s etcd data');
    await this.stopRole();
    let cluster: Cluster | undefined;
    try {
      const etcd = await this.roles.startEtcd(state, { initialCluster: '', state: 'existing', forceNewCluster: true });
      const store = new EtcdStore(etcd, undefined, () => this.dir.readSealKey());
      cluster = await retryUnavailable(() => store.getCluster(), this.signal);
      const lost = planForcedRetirements(await retryUnavailable(() => store.listNodes(), this.signal), state.nodeId);
      for (const id of lost) await retryUnavailable(() => retireManager(store, etcd, true, id, false, log), this.signal);
      log.warn({ retired: lost }, 'the other managers\' etcd members are gone; they are shown as unreachable until they come back as workers or are removed');
    } catch (err) {
      // The node goes back to running its role as it was.
      log.error({ err: asSwarmletError(err).message }, 'could not force a new cluster; starting the manager again as it was');
      await this.roles.stopRole();
      await this.startRole(state).catch((e) => log.error({ err: asSwarmletError(e).message }, 'could not start the manager again; restart the daemon'));
      throw err;
    }
    // The member runs again without --force-new-cluster: a restart must never drop members that joined since.
    await this.roles.stopRole();
    await this.startRole(state);
    const apiAddr = formatHostPort(state.advertiseAddr, parseHostPort(state.listenAddr).port);
    log.info('this manager is now the only manager of the swarm');
    return { nodeId: state.nodeId, clusterId: state.clusterId, workerToken: cluster?.joinTokens?.worker ?? '', managerAddr: apiAddr };
  }

  /** `swarm backup`: this manager's copy of the cluster store (every key not under a lease) and the CA, sealed with `passphrase`. */
  async backup(passphrase: string): Promise<BackupResponse> {
    const state = this.current;
    if (!state) throw failedPrecondition(NOT_IN_SWARM);
    checkPassphrase(passphrase);
    const manager = this.roles.manager;
    const etcd = this.roles.storeClient;
    if (state.role !== 'manager' || !manager || !etcd) throw failedPrecondition('this node is not a running manager: run "swarmlet swarm backup" on a manager');
    if (!state.etcd.embedded) throw failedPrecondition("this swarm keeps its state in an external etcd cluster: back that up with etcd's own tools");
    const quorum = await manager.quorum?.check(true);
    if (quorum?.lost) throw new NoLeaderError(quorum.message);
    const cluster = await manager.store.getCluster();
    const sealKey = this.dir.readSealKey();
    if (!cluster?.rootCa?.keyPem || !sealKey) throw internal('this manager holds no root CA key or seal key to back up');
    const { revision, kvs } = await dumpKeyspace(etcd);
    const content = planBackupContent({ clusterId: cluster.id, createdAt: new Date(), revision, ca: { certPem: cluster.rootCa.certPem, keyPem: cluster.rootCa.keyPem }, sealKey, kvs });
    this.log.info({ nodeId: state.nodeId, revision, keys: content.kvs.length }, 'swarm backed up');
    return { backup: sealBackup(passphrase, Buffer.from(JSON.stringify(content))), keys: content.kvs.length };
  }

  /**
   * `swarm restore`: on a node in no swarm, a backup becomes a one-manager swarm: a new etcd member
   * holds every key of the backup, this node is its manager (a certificate from the backed-up CA),
   * and the managers of the backup are retired as after --force-new-cluster. Workers rejoin with
   * the swarm's worker token.
   */
  async restore(req: RestoreRequest): Promise<InitResponse> {
    if (this.current) throw failedPrecondition(ALREADY_IN_SWARM);
    const content = parseBackupContent(openBackup(req.passphrase, req.backup).toString('utf8'));
    const advertiseAddr = req.advertiseAddr || pickAdvertiseAddr();
    checkAdvertiseAddr(advertiseAddr);
    const listen = parseHostPort(req.listenAddr || `0.0.0.0:${DEFAULT_API_PORT}`, DEFAULT_API_PORT, '--listen-addr');
    const ca: RootCAMaterial = { certPem: content.ca.certPem, keyPem: content.ca.keyPem, digest: caDigest(content.ca.certPem) };
    const clusterId = content.clusterId;
    const nodeId = newRandomId();
    const { keyPem, csrPem } = await createKeyAndCSR(nodeId);
    const certPem = await signCertificate(ca, csrPem, { nodeId, clusterId, role: 'manager', ipAddresses: [advertiseAddr] });
    const apiAddr = formatHostPort(advertiseAddr, listen.port);
    const state = firstManagerState(nodeId, clusterId, advertiseAddr, formatHostPort(listen.host, listen.port), apiAddr, { embedded: true, endpoints: [] });
    const log = this.log.child({ nodeId, clusterId });
    try {
      this.dir.writeTls({ caCertPem: ca.certPem, certPem, keyPem });
      this.dir.writeSealKey(Buffer.from(content.sealKey, 'base64'));
      const etcd = await this.roles.startEtcd(state, { initialCluster: `${nodeId}=${peerUrl(advertiseAddr)}`, state: 'new' });
      await retryUnavailable(() => loadKeyspace(etcd, content.kvs), this.signal);
      const store = new EtcdStore(etcd, undefined, () => this.dir.readSealKey());
      const cluster = await store.getCluster();
      if (!cluster) throw invalidArgument('the backup holds no cluster record');
      await store.createNode(this.firstManagerNode(nodeId, advertiseAddr, apiAddr));
      const lost = planForcedRetirements(await store.listNodes(), nodeId);
      for (const id of lost) await retireManager(store, etcd, true, id, false, log);
      this.current = state;
      await this.startRole(state);
      this.dir.writeState(state);
      log.info({ advertiseAddr, apiAddr, backupOf: content.createdAt, keys: content.kvs.length, retired: lost }, 'swarm restored from a backup');
      return { nodeId, clusterId, workerToken: cluster.joinTokens?.worker ?? '', managerAddr: apiAddr };
    } catch (err) {
      log.error({ err: asSwarmletError(err).message }, 'restore failed; undoing');
      await this.undo();
      throw err;
    }
  }

  /** The record of a swarm's first manager (init, restore), before its agent reports. */
  private firstManagerNode(nodeId: string, advertiseAddr: string, apiAddr: string): Node {
    return {
      id: nodeId,
      role: NodeRole.NODE_ROLE_MANAGER,
      spec: { desiredRole: NodeRole.NODE_ROLE_MANAGER, availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: {} },
      description: this.roles.description,
      status: { state: NodeStatusState.NODE_STATE_UNKNOWN, message: 'initializing', addr: advertiseAddr, updatedAt: new Date().toISOString(), apiAddr },
      managerStatus: { addr: apiAddr, leader: false, reachability: 0 },
    };
  }

  async join(req: JoinRequest): Promise<JoinResponse> {
    if (this.current) throw failedPrecondition(ALREADY_IN_SWARM);
    const token = parseJoinToken(req.token);
    const remote = parseHostPort(req.remoteAddr, DEFAULT_API_PORT, 'manager address');
    if (req.advertiseAddr) checkAdvertiseAddr(req.advertiseAddr);
    const listen = parseHostPort(req.listenAddr || `0.0.0.0:${DEFAULT_API_PORT}`, DEFAULT_API_PORT, '--listen-addr');
    // Where a join's time goes, in its log line: the CA's certificate, the key, the certificate, etcd, the role.
    const { phasesMs, phase } = phaseTimer();
    // The key pair does not depend on the CA: made while its certificate is fetched.
    const keyAndCsr = createKeyAndCSR('joining');
    keyAndCsr.catch(() => undefined);
    const { caCertPem, localAddress } = await fetchPinnedRootCA(remote.host, remote.port, token.caDigest);
    phase('fetchCa');
    const advertiseAddr = req.advertiseAddr || localAddress;
    const { keyPem, csrPem } = await keyAndCsr;
    phase('key');
    const ca = new CAClient(formatHostPort(remote.host, remote.port), managerClientCredentials(caCertPem), managerChannelOptions);
    let issued: IssueNodeCertificateResponse;
    try {
      issued = await callUnary(ca.issueNodeCertificate.bind(ca), {
        token: req.token.trim(),
        csrPem,
        description: this.roles.description,
        advertiseAddr,
        listenAddr: formatHostPort(listen.host, listen.port),
      });
    } catch (err) {
      throw fromServiceError(err, `joining through ${remote.host}:${remote.port}`);
    } finally {
      ca.close();
    }
    phase('certificate');
    const role = roleName(issued.role);
    const state: NodeState = {
      nodeId: issued.nodeId,
      clusterId: issued.clusterId,
      role,
      advertiseAddr,
      listenAddr: formatHostPort(listen.host, listen.port),
      managers: issued.managers.length ? issued.managers : [{ nodeId: '', addr: formatHostPort(remote.host, remote.port) }],
      etcd: issued.etcd ?? { embedded: true, endpoints: [] },
    };
    const log = this.log.child({ nodeId: state.nodeId, clusterId: state.clusterId, role });
    try {
      const tls = { caCertPem: issued.caCertPem, certPem: issued.certPem, keyPem };
      this.dir.writeTls(tls);
      this.keepSealKey(issued);
      if (role === 'manager') await this.becomeEtcdMember(state, tls);
      phase('etcd');
      this.current = state;
      await this.startRole(state);
      this.dir.writeState(state);
      phase('role');
      log.info({ advertiseAddr, via: req.remoteAddr, phasesMs }, 'joined the swarm');
      return { nodeId: state.nodeId, clusterId: state.clusterId, role: issued.role };
    } catch (err) {
      log.error({ err: asSwarmletError(err).message }, 'join failed; undoing');
      await this.undo();
      throw err;
    }
  }

  async leave(force: boolean): Promise<Record<string, never>> {
    const state = this.current;
    if (!state) throw failedPrecondition(NOT_IN_SWARM);
    const log = this.log.child({ nodeId: state.nodeId });
    const manager = this.roles.manager;
    if (manager) {
      try {
        const view = await readClusterView(manager.store, () => manager.leaderId());
        const voting = votingManagers(view.nodes);
        const reason = planManagerRemoval(voting, state.nodeId);
        if (reason && !force) throw failedPrecondition(`this node is a manager and leaving would break the swarm: ${reason}. Use --force to leave anyway`);
        // Another manager takes this one's etcd member out and records it: that manager's etcd stays up to do so.
        if (voting.length > 1) await retireThroughPeer(view.nodes, state.nodeId, this.dir.readTls(), state.nodeId, true);
      } catch (err) {
        if (!force) throw err;
        log.warn({ err: asSwarmletError(err).message }, 'leaving by force despite an error');
      }
    } else if (state.role === 'manager' && !force) {
      throw failedPrecondition('this manager is not running, so leaving safely cannot be checked; use --force to leave anyway');
    }
    await this.roles.announceLeave();
    await this.stopRole();
    await this.roles.removeAllTasks(state);
    this.dir.wipe();
    this.current = undefined;
    this.startFailure = undefined;
    log.info('left the swarm');
    return {};
  }

  /** What the cluster wants of this node, from the agent: the managers are remembered, and the role follows. */
  onDesired(desired: DesiredNode): void {
    this.desired = desired;
    const state = this.current;
    if (!state) return;
    if (managersChanged(state.managers, desired.managers)) {
      state.managers = desired.managers;
      this.dir.writeState(state);
    }
    this.serialize(() => this.reconcileRole()).catch((err) => {
      this.log.warn({ err: asSwarmletError(err).message }, 'role change failed; will retry');
      const retry = setTimeout(() => this.desired === desired && this.onDesired(desired), ROLE_RETRY_MS);
      retry.unref();
    });
  }

  /** Stops the role and the renewal checks (the node is stopping). */
  async stop(): Promise<void> {
    await this.serialize(() => this.stopRole());
  }

  /** A failed init or join leaves nothing behind. */
  private async undo(): Promise<void> {
    this.current = undefined;
    await this.stopRole();
    this.dir.wipe();
  }

  private async startRole(state: NodeState): Promise<void> {
    await this.roles.startRole(state);
    this.scheduleRenewal();
  }

  private async stopRole(): Promise<void> {
    clearInterval(this.renewalTimer);
    await this.roles.stopRole();
  }

  /** Checks now and then whether the node certificate is due for renewal, and renews it then. */
  private scheduleRenewal(): void {
    clearInterval(this.renewalTimer);
    const check = () =>
      this.serialize(() => this.renewIfDue()).catch((err) => this.log.warn({ err: asSwarmletError(err).message }, 'certificate renewal failed; will retry'));
    this.renewalTimer = setInterval(check, RENEWAL_CHECK_MS);
    this.renewalTimer.unref();
    check();
  }

  private async renewIfDue(): Promise<void> {
    const state = this.current;
    if (!state || !this.roles.agentRunning) return;
    const cert = certificateInfo(this.dir.readTls().certPem);
    if (!planCertRenewal(cert, new Date(), this.renewAt)) return;
    const tls = await this.renewCertificate(state, false);
    this.roles.presentCertificate(tls);
    this.log.info({ nodeId: state.nodeId, notAfter: certificateInfo(tls.certPem).notAfter }, 'node certificate renewed');
    if (state.role === 'manager' && state.etcd.embedded) {
      // The etcd client presents the certificate it was made with, and the embedded member refuses
      // it once it expires: the manager role starts again on the new one, as after a role change.
      this.log.info({ nodeId: state.nodeId }, 'restarting the manager role so that its etcd client presents the renewed certificate');
      await this.stopRole();
      await this.startRole(state);
    }
  }

  /** Makes this node's certificate, etcd membership and manager match the role the cluster wants for it. */
  private async reconcileRole(): Promise<void> {
    const state = this.current;
    const desired = this.desired?.role;
    if (!state || !desired || this.signal.aborted) return;
    const transition = planRoleTransition(state.role, desired, certificateInfo(this.dir.readTls().certPem).role);
    if (transition === 'none') return;
    const log = this.log.child({ nodeId: state.nodeId, from: state.role, to: desired });
    log.info('changing role');
    if (transition === 'promote') {
      const tls = await this.renewCertificate(state, false);
      if (certificateInfo(tls.certPem).role !== 'manager') return;
      await this.stopRole();
      await this.becomeEtcdMember(state, tls);
      this.setState({ ...state, role: 'manager' });
      await this.startRole(this.current!);
    } else {
      if (transition === 'demote') {
        await this.stopRole();
        this.dir.wipeEtcd();
        this.setState({ ...state, role: 'worker' });
        await this.startRole(this.current!);
      }
      const tls = await this.renewCertificate(this.current!, true);
      this.roles.presentCertificate(tls);
    }
    log.info('role changed');
  }

  private setState(state: NodeState): void {
    this.dir.writeState(state);
    this.current = state;
  }

  /** A new manager asks an existing one to add its etcd member, then starts it to join the others. */
  private async becomeEtcdMember(state: NodeState, tls: TlsMaterial): Promise<void> {
    if (!state.etcd.embedded) {
      await this.roles.startEtcd(state, { initialCluster: '', state: 'existing' });
      return;
    }
    // etcd refuses a new member until the last one added has been connected for a few seconds
    // (its strict reconfiguration check): managers joining in quick succession wait their turn.
    const deadline = Date.now() + 30000;
    const addMember = () =>
      this.withManager(state, async (addr) => {
        const members = new MembersClient(addr, managerClientCredentials(tls.caCertPem, tls), managerChannelOptions);
        try {
          return await callUnary(members.addEtcdMember.bind(members), { peerUrl: peerUrl(state.advertiseAddr) });
        } finally {
          members.close();
        }
      });
    let added;
    for (const backoff = exponentialBackoff(250, 2000); ; ) {
      try {
        added = await addMember();
        break;
      } catch (err) {
        if (asSwarmletError(err).kind !== 'Unavailable' || Date.now() > deadline) throw err;
        await sleep(backoff.next(), this.signal);
      }
    }
    this.dir.wipeEtcd();
    await this.roles.startEtcd(state, { initialCluster: added.initialCluster, state: 'existing' });
  }

  /** Asks a manager (another one, when this node is leaving the managers) for a certificate for its current role. */
  private async renewCertificate(state: NodeState, excludeSelf: boolean): Promise<TlsMaterial> {
    const current = this.dir.readTls();
    const { keyPem, csrPem } = await createKeyAndCSR(state.nodeId);
    const issued = await this.withManager(
      state,
      async (addr) => {
        const ca = new CAClient(addr, managerClientCredentials(current.caCertPem, current), managerChannelOptions);
        try {
          return await callUnary(ca.renewNodeCertificate.bind(ca), { csrPem });
        } finally {
          ca.close();
        }
      },
      excludeSelf,
    );
    const tls = { caCertPem: issued.caCertPem, certPem: issued.certPem, keyPem };
    this.dir.writeTls(tls);
    this.keepSealKey(issued);
    return tls;
  }

  /** A manager keeps the seal key it is handed (an empty one changes nothing); a worker keeps none. */
  private keepSealKey(issued: IssueNodeCertificateResponse): void {
    if (issued.role !== NodeRole.NODE_ROLE_MANAGER) this.dir.writeSealKey(undefined);
    else if (issued.sealKey.length) this.dir.writeSealKey(Buffer.from(issued.sealKey));
  }

  /** Tries `fn` against each known manager in turn until one answers. */
  private async withManager<T>(state: NodeState, fn: (addr: string) => Promise<T>, excludeSelf = false): Promise<T> {
    const candidates = state.managers.filter((m) => !(excludeSelf && m.nodeId === state.nodeId));
    let last = unavailable('no manager is known to this node');
    for (const m of candidates) {
      try {
        return await fn(m.addr);
      } catch (err) {
        last = fromServiceError(err, `asking the manager at ${m.addr}`);
        if (!['Unavailable', 'Internal'].includes(last.kind)) throw last;
      }
    }
    throw last;
  }
}

/** The state of a swarm's first manager (init, restore). */
function firstManagerState(nodeId: string, clusterId: string, advertiseAddr: string, listenAddr: string, apiAddr: string, etcd: NodeState['etcd']): NodeState {
  return { nodeId, clusterId, role: 'manager', advertiseAddr, listenAddr, managers: [{ nodeId, addr: apiAddr }], etcd };
}

/** Runs `fn` until it succeeds or fails other than Unavailable (a member that just started elects itself within a second or two). */
async function retryUnavailable<T>(fn: () => Promise<T>, signal: AbortSignal, timeoutMs = 15000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (const backoff = exponentialBackoff(100, 1000); ; ) {
    try {
      return await fn();
    } catch (err) {
      if (asSwarmletError(err).kind !== 'Unavailable' || Date.now() > deadline || signal.aborted) throw err;
      await sleep(backoff.next(), signal);
    }
  }
}

function checkAdvertiseAddr(addr: string): void {
  if (!isIPv4(addr)) throw invalidArgument(`invalid --advertise-addr ${JSON.stringify(addr)}: expected an IPv4 address`);
  if (!isLocalAddress(addr)) throw invalidArgument(`--advertise-addr ${addr} is not an address of this host`);
}
